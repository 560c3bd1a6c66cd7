"""The station's review: what waits in the queue, approving one or many (never paying twice), refusing with a
reason, and who may not review (staff of other communities, and anyone who took part in the service)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from timebank.care import selectors
from timebank.care import services as care
from timebank.care.models import ConfirmMethod, Funding, Outcome, ServiceOrder, Status
from timebank.care.tests.conftest import at, balance, deposit, member, user_of
from timebank.care.tests.flows import (
    confirmed_by_elder,
    jinyang_elder_with_savings,
    jinyang_volunteer,
    refused,
    reload,
    worked,
    world,
)
from timebank.common.errors import ApplicationError
from timebank.ledger.models import Transaction, TransactionKind
from timebank.notifications.models import Notification
from timebank.people import services as people
from timebank.people.models import Member, PriorityGroup, Role, User
from timebank.regions.models import Region


@pytest.fixture
def paper_card(station: User, old_elder: Member, helper: Member) -> Callable[..., ServiceOrder]:
    """A signed paper card of 李志强's visit to 王阿婆 yesterday, entered by the station (confirmed)."""

    def make(hour: int, **extra: Any) -> ServiceOrder:
        values: dict[str, Any] = {
            "actor": station,
            "elder": old_elder,
            "volunteer": helper,
            "category": "assistance",
            "started_at": at(-1, hour),
            "ended_at": at(-1, hour + 1),
            "funding": Funding.OWN,
            "card_ref": f"雁荡-{hour}",
        }
        values.update(extra)
        return care.paper_record_create(**values)

    return make


@pytest.fixture
def jinyang_card(hongkou_staff: User, jinyang_staff: User, tree: dict[str, Region]) -> ServiceOrder:
    """A confirmed paper card of 晋阳 (Hongkou)."""
    elder = jinyang_elder_with_savings(hongkou_staff, tree["310109018021"])
    volunteer = jinyang_volunteer(hongkou_staff, tree["310109018021"])
    return care.paper_record_create(
        actor=jinyang_staff,
        elder=elder,
        volunteer=volunteer,
        category="assistance",
        started_at=at(-1, 9),
        ended_at=at(-1, 10),
        funding=Funding.OWN,
    )


def test_batch_approval_reports_each_failure(
    paper_card: Callable[..., ServiceOrder],
    post: Callable[..., ServiceOrder],
    jinyang_card: ServiceOrder,
    reviewer: User,
    old_elder: Member,
    helper: Member,
) -> None:
    # given three signed cards, an open request and a card of another district in the selection
    cards = [paper_card(h) for h in (8, 9, 10)]
    request = post()
    # when the reviewer approves them all at once
    result = care.orders_approve(actor=reviewer, orders=[cards[0], request, cards[1], jinyang_card, cards[2]])
    # then the three cards are credited, and the other two are reported with their reasons
    assert [o.pk for o in result.approved] == [c.pk for c in cards]
    assert all(o.status == Status.CREDITED for o in result.approved)
    assert [(o.pk, exc.code) for o, exc in result.failed] == [
        (request.pk, "care_illegal_transition"),
        (jinyang_card.pk, "permission_denied"),
    ]
    assert balance(helper) == (180, 0)
    assert balance(old_elder) == (420, 0)
    assert reload(request).status == Status.OPEN
    assert reload(jinyang_card).status == Status.CONFIRMED


def test_approving_twice_pays_once(
    paper_card: Callable[..., ServiceOrder], reviewer: User, station: User, old_elder: Member, helper: Member
) -> None:
    # given a card the reviewer approved
    order = care.order_approve(actor=reviewer, order=paper_card(9))
    credits = Transaction.objects.filter(kind=TransactionKind.SERVICE_CREDIT).count()
    before = world()
    # when it is approved again, by her and by a colleague, one by one and in a batch
    again = care.order_approve(actor=reviewer, order=order)
    care.order_approve(actor=station, order=order)
    result = care.orders_approve(actor=reviewer, orders=[order, order])
    # then nothing more is paid or written
    assert again.status == Status.CREDITED and again.credit_transaction_id == order.credit_transaction_id
    assert result.failed == [] and len(result.approved) == 2
    assert Transaction.objects.filter(kind=TransactionKind.SERVICE_CREDIT).count() == credits == 1
    assert world() == before
    assert balance(helper) == (60, 0) and balance(old_elder) == (540, 0)


def test_approval_credits_the_volunteer_and_tells_him(
    paper_card: Callable[..., ServiceOrder], reviewer: User, helper: Member
) -> None:
    order = care.order_approve(actor=reviewer, order=paper_card(9))
    assert (order.reviewed_by, order.credited_minutes) == (reviewer, 60)
    notice = Notification.objects.get(recipient=user_of(helper), kind="care.credited")
    assert notice.params["number"] == order.number


