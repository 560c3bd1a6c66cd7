"""The life of a service: every move the table allows is made by a real service, and a move the table does
not allow is refused with ``care_illegal_transition`` and leaves no trace (no audit record, no posting, no
hold, no notice)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import time_machine

from timebank.audit.models import AuditEvent
from timebank.care import services as care
from timebank.care.models import ConfirmMethod, Dispute, Outcome, ServiceOrder, Status
from timebank.care.states import ALLOWED, RESOLUTIONS, TERMINAL, IllegalTransition, transition_check
from timebank.care.tests.conftest import at, balance, user_of
from timebank.care.tests.flows import confirmed_by_elder, refused, reload, worked, world
from timebank.common.errors import ApplicationError
from timebank.people.models import Member, User

S = Status


@dataclass
class Cast:
    """王阿婆 asks for an hour tomorrow at 10:00, paid from her savings; 李志强 serves; the station records
    and the reviewer reviews."""

    post: Callable[..., ServiceOrder]
    elder: Member
    helper: Member
    neighbour: Member
    station: User
    reviewer: User

    def open(self) -> ServiceOrder:
        return self.post()

    def assigned(self) -> ServiceOrder:
        return care.order_accept(actor=user_of(self.helper), order=self.open())

    def in_progress(self) -> ServiceOrder:
        order = self.assigned()
        with time_machine.travel(at(1, 10), tick=False):
            return care.order_check_in(actor=user_of(self.helper), order=order)

    def completed(self) -> ServiceOrder:
        return worked(self.assigned(), self.helper, at(1, 10), at(1, 11))

    def confirmed(self) -> ServiceOrder:
        return confirmed_by_elder(self.completed())

    def credited(self) -> ServiceOrder:
        return care.order_approve(actor=self.reviewer, order=self.confirmed())

    def disputed(self, reach: Callable[[Cast], ServiceOrder]) -> ServiceOrder:
        order = reach(self)
        care.order_dispute(actor=user_of(self.elder), order=order, reason="时间记多了")
        return reload(order)

    def cancelled(self) -> ServiceOrder:
        return care.order_cancel(actor=user_of(self.elder), order=self.assigned(), reason="住院了")

    def expired(self) -> ServiceOrder:
        order = self.open()
        care.orders_expire(now=at(2))
        return reload(order)

    def no_show(self) -> ServiceOrder:
        order = self.assigned()
        with time_machine.travel(at(1, 10, 30), tick=False):
            return care.order_no_show(actor=user_of(self.elder), order=order)

    def rejected(self) -> ServiceOrder:
        return care.order_reject(actor=self.reviewer, order=self.confirmed(), reason="没有去")

    def reversed(self) -> ServiceOrder:
        order = self.disputed(Cast.credited)
        resolve(self, order, Outcome.VOID)
        return reload(order)


@pytest.fixture
def cast(
    post: Callable[..., ServiceOrder],
    old_elder: Member,
    helper: Member,
    neighbour_helper: Member,
    station: User,
    reviewer: User,
) -> Cast:
    return Cast(post, old_elder, helper, neighbour_helper, station, reviewer)


def resolve(c: Cast, order: ServiceOrder, outcome: str, minutes: int | None = None) -> Dispute:
    dispute = Dispute.objects.get(order=order, resolved_at__isnull=True)
    return care.dispute_resolve(
        actor=c.reviewer, dispute=dispute, outcome=outcome, resolution="电话核实", corrected_minutes=minutes
    )


def times_recorded(c: Cast, order: ServiceOrder) -> Any:
    start, end = at(1, 10), at(1, 11)  # read the calendar before the clock moves
    with time_machine.travel(at(1, 12), tick=False):
        return care.order_times_record(
            actor=c.station, order=order, started_at=start, ended_at=end, card_ref="P-17"
        )


def checked_in_at(c: Cast, order: ServiceOrder, moment: dt.datetime) -> ServiceOrder:
    with time_machine.travel(moment, tick=False):
        return care.order_check_in(actor=user_of(c.helper), order=order)


def checked_out_at(c: Cast, order: ServiceOrder, moment: dt.datetime) -> ServiceOrder:
    with time_machine.travel(moment, tick=False):
        return care.order_check_out(actor=user_of(c.helper), order=order)


def no_show(c: Cast, order: ServiceOrder) -> ServiceOrder:
    with time_machine.travel(at(1, 10, 30), tick=False):
        return care.order_no_show(actor=user_of(c.elder), order=order, note="等了半小时")


@dataclass(frozen=True)
class Move:
    start: Callable[[Cast], ServiceOrder]
    act: Callable[[Cast, ServiceOrder], Any]
    # approval passes through "approved" on its way to "credited" in one call
    starts: str | None = None
    lands: str | None = None


MOVES: dict[tuple[str, str], Move] = {
    (S.OPEN, S.ASSIGNED): Move(Cast.open, lambda c, o: care.order_accept(actor=user_of(c.helper), order=o)),
    (S.OPEN, S.CANCELLED): Move(
        Cast.open, lambda c, o: care.order_cancel(actor=user_of(c.elder), order=o, reason="不需要了")
    ),
    (S.OPEN, S.EXPIRED): Move(Cast.open, lambda c, o: care.orders_expire(now=at(2))),
    (S.ASSIGNED, S.IN_PROGRESS): Move(Cast.assigned, lambda c, o: checked_in_at(c, o, at(1, 9, 50))),
    (S.ASSIGNED, S.OPEN): Move(
        Cast.assigned, lambda c, o: care.order_withdraw(actor=user_of(c.helper), order=o, reason="临时出差")
    ),
    (S.ASSIGNED, S.CANCELLED): Move(
        Cast.assigned, lambda c, o: care.order_cancel(actor=c.station, order=o, reason="老人住院")
    ),
    (S.ASSIGNED, S.NO_SHOW): Move(Cast.assigned, lambda c, o: no_show(c, o)),
    (S.ASSIGNED, S.COMPLETED): Move(Cast.assigned, times_recorded),
    (S.IN_PROGRESS, S.COMPLETED): Move(Cast.in_progress, lambda c, o: checked_out_at(c, o, at(1, 11))),
    (S.IN_PROGRESS, S.CANCELLED): Move(
        Cast.in_progress, lambda c, o: care.order_cancel(actor=c.station, order=o, reason="上门途中老人送医")
    ),
    (S.COMPLETED, S.CONFIRMED): Move(Cast.completed, lambda c, o: confirmed_by_elder(o)),
    (S.COMPLETED, S.DISPUTED): Move(
        Cast.completed, lambda c, o: care.order_dispute(actor=user_of(c.elder), order=o, reason="没来")
    ),
    (S.COMPLETED, S.REJECTED): Move(
        Cast.completed, lambda c, o: care.order_reject(actor=c.reviewer, order=o, reason="记录有误")
    ),
    (S.CONFIRMED, S.APPROVED): Move(
        Cast.confirmed, lambda c, o: care.order_approve(actor=c.reviewer, order=o), lands=S.CREDITED
    ),
    (S.CONFIRMED, S.DISPUTED): Move(
        Cast.confirmed, lambda c, o: care.order_dispute(actor=user_of(c.helper), order=o, reason="少记了")
    ),
    (S.CONFIRMED, S.REJECTED): Move(
        Cast.confirmed, lambda c, o: care.order_reject(actor=c.reviewer, order=o, reason="重复记录")
    ),
    (S.APPROVED, S.CREDITED): Move(
        Cast.confirmed, lambda c, o: care.order_approve(actor=c.reviewer, order=o), starts=S.CONFIRMED
    ),
    (S.CREDITED, S.DISPUTED): Move(
        Cast.credited, lambda c, o: care.order_dispute(actor=user_of(c.elder), order=o, reason="只待了半小时")
    ),
    (S.DISPUTED, S.COMPLETED): Move(
        lambda c: c.disputed(Cast.completed), lambda c, o: resolve(c, o, Outcome.STANDS)
    ),
    (S.DISPUTED, S.CONFIRMED): Move(
        lambda c: c.disputed(Cast.confirmed), lambda c, o: resolve(c, o, Outcome.STANDS)
    ),
    (S.DISPUTED, S.CREDITED): Move(
        lambda c: c.disputed(Cast.credited), lambda c, o: resolve(c, o, Outcome.STANDS)
    ),
    (S.DISPUTED, S.REJECTED): Move(
        lambda c: c.disputed(Cast.confirmed), lambda c, o: resolve(c, o, Outcome.VOID)
    ),
    (S.DISPUTED, S.REVERSED): Move(
        lambda c: c.disputed(Cast.credited), lambda c, o: resolve(c, o, Outcome.VOID)
    ),
}


def moves_of(current: str) -> frozenset[str]:
    """Where a service may go from ``current``: the table, and for a disputed one its resolutions."""
    return RESOLUTIONS if current == S.DISPUTED else ALLOWED[current]


def test_every_allowed_move_has_a_service() -> None:
    # given the table of allowed moves, and the resolutions of a dispute
    edges = {(current, target) for current in Status.values for target in moves_of(current)}
    # then each of them is exercised below, and nothing else
    assert set(MOVES) == edges


@pytest.mark.parametrize(("current", "target"), sorted(MOVES), ids=lambda s: str(s))
def test_allowed_move_through_its_service(cast: Cast, current: str, target: str) -> None:
    # given a service in the starting state
    move = MOVES[(current, target)]
    order = move.start(cast)
    assert order.status == (move.starts or current)
    # when the service for the move is called
    move.act(cast, order)
    # then the service is where the move leads, and the audit log says who moved it from where to where
    assert reload(order).status == (move.lands or target)
    moves = [
        (e.old or {}).get("status") == current and (e.new or {}).get("status") == target
        for e in AuditEvent.objects.filter(subject_type="care.serviceorder", subject_id=str(order.pk))
    ]
    assert any(moves)


def test_a_withdrawn_service_can_be_taken_again(cast: Cast) -> None:
    # given a volunteer withdrew from a service
    order = cast.assigned()
    care.order_withdraw(actor=user_of(cast.helper), order=order, reason="腰疼")
    # when the neighbour takes it
    order = care.order_accept(actor=user_of(cast.neighbour), order=reload(order))
    # then it is hers, and the elder's savings are held once
    assert order.status == S.ASSIGNED and order.volunteer == cast.neighbour
    assert balance(cast.elder) == (600, 60)


# --- refused moves ------------------------------------------------------------------------------------------

REFUSED: dict[str, tuple[Callable[[Cast], ServiceOrder], Callable[[Cast, ServiceOrder], Any]]] = {
    "approve an open request": (Cast.open, lambda c, o: care.order_approve(actor=c.reviewer, order=o)),
    "approve an unconfirmed service": (
        Cast.completed,
        lambda c, o: care.order_approve(actor=c.reviewer, order=o),
    ),
    "approve a rejected service": (Cast.rejected, lambda c, o: care.order_approve(actor=c.reviewer, order=o)),
    "approve a reversed service": (Cast.reversed, lambda c, o: care.order_approve(actor=c.reviewer, order=o)),
    "check in to a cancelled service": (
        Cast.cancelled,
        lambda c, o: checked_in_at(c, o, at(1, 10)),
    ),
    "check in twice": (Cast.in_progress, lambda c, o: checked_in_at(c, o, at(1, 10, 5))),
    "check in to a completed service": (Cast.completed, lambda c, o: checked_in_at(c, o, at(1, 10, 30))),
    "check in after a no-show": (Cast.no_show, lambda c, o: checked_in_at(c, o, at(1, 10, 40))),
    "confirm an open request": (Cast.open, lambda c, o: confirmed_by_elder(o)),
    "confirm a service still in progress": (Cast.in_progress, lambda c, o: confirmed_by_elder(o)),
    "confirm twice": (Cast.confirmed, lambda c, o: confirmed_by_elder(o)),
    "confirm twice with the PIN": (
        Cast.confirmed,
        lambda c, o: care.order_confirm(
            actor=user_of(c.helper), order=o, method=ConfirmMethod.PIN, secret="1"
        ),
    ),
    "confirm a credited service": (Cast.credited, lambda c, o: confirmed_by_elder(o)),
    "cancel a completed service": (
        Cast.completed,
        lambda c, o: care.order_cancel(actor=user_of(c.elder), order=o, reason="不要了"),
    ),
    "cancel a credited service": (
        Cast.credited,
        lambda c, o: care.order_cancel(actor=c.station, order=o, reason="搞错了"),
    ),
    "cancel an expired request": (
        Cast.expired,
        lambda c, o: care.order_cancel(actor=user_of(c.elder), order=o, reason="不要了"),
    ),
    "take an assigned service": (
        Cast.assigned,
        lambda c, o: care.order_accept(actor=user_of(c.neighbour), order=o),
    ),
    "assign a credited service": (
        Cast.credited,
        lambda c, o: care.order_assign(actor=c.station, order=o, volunteer=c.neighbour),
    ),
    "take a cancelled request": (
        Cast.cancelled,
        lambda c, o: care.order_accept(actor=user_of(c.neighbour), order=o),
    ),
    "withdraw from a service in progress": (
        Cast.in_progress,
        lambda c, o: care.order_withdraw(actor=user_of(c.helper), order=o, reason="有事"),
    ),
    "withdraw from an open request": (
        Cast.open,
        lambda c, o: care.order_withdraw(actor=c.station, order=o, reason="有事"),
    ),
    "no-show of a completed service": (Cast.completed, lambda c, o: no_show(c, o)),
    "no-show of an open request": (Cast.open, lambda c, o: no_show(c, o)),
    "dispute an open request": (
        Cast.open,
        lambda c, o: care.order_dispute(actor=user_of(c.elder), order=o, reason="?"),
    ),
    "dispute an assigned service": (
        Cast.assigned,
        lambda c, o: care.order_dispute(actor=user_of(c.elder), order=o, reason="?"),
    ),
    "dispute a reversed service": (
        Cast.reversed,
        lambda c, o: care.order_dispute(actor=user_of(c.elder), order=o, reason="?"),
    ),
    "reject an open request": (
        Cast.open,
        lambda c, o: care.order_reject(actor=c.reviewer, order=o, reason="无"),
    ),
    "reject a credited service": (
        Cast.credited,
        lambda c, o: care.order_reject(actor=c.reviewer, order=o, reason="无"),
    ),
    "enter the times of a confirmed service": (Cast.confirmed, times_recorded),
    "enter the times of a credited service": (Cast.credited, times_recorded),
    "enter the times of an open request": (Cast.open, times_recorded),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_move(cast: Cast, name: str) -> None:
    # given a service in a state the move does not start from
    start, act = REFUSED[name]
    order = start(cast)
    before = balance(cast.elder), balance(cast.helper)
    # when the move is tried, then it is refused and nothing is written
    with refused("care_illegal_transition") as caught:
        act(cast, order)
    assert caught.value.extra["from"] == order.status
    assert (balance(cast.elder), balance(cast.helper)) == before


@pytest.mark.parametrize(
    "name",
    ["confirm", "confirm as staff", "reject", "enter the times"],
)
def test_a_disputed_service_waits_for_the_dispute(cast: Cast, name: str) -> None:
    """While a complaint is open only its resolution moves the service; confirming, rejecting or re-entering
    it would leave the complaint open on a service that moved on (and a rejected one keeps its credit)."""
    # given a credited service the elder complains about
    order = cast.disputed(Cast.credited)
    acts: dict[str, Callable[[], Any]] = {
        "confirm": lambda: confirmed_by_elder(order),
        "confirm as staff": lambda: care.order_confirm(
            actor=cast.station, order=order, method=ConfirmMethod.STAFF, note="电话确认"
        ),
        "reject": lambda: care.order_reject(actor=cast.reviewer, order=order, reason="不批准"),
        "enter the times": lambda: times_recorded(cast, order),
    }
    before = world()
    # when the service is moved around the complaint
    with pytest.raises(ApplicationError):
        acts[name]()
    # then it is refused: the service is still disputed, the complaint still open, the credit untouched
    assert reload(order).status == S.DISPUTED
    assert Dispute.objects.get(order=order).resolved_at is None
    assert world() == before


def test_a_complaint_about_a_completed_service_cannot_be_bypassed_by_confirming(cast: Cast) -> None:
    # given the volunteer complains about a completed service before the elder confirmed it
    order = cast.completed()
    dispute = care.order_dispute(actor=user_of(cast.helper), order=order, reason="少记了十分钟")
    # when the elder then confirms it on her phone
    with pytest.raises(ApplicationError):
        confirmed_by_elder(order)
    # then the complaint can still be resolved (it was not overtaken by the confirmation)
    care.dispute_resolve(actor=cast.reviewer, dispute=dispute, outcome=Outcome.STANDS, resolution="核实无误")
    assert reload(order).status == S.COMPLETED


# --- the table itself ---------------------------------------------------------------------------------------

PAIRS = [(a, b) for a in Status.values for b in Status.values]


@pytest.mark.parametrize("resolving", [False, True], ids=["moving", "resolving"])
@pytest.mark.parametrize(("current", "target"), PAIRS)
def test_transition_check_follows_the_table(current: str, target: str, resolving: bool) -> None:
    allowed = moves_of(current) if resolving else ALLOWED[current]
    if target in allowed:
        transition_check(current, target, resolving=resolving)
    else:
        with pytest.raises(IllegalTransition) as caught:
            transition_check(current, target, resolving=resolving)
        assert caught.value.code == "care_illegal_transition"
        assert caught.value.extra == {"from": current, "to": target}


def test_every_status_is_in_the_table_and_terminal_ones_lead_nowhere() -> None:
    assert set(ALLOWED) == set(Status.values)
    assert {S.CANCELLED, S.EXPIRED, S.NO_SHOW, S.REJECTED, S.REVERSED} == TERMINAL
    # only its resolution moves a disputed service
    assert ALLOWED[S.DISPUTED] == frozenset()
    # every state can be reached from an open request
    reached: set[str] = {S.OPEN}
    frontier: list[str] = [S.OPEN]
    while frontier:
        for target in moves_of(frontier.pop()):
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(Status.values)


def test_only_the_station_cancels_a_service_in_progress(cast: Cast) -> None:
    # given a visit in progress
    order = Cast.in_progress(cast)
    # when the elder tries to cancel it, then only the station may (it releases the hold)
    with refused("care_cancel_in_progress"):
        care.order_cancel(actor=user_of(cast.elder), order=order, reason="不要了")
    care.order_cancel(actor=cast.station, order=order, reason="上门途中老人送医")
    assert balance(cast.elder)[1] == 0
