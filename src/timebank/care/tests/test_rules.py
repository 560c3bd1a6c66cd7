"""The jurisdiction's rules as a station worker meets them: who may spend which savings, who may serve, when a
service can have happened, and how its time is rounded, weighted and capped. Shanghai's preset rules 雁荡 and
茂名; the tiered proposal (quarter hours, coefficients 1.0/1.2/1.5) rules 晋阳 in Hongkou."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.utils import timezone, translation

from timebank.care import selectors
from timebank.care import services as care
from timebank.care.models import Funding, ServiceOrder, Status
from timebank.care.selectors import orders_open_for
from timebank.care.tests.conftest import at, balance, deposit, member, user_of
from timebank.care.tests.flows import (
    jinyang_elder_with_savings,
    jinyang_volunteer,
    refused,
    reload,
    worked,
    world,
)
from timebank.common.errors import ApplicationError
from timebank.ledger import services as ledger
from timebank.ledger.models import AccountKind, TransactionKind
from timebank.people import services as people
from timebank.people.models import Member, PriorityGroup, Relation, User
from timebank.regions import services as regions
from timebank.regions.models import Policy, Region

YANDANG, JINYANG = "310101023001", "310109018021"


def years_ago(years: int) -> dt.date:
    return dt.date(timezone.localdate().year - years, 1, 1)


@pytest.fixture
def jy_elder(hongkou_staff: User, tree: dict[str, Region]) -> Member:
    return jinyang_elder_with_savings(hongkou_staff, tree[JINYANG])


@pytest.fixture
def jy_volunteer(hongkou_staff: User, tree: dict[str, Region]) -> Member:
    return jinyang_volunteer(hongkou_staff, tree[JINYANG])


def paper(
    actor: User, elder: Member, volunteer: Member, start: dt.datetime, end: dt.datetime, **extra: Any
) -> ServiceOrder:
    values: dict[str, Any] = {"category": "assistance", "funding": Funding.OWN, "card_ref": "纸卡"}
    values.update(extra)
    return care.paper_record_create(
        actor=actor, elder=elder, volunteer=volunteer, started_at=start, ended_at=end, **values
    )


def policy_variant(region: Region, preset: str, effective_from: dt.date, **changes: Any) -> Policy:
    """A new policy version for ``region``: the preset's rules with ``changes``."""
    rules = regions.policy_preset_rules(preset)
    rules.update(changes)
    return regions.policy_create(actor=None, region=region, effective_from=effective_from, rules=rules)


# --- who pays -----------------------------------------------------------------------------------------------


def test_own_savings_wait_for_the_withdrawal_age_naming_the_rule(
    station: User, tree: dict[str, Region]
) -> None:
    # given a 62-year-old elder of 雁荡 with savings, not in a priority group
    elder = member(station, tree[YANDANG], "钱阿姨", birth=years_ago(62), is_elder=True)
    deposit(elder, 300)
    request: dict[str, Any] = {
        "actor": station,
        "elder": elder,
        "category": "assistance",
        "window_start": at(1, 10),
        "window_end": at(1, 11),
        "funding": Funding.OWN,
    }
    # when the station posts a request paid from her own savings
    with translation.override("en"), refused("care_withdrawal_age") as caught:
        care.order_create(**request)
    # then the refusal names the rule: Shanghai's 65, or 60 for verified priority elders
    message = str(caught.value.message)
    assert "上海市时间银行 2026" in message and "65" in message and "60" in message and "62" in message
    assert "funding" in caught.value.fields
    # and once she is verified as living alone, 60 is enough
    people.priority_group_verify(actor=station, member=elder, group=PriorityGroup.LIVING_ALONE)
    [order] = care.order_create(**request)
    assert order.status == Status.OPEN and order.payer == elder


