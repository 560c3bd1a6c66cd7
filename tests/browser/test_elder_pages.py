"""The elder-mode numbers on the pages an elder uses most, as Chromium draws them on a phone: her start
page, asking for help, her services and one service's page — in elder mode (her default) and with it off."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from timebank.care.models import ServiceOrder, Status
from timebank.care.tests.conftest import user_of
from timebank.sensing.models import Candidate, PresenceSession
from timebank.web.tests.pages import zh


@pytest.mark.parametrize("large_text", [None, False], ids=["elder-mode", "switched-off"])
def test_the_elder_pages_meet_the_elder_friendly_numbers(site, lively, old_elder, large_text):
    page = site.sign_in(user_of(old_elder), large_text=large_text)
    service = ServiceOrder.objects.filter(elder=old_elder).order_by("pk").first()
    assert service is not None
    noticed = PresenceSession.objects.get(candidate=Candidate.PENDING)
    for path in (
        "/",
        "/care/ask/",
        "/care/mine/",
        f"/care/services/{service.pk}/",
        "/me/unplanned-help/",
        f"/me/unplanned-help/{noticed.pk}/record/",
        f"/me/unplanned-help/{noticed.pk}/dismiss/",
    ):
        page.goto(path)
        if large_text is None:  # elders get elder mode without asking
            expect(page.locator("html")).to_have_class(re.compile(r"\blarge-text\b"))
        numbers = site.elder_numbers(page)
        assert numbers["large"] is (large_text is None)
        assert numbers["fontSize"] >= 18 and numbers["lineHeight"] >= 1.3 * numbers["fontSize"]
        site.look(page)


def test_she_records_a_visit_the_sensors_noticed_as_help(site, live, lively, old_elder, helper):
    # given 李志强 was with her yesterday with no visit planned, her start page says so
    phone = site.sign_in(user_of(old_elder))
    site.submit(phone, phone.locator("main a[href='/me/unplanned-help/']"))
    visit = phone.locator(".order-item").filter(has_text=helper.name)
    expect(visit).to_contain_text("15:00–15:40")
    site.look(phone, "unplanned-help-list", elder=True)
    # when she says it was help, and what kind (her own savings pay, as is chosen for her)
    site.submit(phone, visit.get_by_role("link", name=zh("Yes, record it as help")))
    site.look(phone, "unplanned-help-record", elder=True)
    phone.get_by_label(zh("What kind of help")).select_option(label="生活协助")
    expect(phone.get_by_label("老人本人的时间储蓄")).to_be_checked()
    site.submit(phone, phone.get_by_role("button", name=zh("Yes, record it as help")))
    # then she is told it was recorded, and nothing is left to decide
    expect(phone.locator(".messages")).to_contain_text(helper.name)
    expect(phone.locator("main")).to_contain_text(zh("Nothing is waiting for you."))
    site.look(phone, elder=True)
    with live.quiet():
        order = ServiceOrder.objects.get(source="sensors")
        assert (order.status, order.category.code, order.service_minutes) == (
            Status.CONFIRMED,
            "assistance",
            40,
        )
