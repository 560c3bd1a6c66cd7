"""One pass through each exchange operation (the detailed tests live beside it)."""

from __future__ import annotations

from timebank.care.tests.conftest import balance, user_of
from timebank.exchange import services as exchange
from timebank.exchange.models import RedemptionStatus


def test_each_operation_once(
    jinyang_holder, rice, shop_clerk, son, old_elder, station, hongkou_staff, tree, admin_user
):
    # a transfer from the son to his mother
    moved = exchange.transfer_create(
        actor=user_of(son), giver=son, receiver=old_elder, minutes=60, idempotency_key="t1"
    )
    assert moved.created and balance(old_elder) == (660, 0) and balance(son) == (240, 0)
    again = exchange.transfer_create(
        actor=user_of(son), giver=son, receiver=old_elder, minutes=60, idempotency_key="t1"
    )
    assert not again.created and balance(son) == (240, 0)
    # a donation, then an allocation to a priority elder
    exchange.donation_create(actor=user_of(son), giver=son, minutes=100, idempotency_key="d1")
    from timebank.people import services as people

    people.priority_group_verify(actor=station, member=old_elder, group="living_alone")
    exchange.pool_allocate(
        actor=station, elder=old_elder, minutes=40, reason="独居困难", idempotency_key="a1"
    )
    assert balance(old_elder) == (700, 0)
    # goods in 晋阳: ordered, handed over at the shop
    r = exchange.redemption_order(actor=user_of(jinyang_holder), member=jinyang_holder, product=rice)
    assert balance(jinyang_holder) == (600, 120)
    r = exchange.redemption_hand_over(actor=shop_clerk, token=exchange.pickup_token(r))
    assert r.status == RedemptionStatus.HANDED_OVER and balance(jinyang_holder) == (480, 0)
    # a purchase with money in 晋阳 (¥20 an hour under the tiered policy)
    p = exchange.purchase_record(
        actor=hongkou_staff, member=jinyang_holder, amount_fen=1000, method="cash", receipt_number="R-1"
    )
    assert p.minutes == 30 and balance(jinyang_holder) == (510, 0)
    # a move from 雁荡 to 晋阳 (one currency area, one unit): the account follows with its history
    account = son.account_id
    moved_son = exchange.member_move(actor=admin_user, member=son, to_region=tree["310109018021"])
    assert moved_son.account_id == account and moved_son.home_region.code == "310109018021"
