"""Safeguards against one person making or inflating a credit alone, against volunteers confirming with codes
they know, against leaks, and against input that would otherwise break a page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import time_machine

from timebank.care import services as care
from timebank.care.models import ConfirmMethod, ElderSecret, Funding, Outcome, ServiceOrder, Status
from timebank.care.selectors import order_get
from timebank.care.tests.conftest import at, balance, deposit, user_of
from timebank.care.tests.flows import confirmed_by_elder, refused, reload, worked
from timebank.common.errors import ApplicationError, NotFound
from timebank.conftest import staff
from timebank.ledger import services as ledger
from timebank.ledger.models import Account, AccountKind, Transaction, TransactionKind
from timebank.notifications.models import Notification
from timebank.people import services as people
from timebank.people.models import Member, Role, StaffGrant, User
from timebank.regions import services as regions
from timebank.regions.models import Region

# --- four eyes ---------------------------------------------------------------------------------------------


def test_whoever_entered_the_times_and_phoned_the_elder_cannot_also_approve(
    post: Callable[..., ServiceOrder], station: User, reviewer: User, helper: Member, old_elder: Member
) -> None:
    # given a one-hour request whose times the station entered as four hours, then confirmed by phone
    order = care.order_assign(actor=station, order=post(), volunteer=helper)
    start, end = at(1, 9), at(1, 13)
    with time_machine.travel(at(1, 14), tick=False):
        care.order_times_record(actor=station, order=order, started_at=start, ended_at=end)
    care.order_confirm(actor=station, order=order, method=ConfirmMethod.STAFF, note="电话确认")
    # when the same person approves, then it is refused and nothing moves
    with refused("care_own_entry"):
        care.order_approve(actor=station, order=order)
    assert balance(helper) == (0, 0)
    # and a second person can
    assert care.order_approve(actor=reviewer, order=order).status == Status.CREDITED


def test_whoever_complained_cannot_also_decide_the_complaint(
    post: Callable[..., ServiceOrder], station: User, reviewer: User, helper: Member
) -> None:
    order = confirmed_by_elder(
        worked(care.order_accept(actor=user_of(helper), order=post()), helper, at(1, 10), at(1, 11))
    )
    order = care.order_approve(actor=reviewer, order=order)
    dispute = care.order_dispute(actor=station, order=order, reason="时间可能记错")
    with refused("care_own_entry"):
        care.dispute_resolve(
            actor=station,
            dispute=dispute,
            outcome=Outcome.CORRECTED,
            resolution="改为九小时",
            corrected_minutes=540,
        )
    assert balance(helper) == (60, 0)


def test_the_paper_records_enterer_is_not_its_approver(
    station: User, reviewer: User, helper: Member, old_elder: Member
) -> None:
    order = care.paper_record_create(
        actor=station,
        elder=old_elder,
        volunteer=helper,
        category="assistance",
        started_at=at(-2, 9),
        ended_at=at(-2, 10),
        funding=Funding.OWN,
    )
    with refused("care_own_entry"):
        care.order_approve(actor=station, order=order)
    # the volunteer and the elder's side were told a card was entered
    assert Notification.objects.filter(recipient=user_of(helper), kind="care.paper_entered").exists()
    assert Notification.objects.filter(recipient=user_of(old_elder), kind="care.paper_entered").exists()


# --- volunteers who are also staff -------------------------------------------------------------------------


@pytest.fixture
def volunteer_staff(admin_user: User, tree: dict[str, Region], helper: Member) -> User:
    """李志强 also works at the station: his own sign-in holds a station grant."""
    people.staff_grant_create(
        actor=admin_user, user=user_of(helper), role=Role.STATION_STAFF, region=tree["310101023"]
    )
    return User.objects.get(pk=user_of(helper).pk)


def test_a_volunteer_with_a_staff_grant_cannot_set_the_pin_of_an_elder_he_serves(
    post: Callable[..., ServiceOrder], volunteer_staff: User, old_elder: Member
) -> None:
    care.order_accept(actor=volunteer_staff, order=post())
    with refused("care_own_service"):
        care.elder_pin_set(actor=volunteer_staff, elder=old_elder, pin="2580")
    with refused("care_own_service"):
        care.service_card_issue(actor=volunteer_staff, elder=old_elder)
    with refused("care_own_service"):
        care.service_card_print(actor=volunteer_staff, elder=old_elder)


def test_a_volunteer_is_never_confirmed_with_a_code_he_set_or_printed(
    post: Callable[..., ServiceOrder], volunteer_staff: User, station: User, helper: Member, old_elder: Member
) -> None:
    # given he set her PIN and printed her card before taking any service of hers
    care.elder_pin_set(actor=volunteer_staff, elder=old_elder, pin="2580")
    care.service_card_issue(actor=station, elder=old_elder)
    printed = care.service_card_print(actor=volunteer_staff, elder=old_elder)
    order = worked(care.order_accept(actor=volunteer_staff, order=post()), helper, at(1, 10), at(1, 11))
    # when he confirms his service with that PIN or a code of that card, then both are refused
    with refused("care_own_secret"):
        care.order_confirm(actor=volunteer_staff, order=order, method=ConfirmMethod.PIN, secret="2580")
    with refused("care_own_secret"):
        care.order_confirm(
            actor=volunteer_staff, order=order, method=ConfirmMethod.CARD_CODE, secret=printed.codes[0][1]
        )
    # and the elder confirming on her own phone still works
    assert confirmed_by_elder(order).status == Status.CONFIRMED


# --- leaks and lost rights ---------------------------------------------------------------------------------


def test_a_volunteer_is_not_told_whose_savings_fall_short(
    post: Callable[..., ServiceOrder], helper: Member, neighbour_helper: Member, station: User
) -> None:
    # given three four-hour visits on her ten hours of savings, two of them already taken
    orders = [post(window_start=at(day, 8), window_end=at(day, 12)) for day in (1, 2, 3)]
    for order in orders[:2]:
        care.order_accept(actor=user_of(helper), order=order)
    # when a neighbour volunteer takes the third, then he is told only that it cannot be taken now
    with refused("care_insufficient_savings") as caught:
        care.order_accept(actor=user_of(neighbour_helper), order=orders[2])
    said = str(caught.value.message) + str(caught.value.fields)
    assert orders[2].elder.name not in said and "2 h" not in said
    # while the station, assigning it, is told the reason in full
    with refused("care_insufficient_savings") as caught:
        care.order_assign(actor=station, order=orders[2], volunteer=neighbour_helper)
    assert orders[2].elder.name in str(caught.value.message)


def test_staff_who_lost_their_grant_lose_the_requests_they_posted(
    post: Callable[..., ServiceOrder], admin_user: User, tree: dict[str, Region], old_elder: Member
) -> None:
    clerk = staff(admin_user, "temp-clerk", Role.STATION_STAFF, tree["310101023"])
    order = post(actor=clerk)
    for grant in StaffGrant.objects.filter(user=clerk):
        people.staff_grant_revoke(actor=admin_user, grant=grant)
    clerk = User.objects.get(pk=clerk.pk)
    with pytest.raises(NotFound):
        order_get(clerk, order.pk)
    with refused("permission_denied"):
        care.order_cancel(actor=clerk, order=order, reason="不要了")


def test_who_pays_is_checked_again_when_a_volunteer_is_assigned(
    post: Callable[..., ServiceOrder],
    station: User,
    helper: Member,
    old_elder: Member,
    operator: User,
    tree: dict[str, Region],
) -> None:
    # given a weekly public-fund visit posted while she was a verified priority elder
    people.priority_group_verify(actor=station, member=old_elder, group="living_alone")
    care.fund_budget_set(actor=operator, region=tree["310101"], year=at(8).year, limit_minutes=6000)
    orders = care.order_create(
        actor=station,
        elder=old_elder,
        category="emotional_support",
        window_start=at(1, 10),
        window_end=at(1, 11),
        funding=Funding.PUBLIC,
        repeat_weeks=2,
    )
    # when her status is revoked, then the next visit can no longer be paid from the fund
    people.priority_group_revoke(actor=station, member=old_elder, group="living_alone", reason="已与子女同住")
    with refused("care_not_priority"):
        care.order_assign(actor=station, order=orders[1], volunteer=helper)


# --- bad input ---------------------------------------------------------------------------------------------


def test_naive_times_are_refused_by_field(
    post: Callable[..., ServiceOrder], station: User, helper: Member, old_elder: Member
) -> None:
    naive = dt.datetime(2026, 12, 24, 10, 0)
    with refused("care_bad_time") as caught:
        post(window_start=naive, window_end=naive + dt.timedelta(hours=1))
    assert set(caught.value.fields) == {"window_start", "window_end"}
    with refused("care_bad_time") as caught:
        care.paper_record_create(
            actor=station,
            elder=old_elder,
            volunteer=helper,
            category="assistance",
            started_at=naive,
            ended_at=naive + dt.timedelta(hours=1),
            funding=Funding.OWN,
        )
    assert set(caught.value.fields) == {"started_at", "ended_at"}


def test_a_budget_beyond_reason_is_refused(operator: User, tree: dict[str, Region]) -> None:
    with refused("validation_failed") as caught:
        care.fund_budget_set(actor=operator, region=tree["310101"], year=2027, limit_minutes=10**20)
    assert set(caught.value.fields) == {"limit_minutes"}


# --- pool overflow and stuck visits ------------------------------------------------------------------------


def test_a_pool_paid_service_for_a_volunteer_at_his_cap_nets_the_overflow(
    admin_user: User,
    tree: dict[str, Region],
    reviewer: User,
    station: User,
    helper: Member,
    old_elder: Member,
) -> None:
    # given 雁荡's policy caps accounts at 2 hours, the excess to the pool; the helper is 10 minutes short
    rules = regions.policy_preset_rules("shanghai-2026")
    rules.update(name="雁荡封顶试点", account_cap_minutes=120, cap_overflow="pool")
    regions.policy_create(
        actor=None, region=tree["310101023001"], effective_from=dt.date(2020, 1, 1), rules=rules
    )
    ledger.account_limits_set(account=Account.objects.get(member=helper), floor=0, cap=120)
    deposit(helper, 110)
    people.priority_group_verify(actor=station, member=old_elder, group="living_alone")
    pool = ledger.system_account(kind=AccountKind.POOL, region=tree["310101023001"])
    assert old_elder.account_id is not None
    ledger.transfer(
        idempotency_key="gift-to-pool",
        source=old_elder.account_id,
        destination=pool.pk,
        minutes=300,
        kind=TransactionKind.DONATION,
    )
    order = care.paper_record_create(
        actor=station,
        elder=old_elder,
        volunteer=helper,
        category="assistance",
        started_at=at(-1, 9),
        ended_at=at(-1, 10),
        funding=Funding.POOL,
    )
    # when it is approved
    order = care.order_approve(actor=reviewer, order=order)
    # then he is filled to his cap and the pool pays only the ten minutes that reached him
    assert balance(helper) == (120, 0)
    assert (order.credited_minutes, order.overflow_minutes) == (60, 50)
    pool.refresh_from_db()
    assert (pool.balance, pool.held) == (290, 0)
    txn = Transaction.objects.get(pk=order.credit_transaction_id or 0)
    assert sorted(p.amount for p in txn.postings.all()) == [-10, 10]


def test_a_visit_never_checked_out_goes_to_the_station(
    post: Callable[..., ServiceOrder], station: User, helper: Member
) -> None:
    order = care.order_accept(actor=user_of(helper), order=post())
    with time_machine.travel(at(1, 10), tick=False):
        care.order_check_in(actor=user_of(helper), order=order)
    assert care.orders_escalate(now=at(1, 12, 30)) == 0
    assert care.orders_escalate(now=at(1, 13, 30)) == 1
    assert reload(order).escalated_at is not None
    assert Notification.objects.filter(recipient=station, kind="care.not_checked_out").exists()
    # and the station cancels it, which gives the elder's savings back
    care.order_cancel(actor=station, order=order, reason="志愿者忘记签退，核实未服务")
    assert balance(order.elder)[1] == 0


# --- lockouts ----------------------------------------------------------------------------------------------


def test_repeated_lockouts_last_longer_and_the_station_hears_of_them(
    post: Callable[..., ServiceOrder], station: User, helper: Member, old_elder: Member
) -> None:
    care.elder_pin_set(actor=station, elder=old_elder, pin="2580")
    order = worked(care.order_accept(actor=user_of(helper), order=post()), helper, at(1, 10), at(1, 11))

    def guess_five(moment: dt.datetime) -> None:
        with time_machine.travel(moment, tick=False):
            for _ in range(5):
                with pytest.raises(ApplicationError):
                    care.order_confirm(
                        actor=user_of(helper), order=order, method=ConfirmMethod.PIN, secret="1357"
                    )

    guess_five(at(1, 12))
    first = ElderSecret.objects.get(elder=old_elder).locked_until
    guess_five(at(1, 12, 20))  # after the first 15-minute lock
    second = ElderSecret.objects.get(elder=old_elder).locked_until
    assert first is not None and second is not None
    assert first - at(1, 12) == dt.timedelta(minutes=15)
    assert second - at(1, 12, 20) == dt.timedelta(minutes=30)
    assert Notification.objects.filter(recipient=station, kind="care.confirm_locked").count() == 2
    # and the right PIN once the lock is over starts afresh
    with time_machine.travel(at(1, 13), tick=False):
        care.order_confirm(actor=user_of(helper), order=order, method=ConfirmMethod.PIN, secret="2580")
    assert ElderSecret.objects.get(elder=old_elder).lockouts == 0


# --- who is told -------------------------------------------------------------------------------------------


def test_the_son_who_pays_hears_of_the_payment_and_a_withdrawn_volunteer_of_his_withdrawal(
    post: Callable[..., ServiceOrder],
    son: Member,
    helper: Member,
    neighbour_helper: Member,
    station: User,
    reviewer: User,
) -> None:
    order = post(actor=user_of(son), funding=Funding.FAMILY, payer=son)
    care.order_assign(actor=station, order=order, volunteer=neighbour_helper)
    care.order_withdraw(actor=station, order=order, reason="改派离得近的志愿者")
    assert Notification.objects.filter(recipient=user_of(neighbour_helper), kind="care.taken_off").exists()
    care.order_assign(actor=station, order=order, volunteer=helper)
    order = worked(reload(order), helper, at(1, 10), at(1, 11))
    care.order_confirm(actor=user_of(son), order=order, method=ConfirmMethod.PROXY)
    care.order_approve(actor=reviewer, order=order)
    assert Notification.objects.filter(recipient=user_of(son), kind="care.paid").exists()
