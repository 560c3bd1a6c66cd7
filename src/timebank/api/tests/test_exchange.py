"""``/api/v1/exchange``, as a phone app, a shop's scanner or a station's tablet uses it: donations and pool
allocations, money purchases, merchants and their products, orders of goods and rights with their pick-up
codes, guarantee funds and coverage, and moves — each answered, refused in the one error format with nothing
written, kept to the caller's region, and (where minutes move) safe to retry with an Idempotency-Key."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from timebank.api.tests.conftest import bearer, send
from timebank.care.tests.conftest import _english, balance, user_of  # noqa: F401
from timebank.care.tests.flows import world
from timebank.conftest import PASSWORD, staff
from timebank.exchange import selectors
from timebank.exchange import services as exchange
from timebank.exchange.models import (
    GuaranteeFund,
    Merchant,
    Product,
    ProductKind,
    Purchase,
    Redemption,
    RedemptionStatus,
)
from timebank.exchange.tests.builders import *  # noqa: F403
from timebank.exchange.tests.builders import exchange_world, person
from timebank.ledger import services as ledger
from timebank.ledger.models import AccountKind, Transaction, TransactionKind
from timebank.ledger.tests.test_concurrency import run_together
from timebank.people import services as people
from timebank.people.models import Member, Role, User
from timebank.regions.models import Region

Headers = dict[str, Any]
API = "/api/v1/exchange"


def get(headers: Headers, path: str) -> Any:
    return Client().get(API + path, **headers)


def post(headers: Headers, path: str, body: Any, key: str | None = None) -> Any:
    """POST ``body`` as JSON to ``API + path`` with an Idempotency-Key when given."""
    return send(Client(), API + path, body, headers, key)


def put(headers: Headers, path: str, body: Any, key: str | None = None) -> Any:
    extra = headers | ({"HTTP_IDEMPOTENCY_KEY": key} if key else {})
    return Client().put(API + path, data=body, content_type="application/json", **extra)


CALLS: dict[str, Callable[..., Any]] = {"get": get, "post": post, "put": put}


def auth(user: User, scopes: tuple[str, ...] = ("read", "write")) -> Headers:
    return bearer(user, user, scopes)


def rejected(status: int, code: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """``call(*args, **kwargs)`` answers ``status`` with ``code`` in the error format, and nothing at all was
    written."""
    before = (world(), exchange_world())
    response = call(*args, **kwargs)
    assert response.status_code == status, response.content
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "fields"} and body["code"] == code, body
    assert (world(), exchange_world()) == before
    return body


def replayed(first: Any, again: Any) -> None:
    assert again.status_code == first.status_code and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true" and not first.has_header("Idempotent-Replayed")


def walk(path: str, headers: Headers, key: str) -> list[int]:
    """Every id of a list, two a page, following ``next_cursor`` to the end."""
    ids: list[int] = []
    cursor = ""
    sep = "&" if "?" in path else "?"
    for _page in range(50):
        body = get(headers, f"{path}{sep}limit=2{cursor}").json()
        assert len(body[key]) <= 2
        ids += [row["id"] for row in body[key]]
        if body["next_cursor"] is None:
            break
        cursor = f"&cursor={body['next_cursor']}"
    assert len(ids) == len(set(ids)) and ids == sorted(ids, reverse=True)
    return ids


def pool_minutes(region: Region) -> int:
    pool = selectors.pool_of(region)
    return pool.balance if pool else 0


@pytest.fixture
def huangpu_operator(admin_user: User, tree: dict[str, Region], policies: Any) -> User:
    """An operator of another district (黄浦) than the shop's."""
    return staff(admin_user, "huangpu-operator", Role.OPERATOR, tree["310101"])


@pytest.fixture
def priority_elder(old_elder: Member, station: User, son: Member) -> Member:
    """王阿婆, verified as living alone, and 100 minutes her son gave to the Shanghai pool."""
    people.priority_group_verify(actor=station, member=old_elder, group="living_alone")
    exchange.donation_create(actor=user_of(son), giver=son, minutes=100, idempotency_key="d")
    return old_elder


@pytest.fixture
def rice_order(jinyang_holder: Member, rice: Product) -> Redemption:
    return exchange.redemption_order(actor=user_of(jinyang_holder), member=jinyang_holder, product=rice)


@pytest.fixture
def right_asked(old_elder: Member, admission: Product) -> Redemption:
    return exchange.redemption_order(actor=user_of(old_elder), member=old_elder, product=admission)


# --- donations ----------------------------------------------------------------------------------------------


def test_a_member_donates_to_her_pool_and_a_retry_replays_the_answer(
    son: Member, tree: dict[str, Region]
) -> None:
    headers = auth(user_of(son))
    first = post(headers, "/donations", {"minutes": 100}, key="d-1")
    assert first.status_code == 201
    posted = Transaction.objects.get(kind=TransactionKind.DONATION)
    assert first.json() == {"transaction_id": posted.pk, "donated_minutes": 100}
    assert balance(son) == (200, 0) and pool_minutes(tree["310101023001"]) == 100
    # the same request again: the same answer, nothing moved twice
    replayed(first, post(headers, "/donations", {"minutes": 100}, key="d-1"))
    assert balance(son) == (200, 0) and pool_minutes(tree["310101023001"]) == 100
    # the same key with another amount is a conflict; no key at all is refused
    rejected(409, "api_idempotency_conflict", post, headers, "/donations", {"minutes": 5}, key="d-1")
    rejected(422, "api_key_required", post, headers, "/donations", {"minutes": 5})


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"minutes": 0}, 422, "exchange_bad_minutes"),
        ({"minutes": 301}, 422, "exchange_insufficient"),
        ({"minutes": "lots"}, 422, "validation_failed"),
        ({"minutes": 10, "pool": "310000"}, 422, "validation_failed"),
        ({}, 422, "validation_failed"),
        ({"minutes": 10, "member_id": 10**9}, 404, "member_not_found"),
    ],
)
def test_a_donation_refused_writes_nothing(
    son: Member, tree: dict[str, Region], body: dict[str, Any], status: int, code: str
) -> None:
    # given the pool's account, which the first donation would open
    ledger.system_account(kind=AccountKind.POOL, region=tree["310000"])
    headers = auth(user_of(son))
    rejected(status, code, post, headers, "/donations", body, key="d")
    assert balance(son) == (300, 0)


