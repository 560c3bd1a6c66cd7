"""Transfers and gifts to relatives and friends, as far as each city's rules allow: who may receive, bonds
that must be verified, balances and yearly limits, retries, group time, and account caps."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import translation

from timebank.audit.models import AuditEvent
from timebank.care.tests.conftest import balance, deposit, user_of
from timebank.exchange import selectors
from timebank.exchange import services as exchange
from timebank.exchange.tests.builders import *  # noqa: F403
from timebank.exchange.tests.builders import City, bond, person, refused, variant
from timebank.ledger.models import Account, AccountKind, Transaction, TransactionKind
from timebank.ledger.selectors import account_statement
from timebank.notifications.models import Notification
from timebank.notifications.services import render
from timebank.people import services as people
from timebank.people.models import Member, Relation, User
from timebank.regions.models import Policy, Region


def newest(m: Member) -> tuple[int, str, int, int]:
    """The newest line of the member's statement: (transaction, kind, amount, balance after)."""
    assert m.account_id is not None
    entry = account_statement(m.account_id, limit=1).entries[0]
    return entry.transaction_id, entry.kind, entry.amount, entry.balance_after


def pool_balance(policy: Policy) -> int:
    pool = Account.objects.filter(kind=AccountKind.POOL, region=policy.region).first()
    return pool.balance if pool else 0


# --- Shanghai: relatives and friends ------------------------------------------------------------------------


def test_a_son_gives_his_mother_an_hour_and_both_statements_show_it(son: Member, old_elder: Member) -> None:
    # given 王建国 with 5 hours and his mother 王阿婆 with 10, bound and verified
    # when he transfers an hour to her
    moved = exchange.transfer_create(
        actor=user_of(son), giver=son, receiver=old_elder, minutes=60, idempotency_key="mother-1"
    )
    # then both balances moved, one transfer is on both statements, she is told, and both sides are audited
    assert moved.created and moved.overflow == 0
    assert balance(son) == (240, 0) and balance(old_elder) == (660, 0)
    assert newest(son) == (moved.transaction_id, TransactionKind.TRANSFER, -60, 240)
    assert newest(old_elder) == (moved.transaction_id, TransactionKind.TRANSFER, 60, 660)
    assert Notification.objects.filter(recipient=user_of(old_elder), kind="exchange.received").count() == 1
    event = AuditEvent.objects.get(event_type="exchange.transfer")
    assert event.new["receiver"] == old_elder.pk and event.new["minutes"] == 60


def test_a_gift_is_recorded_as_a_gift_on_both_statements(son: Member, old_elder: Member) -> None:
    # when the son gives rather than transfers
    moved = exchange.transfer_create(
        actor=user_of(son),
        giver=son,
        receiver=old_elder,
        minutes=30,
        idempotency_key="g",
        gift=True,
        note="生日",
    )
    # then both statements call it a gift
    assert newest(son)[:3] == (moved.transaction_id, TransactionKind.GIFT, -30)
    assert newest(old_elder)[:3] == (moved.transaction_id, TransactionKind.GIFT, 30)
    assert AuditEvent.objects.get(event_type="exchange.gift").new["note"] == "生日"


def test_station_staff_transfer_for_an_elder_without_a_phone(
    son: Member, old_elder: Member, station: User
) -> None:
    # when the station transfers for the mother (she came to the counter)
    exchange.transfer_create(actor=station, giver=old_elder, receiver=son, minutes=60, idempotency_key="c")
    # then it is done, and the audit says staff acted for her
    assert balance(old_elder) == (540, 0) and balance(son) == (360, 0)
    event = AuditEvent.objects.get(event_type="exchange.transfer")
    assert event.new["by"] == "staff" and event.on_behalf_of_id == old_elder.pk


