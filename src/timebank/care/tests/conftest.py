"""Care fixtures: the Shanghai policy on the city (and the tiered proposal on Hongkou), an elder with savings
and a sign-in, a volunteer with a sign-in, a son with a verified bond, station staff — all made through the
real services. Service windows are set relative to the real clock."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.utils import timezone, translation

from timebank.care import services as care
from timebank.care.models import Funding, ServiceOrder
from timebank.conftest import PASSWORD, make_id_number, staff
from timebank.ledger import services as ledger
from timebank.ledger.models import Account, AccountKind, TransactionKind
from timebank.people import services as people
from timebank.people.models import Member, Relation, Role, User
from timebank.regions import services as regions
from timebank.regions.models import Policy, Region

_serials = itertools.count(40)
_mobiles = itertools.count(13700000001)
_keys = itertools.count(1)


def member(
    actor: User,
    region: Region,
    name: str,
    *,
    birth: dt.date,
    sex: str = "F",
    login: str | None = None,
    **flags: Any,
) -> Member:
    m = people.member_register(
        actor=actor,
        name=name,
        home_region=region,
        mobile=str(next(_mobiles)),
        id_number=make_id_number(birth, sex, region.code[:6], serial=next(_serials)),
        birth_date=birth,
        **flags,
    )
    if login:
        people.member_sign_in_create(actor=actor, member=m, username=login, password=PASSWORD)
    return Member.objects.get(pk=m.pk)


def user_of(m: Member) -> User:
    return User.objects.get(member=m)


def deposit(m: Member, minutes: int) -> None:
    """Savings put on the account from the public fund (not service the member gave: no stars)."""
    fund = ledger.system_account(kind=AccountKind.PUBLIC_FUND, region=m.home_region)
    assert m.account_id is not None
    ledger.transfer(
        idempotency_key=f"test-deposit-{next(_keys)}",
        source=fund.pk,
        destination=m.account_id,
        minutes=minutes,
        kind=TransactionKind.FUNDING,
    )


def balance(m: Member) -> tuple[int, int]:
    """(balance, held) of the member's time account."""
    assert m.account_id is not None
    account = Account.objects.get(pk=m.account_id)
    return account.balance, account.held


def at(days: int = 0, hour: int = 10, minute: int = 0) -> dt.datetime:
    """A local time ``days`` from today."""
    day = timezone.localdate() + dt.timedelta(days=days)
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, minute)))


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    """Messages are asserted in English here (the catalogues translate them for people)."""
    with translation.override("en"):
        yield


@pytest.fixture
def policies(tree: dict[str, Region]) -> dict[str, Policy]:
    start = dt.date(2020, 1, 1)
    return {
        "shanghai": regions.policy_load_preset(
            actor=None, preset="shanghai-2026", region=tree["310000"], effective_from=start
        ),
        "tiered": regions.policy_load_preset(
            actor=None, preset="paper-tiered", region=tree["310109"], effective_from=start
        ),
    }


@pytest.fixture
def station(admin_user: User, tree: dict[str, Region], policies: dict[str, Policy]) -> User:
    """Station staff of 瑞金二路 (雁荡 and 茂名)."""
    return staff(admin_user, "ruijin-station", Role.STATION_STAFF, tree["310101023"])


@pytest.fixture
def reviewer(admin_user: User, tree: dict[str, Region], policies: dict[str, Policy]) -> User:
    return staff(admin_user, "yandang-reviewer", Role.COMMUNITY_STAFF, tree["310101023001"])


@pytest.fixture
def hongkou_staff(admin_user: User, tree: dict[str, Region], policies: dict[str, Policy]) -> User:
    return staff(admin_user, "beiwaitan-station", Role.STATION_STAFF, tree["310109018"])


@pytest.fixture
def operator(admin_user: User, tree: dict[str, Region]) -> User:
    return staff(admin_user, "shanghai-operator", Role.OPERATOR, tree["310000"])


@pytest.fixture
def old_elder(station: User, tree: dict[str, Region]) -> Member:
    """王阿婆, 81, of 雁荡, with 10 hours of savings and her own sign-in."""
    m = member(
        station, tree["310101023001"], "王阿婆", birth=dt.date(1945, 5, 1), login="wang-apo", is_elder=True
    )
    deposit(m, 600)
    return Member.objects.get(pk=m.pk)


@pytest.fixture
def helper(station: User, tree: dict[str, Region]) -> Member:
    """李志强, 64, volunteer of 雁荡, with a sign-in."""
    return member(
        station,
        tree["310101023001"],
        "李志强",
        birth=dt.date(1962, 2, 2),
        sex="M",
        login="li-zhiqiang",
        is_volunteer=True,
    )


@pytest.fixture
def neighbour_helper(station: User, tree: dict[str, Region]) -> Member:
    """A volunteer of 茂名, the neighbouring community of the same street."""
    return member(
        station,
        tree["310101023002"],
        "陈美华",
        birth=dt.date(1960, 8, 8),
        login="chen-meihua",
        is_volunteer=True,
    )


@pytest.fixture
def son(station: User, reviewer: User, tree: dict[str, Region], old_elder: Member) -> Member:
    """王阿婆's son with 5 hours of savings and a verified bond (proposed by station, decided by reviewer)."""
    m = member(
        station, tree["310101023001"], "王建国", birth=dt.date(1968, 3, 3), sex="M", login="wang-jianguo"
    )
    deposit(m, 300)
    bond = people.family_bond_propose(actor=station, member=old_elder, relative=m, relation=Relation.CHILD)
    people.family_bond_decide(actor=reviewer, bond=bond, approve=True)
    return Member.objects.get(pk=m.pk)


@pytest.fixture
def post(old_elder: Member) -> Callable[..., ServiceOrder]:
    """Post one request by the elder herself (own savings, tomorrow 10:00–11:00) unless told otherwise."""

    def make(**overrides: Any) -> ServiceOrder:
        values: dict[str, Any] = {
            "actor": user_of(old_elder),
            "elder": old_elder,
            "category": "emotional_support",
            "window_start": at(1, 10),
            "window_end": at(1, 11),
            "funding": Funding.OWN,
        }
        values.update(overrides)
        return care.order_create(**values)[0]

    return make
