"""Screenshots of the main pages in both languages and both modes, under var/screenshots/, for a person to
look at (``<page>.<language>.<mode>.png``); each page is checked with axe as it is drawn."""

from __future__ import annotations

import pytest

from timebank.care.tests.conftest import user_of
from timebank.web.views.display import COOKIE as LARGE_TEXT

# who, where, what the picture is called
MAIN_PAGES = [
    ("old_elder", "/", "elder-home"),
    ("old_elder", "/care/ask/", "ask-for-help"),
    ("old_elder", "/care/mine/", "elder-services"),
    ("helper", "/", "volunteer-home"),
    ("helper", "/care/open/", "requests-near-me"),
    ("helper", "/me/statement/", "volunteer-statement"),
    ("son", "/", "family-home"),
    ("jinyang_holder", "/exchange/shop/", "shop-goods"),
    ("station", "/", "staff-home"),
    ("station", "/console/care/review/", "review-queue"),
    ("shop_clerk", "/", "shop-counter"),
    ("auditor", "/", "auditor-home"),
]


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_main_pages_in_both_modes(site, lively, language, request):
    pages = {}
    for who, path, name in MAIN_PAGES:
        person = request.getfixturevalue(who)
        staff = hasattr(person, "username")
        if who not in pages:
            pages[who] = site.sign_in(
                person if staff else user_of(person), phone=not staff, language=language
            )
        page = pages[who]
        for large in (True, False):
            page.context.add_cookies(
                [{"name": LARGE_TEXT, "value": "on" if large else "off", "url": site.url("/")}]
            )
            page.goto(path)
            assert page.evaluate("document.documentElement.lang").lower() == language
            site.look(page, name, elder=who == "old_elder")
