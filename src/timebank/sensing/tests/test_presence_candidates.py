"""Unplanned help: who sees a candidate, recording it as a service (by station staff, then confirmed by the
elder and approved by another staff member; or by the elder herself) and dismissing it — with permissions
and audit records."""

from __future__ import annotations

import datetime as dt

import pytest

from timebank.audit.models import AuditEvent
from timebank.care import services as care
from timebank.care.models import ConfirmMethod, Funding, ServiceOrder, Source, Status, TimeMethod
from timebank.care.tests.conftest import at, member, user_of
from timebank.care.tests.flows import refused
from timebank.common.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from timebank.conftest import staff
from timebank.people import services as people
from timebank.people.models import Member, Role, User
from timebank.sensing.models import Candidate, PresenceSession
from timebank.sensing.presence import candidate_dismiss, candidate_record, sessions_derive
from timebank.sensing.presence_selectors import (
    candidate_get,
    candidates_of_elder,
    candidates_visible,
    order_measured,
)
from timebank.sensing.tests.presence_kit import *  # noqa: F403
from timebank.web.tests.care_fixtures import *  # noqa: F403


@pytest.fixture
def candidate(helper: Member, old_elder: Member, events) -> PresenceSession:
    """李志强 and 王阿婆 together yesterday 15:00–15:40, no service planned."""
    sessions_derive(
        sightings=events.together(helper, old_elder, at(-1, 15), at(-1, 15, 40)) + events.later(at(-1, 18)),
        auto_approve=False,
    )
    session = PresenceSession.objects.get()
    assert session.candidate == Candidate.PENDING
    return session


def test_staff_of_the_community_and_the_elder_see_a_candidate_and_nobody_else(
    candidate, station, jinyang_staff, old_elder, helper
):
    assert list(candidates_visible(station)) == [candidate]
    assert candidate_get(user_of(old_elder), candidate.pk) == candidate
    assert list(candidates_of_elder(old_elder)) == [candidate]
    assert list(candidates_visible(jinyang_staff)) == []
    for outsider in (jinyang_staff, user_of(helper)):
        with pytest.raises(NotFound):
            candidate_get(outsider, candidate.pk)


def test_staff_record_a_candidate_and_the_elder_then_confirms_and_another_staff_member_approves(
    candidate, station, reviewer, old_elder, helper
):
    # when station staff record it as a service paid from her savings
    order = candidate_record(actor=station, session=candidate, category="assistance", funding=Funding.OWN)

    # then it is a completed service with the measured times, waiting for her confirmation
    order = ServiceOrder.objects.get(pk=order.pk)
    assert (order.status, order.volunteer_id, order.elder_id) == (Status.COMPLETED, helper.pk, old_elder.pk)
    assert (order.checked_in_at, order.checked_out_at) == (candidate.started_at, candidate.ended_at)
    assert (order.source, order.check_in_method, order.times_entered_by_id) == (
        Source.SENSORS,
        TimeMethod.SENSORS,
        station.pk,
    )
    assert order.service_minutes == 40
    assert order.notes.startswith("Measured by proximity sensors") and candidate.number in order.notes
    candidate.refresh_from_db()
    assert (candidate.candidate, candidate.order_id, candidate.decided_by_id) == (
        Candidate.RECORDED,
        order.pk,
        station.pk,
    )
    recorded = AuditEvent.objects.get(event_type="sensing.candidate.recorded")
    assert (recorded.actor_id, recorded.subject_id, recorded.new["order"]) == (
        station.pk,
        str(candidate.pk),
        order.pk,
    )
    entered = AuditEvent.objects.get(event_type="care.order.sensed_recorded", subject_id=str(order.pk))
    assert entered.new["sessions"] == [candidate.pk]
    measured = order_measured(order)
    assert measured is not None and measured.minutes == 40 and measured.session_ids == (candidate.pk,)

    # and she confirms it; the station that recorded it may not approve it, another staff member does
    care.order_confirm(actor=user_of(old_elder), order=order, method=ConfirmMethod.DEVICE)
    with pytest.raises(PermissionDenied) as caught:
        care.order_approve(actor=station, order=order)
    assert caught.value.code == "care_own_entry"
    assert care.order_approve(actor=reviewer, order=order).status == Status.CREDITED


