"""Elder mode and the elder's own page: large text by default for elders and one tap away for everyone, a
PIN-only sign-in set up by staff, and a home screen of a few large actions."""

from __future__ import annotations

import datetime as dt
import re

import time_machine
from django.test import Client

from timebank.audit.models import AuditEvent
from timebank.care import services as care
from timebank.care.tests.conftest import at, member, user_of
from timebank.people.models import Member, User
from timebank.web.tests.care_fixtures import *  # noqa: F403
from timebank.web.tests.pages import field_errors, html_of, zh


def _html_class(response) -> str:
    found = re.search(r"<html[^>]*?(?: class=\"([^\"]*)\")?>", html_of(response))
    return (found.group(1) or "") if found else ""


def test_elders_get_large_text_by_default_and_can_turn_it_off(browser, old_elder):
    phone = browser(user_of(old_elder))
    assert _html_class(phone.get("/")) == "large-text"
    toggled = phone.post("/display/large-text/", {"next": "/care/mine/"})
    assert toggled.status_code == 302 and toggled["Location"] == "/care/mine/"
    assert _html_class(phone.get("/care/mine/")) == ""
    phone.post("/display/large-text/", {"next": "/"})
    assert _html_class(phone.get("/")) == "large-text"


def test_anyone_can_switch_large_text_on_even_before_signing_in(client, helper):
    page = client.get("/sign-in/")
    assert 'data-testid="large-text-toggle"' in html_of(page) and _html_class(page) == ""
    client.post("/display/large-text/", {"next": "/sign-in/"})
    assert _html_class(client.get("/sign-in/")) == "large-text"
    # and a volunteer's pages start in normal text
    assert _html_class(browser_for(helper).get("/")) == ""


def browser_for(member: Member) -> Client:
    c = Client()
    c.force_login(user_of(member))
    return c


def test_the_switch_never_sends_anyone_elsewhere(client):
    response = client.post("/display/large-text/", {"next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_staff_set_a_pin_sign_in_and_the_elder_signs_in_with_it(client, station, tree):
    # given an elder without a sign-in
    elder = member(station, tree["310101023001"], "孙阿婆", birth=dt.date(1938, 2, 2), is_elder=True)
    desk = browser_for_user(station)
    # when staff try a weak PIN, then a good one
    weak = desk.post(f"/console/people/{elder.pk}/sign-in-pin/", {"pin": "123456"})
    assert weak.status_code == 422
    assert field_errors(weak) == {"sign_in_pin": [zh("Too easy to guess (like 111111 or 123456).")]}
    assert desk.post(f"/console/people/{elder.pk}/sign-in-pin/", {"pin": "470952"}).status_code == 302
    assert AuditEvent.objects.filter(event_type="member.sign_in_pin_set", subject_id=str(elder.pk)).exists()
    # then she signs in with her mobile number and the PIN, and lands on her page in large text
    response = client.post("/sign-in/", {"identifier": elder.mobile, "password": "470952"}, follow=True)
    assert response.redirect_chain == [("/", 302)]
    assert "孙阿婆" in html_of(response) and _html_class(response) == "large-text"


def browser_for_user(user: User) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_the_elders_page_offers_her_visits_to_confirm_and_to_come_and_her_station(
    browser, post, old_elder, helper, station, son
):
    # given the station's number is on record, a visit done waiting for her, and one to come
    User.objects.filter(pk=station.pk).update(mobile="13816000009")
    done = care.order_accept(actor=user_of(helper), order=post(window_start=at(1, 9), window_end=at(1, 10)))
    with time_machine.travel(at(1, 9), tick=False):
        care.order_check_in(actor=user_of(helper), order=done)
    with time_machine.travel(at(1, 10), tick=False):
        care.order_check_out(actor=user_of(helper), order=done)
    coming = care.order_accept(
        actor=user_of(helper), order=post(window_start=at(2, 15), window_end=at(2, 16))
    )
    # when she opens her page
    with time_machine.travel(at(1, 12), tick=False):
        phone = browser(user_of(old_elder))
        page = html_of(phone.get("/"))
    # then the first large actions are: ask for help, confirm that visit, her hours, call the station
    assert f'href="/care/services/{done.pk}/"' in page
    assert f'href="/care/services/{coming.pk}/"' in page
    actions = re.findall(r'<a class="button[^"]*" href="([^"]+)"', page)
    assert (
        actions.index("/care/ask/")
        < actions.index(f"/care/services/{done.pk}/")
        < actions.index("/me/statement/")
    )
    assert "tel:13816000009" in page
    # and her son's page offers to ask for help for her and to give her time
    son_page = html_of(browser(user_of(son)).get("/"))
    assert f"/care/ask/?elder={old_elder.pk}" in son_page and f"/exchange/give/?to={old_elder.pk}" in son_page