def test_a_verified_priority_elder_under_sixty_still_waits(station: User, tree: dict[str, Region]) -> None:
    # given a 58-year-old priority elder
    elder = member(station, tree[YANDANG], "孙阿姨", birth=years_ago(58), is_elder=True)
    deposit(elder, 300)
    people.priority_group_verify(actor=station, member=elder, group=PriorityGroup.DISABLED)
    # when a request from her savings is posted, then it is refused
    with refused("care_withdrawal_age"):
        care.order_create(
            actor=station,
            elder=elder,
            category="assistance",
            window_start=at(1, 10),
            window_end=at(1, 11),
            funding=Funding.OWN,
        )
    # but the pool may serve her
    pool = ledger.system_account(kind=AccountKind.POOL, region=tree["310000"])
    ledger.transfer(
        idempotency_key="rules-pool-gift",
        source=elder.account_id or 0,
        destination=pool.pk,
        minutes=120,
        kind=TransactionKind.DONATION,
    )
    [order] = care.order_create(
        actor=station,
        elder=elder,
        category="assistance",
        window_start=at(1, 10),
        window_end=at(1, 11),
        funding=Funding.POOL,
    )
    assert order.payer is None and order.funding == Funding.POOL


def test_family_savings_need_a_verified_bond(
    post: Callable[..., ServiceOrder], station: User, old_elder: Member, tree: dict[str, Region]
) -> None:
    # given a neighbour with savings who says he is her nephew, and a bond only proposed
    nephew = member(station, tree[YANDANG], "王小明", birth=dt.date(1980, 4, 4), sex="M", login="wang-xm")
    deposit(nephew, 300)
    # when he offers to pay without any bond, then it is refused
    with refused("care_no_bond"):
        post(actor=station, funding=Funding.FAMILY, payer=nephew)
    # and a proposed bond is not enough either
    people.family_bond_propose(actor=station, member=old_elder, relative=nephew, relation=Relation.GRANDCHILD)
    with refused("care_no_bond"):
        post(actor=station, funding=Funding.FAMILY, payer=nephew)


def test_family_savings_need_a_payer_who_is_not_the_elder(
    post: Callable[..., ServiceOrder], station: User, old_elder: Member, son: Member
) -> None:
    with refused("care_payer_missing"):
        post(actor=station, funding=Funding.FAMILY, payer=None)
    with refused("care_payer_self"):
        post(actor=station, funding=Funding.FAMILY, payer=old_elder)


def test_only_the_payer_chooses_his_own_savings(
    post: Callable[..., ServiceOrder], old_elder: Member, son: Member
) -> None:
    # when the mother picks her son's savings herself, then it is refused
    with refused("permission_denied"):
        post(actor=user_of(old_elder), funding=Funding.FAMILY, payer=son)
    # and the son choosing them works
    order = post(actor=user_of(son), funding=Funding.FAMILY, payer=son)
    assert order.payer == son and order.funding == Funding.FAMILY


def test_family_savings_only_for_relations_the_policy_allows(
    post: Callable[..., ServiceOrder], son: Member, tree: dict[str, Region]
) -> None:
    # given 雁荡 adopts rules where savings pass only between spouses
    policy_variant(
        tree[YANDANG], "shanghai-2026", dt.date(2020, 1, 1), name="雁荡试点", transfer_relations=["spouse"]
    )
    # when the son pays for his mother, then the rule is named
    with translation.override("en"), refused("care_relation_not_allowed") as caught:
        post(actor=user_of(son), funding=Funding.FAMILY, payer=son)
    assert "雁荡试点" in str(caught.value.message)


@pytest.mark.parametrize("funding", [Funding.POOL, Funding.PUBLIC])
def test_pool_and_public_fund_serve_verified_priority_elders_only(
    post: Callable[..., ServiceOrder], station: User, funding: str
) -> None:
    with refused("care_not_priority"):
        post(actor=station, funding=funding)


