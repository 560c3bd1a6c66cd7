"""The database keeps the ledger's rules itself: rows written behind the ORM's back with raw SQL are refused.

On PostgreSQL the functions and triggers of ``migrations/0002_database_rules`` refuse every bad row; on
SQLite the append-only triggers and the CHECK constraints do. Each refusal leaves the ledger as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.backends.utils import CursorWrapper

from timebank.common.errors import Conflict
from timebank.ledger import services as ledger
from timebank.ledger.models import (
    Account,
    AccountKind,
    Block,
    BlockEntry,
    Hold,
    Posting,
    SigningKey,
    Transaction,
)
from timebank.ledger.sealing import ledger_seal
from timebank.ledger.tests.conftest import funded, key
from timebank.regions.models import Region

Attempt = Callable[[CursorWrapper], object]


@pytest.fixture
def sqlite_only() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Everything the ledger holds, to show that a refused write changed nothing."""
    return {
        "accounts": list(
            Account.objects.order_by("pk").values_list("pk", "balance", "held", "entries", "status")
        ),
        "transactions": list(Transaction.objects.order_by("pk").values_list("pk", "kind", "memo")),
        "postings": list(
            Posting.objects.order_by("pk").values_list(
                "pk", "transaction_id", "account_id", "amount", "account_seq", "balance_after"
            )
        ),
        "holds": list(Hold.objects.order_by("pk").values_list("pk", "account_id", "amount", "status")),
        "blocks": list(Block.objects.order_by("seq").values_list("seq", "root", "hash", "signature")),
        "entries": list(
            BlockEntry.objects.order_by("transaction_id").values_list(
                "transaction_id", "block_id", "position", "leaf"
            )
        ),
        "keys": list(SigningKey.objects.order_by("pk").values_list("pk", "key_id", "public_key")),
    }


def reason(exc: DatabaseError) -> str:
    """The database's own words: message, constraint name and detail (PostgreSQL), or the message (SQLite)."""
    diag = getattr(exc.__cause__, "diag", None)
    if diag is None:
        return str(exc)
    return " ".join(filter(None, [diag.message_primary, diag.constraint_name, diag.message_detail]))


def refused(attempt: Attempt) -> str:
    """Run ``attempt`` in a savepoint, forcing deferred checks at its end; it must be refused, and the
    ledger must be unchanged afterwards. Returns why it was refused."""
    before = snapshot()
    with pytest.raises(DatabaseError) as caught, transaction.atomic(), connection.cursor() as cursor:
        attempt(cursor)
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert snapshot() == before
    return reason(caught.value)


def flush_pending_checks(cursor: CursorWrapper) -> None:
    """Run the deferred checks the fixtures' postings queued in the test's transaction, then defer again,
    as at the start of a fresh database transaction."""
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def sql(statement: str, *params: Any) -> Attempt:
    def attempt(cursor: CursorWrapper) -> None:
        cursor.execute(statement, list(params))

    return attempt


def insert_transaction(cursor: CursorWrapper, *, area: str, kind: str = "transfer") -> int:
    cursor.execute(
        "INSERT INTO ledger_transaction (kind, memo, actor_id, subject, ref_type, ref_id, policy_id, area, "
        "idempotency_key, request_hash, reverses_id, created_at) "
        "VALUES (%s, 'raw', NULL, '', '', '', NULL, %s, %s, '', NULL, now()) RETURNING id",
        [kind, area, key("raw")],
    )
    (txn_id,) = cursor.fetchone()
    return int(txn_id)


def insert_posting(cursor: CursorWrapper, txn_id: int, account_id: int, amount: int) -> None:
    """The posting trigger fills in the entry number and the balance after; zeros are placeholders."""
    cursor.execute(
        "INSERT INTO ledger_posting (transaction_id, account_id, amount, account_seq, balance_after) "
        "VALUES (%s, %s, %s, 0, 0)",
        [txn_id, account_id, amount],
    )


def raw_transaction(area: str, *legs: tuple[int, int], kind: str = "transfer") -> Attempt:
    def attempt(cursor: CursorWrapper) -> None:
        txn_id = insert_transaction(cursor, area=area, kind=kind)
        for account_id, amount in legs:
            insert_posting(cursor, txn_id, account_id, amount)

    return attempt


