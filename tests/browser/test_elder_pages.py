"""The elder-mode numbers on the pages an elder uses most, as Chromium draws them on a phone: her start
page, asking for help, her services and one service's page — in elder mode (her default) and with it off."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from timebank.care.models import ServiceOrder
from timebank.care.tests.conftest import user_of


@pytest.mark.parametrize("large_text", [None, False], ids=["elder-mode", "switched-off"])
def test_the_elder_pages_meet_the_elder_friendly_numbers(site, lively, old_elder, large_text):
    page = site.sign_in(user_of(old_elder), large_text=large_text)
    service = ServiceOrder.objects.filter(elder=old_elder).order_by("pk").first()
    assert service is not None
    for path in ("/", "/care/ask/", "/care/mine/", f"/care/services/{service.pk}/"):
        page.goto(path)
        if large_text is None:  # elders get elder mode without asking
            expect(page.locator("html")).to_have_class(re.compile(r"\blarge-text\b"))
        numbers = site.elder_numbers(page)
        assert numbers["large"] is (large_text is None)
        assert numbers["fontSize"] >= 18 and numbers["lineHeight"] >= 1.3 * numbers["fontSize"]
        site.look(page)