def test_public_fund_needs_a_budget_with_room(
    post: Callable[..., ServiceOrder],
    station: User,
    operator: User,
    old_elder: Member,
    helper: Member,
    neighbour_helper: Member,
    tree: dict[str, Region],
) -> None:
    # given a verified priority elder and no public fund budget yet
    people.priority_group_verify(actor=station, member=old_elder, group=PriorityGroup.ADVANCED_AGE)
    with refused("care_no_budget"):
        post(actor=station, funding=Funding.PUBLIC)
    # when Huangpu's budget is smaller than one visit, then the fund is exhausted
    budget = care.fund_budget_set(actor=operator, region=tree["310101"], year=at(1).year, limit_minutes=30)
    with refused("care_budget_exhausted"):
        post(actor=station, funding=Funding.PUBLIC)
    # given room for one and a half visits, two requests are posted
    care.fund_budget_set(actor=operator, region=tree["310101"], year=at(1).year, limit_minutes=90)
    first = post(actor=station, funding=Funding.PUBLIC)
    second = post(actor=station, funding=Funding.PUBLIC, window_start=at(2, 10), window_end=at(2, 11))
    care.order_accept(actor=user_of(helper), order=first)
    # when a volunteer takes the second, then the budget cannot cover it and nothing is committed
    with refused("care_budget_exhausted"):
        care.order_accept(actor=user_of(neighbour_helper), order=second)
    budget.refresh_from_db()
    assert budget.committed_minutes == 60
    assert reload(second).status == Status.OPEN


def test_savings_must_cover_the_visit(
    post: Callable[..., ServiceOrder], old_elder: Member, helper: Member, neighbour_helper: Member
) -> None:
    # given 王阿婆 has ten hours
    # when she asks for eleven, then she is told what she has and what it needs
    with refused("care_insufficient_savings"):
        post(window_start=at(1, 8), window_end=at(1, 19))
    # given two six-hour visits on two days
    first = post(window_start=at(1, 8), window_end=at(1, 14))
    second = post(window_start=at(2, 8), window_end=at(2, 14))
    care.order_accept(actor=user_of(helper), order=first)
    assert balance(old_elder) == (600, 360)
    # when the second is taken, then only four hours are left to hold
    with refused("care_insufficient_savings"):
        care.order_accept(actor=user_of(neighbour_helper), order=second)
    assert balance(old_elder) == (600, 360)


# --- who serves ---------------------------------------------------------------------------------------------


def test_counselling_needs_a_certified_counsellor(
    jy_elder: Member, jy_volunteer: Member, hongkou_staff: User
) -> None:
    # given 赵阿姨 of 晋阳 asks for psychological counselling (tier 3, counsellors only)
    def ask(days: int) -> ServiceOrder:
        return care.order_create(
            actor=user_of(jy_elder),
            elder=jy_elder,
            category="psychological_counselling",
            window_start=at(days, 14),
            window_end=at(days, 15),
            funding=Funding.OWN,
        )[0]

    order = ask(1)
    # when a volunteer without the certification tries to take it, then the certificate is named
    assert order not in selectors.orders_open_for(jy_volunteer)
    with translation.override("en"), refused("care_certification_required") as caught:
        care.order_accept(actor=user_of(jy_volunteer), order=order)
    assert "counsellor" in str(caught.value.message)
    # when the station records his counsellor certificate, then he sees and takes it
    cert = care.certification_grant(actor=hongkou_staff, member=jy_volunteer, code="counsellor")
    assert order in selectors.orders_open_for(jy_volunteer)
    order = care.order_accept(actor=user_of(jy_volunteer), order=order)
    assert order.status == Status.ASSIGNED
    assert balance(jy_elder) == (600, 90)  # an hour at ×1.5 is held
    # and once it is revoked, the next one is refused again
    care.certification_revoke(actor=hongkou_staff, certification=cert)
    next_week = ask(7)
    with refused("care_certification_required"):
        care.order_accept(actor=user_of(jy_volunteer), order=next_week)


def test_a_certificate_that_expires_before_the_visit_does_not_count(
    jy_elder: Member, jy_volunteer: Member, hongkou_staff: User
) -> None:
    # given his counsellor certificate runs until today
    care.certification_grant(
        actor=hongkou_staff, member=jy_volunteer, code="counsellor", valid_until=timezone.localdate()
    )
    [order] = care.order_create(
        actor=user_of(jy_elder),
        elder=jy_elder,
        category="psychological_counselling",
        window_start=at(1, 14),
        window_end=at(1, 15),
        funding=Funding.OWN,
    )
    # when he takes a visit tomorrow, then it is refused
    with refused("care_certification_required"):
        care.order_accept(actor=user_of(jy_volunteer), order=order)
    # and an already expired certificate cannot be recorded
    with refused("care_cert_expired"):
        care.certification_grant(
            actor=hongkou_staff,
            member=jy_volunteer,
            code="counsellor",
            valid_until=timezone.localdate() - dt.timedelta(days=1),
        )


