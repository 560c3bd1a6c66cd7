"""Spending time on the member pages and at the shop counter, used the way members and shop assistants do."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from timebank.care.tests.conftest import balance, user_of
from timebank.exchange.models import Product, Redemption, RedemptionStatus
from timebank.ledger.models import Transaction, TransactionKind
from timebank.web.tests.care_fixtures import zh_minutes
from timebank.web.tests.exchange_fixtures import *  # noqa: F403
from timebank.web.tests.exchange_fixtures import pickup_code
from timebank.web.tests.pages import alerts, field_errors, form_with, html_of, submittable, zh


def _give(phone: Client, **changes: str):
    """Fill in the give form as shown, with ``changes``; returns the values a browser would send."""
    form = form_with(phone.get("/exchange/give/"), "hours")
    return submittable(form, **changes)


# --- giving time to family ----------------------------------------------------------------------------------


def test_a_son_gives_his_mother_an_hour_and_a_double_submit_posts_once(browser, son, old_elder):
    phone = browser(user_of(son))
    # given his start page offers to give time, and the form offers his mother
    assert 'href="/exchange/give/"' in html_of(phone.get("/"))
    data = _give(phone, receiver=str(old_elder.pk), hours="1", minutes="0")
    assert data["idempotency_key"]
    # when he sends the form, and sends it again (a double tap, or the back button)
    first = phone.post("/exchange/give/", data)
    second = phone.post("/exchange/give/", data)
    # then an hour moved once
    assert (first.status_code, second.status_code) == (302, 302)
    assert first["Location"] == "/me/statement/"
    assert balance(son) == (240, 0)
    assert balance(old_elder) == (660, 0)
    assert Transaction.objects.filter(kind=TransactionKind.TRANSFER).count() == 1
    # and both statements show it
    his = html_of(phone.get("/me/statement/"))
    assert zh(TransactionKind.TRANSFER.label) in his
    assert "-" + zh_minutes(60) in his
    hers = html_of(browser(user_of(old_elder)).get("/me/statement/"))
    assert zh(TransactionKind.TRANSFER.label) in hers
    assert "+" + zh_minutes(60) in hers


def test_a_fresh_form_gives_again(browser, son, old_elder):
    phone = browser(user_of(son))
    # when he fills in the form twice, each time as shown
    for _ in range(2):
        data = _give(phone, receiver=str(old_elder.pk), hours="0", minutes="30", kind="gift")
        assert phone.post("/exchange/give/", data).status_code == 302
    # then both gifts went
    assert balance(old_elder) == (660, 0)
    assert Transaction.objects.filter(kind=TransactionKind.GIFT).count() == 2


def test_a_relation_the_policy_refuses_is_marked_on_the_receiver(
    browser, son, friend, old_elder, beijing_rules_on_huangpu
):
    phone = browser(user_of(son))
    # given Beijing's rules, which let minutes pass to lineal relatives only, and his verified friend
    offered = form_with(phone.get("/exchange/give/"), "hours")
    assert f'value="{friend.pk}"' in html_of(phone.get("/exchange/give/"))
    # when he gives his friend an hour
    response = phone.post("/exchange/give/", submittable(offered, receiver=str(friend.pk), hours="1"))
    # then the receiver field names the rule, and nothing moved
    assert response.status_code == 422
    errors = field_errors(response)
    assert list(errors) == ["receiver"]
    assert beijing_rules_on_huangpu.name in errors["receiver"][0]
    assert balance(son) == (300, 0)
    # and his mother may still receive
    again = phone.post("/exchange/give/", submittable(offered, receiver=str(old_elder.pk), hours="1"))
    assert again.status_code == 302


def test_more_than_the_savings_and_no_time_at_all_are_marked_on_the_amount(browser, son, old_elder):
    phone = browser(user_of(son))
    too_much = phone.post("/exchange/give/", _give(phone, receiver=str(old_elder.pk), hours="9"))
    assert too_much.status_code == 422
    assert list(field_errors(too_much)) == ["minutes"]
    nothing = phone.post("/exchange/give/", _give(phone, receiver=str(old_elder.pk), hours="0", minutes="0"))
    assert field_errors(nothing) == {"minutes": [zh("Give at least one minute.")]}
    assert balance(son) == (300, 0)


def test_a_member_without_a_verified_bond_is_told_why(browser, helper):
    page = browser(user_of(helper)).get("/exchange/give/")
    assert page.status_code == 200
    assert 'name="receiver"' not in html_of(page)
    said = zh(
        "Nobody can receive your time yet: minutes go only to relatives and friends whose bond with you the "
        "station has verified. Ask your community station to verify the bond."
    )
    assert said in html_of(page)


def test_a_member_donates_to_the_pool(browser, son):
    phone = browser(user_of(son))
    form = form_with(phone.get("/exchange/donate/"), "hours")
    data = submittable(form, hours="1", minutes="40")
    assert phone.post("/exchange/donate/", data).status_code == 302
    assert phone.post("/exchange/donate/", data).status_code == 302
    assert balance(son) == (200, 0)
    assert zh(TransactionKind.DONATION.label) in html_of(phone.get("/me/statement/"))


# --- goods at the shop --------------------------------------------------------------------------------------


def test_a_jinyang_member_orders_rice_and_the_clerk_hands_it_over_by_the_code(
    browser, jinyang_holder, rice, shop_clerk, shop
):
    phone = browser(user_of(jinyang_holder))
    counter = browser(shop_clerk)
    # given the rice on her goods page, with the shop's address and opening hours
    listed = html_of(phone.get("/exchange/shop/"))
    assert "大米 5 公斤" in listed and shop.address in listed and shop.opening_hours in listed
    # when she orders one bag
    ordered = phone.post(f"/exchange/shop/{rice.pk}/order/", {"quantity": "1"})
    assert ordered.status_code == 302
    assert ordered["Location"] == "/exchange/orders/"
    redemption = Redemption.objects.get()
    # then two hours are set aside and the bag reserved
    assert balance(jinyang_holder) == (600, 120)
    assert Product.objects.get(pk=rice.pk).stock == 2
    # and her orders page shows a large pick-up QR code, the shop and the pick-up deadline
    orders = phone.get("/exchange/orders/")
    page = html_of(orders)
    assert "<svg" in page and 'class="qr"' in page
    assert shop.address in page and shop.opening_hours in page
    assert timezone.localtime(redemption.expires_at).strftime("%Y-%m-%d %H:%M") in page
    code = pickup_code(orders, redemption.number)

    # when the clerk, who sees the order waiting, scans her code
    assert redemption.number in html_of(counter.get("/shop/"))
    handed = counter.post("/shop/hand-over/", {"token": code})
    # then the minutes are taken and the order is closed
    assert handed.status_code == 302
    assert handed["Location"] == "/shop/"
    redemption.refresh_from_db()
    assert redemption.status == RedemptionStatus.HANDED_OVER
    assert balance(jinyang_holder) == (480, 0)
    assert Product.objects.get(pk=rice.pk).stock == 2
    # and the counter says what to hand over, and the order no longer waits
    after = html_of(counter.get("/shop/"))
    assert f"{redemption.number}：" in after or f"{redemption.number}:" in after  # the message
    assert f'<td class="mono">{redemption.number}</td>' not in after  # the orders waiting
    assert zh(RedemptionStatus.HANDED_OVER.label) in html_of(phone.get("/exchange/orders/"))
    # and the same code a second time is refused at the top of the counter page
    twice = counter.post("/shop/hand-over/", {"token": code})
    assert twice.status_code == 409
    assert alerts(twice)
    assert balance(jinyang_holder) == (480, 0)


def test_a_mistyped_code_is_marked_on_the_code_field(browser, shop_clerk, rice):
    response = browser(shop_clerk).post("/shop/hand-over/", {"token": "not-a-code"})
    assert response.status_code == 422
    assert field_errors(response) == {"token": [zh("This is not a valid pick-up code.")]}


def test_more_than_the_stock_is_marked_on_the_quantity(browser, jinyang_holder, rice):
    phone = browser(user_of(jinyang_holder))
    response = phone.post(f"/exchange/shop/{rice.pk}/order/", {"quantity": "4"})
    assert response.status_code == 422
    assert field_errors(response) == {f"p{rice.pk}_quantity": [zh("Not enough in stock.")]}
    assert balance(jinyang_holder) == (600, 0)


def test_the_member_cancels_and_gets_the_minutes_and_the_stock_back(browser, jinyang_holder, rice):
    phone = browser(user_of(jinyang_holder))
    phone.post(f"/exchange/shop/{rice.pk}/order/", {"quantity": "2"})
    redemption = Redemption.objects.get()
    assert balance(jinyang_holder) == (600, 240)
    response = phone.post(f"/exchange/orders/{redemption.pk}/cancel/", {"reason": "买多了"})
    assert response.status_code == 302
    redemption.refresh_from_db()
    assert (redemption.status, redemption.reason) == (RedemptionStatus.CANCELLED, "买多了")
    assert balance(jinyang_holder) == (600, 0)
    assert Product.objects.get(pk=rice.pk).stock == 3
    # and the cancelled order shows no pick-up code any more
    assert "<svg" not in html_of(phone.get("/exchange/orders/"))


def test_a_shanghai_member_sees_no_goods_and_cannot_order_them(browser, old_elder, rice):
    phone = browser(user_of(old_elder))
    page = html_of(phone.get("/exchange/shop/"))
    # then the page says plainly that her city's rules allow no goods, and shows none
    assert 'id="no-goods"' in page
    assert "大米" not in page
    assert f"/exchange/shop/{rice.pk}/order/" not in page
    # and ordering by the address is refused
    assert phone.post(f"/exchange/shop/{rice.pk}/order/", {"quantity": "1"}).status_code == 404
    assert not Redemption.objects.exists()


def test_someone_elses_order_cannot_be_cancelled(browser, jinyang_holder, rice, old_elder):
    browser(user_of(jinyang_holder)).post(f"/exchange/shop/{rice.pk}/order/", {"quantity": "1"})
    redemption = Redemption.objects.get()
    response = browser(user_of(old_elder)).post(f"/exchange/orders/{redemption.pk}/cancel/", {})
    assert response.status_code == 404
    redemption.refresh_from_db()
    assert redemption.status == RedemptionStatus.RESERVED


# --- the shop's own goods -----------------------------------------------------------------------------------


def test_the_clerk_adds_goods_and_restocks(browser, shop_clerk, shop, rice):
    counter = browser(shop_clerk)
    # given the clerk starts on the counter page
    assert counter.get("/")["Location"] == "/shop/"
    form = form_with(counter.get(f"/shop/{shop.pk}/products/new/"), "name")
    assert "kind" not in form  # only the operator adds special rights
    data = submittable(form, name="食用油 1 升", name_en="Cooking oil, 1 l", price_hours="1", stock="5")
    assert counter.post(f"/shop/{shop.pk}/products/new/", data).status_code == 302
    oil = Product.objects.get(name="食用油 1 升")
    assert (oil.price_minutes, oil.stock, oil.kind) == (60, 5, "goods")
    # when three more bags of rice arrive
    restocked = counter.post(f"/shop/{shop.pk}/products/{rice.pk}/restock/", {"added": "3"})
    assert restocked.status_code == 302
    assert Product.objects.get(pk=rice.pk).stock == 6
    # and a price change keeps the rest
    edit = form_with(counter.get(f"/shop/{shop.pk}/products/{rice.pk}/"), "name")
    assert (
        counter.post(f"/shop/{shop.pk}/products/{rice.pk}/", submittable(edit, price_hours="1")).status_code
        == 302
    )
    rice.refresh_from_db()
    assert (rice.price_minutes, rice.stock) == (60, 6)


def test_a_price_of_nothing_is_marked(browser, shop_clerk, shop):
    counter = browser(shop_clerk)
    form = form_with(counter.get(f"/shop/{shop.pk}/products/new/"), "name")
    response = counter.post(f"/shop/{shop.pk}/products/new/", submittable(form, name="毛巾"))
    assert response.status_code == 422
    assert field_errors(response) == {"price_minutes": [zh("A price of at least one minute.")]}


def test_members_and_other_people_do_not_reach_the_counter(browser, jinyang_holder, station, rice, shop):
    assert browser(user_of(jinyang_holder)).get("/shop/").status_code == 403
    assert browser(station).get("/shop/").status_code == 403
    assert browser(station).post("/shop/hand-over/", {"token": "x"}).status_code == 403
    assert (
        browser(user_of(jinyang_holder))
        .post(f"/shop/{shop.pk}/products/{rice.pk}/restock/", {"added": "9"})
        .status_code
        == 403
    )
    assert Product.objects.get(pk=rice.pk).stock == 3


def test_the_clerk_of_another_shop_cannot_hand_over(
    browser, jinyang_holder, rice, hongkou_operator, admin_user, tree
):
    from timebank.conftest import PASSWORD
    from timebank.exchange import services as exchange
    from timebank.people import services as people

    other = exchange.merchant_create(actor=hongkou_operator, name="另一家店", region=tree["310109018021"])
    clerk = people.staff_user_create(actor=admin_user, username="other-clerk", password=PASSWORD)
    exchange.merchant_staff_add(actor=hongkou_operator, merchant=other, user=clerk)
    phone = browser(user_of(jinyang_holder))
    phone.post(f"/exchange/shop/{rice.pk}/order/", {"quantity": "1"})
    redemption = Redemption.objects.get()
    code = pickup_code(phone.get("/exchange/orders/"), redemption.number)
    response = browser(clerk).post("/shop/hand-over/", {"token": code})
    assert response.status_code == 403
    assert alerts(response)
    redemption.refresh_from_db()
    assert redemption.status == RedemptionStatus.RESERVED


# --- special rights, from the member's side -----------------------------------------------------------------


def test_a_member_asks_for_a_special_right(browser, jinyang_holder, care_home_right):
    phone = browser(user_of(jinyang_holder))
    page = html_of(phone.get("/exchange/shop/"))
    assert care_home_right.name in page
    response = phone.post(f"/exchange/shop/{care_home_right.pk}/order/", {"quantity": "1"})
    assert response.status_code == 302
    redemption = Redemption.objects.get()
    assert redemption.status == RedemptionStatus.AWAITING_APPROVAL
    assert balance(jinyang_holder) == (600, 300)
    orders = html_of(phone.get("/exchange/orders/"))
    assert zh(RedemptionStatus.AWAITING_APPROVAL.label) in orders
    assert "<svg" not in orders  # nothing to pick up: the station decides


# --- the statement after a move -----------------------------------------------------------------------------


def test_the_statement_mentions_the_earlier_account_after_a_move(browser, son, admin_user, nanjing):
    from timebank.exchange import services as exchange

    exchange.member_move(actor=admin_user, member=son, to_region=nanjing["320102002001"])
    page = html_of(browser(user_of(son)).get("/me/statement/"))
    assert zh("Earlier accounts") in page
    assert "长江路社区" in page and "雁荡居委会" in page
    assert zh_minutes(300) in page


def test_no_earlier_accounts_without_a_move(browser, son):
    assert zh("Earlier accounts") not in html_of(browser(user_of(son)).get("/me/statement/"))


# --- junk ---------------------------------------------------------------------------------------------------

JUNK = [
    ("post", "/exchange/give/", {"receiver": "abc", "hours": "-1", "minutes": "99"}),
    ("post", "/exchange/give/", {"receiver": "9" * 30, "hours": "9" * 30, "idempotency_key": "k" * 500}),
    ("post", "/exchange/donate/", {"hours": "1.5", "idempotency_key": ""}),
    ("post", "/exchange/shop/999999/order/", {"quantity": "1"}),
    ("post", "/exchange/shop/{rice}/order/", {"quantity": "abc"}),
    ("post", "/exchange/shop/{rice}/order/", {"quantity": "100"}),
    ("post", "/exchange/orders/999999/cancel/", {}),
    ("get", "/exchange/give/?receiver=%00", {}),
]


@pytest.mark.parametrize(("method", "url", "data"), JUNK, ids=[f"{m} {u} {sorted(d)}" for m, u, d in JUNK])
def test_junk_never_causes_a_server_error(browser, jinyang_holder, rice, method, url, data):
    phone = browser(user_of(jinyang_holder))
    phone.raise_request_exception = False
    response = getattr(phone, method)(url.replace("{rice}", str(rice.pk)), data)
    assert response.status_code < 500
    assert balance(jinyang_holder) == (600, 0)
