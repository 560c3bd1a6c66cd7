"""Writes of co-presence: deriving sessions from the stored sightings and matching them to services, approving
services the sensors agree with (where the policy says so), and the decisions on unplanned help.

``sessions_derive`` is what ``timebank sensing derive`` (and a timer, or ``timebank serve``'s loop) calls. One
run holds the cursor row's lock, so runs never overlap; it reads the sightings after the cursor, feeds them to
``sessions.Deriver`` together with the sessions still open, writes what changed, matches the sessions that
changed (and the candidates still waiting, which a service entered since may now explain) to services, and
moves the cursor — all in one transaction. Automatic approval follows, each service in its own transaction.
Runs are meant to come often (the bridge's pace, or ``timebank serve``'s loop): each reads only what is new.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from timebank.audit.services import audit_record
from timebank.care import services as care
from timebank.care.models import ServiceOrder, Source, Status
from timebank.care.rules import local_day
from timebank.common import clock
from timebank.common.errors import ApplicationError, Conflict, NotFound, PermissionDenied, ValidationFailed
from timebank.people.access import Perm, access_check
from timebank.people.models import Member, User
from timebank.regions.models import Policy, Region
from timebank.regions.selectors import policy_in_force
from timebank.regions.services import INT_LIMITS
from timebank.sensing.conf import sensing_setting
from timebank.sensing.matching import MATCHABLE, Interval, best_order
from timebank.sensing.models import Candidate, PresenceSession, SessionCursor, SessionStatus
from timebank.sensing.presence_selectors import candidate_visible, measured_for_orders
from timebank.sensing.sessions import (
    DB_ID,
    ELDER_SIDE,
    FIRST_ID,
    GAP,
    LAG,
    LAST,
    LAST_ID,
    MEMBER_MASK,
    MIN,
    POLICY,
    START,
    VOLUNTEER_SIDE,
    Deriver,
    Finished,
    OpenSession,
    Params,
    Row,
    open_session,
    pair_key,
    pair_of,
)

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
ONE_MS = dt.timedelta(milliseconds=1)
CURSOR = "presence"
CHUNK = 10_000
MAX_GAP_MS = INT_LIMITS["sensing_merge_gap_seconds"] * 1000
MAX_REASON = 300
# Candidates waiting this long (before the newest sighting) are no longer matched again to services entered
# since: a paper card comes in within days.
REMATCH_DAYS = 31


class SightingLike(Protocol):
    """What ``selectors.sightings_stream`` yields (``selectors.Sighting``)."""

    @property
    def event_id(self) -> int: ...
    @property
    def at(self) -> dt.datetime: ...
    @property
    def observer_member_id(self) -> int: ...
    @property
    def peer_member_id(self) -> int: ...
    @property
    def rssi(self) -> int: ...


def lateness_seconds() -> int:
    return sensing_setting("SENSING_SESSION_LATENESS_SECONDS")


def to_ms(moment: dt.datetime) -> int:
    return (moment - EPOCH) // ONE_MS


def from_ms(ms: int) -> dt.datetime:
    return EPOCH + ms * ONE_MS


# --- who is who, and the rules: read once per member and once per community and day -------------------------


class DbResolver:
    """The deriver's view of the database: members' roles and communities, loaded a chunk at a time; the
    policy in force for a community on a day, read once; sessions finished in earlier runs, asked only for
    a sighting older than the previous run's watermark."""

    def __init__(self, *, previous_watermark_ms: int) -> None:
        self.previous_watermark_ms = previous_watermark_ms
        # member id -> (volunteer?, elder?, home region id, birth date)
        self.members: dict[int, tuple[bool, bool, int, dt.date | None]] = {}
        self.regions: dict[int, Region] = {}
        self.policies: dict[tuple[int, dt.date], Policy | None] = {}
        self.zone = timezone.get_current_timezone()

    def load(self, member_ids: Iterable[int]) -> None:
        missing = set(member_ids) - self.members.keys()
        if not missing:
            return
        for pk, volunteer, elder, region_id, birth in Member.objects.filter(pk__in=missing).values_list(
            "pk", "is_volunteer", "is_elder", "home_region_id", "birth_date"
        ):
            self.members[pk] = (volunteer, elder, region_id, birth)

    def pair(self, a: int, b: int) -> int:
        if a not in self.members or b not in self.members:
            self.load((a, b))
        ma, mb = self.members.get(a), self.members.get(b)
        if ma is None or mb is None or a == b:
            return 0
        a_serves, b_serves = ma[0] and mb[1], mb[0] and ma[1]
        if a_serves and b_serves:
            # both volunteer and both are elders: the elder of the two is the one born first
            a_older = ma[3] is not None and (mb[3] is None or ma[3] < mb[3])
            b_older = mb[3] is not None and (ma[3] is None or mb[3] < ma[3])
            a_serves = b_older or (not a_older and a < b)
            b_serves = not a_serves
        if a_serves:
            return pair_key(a, b)
        if b_serves:
            return pair_key(b, a)
        return 0

    def region_of(self, member_id: int) -> int:
        return self.members[member_id][2]

    def policy(self, region_id: int, day: dt.date) -> Policy | None:
        if (region_id, day) not in self.policies:
            region = self.regions.get(region_id)
            if region is None:
                region = self.regions[region_id] = Region.objects.get(pk=region_id)
            self.policies[(region_id, day)] = policy_in_force(region, day)
        return self.policies[(region_id, day)]

    def params(self, key: int, at_ms: int) -> Params:
        day = dt.datetime.fromtimestamp(at_ms / 1000, tz=self.zone).date()
        start = to_ms(dt.datetime.combine(day, dt.time.min, tzinfo=self.zone))
        end = to_ms(dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=self.zone))
        policy = self.policy(self.region_of(key & MEMBER_MASK), day)
        if policy is None:
            return Params(start, end, 1, 0, 0, None)
        return Params(
            start,
            end,
            policy.sensing_rssi_threshold_dbm,
            policy.sensing_merge_gap_seconds * 1000,
            policy.sensing_min_duration_seconds * 1000,
            policy.pk,
        )

    def finished_covers(self, key: int, at_ms: int) -> bool:
        if at_ms - MAX_GAP_MS > self.previous_watermark_ms:
            return False  # every session of an earlier run ended before the previous watermark
        volunteer_id, elder_id = pair_of(key)
        near = from_ms(at_ms)
        reach = dt.timedelta(milliseconds=MAX_GAP_MS)
        for started, last, gap in PresenceSession.objects.filter(
            volunteer_id=volunteer_id,
            elder_id=elder_id,
            status=SessionStatus.CLOSED,
            started_at__lte=near + reach,
            last_seen_at__gte=near - reach,
        ).values_list("started_at", "last_seen_at", "merge_gap_seconds"):
            if to_ms(started) - gap * 1000 <= at_ms <= to_ms(last) + gap * 1000:
                return True
        return False