def test_station_staff_donate_for_a_member_of_their_region_and_no_other(
    old_elder: Member, son: Member, station: User, hongkou_staff: User
) -> None:
    body = {"minutes": 60, "member_id": old_elder.pk}
    assert post(auth(station), "/donations", body, key="d").status_code == 201
    assert balance(old_elder) == (540, 0)
    rejected(404, "member_not_found", post, auth(hongkou_staff), "/donations", body, key="d")
    # and a member does not donate another member's minutes, even his mother's
    rejected(404, "member_not_found", post, auth(user_of(son)), "/donations", body, key="d")


@pytest.mark.django_db(transaction=True)
def test_two_requests_with_one_key_at_once_donate_once_and_get_one_answer(
    postgres_only: None, son: Member, tree: dict[str, Region]
) -> None:
    headers = auth(user_of(son))
    answers: list[tuple[int, Any, bool]] = []

    def donate(_i: int) -> None:
        response = post(headers, "/donations", {"minutes": 50}, key="tap-tap")
        answers.append((response.status_code, response.json(), response.has_header("Idempotent-Replayed")))

    assert connection.vendor == "postgresql"
    assert run_together(2, donate) == []
    assert len(answers) == 2 and answers[0][:2] == answers[1][:2] and answers[0][0] == 201
    assert sorted(replay for _s, _b, replay in answers) == [False, True]
    assert Transaction.objects.filter(kind=TransactionKind.DONATION).count() == 1
    assert balance(son) == (250, 0) and pool_minutes(tree["310101023001"]) == 50


# --- the pool -----------------------------------------------------------------------------------------------


def test_station_staff_allocate_pool_minutes_once_however_often_sent(
    priority_elder: Member, station: User, tree: dict[str, Region]
) -> None:
    headers = auth(station)
    body = {"elder_id": priority_elder.pk, "minutes": 40, "reason": "独居，腿脚不便"}
    first = post(headers, "/pool/allocations", body, key="a-1")
    assert first.status_code == 201
    posted = Transaction.objects.get(kind=TransactionKind.ALLOCATION)
    assert first.json() == {"transaction_id": posted.pk, "overflow_minutes": 0}
    assert balance(priority_elder) == (640, 0) and pool_minutes(tree["310101023001"]) == 60
    replayed(first, post(headers, "/pool/allocations", body, key="a-1"))
    assert balance(priority_elder) == (640, 0)
    rejected(
        409,
        "api_idempotency_conflict",
        post,
        headers,
        "/pool/allocations",
        {**body, "minutes": 41},
        key="a-1",
    )
    # and the pool's balance is read by staff of its region
    pool = get(auth(station, ("read",)), "/pool?region=310101023001")
    assert pool.status_code == 200
    assert pool.json() == {
        "region": "310101023001",
        "jurisdiction": "310000",
        "balance_minutes": 60,
        "held_minutes": 0,
        "available_minutes": 60,
    }


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"reason": "  "}, 422, "exchange_reason_required"),
        ({"minutes": 101}, 422, "exchange_pool_short"),
        ({"minutes": -5}, 422, "exchange_bad_minutes"),
        ({"elder_id": "her"}, 422, "validation_failed"),
        ({"elder_id": 10**9}, 404, "member_not_found"),
    ],
)
def test_an_allocation_refused_writes_nothing(
    priority_elder: Member, station: User, change: dict[str, Any], status: int, code: str
) -> None:
    body = {"elder_id": priority_elder.pk, "minutes": 40, "reason": "独居"} | change
    headers = auth(station)
    rejected(status, code, post, headers, "/pool/allocations", body, key="a")


def test_pool_minutes_go_only_to_verified_priority_elders(
    priority_elder: Member, helper: Member, station: User
) -> None:
    body = {"elder_id": helper.pk, "minutes": 40, "reason": "独居"}
    headers = auth(station)
    rejected(422, "exchange_not_priority", post, headers, "/pool/allocations", body, key="a")


def test_only_staff_of_the_elders_region_allocate_or_read_the_pool(
    priority_elder: Member, son: Member, hongkou_staff: User, shop_clerk: User
) -> None:
    body = {"elder_id": priority_elder.pk, "minutes": 10, "reason": "独居"}
    for user, status, code in (
        (hongkou_staff, 404, "member_not_found"),
        (user_of(son), 403, "permission_denied"),
        (shop_clerk, 403, "permission_denied"),
    ):
        headers = auth(user)
        rejected(status, code, post, headers, "/pool/allocations", body, key="a")
        pool = get(headers, "/pool?region=310101023001")
        assert (pool.status_code, pool.json()["code"]) == (
            (404, "region_not_found") if user == hongkou_staff else (403, "permission_denied")
        )


def test_the_pool_of_an_unknown_or_missing_region(station: User) -> None:
    headers = auth(station, ("read",))
    assert get(headers, "/pool?region=999999").json()["code"] == "region_not_found"
    assert get(headers, "/pool").status_code == 422


# --- purchases with money -----------------------------------------------------------------------------------


