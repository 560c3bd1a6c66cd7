"""Complaints and ratings. Staff decide a complaint: the record stands, the time is corrected (a credit is
reversed and posted again), or the service is void (a credit is reversed). Either side rates a done service
once."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from timebank.care import selectors
from timebank.care import services as care
from timebank.care.models import Dispute, Funding, Outcome, ServiceOrder, Status
from timebank.care.selectors import star_level
from timebank.care.tests.conftest import at, balance, user_of
from timebank.care.tests.flows import confirmed_by_elder, refused, reload, worked, world
from timebank.common.errors import ApplicationError
from timebank.ledger.models import Account, AccountKind, Transaction, TransactionKind
from timebank.notifications.models import Notification
from timebank.people import services as people
from timebank.people.models import Member, PriorityGroup, Role, User
from timebank.regions.models import Region


@pytest.fixture
def completed(post: Callable[..., ServiceOrder], helper: Member) -> Callable[..., ServiceOrder]:
    def make(**overrides: object) -> ServiceOrder:
        order = care.order_accept(actor=user_of(helper), order=post(**overrides))
        return worked(order, helper, at(1, 10), at(1, 11))

    return make


@pytest.fixture
def credited(completed: Callable[..., ServiceOrder], reviewer: User) -> Callable[..., ServiceOrder]:
    """An hour 王阿婆 confirmed and the reviewer approved: 60 minutes from her savings to 李志强."""

    def make(**overrides: object) -> ServiceOrder:
        return care.order_approve(actor=reviewer, order=confirmed_by_elder(completed(**overrides)))

    return make


def complain(order: ServiceOrder, by: Member, reason: str = "志愿者只待了四十五分钟") -> Dispute:
    return care.order_dispute(actor=user_of(by), order=order, reason=reason)


def test_a_void_service_is_reversed(
    credited: Callable[..., ServiceOrder],
    reviewer: User,
    station: User,
    old_elder: Member,
    helper: Member,
) -> None:
    # given a credited hour the elder complains about
    order = credited()
    assert balance(old_elder) == (540, 0) and balance(helper) == (60, 0)
    assert star_level(helper).minutes == 60
    dispute = complain(order, old_elder, "志愿者根本没来")
    assert reload(order).status == Status.DISPUTED
    assert Notification.objects.filter(recipient=station, kind="care.disputed").exists()
    assert dispute in selectors.disputes_open(reviewer)
    # when the reviewer finds the service never happened
    dispute = care.dispute_resolve(
        actor=reviewer, dispute=dispute, outcome=Outcome.VOID, resolution="邻居证实志愿者没来"
    )
    # then the credit is reversed: both balances are as before, the volunteer's hours too
    order = reload(order)
    assert order.status == Status.REVERSED
    assert balance(old_elder) == (600, 0) and balance(helper) == (0, 0)
    assert star_level(helper).minutes == 0
    reversal = Transaction.objects.get(pk=dispute.reversal_id or 0)
    assert reversal.kind == TransactionKind.REVERSAL and reversal.reverses_id == order.credit_transaction_id
    assert dispute.outcome == Outcome.VOID and dispute.resolved_by == reviewer
    assert dispute not in selectors.disputes_open(reviewer)
    # and both sides are told the outcome, in either language
    for person in (old_elder, helper):
        notice = Notification.objects.get(recipient=user_of(person), kind="care.dispute_resolved")
        assert notice.params["outcome_en"] == "No credit: the service is void"
        assert notice.params["reason"] == "邻居证实志愿者没来"


def test_a_corrected_time_is_credited_again(
    credited: Callable[..., ServiceOrder], reviewer: User, old_elder: Member, helper: Member
) -> None:
    # given a credited hour the volunteer only partly served
    order = credited()
    dispute = complain(order, old_elder)
    # when the reviewer corrects it to 45 minutes
    care.dispute_resolve(
        actor=reviewer,
        dispute=dispute,
        outcome=Outcome.CORRECTED,
        resolution="按实际时间计",
        corrected_minutes=45,
    )
    # then 45 minutes are credited in place of 60
    order = reload(order)
    assert order.status == Status.CREDITED
    assert (order.service_minutes, order.credited_minutes) == (45, 45)
    assert balance(old_elder) == (555, 0) and balance(helper) == (45, 0)
    assert star_level(helper).minutes == 45
    kinds = list(
        Transaction.objects.filter(ref_type="care.serviceorder", ref_id=str(order.pk))
        .order_by("pk")
        .values_list("kind", flat=True)
    )
    assert kinds == [TransactionKind.SERVICE_CREDIT, TransactionKind.SERVICE_CREDIT]
    assert Transaction.objects.filter(kind=TransactionKind.REVERSAL).count() == 1


def test_a_time_corrected_before_approval_is_what_gets_credited(
    completed: Callable[..., ServiceOrder], reviewer: User, old_elder: Member, helper: Member
) -> None:
    # given the volunteer complains his confirmed visit was recorded too short
    order = confirmed_by_elder(completed())
    dispute = complain(order, helper, "我忘了签退，实际是七十五分钟")
    # when the reviewer corrects it, and approves
    care.dispute_resolve(
        actor=reviewer,
        dispute=dispute,
        outcome=Outcome.CORRECTED,
        resolution="老人确认",
        corrected_minutes=75,
    )
    order = reload(order)
    assert order.status == Status.CONFIRMED
    order = care.order_approve(actor=reviewer, order=order)
    # then the corrected time is credited (more than the hour held)
    assert order.credited_minutes == 75
    assert balance(old_elder) == (525, 0) and balance(helper) == (75, 0)


@pytest.mark.parametrize("stage", [Status.COMPLETED, Status.CONFIRMED, Status.CREDITED])
def test_a_record_that_stands_returns_where_it_was(
    completed: Callable[..., ServiceOrder], reviewer: User, old_elder: Member, helper: Member, stage: str
) -> None:
    # given a complaint about a service at some stage
    order = completed()
    if stage != Status.COMPLETED:
        order = confirmed_by_elder(order)
    if stage == Status.CREDITED:
        order = care.order_approve(actor=reviewer, order=order)
    dispute = complain(order, old_elder)
    balances = balance(old_elder), balance(helper)
    transactions = Transaction.objects.count()
    # when the reviewer finds the record right
    care.dispute_resolve(actor=reviewer, dispute=dispute, outcome=Outcome.STANDS, resolution="核实无误")
    # then the service is back where it was and no time moved
    assert reload(order).status == stage
    assert (balance(old_elder), balance(helper)) == balances
    assert Transaction.objects.count() == transactions


def test_a_void_service_never_credited_is_rejected_and_its_hold_released(
    completed: Callable[..., ServiceOrder], reviewer: User, old_elder: Member
) -> None:
    order = confirmed_by_elder(completed())
    assert balance(old_elder) == (600, 60)
    dispute = complain(order, old_elder)
    care.dispute_resolve(actor=reviewer, dispute=dispute, outcome=Outcome.VOID, resolution="不是本人")
    assert reload(order).status == Status.REJECTED
    assert balance(old_elder) == (600, 0)


def test_a_void_public_fund_service_gives_the_budget_back(
    credited: Callable[..., ServiceOrder],
    station: User,
    reviewer: User,
    operator: User,
    old_elder: Member,
    tree: dict[str, Region],
) -> None:
    # given a publicly funded hour for a priority elder was credited
    people.priority_group_verify(actor=station, member=old_elder, group=PriorityGroup.ADVANCED_AGE)
    budget = care.fund_budget_set(actor=operator, region=tree["310101"], year=at(1).year, limit_minutes=600)
    order = credited(actor=station, funding=Funding.PUBLIC)
    budget.refresh_from_db()
    assert budget.committed_minutes == 60
    # when it is found void
    dispute = complain(order, old_elder)
    care.dispute_resolve(actor=reviewer, dispute=dispute, outcome=Outcome.VOID, resolution="重复记录")
    # then the budget and the fund are as before
    budget.refresh_from_db()
    assert budget.committed_minutes == 0
    assert Account.objects.get(kind=AccountKind.PUBLIC_FUND, region=tree["310101"]).balance == 0


def test_a_service_can_be_complained_about_again_after_a_decision(
    credited: Callable[..., ServiceOrder], reviewer: User, old_elder: Member, son: Member, helper: Member
) -> None:
    # given a complaint is open
    order = credited()
    first = complain(order, old_elder)
    # when the son complains too while it is open, then it is refused
    with refused("care_illegal_transition"):
        complain(order, son)
    # and once the record stands, the son may complain again, and it can then be voided
    care.dispute_resolve(actor=reviewer, dispute=first, outcome=Outcome.STANDS, resolution="核实无误")
    second = complain(order, son, "我妈说那天没人来")
    care.dispute_resolve(actor=reviewer, dispute=second, outcome=Outcome.VOID, resolution="再次核实")
    assert reload(order).status == Status.REVERSED
    assert balance(old_elder) == (600, 0) and balance(helper) == (0, 0)


def test_a_decision_is_made_once_with_reasons(
    credited: Callable[..., ServiceOrder], reviewer: User, station: User, old_elder: Member
) -> None:
    dispute = complain(credited(), old_elder)
    with refused("care_reason_required"):
        care.dispute_resolve(actor=reviewer, dispute=dispute, outcome=Outcome.VOID, resolution="")
    with refused("care_bad_outcome"):
        care.dispute_resolve(actor=reviewer, dispute=dispute, outcome="maybe", resolution="不知道")
    for minutes in (None, 0, 13 * 60):
        with refused("care_bad_minutes"):
            care.dispute_resolve(
                actor=reviewer,
                dispute=dispute,
                outcome=Outcome.CORRECTED,
                resolution="改时间",
                corrected_minutes=minutes,
            )
    care.dispute_resolve(actor=reviewer, dispute=dispute, outcome=Outcome.STANDS, resolution="核实无误")
    with refused("care_dispute_resolved"):
        care.dispute_resolve(actor=station, dispute=dispute, outcome=Outcome.VOID, resolution="我不同意")


def test_who_decides_a_complaint(
    credited: Callable[..., ServiceOrder],
    admin_user: User,
    hongkou_staff: User,
    old_elder: Member,
    helper: Member,
    tree: dict[str, Region],
) -> None:
    # given the volunteer is also a reviewer of 雁荡
    people.staff_grant_create(
        actor=admin_user, user=user_of(helper), role=Role.COMMUNITY_STAFF, region=tree["310101023001"]
    )
    dispute = complain(credited(), old_elder)
    # when he decides the complaint about his own service, then it is refused
    with refused("care_own_service"):
        care.dispute_resolve(
            actor=user_of(helper), dispute=dispute, outcome=Outcome.STANDS, resolution="没问题"
        )
    # and Hongkou's staff neither see it nor decide it
    assert dispute not in selectors.disputes_open(hongkou_staff)
    with refused("permission_denied"):
        care.dispute_resolve(actor=hongkou_staff, dispute=dispute, outcome=Outcome.VOID, resolution="作废")


def test_who_may_complain(completed: Callable[..., ServiceOrder], neighbour_helper: Member) -> None:
    order = completed()
    with refused("permission_denied"):
        complain(order, neighbour_helper)
    with refused("care_reason_required"):
        care.order_dispute(actor=user_of(order.elder), order=order, reason="")


# --- ratings ------------------------------------------------------------------------------------------------


def test_each_side_rates_once(
    completed: Callable[..., ServiceOrder], old_elder: Member, son: Member, helper: Member
) -> None:
    # given a done service
    order = completed()
    # when the elder and the volunteer rate it
    mine = care.order_rate(actor=user_of(old_elder), order=order, stars=5, comment="小李很耐心")
    his = care.order_rate(actor=user_of(helper), order=order, stars=4)
    assert (mine.side, mine.stars, his.side, his.stars) == ("elder", 5, "volunteer", 4)
    # then neither side rates again, and the son speaks for the elder's side, which has rated
    before = world()
    for person in (old_elder, son, helper):
        with pytest.raises(ApplicationError) as caught:
            care.order_rate(actor=user_of(person), order=order, stars=1)
        assert caught.value.code == "care_already_rated"
    assert world() == before


@pytest.mark.parametrize("stars", [0, 6, -1, True])
def test_stars_are_one_to_five(completed: Callable[..., ServiceOrder], old_elder: Member, stars: int) -> None:
    order = completed()
    with refused("care_bad_stars"):
        care.order_rate(actor=user_of(old_elder), order=order, stars=stars)


def test_ratings_wait_for_the_service_and_come_from_its_people(
    post: Callable[..., ServiceOrder],
    completed: Callable[..., ServiceOrder],
    old_elder: Member,
    neighbour_helper: Member,
) -> None:
    request = post(window_start=at(3, 10), window_end=at(3, 11))
    with refused("care_not_done"):
        care.order_rate(actor=user_of(old_elder), order=request, stars=5)
    order = completed()
    with refused("permission_denied"):
        care.order_rate(actor=user_of(neighbour_helper), order=order, stars=1)
