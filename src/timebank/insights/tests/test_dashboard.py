"""The region dashboard: people, services, minutes deposited and withdrawn, outstanding balances and coverage
of a region's subtree, for those whose scope holds it."""

from __future__ import annotations

import datetime as dt

import pytest

from timebank.care.models import Status
from timebank.care.tests.conftest import user_of
from timebank.common.errors import PermissionDenied
from timebank.conftest import staff
from timebank.insights.selectors import Minutes, region_dashboard
from timebank.insights.tests.world import *  # noqa: F403
from timebank.people.models import Role


@pytest.fixture
def auditor(admin_user, tree):
    """The civil-affairs bureau's auditor of 黄浦."""
    return staff(admin_user, "huangpu-auditor", Role.AUDITOR, tree["310101"])


def test_the_district_figures_add_up(world, auditor, tree):
    # when the 黄浦 auditor opens the district
    figures = region_dashboard(auditor, tree["310101"])
    # then 王阿婆, her son and the two volunteers live there; she is a verified priority elder
    assert (figures.members, figures.volunteers, figures.elders, figures.priority_elders) == (4, 2, 1, 1)
    # three services were credited (the corrected one too)
    assert [(c.status, c.all_time) for c in figures.services] == [(Status.CREDITED, 3)]
    assert figures.services_total.all_time == 3
    # deposited: 60 + 30 from the pool + 45 (60 reversed and credited again as 45)
    assert figures.deposited == Minutes(135, 135)
    # withdrawn: her own 60 + 45 for care, 300 for the admission, the son's 100 to the pool
    assert figures.paid_for_care == Minutes(105, 105)
    assert figures.redeemed == Minutes(300, 300)
    assert figures.donated == Minutes(100, 100)
    assert figures.withdrawn == Minutes(505, 505)
    assert figures.purchased == Minutes(0, 0)
    # members hold 195 (her) + 200 (son) + 105 + 30 (volunteers); the fund buys 265 ÷ 50 × 60 = 318 minutes
    assert figures.outstanding_minutes == 530
    assert figures.coverage.covered_minutes == 318 and figures.coverage.ratio_percent == 60


def test_another_district_and_the_city_count_their_own(world, operator, hongkou_staff, tree):
    # 虹口 has only 蒋阿姨: rice redeemed, half an hour bought (reported apart), nothing of 黄浦
    hongkou = region_dashboard(hongkou_staff, tree["310109018"])
    assert (hongkou.members, hongkou.volunteers, hongkou.elders) == (1, 1, 0)
    assert hongkou.services == [] and hongkou.deposited == Minutes(0, 0)
    assert hongkou.redeemed == Minutes(120, 120) and hongkou.donated == Minutes(0, 0)
    assert hongkou.purchased == Minutes(30, 30)
    assert hongkou.outstanding_minutes == 600 - 120 + 30
    # the city holds both districts; no guarantee fund stands behind the whole city
    city = region_dashboard(operator, tree["310000"])
    assert city.members == 5 and city.redeemed == Minutes(420, 420) and city.purchased == Minutes(30, 30)
    assert city.outstanding_minutes == 530 + 510
    assert city.coverage.fund is None and city.coverage.ratio_percent == 0


def test_a_community_is_part_of_its_district(world, auditor, tree):
    maoming = region_dashboard(auditor, tree["310101023002"])
    # 陈美华 of 茂名 was credited half an hour from the pool; nobody there paid anything
    assert (maoming.members, maoming.volunteers) == (1, 1)
    assert maoming.deposited == Minutes(30, 30) and maoming.withdrawn == Minutes(0, 0)
    assert maoming.services == []  # the services took place in 雁荡, the elder's community


def test_this_year_counts_what_was_posted_in_the_year(world, auditor, tree):
    next_year = dt.date(dt.date.today().year + 1, 6, 1)
    figures = region_dashboard(auditor, tree["310101"], on=next_year)
    assert figures.year == next_year.year
    assert figures.deposited == Minutes(0, 135) and figures.withdrawn == Minutes(0, 505)


def test_the_scope_is_checked(world, auditor, hongkou_staff, helper, tree):
    # the 黄浦 auditor sees 黄浦 and below, not 虹口 nor the city above
    for code in ("310109", "310109018021", "310000"):
        with pytest.raises(PermissionDenied):
            region_dashboard(auditor, tree[code])
    # 虹口 staff do not see 黄浦; a volunteer sees no dashboard at all
    with pytest.raises(PermissionDenied):
        region_dashboard(hongkou_staff, tree["310101"])
    with pytest.raises(PermissionDenied):
        region_dashboard(user_of(helper), tree["310101023001"])


def test_the_figures_take_a_fixed_number_of_queries(world, auditor, tree, django_assert_max_num_queries):
    # the grants (once per request), people, services, the ledger, and coverage's fund, balances, purchases
    with django_assert_max_num_queries(7):
        region_dashboard(auditor, tree["310101"])