def test_shanghai_lets_minutes_pass_to_a_friend(
    old_elder: Member, helper: Member, station: User, reviewer: User
) -> None:
    # given 李志强 is 王阿婆's verified friend
    bond(old_elder, helper, Relation.FRIEND, proposer=station, decider=reviewer)
    # when she gives him half an hour
    moved = exchange.transfer_create(
        actor=user_of(old_elder), giver=old_elder, receiver=helper, minutes=30, idempotency_key="f"
    )
    # then he has it
    assert moved.created and balance(helper) == (30, 0)
    assert list(selectors.members_who_may_receive(old_elder)) == [helper]


def test_without_a_bond_nothing_passes_and_the_rule_is_named(
    old_elder: Member, neighbour_helper: Member
) -> None:
    # given 陈美华, a neighbour, with no bond to 王阿婆
    # when 王阿婆 tries to give her time, then it is refused, naming the missing bond
    with translation.override("en"), refused("exchange_no_bond") as caught:
        exchange.transfer_create(
            actor=user_of(old_elder),
            giver=old_elder,
            receiver=neighbour_helper,
            minutes=30,
            idempotency_key="n",
        )
    assert str(caught.value.message) == "王阿婆 and 陈美华 have no verified family bond."
    assert caught.value.fields == {"receiver": [str(caught.value.message)]}


def test_a_bond_still_waiting_or_rejected_does_not_let_minutes_pass(
    old_elder: Member, neighbour_helper: Member, helper: Member, station: User, reviewer: User
) -> None:
    # given one bond proposed but not verified, and one rejected
    people.family_bond_propose(actor=station, member=old_elder, relative=neighbour_helper, relation="friend")
    rejected = people.family_bond_propose(actor=station, member=old_elder, relative=helper, relation="friend")
    people.family_bond_decide(actor=reviewer, bond=rejected, approve=False, reason="不认识")
    # when she gives to either, then both are refused for want of a verified bond
    for receiver in (neighbour_helper, helper):
        with refused("exchange_no_bond"):
            exchange.transfer_create(
                actor=user_of(old_elder), giver=old_elder, receiver=receiver, minutes=30, idempotency_key="w"
            )


def test_more_than_the_balance_is_refused_with_what_is_available(son: Member, old_elder: Member) -> None:
    with translation.override("en"), refused("exchange_insufficient") as caught:
        exchange.transfer_create(
            actor=user_of(son), giver=son, receiver=old_elder, minutes=301, idempotency_key="big"
        )
    assert str(caught.value.message) == "5 h available; this needs 5 h 1 min."


def test_minutes_held_for_an_order_are_not_available_to_give(
    jinyang_holder: Member, rice, hongkou_staff: User, tree: dict[str, Region], admin_user: User
) -> None:
    # given 蒋阿姨 (600 min) ordered rice for 120 and has a verified daughter in 晋阳
    daughter = person(hongkou_staff, tree["310109018021"], "蒋小红", born=dt.date(1985, 1, 1), sex="F")
    bond(jinyang_holder, daughter, Relation.CHILD, proposer=hongkou_staff, decider=admin_user)
    exchange.redemption_order(actor=user_of(jinyang_holder), member=jinyang_holder, product=rice)
    # when she gives away more than what is not held, then it is refused
    with refused("exchange_insufficient"):
        exchange.transfer_create(
            actor=user_of(jinyang_holder),
            giver=jinyang_holder,
            receiver=daughter,
            minutes=481,
            idempotency_key="x",
        )
    # and what is not held she may give
    exchange.transfer_create(
        actor=user_of(jinyang_holder),
        giver=jinyang_holder,
        receiver=daughter,
        minutes=480,
        idempotency_key="y",
    )
    assert balance(jinyang_holder) == (120, 120)


@pytest.mark.parametrize(
    ("minutes", "key"),
    [(0, "k"), (-60, "k"), (1.5, "k"), (True, "k"), ("60", "k"), (60, ""), (60, "   "), (60, "x" * 81)],
)
def test_amounts_that_are_not_whole_positive_minutes_and_bad_keys_are_refused(
    son: Member, old_elder: Member, minutes: object, key: str
) -> None:
    code = "exchange_bad_minutes" if minutes != 60 else "exchange_bad_key"
    with refused(code):
        exchange.transfer_create(
            actor=user_of(son),
            giver=son,
            receiver=old_elder,
            minutes=minutes,  # type: ignore[arg-type]
            idempotency_key=key,
        )