def test_a_cashier_records_a_purchase_once_however_often_sent(
    jinyang_holder: Member, hongkou_staff: User
) -> None:
    headers = auth(hongkou_staff)
    body = {
        "member_id": jinyang_holder.pk,
        "amount_fen": 1000,
        "method": "mobile",
        "receipt_number": "WX-0001",
    }
    first = post(headers, "/purchases", body, key="p-1")
    assert first.status_code == 201
    recorded = Purchase.objects.get()
    assert first.json() | {"created_at": None} == {
        "id": recorded.pk,
        "member_id": jinyang_holder.pk,
        "amount_fen": 1000,
        "method": "mobile",
        "receipt_number": "WX-0001",
        "fen_per_coin": 2000,
        "bought_minutes": 30,
        "cashier_id": hongkou_staff.pk,
        "transaction_id": recorded.transaction_id,
        "created_at": None,
    }
    assert balance(jinyang_holder) == (630, 0)
    replayed(first, post(headers, "/purchases", body, key="p-1"))
    assert balance(jinyang_holder) == (630, 0) and Purchase.objects.count() == 1
    rejected(
        409, "api_idempotency_conflict", post, headers, "/purchases", {**body, "amount_fen": 2000}, key="p-1"
    )
    # a new key with the receipt already used for another amount is refused by the service
    rejected(
        422, "exchange_receipt_used", post, headers, "/purchases", {**body, "amount_fen": 2000}, key="p-2"
    )


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"amount_fen": 1001}, 422, "exchange_not_whole_minutes"),
        ({"amount_fen": 0}, 422, "exchange_bad_amount"),
        ({"amount_fen": "ten yuan"}, 422, "validation_failed"),
        ({"method": "bitcoin"}, 422, "exchange_bad_method"),
        ({"receipt_number": "收据 1"}, 422, "exchange_bad_receipt"),
        ({"cashier": "me"}, 422, "validation_failed"),
        ({"member_id": 10**9}, 404, "member_not_found"),
    ],
)
def test_a_purchase_refused_writes_nothing(
    jinyang_holder: Member, hongkou_staff: User, change: dict[str, Any], status: int, code: str
) -> None:
    body = {"member_id": jinyang_holder.pk, "amount_fen": 1000, "method": "cash", "receipt_number": "R-1"}
    headers = auth(hongkou_staff)
    rejected(status, code, post, headers, "/purchases", body | change, key="p")


def test_shanghai_sells_no_time_and_only_staff_of_the_members_district_record(
    old_elder: Member, jinyang_holder: Member, station: User, shop_clerk: User
) -> None:
    body = {"member_id": old_elder.pk, "amount_fen": 2000, "method": "cash", "receipt_number": "R-1"}
    headers = auth(station)
    rejected(422, "exchange_purchase_not_allowed", post, headers, "/purchases", body, key="p")
    theirs = {**body, "member_id": jinyang_holder.pk}
    for user, status, code in (
        (station, 404, "member_not_found"),
        (shop_clerk, 403, "permission_denied"),
        (user_of(jinyang_holder), 403, "permission_denied"),
    ):
        h = auth(user)
        rejected(status, code, post, h, "/purchases", theirs, key="p")


def test_purchases_are_listed_for_staff_of_the_region_with_filters_and_pages(
    jinyang_holder: Member, hongkou_staff: User, station: User, tree: dict[str, Region]
) -> None:
    neighbour = person(hongkou_staff, tree["310109018021"], "邻居", born=dt.date(1950, 1, 1))
    made = [
        exchange.purchase_record(
            actor=hongkou_staff,
            member=jinyang_holder if i % 2 else neighbour,
            amount_fen=1000,
            method="cash" if i < 3 else "mobile",
            receipt_number=f"R-{i}",
        )
        for i in range(5)
    ]
    headers = auth(hongkou_staff, ("read",))
    assert walk("/purchases", headers, "purchases") == [p.pk for p in reversed(made)]
    mine = walk(f"/purchases?member_id={jinyang_holder.pk}", headers, "purchases")
    assert mine == [made[3].pk, made[1].pk]
    assert walk("/purchases?method=mobile", headers, "purchases") == [made[4].pk, made[3].pk]
    today = made[0].created_at.astimezone().date().isoformat()
    assert len(walk(f"/purchases?since={today}&until={today}", headers, "purchases")) == 5
    assert walk("/purchases?until=2020-01-01", headers, "purchases") == []
    assert walk("/purchases?region=310101", headers, "purchases") == []
    # another district's staff see none of them; a member is not let in; a bad date is a 422
    assert walk("/purchases", auth(station), "purchases") == []
    member = get(auth(user_of(jinyang_holder)), "/purchases")
    assert member.status_code == 403
    assert get(headers, "/purchases?since=yesterday").status_code == 422
    assert get(headers, "/purchases?method=cheque").status_code == 422
    assert get(headers, "/purchases?limit=0").json()["code"] == "api_bad_limit"


# --- merchants and products ---------------------------------------------------------------------------------


def test_merchants_are_listed_for_their_clerks_and_staff_of_their_region(
    shop: Merchant,
    rice: Product,
    shop_clerk: User,
    hongkou_staff: User,
    station: User,
    jinyang_holder: Member,
) -> None:
    for user in (hongkou_staff, shop_clerk):
        body = get(auth(user, ("read",)), "/merchants").json()
        assert body == {
            "merchants": [
                {
                    "id": shop.pk,
                    "name": "长阳路便民超市",
                    "region": "310109018021",
                    "address": "长阳路 88 号",
                    "opening_hours": "每天 8:00–20:00",
                    "is_active": True,
                }
            ],
            "next_cursor": None,
        }
        detail = get(auth(user, ("read",)), f"/merchants/{shop.pk}").json()
        assert [(p["id"], p["price_minutes"], p["stock"]) for p in detail["products"]] == [(rice.pk, 120, 3)]
    for user in (station, user_of(jinyang_holder)):
        assert get(auth(user), "/merchants").json()["merchants"] == []
        detail = get(auth(user), f"/merchants/{shop.pk}")
        assert (detail.status_code, detail.json()["code"]) == (404, "exchange_not_found")
    staff_headers = auth(hongkou_staff)
    assert walk("/merchants?region=310101", staff_headers, "merchants") == []
    assert get(staff_headers, "/merchants/999999").status_code == 404


def test_an_operator_adds_a_merchant_and_its_clerk(hongkou_operator: User, admin_user: User) -> None:
    headers = auth(hongkou_operator)
    body = {"name": "晋阳菜场", "region": "310109018021", "address": "东长治路 1 号"}
    created = post(headers, "/merchants", body)
    assert created.status_code == 201
    merchant = Merchant.objects.get(name="晋阳菜场")
    assert created.json() == {
        "id": merchant.pk,
        "name": "晋阳菜场",
        "region": "310109018021",
        "address": "东长治路 1 号",
        "opening_hours": "",
        "is_active": True,
    }
    # with a key, sending it again creates no second merchant
    keyed = post(headers, "/merchants", {**body, "name": "晋阳药房"}, key="m")
    replayed(keyed, post(headers, "/merchants", {**body, "name": "晋阳药房"}, key="m"))
    assert Merchant.objects.filter(name="晋阳药房").count() == 1
    people.staff_user_create(actor=admin_user, username="market-clerk", password=PASSWORD)
    added = post(headers, f"/merchants/{merchant.pk}/clerks", {"username": "market-clerk"})
    assert added.status_code == 201
    clerk = User.objects.get(username="market-clerk")
    assert added.json() == {"merchant_id": merchant.pk, "user_id": clerk.pk, "username": "market-clerk"}
    assert list(selectors.merchants_of(clerk)) == [merchant]
    rejected(
        422, "exchange_no_user", post, headers, f"/merchants/{merchant.pk}/clerks", {"username": "nobody"}
    )


