"""A PIN-only sign-in for elders, set up by staff: six digits, not guessable, locked after failures."""

from __future__ import annotations

import datetime as dt

import pytest

from timebank.common.errors import AccountLocked, ApplicationError, AuthenticationFailed, PermissionDenied
from timebank.people import services as people
from timebank.people.models import Member, User
from timebank.people.tests.builders import register
from timebank.regions.models import Region


@pytest.fixture
def granny(yandang_staff: User, tree: dict[str, Region]) -> Member:
    return register(
        yandang_staff, tree["310101023001"], name="钱阿婆", birth=dt.date(1941, 3, 9), is_elder=True
    )


@pytest.mark.parametrize(
    ("pin", "code"),
    [
        ("12345", "sign_in_pin_invalid"),
        ("12a456", "sign_in_pin_invalid"),
        ("²²²²²²", "sign_in_pin_invalid"),
        ("999999", "sign_in_pin_weak"),
        ("654321", "sign_in_pin_weak"),
        ("410309", "sign_in_pin_weak"),
    ],
)
def test_a_pin_that_is_not_six_digits_or_is_guessable_is_refused(yandang_staff, granny, pin, code):
    with pytest.raises(ApplicationError) as caught:
        people.member_sign_in_pin_set(actor=yandang_staff, member=granny, pin=pin)
    assert caught.value.code == code and set(caught.value.fields) == {"pin"}
    assert not User.objects.filter(member=granny).exists()


def test_the_elder_signs_in_by_mobile_and_pin_and_wrong_pins_lock(yandang_staff, granny, settings):
    user = people.member_sign_in_pin_set(actor=yandang_staff, member=granny, pin="５８２０３７")  # full-width
    assert user.username == f"m{granny.pk}" and user.mobile == granny.mobile
    assert people.sign_in(identifier=granny.mobile, password="582037").pk == user.pk
    for _ in range(settings.SIGN_IN_MAX_FAILURES - 1):
        with pytest.raises(AuthenticationFailed):
            people.sign_in(identifier=granny.mobile, password="000001")
    with pytest.raises(AccountLocked):
        people.sign_in(identifier=granny.mobile, password="000002")
    # and setting a new PIN (at the station, in person) lifts the lock
    people.member_sign_in_pin_set(actor=yandang_staff, member=granny, pin="730481")
    assert people.sign_in(identifier=granny.mobile, password="730481").pk == user.pk


def test_only_staff_of_her_community_set_it(jinyang_staff, granny):
    with pytest.raises(PermissionDenied):
        people.member_sign_in_pin_set(actor=jinyang_staff, member=granny, pin="582037")