def test_nobody_transfers_to_themselves(son: Member) -> None:
    with refused("exchange_self"):
        exchange.transfer_create(actor=user_of(son), giver=son, receiver=son, minutes=10, idempotency_key="s")


# --- retries ------------------------------------------------------------------------------------------------


def test_a_retry_with_the_same_key_posts_nothing_new(son: Member, old_elder: Member) -> None:
    # given a transfer that went through
    first = exchange.transfer_create(
        actor=user_of(son), giver=son, receiver=old_elder, minutes=60, idempotency_key="tap"
    )
    transactions = Transaction.objects.count()
    # when the app sends it again (the son tapped twice)
    again = exchange.transfer_create(
        actor=user_of(son), giver=son, receiver=old_elder, minutes=60, idempotency_key="tap"
    )
    # then it is the same transfer: one transaction, one notice, one audit row, balances moved once
    assert (again.transaction_id, again.created) == (first.transaction_id, False)
    assert Transaction.objects.count() == transactions
    assert balance(son) == (240, 0) and balance(old_elder) == (660, 0)
    assert Notification.objects.filter(kind="exchange.received").count() == 1
    assert AuditEvent.objects.filter(event_type="exchange.transfer").count() == 1


def test_the_same_key_with_another_amount_is_an_error_and_changes_nothing(
    son: Member, old_elder: Member
) -> None:
    exchange.transfer_create(
        actor=user_of(son), giver=son, receiver=old_elder, minutes=60, idempotency_key="k"
    )
    with refused("ledger_idempotency_conflict"):
        exchange.transfer_create(
            actor=user_of(son), giver=son, receiver=old_elder, minutes=90, idempotency_key="k"
        )
    # even when the other amount is more than is left
    with refused("ledger_idempotency_conflict"):
        exchange.transfer_create(
            actor=user_of(son), giver=son, receiver=old_elder, minutes=1000, idempotency_key="k"
        )
    assert balance(son) == (240, 0)


def test_a_key_belongs_to_its_giver(son: Member, old_elder: Member) -> None:
    # given the son used the key "1"
    exchange.transfer_create(
        actor=user_of(son), giver=son, receiver=old_elder, minutes=60, idempotency_key="1"
    )
    # when his mother's app happens to use "1" too, then hers is a transfer of its own
    hers = exchange.transfer_create(
        actor=user_of(old_elder), giver=old_elder, receiver=son, minutes=10, idempotency_key="1"
    )
    assert hers.created and balance(son) == (250, 0)


# --- a yearly limit -----------------------------------------------------------------------------------------


def test_a_yearly_limit_counts_transfers_and_gifts_together(
    son: Member, old_elder: Member, tree: dict[str, Region]
) -> None:
    # given Huangpu limits transfers and gifts to 2 hours a holder a year
    variant("shanghai-2026", tree["310101"], transfer_annual_limit_minutes=120)
    first = exchange.transfer_create(
        actor=user_of(son), giver=son, receiver=old_elder, minutes=100, idempotency_key="y1"
    )
    # when he then tries to give 30 more, then it is refused naming the limit and what went already
    with translation.override("en"), refused("exchange_yearly_limit") as caught:
        exchange.transfer_create(
            actor=user_of(son), giver=son, receiver=old_elder, minutes=30, idempotency_key="y2", gift=True
        )
    assert "allows 2 h of transfers and gifts a year; 1 h 40 min went already" in str(caught.value.message)
    # and up to the limit is fine, a retry of what went already too, but nothing beyond
    exchange.transfer_create(
        actor=user_of(son), giver=son, receiver=old_elder, minutes=20, idempotency_key="y3", gift=True
    )
    retry = exchange.transfer_create(
        actor=user_of(son), giver=son, receiver=old_elder, minutes=100, idempotency_key="y1"
    )
    assert retry.transaction_id == first.transaction_id and not retry.created
    with refused("exchange_yearly_limit"):
        exchange.transfer_create(
            actor=user_of(son), giver=son, receiver=old_elder, minutes=1, idempotency_key="y4"
        )
    assert balance(son) == (180, 0)


