"""The console's dispatch board: open requests of the subtree with the volunteers who could take each, and a
one-click assignment; refusals are shown on the board; auditors and other districts get none of it."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from timebank.care import services as care
from timebank.care.models import Status
from timebank.care.tests.conftest import at, member, user_of
from timebank.conftest import staff
from timebank.people.models import Role
from timebank.web.tests.care_fixtures import *  # noqa: F403
from timebank.web.tests.pages import alerts, html_of, zh


@pytest.fixture
def auditor(admin_user, tree):
    return staff(admin_user, "huangpu-auditor", Role.AUDITOR, tree["310101"])


def assign_buttons(page) -> list[tuple[int, int]]:
    """(service, volunteer) of each assign button on the board, top to bottom."""
    found = re.findall(
        r'<form method="post" action="/console/care/dispatch/(\d+)/assign/">'
        r'.*?name="volunteer" value="(\d+)"',
        html_of(page),
        re.S,
    )
    return [(int(order), int(volunteer)) for order, volunteer in found]


def test_the_board_lists_requests_soonest_first_with_volunteers_nearest_first(
    browser, post, station, helper, neighbour_helper
):
    later = post(window_start=at(2, 10), window_end=at(2, 11))
    sooner = post()
    page = browser(station).get("/console/care/dispatch/")
    assert page.status_code == 200
    assert assign_buttons(page) == [
        (sooner.pk, helper.pk),
        (sooner.pk, neighbour_helper.pk),
        (later.pk, helper.pk),
        (later.pk, neighbour_helper.pk),
    ]
    html = html_of(page)
    assert html.index(sooner.number) < html.index(later.number)
    assert zh("Same community") in html and zh("Neighbouring community") in html


def test_station_assigns_from_the_board(browser, post, station, helper, neighbour_helper):
    order = post()
    desk = browser(station)
    response = desk.post(f"/console/care/dispatch/{order.pk}/assign/", {"volunteer": neighbour_helper.pk})
    assert response.status_code == 302 and response["Location"] == "/console/care/dispatch/"
    order.refresh_from_db()
    assert (order.status, order.volunteer_id, order.assigned_by_id) == (
        Status.ASSIGNED,
        neighbour_helper.pk,
        station.pk,
    )
    # the board says so, and the service has left it
    board = desk.get("/console/care/dispatch/")
    assert zh("%(number)s assigned to %(name)s.") % {
        "number": order.number,
        "name": neighbour_helper.name,
    } in html_of(board)
    assert assign_buttons(board) == []


def test_a_refusal_is_shown_on_the_board(browser, post, station, helper, neighbour_helper):
    order = post()
    desk = browser(station)
    assert (order.pk, helper.pk) in assign_buttons(desk.get("/console/care/dispatch/"))
    # given 李志强 took another service at that time meanwhile
    overlapping = post(window_start=at(1, 10, 30), window_end=at(1, 12))
    other = care.order_accept(actor=user_of(helper), order=overlapping)
    # when the station clicks him anyway
    response = desk.post(f"/console/care/dispatch/{order.pk}/assign/", {"volunteer": helper.pk})
    # then the board says why, offers the others, and nothing changed
    assert response.status_code == 409
    expected = zh("%(name)s already has service %(number)s at that time.")
    assert alerts(response) == [expected % {"name": helper.name, "number": other.number}]
    assert assign_buttons(response) == [(order.pk, neighbour_helper.pk)]
    order.refresh_from_db()
    assert order.status == Status.OPEN and order.volunteer_id is None
    # and a click without a volunteer is explained too
    empty = desk.post(f"/console/care/dispatch/{order.pk}/assign/", {})
    assert empty.status_code == 422 and alerts(empty) == [zh("Choose a volunteer.")]


def test_the_auditor_gets_no_board_and_cannot_assign(browser, post, auditor, helper):
    order = post()
    desk = browser(auditor)
    assert desk.get("/console/care/dispatch/").status_code == 403
    response = desk.post(f"/console/care/dispatch/{order.pk}/assign/", {"volunteer": helper.pk})
    assert response.status_code == 403
    order.refresh_from_db()
    assert order.status == Status.OPEN
    # and the services list offers no way there
    assert "/console/care/dispatch/" not in html_of(desk.get("/console/care/"))


def test_staff_of_another_district_see_none_of_it(browser, post, station, hongkou_staff, helper, tree):
    order = post()
    desk = browser(hongkou_staff)
    board = desk.get("/console/care/dispatch/")
    assert board.status_code == 200
    assert order.number not in html_of(board) and assign_buttons(board) == []
    response = desk.post(f"/console/care/dispatch/{order.pk}/assign/", {"volunteer": helper.pk})
    assert response.status_code == 404
    order.refresh_from_db()
    assert order.status == Status.OPEN
    # nor can the station assign a volunteer of that district, whom it cannot see
    far = member(hongkou_staff, tree["310109018021"], "蒋阿姨", birth=dt.date(1956, 4, 4), is_volunteer=True)
    refused = browser(station).post(f"/console/care/dispatch/{order.pk}/assign/", {"volunteer": far.pk})
    assert refused.status_code == 404
    order.refresh_from_db()
    assert order.status == Status.OPEN


def test_the_services_list_leads_to_the_board(browser, station):
    assert 'href="/console/care/dispatch/"' in html_of(browser(station).get("/console/care/"))


def test_the_board_takes_a_bounded_number_of_queries(
    browser, post, station, helper, neighbour_helper, django_assert_max_num_queries
):
    for day in range(1, 6):
        post(window_start=at(day, 10), window_end=at(day, 11))
    desk = browser(station)
    # session, user, grants, the count and page of requests; for each request its policy, category and
    # volunteers; the menu's notices and shop counter
    # the page's own queries, then the session refreshed on every page (SESSION_SAVE_EVERY_REQUEST: 3)
    with django_assert_max_num_queries(5 + 3 * 5 + 2 + 3):
        assert desk.get("/console/care/dispatch/").status_code == 200
