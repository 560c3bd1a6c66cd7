"""Properties of the ledger under random sequences of operations.

Whatever is asked, in whatever order — transfers larger than the balance, holds captured in part or whole or
released, reversals of anything including reversals, retries of used idempotency keys — each call either
does what a simple model of the ledger says or is refused with a ``LedgerError`` and writes nothing; minutes
are conserved, no member goes below its floor, every stored balance is the sum of its postings, held minutes
are the pending holds, and the verifier agrees, before and after sealing.

pytest-django's ``db`` fixture does not reset the database between Hypothesis examples, so every example
opens fresh accounts and measures against the state it started from.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from django.db.models import Sum
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from timebank.ledger import errors
from timebank.ledger import services as ledger
from timebank.ledger.engine import Held, Leg, Posted, PostRequest
from timebank.ledger.models import Account, AccountKind, Hold, HoldStatus, Posting, Transaction
from timebank.ledger.sealing import ledger_seal
from timebank.ledger.tests.conftest import key
from timebank.ledger.verify import ledger_verify
from timebank.regions.models import Region

T = TypeVar("T")
Snapshot = tuple[Any, ...]


def attempt(operation: Callable[[], T]) -> T | errors.LedgerError:
    """The result, or the ledger's refusal. Any other exception is a failure and propagates."""
    try:
        return operation()
    except errors.LedgerError as exc:
        return exc


def snapshot(account_ids: list[int]) -> Snapshot:
    """Everything a ledger call could write: row counts, and the balances and holds of the accounts."""
    return (
        Transaction.objects.count(),
        Posting.objects.count(),
        Hold.objects.count(),
        list(Hold.objects.filter(account_id__in=account_ids).order_by("pk").values_list("pk", "status")),
        list(
            Account.objects.filter(pk__in=account_ids)
            .order_by("pk")
            .values_list("pk", "balance", "held", "entries")
        ),
    )


def total_balance() -> int:
    return int(Account.objects.aggregate(total=Sum("balance"))["total"] or 0)


def assert_books_agree(account_ids: list[int]) -> None:
    """Each stored balance is the sum of its postings, held is the sum of pending holds, no floor broken."""
    postings = dict(
        Posting.objects.filter(account_id__in=account_ids)
        .values("account_id")
        .annotate(total=Sum("amount"))
        .values_list("account_id", "total")
    )
    pending = dict(
        Hold.objects.filter(account_id__in=account_ids, status=HoldStatus.PENDING)
        .values("account_id")
        .annotate(total=Sum("amount"))
        .values_list("account_id", "total")
    )
    for account in Account.objects.filter(pk__in=account_ids):
        assert account.balance == postings.get(account.pk, 0), account
        assert account.held == pending.get(account.pk, 0), account
        if account.floor is not None:
            assert account.balance - account.held >= account.floor, account


def assert_verifies() -> None:
    report = ledger_verify()
    assert report.ok, report.summary()
    ledger_seal(settle_seconds=0)
    report = ledger_verify()
    assert report.ok, report.summary()


@dataclass
class HoldModel:
    account: int
    amount: int
    status: str = HoldStatus.PENDING


@dataclass
class TxnModel:
    legs: dict[int, int]
    is_reversal: bool
    reversed: bool = False


@dataclass(frozen=True)
class Acknowledged:
    """A call the ledger accepted: the same call again must return ``result`` and write nothing; the same key
    with ``other`` parameters must be refused."""

    again: Callable[[], Posted | Held]
    other: Callable[[], Posted | Held]
    result: int


def ident(outcome: Posted | Held) -> tuple[int, bool]:
    if isinstance(outcome, Posted):
        return outcome.transaction_id, outcome.created
    return outcome.hold_id, outcome.created


