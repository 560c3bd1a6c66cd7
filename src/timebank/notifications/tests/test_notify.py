"""Telling people: a member with a sign-in is told in the app (and by email if they gave one); a member
without one but with a mobile number gets an SMS. Email and SMS go out only once the work that caused them
commits. A notice is stored as its kind and parameters and shown in the reader's language."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.db import transaction
from django.utils import translation

from timebank.conftest import PASSWORD, make_id_number
from timebank.notifications.models import Notification
from timebank.notifications.selectors import notifications_for, notifications_unread_count
from timebank.notifications.services import MemorySms, notifications_mark_read, notify, render
from timebank.people import services as people
from timebank.people.models import Member, Role, User
from timebank.regions.models import Region

# What care sends when a volunteer checks out (see care/notices.py), with its English variants.
PARAMS: dict[str, Any] = {
    "number": "S000042",
    "elder": "朱德林",
    "volunteer": "李志强",
    "when": "2026-03-05 10:00",
    "place": "雁荡路 8 号",
    "place_en": "8 Yandang Road",
    "category": "生活协助",
    "category_en": "Assistance",
    "minutes": "1 小时 10 分",
    "minutes_en": "1 h 10 min",
    "reason": "",
}


def in_platform_language(kind: str) -> tuple[str, str]:
    """Email and SMS are written in the platform's language (the reader's choice is known only in the app)."""
    with translation.override(settings.LANGUAGE_CODE):
        return render(kind, PARAMS)


@pytest.fixture(autouse=True)
def sms_outbox() -> Iterator[list[tuple[str, str]]]:
    MemorySms.outbox.clear()
    yield MemorySms.outbox
    MemorySms.outbox.clear()


@pytest.fixture
def yandang(tree: dict[str, Region]) -> Region:
    return tree["310101023001"]


@pytest.fixture
def with_sign_in(yandang_staff: User, yandang: Region) -> Member:
    """李志强, who signs in to the app (no email)."""
    m = people.member_register(
        actor=yandang_staff,
        name="李志强",
        home_region=yandang,
        mobile="13901000021",
        id_number=make_id_number(dt.date(1962, 2, 2), "M", serial=21),
        is_volunteer=True,
    )
    people.member_sign_in_create(actor=yandang_staff, member=m, username="li-zhiqiang", password=PASSWORD)
    return m


@pytest.fixture
def without_phone(yandang_staff: User, yandang: Region) -> Member:
    """沈阿婆, with neither a sign-in nor a mobile number."""
    return people.member_register(
        actor=yandang_staff,
        name="沈阿婆",
        home_region=yandang,
        id_number=make_id_number(dt.date(1933, 3, 3), "F", serial=22),
        is_elder=True,
    )


@pytest.fixture
def staff_with_email(admin_user: User, yandang: Region) -> User:
    user = people.staff_user_create(
        actor=admin_user, username="yandang-mail", password=PASSWORD, email="station@example.org"
    )
    people.staff_grant_create(actor=admin_user, user=user, role=Role.STATION_STAFF, region=yandang)
    return User.objects.get(pk=user.pk)


def test_members_with_a_sign_in_and_staff_are_told_in_the_app(
    elder: Member, with_sign_in: Member, without_phone: Member, staff_with_email: User
) -> None:
    # when a notice goes to staff, a member who signs in, and two who do not
    created = notify(
        kind="care.completed",
        params=PARAMS,
        users=[staff_with_email],
        members=[with_sign_in, elder, without_phone, None],
        link="/care/42/",
    )
    # then the two with a sign-in find it in the app, with its parameters and link
    member_user = User.objects.get(member=with_sign_in)
    assert {n.recipient for n in created} == {staff_with_email, member_user}
    for user in (staff_with_email, member_user):
        [notice] = notifications_for(user)
        assert (notice.kind, notice.params, notice.link) == ("care.completed", PARAMS, "/care/42/")
        assert notifications_unread_count(user) == 1
    assert Notification.objects.count() == 2


def test_somebody_named_twice_is_told_once(with_sign_in: Member) -> None:
    member_user = User.objects.get(member=with_sign_in)
    notify(kind="care.completed", params=PARAMS, users=[member_user], members=[with_sign_in, with_sign_in])
    assert Notification.objects.filter(recipient=member_user).count() == 1


def test_somebody_without_a_sign_in_named_twice_gets_one_text(
    elder: Member, sms_outbox: list[tuple[str, str]], django_capture_on_commit_callbacks: Any
) -> None:
    # when a notice names 朱德林 twice (as the elder and as the one who pays)
    with django_capture_on_commit_callbacks(execute=True):
        notify(kind="care.completed", params=PARAMS, members=[elder, elder])
    # then he gets one text message
    assert [mobile for mobile, _text in sms_outbox] == ["13901000008"]


def test_inactive_users_are_not_told(staff_with_email: User, django_capture_on_commit_callbacks: Any) -> None:
    User.objects.filter(pk=staff_with_email.pk).update(is_active=False)
    staff_with_email.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        notify(kind="care.completed", params=PARAMS, users=[staff_with_email])
    assert Notification.objects.count() == 0
    assert mail.outbox == []


def test_email_goes_only_to_those_who_gave_an_address_after_commit(
    with_sign_in: Member, staff_with_email: User, django_capture_on_commit_callbacks: Any
) -> None:
    # when a notice goes to staff with an email and to a member without one
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        notify(kind="care.completed", params=PARAMS, users=[staff_with_email], members=[with_sign_in])
        # then nothing is mailed before the work commits
        assert mail.outbox == []
    # and once it commits, one email goes to the station, in the platform's language
    assert len(callbacks) == 1
    [message] = mail.outbox
    assert message.to == ["station@example.org"]
    title, body = in_platform_language("care.completed")
    assert (message.subject, message.body) == (title, body)
    assert "生活协助" in message.body and "1 小时 10 分" in message.body


def test_sms_for_a_member_without_a_sign_in(
    elder: Member,
    with_sign_in: Member,
    without_phone: Member,
    sms_outbox: list[tuple[str, str]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    # given 朱德林 has a mobile but no sign-in, 李志强 signs in, 沈阿婆 has neither
    # when all three are told
    with django_capture_on_commit_callbacks(execute=True):
        notify(kind="care.completed", params=PARAMS, members=[elder, with_sign_in, without_phone])
        assert sms_outbox == []
    # then only 朱德林 gets a text message, with the title and the body
    [(mobile, text)] = sms_outbox
    assert mobile == "13901000008"
    title, body = in_platform_language("care.completed")
    assert text == f"{title}：{body}"
    assert "S000042" in text and "生活协助" in text
    assert mail.outbox == []


def test_nothing_is_delivered_when_the_work_is_rolled_back(
    elder: Member,
    staff_with_email: User,
    sms_outbox: list[tuple[str, str]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    class Failed(Exception):
        pass

    # when the work that notified fails after the notice was written
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(Failed),
        transaction.atomic(),
    ):
        notify(kind="care.completed", params=PARAMS, users=[staff_with_email], members=[elder])
        raise Failed
    # then nobody is told in any way
    assert callbacks == []
    assert Notification.objects.count() == 0
    assert mail.outbox == []
    assert sms_outbox == []


def test_render_uses_the_english_parameters_in_english() -> None:
    # when the notice is shown to a reader who chose English
    with translation.override("en"):
        title, body = render("care.completed", PARAMS)
    # then the English category and duration are used
    assert title == "Please confirm service S000042"
    assert body == (
        "李志强 recorded 1 h 10 min of Assistance. Confirm it, or tell the station if it is wrong."
    )
    # and in Chinese, the Chinese ones
    with translation.override("zh-hans"):
        title, body = render("care.completed", PARAMS)
    assert "S000042" in title
    assert "生活协助" in body and "1 小时 10 分" in body and "Assistance" not in body


def test_render_of_an_unknown_kind_is_a_plain_notice() -> None:
    with translation.override("en"):
        assert render("nobody.knows", {"number": "S1"}) == ("Notice", "")


def test_marking_notices_read(with_sign_in: Member, staff_with_email: User) -> None:
    # given three notices for the volunteer and one for the station
    member_user = User.objects.get(member=with_sign_in)

    def send() -> Notification:
        return notify(kind="care.completed", params=PARAMS, users=[member_user])[0]

    first, second, third = send(), send(), send()
    notify(kind="care.completed", params=PARAMS, users=[staff_with_email])
    # when he reads one, then two remain unread
    assert notifications_mark_read(user=member_user, ids=[second.pk]) == 1
    assert notifications_unread_count(member_user) == 2
    # and somebody else's notice cannot be marked by him
    theirs = Notification.objects.get(recipient=staff_with_email)
    assert notifications_mark_read(user=member_user, ids=[theirs.pk]) == 0
    assert notifications_unread_count(staff_with_email) == 1
    # when he marks all read, the rest are read
    assert notifications_mark_read(user=member_user) == 2
    assert notifications_unread_count(member_user) == 0
    assert {n.pk for n in notifications_for(member_user)} == {first.pk, second.pk, third.pk}
