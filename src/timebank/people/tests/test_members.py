"""Registering, editing and unmasking members; their own sign-ins."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection

from timebank.audit.models import AuditEvent
from timebank.common.errors import Conflict, PermissionDenied, ValidationFailed
from timebank.conftest import PASSWORD, make_id_number
from timebank.people import services as people
from timebank.people.crypto import decrypt_text, lookup_hash
from timebank.people.models import Member, Role, Sex, User
from timebank.people.tests.builders import grant_user, register

EXAMPLE_ID = "11010519491231002X"


def raw_member_row(member: Member) -> dict[str, object]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM people_member WHERE id = %s", [member.pk])
        names = [col[0] for col in cursor.description]
        return dict(zip(names, cursor.fetchone(), strict=True))


def audit_text() -> str:
    """Everything the audit log holds in old/new, as one string."""
    return " ".join(json.dumps([e.old, e.new], ensure_ascii=False) for e in AuditEvent.objects.all())


# --- registration ---------------------------------------------------------------------------------


def test_registration_derives_birth_date_and_sex_from_the_id_number(yandang_staff, tree):
    # given / when
    member = people.member_register(
        actor=yandang_staff,
        name=" 周秀英 ",
        home_region=tree["310101023001"],
        mobile="+86 139 1234 5678",
        id_number="11010519491231002x",
    )

    # then
    member = Member.objects.get(pk=member.pk)
    assert member.name == "周秀英"
    assert member.mobile == "13912345678"
    assert member.birth_date == dt.date(1949, 12, 31)
    assert member.sex == Sex.FEMALE
    assert member.id_number_masked == "1101**********002X"


def test_the_id_number_is_not_stored_in_clear(yandang_staff, tree):
    # given
    member = people.member_register(
        actor=yandang_staff,
        name="周秀英",
        home_region=tree["310101023001"],
        id_number=EXAMPLE_ID,
        health_notes="糖尿病，需低糖饮食",
    )

    # when
    row = raw_member_row(member)

    # then no column holds the number, its hidden middle, or the health notes in clear
    for column, value in row.items():
        text = str(value)
        assert EXAMPLE_ID not in text, column
        assert EXAMPLE_ID.lower() not in text, column
        assert "0519491231" not in text, column
        assert "糖尿病" not in text, column
    assert row["id_number_hash"] == lookup_hash(EXAMPLE_ID)
    assert row["id_number_masked"] == "1101**********002X"
    assert decrypt_text(str(row["id_number_cipher"])) == EXAMPLE_ID
    assert decrypt_text(str(row["health_notes_cipher"])) == "糖尿病，需低糖饮食"


def test_the_same_id_number_cannot_be_registered_twice(yandang_staff, tree):
    # given
    people.member_register(
        actor=yandang_staff, name="周秀英", home_region=tree["310101023001"], id_number=EXAMPLE_ID.lower()
    )
    before = Member.objects.count(), AuditEvent.objects.count()

    # when
    with pytest.raises(ValidationFailed) as exc:
        people.member_register(
            actor=yandang_staff, name="冒名者", home_region=tree["310101023002"], id_number=EXAMPLE_ID
        )

    # then
    assert list(exc.value.fields) == ["id_number"]
    assert (Member.objects.count(), AuditEvent.objects.count()) == before


def test_members_without_an_id_number_do_not_collide(yandang_staff, tree):
    # given
    people.member_register(actor=yandang_staff, name="甲", home_region=tree["310101023001"], id_number="")

    # when
    second = people.member_register(actor=yandang_staff, name="乙", home_region=tree["310101023001"])

    # then
    assert second.pk is not None
    assert Member.objects.filter(id_number_hash="").count() == 2


def test_every_bad_field_is_reported_at_once_and_nothing_is_written(yandang_staff, tree):
    # given
    before = Member.objects.count(), AuditEvent.objects.count()

    # when
    with pytest.raises(ValidationFailed) as exc:
        people.member_register(
            actor=yandang_staff,
            name="  ",
            mobile="12912345678",
            id_number="110105194912310021",
            home_region=tree["310101023"],
            emergency_contact_mobile="1391234567",
            sex="X",
            favourite="tea",
        )

    # then
    assert set(exc.value.fields) == {
        "name",
        "mobile",
        "id_number",
        "home_region",
        "emergency_contact_mobile",
        "sex",
        "favourite",
    }
    assert (Member.objects.count(), AuditEvent.objects.count()) == before


def test_a_birth_date_or_sex_contradicting_the_id_number_is_reported(yandang_staff, tree):
    # given the example number: born 1949-12-31, female
    before = Member.objects.count(), AuditEvent.objects.count()

    # when
    with pytest.raises(ValidationFailed) as exc:
        people.member_register(
            actor=yandang_staff,
            name="周秀英",
            home_region=tree["310101023001"],
            id_number=EXAMPLE_ID,
            birth_date=dt.date(1949, 12, 30),
            sex="M",
        )

    # then
    assert set(exc.value.fields) == {"birth_date", "sex"}
    assert (Member.objects.count(), AuditEvent.objects.count()) == before


def test_a_birth_date_agreeing_with_the_id_number_is_accepted(yandang_staff, tree):
    # given / when
    member = people.member_register(
        actor=yandang_staff,
        name="周秀英",
        home_region=tree["310101023001"],
        id_number=EXAMPLE_ID,
        birth_date=dt.date(1949, 12, 31),
        sex="F",
    )

    # then
    assert (member.birth_date, member.sex) == (dt.date(1949, 12, 31), "F")


def test_registration_is_audited_with_the_masked_id_number_only(yandang_staff, tree):
    # given / when
    member = people.member_register(
        actor=yandang_staff,
        name="周秀英",
        home_region=tree["310101023001"],
        id_number=EXAMPLE_ID,
        health_notes="心脏起搏器",
        is_elder=True,
    )

    # then
    event = AuditEvent.objects.get(event_type="member.registered", subject_id=str(member.pk))
    assert event.actor == yandang_staff
    assert event.on_behalf_of == member
    assert event.subject_type == "people.member"
    assert event.region_path == tree["310101023001"].path
    assert event.new is not None
    assert event.new["id_number"] == "1101**********002X"
    assert event.new["is_elder"] is True
    text = audit_text()
    assert EXAMPLE_ID not in text
    assert EXAMPLE_ID.lower() not in text
    assert "心脏起搏器" not in text


# --- editing --------------------------------------------------------------------------------------


def test_staff_edit_a_member_and_the_change_is_audited(yandang_staff, elder):
    # given
    events_before = AuditEvent.objects.filter(event_type="member.updated").count()

    # when
    updated = people.member_update(
        actor=yandang_staff,
        member=elder,
        changes={"name": "朱德麟", "address": "雁荡路 1 号", "skills": "理发， 聊天"},
    )

    # then
    assert Member.objects.get(pk=elder.pk).name == "朱德麟"
    assert updated.skills == ["理发", "聊天"]
    event = AuditEvent.objects.filter(event_type="member.updated").latest("id")
    assert AuditEvent.objects.filter(event_type="member.updated").count() == events_before + 1
    assert event.actor == yandang_staff
    assert event.on_behalf_of == elder
    assert event.old == {"name": "朱德林", "address": "", "skills": []}
    assert event.new == {"name": "朱德麟", "address": "雁荡路 1 号", "skills": ["理发", "聊天"]}


def test_an_edit_that_changes_nothing_writes_no_audit_row(yandang_staff, elder):
    # given
    before = AuditEvent.objects.count()

    # when
    people.member_update(
        actor=yandang_staff, member=elder, changes={"name": "朱德林", "mobile": "139 0100 0008"}
    )

    # then
    assert AuditEvent.objects.count() == before


def test_a_new_id_number_is_audited_masked_and_rederives_birth_date_and_sex(yandang_staff, elder):
    # given
    old_masked = elder.id_number_masked

    # when
    people.member_update(actor=yandang_staff, member=elder, changes={"id_number": EXAMPLE_ID})

    # then
    member = Member.objects.get(pk=elder.pk)
    assert (member.birth_date, member.sex) == (dt.date(1949, 12, 31), "F")
    event = AuditEvent.objects.filter(event_type="member.updated").latest("id")
    assert event.old == {"id_number": old_masked}
    assert event.new == {"id_number": "1101**********002X"}
    assert EXAMPLE_ID not in audit_text()


def test_an_edited_birth_date_may_not_contradict_the_id_number_on_file(yandang_staff, elder):
    """The ID number decides the birth date at registration; an edit must not quietly break that (ages drive
    withdrawal and volunteering rules)."""
    # given the elder's ID number says 1940-03-05
    assert elder.birth_date == dt.date(1940, 3, 5)

    # when / then
    with pytest.raises(ValidationFailed) as exc:
        people.member_update(actor=yandang_staff, member=elder, changes={"birth_date": dt.date(1960, 3, 5)})
    assert "birth_date" in exc.value.fields
    assert Member.objects.get(pk=elder.pk).birth_date == dt.date(1940, 3, 5)


def test_a_member_may_edit_their_own_contact_details(yandang_staff, elder):
    # given
    user = people.member_sign_in_create(
        actor=yandang_staff, member=elder, username="zhu-delin", password=PASSWORD
    )

    # when
    people.member_update(
        actor=user,
        member=elder,
        changes={"address": "雁荡路 2 号", "emergency_contact_mobile": "13700000001"},
    )

    # then
    member = Member.objects.get(pk=elder.pk)
    assert (member.address, member.emergency_contact_mobile) == ("雁荡路 2 号", "13700000001")
    event = AuditEvent.objects.filter(event_type="member.updated").latest("id")
    assert event.actor == user
    assert event.on_behalf_of is None


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "朱大林"},
        {"mobile": "13700000002", "name": "朱大林"},
        {"is_elder": False},
        {"health_notes": ""},
    ],
)
def test_a_member_may_not_edit_their_own_name_or_status(yandang_staff, elder, changes):
    # given
    user = people.member_sign_in_create(
        actor=yandang_staff, member=elder, username="zhu-delin", password=PASSWORD
    )
    before = AuditEvent.objects.count()

    # when / then
    with pytest.raises(PermissionDenied):
        people.member_update(actor=user, member=elder, changes=changes)
    member = Member.objects.get(pk=elder.pk)
    assert (member.name, member.mobile, member.is_elder) == ("朱德林", "13901000008", True)
    assert AuditEvent.objects.count() == before


def test_a_member_may_not_edit_another_member(yandang_staff, elder, tree):
    # given
    neighbour = register(yandang_staff, tree["310101023001"], name="邻居")
    user = people.member_sign_in_create(
        actor=yandang_staff, member=neighbour, username="neighbour", password=PASSWORD
    )

    # when / then
    with pytest.raises(PermissionDenied):
        people.member_update(actor=user, member=elder, changes={"address": "搬走了"})


def test_staff_may_not_move_a_member_into_another_staffs_community(yandang_staff, elder, tree):
    # given
    before = AuditEvent.objects.count()

    # when / then
    with pytest.raises(PermissionDenied):
        people.member_update(actor=yandang_staff, member=elder, changes={"home_region": tree["310109018021"]})
    assert Member.objects.get(pk=elder.pk).home_region == tree["310101023001"]
    assert AuditEvent.objects.count() == before


def test_a_member_may_only_live_in_a_community(yandang_staff, elder, tree):
    with pytest.raises(ValidationFailed) as exc:
        people.member_update(actor=yandang_staff, member=elder, changes={"home_region": tree["310101023"]})
    assert list(exc.value.fields) == ["home_region"]


def test_district_staff_move_a_member_between_their_communities(admin_user, elder, tree):
    # given
    district_staff = grant_user(admin_user, Role.COMMUNITY_STAFF, tree["310101"])

    # when
    people.member_update(actor=district_staff, member=elder, changes={"home_region": tree["310101023002"]})

    # then
    assert Member.objects.get(pk=elder.pk).home_region == tree["310101023002"]
    events = AuditEvent.objects.filter(event_type="member.updated")
    assert {(e.region_path, str(e.old), str(e.new)) for e in events} == {
        (path, str({"home_region": "310101023001"}), str({"home_region": "310101023002"}))
        for path in (tree["310101023002"].path, tree["310101023001"].path)  # both communities see the move
    }


# --- unmasking ------------------------------------------------------------------------------------


def test_staff_reveal_the_id_number_and_every_read_is_audited(yandang_staff, elder):
    # given
    number = make_id_number(dt.date(1940, 3, 5), "M", serial=8)

    # when
    first = people.member_id_number_reveal(actor=yandang_staff, member=elder)
    second = people.member_id_number_reveal(actor=yandang_staff, member=elder)

    # then
    assert first == second == number
    events = AuditEvent.objects.filter(event_type="member.id_number.viewed")
    assert events.count() == 2
    assert {(e.actor_id, e.subject_type, e.subject_id, e.region_path) for e in events} == {
        (yandang_staff.pk, "people.member", str(elder.pk), elder.home_region.path)
    }
    assert number not in audit_text()


def test_staff_reveal_the_health_notes_and_every_read_is_audited(yandang_staff, elder):
    # when
    notes = people.member_health_notes_reveal(actor=yandang_staff, member=elder)

    # then
    assert notes == "高血压"
    event = AuditEvent.objects.get(event_type="member.health_notes.viewed")
    assert (event.actor, event.subject_id) == (yandang_staff, str(elder.pk))
    assert "高血压" not in audit_text()


@pytest.mark.parametrize("reveal", [people.member_id_number_reveal, people.member_health_notes_reveal])
def test_an_auditor_cannot_unmask(admin_user, elder, tree, reveal):
    # given an auditor of the very community
    auditor = grant_user(admin_user, Role.AUDITOR, tree["310101023001"])
    before = AuditEvent.objects.count()

    # when / then
    with pytest.raises(PermissionDenied):
        reveal(actor=auditor, member=elder)
    assert AuditEvent.objects.count() == before


def test_a_member_may_unmask_their_own_data(yandang_staff, elder):
    # given
    user = people.member_sign_in_create(
        actor=yandang_staff, member=elder, username="zhu-delin", password=PASSWORD
    )

    # when
    number = people.member_id_number_reveal(actor=user, member=elder)
    notes = people.member_health_notes_reveal(actor=user, member=elder)

    # then
    assert number == make_id_number(dt.date(1940, 3, 5), "M", serial=8)
    assert notes == "高血压"
    assert AuditEvent.objects.filter(actor=user, event_type__endswith=".viewed").count() == 2


def test_a_member_may_not_unmask_another_member(yandang_staff, elder, tree):
    # given
    neighbour = register(yandang_staff, tree["310101023001"], name="邻居")
    user = people.member_sign_in_create(
        actor=yandang_staff, member=neighbour, username="neighbour", password=PASSWORD
    )

    # when / then
    with pytest.raises(PermissionDenied):
        people.member_id_number_reveal(actor=user, member=elder)
    with pytest.raises(PermissionDenied):
        people.member_health_notes_reveal(actor=user, member=elder)


# --- a member's own sign-in -----------------------------------------------------------------------


def test_a_member_signs_in_by_username_or_mobile(yandang_staff, elder):
    # given
    user = people.member_sign_in_create(
        actor=yandang_staff, member=elder, username="zhu-delin", password=PASSWORD
    )

    # when
    by_name = people.sign_in(identifier="ZHU-DELIN", password=PASSWORD)
    by_mobile = people.sign_in(identifier="+86 139-0100-0008", password=PASSWORD)

    # then
    assert by_name == by_mobile == user
    assert user.member == elder
    assert user.mobile == "13901000008"
    event = AuditEvent.objects.get(event_type="member.sign_in_created")
    assert (event.actor, event.on_behalf_of, event.new) == (yandang_staff, elder, {"username": "zhu-delin"})


def test_a_member_has_at_most_one_sign_in(yandang_staff, elder):
    # given
    people.member_sign_in_create(actor=yandang_staff, member=elder, username="zhu-delin", password=PASSWORD)

    # when / then
    with pytest.raises(Conflict) as exc:
        people.member_sign_in_create(actor=yandang_staff, member=elder, username="zhu-2", password=PASSWORD)
    assert exc.value.code == "sign_in_exists"


def test_a_sign_in_needs_a_free_username_and_a_strong_password(yandang_staff, elder):
    # when / then
    with pytest.raises(ValidationFailed) as exc:
        people.member_sign_in_create(
            actor=yandang_staff, member=elder, username="Yandang-Staff", password="1234"
        )
    assert set(exc.value.fields) == {"username", "password"}
    assert not User.objects.filter(member=elder).exists()
