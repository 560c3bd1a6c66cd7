"""What happens without anyone acting: requests nobody took expire, services nobody confirmed go to the
station. And what a service gives back when it does not happen: a cancelled, withdrawn or no-show service
releases the savings held for it and the public budget reserved for it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.conf import settings

from timebank.audit.models import AuditEvent
from timebank.care import selectors
from timebank.care import services as care
from timebank.care.models import FundBudget, Funding, ServiceOrder, Status
from timebank.care.tests.conftest import at, balance, deposit, user_of
from timebank.care.tests.flows import confirmed_by_elder, refused, reload, worked
from timebank.ledger import services as ledger
from timebank.ledger.models import Account, AccountKind, Hold, HoldStatus, TransactionKind
from timebank.notifications.models import Notification
from timebank.notifications.services import MemorySms
from timebank.people import services as people
from timebank.people.models import Member, PriorityGroup, User
from timebank.regions.models import Region

# --- expiry -------------------------------------------------------------------------------------------------


def test_open_requests_whose_time_passed_expire(
    post: Callable[..., ServiceOrder], old_elder: Member, helper: Member
) -> None:
    # given a request for tomorrow nobody took, one for next week, and one a volunteer took
    forgotten = post()
    ahead = post(window_start=at(7, 10), window_end=at(7, 11))
    taken = care.order_accept(actor=user_of(helper), order=post(window_start=at(1, 14), window_end=at(1, 15)))
    # when the clock passes tomorrow's windows and the background work runs
    with time_machine.travel(at(2, 8), tick=False):
        expired = care.orders_expire()
    # then only the forgotten request expired, and the elder is told
    assert expired == 1
    assert reload(forgotten).status == Status.EXPIRED
    assert (reload(ahead).status, reload(taken).status) == (Status.OPEN, Status.ASSIGNED)
    notice = Notification.objects.get(recipient=user_of(old_elder), kind="care.expired")
    assert notice.params["number"] == forgotten.number
    # and running again changes nothing
    assert care.orders_expire(now=at(2, 8)) == 0


def test_a_request_does_not_expire_while_its_window_is_open(post: Callable[..., ServiceOrder]) -> None:
    order = post()
    assert care.orders_expire(now=at(1, 10, 30)) == 0
    assert care.orders_expire(now=at(1, 11)) == 0
    assert reload(order).status == Status.OPEN


# --- escalation ---------------------------------------------------------------------------------------------


def test_unconfirmed_services_go_to_the_station_after_the_deadline(
    post: Callable[..., ServiceOrder],
    helper: Member,
    station: User,
    reviewer: User,
    hongkou_staff: User,
) -> None:
    # given a visit checked out tomorrow at 11:00 that nobody confirms, and one confirmed at once
    def served(days: int) -> ServiceOrder:
        order = care.order_accept(
            actor=user_of(helper), order=post(window_start=at(days, 10), window_end=at(days, 11))
        )
        return worked(order, helper, at(days, 10), at(days, 11))

    silent = served(1)
    confirmed_by_elder(served(2))
    deadline = at(1, 11) + dt.timedelta(hours=settings.CARE_ESCALATE_HOURS)
    # when the background work runs an hour before the deadline, then nothing is escalated
    with time_machine.travel(deadline - dt.timedelta(hours=1), tick=False):
        assert care.orders_escalate() == 0
    assert reload(silent).escalated_at is None
    # when it runs at the deadline
    with time_machine.travel(deadline, tick=False):
        assert care.orders_escalate() == 1
    # then the service waits in the station's queue and its staff are told
    silent = reload(silent)
    assert silent.escalated_at == deadline and silent.status == Status.COMPLETED
    assert silent in selectors.review_queue(station)
    for staff_member in (station, reviewer):
        notice = Notification.objects.get(recipient=staff_member, kind="care.escalated")
        assert notice.params["number"] == silent.number
    assert not Notification.objects.filter(recipient=hongkou_staff).exists()
    assert (
        AuditEvent.objects.filter(event_type="care.order.escalated", subject_id=str(silent.pk)).count() == 1
    )
    # and it is escalated only once
    with time_machine.travel(deadline + dt.timedelta(days=3), tick=False):
        assert care.orders_escalate() == 0
    assert Notification.objects.filter(recipient=station, kind="care.escalated").count() == 1


def test_the_tick_runs_both(post: Callable[..., ServiceOrder], helper: Member) -> None:
    # given one request nobody took and one visit nobody confirmed
    post(window_start=at(1, 14), window_end=at(1, 15))
    order = care.order_accept(actor=user_of(helper), order=post())
    worked(order, helper, at(1, 10), at(1, 11))
    # when the tick runs three days later
    tick = care.care_tick(now=at(4, 12))
    # then it expired one and escalated one
    assert (tick.expired, tick.escalated) == (1, 1)
    assert care.care_tick(now=at(4, 12)) == care.Tick(expired=0, escalated=0)


# --- giving back what was reserved --------------------------------------------------------------------------


def test_cancelling_releases_the_hold_and_tells_the_volunteer(
    post: Callable[..., ServiceOrder], old_elder: Member, helper: Member
) -> None:
    # given an hour held on her savings for an assigned visit
    order = care.order_accept(actor=user_of(helper), order=post())
    hold_id = order.hold_id
    assert balance(old_elder) == (600, 60)
    # when she cancels it
    order = care.order_cancel(actor=user_of(old_elder), order=order, reason="女儿回来了")
    # then the hour is available again and the volunteer knows why
    assert order.status == Status.CANCELLED
    assert balance(old_elder) == (600, 0)
    assert Hold.objects.get(pk=hold_id or 0).status == HoldStatus.RELEASED
    notice = Notification.objects.get(recipient=user_of(helper), kind="care.cancelled")
    assert notice.params["reason"] == "女儿回来了"


def test_cancelling_needs_a_reason(post: Callable[..., ServiceOrder], old_elder: Member) -> None:
    order = post()
    with refused("care_reason_required"):
        care.order_cancel(actor=user_of(old_elder), order=order, reason="")


def test_withdrawing_releases_the_family_hold_until_someone_else_takes_it(
    post: Callable[..., ServiceOrder], son: Member, helper: Member, neighbour_helper: Member
) -> None:
    # given the son pays for his mother's visit and 李志强 took it
    order = post(actor=user_of(son), funding=Funding.FAMILY, payer=son)
    order = care.order_accept(actor=user_of(helper), order=order)
    assert balance(son) == (300, 60)
    # when 李志强 withdraws
    order = care.order_withdraw(actor=user_of(helper), order=order, reason="腿受伤了")
    # then the son's hour is free, the request is open again and the son is told
    assert (order.status, order.volunteer) == (Status.OPEN, None)
    assert balance(son) == (300, 0)
    assert Notification.objects.filter(recipient=user_of(son), kind="care.unassigned").exists()
    # and when the neighbour takes it, it is held again, once
    care.order_accept(actor=user_of(neighbour_helper), order=order)
    assert balance(son) == (300, 60)


@pytest.fixture
def public_budget(station: User, operator: User, old_elder: Member, tree: dict[str, Region]) -> FundBudget:
    people.priority_group_verify(actor=station, member=old_elder, group=PriorityGroup.ADVANCED_AGE)
    return care.fund_budget_set(actor=operator, region=tree["310101"], year=at(1).year, limit_minutes=600)


def committed(budget: FundBudget) -> int:
    budget.refresh_from_db()
    return int(budget.committed_minutes)


def test_public_budget_reservations_follow_the_service(
    post: Callable[..., ServiceOrder],
    public_budget: FundBudget,
    station: User,
    old_elder: Member,
    helper: Member,
    neighbour_helper: Member,
) -> None:
    # given a publicly funded two-hour visit
    order = post(actor=station, funding=Funding.PUBLIC, window_end=at(1, 12))
    assert committed(public_budget) == 0
    # when it is assigned, two hours are reserved
    order = care.order_assign(actor=station, order=order, volunteer=helper)
    assert committed(public_budget) == 120
    # when he withdraws, they are released
    order = care.order_withdraw(actor=user_of(helper), order=order, reason="家里有事")
    assert committed(public_budget) == 0
    # when the neighbour takes it and does not come, they are released again
    order = care.order_accept(actor=user_of(neighbour_helper), order=order)
    assert committed(public_budget) == 120
    with time_machine.travel(at(1, 10, 45), tick=False):
        order = care.order_no_show(actor=user_of(old_elder), order=order, note="等到十点三刻")
    assert order.status == Status.NO_SHOW
    assert committed(public_budget) == 0
    assert Notification.objects.filter(recipient=user_of(neighbour_helper), kind="care.no_show").exists()


def test_cancelling_a_public_service_gives_the_budget_back(
    post: Callable[..., ServiceOrder], public_budget: FundBudget, station: User, helper: Member
) -> None:
    order = care.order_accept(actor=user_of(helper), order=post(actor=station, funding=Funding.PUBLIC))
    assert committed(public_budget) == 60
    care.order_cancel(actor=station, order=order, reason="老人入院")
    assert committed(public_budget) == 0


def test_a_no_show_releases_the_elders_savings(
    post: Callable[..., ServiceOrder], old_elder: Member, son: Member, helper: Member
) -> None:
    # given an assigned visit tomorrow at 10:00
    order = care.order_accept(actor=user_of(helper), order=post())
    # when her son reports a no-show before it starts, then he is told to cancel instead
    with refused("care_not_started"):
        care.order_no_show(actor=user_of(son), order=order)
    # and at 10:30 the no-show is recorded and her hour released
    with time_machine.travel(at(1, 10, 30), tick=False):
        order = care.order_no_show(actor=user_of(son), order=order, note="没人来")
    assert order.status == Status.NO_SHOW
    assert balance(old_elder) == (600, 0)


def test_cancelling_a_pool_service_gives_the_pool_its_minutes_back(
    post: Callable[..., ServiceOrder],
    station: User,
    old_elder: Member,
    helper: Member,
    tree: dict[str, Region],
) -> None:
    # given a verified priority elder served from the mutual-aid pool
    people.priority_group_verify(actor=station, member=old_elder, group=PriorityGroup.LIVING_ALONE)
    pool = ledger.system_account(kind=AccountKind.POOL, region=tree["310000"])
    ledger.transfer(
        idempotency_key="background-pool-gift",
        source=old_elder.account_id or 0,
        destination=pool.pk,
        minutes=120,
        kind=TransactionKind.DONATION,
    )
    order = care.order_accept(actor=user_of(helper), order=post(actor=station, funding=Funding.POOL))
    assert Account.objects.get(pk=pool.pk).held == 60
    # when the station cancels it
    care.order_cancel(actor=station, order=order, reason="已安排家属")
    # then the pool's minutes are free again
    pool.refresh_from_db()
    assert (pool.balance, pool.held) == (120, 0)


# --- telling people -----------------------------------------------------------------------------------------


def test_an_elder_without_the_app_is_texted_after_the_work_commits(
    elder: Member,
    station: User,
    helper: Member,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # given 朱德林 has no sign-in but a mobile number, and the station posts a visit for him
    deposit(elder, 120)
    [order] = care.order_create(
        actor=station,
        elder=elder,
        category="assistance",
        window_start=at(1, 10),
        window_end=at(1, 11),
        funding=Funding.OWN,
    )
    MemorySms.outbox.clear()
    # when a volunteer takes it
    with django_capture_on_commit_callbacks(execute=True):
        care.order_accept(actor=user_of(helper), order=order)
        assert MemorySms.outbox == []
    # then he gets a text naming the service and the volunteer; the station, who posted it, is told in the app
    assert [mobile for mobile, _text in MemorySms.outbox] == [elder.mobile]  # once, though he also pays
    [(_mobile, text)] = MemorySms.outbox
    assert order.number in text and "李志强" in text
    assert Notification.objects.filter(recipient=station, kind="care.assigned").exists()
    MemorySms.outbox.clear()
