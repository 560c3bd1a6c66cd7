"""Minutes bought with money where the policy allows it (recorded by a cashier, receipts used once), and the
guarantee funds behind a jurisdiction's deposits: how far they cover what members hold."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import translation

from timebank.audit.models import AuditEvent
from timebank.care.tests.conftest import balance, user_of
from timebank.exchange import selectors
from timebank.exchange import services as exchange
from timebank.exchange.models import PaymentMethod, Purchase
from timebank.exchange.tests.builders import *  # noqa: F403
from timebank.exchange.tests.builders import City, cashier_who_is_member, person, refused
from timebank.ledger.models import Account, AccountKind, Transaction, TransactionKind
from timebank.ledger.selectors import account_statement
from timebank.people.models import Member, User
from timebank.regions.models import Region


def buy(cashier: User, m: Member, fen: int, receipt: str, method: str = PaymentMethod.CASH) -> Purchase:
    return exchange.purchase_record(
        actor=cashier, member=m, amount_fen=fen, method=method, receipt_number=receipt
    )


# --- purchases ----------------------------------------------------------------------------------------------


def test_a_cashier_records_half_an_hour_bought_for_ten_yuan(
    jinyang_holder: Member, hongkou_staff: User, tree: dict[str, Region]
) -> None:
    # given the tiered rules of Hongkou sell an hour for ¥20
    # when the cashier takes ¥10 from 蒋阿姨 by mobile payment
    purchase = buy(hongkou_staff, jinyang_holder, 1000, "WX-20261201-0001", PaymentMethod.MOBILE)
    # then she has 30 minutes more, drawn from Hongkou's purchases account, and the receipt is kept
    assert (purchase.minutes, purchase.fen_per_coin, purchase.cashier) == (30, 2000, hongkou_staff)
    assert balance(jinyang_holder) == (630, 0)
    purchases = Account.objects.get(kind=AccountKind.PURCHASES, region=tree["310109"])
    assert purchases.balance == -30
    assert jinyang_holder.account_id is not None
    entry = account_statement(jinyang_holder.account_id, limit=1).entries[0]
    assert (entry.transaction_id, entry.kind, entry.amount) == (
        purchase.transaction_id,
        TransactionKind.PURCHASE,
        30,
    )
    event = AuditEvent.objects.get(event_type="exchange.purchase")
    assert event.new["receipt"] == "WX-20261201-0001" and event.new["amount_fen"] == 1000
    assert list(selectors.purchases_visible(hongkou_staff)) == [purchase]


def test_shanghai_does_not_sell_time_for_money(old_elder: Member, station: User) -> None:
    with translation.override("en"), refused("exchange_purchase_not_allowed") as caught:
        buy(station, old_elder, 2000, "R-1")
    assert str(caught.value.message) == "上海市时间银行 2026 does not sell time for money."


@pytest.mark.parametrize(
    ("fen", "advice"),
    [
        (1001, "At ¥20.00 an hour, take an amount that buys whole minutes: 30 min costs ¥10.00."),
        (10, "At ¥20.00 an hour, take an amount that buys whole minutes: 1 min costs ¥0.34."),
    ],
)
def test_an_amount_that_does_not_buy_whole_minutes_is_refused_with_the_price_to_take(
    jinyang_holder: Member, hongkou_staff: User, fen: int, advice: str
) -> None:
    with translation.override("en"), refused("exchange_not_whole_minutes") as caught:
        buy(hongkou_staff, jinyang_holder, fen, "R-1")
    assert str(caught.value.message) == advice
    # and the price it names is taken
    price = 1000 if fen == 1001 else 34
    assert buy(hongkou_staff, jinyang_holder, price, "R-1").minutes == (30 if fen == 1001 else 1)


@pytest.mark.parametrize("fen", [0, -100, 10.0, True, 10**12 + 1])
def test_an_amount_in_fen_more_than_zero(jinyang_holder: Member, hongkou_staff: User, fen: object) -> None:
    with refused("exchange_bad_amount"):
        buy(hongkou_staff, jinyang_holder, fen, "R-1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "receipt", "code"),
    [
        ("bitcoin", "R-1", "exchange_bad_method"),
        ("cash", "", "exchange_bad_receipt"),
        ("cash", "收据 1", "exchange_bad_receipt"),
        ("cash", "R" * 41, "exchange_bad_receipt"),
    ],
)
def test_a_method_and_a_receipt_number_are_required(
    jinyang_holder: Member, hongkou_staff: User, method: str, receipt: str, code: str
) -> None:
    with refused(code):
        buy(hongkou_staff, jinyang_holder, 1000, receipt, method)


def test_a_receipt_recorded_twice_is_one_purchase(jinyang_holder: Member, hongkou_staff: User) -> None:
    first = buy(hongkou_staff, jinyang_holder, 1000, "R-7")
    transactions = Transaction.objects.count()
    again = buy(hongkou_staff, jinyang_holder, 1000, " R-7 ")
    assert again.pk == first.pk
    assert Transaction.objects.count() == transactions and balance(jinyang_holder) == (630, 0)
    assert Purchase.objects.count() == 1


def test_a_receipt_number_is_used_once(
    jinyang_holder: Member, hongkou_staff: User, tree: dict[str, Region]
) -> None:
    buy(hongkou_staff, jinyang_holder, 1000, "R-7")
    neighbour = person(hongkou_staff, tree["310109018021"], "邻居", born=dt.date(1950, 1, 1))
    with translation.override("en"), refused("exchange_receipt_used") as caught:
        buy(hongkou_staff, jinyang_holder, 2000, "R-7")
    assert str(caught.value.message) == "This receipt number was already used."
    with refused("exchange_receipt_used"):
        buy(hongkou_staff, neighbour, 1000, "R-7")


def test_a_cashier_does_not_record_their_own_purchase(
    jinyang_holder: Member, admin_user: User, tree: dict[str, Region], hongkou_staff: User
) -> None:
    # given 蒋阿姨 also works at the 北外滩 station
    herself = cashier_who_is_member(admin_user, tree, jinyang_holder)
    # when she records a purchase of her own, then it is refused; a colleague records it
    with refused("exchange_own_purchase"):
        buy(herself, jinyang_holder, 1000, "R-1")
    buy(hongkou_staff, jinyang_holder, 1000, "R-1")
    assert balance(jinyang_holder) == (630, 0)


def test_only_staff_of_the_members_district_record_a_purchase(
    jinyang_holder: Member, station: User, shop_clerk: User
) -> None:
    for actor in (station, shop_clerk, user_of(jinyang_holder)):
        with refused("permission_denied"):
            buy(actor, jinyang_holder, 1000, "R-1")
    assert list(selectors.purchases_visible(station)) == []


def test_a_purchase_beyond_a_cap_routed_to_the_pool_keeps_the_whole_receipt(
    other_cities, hongkou_staff: User, tree: dict[str, Region]
) -> None:
    """The tiered rules with Nanjing's cap: what the money bought beyond the cap goes to the pool, and the
    purchase still records every minute the money bought."""
    from timebank.exchange.tests.builders import variant

    variant("paper-tiered", tree["310109018"], account_cap_minutes=660, cap_overflow="pool")
    capped = person(hongkou_staff, tree["310109018021"], "封顶", born=dt.date(1950, 1, 1), minutes=600)
    purchase = buy(hongkou_staff, capped, 4000, "R-9")
    assert purchase.minutes == 120 and balance(capped) == (660, 0)
    pool = selectors.pool_of(tree["310109018021"])
    assert pool is not None and pool.balance == 60


# --- guarantee funds and coverage ---------------------------------------------------------------------------


def test_coverage_is_what_the_fund_buys_against_what_members_hold(
    jinyang_holder: Member, hongkou_operator: User, hongkou_staff: User, tree: dict[str, Region]
) -> None:
    # given Hongkou's guarantee of ¥100 at ¥20 an hour of care (5 hours) and 蒋阿姨's 10 hours
    fund = exchange.guarantee_fund_record(
        actor=hongkou_operator, region=tree["310109"], value_fen=10_000, fen_per_hour=2000, note="区财政"
    )
    # when the coverage of 晋阳 is asked
    report = selectors.coverage(tree["310109018021"])
    # then the nearest fund above it covers half of what its members hold
    assert report.fund == fund
    assert (report.outstanding_minutes, report.covered_minutes, report.purchased_minutes) == (600, 300, 0)
    assert report.ratio_percent == 50
    # and a purchase adds to what members hold, and is reported apart
    buy(hongkou_staff, jinyang_holder, 1000, "R-1")
    after = selectors.coverage(tree["310109018021"])
    assert (after.outstanding_minutes, after.purchased_minutes, after.ratio_percent) == (630, 30, 47)


def test_the_nearest_fund_at_or_above_a_region_counts_and_its_latest_statement(
    old_elder: Member,
    son: Member,
    jinyang_holder: Member,
    operator: User,
    hongkou_operator: User,
    tree: dict[str, Region],
) -> None:
    # given a Shanghai-wide fund and a Hongkou fund, restated later
    city = exchange.guarantee_fund_record(
        actor=operator, region=tree["310000"], value_fen=100_000, fen_per_hour=3000
    )
    exchange.guarantee_fund_record(
        actor=hongkou_operator, region=tree["310109"], value_fen=1_000, fen_per_hour=2000
    )
    restated = exchange.guarantee_fund_record(
        actor=hongkou_operator, region=tree["310109"], value_fen=20_000, fen_per_hour=2000
    )
    # then 雁荡 is covered by the city's fund (2,000 minutes for 王阿婆's 600 and her son's 300)
    yandang = selectors.coverage(tree["310101023001"])
    assert (yandang.fund, yandang.outstanding_minutes, yandang.covered_minutes) == (city, 900, 2000)
    assert yandang.ratio_percent == 222
    # and 晋阳 by Hongkou's latest statement
    jinyang = selectors.coverage(tree["310109018021"])
    assert (jinyang.fund, jinyang.covered_minutes, jinyang.ratio_percent) == (restated, 600, 100)
    # and the whole city counts all its members against its own fund
    assert selectors.coverage(tree["310000"]).outstanding_minutes == 1500


def test_nanjings_ten_million_yuan_guarantee(nanjing: City) -> None:
    person(nanjing.station, nanjing.community, "储户", born=dt.date(1950, 1, 1), minutes=90_000)
    exchange.guarantee_fund_record(
        actor=nanjing.operator, region=nanjing.policy.region, value_fen=10_000_000 * 100, fen_per_hour=5000
    )
    report = selectors.coverage(nanjing.community)
    assert report.covered_minutes == 12_000_000 and report.ratio_percent == 13_333


def test_without_a_fund_nothing_is_covered(nanjing: City) -> None:
    empty = selectors.coverage(nanjing.community)
    assert (empty.fund, empty.covered_minutes, empty.ratio_percent) == (None, 0, None)
    person(nanjing.station, nanjing.community, "储户", born=dt.date(1950, 1, 1), minutes=60)
    assert selectors.coverage(nanjing.community).ratio_percent == 0


def test_only_operators_of_the_region_record_a_fund(
    station: User, hongkou_operator: User, tree: dict[str, Region]
) -> None:
    with refused("permission_denied"):
        exchange.guarantee_fund_record(actor=station, region=tree["310101"], value_fen=1, fen_per_hour=1)
    with refused("permission_denied"):
        exchange.guarantee_fund_record(
            actor=hongkou_operator, region=tree["310101"], value_fen=1, fen_per_hour=1
        )
    with refused("validation_failed"):
        exchange.guarantee_fund_record(
            actor=hongkou_operator, region=tree["310109"], value_fen=1, fen_per_hour=0
        )


def test_a_member_who_moved_within_the_city_counts_where_they_live_now(
    son: Member, old_elder: Member, operator: User, hongkou_staff: User, tree: dict[str, Region]
) -> None:
    # given the son moved from 雁荡 (Huangpu) to 晋阳 (Hongkou) and then bought half an hour there
    exchange.member_move(actor=operator, member=son, to_region=tree["310109018021"])
    buy(hongkou_staff, Member.objects.get(pk=son.pk), 1000, "R-1")
    # then Hongkou's coverage counts what he holds, and Huangpu's no longer does
    hongkou = selectors.coverage(tree["310109"])
    assert (hongkou.outstanding_minutes, hongkou.purchased_minutes) == (330, 30)
    assert selectors.coverage(tree["310101"]).outstanding_minutes == 600
