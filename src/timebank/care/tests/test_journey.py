"""A service from request to credit, once per funding source, as its people would live it."""

from __future__ import annotations

from collections.abc import Callable

import time_machine
from django.core import mail

from timebank.audit.models import AuditEvent
from timebank.care import cards
from timebank.care import services as care
from timebank.care.models import ConfirmMethod, Funding, ServiceOrder, Status
from timebank.care.selectors import star_level
from timebank.care.tests.conftest import at, balance, user_of
from timebank.ledger import services as ledger
from timebank.ledger.models import Account, AccountKind, Transaction, TransactionKind
from timebank.notifications.models import Notification
from timebank.people.models import Member, User
from timebank.regions.models import Region


def test_own_savings_journey(
    post: Callable[..., ServiceOrder], old_elder: Member, helper: Member, station: User, reviewer: User
) -> None:
    # given a request paid from the elder's own savings
    order = post()
    assert order.status == Status.OPEN and order.payer == old_elder
    # when the volunteer accepts, the planned hour is held on her savings
    order = care.order_accept(actor=user_of(helper), order=order)
    assert order.status == Status.ASSIGNED
    assert balance(old_elder) == (600, 60)
    # and checks in and out with the app, 70 minutes
    with time_machine.travel(at(1, 10, 2), tick=False):
        order = care.order_check_in(actor=user_of(helper), order=order)
    with time_machine.travel(at(1, 11, 12), tick=False):
        order = care.order_check_out(actor=user_of(helper), order=order)
    assert order.status == Status.COMPLETED and order.service_minutes == 70
    # the elder types her PIN on his phone
    care.elder_pin_set(actor=station, elder=old_elder, pin="2580")
    order = care.order_confirm(actor=user_of(helper), order=order, method=ConfirmMethod.PIN, secret="2580")
    assert order.status == Status.CONFIRMED
    # then the station approves: 70 minutes move from her savings to his (more than the 60 held)
    order = care.order_approve(actor=reviewer, order=order)
    # then
    assert order.status == Status.CREDITED and order.credited_minutes == 70
    assert balance(old_elder) == (530, 0)
    assert balance(helper) == (70, 0)
    txn = Transaction.objects.get(pk=order.credit_transaction_id or 0)
    assert txn.kind == TransactionKind.SERVICE_CREDIT and txn.policy_id == order.policy_id
    events = list(
        AuditEvent.objects.filter(subject_type="care.serviceorder", subject_id=str(order.pk))
        .order_by("pk")
        .values_list("event_type", flat=True)
    )
    assert events == [
        "care.order.posted",
        "care.order.assigned",
        "care.order.in_progress",
        "care.order.completed",
        "care.order.confirmed",
        "care.order.approved",
        "care.order.credited",
    ]
    kinds = set(Notification.objects.filter(recipient=user_of(helper)).values_list("kind", flat=True))
    assert {"care.confirmed", "care.credited"} <= kinds
    assert set(Notification.objects.filter(recipient=user_of(old_elder)).values_list("kind", flat=True)) >= {
        "care.assigned",
        "care.checked_in",
        "care.completed",
    }
    assert star_level(helper).minutes == 70


def test_family_savings_journey_with_qr_and_card_code(
    post: Callable[..., ServiceOrder],
    old_elder: Member,
    son: Member,
    helper: Member,
    station: User,
    reviewer: User,
) -> None:
    # given the son posts for his mother, paid from his savings
    order = post(actor=user_of(son), funding=Funding.FAMILY, payer=son, category="assistance")
    order = care.order_assign(actor=station, order=order, volunteer=helper)
    assert balance(son) == (300, 60)
    card = care.service_card_issue(actor=station, elder=old_elder)
    token = cards.card_token(card.serial)
    # when the volunteer scans her card to check in and out
    with time_machine.travel(at(1, 9, 55), tick=False):
        order = care.order_check_in(actor=user_of(helper), order=order, token=token)
    with time_machine.travel(at(1, 10, 40), tick=False):
        order = care.order_check_out(actor=user_of(helper), order=order, token=token)
    # and she reads out code 3 of her card
    order = care.order_confirm(
        actor=user_of(helper),
        order=order,
        method=ConfirmMethod.CARD_CODE,
        secret=cards.card_code(card.serial, 3),
    )
    order = care.order_approve(actor=reviewer, order=order)
    # then 45 minutes came from the son's savings, captured from the hold
    assert order.check_in_method == "qr" and order.confirmation_method == "card_code"
    assert balance(son) == (255, 0)
    assert balance(helper) == (45, 0)
    card.refresh_from_db()
    assert card.used_codes == [3]


def test_pool_journey_for_a_priority_elder(
    post: Callable[..., ServiceOrder],
    old_elder: Member,
    helper: Member,
    station: User,
    reviewer: User,
    tree: dict[str, Region],
) -> None:
    # given a verified priority elder and a pool with donated minutes
    from timebank.people import services as people

    people.priority_group_verify(actor=station, member=old_elder, group="living_alone")
    pool = ledger.system_account(kind=AccountKind.POOL, region=tree["310000"])
    ledger.transfer(
        idempotency_key="donation-1",
        source=old_elder.account_id or 0,
        destination=pool.pk,
        minutes=120,
        kind=TransactionKind.DONATION,
    )
    order = post(funding=Funding.POOL, actor=station)
    care.order_accept(actor=user_of(helper), order=order)
    pool.refresh_from_db()
    assert (pool.balance, pool.held) == (120, 60)
    # when the service happens and her son... she confirms on her own phone
    with time_machine.travel(at(1, 10), tick=False):
        care.order_check_in(actor=user_of(helper), order=order)
    with time_machine.travel(at(1, 11), tick=False):
        care.order_check_out(actor=user_of(helper), order=order)
    care.order_confirm(actor=user_of(old_elder), order=order, method=ConfirmMethod.DEVICE)
    order = care.order_approve(actor=reviewer, order=order)
    # then the pool paid
    pool.refresh_from_db()
    assert (pool.balance, pool.held) == (60, 0)
    assert balance(helper) == (60, 0)


def test_public_fund_journey_within_budget(
    post: Callable[..., ServiceOrder],
    old_elder: Member,
    helper: Member,
    station: User,
    reviewer: User,
    operator: User,
    tree: dict[str, Region],
) -> None:
    from timebank.people import services as people

    people.priority_group_verify(actor=station, member=old_elder, group="advanced_age")
    budget = care.fund_budget_set(actor=operator, region=tree["310101"], year=at(1).year, limit_minutes=600)
    order = post(funding=Funding.PUBLIC, actor=station, window_end=at(1, 12))
    care.order_assign(actor=station, order=order, volunteer=helper)
    budget.refresh_from_db()
    assert budget.committed_minutes == 120
    with time_machine.travel(at(1, 10), tick=False):
        care.order_check_in(actor=user_of(helper), order=order)
    with time_machine.travel(at(1, 11, 30), tick=False):
        care.order_check_out(actor=user_of(helper), order=order)
    care.order_confirm(actor=user_of(old_elder), order=order, method=ConfirmMethod.DEVICE)
    order = care.order_approve(actor=reviewer, order=order)
    budget.refresh_from_db()
    assert budget.committed_minutes == 90
    fund = Account.objects.get(kind=AccountKind.PUBLIC_FUND, region=tree["310101"])
    assert fund.balance == -90
    assert balance(helper) == (90, 0)
    assert mail.outbox == []  # nobody here gave an email address