@pytest.fixture
def sealed(alice: Account, bob: Account) -> int:
    """A transfer from Alice to Bob, sealed into block 1 (with the signing key row). Returns its id."""
    posted = ledger.transfer(idempotency_key=key(), source=alice.pk, destination=bob.pk, minutes=60)
    block = ledger_seal(settle_seconds=0)
    assert block is not None and block.seq == 1
    assert BlockEntry.objects.filter(transaction_id=posted.transaction_id).exists()
    return posted.transaction_id


# --- both databases: append-only tables (other triggers, the same refusal) ----------------------------------

APPEND_ONLY_WRITES = {
    "update ledger_transaction": "UPDATE ledger_transaction SET memo = 'rewritten'",
    "update ledger_posting": "UPDATE ledger_posting SET amount = amount * 2",
    "update ledger_block": "UPDATE ledger_block SET root = '00'",
    "update ledger_blockentry": "UPDATE ledger_blockentry SET leaf = '00'",
    "update ledger_signingkey": "UPDATE ledger_signingkey SET public_key = '00'",
    "delete ledger_transaction": "DELETE FROM ledger_transaction",
    "delete ledger_posting": "DELETE FROM ledger_posting",
    "delete ledger_block": "DELETE FROM ledger_block",
    "delete ledger_blockentry": "DELETE FROM ledger_blockentry",
    "delete ledger_signingkey": "DELETE FROM ledger_signingkey",
}


@pytest.mark.parametrize("statement", APPEND_ONLY_WRITES.values(), ids=APPEND_ONLY_WRITES.keys())
def test_append_only_tables_refuse_update_and_delete(sealed, statement):
    # given a sealed ledger: every append-only table has rows
    assert SigningKey.objects.exists() and Block.objects.exists() and BlockEntry.objects.exists()

    # when / then
    assert "ledger_append_only" in refused(sql(statement))


def test_the_orm_refuses_to_change_or_delete_a_transaction(alice, bob):
    # given
    posted = ledger.transfer(
        idempotency_key=key(), source=alice.pk, destination=bob.pk, minutes=15, memo="visit"
    )
    txn = Transaction.objects.get(pk=posted.transaction_id)

    # when / then
    txn.memo = "rewritten"
    with pytest.raises(Conflict) as saved:
        txn.save()
    with pytest.raises(Conflict) as deleted:
        txn.delete()

    # then
    assert saved.value.code == deleted.value.code == "ledger_append_only"
    assert Transaction.objects.get(pk=posted.transaction_id).memo == "visit"


# --- SQLite: CHECK constraints on accounts ------------------------------------------------------------------


def test_sqlite_check_refuses_a_raw_update_that_overdraws(sqlite_only, alice):
    # when / then
    why = refused(sql("UPDATE ledger_account SET balance = held + floor - 1 WHERE id = %s", alice.pk))
    assert "ledger_account_no_overdraft" in why


def test_sqlite_check_refuses_a_raw_update_over_the_cap(sqlite_only, fund, shanghai):
    # given
    capped = funded(fund, shanghai, 50, cap=100)

    # when / then
    why = refused(sql("UPDATE ledger_account SET balance = cap + 1 WHERE id = %s", capped.pk))
    assert "ledger_account_within_cap" in why


# --- PostgreSQL: every rule ---------------------------------------------------------------------------------


def test_postings_that_do_not_sum_to_zero_are_refused(postgres_only, alice, bob):
    # when / then
    why = refused(raw_transaction(alice.area, (alice.pk, -30), (bob.pk, 29)))
    assert "ledger_unbalanced" in why and "sum=-1" in why


def test_a_transaction_with_one_posting_is_refused(postgres_only, alice):
    # when / then
    why = refused(raw_transaction(alice.area, (alice.pk, -30)))
    assert "ledger_unbalanced" in why and "postings=1" in why


def test_a_transaction_with_no_postings_is_refused(postgres_only, alice):
    # when / then
    why = refused(raw_transaction(alice.area))
    assert "ledger_unbalanced" in why and "postings=0" in why