@pytest.mark.parametrize(
    ("who", "body", "status", "code"),
    [
        ("hongkou_operator", {"name": "黄浦小店", "region": "310101"}, 403, "permission_denied"),
        ("hongkou_operator", {"name": "某店", "region": "999999"}, 404, "region_not_found"),
        ("hongkou_operator", {"name": " ", "region": "310109"}, 422, "exchange_reason_required"),
        ("hongkou_operator", {"region": "310109"}, 422, "validation_failed"),
        ("hongkou_staff", {"name": "某店", "region": "310109"}, 403, "permission_denied"),
        ("shop_clerk", {"name": "某店", "region": "310109"}, 403, "permission_denied"),
    ],
)
def test_a_merchant_refused_writes_nothing(
    request: pytest.FixtureRequest, who: str, body: dict[str, Any], status: int, code: str
) -> None:
    headers = auth(request.getfixturevalue(who))
    rejected(status, code, post, headers, "/merchants", body)


def test_only_operators_of_the_merchants_region_add_clerks(
    shop: Merchant, shop_clerk: User, hongkou_staff: User, huangpu_operator: User, admin_user: User
) -> None:
    people.staff_user_create(actor=admin_user, username="newcomer", password=PASSWORD)
    path = f"/merchants/{shop.pk}/clerks"
    for user, status, code in (
        (huangpu_operator, 404, "exchange_not_found"),
        (hongkou_staff, 403, "permission_denied"),
        (shop_clerk, 403, "permission_denied"),
    ):
        headers = auth(user)
        rejected(status, code, post, headers, path, {"username": "newcomer"})


def test_the_shops_clerk_keeps_its_goods_and_the_operator_its_rights(
    shop: Merchant, rice: Product, shop_clerk: User, hongkou_operator: User
) -> None:
    clerk = auth(shop_clerk)
    goods = {"name": "酱油", "name_en": "Soy sauce", "price_minutes": 20, "stock": 10}
    created = post(clerk, f"/merchants/{shop.pk}/products", goods)
    assert created.status_code == 201
    soy = Product.objects.get(name="酱油")
    assert created.json() == {
        "id": soy.pk,
        "merchant_id": shop.pk,
        "merchant_name": "长阳路便民超市",
        "kind": "goods",
        "name": "酱油",
        "name_en": "Soy sauce",
        "price_minutes": 20,
        "stock": 10,
        "is_active": True,
    }
    changed = put(clerk, f"/products/{soy.pk}", {**goods, "price_minutes": 25, "is_active": False})
    assert changed.status_code == 200 and changed.json()["price_minutes"] == 25
    assert Product.objects.get(pk=soy.pk).is_active is False
    # a right is the operator's to add and to change
    right = {"kind": "right", "name": "日间照料", "price_minutes": 600, "stock": 2}
    path = f"/merchants/{shop.pk}/products"
    rejected(403, "exchange_right_by_operator", post, clerk, path, right)
    assert post(auth(hongkou_operator), path, right).status_code == 201
    day_care = Product.objects.get(kind=ProductKind.RIGHT)
    rejected(
        403, "exchange_right_by_operator", put, clerk, f"/products/{day_care.pk}", {**right, "kind": "goods"}
    )
    assert Product.objects.get(pk=day_care.pk).kind == ProductKind.RIGHT


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "酱油", "price_minutes": 0, "stock": 1}, "exchange_bad_minutes"),
        ({"name": "酱油", "price_minutes": 20, "stock": -1}, "validation_failed"),
        ({"name": "酱油", "price_minutes": 20, "stock": 1, "kind": "service"}, "validation_failed"),
        ({"name": "酱油", "price_minutes": 20}, "validation_failed"),
        ({"name": "酱油", "price_minutes": 20, "stock": 1, "barcode": "690"}, "validation_failed"),
    ],
)
def test_a_product_refused_writes_nothing(
    shop: Merchant, shop_clerk: User, body: dict[str, Any], code: str
) -> None:
    headers = auth(shop_clerk)
    rejected(422, code, post, headers, f"/merchants/{shop.pk}/products", body)


def test_the_clerk_restocks_once_per_key_and_nobody_else_restocks(
    rice: Product,
    shop: Merchant,
    shop_clerk: User,
    station: User,
    huangpu_operator: User,
    jinyang_holder: Member,
) -> None:
    headers = auth(shop_clerk)
    path = f"/products/{rice.pk}/restock"
    first = post(headers, path, {"added": 5}, key="s-1")
    assert first.status_code == 200 and first.json()["stock"] == 8
    replayed(first, post(headers, path, {"added": 5}, key="s-1"))
    assert Product.objects.get(pk=rice.pk).stock == 8
    rejected(422, "validation_failed", post, headers, path, {"added": 0})
    rejected(422, "validation_failed", post, headers, path, {"added": "five"})
    for user in (station, huangpu_operator, user_of(jinyang_holder)):
        h = auth(user)
        rejected(404, "exchange_not_found", post, h, path, {"added": 5})
        rejected(
            404,
            "exchange_not_found",
            put,
            h,
            f"/products/{rice.pk}",
            {"name": "米", "price_minutes": 1, "stock": 99},
        )
        rejected(
            404,
            "exchange_not_found",
            post,
            h,
            f"/merchants/{shop.pk}/products",
            {"name": "米", "price_minutes": 1, "stock": 99},
        )
    assert Product.objects.get(pk=rice.pk).stock == 8


