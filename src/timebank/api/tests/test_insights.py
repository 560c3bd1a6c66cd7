"""``/api/v1/insights``: the regional dashboard as the civil-affairs bureau's systems read it — the figures of
a region's subtree (see ``insights/tests/world.py`` for the small world they count), for staff and auditors
whose scope holds the region and nobody else."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client

from timebank.api.tests.conftest import bearer
from timebank.api.tests.test_people import refused as api_refused  # the world brings a ``refused`` of its own
from timebank.care.tests.conftest import user_of
from timebank.conftest import staff
from timebank.insights.tests.world import *  # noqa: F403 (the world and its people)
from timebank.insights.tests.world import World
from timebank.people.models import Member, Role, User
from timebank.regions.models import Region

HUANGPU = "310101"


@pytest.fixture
def bureau(admin_user: User, tree: dict[str, Region]) -> User:
    """The civil-affairs bureau's auditor of 黄浦."""
    return staff(admin_user, "huangpu-auditor", Role.AUDITOR, tree[HUANGPU])


def dashboard(client: Client, code: str, user: User, query: str = "") -> Any:
    return client.get(f"/api/v1/insights/regions/{code}{query}", **bearer(user, user, ("read",)))


def codes(regions: list[dict[str, Any]]) -> list[str]:
    return [r["code"] for r in regions]


def test_the_bureau_reads_the_district_figures(
    client: Client, world: World, bureau: User, django_assert_max_num_queries: Any
) -> None:
    # when the 黄浦 auditor opens the district
    with django_assert_max_num_queries(20):  # a handful of aggregates, whatever the district's size
        response = dashboard(client, HUANGPU, bureau)

    # then the figures are the dashboard's own (insights/tests/test_dashboard.py works them out), the labels
    # in the caller's language (Chinese unless they chose otherwise)
    assert response.status_code == 200, response.json()
    body = response.json()
    year = dt.date.today().year
    assert body["region"] == {
        "code": HUANGPU,
        "name": "黄浦区",
        "name_en": "Huangpu District",
        "level": "district",
    }
    assert body["year"] == year
    assert (body["members"], body["volunteers"], body["elders"], body["priority_elders"]) == (4, 2, 1, 1)
    assert body["services"] == [{"status": "credited", "label": "已入账", "this_year": 3, "all_time": 3}]
    assert (body["services_total"]["this_year"], body["services_total"]["all_time"]) == (3, 3)
    assert body["deposited"] == {"this_year": 135, "all_time": 135}
    assert body["paid_for_care"] == {"this_year": 105, "all_time": 105}
    assert body["redeemed"] == {"this_year": 300, "all_time": 300}
    assert body["donated"] == {"this_year": 100, "all_time": 100}
    assert body["withdrawn"] == {"this_year": 505, "all_time": 505}
    assert body["purchased"] == {"this_year": 0, "all_time": 0}
    coverage = body["coverage"]
    assert (coverage["outstanding_minutes"], coverage["covered_minutes"], coverage["ratio_percent"]) == (
        530,
        318,
        60,
    )
    assert (coverage["fund"]["region"], coverage["fund"]["value_fen"]) == (HUANGPU, 26500)
    # and the way around: the top of the auditor's scope, and the street below
    assert codes(body["trail"]) == [HUANGPU]
    assert codes(body["children"]) == ["310101023"]


def test_a_year_counts_only_what_was_posted_in_it(client: Client, world: World, bureau: User) -> None:
    next_year = dt.date.today().year + 1
    body = dashboard(client, HUANGPU, bureau, f"?year={next_year}").json()
    assert body["year"] == next_year
    assert body["deposited"] == {"this_year": 0, "all_time": 135}
    assert body["withdrawn"] == {"this_year": 0, "all_time": 505}
    for bad in ("year=soon", "year=1999", "year=3000", "year=2026.5"):
        api_refused(dashboard(client, HUANGPU, bureau, f"?{bad}"), 422)


def test_station_staff_see_their_street_and_below_it(
    client: Client, world: World, station: User, tree: dict[str, Region]
) -> None:
    # 瑞金二路's station staff open their street, then 茂名 in it
    street = dashboard(client, "310101023", station).json()
    assert codes(street["trail"]) == ["310101023"]
    assert codes(street["children"]) == ["310101023001", "310101023002"]
    maoming = dashboard(client, "310101023002", station).json()
    assert codes(maoming["trail"]) == ["310101023", "310101023002"] and maoming["children"] == []
    assert (maoming["members"], maoming["deposited"]["all_time"], maoming["services"]) == (1, 30, [])
    # but not the district above them
    api_refused(dashboard(client, HUANGPU, station), 403)


def test_another_districts_staff_see_only_their_own(
    client: Client, world: World, hongkou_staff: User, hongkou_operator: User
) -> None:
    # 虹口's staff are refused every region of 黄浦, and the city above both
    for code in (HUANGPU, "310101023", "310101023001", "310000"):
        api_refused(dashboard(client, code, hongkou_staff), 403)
        api_refused(dashboard(client, code, hongkou_operator), 403)
    # and their own district holds nothing of ours: 蒋阿姨 alone, her rice and the half hour she bought
    theirs = dashboard(client, "310109", hongkou_operator).json()
    assert (theirs["members"], theirs["volunteers"], theirs["elders"]) == (1, 1, 0)
    assert theirs["services"] == [] and theirs["deposited"] == {"this_year": 0, "all_time": 0}
    assert theirs["redeemed"]["all_time"] == 120 and theirs["purchased"]["all_time"] == 30
    assert theirs["coverage"]["fund"] is None and theirs["coverage"]["outstanding_minutes"] == 510


def test_members_and_shop_staff_may_not_look(
    client: Client, world: World, old_elder: Member, helper: Member, shop_clerk: User
) -> None:
    for user in (user_of(old_elder), user_of(helper), shop_clerk):
        api_refused(dashboard(client, HUANGPU, user), 403)
        api_refused(dashboard(client, "310101023001", user), 403)


@pytest.mark.parametrize(("code", "status"), [("999999", 404), ("abc", 404), ("3" * 13, 422)])
def test_an_unknown_region_is_a_4xx_in_the_error_format(
    client: Client, bureau: User, code: str, status: int
) -> None:
    api_refused(dashboard(client, code, bureau), status)


def test_the_platform_administrator_sees_the_city(client: Client, world: World, admin_user: User) -> None:
    city = dashboard(client, "310000", admin_user).json()
    assert city["members"] == 5 and city["coverage"]["outstanding_minutes"] == 530 + 510
    assert codes(city["trail"]) == ["310000"] and codes(city["children"]) == ["310100"]
