"""Many callers at once (PostgreSQL): the ledger's rules hold under contention.

Every thread has its own database connection (Django's are per thread) and closes it when done. Threads
start together at a barrier. The only errors a caller may see are the ledger's refusals that the state of
the books explains (not enough minutes, a hold already closed, a transaction already reversed); a deadlock
or serialization failure must never reach a caller, and a retry with a used idempotency key must never
make a second transaction.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import DatabaseError, connection
from django.db.models import Count, Sum

from timebank.ledger import engine, errors
from timebank.ledger import services as ledger
from timebank.ledger.engine import Held, Leg, Posted, PostRequest
from timebank.ledger.models import Account, Hold, HoldStatus, Posting, Transaction
from timebank.ledger.sealing import ledger_seal
from timebank.ledger.tests.conftest import funded, key
from timebank.ledger.verify import ledger_verify
from timebank.regions.models import Region

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgres_only")]

EXPLAINED = (
    errors.InsufficientFunds,
    errors.HoldNotPending,
    errors.AlreadyReversed,
    errors.ReversalOfReversal,
)
JOIN_TIMEOUT = 60


def run_together(count: int, work: Callable[[int], object]) -> list[tuple[int, BaseException]]:
    """Run ``work(0)`` … ``work(count - 1)`` in threads released together; return what escaped them."""
    barrier = threading.Barrier(count)
    escaped: list[tuple[int, BaseException]] = []

    def target(index: int) -> None:
        try:
            barrier.wait(timeout=JOIN_TIMEOUT)
            work(index)
        except BaseException as exc:
            escaped.append((index, exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,), name=f"ledger-{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    return escaped


@pytest.fixture
def retryable_errors(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Deadlocks and serialization failures the engine met, even those it retried out of sight."""
    seen: list[str] = []
    original = engine._is_retryable

    def counting(exc: DatabaseError) -> bool:
        retryable = original(exc)
        if retryable:
            seen.append(str(exc))
        return retryable

    monkeypatch.setattr(engine, "_is_retryable", counting)
    return seen


def assert_sealed_and_verified() -> None:
    ledger_seal(settle_seconds=0)
    try:
        report = ledger_verify()
    except Exception:
        connection.close()  # a failed verify can leave the connection mid-transaction; don't spoil the flush
        raise
    assert report.ok, report.summary()


# --- the stress test ----------------------------------------------------------------------------------------

THREADS = 16
OPERATIONS = 60
ACCOUNTS = 10
OPENING = 2_000


@dataclass(frozen=True)
class Operation:
    name: str
    key: str  # "" for a hold release, which has no key
    run: Callable[[], Any]
    reserves: tuple[int, int] | None = None  # account and minutes, for a hold


@dataclass(frozen=True)
class Call:
    key: str
    name: str
    started: float
    ended: float
    result: int | None  # transaction or hold id
    error: BaseException | None


@dataclass
class Books:
    """What the callers were told, shared by all threads (under ``lock``)."""

    accounts: list[int]
    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: list[Call] = field(default_factory=list)
    transactions: list[int] = field(default_factory=list)
    holds: list[tuple[int, int, int]] = field(default_factory=list)  # hold id, account, minutes
    published: deque[Operation] = field(default_factory=deque)

    def record(self, operation: Operation, started: float, outcome: Any, error: BaseException | None) -> None:
        result = None
        if isinstance(outcome, Posted):
            result = outcome.transaction_id
        elif isinstance(outcome, Held):
            result = outcome.hold_id
        with self.lock:
            self.calls.append(Call(operation.key, operation.name, started, time.monotonic(), result, error))
            if isinstance(outcome, Posted) and outcome.created:
                self.transactions.append(outcome.transaction_id)
            if isinstance(outcome, Held) and outcome.created and operation.reserves is not None:
                self.holds.append((outcome.hold_id, *operation.reserves))

    def execute(self, operation: Operation) -> None:
        started = time.monotonic()
        try:
            outcome = operation.run()
        except Exception as exc:
            self.record(operation, started, None, exc)
        else:
            self.record(operation, started, outcome, None)

    def random_operation(self, rng: random.Random) -> Operation:
        roll = rng.random()
        with self.lock:
            holds = list(self.holds)
            transactions = list(self.transactions)
        if roll < 0.2:
            account, minutes = rng.choice(self.accounts), rng.randint(1, 400)
            k = key("stress-hold")
            return Operation(
                "hold",
                k,
                lambda: ledger.hold_place(idempotency_key=k, account_id=account, minutes=minutes),
                reserves=(account, minutes),
            )
        if roll < 0.35 and holds:
            hold_id, account, minutes = rng.choice(holds)
            destination = rng.choice([a for a in self.accounts if a != account])
            taken = rng.choice([minutes, rng.randint(1, minutes)])
            request = PostRequest(
                idempotency_key=key("stress-capture"),
                kind="service_payment",
                legs=(Leg(account, -taken), Leg(destination, taken)),
            )
            return Operation(
                "capture",
                request.idempotency_key,
                lambda: ledger.hold_capture(hold_id=hold_id, request=request),
            )
        if roll < 0.45 and holds:
            hold_id = rng.choice(holds)[0]
            return Operation("release", "", lambda: ledger.hold_release(hold_id=hold_id))
        if roll < 0.6 and transactions:
            original = rng.choice(transactions)
            k = key("stress-reversal")
            return Operation(
                "reversal",
                k,
                lambda: ledger.transaction_reverse(idempotency_key=k, transaction_id=original, memo="stress"),
            )
        source, destination = rng.sample(self.accounts, 2)
        minutes = rng.randint(1, 700)
        k = key("stress-transfer")
        return Operation(
            "transfer",
            k,
            lambda: ledger.transfer(
                idempotency_key=k, source=source, destination=destination, minutes=minutes
            ),
        )

    def worker(self, index: int) -> None:
        rng = random.Random(7_919 * (index + 1))
        for _ in range(OPERATIONS):
            with self.lock:
                retry = self.published.popleft() if self.published else None
            if retry is not None:
                self.execute(retry)  # another thread's operation, retried with its key and parameters
            operation = self.random_operation(rng)
            roll = rng.random()
            if operation.key and roll < 0.1:
                with self.lock:
                    self.published.append(operation)  # may run in another thread while it runs here
            self.execute(operation)
            if operation.key and 0.1 <= roll < 0.2:
                self.execute(operation)
        while True:
            with self.lock:
                if not self.published:
                    return
                retry = self.published.popleft()
            self.execute(retry)