def test_a_member_sees_what_she_may_order_in_pages(
    jinyang_holder: Member, rice: Product, shop: Merchant, shop_clerk: User, admission: Product
) -> None:
    # given rice and three more goods in 晋阳, one sold out, and the Huangpu care home's admission (a right)
    more = [
        exchange.product_save(actor=shop_clerk, merchant=shop, name=f"商品{i}", price_minutes=10 + i, stock=1)
        for i in range(3)
    ]
    exchange.product_save(actor=shop_clerk, merchant=shop, name="售罄", price_minutes=5, stock=0)
    headers = auth(user_of(jinyang_holder), ("read",))
    ids = walk("/products", headers, "products")
    assert sorted(ids) == sorted([rice.pk, admission.pk, *(p.pk for p in more)])
    body = get(headers, f"/products?merchant_id={shop.pk}&kind=goods&limit=1").json()
    assert body["products"][0]["merchant_name"] == "长阳路便民超市" and body["next_cursor"]
    rights = walk("/products?kind=right", headers, "products")
    assert rights == [admission.pk]
    assert get(headers, "/products?kind=food").status_code == 422
    # the shop's clerk has no member record to order for
    assert get(auth(shop_clerk), "/products").json()["code"] == "api_no_member"


# --- orders and pick-up -------------------------------------------------------------------------------------


def test_a_member_orders_goods_once_per_key_and_gets_the_pick_up_code(
    jinyang_holder: Member, rice: Product
) -> None:
    headers = auth(user_of(jinyang_holder))
    body = {"product_id": rice.pk, "quantity": 2}
    first = post(headers, "/redemptions", body, key="o-1")
    assert first.status_code == 201
    ordered = Redemption.objects.get()
    answer = first.json()
    assert {k: answer[k] for k in ("id", "number", "status", "quantity", "total_minutes", "product_id")} == {
        "id": ordered.pk,
        "number": ordered.number,
        "status": "reserved",
        "quantity": 2,
        "total_minutes": 240,
        "product_id": rice.pk,
    }
    assert answer["pickup_code"] == exchange.pickup_code(ordered)
    assert re.fullmatch(r"R\d{6}-\d{6}", answer["pickup_code"])
    assert answer["pickup_token"] == exchange.pickup_token(ordered)
    assert balance(jinyang_holder) == (600, 240) and Product.objects.get(pk=rice.pk).stock == 1
    replayed(first, post(headers, "/redemptions", body, key="o-1"))
    assert Redemption.objects.count() == 1 and balance(jinyang_holder) == (600, 240)
    rejected(
        409, "api_idempotency_conflict", post, headers, "/redemptions", {**body, "quantity": 1}, key="o-1"
    )


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"quantity": 0}, 422, "exchange_bad_quantity"),
        ({"quantity": 4}, 422, "exchange_out_of_stock"),
        ({"quantity": "two"}, 422, "validation_failed"),
        ({"product_id": 10**9}, 404, "exchange_not_offered"),
        ({"price_minutes": 1}, 422, "validation_failed"),
        ({"member_id": 10**9}, 404, "member_not_found"),
    ],
)
def test_an_order_refused_writes_nothing(
    jinyang_holder: Member, rice: Product, change: dict[str, Any], status: int, code: str
) -> None:
    headers = auth(user_of(jinyang_holder))
    body = {"product_id": rice.pk, "quantity": 1} | change
    rejected(status, code, post, headers, "/redemptions", body, key="o")


def test_goods_where_the_policy_takes_none_or_beyond_the_balance_are_not_ordered(
    son: Member, jinyang_holder: Member, rice: Product, shop: Merchant, shop_clerk: User
) -> None:
    # rice is not offered to 王建国 of Huangpu, whose policy does not take goods
    headers = auth(user_of(son))
    rejected(404, "exchange_not_offered", post, headers, "/redemptions", {"product_id": rice.pk}, key="o")
    exchange.product_save(
        actor=shop_clerk, merchant=shop, product=rice, name=rice.name, price_minutes=601, stock=3
    )
    mine = auth(user_of(jinyang_holder))
    rejected(422, "exchange_insufficient", post, mine, "/redemptions", {"product_id": rice.pk}, key="o")


def test_station_staff_order_for_a_member_without_a_phone(
    jinyang_holder: Member, rice: Product, hongkou_staff: User, station: User
) -> None:
    body = {"product_id": rice.pk, "member_id": jinyang_holder.pk}
    answer = post(auth(hongkou_staff), "/redemptions", body, key="o")
    assert answer.status_code == 201
    ordered = Redemption.objects.get()
    assert ordered.ordered_by == hongkou_staff and balance(jinyang_holder) == (600, 120)
    # staff who ordered see the code to print for her
    assert answer.json()["pickup_code"] == exchange.pickup_code(ordered)
    rejected(404, "member_not_found", post, auth(station), "/redemptions", body, key="o")


def test_orders_are_listed_for_their_member_shop_and_staff_and_nobody_else(
    rice_order: Redemption,
    right_asked: Redemption,
    jinyang_holder: Member,
    old_elder: Member,
    shop: Merchant,
    shop_clerk: User,
    hongkou_staff: User,
    station: User,
    son: Member,
) -> None:
    def listed(user: User, query: str = "") -> list[dict[str, Any]]:
        body = get(auth(user, ("read",)), f"/redemptions{query}").json()
        rows: list[dict[str, Any]] = body["redemptions"]
        return rows

    mine = listed(user_of(jinyang_holder))
    assert [r["id"] for r in mine] == [rice_order.pk]
    assert mine[0]["pickup_code"] == exchange.pickup_code(rice_order)
    # the shop sees its order but never the code: the member shows it
    at_shop = listed(shop_clerk)
    assert [r["id"] for r in at_shop] == [rice_order.pk]
    assert at_shop[0]["pickup_code"] is None and at_shop[0]["pickup_token"] is None
    assert at_shop[0]["member_name"] == "蒋阿姨"
    assert [r["id"] for r in listed(hongkou_staff)] == [rice_order.pk]
    assert listed(hongkou_staff)[0]["pickup_code"] is None
    # the station sees the right waiting in its region, and nothing of Hongkou's
    assert [r["id"] for r in listed(station)] == [right_asked.pk]
    assert [r["id"] for r in listed(station, "?status=awaiting")] == [right_asked.pk]
    assert listed(station, f"?merchant_id={shop.pk}") == []
    assert listed(user_of(son)) == []
    # filters
    assert listed(hongkou_staff, "?status=handed_over") == []
    assert [r["id"] for r in listed(hongkou_staff, f"?member_id={jinyang_holder.pk}")] == [rice_order.pk]
    assert listed(hongkou_staff, "?region=310109018021")[0]["id"] == rice_order.pk
    assert listed(hongkou_staff, "?until=2020-01-01") == []
    for query in ("?since=soon", "?status=Reserved", "?member_id=her"):
        bad = get(auth(hongkou_staff), f"/redemptions{query}")
        assert bad.status_code == 422 and bad.json()["code"] == "validation_failed"


