"""``ledger verify`` finds any single edited, deleted, inserted or reordered row, and names the first one.

The rows are changed with raw SQL while the triggers that protect them are off, as someone with direct access
to the database could: on PostgreSQL with ``session_replication_role = replica``, on SQLite by dropping the
append-only triggers (inside the test's transaction, which is rolled back).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.backends.utils import CursorWrapper

from timebank.ledger import services as ledger
from timebank.ledger.models import Account, Block, BlockEntry, Posting
from timebank.ledger.sealing import ledger_seal
from timebank.ledger.tests.conftest import funded, key
from timebank.ledger.verify import Report, ledger_verify
from timebank.regions.models import Region

APPEND_ONLY_TABLES = (
    "ledger_transaction",
    "ledger_posting",
    "ledger_block",
    "ledger_blockentry",
    "ledger_signingkey",
)


@dataclass(frozen=True)
class Book:
    """A small ledger. Entry numbers per account (a, b, c):
    F1 fund→a 600 (a1) · F2 fund→b 300 (b1) · F3 fund→c 300 (c1) · t1 a→b 90 (a2 b2) · t2 b→c 30 (b3 c2) ·
    t3 c→a 50 (c3 a3) · r1 reverses t2 (b4 c4) · hold of 100 on a — all sealed in block 1;
    t4 a→b 20 (a4 b5) sealed in block 2; t5 a→c 10 (a5 c5) and t6 b→a 5 (b6 a6) unsealed."""

    fund: int
    a: int
    b: int
    c: int
    t1: int
    t2: int
    t3: int
    r1: int
    t4: int
    t5: int
    t6: int
    hold: int


@pytest.fixture
def book(fund: Account, shanghai: Region, settings, tmp_path, django_capture_on_commit_callbacks) -> Book:
    # The sealer witnesses each block outside the database, as in production (LEDGER_WITNESS_FILE).
    settings.LEDGER_WITNESS_FILE = str(tmp_path / "witness.log")
    a, b, c = (funded(fund, shanghai, minutes) for minutes in (600, 300, 300))

    def move(source: Account, destination: Account, minutes: int) -> int:
        return ledger.transfer(
            idempotency_key=key("tamper"),
            source=source.pk,
            destination=destination.pk,
            minutes=minutes,
            memo=f"visit of {minutes} minutes",
        ).transaction_id

    t1, t2, t3 = move(a, b, 90), move(b, c, 30), move(c, a, 50)
    r1 = ledger.transaction_reverse(idempotency_key=key(), transaction_id=t2, memo="wrong visit")
    hold = ledger.hold_place(idempotency_key=key(), account_id=a.pk, minutes=100)
    with django_capture_on_commit_callbacks(execute=True):
        first = ledger_seal(settle_seconds=0)
    t4 = move(a, b, 20)
    with django_capture_on_commit_callbacks(execute=True):
        second = ledger_seal(settle_seconds=0)
    t5, t6 = move(a, c, 10), move(b, a, 5)
    assert first is not None and first.seq == 1 and first.last_txn_id == r1.transaction_id
    assert second is not None and second.seq == 2 and (second.first_txn_id, second.tx_count) == (t4, 1)
    assert not BlockEntry.objects.filter(transaction_id__in=[t5, t6]).exists()
    return Book(fund.pk, a.pk, b.pk, c.pk, t1, t2, t3, r1.transaction_id, t4, t5, t6, hold.hold_id)


class Intruder:
    """Runs raw SQL; keeps the repairs a test needs before its rollback (SQLite checks foreign keys then)."""

    def __init__(self, cursor: CursorWrapper, repairs: list[Callable[[], object]]) -> None:
        self.cursor = cursor
        self.repairs = repairs

    def __call__(self, statement: str, *params: Any) -> None:
        self.cursor.execute(statement, list(params))

    def repair_later(self, repair: Callable[[], object]) -> None:
        self.repairs.append(repair)


@pytest.fixture
def repairs(db: None) -> Iterator[list[Callable[[], object]]]:
    pending: list[Callable[[], object]] = []
    yield pending
    for repair in pending:
        repair()


@contextmanager
def triggers_off(repairs: list[Callable[[], object]]) -> Iterator[Intruder]:
    """Raw SQL with the ledger's protecting triggers off, as an intruder with database access would write."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Run the balance checks the honest postings queued first: at the end of the test Django forces
            # deferred checks, and they would trip over rows changed here.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            cursor.execute("SET session_replication_role = replica")
        else:
            for table in APPEND_ONLY_TABLES:
                cursor.execute(f"DROP TRIGGER {table}_no_update")
                cursor.execute(f"DROP TRIGGER {table}_no_delete")
        try:
            yield Intruder(cursor, repairs)
        finally:
            if connection.vendor == "postgresql":
                cursor.execute("SET session_replication_role = origin")


