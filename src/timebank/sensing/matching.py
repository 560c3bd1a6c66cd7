"""Which service a co-presence session belongs to, and how much time the sessions measured for a service.

A session belongs to a service of the same volunteer and elder whose time it overlaps: the service's *span*
runs from the earlier of its window's start and its check-in to the later of its window's end and its
check-out (a volunteer may check in early or stay late). Of several such services the one it overlaps most
wins (then the older one). Services that never happened or were refused do not take sessions.

A service's *measured time* is the time its pair's sessions overlap what is claimed: from check-in to
check-out once both are on record (from check-in until the latest sighting while the visit goes on), else
the window. Time together outside the claimed interval — arriving early, chatting at the door — adds
nothing, so measured time shows whether the claimed time was spent together; sessions that cover two
back-to-back services count for each in its own interval.

Nothing here writes; the functions take plain values so that the rules are tested without a database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from timebank.care.models import Status

# Services whose time may have been spent together: planned, going on, done or in review.
MATCHABLE = frozenset(
    {
        Status.ASSIGNED,
        Status.IN_PROGRESS,
        Status.COMPLETED,
        Status.CONFIRMED,
        Status.APPROVED,
        Status.CREDITED,
        Status.DISPUTED,
    }
)


class OrderTimes(Protocol):
    pk: int
    elder_id: int
    volunteer_id: int | None
    status: str
    window_start: dt.datetime
    window_end: dt.datetime
    checked_in_at: dt.datetime | None
    checked_out_at: dt.datetime | None


@dataclass(frozen=True)
class Interval:
    """A session's time together: ``start`` to ``end`` (the last sighting while it is open)."""

    start: dt.datetime
    end: dt.datetime


def overlap_seconds(
    a_start: dt.datetime, a_end: dt.datetime, b_start: dt.datetime, b_end: dt.datetime
) -> int:
    """Whole seconds the two intervals share (0 if they do not meet)."""
    start, end = max(a_start, b_start), min(a_end, b_end)
    return int((end - start).total_seconds()) if end > start else 0


def order_span(order: OrderTimes) -> tuple[dt.datetime, dt.datetime]:
    """The stretch of time a session must meet to belong to ``order``."""
    start = order.window_start
    end = order.window_end
    if order.checked_in_at is not None:
        start = min(start, order.checked_in_at)
        end = max(end, order.checked_in_at)
    if order.checked_out_at is not None:
        end = max(end, order.checked_out_at)
    return start, end


def claimed_interval(order: OrderTimes, *, until: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """What ``order`` claims: check-in to check-out; from check-in to ``until`` while it goes on; else its
    window."""
    if order.checked_in_at is not None:
        end = order.checked_out_at if order.checked_out_at is not None else max(until, order.checked_in_at)
        return order.checked_in_at, end
    return order.window_start, order.window_end


def best_order(
    volunteer_id: int, elder_id: int, session: Interval, orders: Iterable[OrderTimes]
) -> OrderTimes | None:
    """The service ``session`` belongs to, or None (unplanned help)."""
    best: OrderTimes | None = None
    best_overlap = -1
    for order in orders:
        if order.elder_id != elder_id or order.volunteer_id != volunteer_id or order.status not in MATCHABLE:
            continue
        start, end = order_span(order)
        if session.start > end or session.end < start:
            continue
        shared = overlap_seconds(session.start, session.end, start, end)
        if shared > best_overlap or (shared == best_overlap and best is not None and order.pk < best.pk):
            best, best_overlap = order, shared
    return best


def measured_seconds(order: OrderTimes, sessions: Sequence[Interval]) -> int:
    """Seconds the pair's ``sessions`` spent together within what ``order`` claims; time that two sessions
    share (the two sides of a drifting pair of clocks) counts once."""
    until = max((s.end for s in sessions), default=order.window_end)
    low, high = claimed_interval(order, until=until)
    total = dt.timedelta()
    reached = low
    for s in sorted(sessions, key=lambda s: s.start):
        start, end = max(s.start, reached), min(s.end, high)
        if end > start:
            total += end - start
            reached = end
    return int(total.total_seconds())
