"""The staff console and smart timing: the review queue and a service's page show the measured time next to
the claimed time; the unplanned-help page lists candidates of the staff member's communities to record or
dismiss."""

from __future__ import annotations

import re

import pytest

from timebank.care.models import ServiceOrder, Status
from timebank.care.tests.conftest import at
from timebank.sensing.models import Candidate, PresenceSession
from timebank.sensing.presence import sessions_derive
from timebank.sensing.tests.presence_kit import *  # noqa: F403
from timebank.web.tests.care_fixtures import *  # noqa: F403
from timebank.web.tests.care_fixtures import zh_minutes
from timebank.web.tests.pages import field_errors, html_of, zh


def measured_cells(page: str) -> list[str]:
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell)).strip()
        for cell in re.findall(r'<td class="nowrap measured">(.*?)</td>', page, re.S)
    ]


def test_the_review_queue_shows_measured_time_next_to_claimed_time(
    browser, confirmed, reviewer, helper, old_elder, events
):
    # given three confirmed hours: one the sensors agree with, one they measured 45 minutes of, one unseen
    agreed = confirmed(hour=9, minutes=60)
    short = confirmed(hour=11, minutes=60)
    unseen = confirmed(hour=14, minutes=60)
    sessions_derive(
        sightings=events.together(helper, old_elder, at(1, 9, 2), at(1, 9, 58))
        + events.together(helper, old_elder, at(1, 11), at(1, 11, 45))
        + events.later(at(1, 18)),
        auto_approve=False,
    )

    # when the reviewer opens the queue
    page = html_of(browser(reviewer).get("/console/care/review/"))

    # then each row shows what the sensors measured beside the claimed hour, flagged where they disagree
    rows = re.findall(r"<tr>\s*<td>.*?</tr>", page, re.S)
    numbers = [next(n for n in (agreed.number, short.number, unseen.number) if n in row) for row in rows]
    assert numbers == [agreed.number, short.number, unseen.number]
    cells = measured_cells(page)
    assert cells[0].startswith(zh_minutes(56)) and "tag flag" not in rows[0]
    assert cells[1].startswith(zh_minutes(45)) and "tag flag" in rows[1]
    assert cells[2] == zh("no sensor data")
    assert all(zh_minutes(60) in row for row in rows)


def test_a_services_page_shows_its_sessions(browser, confirmed, station, helper, old_elder, events):
    order = confirmed(hour=10, minutes=60)
    sessions_derive(
        sightings=events.together(helper, old_elder, at(1, 10), at(1, 10, 50)) + events.later(at(1, 13)),
        auto_approve=False,
    )
    session = PresenceSession.objects.get()

    page = html_of(browser(station).get(f"/console/care/{order.pk}/"))

    assert session.number in page and zh_minutes(50) in page


@pytest.fixture
def candidate(helper, old_elder, events) -> PresenceSession:
    sessions_derive(
        sightings=events.together(helper, old_elder, at(-1, 15), at(-1, 15, 40)) + events.later(at(-1, 18)),
        auto_approve=False,
    )
    return PresenceSession.objects.get(candidate=Candidate.PENDING)


def test_staff_see_candidates_of_their_communities_only(browser, candidate, station, jinyang_staff, reviewer):
    assert candidate.number in html_of(browser(station).get("/console/care/unplanned/"))
    assert candidate.number not in html_of(browser(jinyang_staff).get("/console/care/unplanned/"))
    queue = html_of(browser(reviewer).get("/console/care/review/"))
    assert "/console/care/unplanned/" in queue


def test_staff_record_a_candidate_as_a_service(browser, candidate, station):
    desk = browser(station)
    response = desk.post(
        f"/console/care/unplanned/{candidate.pk}/record/",
        {"category": "assistance", "funding": "own", "notes": "扶她下楼"},
    )
    assert response.status_code == 302
    order = ServiceOrder.objects.get()
    assert response["Location"] == f"/console/care/{order.pk}/"
    assert (order.status, order.service_minutes) == (Status.COMPLETED, 40)
    assert candidate.number not in html_of(desk.get("/console/care/unplanned/"))


def test_a_bad_record_form_names_the_field_and_records_nothing(browser, candidate, station):
    desk = browser(station)
    unknown = desk.post(
        f"/console/care/unplanned/{candidate.pk}/record/", {"category": "nope", "funding": "own"}
    )
    assert unknown.status_code == 422
    assert list(field_errors(unknown)) == [f"u{candidate.pk}_category"]
    # a payer the rules refuse: 王阿婆 is no verified priority elder, so the public fund may not pay
    refused = desk.post(
        f"/console/care/unplanned/{candidate.pk}/record/", {"category": "assistance", "funding": "fund"}
    )
    assert 400 <= refused.status_code < 500
    assert not ServiceOrder.objects.exists()
    candidate.refresh_from_db()
    assert candidate.candidate == Candidate.PENDING


def test_a_dismissal_without_a_reason_is_refused_on_the_page(browser, candidate, station):
    desk = browser(station)
    blank = desk.post(f"/console/care/unplanned/{candidate.pk}/dismiss/", {"reason": ""})
    assert blank.status_code == 422
    assert field_errors(blank) == {f"x{candidate.pk}_reason": [zh("Say why.")]}
    done = desk.post(f"/console/care/unplanned/{candidate.pk}/dismiss/", {"reason": "邻居聊天"})
    assert done.status_code == 302
    candidate.refresh_from_db()
    assert candidate.candidate == Candidate.DISMISSED


def test_staff_of_another_district_get_not_found(browser, candidate, jinyang_staff):
    desk = browser(jinyang_staff)
    assert desk.post(f"/console/care/unplanned/{candidate.pk}/dismiss/", {"reason": "x"}).status_code == 404
    assert (
        desk.post(
            f"/console/care/unplanned/{candidate.pk}/record/", {"category": "assistance", "funding": "own"}
        ).status_code
        == 404
    )
    candidate.refresh_from_db()
    assert candidate.candidate == Candidate.PENDING
