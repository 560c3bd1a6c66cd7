"""Signing in by username or mobile, and the lockout after repeated failures."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.contrib.auth import authenticate
from django.utils import timezone

from timebank.audit.models import AuditEvent
from timebank.common.errors import AccountLocked, AuthenticationFailed
from timebank.conftest import PASSWORD
from timebank.people import services as people
from timebank.people.models import User


@pytest.fixture
def member_user(yandang_staff, elder) -> User:
    return people.member_sign_in_create(
        actor=yandang_staff, member=elder, username="zhu-delin", password=PASSWORD
    )


def fail_once(identifier: str) -> AuthenticationFailed:
    with pytest.raises(AuthenticationFailed) as exc:
        people.sign_in(identifier=identifier, password="wrong-password")
    return exc.value


def lock(identifier: str) -> None:
    for _ in range(settings.SIGN_IN_MAX_FAILURES - 1):
        assert fail_once(identifier).code == "authentication_failed"
    with pytest.raises(AccountLocked):
        people.sign_in(identifier=identifier, password="wrong-password")


def test_each_wrong_password_is_counted(member_user):
    # given / when
    error = fail_once("zhu-delin")
    fail_once("13901000008")

    # then
    assert error.code == "authentication_failed"
    assert not isinstance(error, AccountLocked)
    user = User.objects.get(pk=member_user.pk)
    assert user.failed_sign_ins == 2
    assert user.locked_until is None


def test_a_successful_sign_in_resets_the_count(member_user):
    # given
    fail_once("zhu-delin")
    fail_once("zhu-delin")

    # when
    people.sign_in(identifier="zhu-delin", password=PASSWORD)

    # then
    assert User.objects.get(pk=member_user.pk).failed_sign_ins == 0


def test_the_account_locks_after_the_allowed_failures(member_user, elder):
    # given / when
    before = timezone.now()
    lock("zhu-delin")

    # then
    user = User.objects.get(pk=member_user.pk)
    assert user.locked_until is not None
    assert user.locked_until >= before + dt.timedelta(minutes=settings.SIGN_IN_LOCK_MINUTES)
    event = AuditEvent.objects.get(event_type="user.locked")
    assert (event.subject_type, event.subject_id, event.actor) == ("people.user", str(user.pk), None)
    assert event.region_path == elder.home_region.path
    assert (event.new or {}).get("failures") == settings.SIGN_IN_MAX_FAILURES


def test_a_locked_account_refuses_even_the_right_password(member_user):
    # given
    lock("zhu-delin")

    # when / then, whichever identifier is used
    for identifier in ("zhu-delin", "13901000008"):
        with pytest.raises(AccountLocked) as exc:
            people.sign_in(identifier=identifier, password=PASSWORD)
        locked_until = User.objects.get(pk=member_user.pk).locked_until
        assert locked_until is not None
        assert exc.value.extra["until"] == locked_until.isoformat()


def test_after_the_lock_expires_the_right_password_works_and_the_counters_reset(member_user):
    # given
    lock("zhu-delin")
    User.objects.filter(pk=member_user.pk).update(locked_until=timezone.now() - dt.timedelta(seconds=1))

    # when
    user = people.sign_in(identifier="zhu-delin", password=PASSWORD)

    # then
    assert user == member_user
    stored = User.objects.get(pk=member_user.pk)
    assert (stored.failed_sign_ins, stored.locked_until) == (0, None)


def test_after_the_lock_expires_failures_count_from_zero(member_user):
    # given
    lock("zhu-delin")
    User.objects.filter(pk=member_user.pk).update(locked_until=timezone.now() - dt.timedelta(seconds=1))

    # when
    error = fail_once("zhu-delin")

    # then
    assert error.code == "authentication_failed"
    assert User.objects.get(pk=member_user.pk).failed_sign_ins == 1


@pytest.mark.parametrize("identifier", ["nobody", "13999999999", "", "   "])
def test_an_unknown_user_is_refused(member_user, identifier):
    with pytest.raises(AuthenticationFailed) as exc:
        people.sign_in(identifier=identifier, password=PASSWORD)
    assert exc.value.code == "authentication_failed"


def test_an_inactive_user_is_refused_even_with_the_right_password(member_user):
    # given
    User.objects.filter(pk=member_user.pk).update(is_active=False)

    # when / then
    with pytest.raises(AuthenticationFailed):
        people.sign_in(identifier="zhu-delin", password=PASSWORD)


def test_django_authenticate_uses_the_same_checks(member_user):
    # given / when / then
    assert authenticate(None, username="13901000008", password=PASSWORD) == member_user
    assert authenticate(None, username="zhu-delin", password="wrong-password") is None
    assert User.objects.get(pk=member_user.pk).failed_sign_ins == 1


def test_django_authenticate_refuses_a_locked_account(member_user):
    # given
    lock("zhu-delin")

    # when / then
    assert authenticate(None, username="zhu-delin", password=PASSWORD) is None


def test_django_authenticate_refuses_an_inactive_user(member_user):
    # given
    User.objects.filter(pk=member_user.pk).update(is_active=False)

    # when / then
    assert authenticate(None, username="zhu-delin", password=PASSWORD) is None