def test_the_yearly_limit_is_the_givers_not_the_receivers(
    son: Member, old_elder: Member, tree: dict[str, Region]
) -> None:
    # given the limit and a son who gave up to it
    variant("shanghai-2026", tree["310101"], transfer_annual_limit_minutes=60)
    exchange.transfer_create(
        actor=user_of(son), giver=son, receiver=old_elder, minutes=60, idempotency_key="a"
    )
    # when his mother gives to him, then her own year is untouched
    exchange.transfer_create(
        actor=user_of(old_elder), giver=old_elder, receiver=son, minutes=60, idempotency_key="b"
    )
    assert balance(son) == (300, 0)


# --- other cities -------------------------------------------------------------------------------------------


@pytest.fixture
def nj_family(nanjing: City) -> tuple[Member, Member]:
    """王奶奶, 70, of 梅园新村 (Nanjing) and her son 王小明, 40, each with a sign-in, bound and verified."""
    mother = person(
        nanjing.station, nanjing.community, "王奶奶", born=dt.date(1956, 2, 2), minutes=600, login="nj-nainai"
    )
    child = person(
        nanjing.station,
        nanjing.community,
        "王小明",
        born=dt.date(1986, 6, 6),
        sex="M",
        minutes=300,
        login="nj-xiaoming",
    )
    bond(mother, child, Relation.CHILD, proposer=nanjing.station, decider=nanjing.reviewer)
    return mother, child


@pytest.fixture
def bj_family(beijing: City) -> tuple[Member, Member, Member]:
    """刘大爷, 72, of 多福巷 (Beijing), his wife 刘大妈 and his daughter 刘芳, all bound and verified."""
    husband = person(
        beijing.station, beijing.community, "刘大爷", born=dt.date(1954, 3, 3), sex="M", minutes=600
    )
    wife = person(beijing.station, beijing.community, "刘大妈", born=dt.date(1956, 4, 4), minutes=60)
    daughter = person(beijing.station, beijing.community, "刘芳", born=dt.date(1980, 5, 5), minutes=60)
    bond(husband, wife, Relation.SPOUSE, proposer=beijing.station, decider=beijing.reviewer)
    bond(husband, daughter, Relation.CHILD, proposer=beijing.station, decider=beijing.reviewer)
    return husband, wife, daughter


def test_nanjing_lets_a_son_give_to_his_mother_of_sixty_or_more(nj_family: tuple[Member, Member]) -> None:
    mother, son = nj_family
    moved = exchange.transfer_create(
        actor=user_of(son), giver=son, receiver=mother, minutes=60, idempotency_key="nj"
    )
    assert moved.created and balance(mother) == (660, 0)


def test_nanjing_refuses_a_recipient_under_sixty(nj_family: tuple[Member, Member]) -> None:
    # given the mother wants to give to her son, who is 40
    mother, son = nj_family
    # when she tries, then Nanjing's minimum age of a recipient is named
    with translation.override("en"), refused("exchange_recipient_age") as caught:
        exchange.transfer_create(
            actor=user_of(mother), giver=mother, receiver=son, minutes=60, idempotency_key="nj"
        )
    assert (
        str(caught.value.message) == "南京市时间银行 2019 lets minutes pass only to someone aged 60 or more."
    )


