"""Reads of co-presence: the time measured for services, their sessions, and the unplanned-help candidates
as staff and elders see them."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace

from django.db.models import Q, QuerySet

from timebank.care.models import Funding, ServiceOrder
from timebank.care.rules import funding_problems, local_day
from timebank.common.errors import NotFound
from timebank.people.access import Perm, access_has, access_paths, access_region_q
from timebank.people.models import Member, User
from timebank.regions.models import Policy, Region, ServiceCategory
from timebank.regions.selectors import policy_in_force
from timebank.sensing.matching import Interval, claimed_interval, measured_seconds, overlap_seconds
from timebank.sensing.models import Candidate, PresenceSession, SessionStatus


@dataclass(frozen=True)
class Measured:
    """What the sensors measured for one service, next to what it claims."""

    order_id: int
    seconds: int
    session_ids: tuple[int, ...]
    claimed_minutes: int | None  # check-in to check-out less travel, before rounding; None until checked out
    tolerance_minutes: int | None = None  # of the policy in force on the service's day, when asked for

    @property
    def minutes(self) -> int:
        return self.seconds // 60

    @property
    def difference(self) -> int | None:
        """Measured minus claimed minutes."""
        return None if self.claimed_minutes is None else self.minutes - self.claimed_minutes

    def agrees(self, tolerance_minutes: int | None = None) -> bool:
        """Sessions were measured and they agree with the claimed time within ``tolerance_minutes`` (by
        default the policy's)."""
        tolerance = self.tolerance_minutes if tolerance_minutes is None else tolerance_minutes
        return (
            bool(self.session_ids)
            and self.difference is not None
            and tolerance is not None
            and abs(self.difference) <= tolerance
        )


def _claimed_minutes(order: ServiceOrder) -> int | None:
    if order.checked_in_at is None or order.checked_out_at is None:
        return None
    return int((order.checked_out_at - order.checked_in_at).total_seconds() // 60) - order.travel_minutes


def _interval(session: PresenceSession) -> Interval:
    return Interval(session.started_at, session.ended_at or session.last_seen_at)


def measured_for_orders(orders: Iterable[ServiceOrder], *, elder_seen: bool = False) -> dict[int, Measured]:
    """The measured time of each service that has a volunteer (one query for all of them): its pair's
    sessions that meet what it claims, blips left out. ``elder_seen``: only sessions in which the elder's
    devices saw the volunteer (the volunteer's device alone cannot vouch for the volunteer's claim)."""
    wanted = [o for o in orders if o.volunteer_id is not None]
    if not wanted:
        return {}
    ranges = {
        o.pk: claimed_interval(o, until=max(o.window_end, o.checked_in_at or o.window_end)) for o in wanted
    }
    # while a visit goes on its claim runs to the latest sighting: look a day past the window
    earliest = min(start for start, _end in ranges.values())
    latest = max(end for _start, end in ranges.values()) + dt.timedelta(days=1)
    sessions = PresenceSession.objects.filter(
        volunteer_id__in={o.volunteer_id for o in wanted},
        elder_id__in={o.elder_id for o in wanted},
        started_at__lt=latest,
        last_seen_at__gt=earliest,
    ).exclude(status=SessionStatus.BLIP)
    if elder_seen:
        sessions = sessions.filter(elder_sightings__gt=0)
    by_pair: dict[tuple[int, int], list[PresenceSession]] = defaultdict(list)
    for session in sessions.order_by("started_at", "pk"):
        by_pair[(session.volunteer_id, session.elder_id)].append(session)
    result = {}
    for order in wanted:
        assert order.volunteer_id is not None
        pair = by_pair.get((order.volunteer_id, order.elder_id), [])
        intervals = [_interval(s) for s in pair]
        until = max((i.end for i in intervals), default=order.window_end)
        start, end = claimed_interval(order, until=until)
        meeting = tuple(
            s.pk for s, i in zip(pair, intervals, strict=True) if overlap_seconds(i.start, i.end, start, end)
        )
        result[order.pk] = Measured(
            order_id=order.pk,
            seconds=measured_seconds(order, intervals),
            session_ids=meeting,
            claimed_minutes=_claimed_minutes(order),
        )
    return result


def measured_for_review(orders: Iterable[ServiceOrder]) -> dict[int, Measured]:
    """``measured_for_orders`` with each service's tolerance, from the policy in force in its community on
    its day (read once per community and day)."""
    wanted = list(orders)
    measured = measured_for_orders(wanted)
    policies: dict[tuple[int, dt.date], Policy | None] = {}
    for order in wanted:
        found = measured.get(order.pk)
        if found is None:
            continue
        day = local_day(order.checked_in_at or order.window_start)
        if (order.region_id, day) not in policies:
            policies[(order.region_id, day)] = policy_in_force(order.region, day)
        policy = policies[(order.region_id, day)]
        if policy is not None:
            measured[order.pk] = replace(found, tolerance_minutes=policy.sensing_tolerance_minutes)
    return measured


def order_measured(order: ServiceOrder) -> Measured | None:
    return measured_for_review([order]).get(order.pk)


def order_measured_sessions(order: ServiceOrder) -> tuple[Measured | None, list[PresenceSession]]:
    """What the sensors measured for ``order`` (None while it has no volunteer) and the sessions that
    measured it, oldest first."""
    measured = order_measured(order)
    if measured is None or not measured.session_ids:
        return measured, []
    sessions = PresenceSession.objects.filter(pk__in=measured.session_ids).order_by("started_at", "pk")
    return measured, list(sessions)


# --- unplanned help -----------------------------------------------------------------------------------------


_RELATED = ("volunteer", "elder", "region", "order", "decided_by")


def candidates_visible(
    user: User, *, community: str = "", state: str = Candidate.PENDING
) -> QuerySet[PresenceSession]:
    """Unplanned-help candidates in the staff member's communities, oldest first."""
    qs = PresenceSession.objects.filter(
        access_region_q(user, Perm.CARE_VIEW, "region__path"), candidate=state
    )
    if community:
        qs = qs.filter(region__code=community)
    return qs.select_related(*_RELATED).order_by("started_at", "pk")


def candidates_of_elder(elder: Member, *, state: str = Candidate.PENDING) -> QuerySet[PresenceSession]:
    """An elder's own unplanned-help candidates, newest first."""
    return (
        PresenceSession.objects.filter(elder=elder, candidate=state)
        .select_related(*_RELATED)
        .order_by("-started_at", "-pk")
    )


def candidate_visible(user: User, session: PresenceSession) -> bool:
    """The elder herself, or staff of her community."""
    if user.member_id is not None and user.member_id == session.elder_id:
        return True
    return access_has(user, Perm.CARE_VIEW, session.region)


def candidate_get(user: User, session_id: int) -> PresenceSession:
    """A candidate (in any state) the user may see; anything else is reported as not found."""
    session = (
        PresenceSession.objects.select_related(*_RELATED)
        .filter(~Q(candidate=Candidate.NONE), pk=session_id)
        .first()
    )
    if session is None or not candidate_visible(user, session):
        raise NotFound(code="sensing_candidate_not_found")
    return session


def candidates_for(user: User, *, state: str = "", region: Region | None = None) -> QuerySet[PresenceSession]:
    """Every candidate ``candidate_get`` lets the user open, in any state or in ``state``: those of the
    communities in their staff scope and their own (as the elder). ``region`` keeps its whole subtree."""
    qs = PresenceSession.objects.exclude(candidate=Candidate.NONE)
    if access_paths(user, Perm.CARE_VIEW) is not None:  # not a platform administrator
        seen = access_region_q(user, Perm.CARE_VIEW, "region__path")
        if user.member_id is not None:
            seen |= Q(elder_id=user.member_id)
        qs = qs.filter(seen)
    if state:
        qs = qs.filter(candidate=state)
    if region is not None:
        qs = qs.filter(region__path__startswith=region.path)
    return qs.select_related(*_RELATED)


def candidate_get_own(user: User, session_id: int) -> PresenceSession:
    """A candidate (in any state) of which the user is the elder; anyone else's is reported as not found
    (station staff decide on theirs in the console)."""
    session = (
        PresenceSession.objects.select_related(*_RELATED)
        .filter(~Q(candidate=Candidate.NONE), pk=session_id)
        .first()
    )
    if session is None or user.member_id is None or session.elder_id != user.member_id:
        raise NotFound(code="sensing_candidate_not_found")
    return session


@dataclass(frozen=True)
class RecordChoices:
    """What recording a candidate offers: the service categories of the policy in force in the elder's
    community on its day, and who pays unless told otherwise."""

    categories: tuple[ServiceCategory, ...]
    funding: str


def candidate_record_choices(session: PresenceSession) -> RecordChoices:
    """The catalogue the care rules will check the record against, and as payer the elder's own savings
    where the policy lets her spend them, else the mutual-aid pool where she may be served from it (the
    care rules decide again when it is recorded)."""
    elder = session.elder
    day = local_day(session.started_at)
    policy = policy_in_force(elder.home_region, day)
    if policy is None:
        return RecordChoices(categories=(), funding=Funding.OWN)
    funding: str = Funding.OWN
    own = funding_problems(policy=policy, elder=elder, funding=Funding.OWN, payer=elder, day=day)
    if own and not funding_problems(policy=policy, elder=elder, funding=Funding.POOL, payer=None, day=day):
        funding = Funding.POOL
    return RecordChoices(categories=tuple(policy.categories.all()), funding=funding)