def test_volunteers_are_old_enough(
    post: Callable[..., ServiceOrder], station: User, tree: dict[str, Region]
) -> None:
    # given a 17-year-old registered as a volunteer
    teen = member(station, tree[YANDANG], "周小雨", birth=years_ago(17), login="zhou-xy", is_volunteer=True)
    order = post()
    # when she takes a request, then Shanghai's minimum of 18 is named
    assert order not in selectors.orders_open_for(teen)
    with translation.override("en"), refused("care_volunteer_age") as caught:
        care.order_accept(actor=user_of(teen), order=order)
    assert "18" in str(caught.value.message)
    # and the station cannot assign her either
    with refused("care_volunteer_age"):
        care.order_assign(actor=station, order=order, volunteer=teen)


def test_volunteers_take_services_near_home_but_staff_assign_anyone(
    post: Callable[..., ServiceOrder], jy_volunteer: Member, station: User, operator: User
) -> None:
    # given a request in 雁荡
    order = post()
    # when a volunteer of 晋阳 (Hongkou) takes it, then he is sent to the station
    assert order not in selectors.orders_open_for(jy_volunteer)
    with refused("care_not_nearby"):
        care.order_accept(actor=user_of(jy_volunteer), order=order)
    # and the street's station cannot even see him
    with refused("member_not_found"):
        care.order_assign(actor=station, order=order, volunteer=jy_volunteer)
    # when the city operator assigns him, then it is arranged
    order = care.order_assign(actor=operator, order=order, volunteer=jy_volunteer)
    assert order.status == Status.ASSIGNED and order.volunteer == jy_volunteer


def test_a_volunteer_of_the_neighbouring_community_takes_the_request(
    post: Callable[..., ServiceOrder], neighbour_helper: Member
) -> None:
    # given a request in 雁荡 and a volunteer of 茂名 in the same street
    order = post()
    assert order in selectors.orders_open_for(neighbour_helper)
    # when she takes it
    order = care.order_accept(actor=user_of(neighbour_helper), order=order)
    # then it is hers
    assert order.status == Status.ASSIGNED and order.volunteer == neighbour_helper


# --- when it happened ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "start", "end", "code"),
    [
        ("end before start", (1, 11, 0), (1, 10, 0), "care_impossible_time"),
        ("ends as it starts", (1, 10, 0), (1, 10, 0), "care_impossible_time"),
        ("longer than twelve hours", (1, 6, 0), (1, 18, 1), "care_too_long"),
        ("already over", (-1, 10, 0), (-1, 11, 0), "care_in_the_past"),
        ("more than a year ahead", (400, 10, 0), (400, 11, 0), "care_too_far"),
    ],
)
def test_impossible_request_times(
    post: Callable[..., ServiceOrder],
    name: str,
    start: tuple[int, int, int],
    end: tuple[int, int, int],
    code: str,
) -> None:
    with refused(code):
        post(window_start=at(*start), window_end=at(*end))


@pytest.mark.parametrize(
    ("name", "start", "end", "travel", "code"),
    [
        ("end before start", (-1, 11, 0), (-1, 10, 0), 0, "care_impossible_time"),
        ("travel as long as the visit", (-1, 10, 0), (-1, 11, 0), 60, "care_impossible_time"),
        ("travel longer than the visit", (-1, 10, 0), (-1, 11, 0), 90, "care_impossible_time"),
        ("negative travel", (-1, 10, 0), (-1, 11, 0), -5, "care_bad_travel"),
        ("in the future", (1, 10, 0), (1, 11, 0), 0, "care_impossible_time"),
        ("longer than twelve hours", (-1, 6, 0), (-1, 18, 30), 0, "care_too_long"),
    ],
)
def test_impossible_paper_record_times(
    station: User,
    old_elder: Member,
    helper: Member,
    name: str,
    start: tuple[int, int, int],
    end: tuple[int, int, int],
    travel: int,
    code: str,
) -> None:
    with refused(code):
        paper(station, old_elder, helper, at(*start), at(*end), travel_minutes=travel)


# --- overlaps -----------------------------------------------------------------------------------------------


