"""The elder's word that a service happened: a PIN or a one-time card code typed on the volunteer's phone, her
own device, her verified family, or staff who phoned her. Guessing is locked out; cards cannot be forged,
borrowed or reused once replaced; nobody confirms a service they gave."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import time_machine
from django.conf import settings
from django.core import signing
from django.utils import timezone, translation

from timebank.audit.models import AuditEvent
from timebank.care import cards
from timebank.care import services as care
from timebank.care.models import ConfirmMethod, ServiceCard, ServiceOrder, Status
from timebank.care.tests.conftest import at, member, user_of
from timebank.care.tests.flows import failed_attempts, refused, reload, worked
from timebank.common.errors import ApplicationError
from timebank.notifications.models import Notification
from timebank.people import services as people
from timebank.people.models import Member, Relation, Role, User
from timebank.regions.models import Region

PIN = "2580"


@pytest.fixture
def completed(post: Callable[..., ServiceOrder], helper: Member) -> Callable[..., ServiceOrder]:
    """A service of 王阿婆 that 李志强 gave and checked out of, waiting for her confirmation."""

    def make(days: int = 1) -> ServiceOrder:
        order = post(window_start=at(days, 10), window_end=at(days, 11))
        care.order_accept(actor=user_of(helper), order=order)
        return worked(order, helper, at(days, 10), at(days, 11))

    return make


def confirm_with_pin(order: ServiceOrder, volunteer: Member, pin: str) -> ServiceOrder:
    return care.order_confirm(actor=user_of(volunteer), order=order, method=ConfirmMethod.PIN, secret=pin)


# --- the PIN ------------------------------------------------------------------------------------------------


def test_a_wrong_pin_says_how_many_tries_are_left_and_is_counted(
    completed: Callable[..., ServiceOrder], old_elder: Member, helper: Member, station: User
) -> None:
    # given 王阿婆's PIN is set and a service waits for it
    care.elder_pin_set(actor=station, elder=old_elder, pin=PIN)
    order = completed()
    # when she mistypes it on his phone
    with translation.override("en"), refused("care_wrong_code") as caught:
        confirm_with_pin(order, helper, "2581")
    # then she is told how many tries are left, the failure is counted and the service still waits
    assert "4 tries left" in str(caught.value.message)
    assert caught.value.fields == {"pin": [str(caught.value.message)]}
    assert failed_attempts(old_elder) == 1
    assert reload(order).status == Status.COMPLETED
    # and the right PIN then confirms it and clears the count
    order = confirm_with_pin(order, helper, PIN)
    assert order.status == Status.CONFIRMED and order.confirmation_method == ConfirmMethod.PIN
    assert failed_attempts(old_elder) == 0


def test_five_wrong_codes_lock_confirmation_even_for_the_right_pin(
    completed: Callable[..., ServiceOrder], old_elder: Member, helper: Member, station: User
) -> None:
    # given a service waiting for her PIN
    care.elder_pin_set(actor=station, elder=old_elder, pin=PIN)
    card = care.service_card_issue(actor=station, elder=old_elder)
    order = completed()
    # when somebody guesses four times, each guess is counted and says what is left
    for left in (4, 3, 2, 1):
        with translation.override("en"), refused("care_wrong_code") as caught:
            confirm_with_pin(order, helper, "0000" if left % 2 else "9753")
        assert f"{left} tries left" in str(caught.value.message)
        assert failed_attempts(old_elder) == 5 - left
    # and the fifth guess locks confirmation
    with refused("care_confirm_locked", writes_nothing=False) as caught:
        confirm_with_pin(order, helper, "1357")
    assert "until" in caught.value.extra
    assert AuditEvent.objects.filter(event_type="care.confirm.locked", subject_id=str(old_elder.pk)).exists()
    # then even the right PIN and a good card code are refused while it is locked
    with refused("care_confirm_locked"):
        confirm_with_pin(order, helper, PIN)
    with refused("care_confirm_locked"):
        care.order_confirm(
            actor=user_of(helper),
            order=order,
            method=ConfirmMethod.CARD_CODE,
            secret=cards.card_code(card.serial, 1),
        )
    assert reload(order).status == Status.COMPLETED
    # and after the lock has passed, the right PIN works
    later = timezone.now() + dt.timedelta(minutes=settings.CARE_CONFIRM_LOCK_MINUTES + 1)
    with time_machine.travel(later, tick=False):
        order = confirm_with_pin(order, helper, PIN)
    assert order.status == Status.CONFIRMED


def test_no_pin_set_is_not_counted_as_a_guess(
    completed: Callable[..., ServiceOrder], old_elder: Member, helper: Member
) -> None:
    order = completed()
    with refused("care_pin_not_set"):
        confirm_with_pin(order, helper, PIN)
    assert failed_attempts(old_elder) == 0


@pytest.mark.parametrize(
    ("pin", "code"),
    [
        ("1234", "care_weak_pin"),
        ("1111", "care_weak_pin"),
        ("98765", "care_weak_pin"),
        ("12", "care_bad_pin"),
        ("1234567", "care_bad_pin"),
        ("12a4", "care_bad_pin"),
        pytest.param("²⁵⁸⁰", "care_bad_pin", id="superscript digits"),  # digits to str.isdigit
    ],
)
def test_easy_or_malformed_pins_are_refused(old_elder: Member, pin: str, code: str) -> None:
    with refused(code):
        care.elder_pin_set(actor=user_of(old_elder), elder=old_elder, pin=pin)


def test_the_elder_sets_her_own_pin_but_her_son_does_not(
    completed: Callable[..., ServiceOrder], old_elder: Member, son: Member, helper: Member
) -> None:
    # when she sets her PIN herself, it confirms her services
    care.elder_pin_set(actor=user_of(old_elder), elder=old_elder, pin="4071")
    assert confirm_with_pin(completed(), helper, "4071").status == Status.CONFIRMED
    # and her son may not set it for her
    with refused("permission_denied"):
        care.elder_pin_set(actor=user_of(son), elder=old_elder, pin="5082")


# --- the service card ---------------------------------------------------------------------------------------


def test_a_card_code_works_once(
    completed: Callable[..., ServiceOrder], old_elder: Member, helper: Member, station: User
) -> None:
    # given her card, and code 3 confirmed yesterday's visit
    card = care.service_card_issue(actor=station, elder=old_elder)
    code = cards.card_code(card.serial, 3)
    first, second = completed(1), completed(2)
    care.order_confirm(actor=user_of(helper), order=first, method=ConfirmMethod.CARD_CODE, secret=code)
    # when the same code is read out again for another visit
    with pytest.raises(ApplicationError) as caught:
        care.order_confirm(actor=user_of(helper), order=second, method=ConfirmMethod.CARD_CODE, secret=code)
    # then it is refused and the second visit still waits
    assert caught.value.code in {"care_code_used", "care_wrong_code"}
    assert reload(second).status == Status.COMPLETED
    assert ServiceCard.objects.get(pk=card.pk).used_codes == [3]
    # and the next code works
    care.order_confirm(
        actor=user_of(helper),
        order=second,
        method=ConfirmMethod.CARD_CODE,
        secret=cards.card_code(card.serial, 4),
    )
    assert ServiceCard.objects.get(pk=card.pk).used_codes == [3, 4]


def test_a_card_code_needs_a_card(completed: Callable[..., ServiceOrder], helper: Member) -> None:
    order = completed()
    with refused("care_no_card"):
        care.order_confirm(
            actor=user_of(helper), order=order, method=ConfirmMethod.CARD_CODE, secret="123456"
        )


@pytest.fixture
def assigned(post: Callable[..., ServiceOrder], helper: Member) -> ServiceOrder:
    return care.order_accept(actor=user_of(helper), order=post())


def check_in_with(order: ServiceOrder, volunteer: Member, token: str) -> ServiceOrder:
    with time_machine.travel(at(1, 10), tick=False):
        return care.order_check_in(actor=user_of(volunteer), order=order, token=token)


def test_a_tampered_qr_code_is_refused(
    assigned: ServiceOrder, old_elder: Member, helper: Member, station: User
) -> None:
    # given her card's token, with its signature altered, and one made up
    card = care.service_card_issue(actor=station, elder=old_elder)
    token = cards.card_token(card.serial)
    payload, signature = token.rsplit(":", 1)
    altered = f"{payload}:{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    made_up = signing.dumps({"card": card.serial}, salt="somebody-elses-salt")
    # when the volunteer scans them, then neither checks him in
    for bad in (altered, made_up, "not-a-card"):
        with refused("care_card_invalid"):
            check_in_with(assigned, helper, bad)
    # and the real card does
    assert check_in_with(assigned, helper, token).check_in_method == "qr"


def test_another_elders_card_checks_in_nobody(
    assigned: ServiceOrder, elder: Member, helper: Member, station: User
) -> None:
    # given a photo of 朱德林's card (another elder of 雁荡)
    other = care.service_card_issue(actor=station, elder=elder)
    # when the volunteer of 王阿婆's service scans it, then it is refused
    with refused("care_card_wrong_elder"):
        check_in_with(assigned, helper, cards.card_token(other.serial))


def test_a_replaced_card_stops_working(
    completed: Callable[..., ServiceOrder],
    assigned: ServiceOrder,
    old_elder: Member,
    helper: Member,
    station: User,
) -> None:
    # given her first card was lost and a new one printed
    lost = care.service_card_issue(actor=station, elder=old_elder)
    new = care.service_card_issue(actor=station, elder=old_elder)
    # when the lost card's QR code is scanned, then it is refused as replaced
    with refused("care_card_revoked"):
        check_in_with(assigned, helper, cards.card_token(lost.serial))
    # and the lost card's codes confirm nothing
    order = completed(2)
    with pytest.raises(ApplicationError) as caught:
        care.order_confirm(
            actor=user_of(helper),
            order=order,
            method=ConfirmMethod.CARD_CODE,
            secret=cards.card_code(lost.serial, 1),
        )
    assert caught.value.code == "care_wrong_code"
    # while the new card works for both
    assert check_in_with(assigned, helper, cards.card_token(new.serial)).status == Status.IN_PROGRESS
    care.order_confirm(
        actor=user_of(helper),
        order=order,
        method=ConfirmMethod.CARD_CODE,
        secret=cards.card_code(new.serial, 1),
    )
    assert reload(order).status == Status.CONFIRMED


# --- who confirms -------------------------------------------------------------------------------------------


def test_the_son_confirms_for_his_mother(
    completed: Callable[..., ServiceOrder], son: Member, helper: Member
) -> None:
    # when her son confirms as her proxy
    order = care.order_confirm(actor=user_of(son), order=completed(), method=ConfirmMethod.PROXY)
    # then it is confirmed in his name and the volunteer is told
    assert order.status == Status.CONFIRMED
    assert order.confirmation_method == ConfirmMethod.PROXY and order.confirmed_by == user_of(son)
    assert Notification.objects.filter(recipient=user_of(helper), kind="care.confirmed").exists()


def test_the_elder_confirms_on_her_own_device_and_nobody_else_does(
    completed: Callable[..., ServiceOrder], old_elder: Member, son: Member, helper: Member
) -> None:
    order = completed()
    with refused("care_not_the_elder"):
        care.order_confirm(actor=user_of(son), order=order, method=ConfirmMethod.DEVICE)
    order = care.order_confirm(actor=user_of(old_elder), order=order, method=ConfirmMethod.DEVICE)
    assert order.confirmed_by == user_of(old_elder)


def test_a_volunteer_cannot_confirm_his_own_service(
    completed: Callable[..., ServiceOrder], helper: Member
) -> None:
    order = completed()
    with refused("care_not_the_elder"):
        care.order_confirm(actor=user_of(helper), order=order, method=ConfirmMethod.DEVICE)
    with refused("care_not_proxy"):
        care.order_confirm(actor=user_of(helper), order=order, method=ConfirmMethod.PROXY)
    with refused("permission_denied"):
        care.order_confirm(actor=user_of(helper), order=order, method=ConfirmMethod.STAFF, note="我打过电话")


def test_a_grandson_who_served_cannot_confirm_as_family(
    post: Callable[..., ServiceOrder],
    old_elder: Member,
    station: User,
    reviewer: User,
    tree: dict[str, Region],
) -> None:
    # given her grandson, with a verified bond, is also a volunteer and served her
    grandson = member(
        station,
        tree["310101023001"],
        "王小虎",
        birth=dt.date(1998, 9, 9),
        sex="M",
        login="wang-xh",
        is_volunteer=True,
    )
    bond = people.family_bond_propose(
        actor=station, member=old_elder, relative=grandson, relation=Relation.GRANDCHILD
    )
    people.family_bond_decide(actor=reviewer, bond=bond, approve=True)
    order = care.order_accept(actor=user_of(grandson), order=post())
    order = worked(order, grandson, at(1, 10), at(1, 11))
    # when he confirms his own visit as her family, then it is refused
    with refused("care_not_proxy"):
        care.order_confirm(actor=user_of(grandson), order=order, method=ConfirmMethod.PROXY)
    with refused("care_not_the_elder"):
        care.order_confirm(actor=user_of(grandson), order=order, method=ConfirmMethod.DEVICE)


def test_staff_confirm_after_calling_the_elder_with_a_note(
    completed: Callable[..., ServiceOrder], station: User
) -> None:
    order = completed()
    # when the station confirms without saying how, then it is refused
    with refused("care_reason_required"):
        care.order_confirm(actor=station, order=order, method=ConfirmMethod.STAFF, note="  ")
    # and with a note it is confirmed
    order = care.order_confirm(
        actor=station, order=order, method=ConfirmMethod.STAFF, note="已电话联系王阿婆"
    )
    assert order.status == Status.CONFIRMED and order.confirmation_method == ConfirmMethod.STAFF
    event = AuditEvent.objects.filter(subject_id=str(order.pk), event_type="care.order.confirmed").get()
    assert (event.new or {}).get("note") == "已电话联系王阿婆"


def test_staff_who_gave_the_service_cannot_confirm_it(
    post: Callable[..., ServiceOrder], admin_user: User, helper: Member, tree: dict[str, Region]
) -> None:
    # given 李志强 also works at the station
    staff_self = user_of(helper)
    people.staff_grant_create(
        actor=admin_user, user=staff_self, role=Role.STATION_STAFF, region=tree["310101023001"]
    )
    order = care.order_accept(actor=staff_self, order=post())
    order = worked(order, helper, at(1, 10), at(1, 11))
    # when he confirms it as staff, then it is refused
    with refused("care_own_service"):
        care.order_confirm(
            actor=User.objects.get(pk=staff_self.pk), order=order, method=ConfirmMethod.STAFF, note="x"
        )


def test_someone_unrelated_cannot_use_the_pin(
    completed: Callable[..., ServiceOrder], old_elder: Member, neighbour_helper: Member, station: User
) -> None:
    care.elder_pin_set(actor=station, elder=old_elder, pin=PIN)
    order = completed()
    with refused("permission_denied"):
        confirm_with_pin(order, neighbour_helper, PIN)
    assert failed_attempts(old_elder) == 0


def test_paper_is_not_a_way_to_confirm_in_the_app(
    completed: Callable[..., ServiceOrder], station: User
) -> None:
    order = completed()
    with refused("care_bad_method"):
        care.order_confirm(actor=station, order=order, method=ConfirmMethod.PAPER)


def test_staff_of_another_district_cannot_confirm(
    completed: Callable[..., ServiceOrder], hongkou_staff: User, old_elder: Member
) -> None:
    order = completed()
    with refused("permission_denied"):
        care.order_confirm(actor=hongkou_staff, order=order, method=ConfirmMethod.STAFF, note="电话确认")
    with refused("permission_denied"):
        care.order_confirm(actor=hongkou_staff, order=order, method=ConfirmMethod.PIN, secret=PIN)
    with refused("permission_denied"):
        care.elder_pin_set(actor=hongkou_staff, elder=old_elder, pin="4071")
    with refused("permission_denied"):
        care.service_card_issue(actor=hongkou_staff, elder=old_elder)