@pytest.mark.parametrize("outsider", ["hongkou_staff", "jinyang_staff"])
def test_staff_of_another_community_cannot_review(
    request: pytest.FixtureRequest, paper_card: Callable[..., ServiceOrder], outsider: str
) -> None:
    # given a card of 雁荡 waiting for review
    order = paper_card(9)
    staff_elsewhere: User = request.getfixturevalue(outsider)
    # when staff of Hongkou try to review it, then they are refused and nothing changes
    with refused("permission_denied"):
        care.order_approve(actor=staff_elsewhere, order=order)
    with refused("permission_denied"):
        care.order_reject(actor=staff_elsewhere, order=order, reason="不认识")
    assert list(selectors.review_queue(staff_elsewhere)) == []


def test_nobody_approves_a_service_they_gave(
    post: Callable[..., ServiceOrder], admin_user: User, helper: Member, tree: dict[str, Region]
) -> None:
    # given 李志强 also has a review role at 雁荡, and gave this service
    people.staff_grant_create(
        actor=admin_user, user=user_of(helper), role=Role.COMMUNITY_STAFF, region=tree["310101023001"]
    )
    order = care.order_accept(actor=user_of(helper), order=post())
    order = confirmed_by_elder(worked(order, helper, at(1, 10), at(1, 11)))
    # when he approves or rejects it himself, then it is refused and another reviewer is needed
    with refused("care_own_service"):
        care.order_approve(actor=user_of(helper), order=order)
    with refused("care_own_service"):
        care.order_reject(actor=user_of(helper), order=order, reason="算了")
    assert reload(order).status == Status.CONFIRMED


def test_nobody_approves_a_service_they_paid_for(
    post: Callable[..., ServiceOrder],
    admin_user: User,
    son: Member,
    helper: Member,
    tree: dict[str, Region],
) -> None:
    # given the son works at the station and paid for his mother's visit
    people.staff_grant_create(
        actor=admin_user, user=user_of(son), role=Role.STATION_STAFF, region=tree["310101023001"]
    )
    order = post(actor=user_of(son), funding=Funding.FAMILY, payer=son)
    order = care.order_accept(actor=user_of(helper), order=order)
    order = confirmed_by_elder(worked(order, helper, at(1, 10), at(1, 11)))
    # when he approves it, then it is refused
    with refused("care_own_service"):
        care.order_approve(actor=user_of(son), order=order)


def test_rejecting_releases_the_hold_and_tells_both_sides(
    post: Callable[..., ServiceOrder], reviewer: User, old_elder: Member, helper: Member
) -> None:
    # given a confirmed visit with an hour held on her savings
    order = care.order_accept(actor=user_of(helper), order=post())
    order = confirmed_by_elder(worked(order, helper, at(1, 10), at(1, 11)))
    assert balance(old_elder) == (600, 60)
    # when the reviewer rejects it without a reason, then she is asked for one
    with refused("care_reason_required"):
        care.order_reject(actor=reviewer, order=order, reason=" ")
    # and with a reason it is rejected: nothing is credited, the hold is released
    order = care.order_reject(actor=reviewer, order=order, reason="老人说志愿者没有来")
    assert order.status == Status.REJECTED and order.review_note == "老人说志愿者没有来"
    assert balance(old_elder) == (600, 0)
    assert balance(helper) == (0, 0)
    for person in (old_elder, helper):
        notice = Notification.objects.get(recipient=user_of(person), kind="care.rejected")
        assert notice.params["reason"] == "老人说志愿者没有来"


def test_an_unconfirmed_service_is_rejected_too(
    post: Callable[..., ServiceOrder], reviewer: User, old_elder: Member, helper: Member
) -> None:
    order = care.order_accept(actor=user_of(helper), order=post())
    order = worked(order, helper, at(1, 10), at(1, 11))
    order = care.order_reject(actor=reviewer, order=order, reason="卡上没有签字")
    assert order.status == Status.REJECTED
    assert balance(old_elder) == (600, 0)


