"""Many people at once (PostgreSQL): a request is taken once, a service is paid once, savings and budgets are
never over-committed, whatever the timing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from timebank.care import services as care
from timebank.care.models import FundBudget, Funding, ServiceOrder, Status
from timebank.care.tests.conftest import at, balance, member, user_of
from timebank.common.errors import ApplicationError
from timebank.ledger.models import Hold, HoldStatus, Transaction, TransactionKind
from timebank.ledger.tests.test_concurrency import run_together
from timebank.people import services as people
from timebank.people.models import Member, User
from timebank.regions.models import Region

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgres_only")]


def codes(escaped: list[tuple[int, BaseException]]) -> list[str]:
    assert all(isinstance(exc, ApplicationError) for _i, exc in escaped), escaped
    return sorted(exc.code for _i, exc in escaped if isinstance(exc, ApplicationError))


def test_eight_volunteers_racing_for_one_request_one_gets_it(
    post: Callable[..., ServiceOrder], station: User, tree: dict[str, Region], old_elder: Member
) -> None:
    # given one open request and eight volunteers of the community
    order = post()
    volunteers = [
        member(
            station,
            tree["310101023001"],
            f"志愿者{i}",
            birth=dt.date(1960, 1, i + 1),
            login=f"racer-{i}",
            is_volunteer=True,
        )
        for i in range(8)
    ]
    # when all accept at once
    escaped = run_together(8, lambda i: care.order_accept(actor=user_of(volunteers[i]), order=order))
    # then exactly one has it, with one hold on the elder's savings; the others were told it is taken
    assert codes(escaped) == ["care_illegal_transition"] * 7
    order.refresh_from_db()
    assert order.status == Status.ASSIGNED and order.volunteer in volunteers
    assert Hold.objects.filter(status=HoldStatus.PENDING).count() == 1
    assert balance(old_elder) == (600, 60)


def test_approving_one_service_from_four_screens_pays_once(
    post: Callable[..., ServiceOrder], helper: Member, station: User, reviewer: User, old_elder: Member
) -> None:
    # given a completed, confirmed paper record
    order = care.paper_record_create(
        actor=station,
        elder=old_elder,
        volunteer=helper,
        category="assistance",
        started_at=at(-2, 9),
        ended_at=at(-2, 10),
        funding=Funding.OWN,
    )
    # when four reviewers' clicks arrive together
    escaped = run_together(4, lambda _i: care.order_approve(actor=reviewer, order=order))
    # then one credit, and the others simply see it credited
    assert escaped == []
    assert Transaction.objects.filter(kind=TransactionKind.SERVICE_CREDIT).count() == 1
    assert balance(helper) == (60, 0)
    assert balance(old_elder) == (540, 0)


def test_savings_are_never_held_twice(
    post: Callable[..., ServiceOrder], station: User, tree: dict[str, Region], old_elder: Member
) -> None:
    # given ten two-hour requests of an elder with ten hours of savings, and ten volunteers
    orders = [post(window_start=at(1 + i, 9), window_end=at(1 + i, 11)) for i in range(10)]
    volunteers = [
        member(
            station,
            tree["310101023001"],
            f"志愿者{i}",
            birth=dt.date(1961, 2, i + 1),
            login=f"taker-{i}",
            is_volunteer=True,
        )
        for i in range(10)
    ]
    # when all are taken at once
    escaped = run_together(10, lambda i: care.order_accept(actor=user_of(volunteers[i]), order=orders[i]))
    # then five fit and five are refused for want of savings; nothing is held beyond the balance
    assert codes(escaped) == ["care_insufficient_savings"] * 5
    assert balance(old_elder) == (600, 600)
    assert ServiceOrder.objects.filter(status=Status.ASSIGNED).count() == 5


def test_the_public_budget_is_never_overspent(
    post: Callable[..., ServiceOrder],
    station: User,
    operator: User,
    tree: dict[str, Region],
    old_elder: Member,
) -> None:
    # given a budget for three hours and six one-hour requests of a priority elder
    people.priority_group_verify(actor=station, member=old_elder, group="living_alone")
    care.fund_budget_set(actor=operator, region=tree["310101"], year=at(1).year, limit_minutes=180)
    orders = [
        post(actor=station, funding=Funding.PUBLIC, window_start=at(1, 8 + i), window_end=at(1, 9 + i))
        for i in range(6)
    ]
    volunteers = [
        member(station, tree["310101023001"], f"志愿者{i}", birth=dt.date(1962, 3, i + 1), is_volunteer=True)
        for i in range(6)
    ]
    # when staff assign all six at once
    escaped = run_together(
        6, lambda i: care.order_assign(actor=station, order=orders[i], volunteer=volunteers[i])
    )
    # then three are assigned and three refused; the budget is exactly spent
    assert codes(escaped) == ["care_budget_exhausted"] * 3
    budget = FundBudget.objects.get()
    assert budget.committed_minutes == 180


def test_two_complaints_at_once_open_one_dispute(helper: Member, station: User, old_elder: Member) -> None:
    # given a confirmed service
    elder_user = user_of(old_elder)
    done = care.paper_record_create(
        actor=station,
        elder=old_elder,
        volunteer=helper,
        category="assistance",
        started_at=at(-3, 9),
        ended_at=at(-3, 10),
        funding=Funding.OWN,
    )
    # when the elder complains while the volunteer, at the same moment, also complains
    escaped = run_together(
        2,
        lambda i: care.order_dispute(
            actor=elder_user if i == 0 else user_of(helper), order=done, reason="时间不对"
        ),
    )
    # then one complaint is open and the other was told the service is already disputed
    assert codes(escaped) == ["care_illegal_transition"]
    done.refresh_from_db()
    assert done.status == Status.DISPUTED
    assert done.disputes.count() == 1


def test_the_daily_cap_holds_when_two_approvals_come_together(
    station: User, reviewer: User, tree: dict[str, Region], helper: Member, old_elder: Member
) -> None:
    # given 雁荡 caps a volunteer's day at two hours, and two 72-minute cards of one day
    from timebank.regions import services as regions

    rules = regions.policy_preset_rules("shanghai-2026")
    rules.update(name="雁荡每日上限", daily_earning_cap_minutes=120)
    regions.policy_create(
        actor=None, region=tree["310101023001"], effective_from=dt.date(2020, 1, 1), rules=rules
    )
    cards = [
        care.paper_record_create(
            actor=station,
            elder=old_elder,
            volunteer=helper,
            category="assistance",
            started_at=at(-1, 8 + 2 * i),
            ended_at=at(-1, 9 + 2 * i, 12),
            funding=Funding.OWN,
        )
        for i in range(2)
    ]
    # when both are approved at once
    escaped = run_together(2, lambda i: care.order_approve(actor=reviewer, order=cards[i]))
    # then together they credit exactly the cap
    assert escaped == []
    assert balance(helper) == (120, 0)


def test_one_volunteer_accepting_two_overlapping_requests_at_once_gets_one(
    post: Callable[..., ServiceOrder], helper: Member
) -> None:
    orders = [
        post(window_start=at(1, 10), window_end=at(1, 11)),
        post(window_start=at(1, 10, 30), window_end=at(1, 12)),
    ]
    escaped = run_together(2, lambda i: care.order_accept(actor=user_of(helper), order=orders[i]))
    assert codes(escaped) == ["care_overlap"]
    assert ServiceOrder.objects.filter(volunteer=helper, status=Status.ASSIGNED).count() == 1


def test_approvals_and_dispute_decisions_on_one_budget_never_deadlock(
    station: User,
    reviewer: User,
    operator: User,
    tree: dict[str, Region],
    helper: Member,
    old_elder: Member,
    admin_user: User,
) -> None:
    # given public-fund services: some confirmed, some credited and disputed
    people.priority_group_verify(actor=station, member=old_elder, group="living_alone")
    care.fund_budget_set(actor=operator, region=tree["310101"], year=at(-1).year, limit_minutes=100_000)

    def card(i: int) -> ServiceOrder:
        return care.paper_record_create(
            actor=station,
            elder=old_elder,
            volunteer=helper,
            category="assistance",
            started_at=at(-1 - i, 9),
            ended_at=at(-1 - i, 10),
            funding=Funding.PUBLIC,
        )

    to_approve = [card(i) for i in range(6)]
    disputes = []
    for i in range(6, 12):
        credited = care.order_approve(actor=reviewer, order=card(i))
        disputes.append(care.order_dispute(actor=user_of(old_elder), order=credited, reason="时间不对"))
    # when approvals and "void" decisions run together
    escaped = run_together(
        12,
        lambda i: (
            care.order_approve(actor=reviewer, order=to_approve[i])
            if i < 6
            else care.dispute_resolve(
                actor=admin_user, dispute=disputes[i - 6], outcome="void", resolution="核实未服务"
            )
        ),
    )
    # then none failed, and the budget holds what was credited
    assert escaped == []
    assert FundBudget.objects.get().committed_minutes == 6 * 60
    assert balance(helper) == (6 * 60, 0)