def posting_of(txn_id: int, account_id: int) -> int:
    return Posting.objects.get(transaction_id=txn_id, account_id=account_id).pk


# Each tamper edits rows and returns the findings expected: the first is report.findings[0] (its id None where
# no id can be determined), the others must be among the findings too.
Expected = Sequence[tuple[str, int | None]]
Tamper = Callable[[Book, Intruder], Expected]


def sealed_posting_amount_pair(book: Book, sql: Intruder) -> Expected:
    sql("UPDATE ledger_posting SET amount = amount - 1 WHERE id = %s", posting_of(book.t1, book.a))
    sql("UPDATE ledger_posting SET amount = amount + 1 WHERE id = %s", posting_of(book.t1, book.b))
    return [("transaction", book.t1)]


def sealed_transaction_memo(book: Book, sql: Intruder) -> Expected:
    sql("UPDATE ledger_transaction SET memo = 'visit of 500 minutes' WHERE id = %s", book.t3)
    return [("transaction", book.t3)]


def unsealed_posting_amount_pair(book: Book, sql: Intruder) -> Expected:
    sql("UPDATE ledger_posting SET amount = amount - 1 WHERE id = %s", posting_of(book.t5, book.a))
    sql("UPDATE ledger_posting SET amount = amount + 1 WHERE id = %s", posting_of(book.t5, book.c))
    return [("account", book.a), ("account", book.c)]


def delete_sealed_transaction(book: Book, sql: Intruder) -> Expected:
    sql("DELETE FROM ledger_blockentry WHERE transaction_id = %s", book.t3)
    sql("DELETE FROM ledger_posting WHERE transaction_id = %s", book.t3)
    sql("DELETE FROM ledger_transaction WHERE id = %s", book.t3)
    return [("account", book.a), ("account", book.c), ("block", 1)]


def delete_unsealed_transaction(book: Book, sql: Intruder) -> Expected:
    sql("DELETE FROM ledger_posting WHERE transaction_id = %s", book.t6)
    sql("DELETE FROM ledger_transaction WHERE id = %s", book.t6)
    return [("account", book.a), ("account", book.b)]


def swap_accounts_within_transaction(book: Book, sql: Intruder) -> Expected:
    # t5's postings are a's and c's fifth entries; a free account id in between keeps (account, entry) unique
    of_a, of_c = posting_of(book.t5, book.a), posting_of(book.t5, book.c)
    sql("UPDATE ledger_posting SET account_id = 0 WHERE id = %s", of_a)
    sql("UPDATE ledger_posting SET account_id = %s WHERE id = %s", book.a, of_c)
    sql("UPDATE ledger_posting SET account_id = %s WHERE id = %s", book.c, of_a)
    return [("account", book.a), ("account", book.c)]


def swap_amounts_across_transactions(book: Book, sql: Intruder) -> Expected:
    of_t5, of_t6 = posting_of(book.t5, book.a), posting_of(book.t6, book.a)
    sql(
        "UPDATE ledger_posting SET amount = CASE id WHEN %s THEN %s ELSE %s END WHERE id IN (%s, %s)",
        of_t5,
        5,
        -10,
        of_t5,
        of_t6,
    )
    return [("transaction", book.t5), ("transaction", book.t6), ("account", book.a)]


def swap_entry_numbers(book: Book, sql: Intruder) -> Expected:
    of_t5, of_t6 = posting_of(book.t5, book.a), posting_of(book.t6, book.a)
    sql("UPDATE ledger_posting SET account_seq = -1 WHERE id = %s", of_t5)
    sql("UPDATE ledger_posting SET account_seq = 5 WHERE id = %s", of_t6)
    sql("UPDATE ledger_posting SET account_seq = 6 WHERE id = %s", of_t5)
    return [("account", book.a)]


def account_balance(book: Book, sql: Intruder) -> Expected:
    sql("UPDATE ledger_account SET balance = balance + 100 WHERE id = %s", book.b)
    return [("account", book.b)]


