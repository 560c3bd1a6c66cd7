"""Donations to the mutual-aid pool of one's jurisdiction, and staff allocating pool minutes to verified
priority elders, with a reason, never more than the pool holds, never to themselves."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import translation

from timebank.audit.models import AuditEvent
from timebank.care.tests.conftest import balance, user_of
from timebank.exchange import selectors
from timebank.exchange import services as exchange
from timebank.exchange.tests.builders import *  # noqa: F403
from timebank.exchange.tests.builders import City, person, refused, variant
from timebank.ledger.models import AccountKind, TransactionKind
from timebank.ledger.selectors import account_statement
from timebank.notifications.models import Notification
from timebank.notifications.services import render
from timebank.people import services as people
from timebank.people.models import Member, Role, User
from timebank.regions.models import Region


def shanghai_pool(tree: dict[str, Region]) -> int:
    pool = selectors.pool_of(tree["310101023001"])
    return pool.balance if pool else 0


@pytest.fixture
def priority_elder(old_elder: Member, station: User) -> Member:
    """王阿婆, verified by the station as living alone."""
    people.priority_group_verify(actor=station, member=old_elder, group="living_alone")
    return old_elder


@pytest.fixture
def donated(son: Member) -> int:
    """The son gave 100 minutes to the Shanghai pool."""
    exchange.donation_create(actor=user_of(son), giver=son, minutes=100, idempotency_key="d")
    return 100


def test_a_donation_goes_to_the_pool_of_the_givers_jurisdiction(
    son: Member, jinyang_holder: Member, tree: dict[str, Region]
) -> None:
    # when the son (Shanghai rules) and 蒋阿姨 (晋阳, the tiered rules of Hongkou) each donate
    moved = exchange.donation_create(actor=user_of(son), giver=son, minutes=100, idempotency_key="d")
    exchange.donation_create(
        actor=user_of(jinyang_holder), giver=jinyang_holder, minutes=30, idempotency_key="d"
    )
    # then each pool holds what its own people gave, and the son's statement shows the donation
    assert shanghai_pool(tree) == 100
    hongkou_pool = selectors.pool_of(tree["310109018021"])
    assert hongkou_pool is not None and hongkou_pool.balance == 30
    assert balance(son) == (200, 0)
    assert son.account_id is not None
    entry = account_statement(son.account_id, limit=1).entries[0]
    assert (entry.transaction_id, entry.kind, entry.amount) == (
        moved.transaction_id,
        TransactionKind.DONATION,
        -100,
    )
    assert AuditEvent.objects.filter(event_type="exchange.donation").count() == 2


def test_a_donation_retried_posts_once_and_one_over_the_balance_is_refused(son: Member) -> None:
    first = exchange.donation_create(actor=user_of(son), giver=son, minutes=100, idempotency_key="d")
    again = exchange.donation_create(actor=user_of(son), giver=son, minutes=100, idempotency_key="d")
    assert (again.transaction_id, again.created) == (first.transaction_id, False)
    with refused("exchange_insufficient"):
        exchange.donation_create(actor=user_of(son), giver=son, minutes=201, idempotency_key="e")
    assert balance(son) == (200, 0)


def test_where_the_policy_takes_no_donations_they_are_refused(son: Member, tree: dict[str, Region]) -> None:
    variant("shanghai-2026", tree["310101"], donation_allowed=False)
    with refused("exchange_donation_not_allowed"):
        exchange.donation_create(actor=user_of(son), giver=son, minutes=10, idempotency_key="d")


def test_staff_allocate_pool_minutes_to_a_priority_elder_with_the_reason(
    donated: int, priority_elder: Member, station: User, tree: dict[str, Region]
) -> None:
    # when the station gives her 40 minutes of the 100 in the pool, saying why
    with translation.override("en"):
        moved = exchange.pool_allocate(
            actor=station, elder=priority_elder, minutes=40, reason="独居，腿脚不便", idempotency_key="a"
        )
    # then she has them, the pool has the rest, the reason is audited, and she is told why
    assert moved.created
    assert balance(priority_elder) == (640, 0) and shanghai_pool(tree) == 60
    event = AuditEvent.objects.get(event_type="exchange.allocation")
    assert event.new["reason"] == "独居，腿脚不便" and event.actor_id == station.pk
    notice = Notification.objects.get(recipient=user_of(priority_elder), kind="exchange.allocated")
    with translation.override("en"):
        assert render(notice.kind, notice.params)[1] == (
            "The station gave you 40 min from the mutual-aid pool: 独居，腿脚不便"
        )
    assert priority_elder.account_id is not None
    assert account_statement(priority_elder.account_id, limit=1).entries[0].kind == TransactionKind.ALLOCATION


def test_an_allocation_retried_posts_once(donated: int, priority_elder: Member, station: User) -> None:
    first = exchange.pool_allocate(
        actor=station, elder=priority_elder, minutes=40, reason="独居", idempotency_key="a"
    )
    again = exchange.pool_allocate(
        actor=station, elder=priority_elder, minutes=40, reason="独居", idempotency_key="a"
    )
    assert (again.transaction_id, again.created) == (first.transaction_id, False)
    assert balance(priority_elder) == (640, 0)
    assert Notification.objects.filter(kind="exchange.allocated").count() == 1


def test_only_a_verified_priority_elder_receives_pool_minutes(
    donated: int, old_elder: Member, station: User
) -> None:
    with translation.override("en"), refused("exchange_not_priority") as caught:
        exchange.pool_allocate(actor=station, elder=old_elder, minutes=40, reason="独居", idempotency_key="a")
    assert str(caught.value.message) == "Pool minutes go to verified priority elders; 王阿婆 is not one."


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_allocation_needs_a_reason(
    donated: int, priority_elder: Member, station: User, reason: str
) -> None:
    with refused("exchange_reason_required"):
        exchange.pool_allocate(
            actor=station, elder=priority_elder, minutes=40, reason=reason, idempotency_key="a"
        )


def test_never_more_than_the_pool_holds(donated: int, priority_elder: Member, station: User) -> None:
    with translation.override("en"), refused("exchange_pool_short") as caught:
        exchange.pool_allocate(
            actor=station, elder=priority_elder, minutes=101, reason="独居", idempotency_key="a"
        )
    assert str(caught.value.message) == "The mutual-aid pool has 1 h 40 min."
    # and all of it is fine, after which the pool is empty
    exchange.pool_allocate(
        actor=station, elder=priority_elder, minutes=100, reason="独居", idempotency_key="b"
    )
    with refused("exchange_pool_short"):
        exchange.pool_allocate(
            actor=station, elder=priority_elder, minutes=1, reason="独居", idempotency_key="c"
        )


def test_another_jurisdictions_pool_is_not_drawn_on(
    jinyang_holder: Member, priority_elder: Member, station: User
) -> None:
    # given only 晋阳 (Hongkou, its own policy and pool) has donated
    exchange.donation_create(
        actor=user_of(jinyang_holder), giver=jinyang_holder, minutes=100, idempotency_key="d"
    )
    # when the station allocates to 王阿婆 (Shanghai's pool), then that pool is empty
    with refused("exchange_pool_short"):
        exchange.pool_allocate(
            actor=station, elder=priority_elder, minutes=10, reason="独居", idempotency_key="a"
        )


def test_staff_of_another_district_cannot_allocate(
    donated: int, priority_elder: Member, hongkou_staff: User
) -> None:
    with refused("permission_denied"):
        exchange.pool_allocate(
            actor=hongkou_staff, elder=priority_elder, minutes=10, reason="独居", idempotency_key="a"
        )


def test_members_cannot_allocate(donated: int, priority_elder: Member, son: Member) -> None:
    with refused("permission_denied"):
        exchange.pool_allocate(
            actor=user_of(son), elder=priority_elder, minutes=10, reason="我妈", idempotency_key="a"
        )


def test_staff_never_allocate_to_themselves(
    donated: int, priority_elder: Member, admin_user: User, tree: dict[str, Region], station: User
) -> None:
    # given 王阿婆's own sign-in also holds station work in her community
    people.staff_grant_create(
        actor=admin_user, user=user_of(priority_elder), role=Role.COMMUNITY_STAFF, region=tree["310101023001"]
    )
    herself = User.objects.get(member=priority_elder)
    # when she allocates to herself, then it is refused; another staff member may
    with refused("exchange_own_allocation"):
        exchange.pool_allocate(
            actor=herself, elder=priority_elder, minutes=10, reason="独居", idempotency_key="a"
        )
    exchange.pool_allocate(
        actor=station, elder=priority_elder, minutes=10, reason="独居", idempotency_key="a"
    )
    assert balance(priority_elder) == (610, 0)


def test_a_pool_allocation_overflowing_a_capped_account_stays_in_the_pool(nanjing: City) -> None:
    # given a Nanjing priority elder 10 minutes short of her cap, and 100 minutes in the Nanjing pool
    elder = person(
        nanjing.station, nanjing.community, "钱奶奶", born=dt.date(1940, 1, 1), minutes=89_990, is_elder=True
    )
    giver = person(nanjing.station, nanjing.community, "钱勇", born=dt.date(1970, 1, 1), minutes=100)
    exchange.donation_create(actor=nanjing.station, giver=giver, minutes=100, idempotency_key="d")
    people.priority_group_verify(actor=nanjing.station, member=elder, group="living_alone")
    # when the station allocates 30, then 10 reach her and 20 stay in the pool
    moved = exchange.pool_allocate(
        actor=nanjing.station, elder=elder, minutes=30, reason="独居", idempotency_key="a"
    )
    assert moved.overflow == 20
    assert balance(elder) == (90_000, 0)
    pool = selectors.pool_of(nanjing.community)
    assert pool is not None and pool.kind == AccountKind.POOL and pool.balance == 90
