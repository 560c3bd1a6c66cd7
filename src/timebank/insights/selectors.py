"""Reads for oversight: a region's time bank as the civil-affairs bureau sees it — who takes part, how
services went, the minutes deposited and withdrawn, what members hold and how far the guarantee fund
covers it.

Every figure is an aggregate query over the region's subtree (a handful of queries whatever its size).
Members count where they live now: a member who moved took their account, and its history, along.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Q, Sum
from django.utils import timezone

from timebank.care.models import ServiceOrder, Status
from timebank.common import clock
from timebank.exchange.selectors import Coverage, coverage
from timebank.ledger.models import AccountKind, Posting, TransactionKind
from timebank.people.access import Perm, access_check, access_has, access_paths
from timebank.people.models import Member, PriorityStatus, User
from timebank.regions.models import Region
from timebank.regions.selectors import region_ancestors


@dataclass(frozen=True)
class Minutes:
    """Minutes over the year shown, and since the start of the platform."""

    this_year: int
    all_time: int

    def __add__(self, other: Minutes) -> Minutes:
        return Minutes(self.this_year + other.this_year, self.all_time + other.all_time)


@dataclass(frozen=True)
class StatusCount:
    status: str
    label: str
    this_year: int  # services whose window starts in the year shown
    all_time: int


@dataclass(frozen=True)
class RegionDashboard:
    region: Region
    year: int
    members: int  # active members living in the subtree
    volunteers: int
    elders: int
    priority_elders: int  # elders with at least one verified priority status
    services: list[StatusCount]  # only the statuses some service of the subtree is in
    services_total: StatusCount
    deposited: Minutes  # service credits into members' accounts, less those reversed
    paid_for_care: Minutes  # minutes members' accounts paid for care, less refunds by reversal
    redeemed: Minutes  # goods and special rights handed over
    donated: Minutes  # given to the mutual-aid pool
    purchased: Minutes  # bought with money: reported apart, never counted as volunteered time
    coverage: Coverage  # what members hold now, and the guarantee fund behind it

    @property
    def withdrawn(self) -> Minutes:
        return self.paid_for_care + self.redeemed + self.donated

    @property
    def outstanding_minutes(self) -> int:
        return self.coverage.outstanding_minutes


def _flow(kind: str, *, into_member: bool) -> Q:
    """Entries of ``kind`` that move minutes into (or out of) a member account, and the reversals of such
    entries, which move them back: summed, they give the net flow with its sign."""
    if into_member:
        return Q(transaction__kind=kind, amount__gt=0) | Q(
            transaction__kind=TransactionKind.REVERSAL, transaction__reverses__kind=kind, amount__lt=0
        )
    return Q(transaction__kind=kind, amount__lt=0) | Q(
        transaction__kind=TransactionKind.REVERSAL, transaction__reverses__kind=kind, amount__gt=0
    )


# name → (kind, into the member's account?)
_FLOWS: dict[str, tuple[str, bool]] = {
    "deposited": (TransactionKind.SERVICE_CREDIT, True),
    "paid_for_care": (TransactionKind.SERVICE_CREDIT, False),
    "redeemed": (TransactionKind.REDEMPTION, False),
    "donated": (TransactionKind.DONATION, False),
    "purchased": (TransactionKind.PURCHASE, True),
}


def _year_bounds(year: int) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    return dt.datetime(year, 1, 1, tzinfo=tz), dt.datetime(year + 1, 1, 1, tzinfo=tz)


def _member_counts(region: Region) -> dict[str, int]:
    verified = PriorityStatus.objects.filter(verified_at__isnull=False).values("member_id")
    return Member.objects.filter(home_region__path__startswith=region.path, is_active=True).aggregate(
        members=Count("pk"),
        volunteers=Count("pk", filter=Q(is_volunteer=True)),
        elders=Count("pk", filter=Q(is_elder=True)),
        priority_elders=Count("pk", filter=Q(is_elder=True, pk__in=verified)),
    )


def _service_counts(region: Region, year: int) -> tuple[list[StatusCount], StatusCount]:
    start, end = _year_bounds(year)
    rows = (
        ServiceOrder.objects.filter(region__path__startswith=region.path)
        .values("status")
        .annotate(
            all_time=Count("pk"),
            this_year=Count("pk", filter=Q(window_start__gte=start, window_start__lt=end)),
        )
        .order_by()
    )
    found = {row["status"]: row for row in rows}
    counts = [
        StatusCount(status, str(label), found[status]["this_year"], found[status]["all_time"])
        for status, label in Status.choices
        if status in found
    ]
    total = StatusCount("", "", sum(c.this_year for c in counts), sum(c.all_time for c in counts))
    return counts, total


def _ledger_flows(region: Region, year: int) -> dict[str, Minutes]:
    """Net minutes of each flow across the member accounts of the subtree, in one aggregate query. An entry
    counts in the year it was posted (a reversal in the year it was made)."""
    start, end = _year_bounds(year)
    in_year = Q(transaction__created_at__gte=start, transaction__created_at__lt=end)
    kinds = {kind for kind, _into in _FLOWS.values()} | {TransactionKind.REVERSAL}
    postings = Posting.objects.filter(
        account__kind=AccountKind.MEMBER,
        account__member__home_region__path__startswith=region.path,
        transaction__kind__in=kinds,
    )
    sums: dict[str, Sum] = {}
    for name, (kind, into) in _FLOWS.items():
        sums[f"{name}_all"] = Sum("amount", filter=_flow(kind, into_member=into))
        sums[f"{name}_year"] = Sum("amount", filter=_flow(kind, into_member=into) & in_year)
    totals = postings.aggregate(**sums)
    sign = {name: 1 if into else -1 for name, (_kind, into) in _FLOWS.items()}
    return {
        name: Minutes(
            this_year=sign[name] * int(totals[f"{name}_year"] or 0),
            all_time=sign[name] * int(totals[f"{name}_all"] or 0),
        )
        for name in _FLOWS
    }


def region_dashboard(user: User, region: Region, *, on: dt.date | None = None) -> RegionDashboard:
    """The figures of ``region`` and everything below it, for staff and auditors whose scope holds it; "this
    year" is the calendar year of ``on`` (today by default)."""
    access_check(user, Perm.CARE_VIEW, region)
    year = (on or clock.today()).year
    people = _member_counts(region)
    services, services_total = _service_counts(region, year)
    flows = _ledger_flows(region, year)
    return RegionDashboard(
        region=region,
        year=year,
        members=people["members"],
        volunteers=people["volunteers"],
        elders=people["elders"],
        priority_elders=people["priority_elders"],
        services=services,
        services_total=services_total,
        deposited=flows["deposited"],
        paid_for_care=flows["paid_for_care"],
        redeemed=flows["redeemed"],
        donated=flows["donated"],
        purchased=flows["purchased"],
        coverage=coverage(region),
    )


def dashboard_tops(user: User) -> list[Region]:
    """The regions at the top of the user's scope, where the dashboard opens (every root for admins)."""
    paths = access_paths(user, Perm.CARE_VIEW)
    tops = Q(parent__isnull=True) if paths is None else Q(path__in=paths)
    return list(Region.objects.filter(tops).order_by("path"))


def region_trail(user: User, region: Region) -> list[Region]:
    """The way down to ``region`` from the top of the user's scope, ``region`` last."""
    return [r for r in region_ancestors(region) if access_has(user, Perm.CARE_VIEW, r)]


def region_children(region: Region) -> list[Region]:
    return list(Region.objects.filter(parent=region).order_by("path"))
