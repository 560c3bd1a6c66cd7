"""Fixtures for the exchange pages' tests: the exchange package's own (the 晋阳 corner shop with its clerk and
rice, 蒋阿姨 of 晋阳 with savings) and the care ones (the Shanghai policy, 王阿婆 and her son, the 瑞金二路
station), plus what only the pages need: a special right, a friend of the son, Beijing rules on 黄浦, and a
city in another province to move to.

Test modules take them with ``from timebank.web.tests.exchange_fixtures import *``."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from timebank.care.tests.conftest import member
from timebank.exchange import services as exchange
from timebank.exchange.models import Merchant, Product, ProductKind
from timebank.exchange.tests.conftest import *  # noqa: F403 (the shop, its clerk, rice, 蒋阿姨 of 晋阳)
from timebank.people import services as people
from timebank.people.models import Member, Relation, User
from timebank.regions import services as regions
from timebank.regions.models import Policy, Region
from timebank.web.tests.care_fixtures import *  # noqa: F403 (a browser per person, the care people)
from timebank.web.tests.pages import html_of

NANJING_CSV = """code,name,name_en,level,parent_code
320000,江苏省,Jiangsu,province,
320100,南京市,Nanjing,city,320000
320102,玄武区,Xuanwu District,district,320100
320102002,梅园新村街道,Meiyuan Xincun Subdistrict,street,320102
320102002001,长江路社区,Changjianglu,community,320102002
"""


@pytest.fixture
def care_home_right(shop: Merchant, hongkou_operator: User) -> Product:
    """A special right at the 晋阳 merchant, which station staff grant: two places, 5 hours each."""
    return exchange.product_save(
        actor=hongkou_operator,
        merchant=shop,
        kind=ProductKind.RIGHT,
        name="公办养老院优先入住",
        name_en="Priority admission to the public care home",
        price_minutes=300,
        stock=2,
    )


@pytest.fixture
def friend(station: User, reviewer: User, son: Member, tree: dict[str, Region]) -> Member:
    """刘伟, the son's friend, of 雁荡, with a verified friend bond."""
    m = member(station, tree["310101023001"], "刘伟", birth=dt.date(1969, 9, 9), sex="M")
    bond = people.family_bond_propose(actor=station, member=son, relative=m, relation=Relation.FRIEND)
    people.family_bond_decide(actor=reviewer, bond=bond, approve=True)
    return Member.objects.get(pk=m.pk)


@pytest.fixture
def beijing_rules_on_huangpu(tree: dict[str, Region], policies: dict[str, Policy]) -> Policy:
    """Beijing's preset in force on 黄浦: minutes pass to lineal relatives only, and no goods."""
    return regions.policy_load_preset(
        actor=None, preset="beijing-2022", region=tree["310101"], effective_from=dt.date(2020, 1, 1)
    )


@pytest.fixture
def nanjing(tree: dict[str, Region]) -> dict[str, Region]:
    """Nanjing on the same platform, under its own policy: another currency area to move to."""
    regions.regions_import_csv(actor=None, text=NANJING_CSV)
    found = {r.code: r for r in Region.objects.filter(code__startswith="32")}
    regions.policy_load_preset(
        actor=None, preset="nanjing-2019", region=found["320100"], effective_from=dt.date(2020, 1, 1)
    )
    return found


def pickup_code(page: Any, number: str) -> str:
    """The pick-up code printed under the QR code of order ``number`` on the member's orders page."""
    html = html_of(page)
    item = html[html.index(f'<span class="mono">{number}</span>') :]
    found = re.search(r'<p class="token mono">([^<]+)</p>', item)
    assert found, f"no pick-up code for {number}"
    return found.group(1).strip()
