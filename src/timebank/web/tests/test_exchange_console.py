"""The exchange in the staff console: the pool, purchases with money, special rights, merchants, guarantee
funds and coverage, and moving a member to another community — and that staff elsewhere reach none of it."""

from __future__ import annotations

from timebank.audit.models import AuditEvent
from timebank.care.tests.conftest import balance, user_of
from timebank.exchange import services as exchange
from timebank.exchange.models import (
    AccountMove,
    GuaranteeFund,
    Merchant,
    Purchase,
    Redemption,
    RedemptionStatus,
)
from timebank.ledger.models import Transaction, TransactionKind
from timebank.people import services as people
from timebank.people.models import Member, PriorityGroup
from timebank.web.tests.care_fixtures import zh_minutes
from timebank.web.tests.exchange_fixtures import *  # noqa: F403
from timebank.web.tests.pages import alerts, field_errors, form_with, html_of, submittable, zh

# --- the hub ------------------------------------------------------------------------------------------------


def test_station_staff_find_the_exchange_in_the_menu(browser, station):
    desk = browser(station)
    assert 'href="/console/exchange/"' in html_of(desk.get("/console/people/"))
    hub = desk.get("/console/exchange/")
    assert hub.status_code == 200
    for page in ("pool", "purchases", "rights", "merchants", "funds"):
        assert f'href="/console/exchange/{page}/"' in html_of(hub)


def test_members_and_shop_clerks_do_not_reach_the_console(browser, helper, shop_clerk):
    for user in (user_of(helper), shop_clerk):
        desk = browser(user)
        assert desk.get("/console/exchange/").status_code == 403
        assert desk.get("/console/exchange/purchases/").status_code == 403


# --- the mutual-aid pool ------------------------------------------------------------------------------------


def test_staff_allocate_pool_minutes_to_a_priority_elder(browser, station, son, old_elder):
    # given the son donated 100 minutes to the pool, and 王阿婆 is a verified priority elder
    exchange.donation_create(actor=user_of(son), giver=son, minutes=100, idempotency_key="d1")
    people.priority_group_verify(actor=station, member=old_elder, group=PriorityGroup.LIVING_ALONE)
    desk = browser(station)
    page = desk.get(f"/console/exchange/pool/?elder={old_elder.pk}")
    assert zh_minutes(100) in html_of(page)
    form = form_with(page, "reason")
    assert form["elder"] == str(old_elder.pk)
    # when staff give her 40 minutes with the reason, and the form is sent twice
    data = submittable(form, minutes="40", reason="独居，本月护理不足")
    first = desk.post("/console/exchange/pool/", data)
    second = desk.post("/console/exchange/pool/", data)
    # then she has 40 minutes more, once, and the pool 40 less
    assert (first.status_code, second.status_code) == (302, 302)
    assert balance(old_elder) == (640, 0)
    assert Transaction.objects.filter(kind=TransactionKind.ALLOCATION).count() == 1
    assert zh_minutes(60) in html_of(desk.get("/console/exchange/pool/"))
    assert zh(TransactionKind.ALLOCATION.label) in html_of(browser(user_of(old_elder)).get("/me/statement/"))


def test_pool_minutes_need_a_reason_and_a_priority_elder(browser, station, son, old_elder):
    exchange.donation_create(actor=user_of(son), giver=son, minutes=100, idempotency_key="d1")
    desk = browser(station)
    form = form_with(desk.get("/console/exchange/pool/"), "reason")
    # when staff send no reason for an elder who is not a verified priority elder
    no_reason = desk.post("/console/exchange/pool/", submittable(form, elder=str(old_elder.pk), minutes="40"))
    assert no_reason.status_code == 422
    assert field_errors(no_reason) == {"reason": [zh("Say why.")]}
    not_priority = desk.post(
        "/console/exchange/pool/", submittable(form, elder=str(old_elder.pk), minutes="40", reason="困难")
    )
    assert list(field_errors(not_priority)) == ["elder"]
    assert balance(old_elder) == (600, 0)


# --- purchases with money -----------------------------------------------------------------------------------