def test_orders_walk_page_by_page_without_repeats(
    jinyang_holder: Member, rice: Product, shop: Merchant, shop_clerk: User
) -> None:
    exchange.product_restock(actor=shop_clerk, product=rice, added=10)
    made = [
        exchange.redemption_order(actor=user_of(jinyang_holder), member=jinyang_holder, product=rice)
        for _i in range(5)
    ]
    expected = [r.pk for r in reversed(made)]
    assert walk("/redemptions", auth(user_of(jinyang_holder)), "redemptions") == expected
    shop_path = f"/redemptions?merchant_id={shop.pk}&status=reserved"
    assert walk(shop_path, auth(shop_clerk), "redemptions") == expected


def test_an_order_is_read_by_its_member_its_shop_and_staff_of_her_region(
    rice_order: Redemption,
    jinyang_holder: Member,
    shop_clerk: User,
    hongkou_staff: User,
    station: User,
    son: Member,
    huangpu_operator: User,
) -> None:
    path = f"/redemptions/{rice_order.pk}"
    for user in (user_of(jinyang_holder), shop_clerk, hongkou_staff):
        body = get(auth(user, ("read",)), path).json()
        assert (body["id"], body["status"], body["total_minutes"]) == (rice_order.pk, "reserved", 120)
    for user in (station, user_of(son), huangpu_operator):
        found = get(auth(user, ("read",)), path)
        assert (found.status_code, found.json()["code"]) == (404, "exchange_not_found")
    assert get(auth(hongkou_staff), "/redemptions/999999").status_code == 404


def test_the_shop_hands_over_by_scanning_once_however_often_scanned(
    rice_order: Redemption, jinyang_holder: Member, shop_clerk: User
) -> None:
    headers = auth(shop_clerk)
    body = {"token": exchange.pickup_token(rice_order)}
    first = post(headers, "/redemptions/hand-over", body, key="h-1")
    assert first.status_code == 200
    answer = first.json()
    assert (answer["status"], answer["member_name"], answer["quantity"]) == ("handed_over", "蒋阿姨", 1)
    handed = Redemption.objects.get(pk=rice_order.pk)
    assert answer["transaction_id"] == handed.transaction_id is not None
    assert balance(jinyang_holder) == (480, 0)
    replayed(first, post(headers, "/redemptions/hand-over", body, key="h-1"))
    assert balance(jinyang_holder) == (480, 0)
    # scanned again as a new request, the shop is told it was handed over already
    rejected(409, "exchange_not_reserved", post, headers, "/redemptions/hand-over", body, key="h-2")
    rejected(
        409, "api_idempotency_conflict", post, headers, "/redemptions/hand-over", {"token": "R1-1"}, key="h-1"
    )


def test_the_short_code_typed_also_hands_over(
    rice_order: Redemption, jinyang_holder: Member, shop_clerk: User
) -> None:
    body = {"token": exchange.pickup_code(rice_order).lower()}
    handed = post(auth(shop_clerk), "/redemptions/hand-over", body, key="h")
    assert handed.status_code == 200 and handed.json()["status"] == "handed_over"
    assert balance(jinyang_holder) == (480, 0)


@pytest.mark.parametrize(
    ("who", "token", "status", "code"),
    [
        ("shop_clerk", "wrong digits", 422, "exchange_bad_pickup"),
        ("shop_clerk", "", 422, "exchange_bad_pickup"),
        ("shop_clerk", None, 422, "validation_failed"),
        ("hongkou_staff", "genuine", 403, "exchange_other_shop"),
        ("station", "genuine", 403, "exchange_other_shop"),
        ("jinyang_holder", "genuine", 403, "exchange_other_shop"),
    ],
)
def test_a_hand_over_refused_writes_nothing(
    request: pytest.FixtureRequest,
    rice_order: Redemption,
    who: str,
    token: str | None,
    status: int,
    code: str,
) -> None:
    actor = request.getfixturevalue(who)
    headers = auth(user_of(actor) if isinstance(actor, Member) else actor)
    tokens = {
        "genuine": exchange.pickup_token(rice_order),
        "wrong digits": f"{rice_order.number}-{(int(exchange.pickup_code(rice_order)[-6:]) + 1) % 10**6:06d}",
    }
    body = {"token": tokens.get(token or "", token)}
    rejected(status, code, post, headers, "/redemptions/hand-over", body, key="h")
    assert Redemption.objects.get(pk=rice_order.pk).status == RedemptionStatus.RESERVED


def test_a_member_cancels_once_however_often_sent_and_gets_minutes_and_stock_back(
    rice_order: Redemption, jinyang_holder: Member, rice: Product
) -> None:
    headers = auth(user_of(jinyang_holder))
    path = f"/redemptions/{rice_order.pk}/cancel"
    first = post(headers, path, {"reason": "买重了"}, key="c-1")
    assert first.status_code == 200
    assert (first.json()["status"], first.json()["reason"], first.json()["pickup_code"]) == (
        "cancelled",
        "买重了",
        None,
    )
    assert balance(jinyang_holder) == (600, 0) and Product.objects.get(pk=rice.pk).stock == 3
    replayed(first, post(headers, path, {"reason": "买重了"}, key="c-1"))
    rejected(409, "api_idempotency_conflict", post, headers, path, {"reason": ""}, key="c-1")
    rejected(409, "exchange_not_open", post, headers, path, {}, key="c-2")
    rejected(422, "api_key_required", post, headers, path, {})


