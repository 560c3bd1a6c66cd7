"""Automatic approval: a service the elder confirmed, whose measured time agrees with its claimed time within
the policy's tolerance, is approved and credited without a reviewer where the policy switches it on — and the
audit log says why. Never when the switch is off, outside the tolerance, unconfirmed, confirmed by staff,
flagged as overlapping, or with times entered by hand."""

from __future__ import annotations

import datetime as dt

import pytest

from timebank.audit.models import AuditEvent
from timebank.care import services as care
from timebank.care.models import ConfirmMethod, Funding, ServiceOrder, Status
from timebank.care.tests.conftest import at, balance, user_of
from timebank.care.tests.flows import refused
from timebank.people.models import Member
from timebank.sensing import presence
from timebank.sensing.models import PresenceSession
from timebank.sensing.presence import orders_auto_approve, sessions_derive
from timebank.sensing.selectors import Sighting
from timebank.sensing.tests.presence_kit import *  # noqa: F403
from timebank.sensing.tests.presence_kit import Events, rules_for
from timebank.web.tests.care_fixtures import *  # noqa: F403
from timebank.web.tests.care_fixtures import done

MIN = dt.timedelta(minutes=1)


@pytest.fixture
def switched_on(tree, policies):
    """Huangpu's rules: Shanghai's, with automatic approval on (tolerance 10 minutes)."""
    return rules_for(tree["310101"], sensing_auto_approve=True)


def seen(events: Events, helper: Member, elder: Member, start: dt.datetime, minutes: int) -> list[Sighting]:
    return events.together(helper, elder, start, start + minutes * MIN) + events.later(start + 240 * MIN)


def test_a_confirmed_service_the_sensors_agree_with_is_approved_and_the_log_says_why(
    switched_on, confirmed, helper, old_elder, events
):
    # given a confirmed hour 10:00–11:00 tomorrow, and the two seen together for 55 minutes of it
    order = confirmed(hour=10, minutes=60)
    before = balance(helper)

    # when the sessions are derived
    report = sessions_derive(sightings=seen(events, helper, old_elder, at(1, 10, 3), 55))

    # then the service is credited by nobody in particular, with the reason on it and in the audit log
    order = ServiceOrder.objects.get(pk=order.pk)
    assert report.approved == [order.number]
    assert (order.status, order.reviewed_by_id) == (Status.CREDITED, None)
    assert balance(helper)[0] == before[0] + 60
    session = PresenceSession.objects.get()
    assert (
        "55 min" in order.review_note
        and "60 min" in order.review_note
        and session.number in order.review_note
    )
    approved = AuditEvent.objects.get(event_type="care.order.approved", subject_id=str(order.pk))
    assert approved.actor_id is None
    assert approved.new == {
        "status": "approved",
        "auto": True,
        "reason": "sensors_agree",
        "measured_minutes": 55,
        "claimed_minutes": 60,
        "tolerance_minutes": 10,
        "sessions": [session.pk],
        "sensing_policy": switched_on.pk,
    }
    assert AuditEvent.objects.filter(event_type="care.order.credited", subject_id=str(order.pk)).exists()


def test_with_the_switch_off_it_waits_for_a_reviewer(confirmed, helper, old_elder, events):
    order = confirmed(hour=10, minutes=60)  # the Shanghai preset leaves the switch off
    report = sessions_derive(sightings=seen(events, helper, old_elder, at(1, 10), 60))
    assert report.approved == []
    assert ServiceOrder.objects.get(pk=order.pk).status == Status.CONFIRMED


def test_outside_the_tolerance_it_waits_for_a_reviewer(switched_on, confirmed, helper, old_elder, events):
    # given 60 minutes claimed and 45 measured (tolerance 10)
    order = confirmed(hour=10, minutes=60)
    sessions_derive(sightings=seen(events, helper, old_elder, at(1, 10), 45))
    assert ServiceOrder.objects.get(pk=order.pk).status == Status.CONFIRMED


def test_without_any_sensor_data_it_waits_for_a_reviewer(switched_on, confirmed):
    order = confirmed(hour=10, minutes=60)
    assert orders_auto_approve() == []
    assert ServiceOrder.objects.get(pk=order.pk).status == Status.CONFIRMED


def test_a_service_the_elder_has_not_confirmed_waits(switched_on, post, helper, old_elder, events):
    order = done(care.order_accept(actor=user_of(helper), order=post()), helper, at(1, 10), at(1, 11))
    sessions_derive(sightings=seen(events, helper, old_elder, at(1, 10), 60))
    assert ServiceOrder.objects.get(pk=order.pk).status == Status.COMPLETED


