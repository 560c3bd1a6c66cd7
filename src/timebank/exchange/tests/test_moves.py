"""Moving home: within one currency area the account follows the member with its history; into another the
minutes cross through the clearing accounts in one recorded transaction; staff at both ends see it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import translation

from timebank.audit.models import AuditEvent
from timebank.care.tests.conftest import balance, deposit, user_of
from timebank.care.tests.flows import world
from timebank.common.errors import ApplicationError
from timebank.exchange import services as exchange
from timebank.exchange.models import AccountMove, Product
from timebank.exchange.tests.builders import *  # noqa: F403
from timebank.exchange.tests.builders import City, bond, exchange_world, person, refused, variant
from timebank.ledger.models import Account, AccountKind, AccountStatus, Transaction, TransactionKind
from timebank.ledger.selectors import account_statement
from timebank.ledger.verify import ledger_verify
from timebank.people.models import Member, Relation, User
from timebank.regions.models import Region


def lines(account_id: int) -> list[tuple[int, str, int, int]]:
    """The account's statement, oldest first: (transaction, kind, amount, balance after)."""
    entries = account_statement(account_id, limit=200).entries
    return [(e.transaction_id, e.kind, e.amount, e.balance_after) for e in reversed(entries)]


def moved_events(m: Member, event_type: str) -> set[str]:
    """The codes of the regions whose staff see ``event_type`` about ``m``."""
    return {
        e.region.code
        for e in AuditEvent.objects.filter(event_type=event_type, subject_id=str(m.pk)).select_related(
            "region"
        )
        if e.region is not None
    }


def test_within_the_city_the_account_follows_with_its_history(
    son: Member, old_elder: Member, operator: User, tree: dict[str, Region]
) -> None:
    # given the son, who gave his mother an hour, and his statement so far
    exchange.transfer_create(
        actor=user_of(son), giver=son, receiver=old_elder, minutes=60, idempotency_key="t"
    )
    assert son.account_id is not None
    history = lines(son.account_id)
    transactions = Transaction.objects.count()
    # when he moves from 雁荡 (Huangpu) to 晋阳 (Hongkou)
    moved = exchange.member_move(actor=operator, member=son, to_region=tree["310109018021"])
    # then he keeps his account, balance and every line of it; no minutes moved; both communities see it
    assert moved.home_region == tree["310109018021"] and moved.account_id == son.account_id
    assert balance(moved) == (240, 0) and lines(son.account_id) == history
    assert Transaction.objects.count() == transactions and not AccountMove.objects.exists()
    assert moved_events(son, "member.updated") == {"310101023001", "310109018021"}
    # and he may still give to his mother
    exchange.transfer_create(
        actor=user_of(moved), giver=moved, receiver=old_elder, minutes=60, idempotency_key="u"
    )


def test_to_another_city_the_minutes_cross_through_clearing_in_one_transaction(
    son: Member, old_elder: Member, nanjing: City, admin_user: User, tree: dict[str, Region]
) -> None:
    # given the son (5 hours under Shanghai's rules) who gave his mother an hour
    exchange.transfer_create(
        actor=user_of(son), giver=son, receiver=old_elder, minutes=60, idempotency_key="t"
    )
    old_id = son.account_id
    assert old_id is not None
    history = lines(old_id)
    # when he moves to 梅园新村 in Nanjing
    moved = exchange.member_move(actor=admin_user, member=son, to_region=nanjing.community)
    # then a Nanjing account under Nanjing's cap holds his 4 hours, and the Shanghai account is closed
    assert moved.home_region == nanjing.community and moved.account_id not in (None, old_id)
    assert moved.account_id is not None
    new = Account.objects.get(pk=moved.account_id)
    old = Account.objects.get(pk=old_id)
    assert (new.area, new.status, new.balance, new.cap) == ("320000", AccountStatus.OPEN, 240, 90_000)
    assert (old.status, old.balance) == (AccountStatus.CLOSED, 0)
    # and one CLEARING transaction moved them through both provinces' clearing accounts
    record = AccountMove.objects.get(member=son)
    assert (record.from_account_id, record.to_account_id) == (old_id, new.pk)
    assert (record.from_region, record.to_region) == (tree["310101023001"], nanjing.community)
    assert (record.minutes_out, record.minutes_in, record.moved_by) == (240, 240, admin_user)
    assert record.transaction_id is not None
    crossing = Transaction.objects.get(pk=record.transaction_id)
    assert crossing.kind == TransactionKind.CLEARING
    shanghai_clearing = Account.objects.get(kind=AccountKind.CLEARING, region=tree["310000"])
    nanjing_clearing = Account.objects.get(kind=AccountKind.CLEARING, region=nanjing.policy.region)
    assert dict(crossing.postings.values_list("account_id", "amount")) == {
        old_id: -240,
        shanghai_clearing.pk: 240,
        nanjing_clearing.pk: -240,
        new.pk: 240,
    }
    # and the old statement keeps every line, ending with the crossing; the new one starts with it
    assert lines(old_id) == [*history, (crossing.pk, TransactionKind.CLEARING, -240, 0)]
    assert lines(new.pk) == [(crossing.pk, TransactionKind.CLEARING, 240, 240)]
    # and staff at both ends see the move, and the books still verify
    assert moved_events(son, "exchange.account.moved") == {"310101023001", "320102002001"}
    assert moved_events(son, "member.updated") == {"310101023001", "320102002001"}
    assert ledger_verify().ok