def test_a_cashier_records_a_purchase_reported_apart(browser, hongkou_staff, jinyang_holder):
    desk = browser(hongkou_staff)
    form = form_with(desk.get(f"/console/exchange/purchases/?member={jinyang_holder.pk}"), "receipt_number")
    assert form["member"] == str(jinyang_holder.pk)
    # when ¥10 in cash is recorded, at ¥20 an hour
    data = submittable(form, amount_yuan="10.00", method="cash", receipt_number="HK-0001")
    response = desk.post("/console/exchange/purchases/", data)
    # then half an hour is bought, and listed with its receipt, apart from volunteered time
    assert response.status_code == 302
    purchase = Purchase.objects.get()
    assert (purchase.amount_fen, purchase.minutes, purchase.cashier_id) == (1000, 30, hongkou_staff.pk)
    assert balance(jinyang_holder) == (630, 0)
    listing = html_of(desk.get("/console/exchange/purchases/"))
    assert "HK-0001" in listing and "¥10.00" in listing
    assert 'id="purchase-totals"' in listing and zh_minutes(30) in listing
    # and the same receipt again is a harmless retry
    assert desk.post("/console/exchange/purchases/", data).status_code == 302
    assert Purchase.objects.count() == 1


def test_a_purchase_where_the_policy_forbids_it_is_marked_on_the_amount(
    browser, station, old_elder, policies
):
    desk = browser(station)
    form = form_with(desk.get("/console/exchange/purchases/"), "receipt_number")
    response = desk.post(
        "/console/exchange/purchases/",
        submittable(form, member=str(old_elder.pk), amount_yuan="20", method="cash", receipt_number="HP-1"),
    )
    assert response.status_code == 422
    errors = field_errors(response)
    assert list(errors) == ["amount_yuan"]
    assert policies["shanghai"].name in errors["amount_yuan"][0]
    assert not Purchase.objects.exists()


def test_a_member_of_another_district_cannot_be_chosen_for_a_purchase(browser, station, jinyang_holder):
    desk = browser(station)
    form = form_with(desk.get("/console/exchange/purchases/"), "receipt_number")
    response = desk.post(
        "/console/exchange/purchases/",
        submittable(
            form, member=str(jinyang_holder.pk), amount_yuan="10", method="cash", receipt_number="X-1"
        ),
    )
    assert response.status_code == 422
    assert list(field_errors(response)) == ["member"]
    assert not Purchase.objects.exists()


# --- special rights -----------------------------------------------------------------------------------------


def test_staff_grant_a_special_right(browser, hongkou_staff, jinyang_holder, care_home_right):
    phone = browser(user_of(jinyang_holder))
    phone.post(f"/exchange/shop/{care_home_right.pk}/order/", {"quantity": "1"})
    redemption = Redemption.objects.get()
    desk = browser(hongkou_staff)
    # given the hub counts one request and the list shows it
    assert zh("Special rights") in html_of(desk.get("/console/exchange/"))
    listing = desk.get("/console/exchange/rights/")
    assert redemption.number in html_of(listing)
    url = f"/console/exchange/rights/{redemption.pk}/decide/"
    # when staff refuse without a reason, the reason field says so
    refused = desk.post(url, {"decision": "refuse"})
    assert refused.status_code == 422
    assert field_errors(refused) == {f"r{redemption.pk}_reason": [zh("Say why.")]}
    # when they grant it
    granted = desk.post(url, {"decision": "grant", "reason": "符合条件"})
    assert granted.status_code == 302
    redemption.refresh_from_db()
    assert redemption.status == RedemptionStatus.GRANTED
    assert balance(jinyang_holder) == (300, 0)
    assert f'id="right-{redemption.pk}"' not in html_of(desk.get("/console/exchange/rights/"))
    assert zh(RedemptionStatus.GRANTED.label) in html_of(phone.get("/exchange/orders/"))
    # and deciding again is refused at the top of the page
    again = desk.post(url, {"decision": "refuse", "reason": "x"})
    assert again.status_code == 409
    assert alerts(again)


def test_staff_of_another_district_cannot_see_or_decide_a_right(
    browser, station, jinyang_holder, care_home_right
):
    browser(user_of(jinyang_holder)).post(f"/exchange/shop/{care_home_right.pk}/order/", {"quantity": "1"})
    redemption = Redemption.objects.get()
    desk = browser(station)
    assert f'id="right-{redemption.pk}"' not in html_of(desk.get("/console/exchange/rights/"))
    response = desk.post(f"/console/exchange/rights/{redemption.pk}/decide/", {"decision": "grant"})
    assert response.status_code == 404
    redemption.refresh_from_db()
    assert redemption.status == RedemptionStatus.AWAITING_APPROVAL


# --- merchants ----------------------------------------------------------------------------------------------


