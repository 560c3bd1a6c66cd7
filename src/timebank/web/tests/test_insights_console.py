"""The console's dashboard: a region's figures for staff and auditors, read only, inside their scope."""

from __future__ import annotations

import re

import pytest

from timebank.care.tests.conftest import user_of
from timebank.conftest import staff
from timebank.insights.tests.world import *  # noqa: F403 (the 黄浦 and 虹口 world)
from timebank.people.models import Role
from timebank.web.tests.care_fixtures import *  # noqa: F403
from timebank.web.tests.care_fixtures import zh_minutes
from timebank.web.tests.pages import html_of, zh


@pytest.fixture
def auditor(admin_user, tree):
    """The civil-affairs bureau's auditor of 黄浦."""
    return staff(admin_user, "huangpu-auditor", Role.AUDITOR, tree["310101"])


def figure(page, name: str) -> str:
    """The figure a dashboard cell shows (``data-figure="<name>"``)."""
    found = re.search(rf'data-figure="{re.escape(name)}">(.*?)</td>', html_of(page), re.S)
    assert found, f"no figure {name!r} on the page"
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def test_the_auditor_opens_the_top_of_their_scope(browser, world, auditor):
    page = browser(auditor).get("/console/insights/")
    assert page.status_code == 200
    html = html_of(page)
    # the district, with a way down to its street
    assert '<span class="mono">310101</span>' in html and 'href="?region=310101023"' in html
    # people and services
    assert (figure(page, "members"), figure(page, "priority_elders")) == ("4", "1")
    assert figure(page, "services-credited") == "3" and figure(page, "services") == "3"
    # minutes, shown the way people read them
    assert figure(page, "deposited") == zh_minutes(135)
    assert figure(page, "paid_for_care") == zh_minutes(105)
    assert figure(page, "redeemed") == zh_minutes(300)
    assert figure(page, "donated") == zh_minutes(100)
    assert figure(page, "withdrawn") == zh_minutes(505)
    assert figure(page, "purchased") == zh_minutes(0)
    assert figure(page, "outstanding") == zh_minutes(530)
    assert figure(page, "ratio") == "60%"


def test_the_dashboard_is_read_only_and_in_the_menu(browser, world, auditor):
    html = html_of(browser(auditor).get("/console/insights/"))
    assert f'href="/console/insights/">{zh("Dashboard")}</a>' in html
    # no form but the page's own tools (text size, language, sign out), no way to the dispatch board
    actions = set(re.findall(r'<form[^>]*action="([^"]*)"[^>]*method="post"', html))
    actions |= set(re.findall(r'<form[^>]*method="post"[^>]*action="([^"]*)"', html))
    assert actions <= {"/display/large-text/", "/i18n/setlang/", "/sign-out/"}
    assert "/assign/" not in html and "/console/care/dispatch/" not in html


def test_a_region_below_is_chosen_and_one_outside_is_refused(browser, world, auditor):
    desk = browser(auditor)
    maoming = desk.get("/console/insights/?region=310101023002")
    assert maoming.status_code == 200
    assert figure(maoming, "members") == "1" and figure(maoming, "deposited") == zh_minutes(30)
    # the way back up to the district
    assert 'href="?region=310101"' in html_of(maoming)
    assert desk.get("/console/insights/?region=310109").status_code == 403
    assert desk.get("/console/insights/?region=310000").status_code == 403
    assert desk.get("/console/insights/?region=999999").status_code == 404
    assert desk.get("/console/insights/?region=x' OR 1=1").status_code == 404


def test_staff_of_another_district_see_only_theirs(browser, world, hongkou_staff):
    desk = browser(hongkou_staff)
    page = desk.get("/console/insights/")
    assert page.status_code == 200
    assert '<span class="mono">310109018</span>' in html_of(page)
    assert figure(page, "members") == "1" and figure(page, "deposited") == zh_minutes(0)
    assert figure(page, "purchased") == zh_minutes(30)
    assert desk.get("/console/insights/?region=310101").status_code == 403
    assert desk.get("/console/insights/?region=310101023001").status_code == 403


def test_members_without_a_staff_role_get_no_dashboard(browser, world, helper):
    assert browser(user_of(helper)).get("/console/insights/").status_code == 403


def test_the_page_takes_a_fixed_number_of_queries(browser, world, auditor, django_assert_max_num_queries):
    desk = browser(auditor)
    # session, user, grants, the tops of the scope, the region, the figures (6), the trail, the regions
    # below, the guarantee fund's region, and the menu's unread notices and shop counter
    # the page's own queries, then the session refreshed on every page (SESSION_SAVE_EVERY_REQUEST: 3)
    with django_assert_max_num_queries(16 + 3):
        assert desk.get("/console/insights/?region=310101023").status_code == 200