# --- deriving -------------------------------------------------------------------------------------------


@dataclass
class DeriveReport:
    sightings: int = 0
    opened: int = 0
    closed: int = 0
    blips: int = 0
    late: int = 0
    weak: int = 0
    unpaired: int = 0
    no_policy: int = 0
    matched: int = 0
    candidates: int = 0
    last_event_id: int = 0
    approved: list[str] = field(default_factory=list)  # service numbers approved automatically


def _cursor() -> SessionCursor:
    SessionCursor.objects.get_or_create(name=CURSOR)
    return SessionCursor.objects.select_for_update().get(name=CURSOR)


def _open_sessions() -> dict[int, list[OpenSession]]:
    found: dict[int, list[OpenSession]] = defaultdict(list)
    for row in PresenceSession.objects.filter(status=SessionStatus.OPEN).order_by("first_event_id", "pk"):
        found[pair_key(row.volunteer_id, row.elder_id)].append(
            open_session(
                to_ms(row.started_at),
                to_ms(row.last_seen_at),
                first_event_id=row.first_event_id,
                last_event_id=row.last_event_id,
                volunteer_side=row.volunteer_sightings,
                elder_side=row.elder_sightings,
                gap_ms=row.merge_gap_seconds * 1000,
                min_ms=row.min_duration_seconds * 1000,
                policy_id=row.policy_id,
                db_id=row.pk,
                lag_ms=row.arrival_lag_ms,
                dirty=False,
            )
        )
    return dict(found)


