"""Exchange fixtures: the care fixtures (Shanghai policy on the city, the tiered proposal on Hongkou, which
allows goods and money purchases), a 晋阳 shop with goods and staff, and people of 晋阳."""

from __future__ import annotations

import datetime as dt

import pytest

from timebank.care.tests.conftest import *  # noqa: F403 (policies, staff, members of 雁荡)
from timebank.care.tests.conftest import _english, deposit, member  # noqa: F401 (messages in English here)
from timebank.conftest import PASSWORD, staff
from timebank.exchange import services as exchange
from timebank.exchange.models import Merchant, Product
from timebank.people import services as people
from timebank.people.models import Member, Role, User
from timebank.regions.models import Policy, Region


@pytest.fixture
def hongkou_operator(admin_user: User, tree: dict[str, Region], policies: dict[str, Policy]) -> User:
    return staff(admin_user, "hongkou-operator", Role.OPERATOR, tree["310109"])


@pytest.fixture
def shop(hongkou_operator: User, admin_user: User, tree: dict[str, Region]) -> Merchant:
    """长阳路 corner shop in 晋阳, with a shop assistant who signs in."""
    merchant = exchange.merchant_create(
        actor=hongkou_operator,
        name="长阳路便民超市",
        region=tree["310109018021"],
        address="长阳路 88 号",
        opening_hours="每天 8:00–20:00",
    )
    clerk = people.staff_user_create(actor=admin_user, username="shop-clerk", password=PASSWORD)
    exchange.merchant_staff_add(actor=hongkou_operator, merchant=merchant, user=clerk)
    return merchant


@pytest.fixture
def shop_clerk(shop: Merchant) -> User:
    return User.objects.get(username="shop-clerk")


@pytest.fixture
def rice(shop: Merchant, shop_clerk: User) -> Product:
    return exchange.product_save(
        actor=shop_clerk, merchant=shop, name="大米 5 公斤", price_minutes=120, stock=3
    )


@pytest.fixture
def jinyang_holder(hongkou_staff: User, tree: dict[str, Region]) -> Member:
    """蒋阿姨, 70, of 晋阳 (tiered policy), with 10 hours of savings and a sign-in."""
    m = member(
        hongkou_staff,
        tree["310109018021"],
        "蒋阿姨",
        birth=dt.date(1956, 4, 4),
        login="jiang-ayi",
        is_volunteer=True,
    )
    deposit(m, 600)
    return Member.objects.get(pk=m.pk)