class LedgerMachine(RuleBasedStateMachine):
    """A model of a few accounts (balances, held minutes, holds, transactions) run against the real ledger."""

    fund_id: int
    region: Region

    def __init__(self) -> None:
        super().__init__()
        self.total_at_start = total_balance()
        self.members: list[int] = []
        self.floor: dict[int, int | None] = {self.fund_id: None}
        fund = Account.objects.get(pk=self.fund_id)
        self.balance = {self.fund_id: fund.balance}
        self.held = {self.fund_id: fund.held}
        self.holds: dict[int, HoldModel] = {}
        self.txns: dict[int, TxnModel] = {}
        self.acknowledged: list[Acknowledged] = []

    @property
    def accounts(self) -> list[int]:
        return [*self.members, self.fund_id]

    # --- the model ------------------------------------------------------------------------------------------

    def allows(self, legs: dict[int, int]) -> bool:
        return all(
            self.floor[a] is None or self.balance[a] + m - self.held[a] >= (self.floor[a] or 0)
            for a, m in legs.items()
        )

    def apply(self, txn_id: int, legs: dict[int, int], *, is_reversal: bool = False) -> None:
        for account, minutes in legs.items():
            self.balance[account] += minutes
        self.txns[txn_id] = TxnModel(legs, is_reversal)

    def call(
        self,
        operation: Callable[[], T],
        refused: type[errors.LedgerError] | None,
    ) -> T | None:
        """Run ``operation``; if the model expects a refusal, check it is that one and wrote nothing."""
        before = snapshot(self.accounts)
        outcome = attempt(operation)
        if refused is not None:
            assert isinstance(outcome, refused), f"expected {refused.__name__}, got {outcome!r}"
            assert snapshot(self.accounts) == before, "a refused call wrote to the ledger"
            return None
        assert not isinstance(outcome, errors.LedgerError), (
            f"refused unexpectedly: {outcome!r} {outcome.extra}"
        )
        return outcome

    def acknowledge(
        self, again: Callable[[], Posted | Held], other: Callable[[], Posted | Held], outcome: Posted | Held
    ) -> int:
        result, created = ident(outcome)
        assert created
        self.acknowledged.append(Acknowledged(again, other, result))
        return result

    # --- rules ----------------------------------------------------------------------------------------------

    @initialize(
        minutes=st.lists(st.integers(0, 400), min_size=3, max_size=3),
        credit_line=st.sampled_from([0, -60]),
    )
    def open_accounts(self, minutes: list[int], credit_line: int) -> None:
        for i, amount in enumerate(minutes):
            floor = credit_line if i == 2 else 0
            account = ledger.account_open(kind=AccountKind.MEMBER, region=self.region, floor=floor)
            self.members.append(account.pk)
            self.floor[account.pk], self.balance[account.pk], self.held[account.pk] = floor, 0, 0
            if amount:
                posted = ledger.transfer(
                    idempotency_key=key("fund"),
                    source=self.fund_id,
                    destination=account.pk,
                    minutes=amount,
                    kind="funding",
                )
                self.apply(posted.transaction_id, {self.fund_id: -amount, account.pk: amount})

    @rule(data=st.data(), minutes=st.integers(1, 500))
    def transfer(self, data: st.DataObject, minutes: int) -> None:
        source, destination = data.draw(st.permutations(self.accounts))[:2]
        k = key("transfer")

        def post(amount: int = minutes) -> Posted:
            return ledger.transfer(idempotency_key=k, source=source, destination=destination, minutes=amount)

        legs = {source: -minutes, destination: minutes}
        outcome = self.call(post, None if self.allows(legs) else errors.InsufficientFunds)
        if outcome is not None:
            self.apply(self.acknowledge(post, lambda: post(minutes + 1), outcome), legs)

    @rule(data=st.data(), minutes=st.integers(1, 500))
    def place_hold(self, data: st.DataObject, minutes: int) -> None:
        account = data.draw(st.sampled_from(self.members))
        k = key("hold")

        def place(amount: int = minutes) -> Held:
            return ledger.hold_place(idempotency_key=k, account_id=account, minutes=amount)

        outcome = self.call(place, None if self.allows({account: -minutes}) else errors.InsufficientFunds)
        if outcome is not None:
            hold_id = self.acknowledge(place, lambda: place(minutes + 1), outcome)
            self.holds[hold_id] = HoldModel(account, minutes)
            self.held[account] += minutes

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def capture_hold(self, data: st.DataObject) -> None:
        hold_id = data.draw(st.sampled_from(sorted(self.holds)))
        hold = self.holds[hold_id]
        taken = data.draw(
            st.one_of(
                st.just(hold.amount),
                st.integers(1, hold.amount),
                st.integers(hold.amount + 1, hold.amount + 50),
            )
        )
        destination = data.draw(st.sampled_from([a for a in self.accounts if a != hold.account]))
        request = PostRequest(
            idempotency_key=key("capture"),
            kind="service_payment",
            legs=(Leg(hold.account, -taken), Leg(destination, taken)),
        )

        def capture(request: PostRequest = request) -> Posted:
            return ledger.hold_capture(hold_id=hold_id, request=request)

        if hold.status != HoldStatus.PENDING:
            refused: type[errors.LedgerError] | None = errors.HoldNotPending
        elif taken > hold.amount:
            refused = errors.HoldExceeded
        else:
            refused = None
        outcome = self.call(capture, refused)
        if outcome is not None:
            other = dataclasses.replace(request, memo="another capture")
            txn_id = self.acknowledge(capture, lambda: capture(other), outcome)
            self.held[hold.account] -= hold.amount
            hold.status = HoldStatus.CAPTURED
            self.apply(txn_id, {hold.account: -taken, destination: taken})

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def release_hold(self, data: st.DataObject) -> None:
        hold_id = data.draw(st.sampled_from(sorted(self.holds)))
        hold = self.holds[hold_id]
        before = snapshot(self.accounts)
        outcome = self.call(
            lambda: ledger.hold_release(hold_id=hold_id),
            errors.HoldNotPending if hold.status == HoldStatus.CAPTURED else None,
        )
        if outcome is None:
            return
        assert outcome == HoldStatus.RELEASED
        if hold.status == HoldStatus.RELEASED:
            assert snapshot(self.accounts) == before, "releasing a released hold wrote to the ledger"
            return
        hold.status = HoldStatus.RELEASED
        self.held[hold.account] -= hold.amount

    @precondition(lambda self: self.txns)
    @rule(data=st.data())
    def reverse(self, data: st.DataObject) -> None:
        txn_id = data.draw(st.sampled_from(sorted(self.txns)))
        original = self.txns[txn_id]
        k = key("reversal")

        def reverse(memo: str = "entered by mistake") -> Posted:
            return ledger.transaction_reverse(idempotency_key=k, transaction_id=txn_id, memo=memo)

        legs = {account: -minutes for account, minutes in original.legs.items()}
        if original.is_reversal:
            refused: type[errors.LedgerError] | None = errors.ReversalOfReversal
        elif original.reversed:
            refused = errors.AlreadyReversed
        elif not self.allows(legs):
            refused = errors.InsufficientFunds
        else:
            refused = None
        outcome = self.call(reverse, refused)
        if outcome is not None:
            original.reversed = True
            self.apply(
                self.acknowledge(reverse, lambda: reverse("another memo"), outcome), legs, is_reversal=True
            )

    @precondition(lambda self: self.acknowledged)
    @rule(data=st.data())
    def retry_with_the_same_parameters(self, data: st.DataObject) -> None:
        done = data.draw(st.sampled_from(self.acknowledged))
        before = snapshot(self.accounts)
        outcome = attempt(done.again)
        assert not isinstance(outcome, errors.LedgerError), f"a retry was refused: {outcome!r}"
        assert ident(outcome) == (done.result, False)
        assert snapshot(self.accounts) == before, "a retry wrote to the ledger"

    @precondition(lambda self: self.acknowledged)
    @rule(data=st.data())
    def retry_with_other_parameters(self, data: st.DataObject) -> None:
        done = data.draw(st.sampled_from(self.acknowledged))
        self.call(done.other, errors.IdempotencyConflict)

    # --- invariants -----------------------------------------------------------------------------------------

    @invariant()
    def the_ledger_matches_the_model(self) -> None:
        stored = {
            pk: (balance, held)
            for pk, balance, held in Account.objects.filter(pk__in=self.accounts).values_list(
                "pk", "balance", "held"
            )
        }
        assert stored == {a: (self.balance[a], self.held[a]) for a in self.accounts}
        for account in self.members:
            assert self.balance[account] - self.held[account] >= (self.floor[account] or 0)

    @invariant()
    def minutes_are_conserved(self) -> None:
        assert total_balance() == self.total_at_start

    def teardown(self) -> None:
        if not self.members:
            return
        assert_books_agree(self.accounts)
        assert_verifies()