def test_only_the_member_or_staff_of_her_region_cancel(
    rice_order: Redemption,
    jinyang_holder: Member,
    shop_clerk: User,
    station: User,
    son: Member,
    hongkou_staff: User,
) -> None:
    path = f"/redemptions/{rice_order.pk}/cancel"
    for user, status, code in (
        (shop_clerk, 403, "permission_denied"),
        (station, 404, "exchange_not_found"),
        (user_of(son), 404, "exchange_not_found"),
    ):
        headers = auth(user)
        rejected(status, code, post, headers, path, {}, key="c")
    rejected(422, "validation_failed", post, auth(hongkou_staff), path, {"reason": "x" * 301}, key="c")
    assert post(auth(hongkou_staff), path, {}, key="c").json()["status"] == "cancelled"
    assert balance(jinyang_holder) == (600, 0)
    rejected(
        404, "exchange_not_found", post, auth(hongkou_staff), "/redemptions/999999/cancel", {}, key="c-none"
    )


def test_staff_grant_a_special_right_once_however_often_sent(
    right_asked: Redemption, old_elder: Member, station: User
) -> None:
    assert balance(old_elder) == (600, 300)
    mine = get(auth(user_of(old_elder)), f"/redemptions/{right_asked.pk}").json()
    assert (mine["status"], mine["pickup_code"]) == ("awaiting", None)
    headers = auth(station)
    path = f"/redemptions/{right_asked.pk}/decide"
    first = post(headers, path, {"decision": "grant"}, key="g-1")
    assert first.status_code == 200 and first.json()["status"] == "granted"
    assert balance(old_elder) == (300, 0)
    replayed(first, post(headers, path, {"decision": "grant"}, key="g-1"))
    assert balance(old_elder) == (300, 0)
    rejected(409, "api_idempotency_conflict", post, headers, path, {"decision": "refuse"}, key="g-1")
    rejected(
        409, "exchange_not_awaiting", post, headers, path, {"decision": "refuse", "reason": "晚了"}, key="g-2"
    )


def test_a_refusal_needs_a_reason_and_gives_the_minutes_back(
    right_asked: Redemption, old_elder: Member, station: User
) -> None:
    headers = auth(station)
    path = f"/redemptions/{right_asked.pk}/decide"
    rejected(422, "exchange_reason_required", post, headers, path, {"decision": "refuse"}, key="r")
    rejected(422, "validation_failed", post, headers, path, {"decision": "maybe"}, key="r")
    rejected(422, "validation_failed", post, headers, path, {"approve": True}, key="r")
    rejected(
        404, "exchange_not_found", post, headers, "/redemptions/999999/decide", {"decision": "grant"}, key="r"
    )
    answer = post(headers, path, {"decision": "refuse", "reason": "床位已满"}, key="r")
    assert (answer.json()["status"], answer.json()["reason"]) == ("refused", "床位已满")
    assert balance(old_elder) == (600, 0)


def test_only_staff_of_the_members_region_decide(
    right_asked: Redemption, old_elder: Member, hongkou_staff: User, hongkou_operator: User, shop_clerk: User
) -> None:
    path = f"/redemptions/{right_asked.pk}/decide"
    for user, status, code in (
        (hongkou_staff, 404, "exchange_not_found"),
        (hongkou_operator, 404, "exchange_not_found"),
        (shop_clerk, 403, "permission_denied"),
        (user_of(old_elder), 403, "permission_denied"),
    ):
        headers = auth(user)
        rejected(status, code, post, headers, path, {"decision": "grant"}, key="g")


# --- guarantee funds and coverage ---------------------------------------------------------------------------


def test_an_operator_records_a_fund_and_staff_read_the_coverage(
    jinyang_holder: Member, hongkou_operator: User, hongkou_staff: User
) -> None:
    body = {"region": "310109", "value_fen": 10_000, "fen_per_hour": 2000, "note": "区财政"}
    recorded = post(auth(hongkou_operator), "/guarantee-funds", body)
    assert recorded.status_code == 201
    fund = GuaranteeFund.objects.get()
    assert recorded.json() | {"recorded_at": None} == {
        "id": fund.pk,
        "region": "310109",
        "value_fen": 10_000,
        "fen_per_hour": 2000,
        "note": "区财政",
        "recorded_at": None,
    }
    report = get(auth(hongkou_staff, ("read",)), "/coverage?region=310109018021")
    assert report.status_code == 200
    assert report.json() | {"fund": None} == {
        "region": "310109018021",
        "fund": None,
        "outstanding_minutes": 600,
        "purchased_minutes": 0,
        "covered_minutes": 300,
        "ratio_percent": 50,
    }
    assert report.json()["fund"] == recorded.json()


@pytest.mark.parametrize(
    ("who", "change", "status", "code"),
    [
        ("hongkou_operator", {"region": "310101"}, 403, "permission_denied"),
        ("hongkou_operator", {"region": "999999"}, 404, "region_not_found"),
        ("hongkou_operator", {"value_fen": -1}, 422, "validation_failed"),
        ("hongkou_operator", {"fen_per_hour": 0}, 422, "validation_failed"),
        ("hongkou_operator", {"value_fen": "100 yuan"}, 422, "validation_failed"),
        ("hongkou_staff", {}, 403, "permission_denied"),
        ("jinyang_holder", {}, 403, "permission_denied"),
    ],
)
def test_a_fund_refused_writes_nothing(
    request: pytest.FixtureRequest, who: str, change: dict[str, Any], status: int, code: str
) -> None:
    actor = request.getfixturevalue(who)
    headers = auth(user_of(actor) if isinstance(actor, Member) else actor)
    body = {"region": "310109", "value_fen": 10_000, "fen_per_hour": 2000} | change
    rejected(status, code, post, headers, "/guarantee-funds", body)


def test_coverage_is_read_only_by_staff_of_the_region(
    jinyang_holder: Member, station: User, shop_clerk: User
) -> None:
    outsider = get(auth(station), "/coverage?region=310109018021")
    assert (outsider.status_code, outsider.json()["code"]) == (404, "region_not_found")
    for user in (shop_clerk, user_of(jinyang_holder)):
        answer = get(auth(user), "/coverage?region=310109018021")
        assert (answer.status_code, answer.json()["code"]) == (403, "permission_denied")


# --- moving home --------------------------------------------------------------------------------------------