def test_a_volunteer_cannot_take_two_services_at_once(
    post: Callable[..., ServiceOrder], helper: Member, station: User
) -> None:
    # given he took 10:00–11:00 tomorrow
    care.order_accept(actor=user_of(helper), order=post())
    overlapping = post(window_start=at(1, 10, 30), window_end=at(1, 11, 30))
    # when he takes 10:30–11:30 too, then it is refused naming the service he has
    with refused("care_overlap"):
        care.order_accept(actor=user_of(helper), order=overlapping)
    # and the station cannot assign it to him either
    with refused("care_overlap"):
        care.order_assign(actor=station, order=overlapping, volunteer=helper)
    # but 11:00–12:00 right after is fine
    after = care.order_accept(actor=user_of(helper), order=post(window_start=at(1, 11), window_end=at(1, 12)))
    assert after.status == Status.ASSIGNED


def test_a_volunteer_cannot_check_in_while_checked_in_elsewhere(
    post: Callable[..., ServiceOrder], helper: Member
) -> None:
    # given two visits back to back, and he checked in to the first
    first = care.order_accept(actor=user_of(helper), order=post())
    second = care.order_accept(
        actor=user_of(helper), order=post(window_start=at(1, 11), window_end=at(1, 12))
    )
    with time_machine.travel(at(1, 10), tick=False):
        care.order_check_in(actor=user_of(helper), order=first)
    # when he checks in to the second before leaving the first, then it is refused
    with time_machine.travel(at(1, 10, 30), tick=False), refused("care_overlap"):
        care.order_check_in(actor=user_of(helper), order=second)
    # and after checking out of the first, he may
    with time_machine.travel(at(1, 11), tick=False):
        care.order_check_out(actor=user_of(helper), order=first)
        second = care.order_check_in(actor=user_of(helper), order=second)
    assert second.status == Status.IN_PROGRESS


def test_overlapping_paper_records_are_flagged_for_review(
    station: User, reviewer: User, old_elder: Member, helper: Member
) -> None:
    # given the station enters a paper card for 9:00–10:00 yesterday
    first = paper(station, old_elder, helper, at(-1, 9), at(-1, 10))
    # when it enters another card of his, 9:30–10:30, and one for 10:00–11:00
    overlapping = paper(station, old_elder, helper, at(-1, 9, 30), at(-1, 10, 30))
    after = paper(station, old_elder, helper, at(-1, 10, 30), at(-1, 11, 30))
    # then only the overlapping one is flagged, and the reviewer's flagged list shows it
    assert (first.overlap_flag, overlapping.overlap_flag, after.overlap_flag) == (False, True, False)
    assert list(selectors.review_queue(reviewer, flagged=True)) == [overlapping]
    # and the same card entered twice is refused
    with refused("care_duplicate_record"):
        paper(station, old_elder, helper, at(-1, 9), at(-1, 10))


def test_times_entered_by_the_station_that_overlap_are_flagged(
    post: Callable[..., ServiceOrder], station: User, old_elder: Member, helper: Member
) -> None:
    # given a paper card of his from 9:30 to 10:30 tomorrow, entered afterwards
    order = care.order_accept(actor=user_of(helper), order=post())
    start, end = at(1, 9, 30), at(1, 10, 30)
    with time_machine.travel(at(1, 12), tick=False):
        earlier = paper(station, old_elder, helper, start, end, category="emotional_support")
    # when the station enters the times of his 10:00 visit from its card
    start, end = at(1, 10), at(1, 11)
    with time_machine.travel(at(1, 12), tick=False):
        order = care.order_times_record(actor=station, order=order, started_at=start, ended_at=end)
    # then it is flagged
    assert earlier.overlap_flag is False
    assert order.status == Status.COMPLETED and order.overlap_flag is True