@pytest.fixture
def machine(fund: Account, shanghai: Region) -> type[LedgerMachine]:
    return type("ShanghaiLedgerMachine", (LedgerMachine,), {"fund_id": fund.pk, "region": shanghai})


def test_random_operation_sequences_keep_the_books(machine: type[LedgerMachine]) -> None:
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            # No shrinking: every attempt replays a program against a database that keeps all earlier
            # examples' rows, so shrinking takes minutes; a failing program of 30 steps is readable as it is.
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
        ),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    opening=st.lists(st.integers(0, 300), min_size=3, max_size=3),
    moves=st.lists(
        st.tuples(
            st.integers(0, 2),
            st.integers(1, 2),
            st.integers(1, 400),
            st.sampled_from(["new", "same key, same request", "same key, other request"]),
        ),
        min_size=1,
        max_size=15,
    ),
)
def test_random_transfers_succeed_exactly_when_covered_and_refusals_write_nothing(
    fund: Account, shanghai: Region, opening: list[int], moves: list[tuple[int, int, int, str]]
) -> None:
    # given three fresh accounts
    total = total_balance()
    accounts = []
    for minutes in opening:
        account = ledger.account_open(kind=AccountKind.MEMBER, region=shanghai)
        if minutes:
            ledger.transfer(
                idempotency_key=key("fund"), source=fund.pk, destination=account.pk, minutes=minutes
            )
        accounts.append(account.pk)
    expected = dict(zip(accounts, opening, strict=True))
    ids = [*accounts, fund.pk]
    last: tuple[str, int, int, int, int] | None = None  # key, source, destination, minutes, transaction

    def move(k: str, source: int, destination: int, minutes: int) -> Posted | errors.LedgerError:
        return attempt(
            functools.partial(
                ledger.transfer, idempotency_key=k, source=source, destination=destination, minutes=minutes
            )
        )

    for source_index, step, minutes, how in moves:
        source, destination = accounts[source_index], accounts[(source_index + step) % 3]
        before = snapshot(ids)

        if how == "new" or last is None:
            # when
            k = key("move")
            outcome = move(k, source, destination, minutes)

            # then: accepted exactly when the source has the minutes
            if minutes <= expected[source]:
                assert isinstance(outcome, Posted) and outcome.created, outcome
                expected[source] -= minutes
                expected[destination] += minutes
                last = (k, source, destination, minutes, outcome.transaction_id)
            else:
                assert isinstance(outcome, errors.InsufficientFunds), outcome
                assert snapshot(ids) == before
        elif how == "same key, same request":
            k, s, d, m, txn_id = last
            assert move(k, s, d, m) == Posted(txn_id, created=False)
            assert snapshot(ids) == before
        else:
            k, s, d, m, _ = last
            outcome = move(k, s, d, m + minutes)
            assert isinstance(outcome, errors.IdempotencyConflict), outcome
            assert snapshot(ids) == before

    # then
    stored = dict(Account.objects.filter(pk__in=accounts).values_list("pk", "balance"))
    assert stored == expected
    assert total_balance() == total
    assert_books_agree(ids)


