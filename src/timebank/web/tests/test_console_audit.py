"""The audit log page, and who may enter the console at all."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from timebank.conftest import PASSWORD
from timebank.people import services as people
from timebank.web.tests.pages import form_with, html_of


def _subjects(response) -> list[tuple[str, str]]:
    """(event type, subject) of each row of the audit table."""
    rows = re.findall(r'<td class="mono">([\w.]+)</td><td class="mono">([\w.]+:\d+)</td>', html_of(response))
    return [(event, subject) for event, subject in rows]


def test_staff_see_the_events_of_their_subtree_only(staff_client, elder, jinyang_elder):
    # given a registration in 雁荡 and one in 晋阳
    # when 雁荡's staff open the audit log
    response = staff_client.get("/console/audit/")
    # then they see 雁荡's registration and not 晋阳's
    assert response.status_code == 200
    rows = _subjects(response)
    assert ("member.registered", f"people.member:{elder.pk}") in rows
    assert ("member.registered", f"people.member:{jinyang_elder.pk}") not in rows
    assert all(subject != f"people.member:{jinyang_elder.pk}" for _event, subject in rows)


def test_platform_wide_events_are_not_shown_to_community_staff(staff_client, yandang_staff, jinyang_staff):
    # given two staff sign-ins created by the platform admin (tied to no region), each granted a community
    # when 雁荡's staff open the audit log
    rows = _subjects(staff_client.get("/console/audit/"))
    # then they see the grant made in 雁荡, but neither the platform-wide creations nor 晋阳's grant
    events = [event for event, _subject in rows]
    assert events == ["staff.granted"]
    assert "staff.user_created" not in events


def test_the_audit_log_filters_by_event_type(staff_client, elder):
    # given a registration and a reading of the ID number
    staff_client.post(f"/console/people/{elder.pk}/reveal/id-number/")
    # when staff filter on the reading
    response = staff_client.get("/console/audit/", {"event_type": "member.id_number.viewed"})
    # then only the reading is listed
    assert _subjects(response) == [("member.id_number.viewed", f"people.member:{elder.pk}")]
    # and a prefix narrows to a family of events
    prefixed = _subjects(staff_client.get("/console/audit/", {"event_type": "member."}))
    assert {event for event, _subject in prefixed} == {"member.registered", "member.id_number.viewed"}


@pytest.mark.parametrize(
    ("since_days", "until_days", "listed"),
    [(None, None, True), (0, 0, True), (-1, 1, True), (1, None, False), (None, -1, False), (-3, -1, False)],
)
def test_the_audit_log_filters_by_date(staff_client, elder, since_days, until_days, listed):
    # given the elder registered today (Shanghai time)
    today = timezone.localdate()
    query = {}
    if since_days is not None:
        query["since"] = (today + dt.timedelta(days=since_days)).isoformat()
    if until_days is not None:
        query["until"] = (today + dt.timedelta(days=until_days)).isoformat()
    # when staff filter the log by a date range
    response = staff_client.get("/console/audit/", query)
    # then today's registration is listed exactly when the range covers today
    assert response.status_code == 200
    assert (("member.registered", f"people.member:{elder.pk}") in _subjects(response)) is listed


def test_the_audit_filter_keeps_the_chosen_dates_in_its_date_inputs(staff_client, elder):
    # given staff who filtered the log from 2026-01-02 to 2026-01-31
    response = staff_client.get("/console/audit/", {"since": "2026-01-02", "until": "2026-01-31"})
    # when the page shows the filter form again (in Chinese, the default)
    form = form_with(response, "since")
    # then the date inputs still hold the dates a browser can show and send back
    assert (form["since"], form["until"]) == ("2026-01-02", "2026-01-31")


@pytest.fixture
def member_client(client, member_user):
    client.force_login(member_user)
    return client


def _console_requests(member_id: int) -> list[tuple[str, str, dict]]:
    return [
        ("get", "/console/people/", {}),
        ("get", "/console/people/new/", {}),
        ("post", "/console/people/new/", {"name": "x"}),
        ("get", f"/console/people/{member_id}/", {}),
        ("get", f"/console/people/{member_id}/edit/", {}),
        ("post", f"/console/people/{member_id}/edit/", {"mobile": "13900000000"}),
        ("post", f"/console/people/{member_id}/reveal/id-number/", {}),
        ("post", f"/console/people/{member_id}/reveal/health-notes/", {}),
        ("post", f"/console/people/{member_id}/priority/", {"group": "living_alone"}),
        ("post", f"/console/people/{member_id}/bonds/", {"relation": "child"}),
        ("get", "/console/bonds/", {}),
        ("post", "/console/bonds/", {"bond": "1", "decision": "approve"}),
        ("get", "/console/audit/", {}),
    ]


CONSOLE_REQUESTS = range(len(_console_requests(0)))


@pytest.mark.parametrize("index", CONSOLE_REQUESTS)
def test_a_member_without_a_staff_role_is_forbidden_everywhere_in_the_console(member_client, elder, index):
    # given an elder signed in with their own account
    method, url, data = _console_requests(elder.pk)[index]
    # when they open any console page, even about themselves
    response = getattr(member_client, method)(url, data)
    # then it is forbidden, and the forbidden page is the site's
    assert response.status_code == 403
    assert 'class="brand"' in html_of(response)
    assert elder.id_number_masked not in html_of(response)


@pytest.mark.parametrize("index", CONSOLE_REQUESTS)
def test_a_signed_in_user_without_any_role_is_forbidden_in_the_console(client, admin_user, elder, index):
    # given a staff sign-in that was never granted a role
    user = people.staff_user_create(actor=admin_user, username="newcomer", password=PASSWORD)
    client.force_login(user)
    method, url, data = _console_requests(elder.pk)[index]
    # when they open a console page
    response = getattr(client, method)(url, data)
    # then it is forbidden
    assert response.status_code == 403


def test_a_user_without_any_role_is_told_so_on_the_start_page(client, admin_user):
    # given a staff sign-in without a role
    user = people.staff_user_create(actor=admin_user, username="newcomer", password=PASSWORD)
    client.force_login(user)
    # when they open the start page
    response = client.get("/")
    # then they get a page (not the console) and no console links
    assert response.status_code == 200
    assert "/console/" not in html_of(response)


@pytest.mark.parametrize("index", CONSOLE_REQUESTS)
def test_anonymous_visitors_are_sent_to_sign_in(client, elder, index):
    # given nobody signed in
    method, url, data = _console_requests(elder.pk)[index]
    # when a console URL is opened
    response = getattr(client, method)(url, data)
    # then the visitor is sent to sign in, and comes back there afterwards
    assert response.status_code == 302
    assert response["Location"].startswith("/sign-in/?next=")


@pytest.mark.django_db
def test_the_start_page_sends_anonymous_visitors_to_sign_in(client):
    # given nobody signed in / when the start page is opened / then they are asked to sign in
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/sign-in/?next=/"


def test_the_log_shows_each_change_as_old_and_new(staff_client, yandang_staff, elder):
    # given staff changed the elder's mobile number
    people.member_update(actor=yandang_staff, member=elder, changes={"mobile": "13977776666"})

    # when they read the log
    html = staff_client.get("/console/audit/?event_type=member.updated").content.decode()

    # then the field, the old value and the new one are shown, the old one struck through
    assert "<del>13901000008</del> → 13977776666" in html
