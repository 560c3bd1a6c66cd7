"""Builders for the exchange tests, beside the shared fixtures: the other cities (a Nanjing and a Beijing
community under their own presets), people and verified bonds made through the real services, policy variants,
and ``refused``, which also checks that no order, stock, purchase, move or home changed.

Test modules take the fixtures with ``from timebank.exchange.tests.builders import *``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from timebank.care.tests.conftest import deposit, member
from timebank.care.tests.flows import refused as care_refused
from timebank.common.errors import ApplicationError
from timebank.conftest import staff
from timebank.exchange import services as exchange
from timebank.exchange.models import (
    AccountMove,
    GuaranteeFund,
    Merchant,
    Product,
    ProductKind,
    Purchase,
    Redemption,
)
from timebank.ledger.models import Account
from timebank.people import services as people
from timebank.people.models import Member, Role, User
from timebank.regions import services as regions
from timebank.regions.models import Policy, Region

__all__ = [
    "City",
    "admission",
    "beijing",
    "bond",
    "care_home",
    "cashier_who_is_member",
    "exchange_world",
    "nanjing",
    "other_cities",
    "person",
    "refused",
    "right_at",
    "variant",
]

START = dt.date(2020, 1, 1)

# A district, street and community of each other city, under the shipped province and city rows.
OTHER_CITIES_CSV = """code,name,name_en,level,parent_code
320102,玄武区,Xuanwu District,district,320100
320102002,梅园新村街道,Meiyuan Xincun Subdistrict,street,320102
320102002001,梅园新村社区,Meiyuan Xincun,community,320102002
110101,东城区,Dongcheng District,district,110100
110101001,东华门街道,Donghuamen Subdistrict,street,110101
110101001001,多福巷社区,Duofu Lane,community,110101001
"""


# --- what a refused action must leave as it was -------------------------------------------------------------


def exchange_world() -> tuple[Any, ...]:
    """The exchange's own records, and where members live and which account they use."""
    return (
        tuple(
            Redemption.objects.order_by("pk").values_list(
                "pk", "status", "hold_id", "transaction_id", "closed_at", "reason"
            )
        ),
        tuple(Product.objects.order_by("pk").values_list("pk", "stock", "is_active", "price_minutes")),
        tuple(Purchase.objects.order_by("pk").values_list("pk", "receipt_number", "minutes")),
        tuple(AccountMove.objects.order_by("pk").values_list("pk")),
        tuple(GuaranteeFund.objects.order_by("pk").values_list("pk")),
        tuple(Merchant.objects.order_by("pk").values_list("pk", "is_active")),
        tuple(Member.objects.order_by("pk").values_list("pk", "home_region_id", "account_id")),
        tuple(Account.objects.order_by("pk").values_list("pk", "status", "cap")),
    )


@contextmanager
def refused(code: str) -> Iterator[pytest.ExceptionInfo[ApplicationError]]:
    """The care suite's ``refused`` (the error's code; no audit row, posting, hold, notice, balance changed),
    and besides: no redemption, stock, purchase, move, fund, member's home or account changed."""
    before = exchange_world()
    with care_refused(code) as caught:
        yield caught
    assert exchange_world() == before


# --- people and bonds ---------------------------------------------------------------------------------------


def person(
    actor: User,
    region: Region,
    name: str,
    *,
    born: dt.date,
    minutes: int = 0,
    login: str | None = None,
    sex: str = "F",
    **flags: Any,
) -> Member:
    """A member registered by staff, with ``minutes`` of savings from the public fund."""
    m = member(actor, region, name, birth=born, sex=sex, login=login, **flags)
    if minutes:
        deposit(m, minutes)
    return Member.objects.get(pk=m.pk)


def bond(holder: Member, other: Member, relation: str, *, proposer: User, decider: User) -> None:
    """``other`` is ``holder``'s <relation>, proposed by staff and verified by a second staff member."""
    proposed = people.family_bond_propose(actor=proposer, member=holder, relative=other, relation=relation)
    people.family_bond_decide(actor=decider, bond=proposed, approve=True)


