"""Writes to the region tree and to jurisdiction policies."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from django.db import models, transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from timebank.audit.services import audit_record
from timebank.common.csvfile import csv_records
from timebank.common.errors import NotFound, ValidationFailed
from timebank.common.kinship import Relation
from timebank.regions.codes import LEVEL_ORDER, code_problems, level_depth
from timebank.regions.models import CapOverflow, Policy, Region, Rounding, ServiceCategory

if TYPE_CHECKING:
    from timebank.people.models import User

CSV_COLUMNS = ["code", "name", "name_en", "level", "parent_code"]


@dataclass
class ImportReport:
    created: int = 0
    renamed: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


class RegionImportFailed(ValidationFailed):
    code = "region_import_failed"


def _max_length(model: type[models.Model], name: str) -> int:
    field = model._meta.get_field(name)
    assert isinstance(field, models.CharField) and field.max_length is not None
    return field.max_length


NAME_MAX = _max_length(Region, "name")
NAME_EN_MAX = _max_length(Region, "name_en")


def _name_problems(name: str, name_en: str) -> list[tuple[str, str]]:
    """(field, problem) for each way the names cannot be stored."""
    problems = []
    if not name:
        problems.append(("name", _("the name is empty")))
    elif len(name) > NAME_MAX:
        problems.append(("name", _("the name has more than %(n)d characters") % {"n": NAME_MAX}))
    if len(name_en) > NAME_EN_MAX:
        problems.append(
            ("name_en", _("the English name has more than %(n)d characters") % {"n": NAME_EN_MAX})
        )
    return problems


def region_create(
    *, actor: User | None, code: str, name: str, level: str, parent: Region | None, name_en: str = ""
) -> Region:
    problems = code_problems(code, level, parent.code if parent else None, parent.level if parent else None)
    fields: dict[str, list[str]] = {}
    if problems:
        fields["code"] = problems
    for field_name, problem in _name_problems(name.strip(), name_en.strip()):
        fields.setdefault(field_name, []).append(problem)
    if Region.objects.filter(code=code).exists():
        fields.setdefault("code", []).append(_("Region %(code)s already exists.") % {"code": code})
    if fields:
        raise ValidationFailed(fields=fields)
    with transaction.atomic():
        region = Region.objects.create(
            code=code,
            name=name.strip(),
            name_en=name_en.strip(),
            level=level,
            parent=parent,
            path=(parent.path if parent else "") + code + "/",
            depth=level_depth(level),
        )
        audit_record(
            actor=actor, event_type="region.created", subject=region, region=region, new={"name": name}
        )
    return region


def regions_import_csv(*, actor: User | None, text: str) -> ImportReport:
    """Import a tree from CSV (``code,name,name_en,level,parent_code``; parents before children).

    Every line is checked first; if any is bad, nothing is written and the error lists each bad line with
    its number. Rows already present with the same place in the tree are left alone (a rename updates the
    name), so the same file can be imported twice.
    """
    report = ImportReport()
    records = csv_records(text)
    rows = [cells for _line, cells in records]
    first_lines = [line for line, _cells in records]
    if not rows or [c.strip() for c in rows[0]] != CSV_COLUMNS:
        raise RegionImportFailed(
            _("The first line must be the header: %(header)s") % {"header": ",".join(CSV_COLUMNS)},
            fields={"file": [_("line 1: wrong header")]},
        )
    codes_in_file = [r[0].strip() for r in rows[1:] if r]
    existing = {
        r.code: r
        for r in Region.objects.filter(
            code__in=codes_in_file + [r[4].strip() for r in rows[1:] if len(r) > 4]
        )
    }
    planned: dict[str, tuple[str, str]] = {}  # code -> (level, parent_code) of rows accepted so far
    plan: list[tuple[str, str, str, str, str]] = []
    for lineno, row in zip(first_lines[1:], rows[1:], strict=True):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(CSV_COLUMNS):
            report.errors.append(
                (lineno, _("expected %(n)d columns, found %(m)d") % {"n": len(CSV_COLUMNS), "m": len(row)})
            )
            continue
        code, name, name_en, level, parent_code = (c.strip() for c in row)
        problems: list[str] = []
        if level not in LEVEL_ORDER:
            problems.append(_("unknown level “%(level)s”") % {"level": level})
        problems.extend(problem for _field, problem in _name_problems(name, name_en))
        if code in planned:
            problems.append(_("code %(code)s appears twice in the file") % {"code": code})
        parent_level: str | None = None
        if parent_code:
            if parent_code in planned:
                parent_level = planned[parent_code][0]
            elif parent_code in existing:
                parent_level = existing[parent_code].level
            else:
                problems.append(
                    _("parent %(code)s is neither in the database nor earlier in the file")
                    % {"code": parent_code}
                )
        if level in LEVEL_ORDER:
            problems.extend(code_problems(code, level, parent_code or None, parent_level))
        # (A code's digits fix its level and its parent, so a code already in the tree is in the same place.)
        if problems:
            report.errors.extend((lineno, p) for p in problems)
            continue
        planned[code] = (level, parent_code)
        plan.append((code, name, name_en, level, parent_code))
    if report.errors:
        raise RegionImportFailed(
            _("%(n)d line(s) are bad; nothing was imported.") % {"n": len({ln for ln, _m in report.errors})},
            fields={
                "file": [
                    _("line %(line)d: %(problem)s") % {"line": ln, "problem": p} for ln, p in report.errors
                ]
            },
            extra={"lines": report.errors},
        )
    with transaction.atomic():
        by_code: dict[str, Region] = dict(existing)
        for code, name, name_en, level, parent_code in plan:
            current = by_code.get(code)
            if current is not None:
                if (current.name, current.name_en) != (name, name_en):
                    old = {"name": current.name, "name_en": current.name_en}
                    current.name, current.name_en = name, name_en
                    current.save(update_fields=["name", "name_en"])
                    audit_record(
                        actor=actor,
                        event_type="region.renamed",
                        subject=current,
                        region=current,
                        old=old,
                        new={"name": name, "name_en": name_en},
                    )
                    report.renamed += 1
                else:
                    report.unchanged += 1
                continue
            parent = by_code[parent_code] if parent_code else None
            by_code[code] = Region.objects.create(
                code=code,
                name=name,
                name_en=name_en,
                level=level,
                parent=parent,
                path=(parent.path if parent else "") + code + "/",
                depth=level_depth(level),
            )
            report.created += 1
        if report.created:
            root = min((by_code[c] for c, *_rest in plan), key=lambda r: r.depth)
            audit_record(
                actor=actor,
                event_type="regions.imported",
                subject=root,
                region=root,
                new={"created": report.created, "renamed": report.renamed},
            )
    return report


def regions_shipped() -> list[str]:
    """Names of the region files shipped with TimeBank."""
    data = resources.files("timebank.regions").joinpath("data")
    return sorted(item.name.removesuffix(".csv") for item in data.iterdir() if item.name.endswith(".csv"))


def regions_import_shipped(*, actor: User | None, name: str = "shanghai") -> ImportReport:
    shipped = regions_shipped()
    if name not in shipped:
        raise NotFound(
            _("No shipped region data called “%(name)s”; there is: %(all)s")
            % {"name": name, "all": ", ".join(shipped)},
            code="regions_data_not_found",
        )
    text = resources.files("timebank.regions").joinpath("data", f"{name}.csv").read_text(encoding="utf-8")
    return regions_import_csv(actor=actor, text=text)


# --- Jurisdiction policies -------------------------------------------------------------------------------

POLICY_FIELDS: dict[str, type] = {
    "minutes_per_coin": int,
    "min_volunteer_age": int,
    "withdrawal_age": int,
    "hardship_withdrawal_age": int,
    "spouse_may_withdraw": bool,
    "transfer_relations": list,
    "transfer_recipient_min_age": int,
    "transfer_annual_limit_minutes": int,
    "donation_allowed": bool,
    "group_time_donation_only": bool,
    "goods_allowed": bool,
    "money_purchase_allowed": bool,
    "purchase_fen_per_coin": int,
    "account_cap_minutes": int,
    "cap_overflow": str,
    "daily_earning_cap_minutes": int,
    "credit_line_minutes": int,
    "rounding_minutes": int,
    "rounding_mode": str,
    "star_thresholds_hours": list,
    "sensing_rssi_threshold_dbm": int,
    "sensing_merge_gap_seconds": int,
    "sensing_min_duration_seconds": int,
    "sensing_tolerance_minutes": int,
    "sensing_auto_approve": bool,
}
NULLABLE = {
    "hardship_withdrawal_age",
    "transfer_annual_limit_minutes",
    "transfer_recipient_min_age",
    "purchase_fen_per_coin",
    "account_cap_minutes",
    "daily_earning_cap_minutes",
}
# What the columns can hold, and what is plausible: refused with a field error rather than by the database.
INT_MAX = 2_000_000_000
AGE_MAX = 150
INT_LIMITS = {
    "min_volunteer_age": AGE_MAX,
    "withdrawal_age": AGE_MAX,
    "hardship_withdrawal_age": AGE_MAX,
    "transfer_recipient_min_age": AGE_MAX,
    "rounding_minutes": 24 * 60,
    "sensing_merge_gap_seconds": 60 * 60,
    "sensing_min_duration_seconds": 4 * 60 * 60,
    "sensing_tolerance_minutes": 12 * 60,
}
# Ints that may be negative, with their (lowest, highest): a signal strength in dBm is below zero.
INT_RANGES = {"sensing_rssi_threshold_dbm": (-127, 0)}
TIER_MAX = 9
COEFFICIENT_MAX = 100_000
POLICY_NAME_MAX = _max_length(Policy, "name")
SOURCE_MAX = 10_000
CATEGORY_TEXT_MAX = {
    name: _max_length(ServiceCategory, name) for name in ("code", "name", "name_en", "requires_certification")
}
PRESETS = {
    "shanghai-2026": "Shanghai 2026",
    "nanjing-2019": "Nanjing 2019",
    "beijing-2022": "Beijing 2022",
    "paper-tiered": "Tiered proposal (Wang & Zhao)",
}


def _too_long(field: str) -> str:
    return _("%(field)s: at most %(n)d characters") % {"field": field, "n": CATEGORY_TEXT_MAX[field]}


def _is_short_code(value: object, limit: int) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= limit
        and all(c.isascii() and (c.isalnum() or c in "-_") for c in value)
    )


def _check_rules(
    rules: Mapping[str, Any],
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}
    known = set(POLICY_FIELDS) | {"name", "source", "categories"}
    for key in rules:
        if key not in known:
            errors.setdefault(key, []).append(_("unknown field"))
    values: dict[str, Any] = {}
    for key, kind in POLICY_FIELDS.items():
        if key not in rules:
            continue
        value = rules[key]
        if value is None and key in NULLABLE:
            values[key] = None
            continue
        # bool is an int in Python: keep them apart.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            errors.setdefault(key, []).append(_("expected %(kind)s") % {"kind": kind.__name__})
            continue
        if key in INT_RANGES and isinstance(value, int):
            low, high = INT_RANGES[key]
            if not low <= value <= high:
                errors.setdefault(key, []).append(_("from %(low)d to %(high)d") % {"low": low, "high": high})
            else:
                values[key] = value
            continue
        if isinstance(value, int) and value < 0:
            errors.setdefault(key, []).append(_("must not be negative"))
            continue
        limit = INT_LIMITS.get(key, INT_MAX)
        if isinstance(value, int) and value > limit:
            errors.setdefault(key, []).append(_("at most %(n)d") % {"n": limit})
            continue
        values[key] = value
    if values.get("minutes_per_coin") == 0:
        errors.setdefault("minutes_per_coin", []).append(_("must be positive"))
    if values.get("rounding_minutes") == 0:
        errors.setdefault("rounding_minutes", []).append(_("must be positive"))
    if values.get("sensing_merge_gap_seconds") == 0:
        errors.setdefault("sensing_merge_gap_seconds", []).append(_("must be positive"))
    if "cap_overflow" in values and values["cap_overflow"] not in CapOverflow.values:
        errors.setdefault("cap_overflow", []).append(
            _("one of: %(v)s") % {"v": ", ".join(CapOverflow.values)}
        )
    if "rounding_mode" in values and values["rounding_mode"] not in Rounding.values:
        errors.setdefault("rounding_mode", []).append(_("one of: %(v)s") % {"v": ", ".join(Rounding.values)})
    relations = values.get("transfer_relations", [])
    for rel in relations:
        if rel not in Relation.values:
            errors.setdefault("transfer_relations", []).append(_("unknown relation “%(r)s”") % {"r": rel})
    if len(set(map(str, relations))) != len(relations):
        errors.setdefault("transfer_relations", []).append(_("a relation is listed twice"))
    hardship, holders = values.get("hardship_withdrawal_age"), values.get("withdrawal_age")
    if hardship is not None and holders is not None and hardship > holders:
        errors.setdefault("hardship_withdrawal_age", []).append(
            _("cannot be above the withdrawal age for holders (%(n)d)") % {"n": holders}
        )
    stars = values.get("star_thresholds_hours", [])
    if any(not isinstance(s, int) or isinstance(s, bool) or s <= 0 for s in stars) or stars != sorted(
        set(stars)
    ):
        errors.setdefault("star_thresholds_hours", []).append(_("positive whole hours, strictly increasing"))
    if values.get("money_purchase_allowed") and not values.get("purchase_fen_per_coin"):
        errors.setdefault("purchase_fen_per_coin", []).append(
            _("required when buying time with money is allowed")
        )
    categories: list[dict[str, Any]] = []
    raw_categories = rules.get("categories", [])
    if not isinstance(raw_categories, list) or not raw_categories:
        errors.setdefault("categories", []).append(_("a list of at least one service category"))
        raw_categories = []
    seen: set[str] = set()
    for index, cat in enumerate(raw_categories):
        where = f"categories[{index}]"
        if not isinstance(cat, dict):
            errors.setdefault(where, []).append(_("expected an object"))
            continue
        problems = []
        code = cat.get("code")
        if not isinstance(code, str) or not code or not _is_short_code(code, len(code)):
            problems.append(_("code: letters, digits, - and _"))
        elif len(code) > CATEGORY_TEXT_MAX["code"]:
            problems.append(_too_long("code"))
        elif code in seen:
            problems.append(_("code %(code)s appears twice") % {"code": code})
        else:
            seen.add(code)
        for text_field in ("name", "name_en"):
            if not isinstance(cat.get(text_field), str) or not cat[text_field].strip():
                problems.append(_("%(field)s: required text") % {"field": text_field})
            elif len(cat[text_field].strip()) > CATEGORY_TEXT_MAX[text_field]:
                problems.append(_too_long(text_field))
        certification = cat.get("requires_certification") or ""
        if not _is_short_code(certification, CATEGORY_TEXT_MAX["requires_certification"]):
            problems.append(_("requires_certification: a short code of letters, digits, - and _"))
        tier = cat.get("tier", 1)
        coefficient = cat.get("coefficient_permille", 1000)
        if not isinstance(tier, int) or isinstance(tier, bool) or not 1 <= tier <= TIER_MAX:
            problems.append(_("tier: a whole number from 1 to %(n)d") % {"n": TIER_MAX})
        if (
            not isinstance(coefficient, int)
            or isinstance(coefficient, bool)
            or not 0 < coefficient <= COEFFICIENT_MAX
        ):
            problems.append(
                _("coefficient_permille: a whole number from 1 to %(n)d (1000 = ×1.0)")
                % {"n": COEFFICIENT_MAX}
            )
        unknown = set(cat) - {
            "code",
            "name",
            "name_en",
            "tier",
            "coefficient_permille",
            "requires_certification",
        }
        if unknown:
            problems.append(_("unknown fields: %(f)s") % {"f": ", ".join(sorted(unknown))})
        if problems:
            errors.setdefault(where, []).extend(problems)
            continue
        categories.append(
            {
                "code": code,
                "name": cat["name"].strip(),
                "name_en": cat["name_en"].strip(),
                "tier": tier,
                "coefficient_permille": coefficient,
                "requires_certification": certification,
                "position": index,
            }
        )
    return values, categories, errors


def policy_create(
    *, actor: User | None, region: Region, effective_from: dt.date, rules: Mapping[str, Any], preset: str = ""
) -> Policy:
    """Add a policy version to ``region``. Every bad field is reported at once; nothing is half-written."""
    if not isinstance(rules, Mapping):
        raise ValidationFailed(
            _("A policy is a JSON object."),
            fields={"policy": [_("expected an object")]},
            code="policy_invalid",
        )
    values, categories, errors = _check_rules(rules)
    name = rules.get("name")
    if not isinstance(name, str) or not name.strip():
        errors.setdefault("name", []).append(_("A name is required."))
    elif len(name.strip()) > POLICY_NAME_MAX:
        errors.setdefault("name", []).append(_("At most %(n)d characters.") % {"n": POLICY_NAME_MAX})
    source = rules.get("source", "")
    if not isinstance(source, str) or len(source) > SOURCE_MAX:
        errors.setdefault("source", []).append(_("Text of at most %(n)d characters.") % {"n": SOURCE_MAX})
    if errors:
        raise ValidationFailed(
            _("The policy has errors; nothing was saved."), fields=errors, code="policy_invalid"
        )
    with transaction.atomic():
        Region.objects.select_for_update().filter(pk=region.pk).first()  # serialise version numbering
        version = (Policy.objects.filter(region=region).aggregate(v=Max("version"))["v"] or 0) + 1
        policy = Policy.objects.create(
            region=region,
            version=version,
            name=str(name).strip(),
            preset=preset,
            source=str(rules.get("source", "")),
            effective_from=effective_from,
            created_by=actor,
            **values,
        )
        ServiceCategory.objects.bulk_create(ServiceCategory(policy=policy, **c) for c in categories)
        audit_record(
            actor=actor,
            event_type="policy.created",
            subject=policy,
            region=region,
            new={
                "version": version,
                "effective_from": effective_from.isoformat(),
                "preset": preset,
                **values,
            },
        )
    return policy


def policy_preset_rules(preset: str) -> dict[str, Any]:
    if preset not in PRESETS:
        raise NotFound(
            _("Unknown preset “%(p)s”; choose one of: %(all)s") % {"p": preset, "all": ", ".join(PRESETS)},
            code="preset_not_found",
        )
    text = (
        resources.files("timebank.regions").joinpath("presets", f"{preset}.json").read_text(encoding="utf-8")
    )
    data: dict[str, Any] = json.loads(text)
    return data


def policy_load_preset(*, actor: User | None, preset: str, region: Region, effective_from: dt.date) -> Policy:
    return policy_create(
        actor=actor,
        region=region,
        effective_from=effective_from,
        rules=policy_preset_rules(preset),
        preset=preset,
    )


def policy_load_file(*, actor: User | None, text: str, region: Region, effective_from: dt.date) -> Policy:
    try:
        rules = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            _("The policy file is not valid JSON: line %(line)d, column %(col)d: %(msg)s")
            % {"line": exc.lineno, "col": exc.colno, "msg": exc.msg},
            fields={"file": [_("not valid JSON")]},
            code="policy_invalid",
        ) from exc
    return policy_create(actor=actor, region=region, effective_from=effective_from, rules=rules)