# --- rounding, weighting, capping ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "length", "travel", "service", "credited"),
    [
        ("assistance", 60, 0, 60, 72),  # tier 2, ×1.2
        ("assistance", 74, 0, 60, 72),  # down to the quarter hour
        ("assistance", 75, 0, 75, 90),
        ("emotional_support", 74, 0, 60, 60),  # tier 1
        ("sudden_difficulty", 89, 0, 75, 112),  # tier 3, ×1.5: 112.5, and half a minute is not credited
        ("assistance", 90, 20, 60, 72),  # travel is not service: 70, down to 60
    ],
)
def test_tiered_policy_rounds_down_to_quarter_hours_and_weights_by_tier(
    jy_elder: Member,
    jy_volunteer: Member,
    jinyang_staff: User,
    hongkou_staff: User,
    category: str,
    length: int,
    travel: int,
    service: int,
    credited: int,
) -> None:
    # given a paper card of 晋阳 from 9:00 yesterday
    started = at(-1, 9)
    ended = started + dt.timedelta(minutes=length)
    order = paper(
        jinyang_staff, jy_elder, jy_volunteer, started, ended, category=category, travel_minutes=travel
    )
    assert order.service_minutes == service
    # when Hongkou's station approves it
    order = care.order_approve(actor=hongkou_staff, order=order)
    # then the volunteer earns the weighted, rounded time, from the elder's savings
    assert order.credited_minutes == credited
    assert balance(jy_volunteer) == (credited, 0)
    assert balance(jy_elder) == (600 - credited, 0)


def test_check_out_under_the_tiered_policy_rounds_down(
    jy_elder: Member, jy_volunteer: Member, hongkou_staff: User
) -> None:
    # given he takes an hour of assistance tomorrow in 晋阳
    [order] = care.order_create(
        actor=user_of(jy_elder),
        elder=jy_elder,
        category="assistance",
        window_start=at(1, 10),
        window_end=at(1, 11),
        funding=Funding.OWN,
    )
    order = care.order_accept(actor=user_of(jy_volunteer), order=order)
    assert balance(jy_elder) == (600, 72)
    # when he checks out after 44 minutes, then 30 are recorded
    order = worked(order, jy_volunteer, at(1, 10), at(1, 10, 44))
    assert order.service_minutes == 30


def test_a_visit_shorter_than_the_rounding_unit_cannot_be_checked_out(
    jy_elder: Member, jy_volunteer: Member
) -> None:
    [order] = care.order_create(
        actor=user_of(jy_elder),
        elder=jy_elder,
        category="assistance",
        window_start=at(1, 10),
        window_end=at(1, 11),
        funding=Funding.OWN,
    )
    care.order_accept(actor=user_of(jy_volunteer), order=order)
    with time_machine.travel(at(1, 10), tick=False):
        care.order_check_in(actor=user_of(jy_volunteer), order=order)
    with time_machine.travel(at(1, 10, 14), tick=False), refused("care_too_short"):
        care.order_check_out(actor=user_of(jy_volunteer), order=order)


def test_the_daily_earning_cap_caps_then_refuses(
    hongkou_staff: User, jinyang_staff: User, tree: dict[str, Region]
) -> None:
    # given 晋阳 runs the tiered rules with a daily earning cap of two hours
    policy_variant(
        tree[JINYANG], "paper-tiered", dt.date(2020, 1, 1), name="晋阳日上限", daily_earning_cap_minutes=120
    )
    elder = jinyang_elder_with_savings(hongkou_staff, tree[JINYANG])
    volunteer = jinyang_volunteer(hongkou_staff, tree[JINYANG])
    # and three hours of assistance he gave yesterday (72 minutes credited each, ×1.2)
    cards = [paper(jinyang_staff, elder, volunteer, at(-1, h), at(-1, h + 1)) for h in (8, 9, 10)]
    # when the station approves them
    first = care.order_approve(actor=hongkou_staff, order=cards[0])
    second = care.order_approve(actor=hongkou_staff, order=cards[1])
    # then the first is credited in full and the second up to the cap
    assert (first.credited_minutes, first.capped_minutes) == (72, 0)
    assert (second.credited_minutes, second.capped_minutes) == (48, 24)
    assert balance(volunteer) == (120, 0)
    # and the third is refused, naming the cap, and stays waiting
    with refused("care_daily_cap_reached"):
        care.order_approve(actor=hongkou_staff, order=cards[2])
    assert reload(cards[2]).status == Status.CONFIRMED
    # the elder paid only what was credited; the third visit is still held
    assert balance(elder) == (600 - 120, 72)
    # and a visit on another day is credited in full
    other_day = paper(jinyang_staff, elder, volunteer, at(-2, 9), at(-2, 10))
    assert care.order_approve(actor=hongkou_staff, order=other_day).credited_minutes == 72


