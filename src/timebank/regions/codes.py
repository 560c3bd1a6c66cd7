"""Administrative division codes: GB/T 2260 (6 digits) and the 9/12-digit statistical extensions."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Level(models.TextChoices):
    PROVINCE = "province", _("Province")
    CITY = "city", _("City")
    DISTRICT = "district", _("District or county")
    STREET = "street", _("Street or town")
    COMMUNITY = "community", _("Community")


LEVEL_ORDER: list[str] = [Level.PROVINCE, Level.CITY, Level.DISTRICT, Level.STREET, Level.COMMUNITY]
CODE_LENGTH: dict[str, int] = {
    Level.PROVINCE: 6,
    Level.CITY: 6,
    Level.DISTRICT: 6,
    Level.STREET: 9,
    Level.COMMUNITY: 12,
}
# The first two digits of every province-level division in GB/T 2260.
PROVINCE_PREFIXES = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    ]
)


def level_depth(level: str) -> int:
    return LEVEL_ORDER.index(level)


def code_problems(code: str, level: str, parent_code: str | None, parent_level: str | None) -> list[str]:
    """Every reason ``code`` cannot be a node at ``level`` under the given parent (empty when it can)."""
    if level not in LEVEL_ORDER:
        return [str(_("unknown level “%(level)s”") % {"level": level})]
    expected = CODE_LENGTH[level]
    if not code.isascii() or not code.isdigit() or len(code) != expected:
        return [
            str(
                _("a %(level)s code has exactly %(n)d digits, got “%(code)s”")
                % {"level": Level(level).label, "n": expected, "code": code}
            )
        ]
    problems: list[str] = []
    depth = level_depth(level)
    if depth == 0:
        if parent_code:
            problems.append(str(_("a province has no parent")))
    elif not parent_code:
        problems.append(str(_("a %(level)s needs a parent") % {"level": Level(level).label}))
    elif parent_level is not None and parent_level != LEVEL_ORDER[depth - 1]:
        problems.append(
            str(
                _("the parent of a %(level)s must be a %(parent)s, not a %(actual)s")
                % {
                    "level": Level(level).label,
                    "parent": Level(LEVEL_ORDER[depth - 1]).label,
                    "actual": Level(parent_level).label,
                }
            )
        )
    if level == Level.PROVINCE:
        if code[:2] not in PROVINCE_PREFIXES:
            problems.append(str(_("“%(prefix)s” is not a province prefix") % {"prefix": code[:2]}))
        if code[2:] != "0000":
            problems.append(str(_("a province code ends in 0000")))
    elif level == Level.CITY:
        if code[4:] != "00" or code[2:4] == "00":
            problems.append(str(_("a city code ends in 00 and has a non-zero city part")))
    elif level == Level.DISTRICT:
        if code[4:] == "00":
            problems.append(str(_("a district code does not end in 00")))
    elif code[-3:] == "000":
        problems.append(
            str(_("the last three digits of a %(level)s code are not 000") % {"level": Level(level).label})
        )
    if parent_code and not problems:
        prefix_len = {1: 2, 2: 4, 3: 6, 4: 9}[depth]
        if code[:prefix_len] != parent_code[:prefix_len]:
            problems.append(
                str(
                    _("code “%(code)s” does not start with its parent's prefix “%(prefix)s”")
                    % {"code": code, "prefix": parent_code[:prefix_len]}
                )
            )
    return problems
