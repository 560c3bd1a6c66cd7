"""The audit log: what a record holds, that neither the ORM nor raw SQL can change it, and who sees it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction

from timebank.audit.models import AuditEvent
from timebank.audit.selectors import audit_events_visible
from timebank.audit.services import audit_record
from timebank.common.context import current_origin, origin
from timebank.common.errors import Conflict
from timebank.conftest import PASSWORD, staff
from timebank.people import services as people
from timebank.people.models import Role


@pytest.fixture
def event(yandang_staff, elder) -> AuditEvent:
    with origin("203.0.113.7", "web"):
        return audit_record(
            actor=yandang_staff,
            event_type="member.checked",
            subject=elder,
            region=elder.home_region,
            old={"status": "a"},
            new={"status": "b"},
            on_behalf_of=elder,
        )


def stored(event: AuditEvent) -> tuple[object, ...]:
    row = AuditEvent.objects.get(pk=event.pk)
    return row.event_type, row.subject_id, row.old, row.new, row.ip


# --- what a record holds --------------------------------------------------------------------------


def test_a_record_holds_who_for_whom_what_where_and_from_where(event, yandang_staff, elder):
    # when
    row = AuditEvent.objects.get(pk=event.pk)

    # then
    assert (row.actor, row.actor_label, row.on_behalf_of) == (yandang_staff, "yandang-staff", elder)
    assert (row.event_type, row.subject_type, row.subject_id) == (
        "member.checked",
        "people.member",
        str(elder.pk),
    )
    assert (row.region, row.region_path) == (elder.home_region, elder.home_region.path)
    assert (row.old, row.new) == ({"status": "a"}, {"status": "b"})
    assert (row.ip, row.channel) == ("203.0.113.7", "web")
    assert row.at is not None


def test_the_origin_applies_only_inside_its_block(yandang_staff, elder):
    # given
    with origin("2001:db8::1", "api"):
        inside = audit_record(actor=yandang_staff, event_type="x.inside", subject=elder, region=None)

    # when
    outside = audit_record(actor=None, event_type="x.outside", subject=elder, region=None)

    # then
    assert (inside.ip, inside.channel) == ("2001:db8::1", "api")
    assert (outside.ip, outside.channel, outside.actor, outside.actor_label) == (
        None,
        "system",
        None,
        "system",
    )
    assert current_origin().channel == "system"


def test_a_services_write_carries_the_origin(yandang_staff, elder):
    # when
    with origin("198.51.100.20", "cli"):
        people.member_update(actor=yandang_staff, member=elder, changes={"address": "雁荡路 3 号"})

    # then
    row = AuditEvent.objects.get(event_type="member.updated")
    assert (row.ip, row.channel, row.actor) == ("198.51.100.20", "cli", yandang_staff)


def test_values_that_are_not_json_are_stored_as_text_or_keys(yandang_staff, elder, tree):
    # when
    row = audit_record(
        actor=yandang_staff,
        event_type="x.values",
        subject=elder,
        region=None,
        new={"region": tree["310101"], "day": dt.date(2025, 1, 2), "amount": Decimal("1.50")},
    )

    # then
    assert AuditEvent.objects.get(pk=row.pk).new == {
        "region": tree["310101"].pk,
        "day": "2025-01-02",
        "amount": "1.50",
    }


# --- append-only in the model ---------------------------------------------------------------------


def test_saving_an_existing_record_is_refused(event):
    # given
    event.event_type = "member.forged"
    event.new = {"status": "z"}

    # when / then
    with pytest.raises(Conflict) as exc:
        event.save()
    assert exc.value.code == "audit_append_only"
    assert stored(event) == (
        "member.checked",
        event.subject_id,
        {"status": "a"},
        {"status": "b"},
        "203.0.113.7",
    )


def test_saving_a_reloaded_record_is_refused(event):
    # given
    row = AuditEvent.objects.get(pk=event.pk)

    # when / then
    with pytest.raises(Conflict) as exc:
        row.save(update_fields=["event_type"])
    assert exc.value.code == "audit_append_only"


def test_deleting_a_record_is_refused(event):
    # when / then
    with pytest.raises(Conflict) as exc:
        event.delete()
    assert exc.value.code == "audit_append_only"
    assert AuditEvent.objects.filter(pk=event.pk).exists()


# --- append-only in the database ------------------------------------------------------------------


def test_the_database_refuses_a_raw_update(event):
    # when / then
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET event_type = %s, ip = NULL WHERE id = %s",
            ["member.forged", event.pk],
        )
    assert stored(event)[0] == "member.checked"
    assert stored(event)[4] == "203.0.113.7"


def test_the_database_refuses_a_raw_delete(event):
    # when / then
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_the_database_refuses_a_raw_delete_of_everything(event):
    # given
    count = AuditEvent.objects.count()

    # when / then
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent")
    assert AuditEvent.objects.count() == count


def test_the_database_refuses_a_queryset_update_and_delete_that_skip_the_model(event):
    # when / then
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(new={"status": "z"})
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert stored(event)[3] == {"status": "b"}


def test_the_database_refuses_a_truncate(postgres_only, event):
    # given
    count = AuditEvent.objects.count()

    # when / then
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL timebank.allow_truncate = 'off'")  # as in production
        cursor.execute("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.count() == count


def test_new_records_may_still_be_added_after_a_refusal(event, yandang_staff, elder):
    # given
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [event.pk])

    # when
    later = audit_record(
        actor=yandang_staff, event_type="member.later", subject=elder, region=elder.home_region
    )

    # then
    assert AuditEvent.objects.filter(pk__in=[event.pk, later.pk]).count() == 2


# --- who sees what --------------------------------------------------------------------------------


def test_platform_wide_events_are_for_platform_admins_only(admin_user, tree, yandang_staff, elder):
    # given an event tied to no region (a staff sign-in was created) and one in 雁荡
    user = people.staff_user_create(actor=admin_user, username="wang-li", password=PASSWORD)
    platform_wide = AuditEvent.objects.get(event_type="staff.user_created", subject_id=str(user.pk))
    province_operator = staff(admin_user, "shanghai-operator", Role.OPERATOR, tree["310000"])

    # when
    seen_by_staff = set(audit_events_visible(yandang_staff))
    seen_by_operator = set(audit_events_visible(province_operator))
    seen_by_admin = set(audit_events_visible(admin_user))

    # then
    assert platform_wide not in seen_by_staff
    assert platform_wide not in seen_by_operator
    assert all(e.region_path for e in seen_by_staff | seen_by_operator)
    assert platform_wide in seen_by_admin
    assert AuditEvent.objects.get(event_type="member.registered") in seen_by_staff
    assert seen_by_admin == set(AuditEvent.objects.all())


def test_events_are_filtered_by_type_subject_and_time(yandang_staff, elder, event):
    # when
    by_prefix = list(audit_events_visible(yandang_staff, event_type="member."))
    by_subject = list(
        audit_events_visible(yandang_staff, subject_type="people.member", subject_id=str(elder.pk))
    )
    none_after = list(audit_events_visible(yandang_staff, since=event.at.replace(year=event.at.year + 1)))
    until_then = list(audit_events_visible(yandang_staff, until=event.at))

    # then
    assert {e.event_type for e in by_prefix} == {"member.registered", "member.checked"}
    assert [e.event_type for e in by_subject] == ["member.checked", "member.registered"]
    assert none_after == []
    assert event not in until_then
