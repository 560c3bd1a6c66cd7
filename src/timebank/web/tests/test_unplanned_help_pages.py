"""Unplanned help on the elder's pages: the visits the sensors noticed with no service planned, which she
records as help (then reviewed by the station) or says were not help — and nobody else decides on them
here."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.test import Client

from timebank.audit.models import AuditEvent
from timebank.care.models import ConfirmMethod, Funding, ServiceOrder, Source, Status
from timebank.care.tests.conftest import at, balance, member, user_of
from timebank.care.tests.flows import world
from timebank.people import services as people
from timebank.people.models import Member, PriorityGroup, User
from timebank.sensing.models import Candidate, PresenceSession
from timebank.sensing.presence import candidate_dismiss, sessions_derive
from timebank.sensing.tests.presence_kit import *  # noqa: F403
from timebank.web.tests.care_fixtures import *  # noqa: F403
from timebank.web.tests.care_fixtures import zh_minutes
from timebank.web.tests.pages import alerts, field_errors, form_with, html_of, submittable, zh

LIST = "/me/unplanned-help/"


@pytest.fixture
def candidate(helper: Member, old_elder: Member, events: Any) -> PresenceSession:
    """李志强 was with 王阿婆 yesterday 15:00–15:40, and no service was planned."""
    sessions_derive(
        sightings=events.together(helper, old_elder, at(-1, 15), at(-1, 15, 40)) + events.later(at(-1, 18)),
        auto_approve=False,
    )
    return PresenceSession.objects.get(candidate=Candidate.PENDING)


def _record_page(session: PresenceSession) -> str:
    return f"{LIST}{session.pk}/record/"


def _dismiss_page(session: PresenceSession) -> str:
    return f"{LIST}{session.pk}/dismiss/"


def _untouched(session: PresenceSession) -> tuple[Any, ...]:
    """What a refusal must leave as it was: the candidate, and everything the care tests watch."""
    session.refresh_from_db()
    return (session.candidate, session.order_id, session.decided_by_id, world())


def _record(phone: Client, session: PresenceSession, **changes: str) -> Any:
    """Fill in the record form as shown, with ``changes``, and send it."""
    form = form_with(phone.get(_record_page(session)), "category")
    return phone.post(_record_page(session), submittable(form, **changes))


def test_her_page_offers_the_visits_the_sensors_noticed_and_she_records_one_as_help(
    browser, candidate, old_elder, helper
):
    phone = browser(user_of(old_elder))
    # given her start page offers the visit among its large actions
    home = html_of(phone.get("/"))
    assert f'<a class="button primary" href="{LIST}">' in home
    # when she opens the list
    listed = html_of(phone.get(LIST))
    # then it says in plain words who was with her, when and how long
    assert helper.name in listed
    assert at(-1).date().isoformat() in listed and "15:00–15:40" in listed
    assert zh_minutes(40) in listed
    assert f'href="{_record_page(candidate)}"' in listed and f'href="{_dismiss_page(candidate)}"' in listed

    # when she says it was help: company, paid from her own savings (chosen for her already)
    form = form_with(phone.get(_record_page(candidate)), "category")
    assert form["funding"] == Funding.OWN
    assert "emotional_support" in form["_options"]["category"]
    recorded = phone.post(_record_page(candidate), submittable(form, category="emotional_support"))

    # then she is back on the list, told it was recorded and will be reviewed
    assert recorded.status_code == 302 and recorded["Location"] == LIST
    order = ServiceOrder.objects.get()
    after = html_of(phone.get(LIST))
    assert order.number in after and helper.name not in re.sub(
        r'<ul class="messages">.*?</ul>', "", after, flags=re.S
    )
    # and it is a service with the time the sensors measured, confirmed by her, waiting for the station
    assert (order.status, order.source, order.confirmation_method) == (
        Status.CONFIRMED,
        Source.SENSORS,
        ConfirmMethod.DEVICE,
    )
    assert (order.elder_id, order.volunteer_id, order.service_minutes) == (old_elder.pk, helper.pk, 40)
    assert balance(old_elder) == (600, order.reserved_minutes) and order.reserved_minutes > 0
    candidate.refresh_from_db()
    assert (candidate.candidate, candidate.order_id, candidate.decided_by_id) == (
        Candidate.RECORDED,
        order.pk,
        user_of(old_elder).pk,
    )
    # and her page no longer asks; the visit's page now leads to the service instead of a form
    assert LIST not in html_of(phone.get("/"))
    decided = html_of(phone.get(_record_page(candidate)))
    assert f'href="/care/services/{order.pk}/"' in decided and 'name="category"' not in decided


def test_she_says_a_visit_was_not_help_and_must_say_why(browser, candidate, old_elder):
    phone = browser(user_of(old_elder))
    before = _untouched(candidate)
    # when she sends no reason
    response = phone.post(_dismiss_page(candidate), {"reason": "  "})
    # then the reason field says so, and nothing is written
    assert response.status_code == 422
    assert field_errors(response) == {"reason": [zh("Say why.")]}
    assert _untouched(candidate) == before

    # when she gives one
    form = form_with(phone.get(_dismiss_page(candidate)), "reason")
    dismissed = phone.post(_dismiss_page(candidate), submittable(form, reason="邻居来聊天"))
    # then it is dismissed with her reason, recorded in the audit log, and no service is made
    assert dismissed.status_code == 302 and dismissed["Location"] == LIST
    candidate.refresh_from_db()
    assert (candidate.candidate, candidate.dismiss_reason) == (Candidate.DISMISSED, "邻居来聊天")
    assert AuditEvent.objects.get(event_type="sensing.candidate.dismissed").actor_id == user_of(old_elder).pk
    assert not ServiceOrder.objects.exists()
    assert LIST not in html_of(phone.get("/"))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"category": "juggling"}, "category"),  # not in the catalogue
        ({"funding": "cash"}, "funding"),  # not a choice
        ({"funding": Funding.POOL}, "funding"),  # the pool serves verified priority elders; she is not one
    ],
)
def test_a_bad_answer_is_marked_on_its_field_and_records_nothing(
    browser, candidate, old_elder, changes, field
):
    phone = browser(user_of(old_elder))
    before = _untouched(candidate)
    response = _record(phone, candidate, **changes)
    assert response.status_code == 422
    assert list(field_errors(response)) == [field]
    assert _untouched(candidate) == before


def test_a_visit_decided_meanwhile_is_not_recorded_again(browser, candidate, old_elder, station):
    phone = browser(user_of(old_elder))
    form = form_with(phone.get(_record_page(candidate)), "category")
    # given the station dismisses it while her form is open
    candidate_dismiss(actor=station, session=candidate, reason="她女儿来看她")
    before = _untouched(candidate)
    # when she sends the form
    response = phone.post(_record_page(candidate), submittable(form, category="emotional_support"))
    # then she is told at the top, the page shows what was decided, and nothing is recorded
    assert response.status_code == 409
    assert alerts(response)
    assert zh(Candidate.DISMISSED.label) in html_of(response) and 'name="category"' not in html_of(response)
    assert _untouched(candidate) == before


@pytest.mark.parametrize("who", ["poor_elder", "son", "hongkou_staff", "station"])
def test_nobody_else_sees_or_decides_on_her_visits_here(browser, candidate, who, request):
    # given another elder of her community, her son (a relative decides nothing on it), another district's
    # staff, and even her own station (whose staff decide in the console)
    person = request.getfixturevalue(who)
    other = browser(person if isinstance(person, User) else user_of(person))
    before = _untouched(candidate)
    for page in (_record_page(candidate), _dismiss_page(candidate)):
        assert other.get(page).status_code == 404
    assert (
        other.post(_record_page(candidate), {"category": "emotional_support", "funding": "own"}).status_code
        == 404
    )
    assert other.post(_dismiss_page(candidate), {"reason": "不是帮助"}).status_code == 404
    assert _untouched(candidate) == before
    if not isinstance(person, User):
        assert candidate.volunteer.name not in html_of(other.get(LIST))
        assert LIST not in html_of(other.get("/"))


def test_the_list_says_when_nothing_is_waiting(browser, old_elder):
    page = browser(user_of(old_elder)).get(LIST)
    assert page.status_code == 200
    assert zh("Nothing is waiting for you.") in html_of(page)


def test_an_elder_too_young_to_spend_her_savings_has_the_pool_chosen_for_her(
    browser, station, tree, helper, events
):
    # given an elder born in 1968 who lives alone (verified): too young to spend her own savings under the
    # Shanghai policy (65, or 60 in hardship), so served from the mutual-aid pool
    young = member(
        station, tree["310101023001"], "钱阿姨", birth=dt.date(1968, 1, 1), login="qian-ayi", is_elder=True
    )
    people.priority_group_verify(actor=station, member=young, group=PriorityGroup.LIVING_ALONE)
    sessions_derive(
        sightings=events.together(helper, young, at(-1, 9), at(-1, 9, 40)) + events.later(at(-1, 12)),
        auto_approve=False,
    )
    session = PresenceSession.objects.get(elder=young)
    form = form_with(browser(user_of(young)).get(_record_page(session)), "category")
    assert form["funding"] == Funding.POOL