def test_many_callers_posting_at_once_keep_the_books(fund: Account, shanghai: Region) -> None:
    # given ten funded accounts
    accounts = [funded(fund, shanghai, OPENING).pk for _ in range(ACCOUNTS)]
    books = Books(accounts=accounts)
    ids = [*accounts, fund.pk]
    total_before = Account.objects.filter(pk__in=ids).aggregate(total=Sum("balance"))["total"]
    transactions_before = Transaction.objects.count()
    holds_before = Hold.objects.count()

    # when sixteen threads post transfers, holds, captures, releases and reversals, retrying some
    escaped = run_together(THREADS, books.worker)

    # then nothing but the ledger's explained refusals reached a caller
    assert escaped == []
    unexplained = [
        (c.name, c.key, repr(c.error)) for c in books.calls if c.error and not isinstance(c.error, EXPLAINED)
    ]
    assert unexplained == []
    refusals = Counter(type(c.error).__name__ for c in books.calls if c.error)
    acknowledged = [c for c in books.calls if c.error is None]
    assert len(acknowledged) > THREADS * OPERATIONS // 2, refusals

    # minutes are conserved, and no member ever went below zero
    assert Account.objects.filter(pk__in=ids).aggregate(total=Sum("balance"))["total"] == total_before
    assert Account.objects.aggregate(total=Sum("balance"))["total"] == 0
    assert not Posting.objects.filter(account__floor=0, balance_after__lt=0).exists()
    for account in Account.objects.filter(pk__in=accounts):
        assert account.floor is not None
        assert account.balance - account.held >= account.floor, account

    # each stored balance is the sum of its postings, and held minutes are the pending holds
    postings = dict(
        Posting.objects.filter(account_id__in=ids)
        .values("account_id")
        .annotate(total=Sum("amount"))
        .values_list("account_id", "total")
    )
    pending = dict(
        Hold.objects.filter(account_id__in=ids, status=HoldStatus.PENDING)
        .values("account_id")
        .annotate(total=Sum("amount"))
        .values_list("account_id", "total")
    )
    stored = {a.pk: (a.balance, a.held) for a in Account.objects.filter(pk__in=ids)}
    assert stored == {pk: (postings.get(pk, 0), pending.get(pk, 0)) for pk in ids}

    # every key made one transaction (or hold) at most, and every caller of a key was told the same id
    by_key: dict[str, set[int]] = defaultdict(set)
    for c in acknowledged:
        if c.key and c.result is not None:
            by_key[c.key].add(c.result)
    assert {k: v for k, v in by_key.items() if len(v) != 1} == {}
    transaction_keys = {k for k in by_key if not k.startswith("stress-hold")}
    hold_keys = set(by_key) - transaction_keys
    assert Transaction.objects.count() - transactions_before == len(transaction_keys)
    assert Hold.objects.count() - holds_before == len(hold_keys)
    per_key = (
        Transaction.objects.filter(idempotency_key__in=transaction_keys)
        .values("idempotency_key")
        .annotate(n=Count("id"))
    )
    assert {row["idempotency_key"]: row["n"] for row in per_key} == dict.fromkeys(transaction_keys, 1)
    acknowledged_ids = {c.result for c in acknowledged if c.key in transaction_keys}
    assert Transaction.objects.filter(pk__in=acknowledged_ids).count() == len(acknowledged_ids)
    assert (
        set(Transaction.objects.filter(pk__in=acknowledged_ids).values_list("idempotency_key", flat=True))
        == transaction_keys
    )

    # once a key was acknowledged, every later call with it was told the same
    first_success: dict[str, Call] = {}
    for c in sorted(acknowledged, key=lambda c: c.ended):
        if c.key:
            first_success.setdefault(c.key, c)
    late = [
        (c.name, c.key, repr(c.error) if c.error else c.result, first_success[c.key].result)
        for c in books.calls
        if c.key in first_success
        and c.started > first_success[c.key].ended
        and c.result != first_success[c.key].result
    ]
    assert late == []

    # and the books verify after sealing
    assert_sealed_and_verified()


