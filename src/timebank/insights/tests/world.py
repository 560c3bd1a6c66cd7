"""A small world for the dashboard, made through the real services.

In 黄浦 (雁荡 and 茂名): the son donates to the pool; 王阿婆, a verified priority elder, pays for one
hour; the pool pays for half an hour; a second hour is corrected to 45 minutes on complaint (a reversal
and a new credit); she is granted a care-home admission; a guarantee fund stands behind the district.
In 虹口 (晋阳): 蒋阿姨 redeems rice and buys half an hour with money.

Test modules take the fixtures with ``from timebank.insights.tests.world import *``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest

from timebank.care import services as care
from timebank.care.models import Funding, Outcome, ServiceOrder
from timebank.care.tests.conftest import at, user_of
from timebank.care.tests.flows import confirmed_by_elder, worked
from timebank.exchange import services as exchange
from timebank.exchange.models import Product
from timebank.exchange.tests.builders import *  # noqa: F403 (the care home and its admission right)
from timebank.exchange.tests.conftest import *  # noqa: F403 (the care people, the 晋阳 shop, 蒋阿姨)
from timebank.people import services as people
from timebank.people.models import Member, PriorityGroup, User


@dataclass(frozen=True)
class World:
    paid_by_elder: ServiceOrder  # an hour from 王阿婆's savings to 李志强
    paid_by_pool: ServiceOrder  # half an hour from the pool to 陈美华 of 茂名
    corrected: ServiceOrder  # an hour credited, complained about, credited again as 45 minutes


def _credited(
    order: ServiceOrder, volunteer: Member, minutes: int, start_hour: int, reviewer: User
) -> ServiceOrder:
    order = care.order_accept(actor=user_of(volunteer), order=order)
    start = at(1, start_hour)
    order = worked(order, volunteer, start, start + timedelta(minutes=minutes))
    return care.order_approve(actor=reviewer, order=confirmed_by_elder(order))


@pytest.fixture
def world(
    post: Callable[..., ServiceOrder],
    old_elder: Member,
    son: Member,
    helper: Member,
    neighbour_helper: Member,
    station: User,
    reviewer: User,
    operator: User,
    admission: Product,
    jinyang_holder: Member,
    rice: Product,
    shop_clerk: User,
    hongkou_staff: User,
    tree: dict,
) -> World:
    exchange.donation_create(actor=user_of(son), giver=son, minutes=100, idempotency_key="w-donation")
    people.priority_group_verify(actor=station, member=old_elder, group=PriorityGroup.LIVING_ALONE)
    paid_by_elder = _credited(post(), helper, 60, 10, reviewer)
    paid_by_pool = _credited(
        post(funding=Funding.POOL, actor=station, window_start=at(1, 13), window_end=at(1, 14)),
        neighbour_helper,
        30,
        13,
        reviewer,
    )
    corrected = _credited(post(window_start=at(1, 15), window_end=at(1, 16)), helper, 60, 15, reviewer)
    dispute = care.order_dispute(actor=user_of(old_elder), order=corrected, reason="只待了四十五分钟")
    care.dispute_resolve(
        actor=reviewer,
        dispute=dispute,
        outcome=Outcome.CORRECTED,
        resolution="按实际时间计",
        corrected_minutes=45,
    )
    right = exchange.redemption_order(actor=user_of(old_elder), member=old_elder, product=admission)
    exchange.redemption_decide(actor=station, redemption=right, approve=True)
    rice_order = exchange.redemption_order(actor=user_of(jinyang_holder), member=jinyang_holder, product=rice)
    exchange.redemption_hand_over(actor=shop_clerk, token=exchange.pickup_token(rice_order))
    exchange.purchase_record(
        actor=hongkou_staff, member=jinyang_holder, amount_fen=1000, method="cash", receipt_number="W-1"
    )
    exchange.guarantee_fund_record(actor=operator, region=tree["310101"], value_fen=26500, fen_per_hour=5000)
    return World(paid_by_elder, paid_by_pool, ServiceOrder.objects.get(pk=corrected.pk))