def variant(preset: str, region: Region, **changes: Any) -> Policy:
    """A preset with some rules changed, in force on ``region`` (and below) from 2020."""
    rules = regions.policy_preset_rules(preset)
    rules.update(changes)
    rules["name"] = f"{rules['name']}（变体）"
    return regions.policy_create(actor=None, region=region, effective_from=START, rules=rules, preset=preset)


# --- the other cities ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class City:
    """A community of another city with its policy, an operator on the province, station staff on the street
    and community staff on the community (so that one proposes a bond and the other verifies it)."""

    community: Region
    policy: Policy
    operator: User
    station: User
    reviewer: User


def _city(admin: User, *, province: str, street: str, community: str, preset: str, slug: str) -> City:
    region = Region.objects.get(code=province)
    policy = regions.policy_load_preset(actor=None, preset=preset, region=region, effective_from=START)
    return City(
        community=Region.objects.get(code=community),
        policy=policy,
        operator=staff(admin, f"{slug}-operator", Role.OPERATOR, region),
        station=staff(admin, f"{slug}-station", Role.STATION_STAFF, Region.objects.get(code=street)),
        reviewer=staff(admin, f"{slug}-reviewer", Role.COMMUNITY_STAFF, Region.objects.get(code=community)),
    )


@pytest.fixture
def other_cities(tree: dict[str, Region], policies: dict[str, Policy]) -> dict[str, Region]:
    """Jiangsu/Nanjing and Beijing from the shipped file, and a community in each."""
    regions.regions_import_shipped(actor=None, name="other-cities")
    regions.regions_import_csv(actor=None, text=OTHER_CITIES_CSV)
    return {r.code: r for r in Region.objects.all()}


@pytest.fixture
def nanjing(admin_user: User, other_cities: dict[str, Region]) -> City:
    """梅园新村 in Nanjing, under the Nanjing 2019 rules loaded on Jiangsu (the currency area 320000)."""
    return _city(
        admin_user,
        province="320000",
        street="320102002",
        community="320102002001",
        preset="nanjing-2019",
        slug="xuanwu",
    )


@pytest.fixture
def beijing(admin_user: User, other_cities: dict[str, Region]) -> City:
    """多福巷 in Beijing, under the Beijing 2022 rules loaded on the city (the currency area 110000)."""
    return _city(
        admin_user,
        province="110000",
        street="110101001",
        community="110101001001",
        preset="beijing-2022",
        slug="dongcheng",
    )


def cashier_who_is_member(admin: User, tree: dict[str, Region], m: Member) -> User:
    """``m``'s own sign-in, also granted station work in 北外滩 street (a member who is a cashier too)."""
    user = User.objects.get(member=m)
    people.staff_grant_create(actor=admin, user=user, role=Role.STATION_STAFF, region=tree["310109018"])
    return User.objects.get(pk=user.pk)


def right_at(operator: User, merchant: Merchant, name: str, minutes: int, stock: int = 5) -> Product:
    """A special right (such as admission to a care home), which only an operator may offer."""
    return exchange.product_save(
        actor=operator,
        merchant=merchant,
        name=name,
        price_minutes=minutes,
        stock=stock,
        kind=ProductKind.RIGHT,
    )


@pytest.fixture
def care_home(operator: User, tree: dict[str, Region], policies: dict[str, Policy]) -> Merchant:
    """黄浦区 public care home, a partner set up by the Shanghai operator."""
    return exchange.merchant_create(actor=operator, name="黄浦区社会福利院", region=tree["310101"])


@pytest.fixture
def admission(operator: User, care_home: Merchant) -> Product:
    """Admission to the care home for 5 hours (a special right: staff approve it)."""
    return right_at(operator, care_home, "福利院入住资格", 300)
