"""Which service a session belongs to, and the measured time of a service: the rules on plain values, then
through the database (the right service and not another elder's or volunteer's, several sessions to one
service, two services back to back, and a candidate a paper record explains later)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from timebank.care import services as care
from timebank.care.models import Funding, Status
from timebank.care.tests.conftest import at, deposit, member, user_of
from timebank.sensing.matching import Interval, best_order, measured_seconds
from timebank.sensing.models import Candidate, PresenceSession
from timebank.sensing.presence import sessions_derive
from timebank.sensing.presence_selectors import measured_for_orders, order_measured
from timebank.sensing.tests.presence_kit import *  # noqa: F403
from timebank.web.tests.care_fixtures import *  # noqa: F403
from timebank.web.tests.care_fixtures import done

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


@dataclass
class Order:
    pk: int
    elder_id: int
    volunteer_id: int | None
    status: str = Status.COMPLETED
    window_start: dt.datetime = T0
    window_end: dt.datetime = T0 + 60 * MIN
    checked_in_at: dt.datetime | None = None
    checked_out_at: dt.datetime | None = None


def minutes(start: int, end: int) -> Interval:
    return Interval(T0 + start * MIN, T0 + end * MIN)


# --- the rules ----------------------------------------------------------------------------------------------


def test_a_session_belongs_to_the_service_of_its_own_pair():
    orders = [
        Order(1, elder_id=11, volunteer_id=2),  # another volunteer
        Order(2, elder_id=12, volunteer_id=1),  # another elder
        Order(3, elder_id=11, volunteer_id=1),
        Order(4, elder_id=11, volunteer_id=1, status=Status.CANCELLED),
    ]
    found = best_order(1, 11, minutes(5, 50), orders)
    assert found is not None and found.pk == 3


def test_of_two_services_the_one_it_overlaps_most_wins_and_a_session_outside_every_span_has_none():
    orders = [
        Order(7, 11, 1, window_start=T0, window_end=T0 + 60 * MIN),
        Order(5, 11, 1, window_start=T0 + 60 * MIN, window_end=T0 + 120 * MIN),
    ]
    assert best_order(1, 11, minutes(40, 110), orders) is orders[1]
    assert best_order(1, 11, minutes(30, 90), orders) is orders[1]  # a tie: the older service
    assert best_order(1, 11, minutes(130, 150), orders) is None


def test_a_check_in_before_the_window_and_a_check_out_after_it_widen_the_span():
    order = Order(
        1, 11, 1, checked_in_at=T0 - 40 * MIN, checked_out_at=T0 + 90 * MIN, status=Status.CONFIRMED
    )
    assert best_order(1, 11, minutes(-45, -35), [order]) is order
    assert best_order(1, 11, minutes(80, 85), [order]) is order


def test_measured_time_is_what_falls_within_the_claimed_time_counted_once():
    order = Order(1, 11, 1, checked_in_at=T0, checked_out_at=T0 + 60 * MIN)
    # arriving 10 minutes early adds nothing; a break splits the time; drift overlaps two sessions
    assert measured_seconds(order, [minutes(-10, 30), minutes(40, 60)]) == 50 * 60
    assert measured_seconds(order, [minutes(0, 40), minutes(-2, 38)]) == 40 * 60
    assert measured_seconds(order, []) == 0


def test_before_check_in_the_window_is_claimed_and_during_the_visit_the_time_so_far():
    planned = Order(1, 11, 1, status=Status.ASSIGNED)
    assert measured_seconds(planned, [minutes(-30, 30)]) == 30 * 60
    going_on = Order(1, 11, 1, status=Status.IN_PROGRESS, checked_in_at=T0 + 5 * MIN)
    assert measured_seconds(going_on, [minutes(0, 45)]) == 40 * 60


# --- through the database ---------------------------------------------------------------------------------


def test_the_session_goes_to_the_right_service_not_another_elders_or_volunteers(
    post, helper, neighbour_helper, old_elder, station, tree, events
):
    # given 李志强's service for 王阿婆 at 10, 陈美华's for her at 10, and 李志强's for another elder at 14
    other_elder = member(station, tree["310101023001"], "钱阿婆", birth=dt.date(1941, 1, 1), is_elder=True)
    deposit(other_elder, 600)
    mine = care.order_accept(actor=user_of(helper), order=post())
    theirs = care.order_accept(actor=user_of(neighbour_helper), order=post())
    elsewhere = care.order_assign(
        actor=station,
        order=post(
            elder=other_elder,
            actor=station,
            window_start=at(1, 14),
            window_end=at(1, 15),
            funding=Funding.OWN,
        ),
        volunteer=helper,
    )

    # when 李志强 and 王阿婆 are seen together 10:00–10:50
    sessions_derive(
        sightings=events.together(helper, old_elder, at(1, 10), at(1, 10, 50)) + events.later(at(1, 16)),
        auto_approve=False,
    )

    # then the session is his service's, and only it has measured time
    (session,) = PresenceSession.objects.all()
    assert session.order_id == mine.pk
    measured = measured_for_orders([mine, theirs, elsewhere])
    assert measured[mine.pk].minutes == 50
    assert measured[theirs.pk].session_ids == () and measured[theirs.pk].minutes == 0
    assert measured[elsewhere.pk].session_ids == ()


def test_several_sessions_add_up_for_one_service(confirmed, helper, old_elder, events):
    # given a visit 10:00–11:00 in which the volunteer went out to the shop for 15 minutes
    order = confirmed(hour=10, minutes=60)
    sessions_derive(
        sightings=events.together(helper, old_elder, at(1, 10), at(1, 10, 25))
        + events.together(helper, old_elder, at(1, 10, 40), at(1, 11))
        + events.later(at(1, 13)),
        auto_approve=False,
    )

    # then both sessions are the service's and its measured time is their sum
    assert list(PresenceSession.objects.values_list("order_id", flat=True)) == [order.pk, order.pk]
    measured = order_measured(order)
    assert measured is not None and (measured.minutes, len(measured.session_ids)) == (45, 2)
    assert not measured.agrees()  # 15 minutes short, beyond the tolerance of 10


def test_one_session_over_two_services_back_to_back_measures_each_in_its_own_time(
    post, helper, old_elder, events
):
    # given two services of the same pair, 10–11 and 11–12, done in one go
    first = care.order_accept(actor=user_of(helper), order=post())
    second = care.order_accept(
        actor=user_of(helper), order=post(window_start=at(1, 11), window_end=at(1, 12), category="assistance")
    )
    first = done(first, helper, at(1, 10), at(1, 11))
    second = done(second, helper, at(1, 11), at(1, 12))
    sessions_derive(
        sightings=events.together(helper, old_elder, at(1, 10), at(1, 12)) + events.later(at(1, 14)),
        auto_approve=False,
    )

    # then each service measures its own hour
    measured = measured_for_orders([first, second])
    assert (measured[first.pk].minutes, measured[second.pk].minutes) == (60, 60)


def test_help_with_no_service_is_a_candidate_until_a_paper_record_explains_it(
    station, helper, old_elder, events
):
    # given 李志强 and 王阿婆 together yesterday 15:00–15:40 with no service planned
    sessions_derive(
        sightings=events.together(helper, old_elder, at(-1, 15), at(-1, 15, 40)) + events.later(at(-1, 18)),
        auto_approve=False,
    )
    (session,) = PresenceSession.objects.all()
    assert (session.candidate, session.order_id) == (Candidate.PENDING, None)

    # when the station enters his paper card for that visit, and the next run comes
    paper = care.paper_record_create(
        actor=station,
        elder=old_elder,
        volunteer=helper,
        category="assistance",
        started_at=at(-1, 15),
        ended_at=at(-1, 15, 45),
        funding=Funding.OWN,
    )
    sessions_derive(sightings=[], auto_approve=False)

    # then the session is that service's and no candidate any more
    session.refresh_from_db()
    assert (session.candidate, session.order_id) == (Candidate.NONE, paper.pk)