def test_an_operator_adds_a_merchant_a_clerk_and_a_special_right(browser, hongkou_operator, admin_user, tree):
    from timebank.conftest import PASSWORD

    people.staff_user_create(actor=admin_user, username="new-clerk", password=PASSWORD)
    desk = browser(hongkou_operator)
    form = form_with(desk.get("/console/exchange/merchants/"), "opening_hours")
    assert str(tree["310109018021"].pk) in form["_options"]["region"]
    assert str(tree["310101023001"].pk) not in form["_options"]["region"]  # another district
    data = submittable(
        form,
        name="虹口区第一福利院",
        region=str(tree["310109"].pk),
        address="大连路 1 号",
        opening_hours="工作日",
    )
    created = desk.post("/console/exchange/merchants/", data)
    merchant = Merchant.objects.get(name="虹口区第一福利院")
    assert created["Location"] == f"/console/exchange/merchants/{merchant.pk}/"
    # when a clerk is added by username, and an unknown username is refused on the field
    unknown = desk.post(f"/console/exchange/merchants/{merchant.pk}/clerks/", {"username": "nobody"})
    assert field_errors(unknown) == {"username": [zh("No sign-in with this username.")]}
    added = desk.post(f"/console/exchange/merchants/{merchant.pk}/clerks/", {"username": "new-clerk"})
    assert added.status_code == 302
    assert merchant.staff.filter(username="new-clerk").exists()
    # when a special right is added
    product_form = form_with(desk.get(f"/console/exchange/merchants/{merchant.pk}/products/new/"), "name")
    saved = desk.post(
        f"/console/exchange/merchants/{merchant.pk}/products/new/",
        submittable(product_form, kind="right", name="入住资格", price_hours="10000", stock="3"),
    )
    assert saved.status_code == 302
    right = merchant.products.get()
    assert (right.kind, right.price_minutes, right.stock) == ("right", 600000, 3)
    assert "入住资格" in html_of(desk.get(f"/console/exchange/merchants/{merchant.pk}/"))


def test_a_bad_merchant_form_names_the_field_and_adds_nothing(browser, hongkou_operator, tree):
    desk = browser(hongkou_operator)
    form = form_with(desk.get("/console/exchange/merchants/"), "opening_hours")
    before = Merchant.objects.count()
    nameless = desk.post(
        "/console/exchange/merchants/", submittable(form, name="", region=str(tree["310109"].pk))
    )
    assert nameless.status_code == 422 and list(field_errors(nameless)) == ["name"]
    elsewhere = desk.post(
        "/console/exchange/merchants/", submittable(form, name="某超市", region=str(tree["310101023001"].pk))
    )
    assert elsewhere.status_code == 422 and list(field_errors(elsewhere)) == ["region"]
    assert Merchant.objects.count() == before


def test_station_staff_see_merchants_but_do_not_change_them(browser, hongkou_staff, shop, rice):
    desk = browser(hongkou_staff)
    listing = html_of(desk.get("/console/exchange/merchants/"))
    assert shop.name in listing
    assert 'name="opening_hours"' not in listing
    page = html_of(desk.get(f"/console/exchange/merchants/{shop.pk}/"))
    assert rice.name in page and 'name="username"' not in page
    assert desk.get(f"/console/exchange/merchants/{shop.pk}/products/new/").status_code == 403
    assert desk.post("/console/exchange/merchants/", {"name": "x"}).status_code == 403


def test_staff_of_another_district_get_404_for_a_merchant(browser, station, operator, shop, rice):
    desk = browser(station)
    assert shop.name not in html_of(desk.get("/console/exchange/merchants/"))
    assert desk.get(f"/console/exchange/merchants/{shop.pk}/").status_code == 404
    assert desk.post(f"/console/exchange/merchants/{shop.pk}/clerks/", {"username": "x"}).status_code == 404
    assert desk.get(f"/console/exchange/merchants/{shop.pk}/products/{rice.pk}/").status_code == 404


# --- guarantee funds ----------------------------------------------------------------------------------------


def test_a_bad_guarantee_fund_names_the_field_and_records_nothing(browser, hongkou_operator):
    desk = browser(hongkou_operator)
    form = form_with(desk.get("/console/exchange/funds/"), "value_yuan")
    for value in ("-5", "", "abc"):
        data = submittable(form, region="310109", value_yuan=value, hour_cost_yuan="20", note="")
        response = desk.post("/console/exchange/funds/", data)
        assert response.status_code == 422 and list(field_errors(response)) == ["value_yuan"], value
    assert not GuaranteeFund.objects.exists()


