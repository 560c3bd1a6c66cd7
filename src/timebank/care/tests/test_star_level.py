"""Star levels count the hours a volunteer earned by serving: credits of approved services, less any credit
reversed after a complaint. What a member spends on services they receive or pay for is not service given."""

from __future__ import annotations

import datetime as dt
from typing import Any

from timebank.care import services as care
from timebank.care.models import Funding, ServiceOrder
from timebank.care.selectors import star_level
from timebank.care.tests.conftest import at, balance, deposit, member
from timebank.people import services as people
from timebank.people.models import Member, User
from timebank.regions import services as regions
from timebank.regions.models import Region


def card(actor: User, elder: Member, volunteer: Member, hour: int, **extra: Any) -> ServiceOrder:
    """A signed paper card of an hour of assistance yesterday."""
    values: dict[str, Any] = {"category": "assistance", "funding": Funding.OWN}
    values.update(extra)
    return care.paper_record_create(
        actor=actor,
        elder=elder,
        volunteer=volunteer,
        started_at=at(-1, hour),
        ended_at=at(-1, hour + 1),
        **values,
    )


def test_hours_earned_count_and_hours_spent_do_not(
    station: User,
    reviewer: User,
    admin_user: User,
    old_elder: Member,
    son: Member,
    helper: Member,
    tree: dict[str, Region],
) -> None:
    # given the son also volunteers, and served a neighbour of 茂名 for an hour
    son = people.member_update(actor=station, member=son, changes={"is_volunteer": True})
    neighbour = member(station, tree["310101023002"], "郑阿婆", birth=dt.date(1939, 9, 9), is_elder=True)
    deposit(neighbour, 120)
    care.order_approve(actor=admin_user, order=card(station, neighbour, son, 9))
    assert star_level(son).minutes == 60
    # when he pays from his savings for an hour 李志强 gives his mother
    care.order_approve(
        actor=reviewer, order=card(station, old_elder, helper, 11, funding=Funding.FAMILY, payer=son)
    )
    # then his savings went down, but the hour he served still counts for his stars
    assert balance(son) == (300, 0)
    assert star_level(son).minutes == 60
    assert star_level(helper).minutes == 60
    # and his mother, who only received services, earned no hours
    assert star_level(old_elder).minutes == 0


def test_the_policy_sets_the_thresholds(
    station: User, reviewer: User, old_elder: Member, helper: Member, tree: dict[str, Region]
) -> None:
    # given 雁荡 awards stars at one and two hours
    rules = regions.policy_preset_rules("shanghai-2026")
    rules.update(name="雁荡星级试点", star_thresholds_hours=[1, 2, 50])
    regions.policy_create(
        actor=None, region=tree["310101023001"], effective_from=dt.date(2020, 1, 1), rules=rules
    )
    # when he is credited an hour and a half
    order = care.paper_record_create(
        actor=station,
        elder=old_elder,
        volunteer=helper,
        category="assistance",
        started_at=at(-1, 9),
        ended_at=at(-1, 10, 30),
        funding=Funding.OWN,
    )
    care.order_approve(actor=reviewer, order=order)
    # then he has one star and the next comes at two hours
    level = star_level(helper)
    assert (level.stars, level.hours, level.minutes, level.next_threshold_hours) == (1, 1, 90, 2)


def test_hours_carried_over_from_a_paper_record_card_count(station: User, helper: Member) -> None:
    # given 120 hours served before the platform, carried over from the paper card as an opening balance
    from timebank.ledger import services as ledger
    from timebank.ledger.models import AccountKind, TransactionKind

    fund = ledger.system_account(kind=AccountKind.PUBLIC_FUND, region=helper.home_region)
    assert helper.account_id is not None
    ledger.transfer(
        idempotency_key="paper-card-opening",
        source=fund.pk,
        destination=helper.account_id,
        minutes=120 * 60,
        kind=TransactionKind.OPENING,
        memo="纸质服务记录卡迁移",
    )
    # then they earn the first star
    level = star_level(helper)
    assert (level.stars, level.hours, level.next_threshold_hours) == (1, 120, 300)