def test_a_zero_posting_is_refused(postgres_only, alice, bob):
    # when / then
    why = refused(raw_transaction(alice.area, (alice.pk, 0), (bob.pk, 0)))
    assert "ledger_posting_nonzero" in why


def test_a_posting_added_to_a_transaction_already_checked_is_refused(postgres_only, alice, bob):
    """The balance check runs once per transaction per commit; a posting added after it ran must be
    checked again."""

    # when: a balanced transaction passes its check, then gains a posting in the same database transaction
    def attempt(cursor: CursorWrapper) -> None:
        txn_id = insert_transaction(cursor, area=alice.area)
        insert_posting(cursor, txn_id, alice.pk, -30)
        insert_posting(cursor, txn_id, bob.pk, 30)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        insert_posting(cursor, txn_id, bob.pk, 30)

    # then
    assert "ledger_unbalanced" in refused(attempt)


def test_the_balance_check_cannot_be_switched_off_by_a_session_setting(postgres_only, alice, bob):
    """``timebank.ledger_checked`` is an ordinary setting any session may set; it must not exempt a
    transaction from the balance check."""

    # when: the session marks its unbalanced transaction as already checked
    def attempt(cursor: CursorWrapper) -> None:
        flush_pending_checks(cursor)
        txn_id = insert_transaction(cursor, area=alice.area)
        cursor.execute("SELECT set_config('timebank.ledger_checked', %s, true)", [str(txn_id)])
        insert_posting(cursor, txn_id, alice.pk, -30)
        insert_posting(cursor, txn_id, bob.pk, 31)

    # then
    assert "ledger_unbalanced" in refused(attempt)


def test_balances_cannot_be_written_directly_under_a_session_setting(postgres_only, alice):
    """``timebank.ledger_batch`` is an ordinary setting any session may set; it must not let a session
    write balances directly."""

    # when
    def attempt(cursor: CursorWrapper) -> None:
        cursor.execute("SET LOCAL timebank.ledger_batch = 'on'")
        cursor.execute("UPDATE ledger_account SET balance = balance + 100 WHERE id = %s", [alice.pk])

    # then
    assert "ledger_append_only" in refused(attempt)


def test_a_closed_account_takes_no_posting_under_a_session_setting(postgres_only, fund, shanghai, alice):
    # given
    closed = ledger.account_close(account=funded(fund, shanghai, 0))

    # when
    def attempt(cursor: CursorWrapper) -> None:
        cursor.execute("SET LOCAL timebank.ledger_batch = 'on'")
        raw_transaction(alice.area, (alice.pk, -5), (closed.pk, 5))(cursor)

    # then
    assert "ledger_account_closed" in refused(attempt)


def test_truncate_is_refused_unless_the_session_allows_it(postgres_only, alice):
    # given postings (Alice's funding)
    assert Posting.objects.filter(account=alice).exists()

    # when / then
    def attempt(cursor: CursorWrapper) -> None:
        flush_pending_checks(cursor)  # PostgreSQL will not truncate a table with checks still queued
        cursor.execute("SET LOCAL timebank.allow_truncate = 'off'")
        cursor.execute("TRUNCATE ledger_posting")

    assert "ledger_append_only" in refused(attempt)


def test_a_balance_changes_only_through_postings(postgres_only, alice):
    # when / then
    why = refused(sql("UPDATE ledger_account SET balance = balance + 100 WHERE id = %s", alice.pk))
    assert "ledger_append_only" in why and f"account {alice.pk}" in why


def test_held_minutes_change_only_through_holds(postgres_only, alice):
    # when / then
    assert "ledger_append_only" in refused(
        sql("UPDATE ledger_account SET held = held + 100 WHERE id = %s", alice.pk)
    )


def test_an_account_opens_empty(postgres_only, shanghai: Region):
    # when / then
    why = refused(
        sql(
            "INSERT INTO ledger_account (kind, normal_side, region_id, area, status, balance, held, entries, "
            "floor, cap, created_at) "
            "VALUES ('member', 'credit', %s, '310000', 'open', 100, 0, 0, 0, NULL, now())",
            shanghai.pk,
        )
    )
    assert "ledger_append_only" in why and "opens empty" in why