def test_a_later_policy_version_does_not_change_earlier_services(
    jy_elder: Member, jy_volunteer: Member, jinyang_staff: User, hongkou_staff: User, tree: dict[str, Region]
) -> None:
    # given an hour of assistance three days ago, under the tiered rules (×1.2)
    old_policy = Policy.objects.get(region=tree["310109"])
    earlier = paper(jinyang_staff, jy_elder, jy_volunteer, at(-3, 9), at(-3, 10))
    # when Hongkou adopts a new version from the day before yesterday, weighting assistance ×2
    rules = regions.policy_preset_rules("paper-tiered")
    for category in rules["categories"]:
        if category["code"] == "assistance":
            category["coefficient_permille"] = 2000
    new_policy = regions.policy_create(
        actor=None,
        region=tree["310109"],
        effective_from=timezone.localdate() - dt.timedelta(days=2),
        rules=rules,
    )
    later = paper(jinyang_staff, jy_elder, jy_volunteer, at(-1, 9), at(-1, 10))
    # and both are approved after the change
    earlier = care.order_approve(actor=hongkou_staff, order=earlier)
    later = care.order_approve(actor=hongkou_staff, order=later)
    # then each is credited under the version in force on its day
    assert (earlier.credited_minutes, earlier.coefficient_permille, earlier.policy) == (72, 1200, old_policy)
    assert (later.credited_minutes, later.coefficient_permille, later.policy) == (120, 2000, new_policy)
    assert new_policy.version == old_policy.version + 1
    assert balance(jy_volunteer) == (192, 0)


def test_nobody_serves_themselves(
    station: User, tree: dict[str, Region], post: Callable[..., ServiceOrder]
) -> None:
    # given an elder who is also a registered volunteer
    both = member(
        station,
        tree[YANDANG],
        "吴阿姨",
        birth=dt.date(1950, 2, 2),
        login="wu-ayi",
        is_elder=True,
        is_volunteer=True,
    )
    deposit(both, 120)
    order = post(actor=user_of(both), elder=both)
    # when she takes her own request, then it is refused
    assert order not in selectors.orders_open_for(both)
    with refused("care_self_service"):
        care.order_accept(actor=user_of(both), order=order)


# --- more of the request ------------------------------------------------------------------------------


def test_a_weekly_visit_is_posted_as_one_service_a_week(post: Callable[..., ServiceOrder]) -> None:
    # when she asks for the same hour every week for four weeks
    [order] = [post(repeat_weeks=4)]
    # then four services are posted a week apart, as one series
    series = list(ServiceOrder.objects.filter(series=order.series).order_by("occurrence"))
    assert [o.occurrence for o in series] == [1, 2, 3, 4]
    assert [o.window_start for o in series] == [at(1, 10) + dt.timedelta(weeks=w) for w in range(4)]
    # and half a year is the most
    with refused("care_bad_repeat"):
        post(repeat_weeks=27)


def test_only_registered_elders_are_served_and_only_volunteers_serve(
    post: Callable[..., ServiceOrder], station: User, son: Member, old_elder: Member, tree: dict[str, Region]
) -> None:
    # when the station posts for the son, who is not registered as an elder, then it is refused
    with refused("care_not_elder"):
        post(actor=station, elder=son)
    # when a request is placed in a street rather than a community, then it is refused
    with refused("care_place_not_community"):
        post(place=tree["310101023"])
    # when the son, who is not a volunteer, takes his mother's request, then it is refused
    order = post()
    with refused("care_not_volunteer"):
        care.order_accept(actor=user_of(son), order=order)