def test_nanjing_and_beijing_refuse_a_friend_that_shanghai_allows(
    nanjing: City, beijing: City, old_elder: Member, helper: Member, station: User, reviewer: User
) -> None:
    # given a verified friendship of two 70-year-olds in each city (and one in Shanghai)
    bond(old_elder, helper, Relation.FRIEND, proposer=station, decider=reviewer)
    for city in (nanjing, beijing):
        tag = city.community.code
        giver = person(city.station, city.community, f"甲{tag[-3:]}", born=dt.date(1956, 1, 1), minutes=60)
        friend = person(city.station, city.community, f"乙{tag[-3:]}", born=dt.date(1955, 1, 1))
        bond(giver, friend, Relation.FRIEND, proposer=city.station, decider=city.reviewer)
        # when one gives to the other, then the city's rule is named
        with translation.override("en"), refused("exchange_relation_not_allowed") as caught:
            exchange.transfer_create(
                actor=city.station, giver=giver, receiver=friend, minutes=30, idempotency_key="f"
            )
        assert city.policy.name in str(caught.value.message)
        assert "not to a Friend" in str(caught.value.message)
    # and in Shanghai the same is allowed
    assert exchange.transfer_create(
        actor=station, giver=old_elder, receiver=helper, minutes=30, idempotency_key="f"
    ).created


def test_beijing_lets_minutes_pass_only_to_lineal_relatives(
    bj_family: tuple[Member, Member, Member], beijing: City
) -> None:
    husband, wife, daughter = bj_family
    # when 刘大爷 gives to his wife, then Beijing refuses (spouses are not lineal relatives)
    with translation.override("en"), refused("exchange_relation_not_allowed") as caught:
        exchange.transfer_create(
            actor=beijing.station, giver=husband, receiver=wife, minutes=30, idempotency_key="w"
        )
    assert "not to a Spouse" in str(caught.value.message)
    # and to his daughter it passes
    exchange.transfer_create(
        actor=beijing.station, giver=husband, receiver=daughter, minutes=30, idempotency_key="d"
    )
    assert balance(daughter) == (90, 0)


def test_minutes_do_not_cross_into_another_citys_currency_area(
    son: Member, nanjing: City, admin_user: User
) -> None:
    # given the son's verified friend lives in Nanjing
    friend = person(nanjing.station, nanjing.community, "赵伯伯", born=dt.date(1950, 1, 1))
    bond(son, friend, Relation.FRIEND, proposer=admin_user, decider=nanjing.reviewer)
    # when he gives to him, then the other currency area is named
    with refused("exchange_other_area"):
        exchange.transfer_create(
            actor=user_of(son), giver=son, receiver=friend, minutes=30, idempotency_key="x"
        )


# --- group time ---------------------------------------------------------------------------------------------


def test_in_nanjing_a_groups_time_is_only_donated(nanjing: City, nj_family: tuple[Member, Member]) -> None:
    # given a volunteer team of 梅园新村 with 10 hours earned together, and a verified bond to the mother
    mother, _son = nj_family
    team = person(
        nanjing.station,
        nanjing.community,
        "梅园志愿服务队",
        born=dt.date(1990, 1, 1),
        minutes=600,
        is_group=True,
    )
    bond(mother, team, Relation.FRIEND, proposer=nanjing.station, decider=nanjing.reviewer)
    # when the team transfers or gives, then it is refused naming the rule
    for gift in (False, True):
        with translation.override("en"), refused("exchange_group_donation_only") as caught:
            exchange.transfer_create(
                actor=nanjing.station, giver=team, receiver=mother, minutes=60, idempotency_key="t", gift=gift
            )
        assert (
            str(caught.value.message)
            == "Under 南京市时间银行 2019 time earned by a group may only be donated."
        )
    # and a donation to the pool is accepted
    exchange.donation_create(actor=nanjing.station, giver=team, minutes=600, idempotency_key="d")
    assert balance(team) == (0, 0) and pool_balance(nanjing.policy) == 600


def test_in_shanghai_a_group_may_give_to_a_friend(
    station: User, reviewer: User, tree: dict[str, Region], old_elder: Member
) -> None:
    team = person(
        station, tree["310101023001"], "雁荡志愿队", born=dt.date(1990, 1, 1), minutes=120, is_group=True
    )
    bond(old_elder, team, Relation.FRIEND, proposer=station, decider=reviewer)
    exchange.transfer_create(actor=station, giver=team, receiver=old_elder, minutes=60, idempotency_key="t")
    assert balance(old_elder) == (660, 0)


# --- the account cap ----------------------------------------------------------------------------------------