def test_the_elder_records_her_own_candidate_as_a_confirmed_service(candidate, old_elder):
    order = candidate_record(
        actor=user_of(old_elder), session=candidate, category="emotional_support", funding=Funding.OWN
    )
    assert (order.status, order.confirmation_method, order.source) == (
        Status.CONFIRMED,
        ConfirmMethod.DEVICE,
        Source.SENSORS,
    )
    assert order.times_entered_by_id == user_of(old_elder).pk  # so a reviewer, never the sensors, approves it


def test_staff_of_another_district_and_the_volunteer_are_told_it_does_not_exist(
    candidate, jinyang_staff, helper
):
    for outsider in (jinyang_staff, user_of(helper)):
        with refused("sensing_candidate_not_found"):
            candidate_record(actor=outsider, session=candidate, category="assistance", funding=Funding.OWN)
        with refused("sensing_candidate_not_found"):
            candidate_dismiss(actor=outsider, session=candidate, reason="not ours")
    candidate.refresh_from_db()
    assert candidate.candidate == Candidate.PENDING


def test_staff_who_may_only_look_cannot_decide(candidate, admin_user, tree):
    auditor = staff(admin_user, "huangpu-auditor", Role.AUDITOR, tree["310101"])
    assert list(candidates_visible(auditor)) == [candidate]
    with refused("permission_denied"):
        candidate_dismiss(actor=auditor, session=candidate, reason="looks fine")


def test_a_dismissal_needs_a_reason_and_is_recorded(candidate, station):
    with pytest.raises(ValidationFailed) as caught:
        candidate_dismiss(actor=station, session=candidate, reason="  ")
    assert list(caught.value.fields) == ["reason"]

    candidate_dismiss(actor=station, session=candidate, reason="Her neighbour's chat on the stairs")

    candidate.refresh_from_db()
    assert (candidate.candidate, candidate.dismiss_reason) == (
        Candidate.DISMISSED,
        "Her neighbour's chat on the stairs",
    )
    event = AuditEvent.objects.get(event_type="sensing.candidate.dismissed")
    assert (event.actor_id, event.new["reason"]) == (station.pk, "Her neighbour's chat on the stairs")
    assert list(candidates_visible(station)) == []


def test_a_candidate_is_decided_once(candidate, station, old_elder):
    candidate_dismiss(actor=station, session=candidate, reason="a neighbour")
    with pytest.raises(Conflict) as caught:
        candidate_record(
            actor=user_of(old_elder), session=candidate, category="assistance", funding=Funding.OWN
        )
    assert caught.value.code == "sensing_candidate_decided"
    assert not ServiceOrder.objects.exists()


def test_a_record_the_care_rules_refuse_leaves_the_candidate_waiting(candidate, station):
    # given a category the policy does not have
    with pytest.raises(ValidationFailed):
        candidate_record(actor=station, session=candidate, category="juggling", funding=Funding.OWN)
    candidate.refresh_from_db()
    assert candidate.candidate == Candidate.PENDING
    assert not AuditEvent.objects.filter(event_type__startswith="sensing.").exists()


def test_staff_who_gave_the_help_do_not_decide_on_it(old_elder, events, admin_user, tree, station):
    # given a staff member of 雁荡 who also volunteers, seen with 王阿婆
    volunteer = member(
        station, tree["310101023001"], "周红", birth=dt.date(1980, 1, 1), login="zhou-hong", is_volunteer=True
    )
    user = user_of(volunteer)
    people.staff_grant_create(
        actor=admin_user, user=user, role=Role.STATION_STAFF, region=tree["310101023001"]
    )
    sessions_derive(
        sightings=events.together(volunteer, old_elder, at(-1, 9), at(-1, 10)) + events.later(at(-1, 12)),
        auto_approve=False,
    )
    session = PresenceSession.objects.get()
    with refused("care_own_service"):
        candidate_dismiss(actor=User.objects.get(pk=user.pk), session=session, reason="mine")
