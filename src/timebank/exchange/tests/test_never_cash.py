"""Never cash: minutes are spent on care, passed to family, given to the pool, or exchanged for goods and
rights; money only ever comes in, and no path turns minutes into money."""

from __future__ import annotations

import inspect

from timebank.care.tests.conftest import user_of
from timebank.exchange import services as exchange
from timebank.exchange.models import PaymentMethod, Product, Purchase, RedemptionStatus
from timebank.exchange.tests.builders import *  # noqa: F403
from timebank.exchange.tests.builders import City
from timebank.ledger.models import AccountKind, Posting, Transaction, TransactionKind
from timebank.ledger.verify import ledger_verify
from timebank.people import services as people
from timebank.people.models import Member, User

MONEY_OUT = ("refund", "cash", "payout", "pay_out", "withdraw_money", "money_out")


def walk_every_operation(
    *,
    son: Member,
    old_elder: Member,
    jinyang_holder: Member,
    rice: Product,
    admission: Product,
    station: User,
    hongkou_staff: User,
    shop_clerk: User,
    admin_user: User,
    nanjing: City,
) -> None:
    """Each exchange operation once, through the real services, by the people who do them."""
    exchange.transfer_create(
        actor=user_of(son), giver=son, receiver=old_elder, minutes=60, idempotency_key="t"
    )
    exchange.transfer_create(
        actor=user_of(old_elder), giver=old_elder, receiver=son, minutes=30, idempotency_key="g", gift=True
    )
    exchange.donation_create(actor=user_of(son), giver=son, minutes=100, idempotency_key="d")
    people.priority_group_verify(actor=station, member=old_elder, group="living_alone")
    exchange.pool_allocate(actor=station, elder=old_elder, minutes=40, reason="独居", idempotency_key="a")
    bought = exchange.redemption_order(actor=user_of(jinyang_holder), member=jinyang_holder, product=rice)
    exchange.redemption_hand_over(actor=shop_clerk, token=exchange.pickup_token(bought))
    cancelled = exchange.redemption_order(actor=user_of(jinyang_holder), member=jinyang_holder, product=rice)
    exchange.redemption_cancel(actor=user_of(jinyang_holder), redemption=cancelled)
    right = exchange.redemption_order(actor=user_of(old_elder), member=old_elder, product=admission)
    assert (
        exchange.redemption_decide(actor=station, redemption=right, approve=True).status
        == RedemptionStatus.GRANTED
    )
    exchange.purchase_record(
        actor=hongkou_staff, member=jinyang_holder, amount_fen=1000, method="cash", receipt_number="R-1"
    )
    exchange.purchase_record(  # and the same receipt again: a retry
        actor=hongkou_staff, member=jinyang_holder, amount_fen=1000, method="cash", receipt_number="R-1"
    )
    exchange.member_move(actor=admin_user, member=Member.objects.get(pk=son.pk), to_region=nanjing.community)


def test_no_exchange_operation_turns_minutes_into_money(
    son: Member,
    old_elder: Member,
    jinyang_holder: Member,
    rice: Product,
    admission: Product,
    station: User,
    hongkou_staff: User,
    shop_clerk: User,
    admin_user: User,
    nanjing: City,
) -> None:
    # given every exchange operation was done once
    walk_every_operation(
        son=son,
        old_elder=old_elder,
        jinyang_holder=jinyang_holder,
        rice=rice,
        admission=admission,
        station=station,
        hongkou_staff=hongkou_staff,
        shop_clerk=shop_clerk,
        admin_user=admin_user,
        nanjing=nanjing,
    )
    kinds = set(Transaction.objects.values_list("kind", flat=True))
    assert {
        TransactionKind.TRANSFER,
        TransactionKind.GIFT,
        TransactionKind.DONATION,
        TransactionKind.ALLOCATION,
        TransactionKind.REDEMPTION,
        TransactionKind.PURCHASE,
        TransactionKind.CLEARING,
    } <= kinds
    # then the purchases account was only ever drawn on: no posting ever moved minutes into it
    into_purchases = Posting.objects.filter(account__kind=AccountKind.PURCHASES)
    assert into_purchases.filter(amount__lt=0).exists()
    assert not into_purchases.filter(amount__gt=0).exists()
    # and every purchase is money coming in, at a price, for minutes
    assert Purchase.objects.count() == 1
    assert not Purchase.objects.filter(amount_fen__lte=0).exists()
    assert not Purchase.objects.filter(minutes__lte=0).exists()
    # and goods and rights take minutes out of circulation, never back to anyone
    assert not Posting.objects.filter(account__kind=AccountKind.GOODS, amount__lt=0).exists()
    assert ledger_verify().ok


def test_nothing_in_the_exchange_records_money_going_out() -> None:
    # the services the exchange offers
    offered = set(exchange.__all__)
    defined = {
        name
        for name, value in inspect.getmembers(exchange, inspect.isfunction)
        if value.__module__ == exchange.__name__
    }
    assert offered <= defined | {"Moved"}
    for name in offered | defined:
        assert not any(word in name.lower() for word in MONEY_OUT), name
    # no kind of ledger transaction, no payment method and no field of a purchase speaks of paying out
    for words in (
        TransactionKind.values,
        PaymentMethod.values,
        [f.name for f in Purchase._meta.get_fields()],
    ):
        for word in words:
            assert not any(bad in word for bad in ("refund", "payout", "pay_out", "withdraw")), word
