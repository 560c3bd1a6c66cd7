"""Who may do what on the withdrawal side: holders for themselves, staff for the people of their own region,
shops for their own orders; nobody else, and nothing is written when they try."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from timebank.care.tests.conftest import user_of
from timebank.common.errors import NotFound
from timebank.conftest import PASSWORD
from timebank.exchange import selectors
from timebank.exchange import services as exchange
from timebank.exchange.models import Merchant, Product, Redemption
from timebank.exchange.tests.builders import *  # noqa: F403
from timebank.exchange.tests.builders import refused
from timebank.people import services as people
from timebank.people.models import Member, User


@pytest.fixture
def rice_order(jinyang_holder: Member, rice: Product) -> Redemption:
    return exchange.redemption_order(actor=user_of(jinyang_holder), member=jinyang_holder, product=rice)


@pytest.fixture
def right_asked(old_elder: Member, admission: Product) -> Redemption:
    return exchange.redemption_order(actor=user_of(old_elder), member=old_elder, product=admission)


# --- seeing an order ----------------------------------------------------------------------------------------


def test_an_order_is_seen_by_its_member_its_shop_and_staff_of_the_members_district(
    rice_order: Redemption,
    jinyang_holder: Member,
    shop_clerk: User,
    hongkou_staff: User,
    hongkou_operator: User,
) -> None:
    for user in (user_of(jinyang_holder), shop_clerk, hongkou_staff, hongkou_operator):
        assert selectors.redemption_get(user, rice_order.pk) == rice_order


def test_an_order_is_not_found_by_anyone_else(
    rice_order: Redemption,
    station: User,
    son: Member,
    operator: User,
    admin_user: User,
    hongkou_operator: User,
) -> None:
    # given a second shop in 晋阳 with its own assistant
    market = exchange.merchant_create(
        actor=hongkou_operator, name="晋阳菜场", region=rice_order.member.home_region
    )
    other_clerk = people.staff_user_create(actor=admin_user, username="market-clerk", password=PASSWORD)
    exchange.merchant_staff_add(actor=hongkou_operator, merchant=market, user=other_clerk)
    # then staff of another district, another member and another shop do not find it
    for user in (station, user_of(son), other_clerk):
        with pytest.raises(NotFound):
            selectors.redemption_get(user, rice_order.pk)
    with pytest.raises(NotFound):
        selectors.redemption_get(user_of(son), rice_order.pk + 1000)


def test_lists_are_scoped_to_the_staff_members_region(
    rice_order: Redemption, right_asked: Redemption, shop: Merchant, station: User, hongkou_staff: User
) -> None:
    assert list(selectors.rights_awaiting(station)) == [right_asked]
    assert list(selectors.rights_awaiting(hongkou_staff)) == []
    assert shop in selectors.merchants_visible(hongkou_staff)
    assert shop not in selectors.merchants_visible(station)


# --- deciding a right ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["hongkou_staff", "hongkou_operator", "shop_clerk", "son"])
def test_only_staff_of_the_members_region_decide_a_right(
    right_asked: Redemption, who: str, request: pytest.FixtureRequest
) -> None:
    actor = user_of(request.getfixturevalue("son")) if who == "son" else request.getfixturevalue(who)
    with refused("permission_denied"):
        exchange.redemption_decide(actor=actor, redemption=right_asked, approve=True)
    with refused("permission_denied"):
        exchange.redemption_decide(actor=actor, redemption=right_asked, approve=False, reason="不行")


# --- acting for somebody else -------------------------------------------------------------------------------

Act = Callable[[User], object]


@pytest.fixture
def acts_for_the_mother(old_elder: Member, son: Member, rice: Product, admission: Product) -> dict[str, Act]:
    """What only 王阿婆 herself, or staff of her community for her, may do with her minutes."""
    return {
        "transfer": lambda actor: exchange.transfer_create(
            actor=actor, giver=old_elder, receiver=son, minutes=60, idempotency_key="t"
        ),
        "gift": lambda actor: exchange.transfer_create(
            actor=actor, giver=old_elder, receiver=son, minutes=60, idempotency_key="g", gift=True
        ),
        "donation": lambda actor: exchange.donation_create(
            actor=actor, giver=old_elder, minutes=60, idempotency_key="d"
        ),
        "right": lambda actor: exchange.redemption_order(actor=actor, member=old_elder, product=admission),
    }


@pytest.mark.parametrize("act", ["transfer", "gift", "donation", "right"])
@pytest.mark.parametrize("who", ["son", "helper", "hongkou_staff", "shop_clerk"])
def test_members_and_staff_of_elsewhere_cannot_spend_someone_elses_minutes(
    acts_for_the_mother: dict[str, Act], act: str, who: str, request: pytest.FixtureRequest
) -> None:
    value = request.getfixturevalue(who)
    actor = user_of(value) if isinstance(value, Member) else value
    with refused("permission_denied"):
        acts_for_the_mother[act](actor)


def test_a_member_cannot_cancel_another_members_order(
    rice_order: Redemption, son: Member, station: User
) -> None:
    for actor in (user_of(son), station):
        with refused("permission_denied"):
            exchange.redemption_cancel(actor=actor, redemption=rice_order)


def test_a_member_cannot_order_for_another(jinyang_holder: Member, rice: Product, son: Member) -> None:
    with refused("permission_denied"):
        exchange.redemption_order(actor=user_of(son), member=jinyang_holder, product=rice)