def _chunks(sightings: Iterable[SightingLike], size: int) -> Iterator[list[SightingLike]]:
    it = iter(sightings)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _values(key: int, s: OpenSession | Finished, resolver: DbResolver) -> dict[str, object]:
    """The columns of a session row, from an open session (a list) or a finished one."""
    if isinstance(s, Finished):
        start, last = s.start_ms, s.last_ms
        values: dict[str, object] = {
            "first_event_id": s.first_event_id,
            "last_event_id": s.last_event_id,
            "volunteer_sightings": s.volunteer_side,
            "elder_sightings": s.elder_side,
            "merge_gap_seconds": s.gap_ms // 1000,
            "min_duration_seconds": s.min_ms // 1000,
            "policy_id": s.policy_id,
            "arrival_lag_ms": s.lag_ms,
            "status": SessionStatus.BLIP if s.blip else SessionStatus.CLOSED,
            "ended_at": from_ms(last),
        }
    else:
        start, last = s[START], s[LAST]
        values = {
            "first_event_id": s[FIRST_ID],
            "last_event_id": s[LAST_ID],
            "volunteer_sightings": s[VOLUNTEER_SIDE],
            "elder_sightings": s[ELDER_SIDE],
            "merge_gap_seconds": s[GAP] // 1000,
            "min_duration_seconds": s[MIN] // 1000,
            "policy_id": s[POLICY],
            "arrival_lag_ms": s[LAG],
            "status": SessionStatus.OPEN,
            "ended_at": None,
        }
    volunteer_id, elder_id = pair_of(key)
    values.update(
        volunteer_id=volunteer_id,
        elder_id=elder_id,
        started_at=from_ms(start),
        last_seen_at=from_ms(last),
        measured_seconds=(last - start) // 1000,
    )
    return values


UPDATED = [
    "first_event_id",
    "last_event_id",
    "volunteer_sightings",
    "elder_sightings",
    "policy_id",
    "arrival_lag_ms",
    "status",
    "ended_at",
    "started_at",
    "last_seen_at",
    "measured_seconds",
    "order_id",
    "candidate",
    "updated_at",
]