def test_an_operator_records_a_guarantee_fund_and_sees_the_coverage(
    browser, hongkou_operator, jinyang_holder
):
    desk = browser(hongkou_operator)
    form = form_with(desk.get("/console/exchange/funds/"), "value_yuan")
    # when ¥1,000 is recorded for 虹口 at ¥20 for an hour of care (50 hours of care)
    data = submittable(form, region="310109", value_yuan="1000", hour_cost_yuan="20", note="区财政")
    response = desk.post("/console/exchange/funds/", data)
    assert response.status_code == 302
    assert response["Location"] == "/console/exchange/funds/?region=310109"
    fund = GuaranteeFund.objects.get()
    assert (fund.value_fen, fund.fen_per_hour) == (100000, 2000)
    # then the page shows 10 hours held against 50 hours covered: 500%
    page = html_of(desk.get(response["Location"]))
    assert "¥1,000.00" in page
    assert zh_minutes(600) in page and zh_minutes(3000) in page
    assert '<dd class="ratio">500%</dd>' in page


def test_coverage_elsewhere_is_not_shown_and_station_staff_record_no_fund(browser, hongkou_staff, station):
    desk = browser(station)
    assert desk.get("/console/exchange/funds/?region=310109").status_code == 404
    assert 'name="value_yuan"' not in html_of(desk.get("/console/exchange/funds/"))
    assert desk.post("/console/exchange/funds/", {"region": "310101"}).status_code == 403
    unknown = desk.get("/console/exchange/funds/?region=999999")
    assert unknown.status_code == 200
    assert list(field_errors(unknown)) == ["lookup_region"]


# --- moving home --------------------------------------------------------------------------------------------


def test_staff_move_a_member_to_another_community_of_their_street(browser, station, son, tree):
    desk = browser(station)
    page = desk.get(f"/console/people/{son.pk}/")
    form = form_with(page, "home_region")
    assert str(son.home_region_id) not in form["_options"]["home_region"]
    account = son.account_id
    response = desk.post(f"/console/people/{son.pk}/move/", {"home_region": str(tree["310101023002"].pk)})
    assert response.status_code == 302
    moved = Member.objects.get(pk=son.pk)
    assert (moved.home_region.code, moved.account_id) == ("310101023002", account)
    assert balance(moved) == (300, 0)
    # and both communities see it in the audit log
    assert AuditEvent.objects.filter(event_type="member.updated", subject_id=str(son.pk)).count() == 2


def test_a_move_into_another_city_carries_the_minutes_and_shows_on_the_statement(
    browser, admin_user, son, nanjing
):
    desk = browser(admin_user)
    response = desk.post(f"/console/people/{son.pk}/move/", {"home_region": str(nanjing["320102002001"].pk)})
    assert response.status_code == 302
    move = AccountMove.objects.get()
    assert (move.minutes_out, move.minutes_in) == (300, 300)
    moved = Member.objects.get(pk=son.pk)
    assert moved.account_id != move.from_account_id
    assert balance(moved) == (300, 0)
    statement = html_of(desk.get(f"/console/people/{son.pk}/statement/"))
    assert zh("Earlier accounts") in statement and "长江路社区" in statement


def test_moving_to_where_they_live_is_marked_on_the_field(browser, station, son):
    response = browser(station).post(
        f"/console/people/{son.pk}/move/", {"home_region": str(son.home_region_id)}
    )
    assert response.status_code == 422
    assert field_errors(response) == {"home_region": [zh("That is where they live now.")]}


def test_staff_of_another_district_cannot_move_a_member(browser, hongkou_staff, son, tree):
    desk = browser(hongkou_staff)
    assert desk.get(f"/console/people/{son.pk}/").status_code == 404
    response = desk.post(f"/console/people/{son.pk}/move/", {"home_region": str(tree["310109018021"].pk)})
    assert response.status_code == 404
    assert Member.objects.get(pk=son.pk).home_region.code == "310101023001"


def test_a_move_out_of_the_staff_members_regions_is_not_offered(browser, station, son, tree):
    desk = browser(station)
    offered = form_with(desk.get(f"/console/people/{son.pk}/"), "home_region")["_options"]["home_region"]
    assert str(tree["310109018021"].pk) not in offered
    response = desk.post(f"/console/people/{son.pk}/move/", {"home_region": str(tree["310109018021"].pk)})
    assert response.status_code == 422
    assert list(field_errors(response)) == ["home_region"]
    assert Member.objects.get(pk=son.pk).home_region.code == "310101023001"