# --- examples the properties found, kept as plain tests -----------------------------------------------------


def test_retrying_a_hold_with_its_key_returns_it_and_holds_nothing_more(alice: Account) -> None:
    # given
    first = ledger.hold_place(idempotency_key="order-7", account_id=alice.pk, minutes=400)

    # when
    again = attempt(lambda: ledger.hold_place(idempotency_key="order-7", account_id=alice.pk, minutes=400))

    # then
    assert again == Held(first.hold_id, created=False)
    alice.refresh_from_db()
    assert (alice.balance, alice.held) == (600, 400)
    assert_books_agree([alice.pk])


def test_a_hold_key_reused_with_other_minutes_is_an_idempotency_conflict(alice: Account) -> None:
    # given
    ledger.hold_place(idempotency_key="order-8", account_id=alice.pk, minutes=400)

    # when
    other = attempt(lambda: ledger.hold_place(idempotency_key="order-8", account_id=alice.pk, minutes=401))

    # then
    assert isinstance(other, errors.IdempotencyConflict), repr(other)
    alice.refresh_from_db()
    assert (alice.balance, alice.held) == (600, 400)


def test_verify_passes_on_a_sealed_ledger(alice: Account, bob: Account) -> None:
    # given
    ledger.transfer(idempotency_key=key(), source=alice.pk, destination=bob.pk, minutes=30)

    # when / then
    assert_verifies()