def sessions_derive(
    *,
    sightings: Iterable[SightingLike] | None = None,
    auto_approve: bool = True,
    settle_seconds: int | None = None,
) -> DeriveReport:
    """Derive sessions from the sightings stored since the last run (or from ``sightings``, in event-id
    order, for tests and replays; those at or below the cursor are skipped), match them to services, then
    approve the services the sensors agree with where the policy says so. ``settle_seconds`` overrides
    ``SENSING_SETTLE_SECONDS`` for a caller that knows nothing else is ingesting (0: read all committed)."""
    from timebank.sensing.selectors import sightings_stream

    report = DeriveReport()
    with transaction.atomic():
        cursor = _cursor()
        after = cursor.last_event_id
        resolver = DbResolver(previous_watermark_ms=cursor.watermark_ms)
        deriver = Deriver(
            resolver,
            lateness_ms=lateness_seconds() * 1000,
            watermark_ms=cursor.watermark_ms,
            last_event_id=after,
            open_sessions=_open_sessions(),
        )
        for chunk in _chunks(
            sightings if sightings is not None else sightings_stream(after, settle_seconds=settle_seconds),
            CHUNK,
        ):
            resolver.load({s.observer_member_id for s in chunk} | {s.peer_member_id for s in chunk})
            rows: list[Row] = [
                (s.event_id, (s.at - EPOCH) // ONE_MS, s.observer_member_id, s.peer_member_id, s.rssi)
                for s in chunk
                if s.event_id > after
            ]
            deriver.feed(rows)
        deriver.close_idle()
        _persist(deriver, resolver, report)
        cursor.last_event_id = deriver.last_event_id
        cursor.watermark_ms = deriver.watermark_ms
        cursor.save()
        counts = deriver.counts
        report.sightings, report.opened, report.late = counts.sightings, counts.opened, counts.late
        report.weak, report.unpaired, report.no_policy = counts.weak, counts.unpaired, counts.no_policy
        report.last_event_id = deriver.last_event_id
    if auto_approve:
        report.approved = [o.number for o in orders_auto_approve()]
    return report


def _persist(deriver: Deriver, resolver: DbResolver, report: DeriveReport) -> None:
    now = timezone.now()
    created: list[PresenceSession] = []
    changes: dict[int, dict[str, object]] = {}
    items: list[tuple[int, OpenSession | Finished]] = [(f.key, f) for f in deriver.finished]
    items += deriver.touched()
    for key, s in items:
        values = _values(key, s, resolver)
        db_id = s.db_id if isinstance(s, Finished) else s[DB_ID]
        if db_id is None:
            created.append(PresenceSession(region_id=resolver.region_of(pair_of(key)[1]), **values))
        else:
            changes[db_id] = values
    report.closed = sum(1 for f in deriver.finished if not f.blip)
    report.blips = len(deriver.finished) - report.closed
    if deriver.absorbed:
        PresenceSession.objects.filter(pk__in=deriver.absorbed).delete()
    changed = list(PresenceSession.objects.filter(pk__in=changes).order_by("pk"))
    for row in changed:
        for name, value in changes[row.pk].items():
            if name not in ("merge_gap_seconds", "min_duration_seconds"):
                setattr(row, name, value)
        row.updated_at = now
    # a service entered since (a paper card, times from the card) may explain a candidate still waiting
    recent = from_ms(deriver.watermark_ms) - dt.timedelta(days=REMATCH_DAYS)
    waiting = list(
        PresenceSession.objects.filter(candidate=Candidate.PENDING, started_at__gte=recent)
        .exclude(pk__in=changes)
        .order_by("pk")
    )
    matched_before = {row.pk: (row.order_id, row.candidate) for row in waiting}
    _match([*created, *changed, *waiting])
    report.matched = sum(1 for row in [*created, *changed] if row.order_id is not None)
    report.candidates = sum(1 for row in [*created, *changed] if row.candidate == Candidate.PENDING)
    changed += [row for row in waiting if (row.order_id, row.candidate) != matched_before[row.pk]]
    for row in changed:
        row.updated_at = now
    PresenceSession.objects.bulk_create(created, batch_size=2000)
    PresenceSession.objects.bulk_update(changed, UPDATED, batch_size=500)


def _match(sessions: list[PresenceSession]) -> None:
    """Match each session (blips aside) to its service, and make a closed one that has none a candidate of
    unplanned help. Decided candidates keep what was decided."""
    todo = [
        s
        for s in sessions
        if s.status != SessionStatus.BLIP and s.candidate in (Candidate.NONE, Candidate.PENDING)
    ]
    for s in sessions:
        if s.status == SessionStatus.BLIP:
            s.order_id, s.candidate = None, Candidate.NONE
    if not todo:
        return
    earliest = min(s.started_at for s in todo) - dt.timedelta(days=1)
    latest = max(s.last_seen_at for s in todo) + dt.timedelta(days=1)
    orders = ServiceOrder.objects.filter(
        Q(window_start__lt=latest, window_end__gt=earliest)
        | Q(checked_in_at__lt=latest, checked_out_at__gt=earliest),
        volunteer_id__in={s.volunteer_id for s in todo},
        elder_id__in={s.elder_id for s in todo},
        status__in=MATCHABLE,
    ).only(
        "pk",
        "elder_id",
        "volunteer_id",
        "status",
        "window_start",
        "window_end",
        "checked_in_at",
        "checked_out_at",
    )
    by_pair: dict[tuple[int, int], list[ServiceOrder]] = defaultdict(list)
    for order in orders:
        assert order.volunteer_id is not None
        by_pair[(order.volunteer_id, order.elder_id)].append(order)
    for s in todo:
        found = best_order(
            s.volunteer_id,
            s.elder_id,
            Interval(s.started_at, s.last_seen_at),
            by_pair.get((s.volunteer_id, s.elder_id), ()),
        )
        s.order_id = found.pk if found is not None else None
        closed_alone = found is None and s.status == SessionStatus.CLOSED
        s.candidate = Candidate.PENDING if closed_alone else Candidate.NONE


# --- automatic approval ---------------------------------------------------------------------------------


AUTO_APPROVE_PAGE = 500  # services read (and measured) at a time
AUTO_APPROVE_DAYS = 31  # services checked out longer ago than this wait for a reviewer


def orders_auto_approve() -> list[ServiceOrder]:
    """Approve confirmed services whose measured and claimed time agree within the tolerance of the policy in
    force on the day of the service, where that policy switches automatic approval on. Only services checked
    out in the last ``AUTO_APPROVE_DAYS`` days that a session seen by the elder's devices meets are read,
    oldest first (so a daily cap credits services in the order they were given), a page at a time. Services
    the care rules keep for a reviewer (an overlap, times entered by hand, a confirmation by staff) are not
    even considered; one whose credit fails (savings, budget, daily cap) stays in the queue."""
    sensed = PresenceSession.objects.filter(
        volunteer_id=OuterRef("volunteer_id"),
        elder_id=OuterRef("elder_id"),
        elder_sightings__gt=0,
        started_at__lt=OuterRef("checked_out_at"),
        last_seen_at__gt=OuterRef("checked_in_at"),
    ).exclude(status=SessionStatus.BLIP)
    waiting = (
        ServiceOrder.objects.filter(
            status=Status.CONFIRMED,
            overlap_flag=False,
            confirmation_method__in=care.ELDER_CONFIRMATIONS,
            times_entered_by__isnull=True,
            volunteer__isnull=False,
            checked_in_at__isnull=False,
            checked_out_at__gte=clock.now() - dt.timedelta(days=AUTO_APPROVE_DAYS),
        )
        .exclude(source__in=[Source.PAPER, Source.IMPORT])
        .filter(Exists(sensed))
        .select_related("region")
        .order_by("pk")
    )
    approved: list[ServiceOrder] = []
    after = 0
    while True:
        page = list(waiting.filter(pk__gt=after)[:AUTO_APPROVE_PAGE])
        if not page:
            return approved
        after = page[-1].pk
        approved.extend(_auto_approve_page(page))


def _auto_approve_page(candidates: list[ServiceOrder]) -> list[ServiceOrder]:
    resolver = DbResolver(previous_watermark_ms=0)
    switched_on: list[tuple[ServiceOrder, Policy]] = []
    for order in candidates:
        assert order.checked_in_at is not None
        policy = resolver.policy(order.region_id, local_day(order.checked_in_at))
        if policy is not None and policy.sensing_auto_approve:
            switched_on.append((order, policy))
    measured = measured_for_orders((order for order, _policy in switched_on), elder_seen=True)
    approved = []
    for order, policy in switched_on:
        m = measured.get(order.pk)
        tolerance = policy.sensing_tolerance_minutes
        if m is None or not m.agrees(tolerance):
            continue
        numbers = ", ".join(f"P{pk:06d}" for pk in m.session_ids)
        note = _(
            "Approved automatically: the sensors measured %(measured)d min together, %(claimed)d min were "
            "claimed, within the tolerance of %(tolerance)d min (sessions %(sessions)s)."
        ) % {"measured": m.minutes, "claimed": m.claimed_minutes, "tolerance": tolerance, "sessions": numbers}
        evidence = {
            "reason": "sensors_agree",
            "measured_minutes": m.minutes,
            "claimed_minutes": m.claimed_minutes,
            "tolerance_minutes": tolerance,
            "sessions": list(m.session_ids),
            "sensing_policy": policy.pk,
        }
        try:
            approved.append(care.order_auto_approve(order=order, evidence=evidence, note=note))
        except ApplicationError:
            continue  # it waits for a reviewer, who sees why when approving it
    return approved


# --- unplanned help -------------------------------------------------------------------------------------


def _decidable(actor: User, session: PresenceSession) -> PresenceSession:
    """The candidate, locked, if ``actor`` may decide on it: the elder herself, or staff who manage care in
    her community and took no part. Anyone who may not see it is told it does not exist."""
    if not candidate_visible(actor, session):
        raise NotFound(code="sensing_candidate_not_found")
    locked = (
        PresenceSession.objects.select_for_update(of=("self",))
        .select_related("volunteer", "elder", "elder__home_region", "region")
        .get(pk=session.pk)
    )
    if actor.member_id != locked.elder_id:
        access_check(actor, Perm.CARE_MANAGE, locked.region)
        if actor.member_id == locked.volunteer_id:
            raise PermissionDenied(
                _("You took part in this, so another staff member decides on it."), code="care_own_service"
            )
    if locked.candidate != Candidate.PENDING:
        raise Conflict(
            _("This help was already decided on: %(state)s.") % {"state": Candidate(locked.candidate).label},
            code="sensing_candidate_decided",
        )
    return locked


def candidate_record(
    *,
    actor: User,
    session: PresenceSession,
    category: str,
    funding: str,
    payer: Member | None = None,
    notes: str = "",
) -> ServiceOrder:
    """Record unplanned help as a service with the times the sensors measured, through the care rules for a
    service recorded afterwards (``care.sensed_service_record``)."""
    with transaction.atomic():
        locked = _decidable(actor, session)
        assert locked.ended_at is not None
        mark = _("Measured by proximity sensors (%(number)s).") % {"number": locked.number}
        order = care.sensed_service_record(
            actor=actor,
            elder=locked.elder,
            volunteer=locked.volunteer,
            category=category,
            started_at=locked.started_at,
            ended_at=locked.ended_at,
            funding=funding,
            payer=payer,
            notes=f"{mark} {notes.strip()}".strip()[:500],
            evidence={"sessions": [locked.pk], "measured_seconds": locked.measured_seconds},
        )
        locked.order = order
        locked.candidate = Candidate.RECORDED
        locked.decided_by = actor
        locked.decided_at = clock.now()
        locked.save(update_fields=["order", "candidate", "decided_by", "decided_at", "updated_at"])
        audit_record(
            actor=actor,
            event_type="sensing.candidate.recorded",
            subject=locked,
            region=locked.region,
            old={"candidate": Candidate.PENDING},
            new={"candidate": Candidate.RECORDED, "order": order.pk},
            on_behalf_of=locked.elder,
        )
    return order


def candidate_dismiss(*, actor: User, session: PresenceSession, reason: str) -> PresenceSession:
    """Dismiss unplanned help (a neighbour's chat, a passing visit), saying why."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed.field("reason", _("Say why."), code="sensing_reason_required")
    if len(reason) > MAX_REASON:
        raise ValidationFailed.field(
            "reason", _("At most %(n)d characters.") % {"n": MAX_REASON}, code="sensing_reason_too_long"
        )
    with transaction.atomic():
        locked = _decidable(actor, session)
        locked.candidate = Candidate.DISMISSED
        locked.decided_by = actor
        locked.decided_at = clock.now()
        locked.dismiss_reason = reason
        locked.save(update_fields=["candidate", "decided_by", "decided_at", "dismiss_reason", "updated_at"])
        audit_record(
            actor=actor,
            event_type="sensing.candidate.dismissed",
            subject=locked,
            region=locked.region,
            old={"candidate": Candidate.PENDING},
            new={"candidate": Candidate.DISMISSED, "reason": reason},
            on_behalf_of=locked.elder,
        )
    return locked
