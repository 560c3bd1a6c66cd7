"""The dispatch board's reads: open requests of the staff member's subtree, and for each the volunteers who
could take it — allowed by the rules, free at that time, nearest first, then whoever was credited least this
month."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager

from timebank.care import services as care
from timebank.care.models import ServiceOrder, Status
from timebank.care.selectors import orders_to_dispatch, volunteers_for
from timebank.care.tests.conftest import at, member, user_of
from timebank.care.tests.flows import confirmed_by_elder, worked
from timebank.people import services as people
from timebank.people.models import Member, User
from timebank.regions.models import Region


def names(order: ServiceOrder, user: User, **kwargs: int) -> list[str]:
    return [s.volunteer.name for s in volunteers_for(order, user, **kwargs)]


def credit(order: ServiceOrder, volunteer: Member, reviewer: User, minutes: int = 60) -> ServiceOrder:
    order = care.order_accept(actor=user_of(volunteer), order=order)
    order = worked(order, volunteer, order.window_start, order.window_start + dt.timedelta(minutes=minutes))
    return care.order_approve(actor=reviewer, order=confirmed_by_elder(order))


def test_the_board_shows_open_requests_of_the_subtree_soonest_first(
    post: Callable[..., ServiceOrder], station: User, hongkou_staff: User, helper: Member
) -> None:
    later = post(window_start=at(3, 10), window_end=at(3, 11))
    sooner = post(window_start=at(1, 9), window_end=at(1, 10))
    care.order_accept(actor=user_of(helper), order=post(window_start=at(2, 9), window_end=at(2, 10)))
    assert list(orders_to_dispatch(station)) == [sooner, later]
    assert list(orders_to_dispatch(hongkou_staff)) == []


def test_nearest_first_then_the_rest_of_the_scope(
    post: Callable[..., ServiceOrder],
    operator: User,
    station: User,
    helper: Member,
    neighbour_helper: Member,
    hongkou_staff: User,
    tree: dict[str, Region],
) -> None:
    # given volunteers in 雁荡 (the elder's community), 茂名 (same street) and 晋阳 (another district)
    far = member(hongkou_staff, tree["310109018021"], "蒋阿姨", birth=dt.date(1956, 4, 4), is_volunteer=True)
    order = post()
    # then the city's operator is offered all three, nearest first
    suggestions = volunteers_for(order, operator)
    assert [(s.volunteer.pk, s.nearness) for s in suggestions] == [
        (helper.pk, 0),
        (neighbour_helper.pk, 1),
        (far.pk, 2),
    ]
    # and the street's station only the volunteers of its street
    assert names(order, station) == [helper.name, neighbour_helper.name]
    assert names(order, operator, limit=1) == [helper.name]


def test_whoever_was_credited_least_this_month_comes_first(
    post: Callable[..., ServiceOrder],
    station: User,
    reviewer: User,
    helper: Member,
    tree: dict[str, Region],
) -> None:
    # given a second volunteer of 雁荡, whose name sorts after 李志强's
    other = member(station, tree["310101023001"], "赵小红", birth=dt.date(1970, 1, 1), is_volunteer=True)
    order = post(window_start=at(2, 10), window_end=at(2, 11))
    assert names(order, station) == [helper.name, other.name]
    # when 李志强 is credited an hour this month
    credit(post(), helper, reviewer)
    # then the other volunteer is offered first
    suggestions = volunteers_for(order, station)
    assert [(s.volunteer.pk, s.credited_this_month) for s in suggestions] == [(other.pk, 0), (helper.pk, 60)]


def test_a_volunteer_busy_at_that_time_is_left_out(
    post: Callable[..., ServiceOrder], station: User, helper: Member, neighbour_helper: Member
) -> None:
    # given 李志强 took a service tomorrow 10:00–11:00
    care.order_accept(actor=user_of(helper), order=post())
    overlapping = post(window_start=at(1, 10, 30), window_end=at(1, 11, 30))
    afterwards = post(window_start=at(1, 11), window_end=at(1, 12))
    # then he is not offered for a request overlapping it, but is for the next hour
    assert names(overlapping, station) == [neighbour_helper.name]
    assert names(afterwards, station) == [helper.name, neighbour_helper.name]


def test_only_volunteers_the_rules_allow(
    post: Callable[..., ServiceOrder],
    station: User,
    helper: Member,
    neighbour_helper: Member,
    old_elder: Member,
    tree: dict[str, Region],
    django_assert_max_num_queries: Callable[..., AbstractContextManager[object]],
) -> None:
    # given a 16-year-old volunteer, and 王阿婆 who volunteers too
    sixteen = dt.date(at(0).year - 16, 1, 1)
    member(station, tree["310101023001"], "小明", birth=sixteen, is_volunteer=True)
    people.member_update(actor=station, member=old_elder, changes={"is_volunteer": True})
    # then neither is offered for her own request (too young; nobody serves themselves)
    order = post()
    assert names(order, station) == [helper.name, neighbour_helper.name]
    # and counselling, which needs a certification, is offered only to the certified volunteer
    care.certification_grant(actor=station, member=neighbour_helper, code="counsellor")
    counselling = post(category="psychological_counselling", window_start=at(2, 10), window_end=at(2, 11))
    with django_assert_max_num_queries(3 + 1):  # policy, category, candidates; one check per suggestion
        assert names(counselling, station) == [neighbour_helper.name]
    with django_assert_max_num_queries(3):
        volunteers_for(order, station)


def test_each_suggestion_can_be_assigned(
    post: Callable[..., ServiceOrder], station: User, helper: Member, neighbour_helper: Member
) -> None:
    order = post()
    first = volunteers_for(order, station)[0]
    assigned = care.order_assign(actor=station, order=order, volunteer=first.volunteer)
    assert (assigned.status, assigned.volunteer_id) == (Status.ASSIGNED, helper.pk)