def test_a_posting_that_overdraws_a_member_is_refused(postgres_only, alice, bob):
    # when / then
    why = refused(raw_transaction(alice.area, (alice.pk, -601), (bob.pk, 601)))
    assert "ledger_account_no_overdraft" in why


def test_a_posting_over_the_cap_is_refused(postgres_only, fund, shanghai, alice):
    # given
    capped = funded(fund, shanghai, 90, cap=100)

    # when / then
    why = refused(raw_transaction(alice.area, (alice.pk, -11), (capped.pk, 11)))
    assert "ledger_account_within_cap" in why


def test_a_posting_on_a_closed_account_is_refused(postgres_only, fund, shanghai, alice):
    # given
    closed = ledger.account_close(account=funded(fund, shanghai, 0))

    # when / then
    why = refused(raw_transaction(alice.area, (alice.pk, -5), (closed.pk, 5)))
    assert "ledger_account_closed" in why and f"account={closed.pk}" in why


def test_currency_areas_do_not_mix_outside_clearing(postgres_only, alice, beijing):
    # given
    other = ledger.account_open(kind=AccountKind.MEMBER, region=beijing)
    assert other.area != alice.area

    # when / then
    why = refused(raw_transaction(alice.area, (alice.pk, -5), (other.pk, 5)))
    assert "ledger_area_mismatch" in why and f"account={other.pk}" in why


@pytest.mark.parametrize(
    "statement",
    ["UPDATE ledger_hold SET amount = amount + 1 WHERE id = %s", "DELETE FROM ledger_hold WHERE id = %s"],
    ids=["change amount", "delete"],
)
def test_a_hold_keeps_its_amount_and_is_never_deleted(postgres_only, alice, statement):
    # given
    held = ledger.hold_place(idempotency_key=key(), account_id=alice.pk, minutes=100)

    # when / then
    assert "ledger_append_only" in refused(sql(statement, held.hold_id))
    assert Account.objects.get(pk=alice.pk).held == 100


# --- PostgreSQL: ledger_post called directly ----------------------------------------------------------------

LEDGER_POST = "SELECT ledger_post(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::bigint[], %s::bigint[])"


def ledger_post_args(idempotency_key: str, request_hash: str, legs: dict[int, int]) -> list[Any]:
    return [
        idempotency_key,
        request_hash,
        "transfer",
        "raw call",
        None,
        "",
        "",
        "",
        None,
        None,
        list(legs),
        list(legs.values()),
    ]


def call_ledger_post(args: list[Any]) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(LEDGER_POST, args)
        (value,) = cursor.fetchone()
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    return int(value)


def test_ledger_post_is_idempotent(postgres_only, alice, bob):
    # given
    args = ledger_post_args("raw-visit-1", "hash-1", {alice.pk: -30, bob.pk: 30})

    # when
    first = call_ledger_post(args)
    after_first = snapshot()
    retry = call_ledger_post(args)

    # then: the first call posts and returns the new id; the retry returns minus that id and posts nothing
    assert first > 0
    assert retry == -first
    assert snapshot() == after_first
    assert Transaction.objects.filter(idempotency_key="raw-visit-1").get().pk == first
    assert Account.objects.get(pk=alice.pk).balance == 570
    assert Account.objects.get(pk=bob.pk).balance == 30


def test_ledger_post_refuses_a_changed_request_with_the_same_key(postgres_only, alice, bob):
    # given
    first = call_ledger_post(ledger_post_args("raw-visit-2", "hash-1", {alice.pk: -30, bob.pk: 30}))

    # when / then
    changed = ledger_post_args("raw-visit-2", "hash-2", {alice.pk: -31, bob.pk: 31})
    why = refused(sql(LEDGER_POST, *changed))
    assert "ledger_idempotency_conflict" in why and f"transaction={first}" in why


def test_ledger_post_leaves_an_unbalanced_request_to_the_balance_check(postgres_only, alice, bob):
    # when / then
    why = refused(sql(LEDGER_POST, *ledger_post_args("raw-visit-3", "hash-1", {alice.pk: -30, bob.pk: 29})))
    assert "ledger_unbalanced" in why
