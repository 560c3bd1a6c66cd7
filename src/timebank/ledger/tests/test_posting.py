"""Posting: double entry in integer minutes, no overdraft, caps, one currency area, idempotency, reversal."""

from __future__ import annotations

import pytest

from timebank.ledger import errors
from timebank.ledger import services as ledger
from timebank.ledger.engine import Leg, PostRequest
from timebank.ledger.models import Account, AccountKind, Posting, Transaction
from timebank.ledger.tests.conftest import funded, key


def balances(*accounts: Account) -> list[tuple[int, int]]:
    return [
        (a.balance, a.held) for a in Account.objects.filter(pk__in=[x.pk for x in accounts]).order_by("pk")
    ]


def test_a_transfer_moves_minutes_and_records_running_balances(alice, bob):
    # when
    posted = ledger.transfer(
        idempotency_key=key(), source=alice.pk, destination=bob.pk, minutes=90, memo="visit"
    )

    # then
    assert posted.created
    alice.refresh_from_db()
    bob.refresh_from_db()
    assert (alice.balance, bob.balance) == (510, 90)
    postings = {p.account_id: p for p in Posting.objects.filter(transaction_id=posted.transaction_id)}
    assert postings[alice.pk].amount == -90 and postings[alice.pk].balance_after == 510
    assert postings[bob.pk].amount == 90 and postings[bob.pk].balance_after == 90


def test_no_overdraft(alice, bob):
    # when / then
    with pytest.raises(errors.InsufficientFunds) as exc:
        ledger.transfer(idempotency_key=key(), source=alice.pk, destination=bob.pk, minutes=601)
    assert exc.value.code == "ledger_insufficient_funds"
    assert balances(alice, bob) == [(600, 0), (0, 0)]
    assert not Transaction.objects.filter(kind="transfer").exists()


def test_a_credit_line_lets_a_member_go_that_far_below_zero(fund, shanghai, bob):
    # given an account with a 60-minute credit line
    account = funded(fund, shanghai, 0, floor=-60)

    # when
    ledger.transfer(idempotency_key=key(), source=account.pk, destination=bob.pk, minutes=60)

    # then: to -60 and no further
    with pytest.raises(errors.InsufficientFunds):
        ledger.transfer(idempotency_key=key(), source=account.pk, destination=bob.pk, minutes=1)
    account.refresh_from_db()
    assert account.balance == -60


def test_the_cap_refuses_a_deposit_beyond_it(fund, shanghai, alice):
    # given a Nanjing-style cap
    capped = funded(fund, shanghai, 0, cap=90_000)
    ledger.transfer(idempotency_key=key(), source=fund.pk, destination=capped.pk, minutes=89_990)

    # when / then
    with pytest.raises(errors.OverCap):
        ledger.transfer(idempotency_key=key(), source=alice.pk, destination=capped.pk, minutes=11)
    capped.refresh_from_db()
    assert capped.balance == 89_990


@pytest.mark.parametrize("minutes", [0, -5, 1.5, True, "10"])
def test_amounts_are_positive_whole_minutes(alice, bob, minutes):
    with pytest.raises(errors.InvalidAmount):
        ledger.transfer(idempotency_key=key(), source=alice.pk, destination=bob.pk, minutes=minutes)
    assert Transaction.objects.filter(kind="transfer").count() == 0


def test_postings_must_sum_to_zero(alice, bob):
    with pytest.raises(errors.Unbalanced):
        ledger.transaction_post(
            PostRequest(idempotency_key=key(), kind="transfer", legs=(Leg(alice.pk, -10), Leg(bob.pk, 9)))
        )


def test_unknown_and_closed_accounts_are_refused(alice, fund, shanghai):
    with pytest.raises(errors.AccountNotFound):
        ledger.transfer(idempotency_key=key(), source=alice.pk, destination=999_999, minutes=5)
    empty = funded(fund, shanghai, 0)
    ledger.account_close(account=empty)
    with pytest.raises(errors.AccountClosed):
        ledger.transfer(idempotency_key=key(), source=alice.pk, destination=empty.pk, minutes=5)
    assert balances(alice) == [(600, 0)]


def test_accounts_of_different_currency_areas_do_not_mix(alice, beijing):
    # given a Beijing account
    other = ledger.account_open(kind=AccountKind.MEMBER, region=beijing)

    # when / then
    with pytest.raises(errors.AreaMismatch):
        ledger.transfer(idempotency_key=key(), source=alice.pk, destination=other.pk, minutes=5)