def account_held(book: Book, sql: Intruder) -> Expected:
    sql("UPDATE ledger_account SET held = held - 40 WHERE id = %s", book.a)
    return [("account", book.a)]


def posting_balance_after(book: Book, sql: Intruder) -> Expected:
    sql(
        "UPDATE ledger_posting SET balance_after = balance_after + 1 WHERE id = %s",
        posting_of(book.t6, book.b),
    )
    return [("account", book.b)]


def extra_pair_in_old_transaction(book: Book, sql: Intruder) -> Expected:
    for account_id, amount in ((book.a, 45), (book.b, -45)):
        sql(
            "INSERT INTO ledger_posting (transaction_id, account_id, amount, account_seq, balance_after) "
            "VALUES (%s, %s, %s, 100, 0)",
            book.t1,
            account_id,
            amount,
        )
    return [("transaction", book.t1)]


def block_root(book: Book, sql: Intruder) -> Expected:
    sql("UPDATE ledger_block SET root = %s WHERE seq = 1", "ab" * 32)
    return [("block", 1)]


def block_signature(book: Book, sql: Intruder) -> Expected:
    signature = Block.objects.get(seq=2).signature
    forged = signature[:-2] + ("00" if signature[-2:] != "00" else "01")
    sql("UPDATE ledger_block SET signature = %s WHERE seq = 2", forged)
    return [("block", 2)]


def delete_last_block_with_entries(book: Book, sql: Intruder) -> Expected:
    sql("DELETE FROM ledger_blockentry WHERE block_id = 2")
    sql("DELETE FROM ledger_block WHERE seq = 2")
    return [("block", 2)]  # only the witness kept outside the database can tell


def delete_last_block_only(book: Book, sql: Intruder) -> Expected:
    row = Block.objects.filter(seq=2).values().get()
    sql.repair_later(lambda: Block.objects.bulk_create([Block(**row)]))
    sql("DELETE FROM ledger_block WHERE seq = 2")
    return [("block", 2)]


TAMPERS: list[Tamper] = [
    sealed_posting_amount_pair,
    sealed_transaction_memo,
    unsealed_posting_amount_pair,
    delete_sealed_transaction,
    delete_unsealed_transaction,
    swap_accounts_within_transaction,
    swap_amounts_across_transactions,
    swap_entry_numbers,
    account_balance,
    account_held,
    posting_balance_after,
    extra_pair_in_old_transaction,
    block_root,
    block_signature,
    delete_last_block_with_entries,
    delete_last_block_only,
]


def named(report: Report) -> list[tuple[str, int]]:
    return [(finding.kind, finding.ident) for finding in report.findings]


def test_an_untouched_ledger_verifies(book):
    # when
    report = ledger_verify()

    # then
    assert report.ok, report.summary()
    assert report.blocks == 2
    assert report.sealed == Block.objects.get(seq=1).tx_count + 1
    assert report.accounts == Account.objects.count()


@pytest.mark.parametrize("tamper", TAMPERS, ids=[t.__name__ for t in TAMPERS])
def test_verify_names_the_first_tampered_row(book, repairs, tamper):
    # given
    assert ledger_verify().ok

    # when
    with triggers_off(repairs) as sql:
        expected = tamper(book, sql)
    report = ledger_verify()

    # then
    assert not report.ok, "tampering went unnoticed"
    (kind, ident), *others = expected
    first = report.findings[0]
    assert first.kind == kind, report.summary()
    if ident is not None:
        assert first.ident == ident, report.summary()
    for other in others:
        assert other in named(report), report.findings


def test_the_command_says_ok_for_an_untouched_ledger(book):
    # given
    out = io.StringIO()

    # when
    call_command("ledger", "verify", stdout=out)

    # then
    summary = out.getvalue().strip().splitlines()[-1]
    assert summary.startswith("ledger verify:") and summary.endswith(": OK")


def test_the_command_fails_and_names_the_tampered_transaction(book, repairs):
    # given
    with triggers_off(repairs) as sql:
        sealed_transaction_memo(book, sql)
    out = io.StringIO()

    # when / then
    with pytest.raises(CommandError):
        call_command("ledger", "verify", stdout=out)
    assert f"transaction {book.t3}: was changed after it was sealed in block 1" in out.getvalue()
    assert "FAILED" in out.getvalue().strip().splitlines()[-1]