def test_staff_move_a_member_once_however_often_sent(
    son: Member, operator: User, tree: dict[str, Region]
) -> None:
    headers = auth(operator)
    body = {"member_id": son.pk, "home_region": "310109018021"}
    first = post(headers, "/moves", body, key="mv-1")
    assert first.status_code == 201
    assert first.json() == {
        "member_id": son.pk,
        "from_region": "310101023001",
        "home_region": "310109018021",
        "account_id": son.account_id,
        "balance_minutes": 300,
    }
    assert Member.objects.get(pk=son.pk).home_region == tree["310109018021"]
    replayed(first, post(headers, "/moves", body, key="mv-1"))
    rejected(
        409,
        "api_idempotency_conflict",
        post,
        headers,
        "/moves",
        {**body, "home_region": "310101023002"},
        key="mv-1",
    )
    # as a new request, he lives there already
    rejected(422, "exchange_same_home", post, headers, "/moves", body, key="mv-2")


@pytest.mark.parametrize(
    ("who", "change", "status", "code"),
    [
        ("hongkou_staff", {}, 404, "member_not_found"),
        ("station", {}, 403, "permission_denied"),  # 晋阳 is outside the station's street
        ("son", {"home_region": "310101023002"}, 403, "permission_denied"),
        ("shop_clerk", {}, 403, "permission_denied"),
        ("operator", {"home_region": "999999"}, 404, "region_not_found"),
        ("operator", {"member_id": "him"}, 422, "validation_failed"),
        ("operator", {"member_id": 10**9}, 404, "member_not_found"),
    ],
)
def test_a_move_refused_writes_nothing(
    request: pytest.FixtureRequest, son: Member, who: str, change: dict[str, Any], status: int, code: str
) -> None:
    actor = request.getfixturevalue(who)
    headers = auth(user_of(actor) if isinstance(actor, Member) else actor)
    body = {"member_id": son.pk, "home_region": "310109018021"} | change
    rejected(status, code, post, headers, "/moves", body, key="mv")
    assert Member.objects.get(pk=son.pk).home_region.code == "310101023001"


# --- across the module --------------------------------------------------------------------------------------


WRITES = [
    ("post", "/donations", {"minutes": 1}),
    ("post", "/pool/allocations", {"elder_id": 1, "minutes": 1, "reason": "x"}),
    ("post", "/purchases", {"member_id": 1, "amount_fen": 1, "method": "cash", "receipt_number": "R"}),
    ("post", "/merchants", {"name": "x", "region": "310109"}),
    ("post", "/merchants/1/clerks", {"username": "x"}),
    ("post", "/merchants/1/products", {"name": "x", "price_minutes": 1, "stock": 1}),
    ("put", "/products/1", {"name": "x", "price_minutes": 1, "stock": 1}),
    ("post", "/products/1/restock", {"added": 1}),
    ("post", "/redemptions", {"product_id": 1}),
    ("post", "/redemptions/hand-over", {"token": "x"}),
    ("post", "/redemptions/1/cancel", {}),
    ("post", "/redemptions/1/decide", {"decision": "grant"}),
    ("post", "/guarantee-funds", {"region": "310109", "value_fen": 1, "fen_per_hour": 1}),
    ("post", "/moves", {"member_id": 1, "home_region": "310109018021"}),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=[f"{m} {p}" for m, p, _b in WRITES])
def test_a_read_only_token_writes_nothing_anywhere(
    admin_user: User, tree: dict[str, Region], method: str, path: str, body: dict[str, Any]
) -> None:
    headers = auth(admin_user, ("read",))
    rejected(403, "api_scope_missing", CALLS[method], headers, path, body, key="k")


def test_another_districts_staff_find_none_of_our_objects(
    rice_order: Redemption,
    shop: Merchant,
    rice: Product,
    jinyang_holder: Member,
    hongkou_staff: User,
    station: User,
) -> None:
    """The station of 瑞金二路 (黄浦) against everything of 晋阳 (虹口): each object is 404 or 403, each list
    empty, and nothing written."""
    headers = auth(station)
    token = exchange.pickup_token(rice_order)
    tries: list[tuple[str, str, dict[str, Any] | None, int]] = [
        ("get", f"/redemptions/{rice_order.pk}", None, 404),
        ("get", f"/merchants/{shop.pk}", None, 404),
        ("get", "/pool?region=310109018021", None, 404),
        ("get", "/coverage?region=310109", None, 404),
        ("post", f"/redemptions/{rice_order.pk}/cancel", {}, 404),
        ("post", f"/redemptions/{rice_order.pk}/decide", {"decision": "grant"}, 404),
        ("post", "/redemptions/hand-over", {"token": token}, 403),
        ("post", f"/products/{rice.pk}/restock", {"added": 1}, 404),
        ("put", f"/products/{rice.pk}", {"name": "x", "price_minutes": 1, "stock": 1}, 404),
        ("post", f"/merchants/{shop.pk}/products", {"name": "x", "price_minutes": 1, "stock": 1}, 404),
        ("post", "/donations", {"minutes": 1, "member_id": jinyang_holder.pk}, 404),
        ("post", "/redemptions", {"product_id": rice.pk, "member_id": jinyang_holder.pk}, 404),
        (
            "post",
            "/purchases",
            {"member_id": jinyang_holder.pk, "amount_fen": 1000, "method": "cash", "receipt_number": "R"},
            404,
        ),
        ("post", "/moves", {"member_id": jinyang_holder.pk, "home_region": "310101023002"}, 404),
    ]
    for method, path, body, status in tries:
        before = (world(), exchange_world())
        answer = get(headers, path) if body is None else CALLS[method](headers, path, body, key=path)
        assert answer.status_code == status, (path, answer.content)
        assert set(answer.json()) == {"code", "message", "fields"}
        assert (world(), exchange_world()) == before
    for path, key in (
        ("/redemptions", "redemptions"),
        ("/merchants", "merchants"),
        ("/purchases", "purchases"),
    ):
        assert get(headers, path).json()[key] == []
    # while the district's own staff see them
    assert get(auth(hongkou_staff), "/redemptions").json()["redemptions"]


def test_the_openapi_document_describes_every_exchange_endpoint(client: Client) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    exchange_paths = {p: ops for p, ops in paths.items() if p.startswith(f"{API}/")}
    assert len(exchange_paths) >= 15
    for path, operations in exchange_paths.items():
        for method, operation in operations.items():
            assert operation.get("description"), f"{method} {path} has no description"