def test_after_moving_away_the_old_citys_minutes_rules_apply_no_longer(
    son: Member, old_elder: Member, nanjing: City, admin_user: User
) -> None:
    # given the son moved to Nanjing
    moved = exchange.member_move(actor=admin_user, member=son, to_region=nanjing.community)
    # when he gives to his mother in Shanghai, then minutes do not cross areas outside a move
    with refused("exchange_other_area"):
        exchange.transfer_create(
            actor=user_of(moved), giver=moved, receiver=old_elder, minutes=60, idempotency_key="t"
        )
    # and a relative in Nanjing under Nanjing's rules receives from him
    grandmother = person(nanjing.station, nanjing.community, "王太婆", born=dt.date(1936, 5, 5))
    bond(moved, grandmother, Relation.GRANDPARENT, proposer=nanjing.station, decider=nanjing.reviewer)
    exchange.transfer_create(
        actor=user_of(moved), giver=moved, receiver=grandmother, minutes=60, idempotency_key="u"
    )
    assert balance(grandmother) == (60, 0)


def test_an_empty_account_moves_without_a_transaction(
    helper: Member, nanjing: City, admin_user: User
) -> None:
    exchange.member_move(actor=admin_user, member=helper, to_region=nanjing.community)
    record = AccountMove.objects.get(member=helper)
    assert (record.minutes_out, record.minutes_in, record.transaction_id) == (0, 0, None)
    assert ledger_verify().ok


def test_into_a_policy_of_another_unit_the_minutes_are_converted(
    son: Member, nanjing: City, admin_user: User, other_cities: dict[str, Region]
) -> None:
    # given 玄武区 counts a coin as 30 minutes (Shanghai: 60)
    variant("nanjing-2019", other_cities["320102"], minutes_per_coin=30)
    # when the son moves there with 5 hours (5 coins)
    moved = exchange.member_move(actor=admin_user, member=son, to_region=nanjing.community)
    # then he holds 5 coins of 30 minutes, and the move records both amounts
    assert balance(moved) == (150, 0)
    record = AccountMove.objects.get(member=son)
    assert (record.minutes_out, record.minutes_in) == (300, 150)
    assert ledger_verify().ok


def test_a_move_with_minutes_held_for_an_order_is_refused(
    jinyang_holder: Member, rice: Product, nanjing: City, admin_user: User
) -> None:
    # given 蒋阿姨 ordered rice not yet picked up
    exchange.redemption_order(actor=user_of(jinyang_holder), member=jinyang_holder, product=rice)
    # when staff move her to Nanjing, then it is refused and she still lives in 晋阳
    with refused("exchange_move_with_holds"):
        exchange.member_move(actor=admin_user, member=jinyang_holder, to_region=nanjing.community)
    assert Member.objects.get(pk=jinyang_holder.pk).home_region.code == "310109018021"


def test_moving_to_where_one_lives_is_refused(son: Member, operator: User, tree: dict[str, Region]) -> None:
    with refused("exchange_same_home"):
        exchange.member_move(actor=operator, member=son, to_region=tree["310101023001"])


@pytest.mark.parametrize("who", ["station", "hongkou_staff", "son"])
def test_only_staff_of_both_places_move_a_member(
    who: str, son: Member, old_elder: Member, tree: dict[str, Region], request: pytest.FixtureRequest
) -> None:
    actor = user_of(son) if who == "son" else request.getfixturevalue(who)
    with refused("permission_denied"):
        exchange.member_move(actor=actor, member=old_elder, to_region=tree["310109018021"])


def test_savings_beyond_the_destinations_cap_are_refused_naming_the_cap(
    son: Member, nanjing: City, admin_user: User
) -> None:
    # given the son holds more than Nanjing's 1,500-hour cap
    deposit(son, 95_000 - 300)
    before = (world(), exchange_world())
    # when staff move him to Nanjing, then nothing moves, and the message names the cap that stops it
    with translation.override("en"), pytest.raises(ApplicationError) as caught:
        exchange.member_move(actor=admin_user, member=son, to_region=nanjing.community)
    assert (world(), exchange_world()) == before
    assert "1500 h" in str(caught.value.message), caught.value.message


def test_the_profile_form_cannot_carry_a_member_to_another_city(nanjing, admin_user, son):
    # given a Shanghai member, when staff change his home to Nanjing on the profile, then they are told to
    # move him (which carries the account), and nothing changes
    from timebank.people import services as people_services

    with refused("member_move_needs_account"):
        people_services.member_update(
            actor=admin_user, member=son, changes={"home_region": nanjing.community}
        )
