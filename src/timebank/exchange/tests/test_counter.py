"""The shop counter: a pick-up code read out when the scanner fails, and restocking that never undoes an
order."""

from __future__ import annotations

from timebank.care.tests.conftest import balance, user_of
from timebank.exchange import services as exchange
from timebank.exchange.models import Product, RedemptionStatus
from timebank.exchange.tests.builders import *  # noqa: F403
from timebank.exchange.tests.builders import refused
from timebank.ledger.models import Transaction


def test_the_short_code_hands_over_like_the_qr_code(jinyang_holder, rice, shop_clerk):
    # given an order whose QR code will not scan
    order = exchange.redemption_order(actor=user_of(jinyang_holder), member=jinyang_holder, product=rice)
    code = exchange.pickup_code(order)
    assert code.startswith(order.number + "-") and len(code) == len(order.number) + 7
    # when the clerk types a wrong digit, then nothing happens; the right code hands it over
    wrong = code[:-1] + str((int(code[-1]) + 1) % 10)
    with refused("exchange_bad_pickup"):
        exchange.redemption_hand_over(actor=shop_clerk, token=wrong)
    handed = exchange.redemption_hand_over(actor=shop_clerk, token=code.lower())
    assert handed.status == RedemptionStatus.HANDED_OVER
    assert balance(jinyang_holder) == (480, 0)


def test_restocking_adds_to_what_orders_left(jinyang_holder, rice, shop_clerk):
    # given the clerk's page showed 3 bags, and a member ordered one since
    exchange.redemption_order(actor=user_of(jinyang_holder), member=jinyang_holder, product=rice)
    # when 5 arrive and are added
    exchange.product_restock(actor=shop_clerk, product=rice, added=5)
    # then there are 7, not 8: the order still has its bag
    assert Product.objects.get(pk=rice.pk).stock == 7
    with refused("validation_failed"):
        exchange.product_restock(actor=shop_clerk, product=rice, added=0)


def test_statements_say_the_kind_not_an_english_word(son, old_elder):
    moved = exchange.transfer_create(
        actor=user_of(son), giver=son, receiver=old_elder, minutes=30, idempotency_key="memo-check"
    )
    assert Transaction.objects.get(pk=moved.transaction_id).memo == ""
