"""Mistakes in Chromium: the reason shows next to the field, in the page's language, tied to the field for a
screen reader, with what was typed kept — and the page with the mistake is as accessible as any other."""

from __future__ import annotations

from playwright.sync_api import expect

from timebank.care.models import ServiceOrder
from timebank.care.tests.conftest import user_of
from timebank.web.tests.pages import zh


def test_an_end_before_the_start_is_marked_on_the_until_field(site, live, clock, old_elder):
    phone = site.sign_in(user_of(old_elder))
    phone.goto("/care/ask/")
    # when she gives 11:00 to 10:00
    phone.get_by_label(zh("What kind of help")).select_option(label="情感慰藉")
    phone.get_by_label(zh("Date")).fill(clock.day.isoformat())
    phone.get_by_label(zh("From")).fill("11:00")
    phone.get_by_label(zh("Until")).fill("10:00")
    site.submit(phone, phone.get_by_role("button", name=zh("Send the request")))
    # then the until field says why, and a screen reader hears it with the field
    until = phone.get_by_label(zh("Until"))
    expect(until).to_have_attribute("aria-invalid", "true")
    error = phone.locator("#id_end_error")
    expect(error).to_have_text(zh("The end is before the start."))
    assert "id_end_error" in (until.get_attribute("aria-describedby") or "").split()
    expect(phone.get_by_role("alert")).to_contain_text(zh("Please correct the fields marked below."))
    # and what she typed is still there, and nothing was asked
    expect(phone.get_by_label(zh("From"))).to_have_value("11:00")
    expect(until).to_have_value("10:00")
    with live.quiet():
        assert not ServiceOrder.objects.exists()
    site.look(phone, "ask-for-help-mistake", elder=True)


def test_a_wrong_password_is_said_at_the_top_and_the_username_kept(site, helper):
    page = site.new_page()
    page.goto("/sign-in/")
    page.locator("input[name=identifier]").fill(user_of(helper).username)
    page.locator("input[name=password]").fill("not-the-password")
    site.submit(page, page.locator("main button[type=submit]"))
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.locator("input[name=identifier]")).to_have_value(user_of(helper).username)
    site.look(page, "sign-in-mistake")
