"""Who may see and act on care objects: staff act inside their own subtree only, and a member sees the
services they take part in. Every care object type is tried by staff of another district: services (open,
assigned, confirmed, disputed), paper records, complaints, certifications, budgets, service cards and PINs.
A refusal writes nothing; a service one may not see is "not found"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from timebank.care import selectors
from timebank.care import services as care
from timebank.care.models import Certification, ConfirmMethod, Dispute, Funding, Outcome, ServiceOrder
from timebank.care.tests.conftest import at, user_of
from timebank.care.tests.flows import (
    confirmed_by_elder,
    jinyang_elder_with_savings,
    jinyang_volunteer,
    refused,
    worked,
)
from timebank.common.errors import NotFound
from timebank.people.models import Member, User
from timebank.regions.models import Region


@dataclass
class Yandang:
    """A request, an assigned visit, a confirmed visit, a disputed credited visit, a certification and a
    budget, all of 雁荡 (Huangpu)."""

    elder: Member
    helper: Member
    open: ServiceOrder
    assigned: ServiceOrder
    confirmed: ServiceOrder
    disputed: ServiceOrder
    dispute: Dispute
    certification: Certification
    district: Region


@pytest.fixture
def yandang(
    post: Callable[..., ServiceOrder],
    old_elder: Member,
    helper: Member,
    son: Member,
    station: User,
    reviewer: User,
    operator: User,
    tree: dict[str, Region],
) -> Yandang:
    open_request = post(window_start=at(1, 10), window_end=at(1, 11))
    assigned = care.order_accept(
        actor=user_of(helper), order=post(window_start=at(2, 10), window_end=at(2, 11))
    )
    confirmed = care.paper_record_create(
        actor=station,
        elder=old_elder,
        volunteer=helper,
        category="assistance",
        started_at=at(-1, 9),
        ended_at=at(-1, 10),
        funding=Funding.OWN,
    )
    disputed = care.order_accept(
        actor=user_of(helper), order=post(window_start=at(3, 10), window_end=at(3, 11))
    )
    disputed = care.order_approve(
        actor=reviewer, order=confirmed_by_elder(worked(disputed, helper, at(3, 10), at(3, 11)))
    )
    dispute = care.order_dispute(actor=user_of(son), order=disputed, reason="时间不对")
    certification = care.certification_grant(actor=station, member=helper, code="care_worker")
    care.fund_budget_set(actor=operator, region=tree["310101"], year=at(1).year, limit_minutes=600)
    return Yandang(
        old_elder, helper, open_request, assigned, confirmed, disputed, dispute, certification, tree["310101"]
    )


def recorded(actor: User, order: ServiceOrder) -> Any:
    start, end = at(2, 10), at(2, 11)
    with time_machine.travel(at(2, 12), tick=False):
        return care.order_times_record(actor=actor, order=order, started_at=start, ended_at=end)


WRITES: dict[str, Callable[[User, Yandang, Member], Any]] = {
    "post for an elder": lambda u, y, v: care.order_create(
        actor=u,
        elder=y.elder,
        category="assistance",
        window_start=at(5, 10),
        window_end=at(5, 11),
        funding=Funding.OWN,
    ),
    "assign": lambda u, y, v: care.order_assign(actor=u, order=y.open, volunteer=v),
    "cancel": lambda u, y, v: care.order_cancel(actor=u, order=y.open, reason="取消"),
    "withdraw the volunteer": lambda u, y, v: care.order_withdraw(actor=u, order=y.assigned, reason="调整"),
    "record a no-show": lambda u, y, v: care.order_no_show(actor=u, order=y.confirmed),
    "enter the times": lambda u, y, v: recorded(u, y.assigned),
    "enter a paper record": lambda u, y, v: care.paper_record_create(
        actor=u,
        elder=y.elder,
        volunteer=y.helper,
        category="assistance",
        started_at=at(-2, 9),
        ended_at=at(-2, 10),
        funding=Funding.OWN,
    ),
    "confirm as staff": lambda u, y, v: care.order_confirm(
        actor=u, order=y.confirmed, method=ConfirmMethod.STAFF, note="电话确认"
    ),
    "approve": lambda u, y, v: care.order_approve(actor=u, order=y.confirmed),
    "approve in a batch": lambda u, y, v: _batch(u, y.confirmed),
    "reject": lambda u, y, v: care.order_reject(actor=u, order=y.confirmed, reason="不批准"),
    "complain": lambda u, y, v: care.order_dispute(actor=u, order=y.confirmed, reason="投诉"),
    "decide a complaint": lambda u, y, v: care.dispute_resolve(
        actor=u, dispute=y.dispute, outcome=Outcome.VOID, resolution="作废"
    ),
    "rate": lambda u, y, v: care.order_rate(actor=u, order=y.confirmed, stars=1),
    "grant a certification": lambda u, y, v: care.certification_grant(
        actor=u, member=y.helper, code="lawyer"
    ),
    "revoke a certification": lambda u, y, v: care.certification_revoke(
        actor=u, certification=y.certification
    ),
    "set the district's budget": lambda u, y, v: care.fund_budget_set(
        actor=u, region=y.district, year=at(1).year, limit_minutes=0
    ),
    "print a service card": lambda u, y, v: care.service_card_issue(actor=u, elder=y.elder),
    "set the elder's PIN": lambda u, y, v: care.elder_pin_set(actor=u, elder=y.elder, pin="4071"),
}


def _batch(actor: User, order: ServiceOrder) -> None:
    result = care.orders_approve(actor=actor, orders=[order])
    assert result.approved == []
    raise result.failed[0][1]


@pytest.mark.parametrize("outsider", ["hongkou_staff", "jinyang_staff"])
@pytest.mark.parametrize("write", list(WRITES))
def test_staff_of_another_district_cannot_act_in_yandang(
    request: pytest.FixtureRequest,
    yandang: Yandang,
    hongkou_staff: User,
    tree: dict[str, Region],
    outsider: str,
    write: str,
) -> None:
    # given staff of Hongkou, and a volunteer of their own
    actor: User = request.getfixturevalue(outsider)
    their_volunteer = jinyang_volunteer(hongkou_staff, tree["310109018021"])
    # when they act on 雁荡's services, people and budgets, then they are refused and nothing is written
    with refused("permission_denied"):
        WRITES[write](actor, yandang, their_volunteer)


@pytest.mark.parametrize("outsider", ["hongkou_staff", "jinyang_staff"])
def test_staff_of_another_district_see_nothing_of_yandang(
    request: pytest.FixtureRequest, yandang: Yandang, outsider: str
) -> None:
    actor: User = request.getfixturevalue(outsider)
    for order in (yandang.open, yandang.assigned, yandang.confirmed, yandang.disputed):
        with pytest.raises(NotFound) as caught:
            selectors.order_get(actor, order.pk)
        assert caught.value.code == "care_order_not_found"
    with pytest.raises(NotFound):
        selectors.dispute_get(actor, yandang.dispute.pk)
    assert list(selectors.orders_visible(actor)) == []
    assert list(selectors.review_queue(actor)) == []
    assert list(selectors.disputes_open(actor)) == []
    assert list(selectors.budgets_visible(actor)) == []


def test_the_street_station_and_the_city_see_yandang(
    yandang: Yandang, station: User, reviewer: User, operator: User
) -> None:
    for staff_member in (station, reviewer, operator):
        assert selectors.order_get(staff_member, yandang.confirmed.pk) == yandang.confirmed
        assert selectors.dispute_get(staff_member, yandang.dispute.pk) == yandang.dispute
        assert set(selectors.orders_visible(staff_member)) == {
            yandang.open,
            yandang.assigned,
            yandang.confirmed,
            yandang.disputed,
        }
    # the budget that pays for 雁荡's elders is seen by the city and by the station below it
    for staff_member in (operator, station, reviewer):
        assert [b.region.code for b in selectors.budgets_visible(staff_member)] == ["310101"]


def test_members_see_the_services_they_take_part_in(
    yandang: Yandang, son: Member, neighbour_helper: Member, old_elder: Member, helper: Member
) -> None:
    # the elder, her son (verified bond), and the volunteer see her services
    for person in (old_elder, son, helper):
        assert selectors.order_get(user_of(person), yandang.assigned.pk) == yandang.assigned
    # a volunteer of the neighbouring community sees the open request through the list of open ones only
    with pytest.raises(NotFound):
        selectors.order_get(user_of(neighbour_helper), yandang.assigned.pk)
    assert yandang.open in selectors.orders_open_for(neighbour_helper)


def test_members_act_only_on_their_own_services(
    yandang: Yandang, neighbour_helper: Member, old_elder: Member
) -> None:
    stranger = user_of(neighbour_helper)
    with refused("permission_denied"):
        care.order_cancel(actor=stranger, order=yandang.open, reason="不要了")
    with refused("permission_denied"):
        care.order_withdraw(actor=stranger, order=yandang.assigned, reason="不去了")
    with time_machine.travel(at(2, 10), tick=False), refused("care_not_your_service"):
        care.order_check_in(actor=stranger, order=yandang.assigned)
    with refused("permission_denied"):
        care.order_dispute(actor=stranger, order=yandang.confirmed, reason="投诉")
    with refused("permission_denied"):
        care.order_approve(actor=user_of(old_elder), order=yandang.confirmed)
    with refused("permission_denied"):
        care.order_create(
            actor=stranger,
            elder=old_elder,
            category="assistance",
            window_start=at(5, 10),
            window_end=at(5, 11),
            funding=Funding.OWN,
        )


def test_yandang_staff_cannot_act_in_jinyang(
    hongkou_staff: User, jinyang_staff: User, reviewer: User, station: User, tree: dict[str, Region]
) -> None:
    # given a confirmed paper record of 晋阳
    elder = jinyang_elder_with_savings(hongkou_staff, tree["310109018021"])
    volunteer = jinyang_volunteer(hongkou_staff, tree["310109018021"])
    order = care.paper_record_create(
        actor=jinyang_staff,
        elder=elder,
        volunteer=volunteer,
        category="assistance",
        started_at=at(-1, 9),
        ended_at=at(-1, 10),
        funding=Funding.OWN,
    )
    # then 雁荡's reviewer and the Ruijin station neither see nor touch it
    for staff_member in (reviewer, station):
        with pytest.raises(NotFound):
            selectors.order_get(staff_member, order.pk)
        with refused("permission_denied"):
            care.order_approve(actor=staff_member, order=order)
        with refused("permission_denied"):
            care.paper_record_create(
                actor=staff_member,
                elder=elder,
                volunteer=volunteer,
                category="assistance",
                started_at=at(-2, 9),
                ended_at=at(-2, 10),
                funding=Funding.OWN,
            )
        with refused("permission_denied"):
            care.certification_grant(actor=staff_member, member=volunteer, code="counsellor")
    # and Hongkou's station, above 晋阳, approves it
    assert care.order_approve(actor=hongkou_staff, order=order).credited_minutes == 72


def test_station_staff_do_not_set_budgets(station: User, tree: dict[str, Region]) -> None:
    with refused("permission_denied"):
        care.fund_budget_set(
            actor=station, region=tree["310101023"], year=timezone.localdate().year, limit_minutes=60
        )


def test_staff_post_requests_only_in_communities_they_serve(
    post: Callable[..., ServiceOrder], station: User, old_elder: Member, tree: dict[str, Region]
) -> None:
    """A request placed in 晋阳 is Hongkou's to staff, review and (for the public fund) pay for."""
    # when the Ruijin station posts a request for 王阿婆 to take place in 晋阳, Hongkou
    # then it is refused: that community is outside the station's regions
    with refused("permission_denied"):
        post(actor=station, place=tree["310109018021"])