def test_over_the_account_cap_the_excess_goes_to_the_pool(
    hongkou_staff: User, jinyang_staff: User, tree: dict[str, Region]
) -> None:
    # given 赵阿姨 saved ten hours before 晋阳 capped accounts at 100 minutes, the excess going to the pool
    elder = jinyang_elder_with_savings(hongkou_staff, tree[JINYANG])
    policy = policy_variant(
        tree[JINYANG],
        "paper-tiered",
        dt.date(2020, 1, 1),
        name="晋阳封顶",
        account_cap_minutes=100,
        cap_overflow="pool",
    )
    # and 孙伟 joined under the cap
    volunteer = jinyang_volunteer(hongkou_staff, tree[JINYANG])
    cards = [paper(jinyang_staff, elder, volunteer, at(-1, h), at(-1, h + 1)) for h in (9, 10)]
    # when two hours of assistance (72 minutes each) are approved
    care.order_approve(actor=hongkou_staff, order=cards[0])
    second = care.order_approve(actor=hongkou_staff, order=cards[1])
    # then he holds the cap, and the rest went to the pool
    assert balance(volunteer) == (100, 0)
    assert (second.credited_minutes, second.overflow_minutes) == (72, 44)
    pool = ledger.system_account(kind=AccountKind.POOL, region=policy.region)
    assert pool.balance == 44
    assert balance(elder) == (600 - 144, 0)


def test_a_budget_is_never_set_below_what_is_committed(
    post: Callable[..., ServiceOrder],
    station: User,
    operator: User,
    old_elder: Member,
    helper: Member,
    tree: dict[str, Region],
) -> None:
    # given an hour of the public fund is committed to an assigned visit
    people.priority_group_verify(actor=station, member=old_elder, group=PriorityGroup.ADVANCED_AGE)
    care.fund_budget_set(actor=operator, region=tree["310101"], year=at(1).year, limit_minutes=300)
    care.order_accept(actor=user_of(helper), order=post(actor=station, funding=Funding.PUBLIC))
    # when the operator cuts the budget below it, then it is refused
    with refused("care_budget_below_committed"):
        care.fund_budget_set(actor=operator, region=tree["310101"], year=at(1).year, limit_minutes=59)
    # and down to exactly what is committed is fine
    assert (
        care.fund_budget_set(
            actor=operator, region=tree["310101"], year=at(1).year, limit_minutes=60
        ).remaining_minutes
        == 0
    )


def test_the_relative_who_pays_does_not_serve_the_visit(
    post: Callable[..., ServiceOrder], station: User, son: Member
) -> None:
    """Serving a visit one pays for would pay oneself: the credit could never be posted."""
    # given the son also volunteers and pays for his mother's visit
    son = people.member_update(actor=station, member=son, changes={"is_volunteer": True})
    order = post(actor=user_of(son), funding=Funding.FAMILY, payer=son)
    before = world()
    # when he takes it himself, or the station assigns it to him, then it is refused
    with pytest.raises(ApplicationError):
        care.order_accept(actor=user_of(son), order=order)
    with pytest.raises(ApplicationError):
        care.order_assign(actor=station, order=order, volunteer=son)
    assert world() == before
    assert reload(order).status == Status.OPEN


def test_check_in_within_the_window(post: Callable[..., ServiceOrder], helper: Member) -> None:
    # given he took the 10:00–11:00 visit tomorrow
    order = care.order_accept(actor=user_of(helper), order=post())
    # when he checks out before checking in, then he is told to check in first
    with refused("care_not_checked_in"):
        care.order_check_out(actor=user_of(helper), order=order)
    # when he checks in more than an hour early, or after the window closed, then it is refused
    with time_machine.travel(at(1, 8, 59), tick=False), refused("care_too_early"):
        care.order_check_in(actor=user_of(helper), order=order)
    with time_machine.travel(at(1, 11, 1), tick=False), refused("care_window_passed"):
        care.order_check_in(actor=user_of(helper), order=order)
    # and an hour early is fine
    with time_machine.travel(at(1, 9), tick=False):
        assert care.order_check_in(actor=user_of(helper), order=order).status == Status.IN_PROGRESS


def test_the_requests_near_a_volunteer_are_found_in_a_few_queries(
    post, helper, django_assert_max_num_queries
):
    # given a dozen open requests of one day
    for hour in range(8, 20):
        post(window_start=at(1, hour), window_end=at(1, hour + 1))
    # when her list is drawn, then the policy is looked up once per community and day, not once per row
    with django_assert_max_num_queries(5):
        assert len(orders_open_for(helper)) == 12
