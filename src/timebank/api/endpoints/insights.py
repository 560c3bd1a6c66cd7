"""Oversight (read only): a region's dashboard — who takes part, how services went, the minutes deposited and
withdrawn, what members hold and how far the guarantee fund covers it — for the staff and auditors whose
scope holds the region, as the civil-affairs bureau reads it."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Path, Query, Schema
from pydantic import Field

from timebank.api.common import caller, staff_with
from timebank.api.endpoints.exchange import CoverageOut, coverage_out
from timebank.api.main import api
from timebank.insights import selectors as insights
from timebank.insights.selectors import Minutes, StatusCount
from timebank.people import selectors as people
from timebank.people.access import Perm
from timebank.regions.models import Region
from timebank.regions.selectors import region_get


class DashboardRegionOut(Schema):
    code: str
    name: str
    name_en: str
    level: str


class DashboardMinutesOut(Schema):
    """Net minutes (reversals taken off): posted in ``year``, and since the platform began."""

    this_year: int
    all_time: int


class DashboardServicesOut(Schema):
    """Services of the subtree in a status (all statuses when ``status`` is ``""``): those whose window starts
    in ``year``, and all."""

    status: str
    label: str
    this_year: int
    all_time: int


class RegionDashboardOut(Schema):
    """Members count where they live now, services where they take place. Time bought with money is reported
    apart (``purchased``): it is not volunteered time. ``withdrawn`` is paid for care, redeemed and
    donated."""

    region: DashboardRegionOut
    year: int
    trail: list[DashboardRegionOut] = Field(
        description="from the top of the caller's scope down to the region"
    )
    children: list[DashboardRegionOut] = Field(description="the regions directly below, to look into next")
    members: int
    volunteers: int
    elders: int
    priority_elders: int
    services: list[DashboardServicesOut]
    services_total: DashboardServicesOut
    deposited: DashboardMinutesOut
    paid_for_care: DashboardMinutesOut
    redeemed: DashboardMinutesOut
    donated: DashboardMinutesOut
    withdrawn: DashboardMinutesOut
    purchased: DashboardMinutesOut
    coverage: CoverageOut


def _region_out(region: Region) -> dict[str, Any]:
    return {"code": region.code, "name": region.name, "name_en": region.name_en, "level": region.level}


def _minutes_out(minutes: Minutes) -> dict[str, Any]:
    return {"this_year": minutes.this_year, "all_time": minutes.all_time}


def _services_out(count: StatusCount) -> dict[str, Any]:
    return {
        "status": count.status,
        "label": count.label,
        "this_year": count.this_year,
        "all_time": count.all_time,
    }


@api.get("/insights/regions/{code}", response=RegionDashboardOut, tags=["insights"])
def region_dashboard(
    request: HttpRequest,
    code: Annotated[str, Path(max_length=12, description="a region code, e.g. 310101")],
    year: Annotated[int | None, Query(ge=2000, le=2999, description="the year `this_year` counts")] = None,
) -> dict[str, Any]:
    """The figures of the region ``code`` and everything below it, for staff and auditors whose scope holds
    it (a region outside it is a 403). ``this_year`` counts the calendar year ``year``, the current one by
    default."""
    people.require_staff(caller(request))
    user = staff_with(request, Perm.CARE_VIEW)
    region = region_get(code)
    figures = insights.region_dashboard(user, region, on=dt.date(year, 1, 1) if year is not None else None)
    return {
        "region": _region_out(region),
        "year": figures.year,
        "trail": [_region_out(r) for r in insights.region_trail(user, region)],
        "children": [_region_out(r) for r in insights.region_children(region)],
        "members": figures.members,
        "volunteers": figures.volunteers,
        "elders": figures.elders,
        "priority_elders": figures.priority_elders,
        "services": [_services_out(c) for c in figures.services],
        "services_total": _services_out(figures.services_total),
        "deposited": _minutes_out(figures.deposited),
        "paid_for_care": _minutes_out(figures.paid_for_care),
        "redeemed": _minutes_out(figures.redeemed),
        "donated": _minutes_out(figures.donated),
        "withdrawn": _minutes_out(figures.withdrawn),
        "purchased": _minutes_out(figures.purchased),
        "coverage": coverage_out(figures.coverage),
    }