# --- focused tests ------------------------------------------------------------------------------------------


def test_transfers_in_opposite_directions_never_deadlock(
    fund: Account, shanghai: Region, retryable_errors: list[str]
) -> None:
    # given
    a, b = funded(fund, shanghai, 1_000), funded(fund, shanghai, 1_000)
    rounds = 250
    refused: list[BaseException] = []

    def work(index: int) -> None:
        source, destination = (a.pk, b.pk) if index == 0 else (b.pk, a.pk)
        for n in range(rounds):
            try:
                ledger.transfer(
                    idempotency_key=key(f"ab-{index}"),
                    source=source,
                    destination=destination,
                    minutes=1 + n % 7,
                )
            except errors.InsufficientFunds as exc:
                refused.append(exc)

    # when
    escaped = run_together(2, work)

    # then: no error reached a caller, and the engine met no deadlock to retry either (accounts are locked
    # in id order)
    assert escaped == []
    assert retryable_errors == []
    assert refused == []
    balances = dict(Account.objects.filter(pk__in=[a.pk, b.pk]).values_list("pk", "balance"))
    assert balances[a.pk] + balances[b.pk] == 2_000
    assert Transaction.objects.filter(kind="transfer").count() == 2 * rounds
    assert_sealed_and_verified()


def test_the_same_key_posted_by_eight_callers_at_once_makes_one_transaction(
    fund: Account, shanghai: Region
) -> None:
    # given
    a, b = funded(fund, shanghai, 600), funded(fund, shanghai, 0)
    results: list[Posted] = []

    def work(index: int) -> None:
        results.append(
            ledger.transfer(idempotency_key="same-visit", source=a.pk, destination=b.pk, minutes=90)
        )

    # when
    escaped = run_together(8, work)

    # then
    assert escaped == []
    assert len({r.transaction_id for r in results}) == 1 and len(results) == 8
    assert sorted(r.created for r in results) == [False] * 7 + [True]
    assert Transaction.objects.filter(idempotency_key="same-visit").count() == 1
    assert dict(Account.objects.filter(pk__in=[a.pk, b.pk]).values_list("pk", "balance")) == {
        a.pk: 510,
        b.pk: 90,
    }


def test_the_same_hold_key_placed_by_eight_callers_at_once_holds_once(
    fund: Account, shanghai: Region
) -> None:
    # given
    a = funded(fund, shanghai, 600)
    results: list[Held] = []

    def work(index: int) -> None:
        results.append(ledger.hold_place(idempotency_key="same-order", account_id=a.pk, minutes=100))

    # when
    escaped = run_together(8, work)

    # then
    assert escaped == []
    assert len({r.hold_id for r in results}) == 1 and len(results) == 8
    assert Hold.objects.filter(idempotency_key="same-order").count() == 1
    a.refresh_from_db()
    assert (a.balance, a.held) == (600, 100)


def test_the_same_capture_sent_by_eight_callers_at_once_is_told_the_same(
    fund: Account, shanghai: Region
) -> None:
    # given a pending hold
    a, b = funded(fund, shanghai, 600), funded(fund, shanghai, 0)
    hold = ledger.hold_place(idempotency_key=key("hold"), account_id=a.pk, minutes=300)
    request = PostRequest(
        idempotency_key="same-capture", kind="service_payment", legs=(Leg(a.pk, -240), Leg(b.pk, 240))
    )
    results: list[Posted] = []

    def work(index: int) -> None:
        results.append(ledger.hold_capture(hold_id=hold.hold_id, request=request))

    # when
    escaped = run_together(8, work)

    # then every caller is told the one capture, as a retry after it would be
    assert [repr(exc) for _, exc in escaped] == []
    assert len({r.transaction_id for r in results}) == 1 and len(results) == 8
    assert Transaction.objects.filter(idempotency_key="same-capture").count() == 1
    a.refresh_from_db()
    assert (a.balance, a.held) == (360, 0)
