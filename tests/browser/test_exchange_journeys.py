"""Spending time, clicked through in Chromium: a son gives his mother an hour; a 晋阳 member orders rice and
the shop hands it over by the pick-up code."""

from __future__ import annotations

from django.utils import translation
from playwright.sync_api import expect

from timebank.care.tests.conftest import user_of
from timebank.exchange.models import RedemptionStatus
from timebank.ledger.models import TransactionKind
from timebank.web.tests.care_fixtures import zh_minutes
from timebank.web.tests.pages import zh


def zh_in(context: str, message: str) -> str:
    """A message with a context, as a Chinese page shows it."""
    with translation.override("zh-hans"):
        return translation.pgettext(context, message)


def test_a_son_gives_his_mother_an_hour_and_both_statements_show_it(site, son, old_elder):
    # given 王建国 on his start page, with a verified bond to his mother
    phone = site.sign_in(user_of(son))
    site.look(phone, "exchange-01-family-home")
    # when he chooses to give time to his family, picks his mother and one hour, and sends it
    site.submit(phone, phone.get_by_role("link", name=zh("Give time to my family"), exact=True))
    site.look(phone, "exchange-02-give-time")
    phone.get_by_label(old_elder.name).check()
    phone.get_by_label(zh_in("time unit", "Hours"), exact=True).fill("1")
    phone.get_by_label(zh_in("time unit", "Minutes"), exact=True).fill("0")
    site.submit(phone, phone.get_by_role("button", name=zh("Give the time")))
    # then his statement says where the hour went, and shows it taken from his 5 hours
    expect(phone.locator(".messages")).to_contain_text(old_elder.name)
    expect(phone.locator(".balance-figure")).to_have_text(zh_minutes(240))
    first = phone.locator("table.list tbody tr").first
    expect(first).to_contain_text(zh(TransactionKind.TRANSFER.label))
    expect(first).to_contain_text("-" + zh_minutes(60))
    site.look(phone, "exchange-03-family-statement")
    # and hers shows it arrived on her 10 hours
    mother = site.sign_in(user_of(old_elder))
    mother.goto("/me/statement/")
    expect(mother.locator(".balance-figure")).to_have_text(zh_minutes(660))
    expect(mother.locator("table.list tbody tr").first).to_contain_text("+" + zh_minutes(60))
    site.look(mother, elder=True)


def test_a_jinyang_member_orders_rice_and_the_shop_hands_it_over_by_the_code(
    site, live, jinyang_holder, rice, shop_clerk, shop
):
    # given 蒋阿姨 of 晋阳 on the goods page, which shows the rice and where to pick it up
    phone = site.sign_in(user_of(jinyang_holder))
    site.submit(phone, phone.get_by_role("link", name=zh("Goods and special rights"), exact=True).first)
    item = phone.locator(f"#product-{rice.pk}")
    expect(item).to_contain_text("大米 5 公斤")
    expect(item).to_contain_text(shop.address)
    site.look(phone, "exchange-04-shop-goods")
    # when she orders one bag
    item.get_by_label(zh("How many")).fill("1")
    site.submit(phone, item.get_by_role("button", name=zh_in("get goods for time", "Order")))
    # then her orders page shows the order reserved, with a QR code and the code typed under it
    order = phone.locator(".order-item").filter(has_text="大米 5 公斤")
    expect(order.locator(".status")).to_have_text(zh(RedemptionStatus.RESERVED.label))
    expect(order.locator(".qr svg")).to_be_visible()
    code = order.locator(".token").inner_text().strip()
    assert code
    site.look(phone, "exchange-05-my-orders")

    # when the shop assistant, whose start page is the counter, types the code and hands the rice over
    counter = site.sign_in(shop_clerk, phone=False)
    expect(counter.get_by_role("heading", name=zh("Shop counter"), level=1)).to_be_visible()
    expect(counter.locator("main table.list").first).to_contain_text(jinyang_holder.name)
    site.look(counter, "exchange-06-shop-counter")
    counter.get_by_label(zh("Pick-up code")).fill(code)
    site.submit(counter, counter.get_by_role("button", name=zh("Hand over"), exact=True))
    # then the counter has nothing more waiting, and one bag less in stock
    expect(counter.locator("main")).to_contain_text(zh("No orders are waiting."))
    expect(counter.locator(f"#stock-{rice.pk} .stock")).to_have_text("2")
    site.look(counter)

    # and her order is handed over, the two hours taken from her savings
    phone.reload()
    expect(order.locator(".status")).to_have_text(zh(RedemptionStatus.HANDED_OVER.label))
    phone.goto("/me/statement/")
    expect(phone.locator(".balance-figure")).to_have_text(zh_minutes(480))
    site.look(phone)