def test_a_service_staff_confirmed_after_phoning_waits(switched_on, post, helper, old_elder, station, events):
    order = done(care.order_accept(actor=user_of(helper), order=post()), helper, at(1, 10), at(1, 11))
    care.order_confirm(actor=station, order=order, method=ConfirmMethod.STAFF, note="phoned her at 12:00")
    sessions_derive(sightings=seen(events, helper, old_elder, at(1, 10), 60))
    assert ServiceOrder.objects.get(pk=order.pk).status == Status.CONFIRMED


def test_a_paper_record_waits_even_when_the_sensors_agree(switched_on, station, helper, old_elder, events):
    order = care.paper_record_create(
        actor=station,
        elder=old_elder,
        volunteer=helper,
        category="assistance",
        started_at=at(-1, 10),
        ended_at=at(-1, 11),
        funding=Funding.OWN,
    )
    sessions_derive(sightings=seen(events, helper, old_elder, at(-1, 10), 60))
    assert ServiceOrder.objects.get(pk=order.pk).status == Status.CONFIRMED


def test_a_service_flagged_as_overlapping_is_never_approved_automatically(
    switched_on, confirmed, helper, old_elder, events
):
    # given a confirmed service the sensors agree with, flagged as overlapping another (as a paper record
    # of the same hour would flag it)
    order = confirmed(hour=10, minutes=60)
    ServiceOrder.objects.filter(pk=order.pk).update(overlap_flag=True)

    # when the sessions are derived, or the care service is asked directly
    sessions_derive(sightings=seen(events, helper, old_elder, at(1, 10), 60))
    assert ServiceOrder.objects.get(pk=order.pk).status == Status.CONFIRMED
    with refused("care_not_auto_approvable"):
        care.order_auto_approve(order=order, evidence={}, note="")


def test_the_credit_checks_still_apply_and_a_refused_credit_leaves_it_in_the_queue(
    tree, policies, confirmed, helper, old_elder, events
):
    # given a daily earning cap of one hour, and two confirmed hours of 李志强's on the same day
    rules_for(tree["310101"], sensing_auto_approve=True, daily_earning_cap_minutes=60)
    morning = confirmed(hour=10, minutes=60)
    afternoon = confirmed(hour=14, minutes=60)

    # when the sensors agree with both
    report = sessions_derive(
        sightings=events.together(helper, old_elder, at(1, 10), at(1, 11))
        + events.together(helper, old_elder, at(1, 14), at(1, 15))
        + events.later(at(1, 18))
    )

    # then the first is credited and the second, over the cap, waits for a reviewer
    assert report.approved == [morning.number]
    assert ServiceOrder.objects.get(pk=afternoon.pk).status == Status.CONFIRMED


def test_a_sensed_service_is_approved_behind_more_unsensed_ones_than_a_page_holds(
    switched_on, confirmed, helper, old_elder, events, monkeypatch
):
    # given more confirmed services the sensors never saw than a page holds, then a sensed one
    monkeypatch.setattr(presence, "AUTO_APPROVE_PAGE", 2)
    unsensed = [confirmed(hour=hour, minutes=60) for hour in (8, 10, 12)]
    sensed = confirmed(hour=16, minutes=60)
    # when
    report = sessions_derive(sightings=seen(events, helper, old_elder, at(1, 16), 60))
    # then
    assert report.approved == [ServiceOrder.objects.get(pk=sensed.pk).number]
    assert ServiceOrder.objects.get(pk=sensed.pk).status == Status.CREDITED
    assert {o.status for o in ServiceOrder.objects.filter(pk__in=[o.pk for o in unsensed])} == {
        Status.CONFIRMED
    }


def test_a_service_only_the_volunteers_device_measured_waits_for_a_reviewer(
    switched_on, confirmed, helper, old_elder, events
):
    # given the volunteer's device alone reporting the two together for the whole hour
    order = confirmed(hour=10, minutes=60)
    alone = [
        s for s in seen(events, helper, old_elder, at(1, 10), 60) if s.observer_member_id != old_elder.pk
    ]
    # when
    report = sessions_derive(sightings=alone)
    # then a reviewer still sees the session, but nothing is approved
    session = PresenceSession.objects.get(volunteer=helper)
    assert (session.volunteer_sightings > 0, session.elder_sightings) == (True, 0)
    assert session.order_id == order.pk
    assert report.approved == []
    assert ServiceOrder.objects.get(pk=order.pk).status == Status.CONFIRMED
