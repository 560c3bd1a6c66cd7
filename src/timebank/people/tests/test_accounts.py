"""Sign-ins follow their member, never shadow each other and forgive old failures; no self-grants;
the registration record says what was registered."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.utils import timezone

from timebank.audit.models import AuditEvent
from timebank.common.errors import AuthenticationFailed, PermissionDenied, ValidationFailed
from timebank.conftest import PASSWORD
from timebank.people import services as people
from timebank.people.models import Role, User
from timebank.people.tests.builders import grant_user, register


@pytest.fixture
def member_user(yandang_staff, elder) -> User:
    return people.member_sign_in_create(
        actor=yandang_staff, member=elder, username="zhu-delin", password=PASSWORD
    )


def test_a_changed_mobile_number_still_signs_in(member_user, elder):
    # given a member who signs in with their mobile number
    assert people.sign_in(identifier="13901000008", password=PASSWORD) == member_user

    # when they change it themselves
    people.member_update(actor=member_user, member=elder, changes={"mobile": "13911112222"})

    # then the new number signs in and the old one does not
    assert people.sign_in(identifier="13911112222", password=PASSWORD) == member_user
    with pytest.raises(AuthenticationFailed):
        people.sign_in(identifier="13901000008", password=PASSWORD)


def test_a_mobile_number_taken_by_another_sign_in_is_refused(member_user, elder, yandang_staff, tree):
    # given another member with a sign-in on 13922223333
    other = register(yandang_staff, tree["310101023001"], name="另一位", mobile="13922223333")
    people.member_sign_in_create(actor=yandang_staff, member=other, username="other-one", password=PASSWORD)

    # when / then
    with pytest.raises(ValidationFailed) as exc:
        people.member_update(actor=yandang_staff, member=elder, changes={"mobile": "13922223333"})
    assert "mobile" in exc.value.fields
    elder.refresh_from_db()
    assert elder.mobile == "13901000008"


def test_a_username_of_digits_only_is_refused(yandang_staff, elder):
    # when / then: it would shadow someone's mobile number at sign-in
    with pytest.raises(ValidationFailed) as exc:
        people.member_sign_in_create(
            actor=yandang_staff, member=elder, username="13901000009", password=PASSWORD
        )
    assert "username" in exc.value.fields
    assert not User.objects.filter(member=elder).exists()


def test_failures_older_than_the_window_are_forgiven(member_user):
    # given one failure short of the lock, the last of them long ago
    for _ in range(settings.SIGN_IN_MAX_FAILURES - 1):
        with pytest.raises(AuthenticationFailed):
            people.sign_in(identifier="zhu-delin", password="wrong-password")
    long_ago = timezone.now() - dt.timedelta(minutes=settings.SIGN_IN_LOCK_MINUTES + 1)
    User.objects.filter(pk=member_user.pk).update(last_failed_sign_in=long_ago)

    # when one more failure comes
    with pytest.raises(AuthenticationFailed) as exc:
        people.sign_in(identifier="zhu-delin", password="wrong-password")

    # then it counts as the first, and the account is not locked
    assert exc.value.code == "authentication_failed"
    member_user.refresh_from_db()
    assert member_user.failed_sign_ins == 1
    assert member_user.locked_until is None


def test_nobody_grants_a_role_to_themselves(admin_user, tree):
    # given an operator of the district
    operator = grant_user(admin_user, Role.OPERATOR, tree["310101"])

    # when / then: an operator cannot unmask ID numbers, and may not make themselves station staff to do so
    with pytest.raises(PermissionDenied) as exc:
        people.staff_grant_create(
            actor=operator, user=operator, role=Role.STATION_STAFF, region=tree["310101023"]
        )
    assert exc.value.code == "self_grant"


def test_the_registration_record_names_who_was_registered_where(yandang_staff, tree):
    # when
    member = register(yandang_staff, tree["310101023001"], name="马玉兰")

    # then
    event = AuditEvent.objects.get(event_type="member.registered", subject_id=str(member.pk))
    assert event.new["name"] == "马玉兰"
    assert event.new["home_region"] == "310101023001"
    assert event.new["id_number"] == member.id_number_masked


def test_an_operator_sets_up_station_staff_whose_permissions_it_holds(admin_user, tree):
    # given a district operator
    operator = grant_user(admin_user, Role.OPERATOR, tree["310101"])
    clerk = people.staff_user_create(actor=operator, username="clerk-1", password=PASSWORD)

    # when
    grant = people.staff_grant_create(
        actor=operator, user=clerk, role=Role.STATION_STAFF, region=tree["310101023001"]
    )

    # then
    assert grant.role == Role.STATION_STAFF


def test_a_role_with_more_than_the_granter_holds_is_refused(admin_user, tree, monkeypatch):
    # given an operator whose role, in this deployment, does not include unmasking
    from timebank.people import access

    operator_perms = access.ROLE_PERMISSIONS[Role.OPERATOR] - {access.Perm.PEOPLE_UNMASK}
    monkeypatch.setitem(access.ROLE_PERMISSIONS, Role.OPERATOR, operator_perms)
    operator = grant_user(admin_user, Role.OPERATOR, tree["310101"])
    clerk = people.staff_user_create(actor=operator, username="clerk-2", password=PASSWORD)

    # when / then: station staff may unmask, so the operator may not make anyone station staff
    with pytest.raises(PermissionDenied):
        people.staff_grant_create(
            actor=operator, user=clerk, role=Role.STATION_STAFF, region=tree["310101023001"]
        )
    assert not clerk.grants.exists()
