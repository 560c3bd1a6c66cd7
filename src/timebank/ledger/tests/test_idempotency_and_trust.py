"""Keys bind the whole request (who asked, and for which hold); only configured keys are trusted; the batch
path cannot be borrowed by a session that merely claims to be it."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from timebank.ledger import errors
from timebank.ledger import services as ledger
from timebank.ledger.engine import Leg, PostRequest
from timebank.ledger.models import Account, Block
from timebank.ledger.sealing import ledger_seal
from timebank.ledger.tests.conftest import key
from timebank.ledger.verify import ledger_verify


def test_a_retry_by_someone_else_is_another_request(alice, bob):
    ledger.transfer(idempotency_key="gift-7", source=alice.pk, destination=bob.pk, minutes=10, actor_id=1)
    with pytest.raises(errors.IdempotencyConflict):
        ledger.transfer(idempotency_key="gift-7", source=alice.pk, destination=bob.pk, minutes=10, actor_id=2)


def test_a_capture_key_belongs_to_its_hold(alice, bob):
    # given two holds, the first captured under a key
    first = ledger.hold_place(idempotency_key=key(), account_id=alice.pk, minutes=60)
    second = ledger.hold_place(idempotency_key=key(), account_id=alice.pk, minutes=60)
    request = PostRequest(
        idempotency_key="capture-1", kind="service_payment", legs=(Leg(alice.pk, -60), Leg(bob.pk, 60))
    )
    ledger.hold_capture(hold_id=first.hold_id, request=request)

    # when / then: the same key for the second hold is not taken for a retry of the first
    with pytest.raises(errors.IdempotencyConflict):
        ledger.hold_capture(hold_id=second.hold_id, request=request)
    assert Account.objects.get(pk=alice.pk).held == 60


def test_a_transfer_key_is_not_a_capture_key(alice, bob):
    request = PostRequest(
        idempotency_key="same-key", kind="service_payment", legs=(Leg(alice.pk, -60), Leg(bob.pk, 60))
    )
    ledger.transaction_post(request)
    held = ledger.hold_place(idempotency_key=key(), account_id=alice.pk, minutes=60)
    with pytest.raises(errors.IdempotencyConflict):
        ledger.hold_capture(hold_id=held.hold_id, request=request)


def test_a_batch_names_each_key_once(alice, bob):
    twice = PostRequest(idempotency_key="dup", kind="transfer", legs=(Leg(alice.pk, -1), Leg(bob.pk, 1)))
    with pytest.raises(errors.IdempotencyConflict):
        ledger.transactions_post_batch([twice, twice])
    assert Account.objects.get(pk=bob.pk).balance == 0


def test_an_unknown_policy_is_a_clear_error(alice, bob):
    with pytest.raises(errors.PolicyNotFound):
        ledger.transfer(
            idempotency_key=key(), source=alice.pk, destination=bob.pk, minutes=5, policy_id=99999
        )


def test_verify_says_when_no_witness_is_kept(alice):
    assert "no witness file" in ledger_verify().summary()


def test_a_block_signed_with_a_key_from_the_database_is_not_trusted(alice, bob, postgres_only):
    # given a sealed block, then an intruder who re-signs it with a key they added to the database
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from timebank.ledger import proofs
    from timebank.ledger.statements import block_document_of

    ledger.transfer(idempotency_key=key(), source=alice.pk, destination=bob.pk, minutes=5)
    block = ledger_seal(settle_seconds=0)
    assert block is not None
    intruder = Ed25519PrivateKey.generate()
    public = proofs.public_key_hex(intruder)
    document = block_document_of(block, key_id=proofs.key_id_of(public))
    digest = proofs.block_hash(document)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "INSERT INTO ledger_signingkey (key_id, public_key, created_at) VALUES (%s, %s, now())",
            [proofs.key_id_of(public), public],
        )
        cursor.execute(
            "UPDATE ledger_block SET key_id = %s, hash = %s, signature = %s WHERE seq = %s",
            [proofs.key_id_of(public), digest, proofs.sign(intruder, bytes.fromhex(digest)), block.seq],
        )
        cursor.execute("SET LOCAL session_replication_role = origin")

    # when
    report = ledger_verify()

    # then
    assert not report.ok
    assert (report.findings[0].kind, report.findings[0].ident) == ("block", block.seq)
    assert Block.objects.get(seq=block.seq).key_id == proofs.key_id_of(public)


def test_claiming_to_be_the_batch_does_not_switch_the_rules_off(alice, postgres_only):
    # given a session that sets the batch flag and names the batch function in its statement's text
    forged = (
        "DO $$ BEGIN PERFORM set_config('timebank.ledger_batch', 'on', true); "
        f"UPDATE ledger_account SET balance = balance + 1000000 WHERE id = {alice.pk} "
        "/*\nPL/pgSQL function ledger_post_batch(text[],text[],text[],text[],bigint[],text[],text[],text[],"
        "bigint[],integer[],bigint[],bigint[]) line 1 at SQL statement\n*/; END $$"
    )

    # when / then
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(forged)
    assert Account.objects.get(pk=alice.pk).balance == 600


def _raw_transaction(cursor, *, kind: str, reverses: int | None, created: str = "now()") -> int:
    cursor.execute(
        "INSERT INTO ledger_transaction (kind, memo, actor_id, subject, ref_type, ref_id, policy_id, area, "
        "idempotency_key, request_hash, reverses_id, created_at) "
        f"VALUES (%s, '', NULL, '', '', '', NULL, '310000', %s, 'x', %s, {created}) RETURNING id",
        [kind, key("raw"), reverses],
    )
    return int(cursor.fetchone()[0])


def test_the_database_refuses_a_reversal_that_does_not_negate_its_original(alice, bob, fund, postgres_only):
    # given a transfer of 45 minutes
    original = ledger.transfer(idempotency_key=key(), source=alice.pk, destination=bob.pk, minutes=45)

    # when a "reversal" written behind the ORM's back sends the fund's minutes to alice instead
    with pytest.raises(DatabaseError) as exc, transaction.atomic(), connection.cursor() as cursor:
        txn = _raw_transaction(cursor, kind="reversal", reverses=original.transaction_id)
        cursor.execute(
            "INSERT INTO ledger_posting (transaction_id, account_id, amount, account_seq, balance_after) "
            "VALUES (%s, %s, -500, 0, 0), (%s, %s, 500, 0, 0)",
            [txn, fund.pk, txn, alice.pk],
        )
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    # then
    assert "ledger_unbalanced" in str(exc.value)
    assert Account.objects.get(pk=alice.pk).balance == 555


def test_the_database_refuses_postings_added_to_an_earlier_transaction(alice, bob, postgres_only):
    with pytest.raises(DatabaseError) as exc, transaction.atomic(), connection.cursor() as cursor:
        txn = _raw_transaction(cursor, kind="transfer", reverses=None, created="now() - interval '1 day'")
        cursor.execute(
            "INSERT INTO ledger_posting (transaction_id, account_id, amount, account_seq, balance_after) "
            "VALUES (%s, %s, -5, 0, 0), (%s, %s, 5, 0, 0)",
            [txn, alice.pk, txn, bob.pk],
        )
    assert "ledger_append_only" in str(exc.value)
    assert Account.objects.get(pk=alice.pk).balance == 600


def test_verify_finds_a_reversal_that_no_longer_negates_its_original(alice, bob, postgres_only):
    # given a transfer and its reversal, then the reversal's amounts edited with the triggers off
    original = ledger.transfer(idempotency_key=key(), source=alice.pk, destination=bob.pk, minutes=45)
    reversal = ledger.transaction_reverse(
        idempotency_key=key(), transaction_id=original.transaction_id, memo="x"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SET CONSTRAINTS ALL IMMEDIATE"
        )  # as at commit: the reversal was checked and is stored
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE ledger_posting SET amount = amount / 45 * 40 WHERE transaction_id = %s",
            [reversal.transaction_id],
        )
        cursor.execute("SET LOCAL session_replication_role = origin")

    # when
    report = ledger_verify()

    # then
    assert any(f.ident == reversal.transaction_id and "does not negate" in f.problem for f in report.findings)
