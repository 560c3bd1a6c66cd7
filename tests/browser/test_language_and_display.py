"""The header's language button and large-text switch, and the keyboard, in Chromium."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from timebank.care.tests.conftest import user_of
from timebank.web.tests.pages import zh

LARGE = re.compile(r"\blarge-text\b")


def test_english_is_one_button_away_on_every_page_and_stays_chosen(site, helper):
    # given the sign-in page, in Chinese by default
    page = site.new_page()
    page.goto("/sign-in/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    expect(page.get_by_role("heading", level=1)).to_have_text(zh("Sign in"))
    site.look(page, "sign-in")
    # when the visitor presses "English" in the header
    site.submit(page, page.locator("header form.lang").get_by_role("button", name="English"))
    # then the same page comes back in English
    expect(page).to_have_url(re.compile(r"/sign-in/$"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    site.look(page, "sign-in")
    # and it stays English after signing in
    page.locator("input[name=identifier]").fill(user_of(helper).username)
    page.locator("input[name=password]").fill("Correct-Horse-9")
    site.submit(page, page.locator("main").get_by_role("button", name="Sign in"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Hello, {helper.name}")
    site.submit(page, page.get_by_role("link", name="My services", exact=True).first)
    expect(page.get_by_role("heading", level=1)).to_have_text("My services")
    site.look(page)
    # when they press the button for Chinese, which names itself in Chinese
    site.submit(page, page.locator("header form.lang").get_by_role("button", name="简体中文"))
    # then the page they were on comes back in Chinese
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    expect(page.get_by_role("heading", level=1)).to_have_text(zh("My services"))


def test_the_large_text_switch_enlarges_every_page_without_zoom_and_switches_back(site, helper):
    # given a volunteer (not an elder, so normal text to begin with) on his start page
    page = site.sign_in(user_of(helper))
    toggle = page.locator("header [data-testid=large-text-toggle]")
    expect(page.locator("html")).not_to_have_class(LARGE)
    normal = site.elder_numbers(page)
    assert not normal["large"]
    # when he presses the large-text switch in the header
    site.submit(page, toggle)
    # then the page is drawn large: bigger body text, every control at least 60×60 px, at the same zoom
    expect(page.locator("html")).to_have_class(LARGE)
    large = site.elder_numbers(page)
    assert large["fontSize"] > normal["fontSize"]
    assert page.evaluate("window.devicePixelRatio") == 1
    site.look(page)
    # and stays large on the next page
    site.submit(page, page.locator("header nav").get_by_role("link", name=zh("My services")))
    expect(page.locator("html")).to_have_class(LARGE)
    site.elder_numbers(page)
    # when he presses it again, text is normal again
    site.submit(page, page.locator("header [data-testid=large-text-toggle]"))
    expect(page.locator("html")).not_to_have_class(LARGE)


def test_elders_get_large_text_by_default_and_may_turn_it_off(site, old_elder):
    page = site.sign_in(user_of(old_elder))
    expect(page.locator("html")).to_have_class(LARGE)
    site.submit(page, page.locator("header [data-testid=large-text-toggle]"))
    expect(page.locator("html")).not_to_have_class(LARGE)
    # even then her pages keep 18 px text and 44 px controls
    site.look(page, elder=True)


def test_the_keyboard_reaches_the_content_first_with_a_visible_focus(site, old_elder):
    page = site.sign_in(user_of(old_elder))
    # when she presses Tab once
    page.keyboard.press("Tab")
    # then the "skip to content" link has the focus, shown on screen with an outline
    focused = page.evaluate(
        """() => {
          const e = document.activeElement, s = getComputedStyle(e), r = e.getBoundingClientRect();
          return {text: e.textContent.trim(), outline: s.outlineStyle, width: parseFloat(s.outlineWidth),
                  onScreen: r.left >= 0 && r.top >= 0 && r.width > 0};
        }"""
    )
    assert focused["text"] == zh("Skip to content")
    assert focused["outline"] != "none" and focused["width"] >= 2 and focused["onScreen"]
    # and Enter takes her to the main content, where the next Tab goes to her first big action
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('main') !== null")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
