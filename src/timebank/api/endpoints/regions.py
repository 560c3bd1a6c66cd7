"""Regions and jurisdiction policies (read): the administrative tree and the versioned rules attached to its
nodes, inherited below them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Schema

from timebank.api.common import page
from timebank.api.main import api
from timebank.common.errors import NotFound
from timebank.regions.models import Policy, Region, ServiceCategory
from timebank.regions.selectors import policy_in_force, policy_versions, region_children, region_get


class RegionOut(Schema):
    code: str
    name: str
    name_en: str
    level: str
    parent: str | None


class RegionsOut(Schema):
    regions: list[RegionOut]
    next_cursor: str | None


def _region_out(found: Region) -> dict[str, Any]:
    return {
        "code": found.code,
        "name": found.name,
        "name_en": found.name_en,
        "level": found.level,
        "parent": found.parent.code if found.parent_id and found.parent else None,
    }


@api.get("/regions", response=RegionsOut, tags=["regions"])
def regions(
    request: HttpRequest, parent: str = "", cursor: str | None = None, limit: int = 50
) -> dict[str, Any]:
    """The regions directly below ``parent`` (a code), or the roots of the tree without it."""
    children = region_children(region_get(parent) if parent else None).select_related("parent")
    rows, next_cursor = page(children, cursor, limit, _region_out)
    return {"regions": rows, "next_cursor": next_cursor}


@api.get("/regions/{code}", response=RegionOut, tags=["regions"])
def region(request: HttpRequest, code: str) -> dict[str, Any]:
    """A region by its administrative code (e.g. 310101023001), with the code of the node above it."""
    return _region_out(region_get(code))


class PolicyRulesOut(Schema):
    """The rules of a policy version; fields ending ``_minutes`` are integer minutes."""

    minutes_per_coin: int
    min_volunteer_age: int
    withdrawal_age: int
    hardship_withdrawal_age: int | None
    spouse_may_withdraw: bool
    transfer_relations: list[str]
    transfer_recipient_min_age: int | None
    transfer_annual_limit_minutes: int | None
    donation_allowed: bool
    group_time_donation_only: bool
    goods_allowed: bool
    money_purchase_allowed: bool
    purchase_fen_per_coin: int | None
    account_cap_minutes: int | None
    cap_overflow: str
    daily_earning_cap_minutes: int | None
    credit_line_minutes: int
    rounding_minutes: int
    rounding_mode: str
    star_thresholds_hours: list[int]
    sensing_rssi_threshold_dbm: int
    sensing_merge_gap_seconds: int
    sensing_min_duration_seconds: int
    sensing_tolerance_minutes: int
    sensing_auto_approve: bool


class PolicyCategoryOut(Schema):
    code: str
    name: str
    name_en: str
    tier: int
    coefficient_permille: int
    requires_certification: str


class PolicyOut(Schema):
    region: str  # the node the version is attached to (it holds for the whole subtree)
    version: int
    name: str
    preset: str
    source: str
    effective_from: dt.date
    rules: PolicyRulesOut
    categories: list[PolicyCategoryOut]


class PoliciesOut(Schema):
    policies: list[PolicyOut]


def _category_out(category: ServiceCategory) -> dict[str, Any]:
    return {
        "code": category.code,
        "name": category.name,
        "name_en": category.name_en,
        "tier": category.tier,
        "coefficient_permille": category.coefficient_permille,
        "requires_certification": category.requires_certification,
    }


def _policy_out(policy: Policy) -> dict[str, Any]:
    return {
        "region": policy.region.code,
        "version": policy.version,
        "name": policy.name,
        "preset": policy.preset,
        "source": policy.source,
        "effective_from": policy.effective_from,
        "rules": PolicyRulesOut.from_orm(policy),
        "categories": [_category_out(c) for c in policy.categories.all()],
    }


@api.get("/regions/{code}/policy", response=PolicyOut, tags=["regions"])
def policy(request: HttpRequest, code: str, day: dt.date | None = None) -> dict[str, Any]:
    """The rules in force for the region on ``day`` (YYYY-MM-DD, default today): the version of the nearest
    node at or above it that has taken effect."""
    where = region_get(code)
    found = policy_in_force(where, day or timezone.localdate())
    if found is None:
        raise NotFound(
            _("No policy is in force for %(region)s on this day.") % {"region": where.display_name},
            code="policy_not_found",
        )
    return _policy_out(found)


@api.get("/regions/{code}/policies", response=PoliciesOut, tags=["regions"])
def policies(request: HttpRequest, code: str) -> dict[str, Any]:
    """Every version attached to the region itself, the latest effective first (inherited ones are on the
    nodes above)."""
    versions = policy_versions(region_get(code)).select_related("region").prefetch_related("categories")
    return {"policies": [_policy_out(p) for p in versions]}