def test_a_retry_with_the_same_key_returns_the_first_result(alice, bob):
    # given
    first = ledger.transfer(idempotency_key="visit-42", source=alice.pk, destination=bob.pk, minutes=30)

    # when
    again = ledger.transfer(idempotency_key="visit-42", source=alice.pk, destination=bob.pk, minutes=30)

    # then
    assert again.transaction_id == first.transaction_id and not again.created
    assert balances(alice, bob) == [(570, 0), (30, 0)]


def test_the_same_key_with_other_parameters_is_an_error(alice, bob):
    ledger.transfer(idempotency_key="visit-43", source=alice.pk, destination=bob.pk, minutes=30)
    with pytest.raises(errors.IdempotencyConflict) as exc:
        ledger.transfer(idempotency_key="visit-43", source=alice.pk, destination=bob.pk, minutes=31)
    assert exc.value.status == 409
    assert balances(alice, bob) == [(570, 0), (30, 0)]


def test_a_reversal_negates_the_original_once(alice, bob):
    # given
    posted = ledger.transfer(idempotency_key=key(), source=alice.pk, destination=bob.pk, minutes=45)

    # when
    reversal = ledger.transaction_reverse(
        idempotency_key=key(), transaction_id=posted.transaction_id, memo="wrong"
    )

    # then
    assert balances(alice, bob) == [(600, 0), (0, 0)]
    assert Transaction.objects.get(pk=reversal.transaction_id).reverses_id == posted.transaction_id
    with pytest.raises(errors.AlreadyReversed):
        ledger.transaction_reverse(idempotency_key=key(), transaction_id=posted.transaction_id, memo="again")
    with pytest.raises(errors.ReversalOfReversal):
        ledger.transaction_reverse(idempotency_key=key(), transaction_id=reversal.transaction_id, memo="undo")


def test_a_hold_reserves_minutes_until_captured_or_released(alice, bob):
    # given
    held = ledger.hold_place(idempotency_key=key(), account_id=alice.pk, minutes=500)
    assert balances(alice) == [(600, 500)]

    # then the held minutes cannot be spent elsewhere
    with pytest.raises(errors.InsufficientFunds):
        ledger.transfer(idempotency_key=key(), source=alice.pk, destination=bob.pk, minutes=101)

    # when captured for less than was held
    request = PostRequest(
        idempotency_key=key(), kind="service_payment", legs=(Leg(alice.pk, -420), Leg(bob.pk, 420))
    )
    posted = ledger.hold_capture(hold_id=held.hold_id, request=request)

    # then the rest is free again, and the hold is closed
    assert posted.created
    assert balances(alice, bob) == [(180, 0), (420, 0)]
    with pytest.raises(errors.HoldNotPending):
        ledger.hold_release(hold_id=held.hold_id)


def test_a_released_hold_frees_its_minutes(alice):
    held = ledger.hold_place(idempotency_key=key(), account_id=alice.pk, minutes=100)
    assert ledger.hold_release(hold_id=held.hold_id) == "released"
    assert ledger.hold_release(hold_id=held.hold_id) == "released"  # again: nothing changes
    assert balances(alice) == [(600, 0)]


def test_a_hold_beyond_the_available_balance_is_refused(alice):
    with pytest.raises(errors.InsufficientFunds):
        ledger.hold_place(idempotency_key=key(), account_id=alice.pk, minutes=601)
    assert balances(alice) == [(600, 0)]


def test_a_batch_is_posted_whole_or_not_at_all(alice, bob):
    # given a batch whose last transfer overdraws
    good = [
        PostRequest(idempotency_key=key(), kind="transfer", legs=(Leg(alice.pk, -100), Leg(bob.pk, 100)))
        for _ in range(3)
    ]
    bad = PostRequest(idempotency_key=key(), kind="transfer", legs=(Leg(alice.pk, -400), Leg(bob.pk, 400)))

    # when / then
    with pytest.raises(errors.InsufficientFunds):
        ledger.transactions_post_batch([*good, bad])
    assert balances(alice, bob) == [(600, 0), (0, 0)]
    posted = ledger.transactions_post_batch(good)
    assert [p.created for p in posted] == [True, True, True]
    assert balances(alice, bob) == [(300, 0), (300, 0)]
