"""Goods and special rights at partner merchants: where each city allows them, the order → hold → hand-over by
scanning the member's pick-up code, codes that must not work, cancellation and expiry, stock, and rights that
staff grant or refuse."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.conf import settings
from django.core import signing
from django.utils import timezone, translation

from timebank.audit.models import AuditEvent
from timebank.care import rules as care_rules
from timebank.care.tests.conftest import balance, user_of
from timebank.conftest import PASSWORD
from timebank.exchange import selectors
from timebank.exchange import services as exchange
from timebank.exchange.models import Merchant, Product, ProductKind, Redemption, RedemptionStatus
from timebank.exchange.tests.builders import *  # noqa: F403
from timebank.exchange.tests.builders import City, person, refused, right_at
from timebank.ledger.models import Account, AccountKind, Hold, HoldStatus, TransactionKind
from timebank.ledger.selectors import account_statement
from timebank.notifications.models import Notification
from timebank.people import services as people
from timebank.people.models import Member, User
from timebank.regions.models import Region


def stock(product: Product) -> int:
    return Product.objects.get(pk=product.pk).stock


def reload(redemption: Redemption) -> Redemption:
    return Redemption.objects.get(pk=redemption.pk)


def hold_status(redemption: Redemption) -> str:
    return Hold.objects.get(pk=redemption.hold_id).status


def order(m: Member, product: Product, quantity: int = 1) -> Redemption:
    return exchange.redemption_order(actor=user_of(m), member=m, product=product, quantity=quantity)


@pytest.fixture
def other_shop(hongkou_operator: User, admin_user: User, tree: dict[str, Region]) -> Merchant:
    """A second shop in 晋阳, with its own assistant."""
    merchant = exchange.merchant_create(actor=hongkou_operator, name="晋阳菜场", region=tree["310109018021"])
    clerk = people.staff_user_create(actor=admin_user, username="market-clerk", password=PASSWORD)
    exchange.merchant_staff_add(actor=hongkou_operator, merchant=merchant, user=clerk)
    return merchant


@pytest.fixture
def other_clerk(other_shop: Merchant) -> User:
    return User.objects.get(username="market-clerk")


# --- the journey --------------------------------------------------------------------------------------------


def test_order_then_hand_over_at_the_shop_by_scanning_the_pick_up_code(
    jinyang_holder: Member, rice: Product, shop: Merchant, shop_clerk: User, tree: dict[str, Region]
) -> None:
    # given 蒋阿姨 (10 hours) and rice at 2 hours a bag, 3 in stock
    # when she orders two bags
    redemption = order(jinyang_holder, rice, quantity=2)
    # then the minutes are held (not taken), the stock is reserved, and she has a week to pick them up
    assert redemption.status == RedemptionStatus.RESERVED and redemption.minutes == 240
    assert balance(jinyang_holder) == (600, 240) and stock(rice) == 1
    assert redemption.expires_at - timezone.now() == pytest.approx(
        dt.timedelta(days=settings.EXCHANGE_PICKUP_DAYS), abs=dt.timedelta(minutes=1)
    )
    assert list(selectors.redemptions_for_shop(shop)) == [redemption]
    assert list(selectors.redemptions_of(jinyang_holder)) == [redemption]
    # when the shop assistant scans the code on her phone
    handed = exchange.redemption_hand_over(actor=shop_clerk, token=exchange.pickup_token(redemption))
    # then the goods are hers, the held minutes are taken into the shop's goods account, and she is told
    assert handed.status == RedemptionStatus.HANDED_OVER and handed.closed_by == shop_clerk
    assert balance(jinyang_holder) == (360, 0) and stock(rice) == 1
    assert hold_status(redemption) == HoldStatus.CAPTURED
    goods = Account.objects.get(kind=AccountKind.GOODS, region=tree["310109018021"])
    assert goods.balance == 240
    assert jinyang_holder.account_id is not None
    entry = account_statement(jinyang_holder.account_id, limit=1).entries[0]
    assert (entry.kind, entry.amount, entry.memo) == (TransactionKind.REDEMPTION, -240, redemption.number)
    assert Notification.objects.filter(
        recipient=user_of(jinyang_holder), kind="exchange.handed_over"
    ).exists()
    assert list(
        AuditEvent.objects.filter(subject_id=str(redemption.pk), event_type__startswith="exchange.redemption")
        .order_by("id")
        .values_list("event_type", flat=True)
    ) == ["exchange.redemption.ordered", "exchange.redemption.handed_over"]


def test_a_code_scanned_twice_hands_over_once(
    jinyang_holder: Member, rice: Product, shop_clerk: User
) -> None:
    redemption = order(jinyang_holder, rice)
    token = exchange.pickup_token(redemption)
    exchange.redemption_hand_over(actor=shop_clerk, token=token)
    with refused("exchange_not_reserved"):
        exchange.redemption_hand_over(actor=shop_clerk, token=token)
    assert balance(jinyang_holder) == (480, 0)


def test_station_staff_order_for_a_member_without_a_phone(
    jinyang_holder: Member, rice: Product, hongkou_staff: User
) -> None:
    redemption = exchange.redemption_order(actor=hongkou_staff, member=jinyang_holder, product=rice)
    assert redemption.ordered_by == hongkou_staff and balance(jinyang_holder) == (600, 120)
    assert (
        AuditEvent.objects.get(event_type="exchange.redemption.ordered").on_behalf_of_id == jinyang_holder.pk
    )


# --- codes that must not work -------------------------------------------------------------------------------


def tampered(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda r: tampered(exchange.pickup_token(r)), id="signature changed"),
        pytest.param(
            lambda r: signing.dumps({"r": r.pk, "n": r.pickup_nonce}, salt="another.purpose"), id="other salt"
        ),
        pytest.param(
            lambda r: signing.dumps({"r": r.pk, "n": "0" * 16}, salt=exchange.PICKUP_SALT), id="wrong secret"
        ),
        pytest.param(
            lambda r: signing.dumps({"r": r.pk + 1000, "n": r.pickup_nonce}, salt=exchange.PICKUP_SALT),
            id="no such order",
        ),
        pytest.param(lambda r: "", id="empty"),
        pytest.param(lambda r: f"R{r.pk:06d}", id="the order number"),
    ],
)
def test_a_code_that_is_not_the_members_is_refused(
    jinyang_holder: Member, rice: Product, shop_clerk: User, make
) -> None:
    redemption = order(jinyang_holder, rice)
    with translation.override("en"), refused("exchange_bad_pickup") as caught:
        exchange.redemption_hand_over(actor=shop_clerk, token=make(redemption))
    assert str(caught.value.message) == "This is not a valid pick-up code."
    assert reload(redemption).status == RedemptionStatus.RESERVED


def test_another_shops_assistant_and_station_staff_cannot_hand_over(
    jinyang_holder: Member, rice: Product, other_clerk: User, hongkou_staff: User, shop_clerk: User
) -> None:
    redemption = order(jinyang_holder, rice)
    token = exchange.pickup_token(redemption)
    for actor in (other_clerk, hongkou_staff, user_of(jinyang_holder)):
        with refused("exchange_other_shop"):
            exchange.redemption_hand_over(actor=actor, token=token)
    # and the shop's own assistant can
    assert exchange.redemption_hand_over(actor=shop_clerk, token=token).status == RedemptionStatus.HANDED_OVER


def test_an_expired_code_is_refused_and_expiry_gives_minutes_and_stock_back(
    jinyang_holder: Member, rice: Product, shop_clerk: User
) -> None:
    # given an order nobody picked up
    redemption = order(jinyang_holder, rice)
    token = exchange.pickup_token(redemption)
    late = timezone.now() + dt.timedelta(days=settings.EXCHANGE_PICKUP_DAYS, hours=1)
    with time_machine.travel(late, tick=False):
        # when she comes a week and an hour later, then the code is refused, naming why
        with translation.override("en"), refused("exchange_pickup_expired") as caught:
            exchange.redemption_hand_over(actor=shop_clerk, token=token)
        assert str(caught.value.message) == "This pick-up code expired; the member orders again."
        # and when the background job runs, the order expires: minutes and stock come back
        assert exchange.redemptions_expire() == 1
    expired = reload(redemption)
    assert expired.status == RedemptionStatus.EXPIRED and expired.closed_by is None
    assert hold_status(redemption) == HoldStatus.RELEASED
    assert balance(jinyang_holder) == (600, 0) and stock(rice) == 3
    with refused("exchange_not_reserved"):
        exchange.redemption_hand_over(actor=shop_clerk, token=token)


def test_orders_still_in_time_do_not_expire(jinyang_holder: Member, rice: Product) -> None:
    redemption = order(jinyang_holder, rice)
    almost = timezone.now() + dt.timedelta(days=settings.EXCHANGE_PICKUP_DAYS, minutes=-5)
    with time_machine.travel(almost, tick=False):
        assert exchange.redemptions_expire() == 0
        assert exchange.exchange_tick() == 0
    assert reload(redemption).status == RedemptionStatus.RESERVED and balance(jinyang_holder) == (600, 120)


# --- cancelling ---------------------------------------------------------------------------------------------


def test_the_member_cancels_and_minutes_and_stock_come_back(jinyang_holder: Member, rice: Product) -> None:
    redemption = order(jinyang_holder, rice, quantity=3)
    assert stock(rice) == 0
    cancelled = exchange.redemption_cancel(
        actor=user_of(jinyang_holder), redemption=redemption, reason="买多了"
    )
    assert cancelled.status == RedemptionStatus.CANCELLED and cancelled.reason == "买多了"
    assert balance(jinyang_holder) == (600, 0) and stock(rice) == 3
    assert hold_status(redemption) == HoldStatus.RELEASED
    # cancelling again changes nothing
    with refused("exchange_not_open"):
        exchange.redemption_cancel(actor=user_of(jinyang_holder), redemption=redemption)


def test_station_staff_cancel_for_the_member_but_not_after_hand_over(
    jinyang_holder: Member, rice: Product, hongkou_staff: User, shop_clerk: User
) -> None:
    first, second = order(jinyang_holder, rice), order(jinyang_holder, rice)
    exchange.redemption_cancel(actor=hongkou_staff, redemption=first)
    exchange.redemption_hand_over(actor=shop_clerk, token=exchange.pickup_token(second))
    with refused("exchange_not_open"):
        exchange.redemption_cancel(actor=hongkou_staff, redemption=second)
    assert balance(jinyang_holder) == (480, 0) and stock(rice) == 2


# --- stock and savings --------------------------------------------------------------------------------------


def test_more_than_is_in_stock_is_refused_and_a_sold_out_product_is_hidden(
    jinyang_holder: Member, rice: Product
) -> None:
    with refused("exchange_out_of_stock"):
        order(jinyang_holder, rice, quantity=4)
    order(jinyang_holder, rice, quantity=3)
    with refused("exchange_out_of_stock"):
        order(jinyang_holder, rice)
    assert rice not in selectors.products_for(jinyang_holder)


def test_not_enough_minutes_is_refused_and_the_stock_stays(
    jinyang_holder: Member, shop: Merchant, shop_clerk: User
) -> None:
    oil = exchange.product_save(actor=shop_clerk, merchant=shop, name="食用油", price_minutes=601, stock=2)
    with translation.override("en"), refused("exchange_insufficient") as caught:
        order(jinyang_holder, oil)
    assert str(caught.value.message) == "10 h available; this needs 10 h 1 min."
    assert stock(oil) == 2


@pytest.mark.parametrize("quantity", [0, -1, 100, True, 1.0])
def test_a_quantity_from_1_to_99(jinyang_holder: Member, rice: Product, quantity: object) -> None:
    with refused("exchange_bad_quantity"):
        exchange.redemption_order(
            actor=user_of(jinyang_holder),
            member=jinyang_holder,
            product=rice,
            quantity=quantity,  # type: ignore[arg-type]
        )


def test_what_is_no_longer_offered_cannot_be_ordered(
    jinyang_holder: Member, rice: Product, shop: Merchant, shop_clerk: User
) -> None:
    exchange.product_save(
        actor=shop_clerk,
        merchant=shop,
        product=rice,
        name=rice.name,
        price_minutes=120,
        stock=3,
        is_active=False,
    )
    with refused("exchange_not_offered"):
        order(jinyang_holder, rice)
    assert rice not in selectors.products_for(jinyang_holder)


# --- where goods are not allowed ----------------------------------------------------------------------------


def test_shanghai_refuses_goods_and_shows_only_special_rights(
    old_elder: Member,
    jinyang_holder: Member,
    rice: Product,
    admission: Product,
    care_home: Merchant,
    operator: User,
) -> None:
    # given goods at a Huangpu shop and at the 晋阳 shop, and a care-home admission right
    noodles = exchange.product_save(
        actor=operator, merchant=care_home, name="挂面", price_minutes=30, stock=9
    )
    # when 王阿婆 (Shanghai rules: no goods) looks and orders, then she sees only the right; goods are refused
    assert list(selectors.products_for(old_elder)) == [admission]
    for product in (noodles, rice):
        with translation.override("en"), refused("exchange_goods_not_allowed") as caught:
            order(old_elder, product)
        assert str(caught.value.message) == "上海市时间银行 2026 does not allow goods for time."
    # and 蒋阿姨 (the tiered rules of Hongkou: goods allowed) sees goods and the right
    assert set(selectors.products_for(jinyang_holder)) == {noodles, rice, admission}


@pytest.fixture
def beijing_home(beijing: City) -> Merchant:
    return exchange.merchant_create(
        actor=beijing.operator, name="东城区第一社会福利院", region=Region.objects.get(code="110101")
    )


def test_beijing_refuses_goods_but_offers_admission_for_ten_thousand_coins(
    beijing: City, beijing_home: Merchant
) -> None:
    # given the care home offers noodles and admission for 10,000 coins (600,000 minutes)
    noodles = exchange.product_save(
        actor=beijing.operator, merchant=beijing_home, name="挂面", price_minutes=30, stock=9
    )
    admission = right_at(beijing.operator, beijing_home, "公办养老机构入住资格", 600_000, stock=2)
    elder = person(
        beijing.station,
        beijing.community,
        "赵大爷",
        born=dt.date(1950, 1, 1),
        sex="M",
        minutes=600_000,
        login="zhao",
    )
    # then the catalogue hides the goods, and ordering them is refused
    assert list(selectors.products_for(elder)) == [admission]
    with refused("exchange_goods_not_allowed"):
        order(elder, noodles)
    # when he asks for admission, then the coins are held until staff decide, and staff grant it
    redemption = order(elder, admission)
    assert redemption.status == RedemptionStatus.AWAITING_APPROVAL and balance(elder) == (600_000, 600_000)
    granted = exchange.redemption_decide(actor=beijing.station, redemption=redemption, approve=True)
    assert granted.status == RedemptionStatus.GRANTED and balance(elder) == (0, 0)


# --- merchants and their products ---------------------------------------------------------------------------


def test_a_shop_assistant_keeps_the_shops_goods_but_not_another_shops_and_offers_no_rights(
    shop: Merchant, shop_clerk: User, other_shop: Merchant, rice: Product
) -> None:
    changed = exchange.product_save(
        actor=shop_clerk, merchant=shop, product=rice, name=rice.name, price_minutes=100, stock=10
    )
    assert (changed.price_minutes, changed.stock) == (100, 10)
    with refused("permission_denied"):
        exchange.product_save(actor=shop_clerk, merchant=other_shop, name="鸡蛋", price_minutes=20, stock=5)
    with refused("exchange_right_by_operator"):
        exchange.product_save(
            actor=shop_clerk,
            merchant=shop,
            name="优先入住",
            price_minutes=600,
            stock=1,
            kind=ProductKind.RIGHT,
        )


def test_a_shop_assistant_cannot_turn_a_right_into_goods(
    shop: Merchant, shop_clerk: User, hongkou_operator: User
) -> None:
    right = exchange.product_save(
        actor=hongkou_operator,
        merchant=shop,
        name="优先入住",
        price_minutes=600,
        stock=1,
        kind=ProductKind.RIGHT,
    )
    with refused("exchange_right_by_operator"):
        exchange.product_save(
            actor=shop_clerk, merchant=shop, product=right, name="优先入住", price_minutes=1, stock=1
        )
    right.refresh_from_db()
    assert (right.kind, right.price_minutes) == (ProductKind.RIGHT, 600)


def test_only_an_operator_sets_up_merchants(
    station: User, hongkou_operator: User, tree: dict[str, Region], shop_clerk: User, shop: Merchant
) -> None:
    with refused("permission_denied"):
        exchange.merchant_create(actor=station, name="某超市", region=tree["310101023001"])
    with refused("permission_denied"):
        exchange.merchant_create(actor=hongkou_operator, name="某超市", region=tree["310101023001"])
    with refused("permission_denied"):
        exchange.merchant_staff_add(actor=shop_clerk, merchant=shop, user=station)
    assert list(selectors.merchants_of(shop_clerk)) == [shop]


# --- special rights -----------------------------------------------------------------------------------------


def test_a_right_waits_for_staff_who_grant_it(
    old_elder: Member, admission: Product, station: User, hongkou_staff: User
) -> None:
    # when 王阿婆 (81) asks for admission to the care home
    redemption = order(old_elder, admission)
    # then the minutes are held and her community's staff see it waiting (and other districts' do not)
    assert redemption.status == RedemptionStatus.AWAITING_APPROVAL and balance(old_elder) == (600, 300)
    assert list(selectors.rights_awaiting(station)) == [redemption]
    assert list(selectors.rights_awaiting(hongkou_staff)) == []
    # when the station grants it, then the minutes are taken and she is told
    granted = exchange.redemption_decide(actor=station, redemption=redemption, approve=True)
    assert granted.status == RedemptionStatus.GRANTED and granted.transaction_id is not None
    assert balance(old_elder) == (300, 0) and stock(admission) == 4
    assert Notification.objects.filter(recipient=user_of(old_elder), kind="exchange.right_decided").exists()
    # and it cannot be decided again
    with refused("exchange_not_awaiting"):
        exchange.redemption_decide(actor=station, redemption=redemption, approve=False, reason="重复")


def test_staff_refuse_a_right_with_a_reason_and_everything_comes_back(
    old_elder: Member, admission: Product, station: User
) -> None:
    redemption = order(old_elder, admission)
    with refused("exchange_reason_required"):
        exchange.redemption_decide(actor=station, redemption=redemption, approve=False, reason=" ")
    decided = exchange.redemption_decide(
        actor=station, redemption=redemption, approve=False, reason="床位已满"
    )
    assert decided.status == RedemptionStatus.REFUSED and decided.reason == "床位已满"
    assert balance(old_elder) == (600, 0) and stock(admission) == 5
    notice = Notification.objects.get(recipient=user_of(old_elder), kind="exchange.right_decided")
    assert notice.params["reason"] == "床位已满"


def test_a_right_is_not_handed_over_at_a_counter(
    old_elder: Member, admission: Product, care_home: Merchant, admin_user: User, operator: User
) -> None:
    clerk = people.staff_user_create(actor=admin_user, username="home-desk", password=PASSWORD)
    exchange.merchant_staff_add(actor=operator, merchant=care_home, user=clerk)
    redemption = order(old_elder, admission)
    with refused("exchange_not_reserved"):
        exchange.redemption_hand_over(actor=clerk, token=exchange.pickup_token(redemption))


def test_a_right_is_refused_to_a_holder_under_the_withdrawal_age(son: Member, admission: Product) -> None:
    # given the son (born 1968) is under 65, from when Shanghai's holders spend their savings
    age = care_rules.age_of(son, timezone.localdate())
    assert age is not None and age < 65
    with translation.override("en"), refused("care_withdrawal_age") as caught:
        order(son, admission)
    assert str(caught.value.message) == (
        "Under 上海市时间银行 2026 holders spend their savings from age 65 (from 60 for verified priority "
        f"elders); 王建国 is {age}."
    )


def test_nobody_decides_their_own_right(
    old_elder: Member, admission: Product, admin_user: User, tree: dict[str, Region]
) -> None:
    from timebank.people.models import Role

    people.staff_grant_create(
        actor=admin_user, user=user_of(old_elder), role=Role.COMMUNITY_STAFF, region=tree["310101023001"]
    )
    redemption = order(old_elder, admission)
    with refused("exchange_own_request"):
        exchange.redemption_decide(
            actor=User.objects.get(member=old_elder), redemption=redemption, approve=True
        )
