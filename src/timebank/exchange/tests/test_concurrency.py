"""Many people at once (PostgreSQL): the last items in stock go to as many orders as there are items, each
with its hold; one account never gives away more than it holds; a shop's scan and a member's cancellation
of the same order never both win."""

from __future__ import annotations

import datetime as dt

import pytest

from timebank.care.tests.conftest import balance, deposit, member, user_of
from timebank.common.errors import ApplicationError
from timebank.exchange import services as exchange
from timebank.exchange.models import Product, Redemption, RedemptionStatus
from timebank.exchange.tests.builders import *  # noqa: F403
from timebank.ledger.models import Account, Hold, HoldStatus, Transaction, TransactionKind
from timebank.ledger.tests.test_concurrency import run_together
from timebank.ledger.verify import ledger_verify
from timebank.people.models import Member, User
from timebank.regions.models import Region

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgres_only")]


def codes(escaped: list[tuple[int, BaseException]]) -> list[str]:
    assert all(isinstance(exc, ApplicationError) for _i, exc in escaped), escaped
    return sorted(exc.code for _i, exc in escaped if isinstance(exc, ApplicationError))


def test_twelve_members_ordering_the_last_three_bags_never_drive_stock_below_zero(
    rice: Product, hongkou_staff: User, tree: dict[str, Region]
) -> None:
    # given three bags of rice left and twelve members of 晋阳 with savings
    buyers = []
    for i in range(12):
        m = member(
            hongkou_staff, tree["310109018021"], f"买家{i}", birth=dt.date(1950, 1, i + 1), login=f"buyer-{i}"
        )
        deposit(m, 300)
        buyers.append(Member.objects.get(pk=m.pk))
    # when all order a bag at once
    escaped = run_together(
        12, lambda i: exchange.redemption_order(actor=user_of(buyers[i]), member=buyers[i], product=rice)
    )
    # then three got one, the rest were told it is out of stock, and every order has its own pending hold
    assert codes(escaped) == ["exchange_out_of_stock"] * 9
    assert Product.objects.get(pk=rice.pk).stock == 0
    orders = list(Redemption.objects.filter(product=rice))
    assert len(orders) == 3
    for redemption in orders:
        hold = Hold.objects.get(pk=redemption.hold_id)
        assert (hold.status, hold.amount, hold.account_id) == (
            HoldStatus.PENDING,
            120,
            redemption.member.account_id,
        )
        assert balance(redemption.member) == (300, 120)
    assert Hold.objects.filter(status=HoldStatus.PENDING).count() == 3
    assert sorted(balance(b)[1] for b in buyers) == [0] * 9 + [120] * 3


def test_two_transfers_from_one_account_at_once_never_overdraw(son: Member, old_elder: Member) -> None:
    # given the son holds 5 hours
    # when two transfers of 4 hours each leave his account at the same moment
    escaped = run_together(
        2,
        lambda i: exchange.transfer_create(
            actor=user_of(son), giver=son, receiver=old_elder, minutes=240, idempotency_key=f"t{i}"
        ),
    )
    # then one went through and the other was told what is left
    assert codes(escaped) == ["exchange_insufficient"]
    assert balance(son) == (60, 0) and balance(old_elder) == (840, 0)
    assert Transaction.objects.filter(kind=TransactionKind.TRANSFER).count() == 1
    assert ledger_verify().ok


def test_six_retries_of_one_transfer_at_once_post_it_once(son: Member, old_elder: Member) -> None:
    escaped = run_together(
        6,
        lambda _i: exchange.transfer_create(
            actor=user_of(son), giver=son, receiver=old_elder, minutes=60, idempotency_key="tap"
        ),
    )
    assert escaped == []
    assert Transaction.objects.filter(kind=TransactionKind.TRANSFER).count() == 1
    assert balance(son) == (240, 0)


def test_a_scan_and_a_cancellation_at_once_one_wins(
    jinyang_holder: Member, rice: Product, shop_clerk: User
) -> None:
    # given an order waiting at the shop
    redemption = exchange.redemption_order(actor=user_of(jinyang_holder), member=jinyang_holder, product=rice)
    token = exchange.pickup_token(redemption)

    def act(i: int) -> object:
        if i == 0:
            return exchange.redemption_hand_over(actor=shop_clerk, token=token)
        return exchange.redemption_cancel(actor=user_of(jinyang_holder), redemption=redemption)

    # when the shop scans as she cancels
    escaped = run_together(2, act)
    # then exactly one happened, and minutes and stock agree with it
    assert len(escaped) == 1 and codes(escaped)[0] in ("exchange_not_reserved", "exchange_not_open")
    final = Redemption.objects.get(pk=redemption.pk)
    hold = Hold.objects.get(pk=redemption.hold_id)
    assert jinyang_holder.account_id is not None
    account = Account.objects.get(pk=jinyang_holder.account_id)
    stock = Product.objects.get(pk=rice.pk).stock
    if final.status == RedemptionStatus.HANDED_OVER:
        assert (hold.status, account.balance, account.held, stock) == (HoldStatus.CAPTURED, 480, 0, 2)
    else:
        assert final.status == RedemptionStatus.CANCELLED
        assert (hold.status, account.balance, account.held, stock) == (HoldStatus.RELEASED, 600, 0, 3)
    assert ledger_verify().ok