def test_in_nanjing_minutes_beyond_the_cap_go_to_the_pool_and_the_holder_is_told(
    nj_family: tuple[Member, Member], nanjing: City
) -> None:
    # given the mother holds 1,499 h 10 min of Nanjing's 1,500-hour cap
    mother, son = nj_family
    deposit(mother, 90_000 - 600 - 50)
    # when her son transfers 100 minutes
    with translation.override("en"):
        moved = exchange.transfer_create(
            actor=user_of(son), giver=son, receiver=mother, minutes=100, idempotency_key="cap"
        )
    # then 50 reach her, 50 go to the Nanjing pool, in one transaction, and she is told which
    assert moved.overflow == 50
    assert balance(mother) == (90_000, 0) and balance(son) == (200, 0)
    assert pool_balance(nanjing.policy) == 50
    assert Transaction.objects.get(pk=moved.transaction_id).postings.count() == 3
    notice = Notification.objects.get(recipient=user_of(mother), kind="exchange.overflow")
    with translation.override("en"):
        title, body = render(notice.kind, notice.params)
    assert title == "Your account reached its cap"
    assert body == (
        "50 min went into your account and 50 min, beyond its cap, to the mutual-aid pool, as "
        "南京市时间银行 2019 says."
    )
    assert AuditEvent.objects.get(event_type="exchange.transfer").new["overflow"] == 50


def test_a_retry_of_a_transfer_that_overflowed_is_the_same_transfer(nj_family: tuple[Member, Member]) -> None:
    # given a transfer that filled the mother's account and sent the rest to the pool
    mother, son = nj_family
    deposit(mother, 90_000 - 600 - 50)
    first = exchange.transfer_create(
        actor=user_of(son), giver=son, receiver=mother, minutes=100, idempotency_key="c"
    )
    # when the son's app retries it (the answer was lost on the way)
    again = exchange.transfer_create(
        actor=user_of(son), giver=son, receiver=mother, minutes=100, idempotency_key="c"
    )
    # then it is the same transfer, not an error
    assert (again.transaction_id, again.created, again.overflow) == (first.transaction_id, False, 50)
    assert balance(son) == (200, 0)


def test_where_the_policy_refuses_the_excess_nothing_passes_and_the_cap_is_named(
    nanjing: City, other_cities: dict[str, Region]
) -> None:
    # given 玄武区 takes Nanjing's rules but refuses what exceeds the cap
    variant("nanjing-2019", other_cities["320102"], cap_overflow="refuse")
    mother = person(nanjing.station, nanjing.community, "孙奶奶", born=dt.date(1950, 1, 1), minutes=89_950)
    son = person(nanjing.station, nanjing.community, "孙强", born=dt.date(1975, 1, 1), sex="M", minutes=300)
    bond(mother, son, Relation.CHILD, proposer=nanjing.station, decider=nanjing.reviewer)
    # when the son transfers 100 minutes, then it is refused, naming the cap, and nothing moves
    with translation.override("en"), refused("exchange_over_cap") as caught:
        exchange.transfer_create(
            actor=nanjing.station, giver=son, receiver=mother, minutes=100, idempotency_key="c"
        )
    assert str(caught.value.message) == (
        "The receiving account may hold at most 1500 h under its policy, which refuses the excess."
    )
    # and what fits still passes
    exchange.transfer_create(
        actor=nanjing.station, giver=son, receiver=mother, minutes=50, idempotency_key="d"
    )
    assert balance(mother) == (90_000, 0)


def test_an_english_reader_is_told_of_a_gift_in_english(son: Member, old_elder: Member) -> None:
    # given the son gives from the Chinese app
    with translation.override("zh-hans"):
        exchange.transfer_create(
            actor=user_of(son), giver=son, receiver=old_elder, minutes=90, idempotency_key="g", gift=True
        )
    # when his mother, who reads English, opens her notices
    notice = Notification.objects.get(recipient=user_of(old_elder), kind="exchange.received")
    with translation.override("en"):
        _title, body = render(notice.kind, notice.params)
    # then the minutes are in English too
    assert body == "王建国 gave you 1 h 30 min of time; they are in your time account."