def test_the_queue_holds_confirmed_and_escalated_services_of_ones_own_communities(
    post: Callable[..., ServiceOrder],
    jinyang_card: ServiceOrder,
    reviewer: User,
    station: User,
    hongkou_staff: User,
    helper: Member,
) -> None:
    # given services of 雁荡 in every stage on successive days
    def taken(days: int) -> ServiceOrder:
        return care.order_accept(
            actor=user_of(helper), order=post(window_start=at(days, 10), window_end=at(days, 11))
        )

    post(window_start=at(1, 10), window_end=at(1, 11))  # open
    not_started = taken(2)  # assigned, and its time passes without a check-in
    escalated = worked(taken(3), helper, at(3, 10), at(3, 11))
    assert care.orders_escalate(now=at(5, 12)) == 2  # the unconfirmed one, and the one that never started
    not_started.refresh_from_db()
    assert not_started.escalated_at is not None and not_started.status == Status.ASSIGNED
    waiting = worked(taken(4), helper, at(4, 10), at(4, 11))  # completed, not yet escalated
    confirmed = confirmed_by_elder(worked(taken(5), helper, at(5, 10), at(5, 11)))
    credited = care.order_approve(
        actor=reviewer, order=confirmed_by_elder(worked(taken(6), helper, at(6, 10), at(6, 11)))
    )
    # when the reviewer and the street's station open their queues
    # then they hold the escalated and the confirmed one, oldest first, and nothing of Hongkou
    assert list(selectors.review_queue(reviewer)) == [escalated, confirmed]
    assert list(selectors.review_queue(station)) == [escalated, confirmed]
    assert list(selectors.review_queue(reviewer, flagged=True)) == []
    # and Hongkou's station sees only its own card
    assert list(selectors.review_queue(hongkou_staff)) == [jinyang_card]
    assert waiting not in selectors.review_queue(reviewer) and credited not in selectors.review_queue(
        reviewer
    )
    # when the station phones the elder about the escalated one, it can be approved
    with refused("care_illegal_transition"):
        care.order_approve(actor=reviewer, order=escalated)
    care.order_confirm(actor=station, order=escalated, method=ConfirmMethod.STAFF, note="电话确认服务")
    assert care.order_approve(actor=reviewer, order=escalated).status == Status.CREDITED
    assert list(selectors.review_queue(reviewer)) == [confirmed]


def test_a_visit_longer_than_the_savings_waits_until_its_time_is_corrected(
    post: Callable[..., ServiceOrder],
    station: User,
    reviewer: User,
    helper: Member,
    tree: dict[str, Region],
) -> None:
    # given 冯阿婆 has one hour saved, held for her visit, and the volunteer stayed ninety minutes
    elder = member(
        station, tree["310101023001"], "冯阿婆", birth=dt.date(1944, 4, 4), login="feng-apo", is_elder=True
    )
    deposit(elder, 60)
    order = care.order_accept(actor=user_of(helper), order=post(actor=user_of(elder), elder=elder))
    order = confirmed_by_elder(worked(order, helper, at(1, 10), at(1, 11, 30)))
    assert balance(elder) == (60, 60)
    # when the reviewer approves it in a batch, then it is reported short of savings and nothing moves
    before = world()
    result = care.orders_approve(actor=reviewer, orders=[order])
    assert [(o.pk, exc.code) for o, exc in result.failed] == [(order.pk, "care_insufficient_savings")]
    assert world() == before
    # when the station corrects the time to the hour she has, then it is credited
    dispute = care.order_dispute(actor=reviewer, order=order, reason="余额不足，按一小时计")
    care.dispute_resolve(
        actor=station,
        dispute=dispute,
        outcome=Outcome.CORRECTED,
        resolution="与家属商定",
        corrected_minutes=60,
    )
    order = care.order_approve(actor=reviewer, order=reload(order))
    assert order.credited_minutes == 60
    assert balance(elder) == (0, 0) and balance(helper) == (60, 0)


def test_approval_never_takes_the_public_fund_over_its_budget(
    post: Callable[..., ServiceOrder],
    station: User,
    reviewer: User,
    operator: User,
    old_elder: Member,
    helper: Member,
    tree: dict[str, Region],
) -> None:
    # given Huangpu's budget has room for exactly the hour reserved for a visit
    people.priority_group_verify(actor=station, member=old_elder, group=PriorityGroup.ADVANCED_AGE)
    budget = care.fund_budget_set(actor=operator, region=tree["310101"], year=at(1).year, limit_minutes=60)
    order = care.order_accept(actor=user_of(helper), order=post(actor=station, funding=Funding.PUBLIC))
    # and the volunteer stayed ninety minutes, which the elder confirmed
    order = confirmed_by_elder(worked(order, helper, at(1, 10), at(1, 11, 30)))
    # when the reviewer approves it
    with contextlib.suppress(ApplicationError):
        care.order_approve(actor=reviewer, order=order)
    # then the fund has not committed more than its budget
    budget.refresh_from_db()
    assert budget.committed_minutes <= budget.limit_minutes
