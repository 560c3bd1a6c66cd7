"""``timebank ledger verify``: recompute everything and name the first row that is wrong.

Three streaming passes, each one ordered scan:
1. transactions with their postings: two or more postings, non-zero amounts summing to zero, reversals of
   non-reversals only; the leaf hash of every sealed transaction;
2. postings by account and entry number: entries numbered 1, 2, 3… without a gap, each balance-after equal
   to the one before plus the amount, the last equal to the account's stored balance; held minutes equal to
   the account's pending holds;
3. blocks in order: each block's hash from its fields, its link to the previous block, its signature, and
   its Merkle root from the leaves of its transactions.
Any single edited, deleted, inserted or reordered row breaks at least one of these.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import connection, transaction

from timebank.ledger import proofs
from timebank.ledger.models import Block
from timebank.ledger.sealing import LOOKBACK, witness_file
from timebank.ledger.signing import public_keys

CHUNK = 20_000


@dataclass(frozen=True)
class Finding:
    kind: str  # "transaction", "account", "block"
    ident: int
    problem: str

    def __str__(self) -> str:
        return f"{self.kind} {self.ident}: {self.problem}"


@dataclass
class Report:
    transactions: int = 0
    postings: int = 0
    accounts: int = 0
    blocks: int = 0
    sealed: int = 0
    findings: list[Finding] = field(default_factory=list)
    limit: int = 50
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(self, kind: str, ident: int, problem: str) -> None:
        if len(self.findings) < self.limit:
            self.findings.append(Finding(kind, ident, problem))

    def summary(self) -> str:
        state = "OK" if self.ok else f"FAILED, first: {self.findings[0]}"
        notes = "".join(f" ({note})" for note in self.notes)
        return (
            f"ledger verify{notes}: {self.transactions} transactions, {self.postings} postings, "
            f"{self.accounts} accounts, "
            f"{self.blocks} blocks ({self.sealed} transactions sealed): {state}"
        )


_cursor_names = itertools.count(1)


def _stream(sql: str) -> Iterator[tuple[Any, ...]]:
    """Rows of ``sql`` in chunks, through a server-side cursor on PostgreSQL (inside ``ledger_verify``'s
    transaction, so that every pass reads the same snapshot)."""
    if connection.vendor == "postgresql":
        with connection.connection.cursor(name=f"timebank_verify_{next(_cursor_names)}") as cursor:
            cursor.itersize = CHUNK
            cursor.execute(sql)
            yield from cursor
        return
    with connection.cursor() as cursor:
        cursor.execute(sql)
        while rows := cursor.fetchmany(CHUNK):
            yield from rows


def _when(value: Any) -> str:
    """SQLite hands back naive datetimes (or text), always in UTC; PostgreSQL aware ones."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return proofs.utc_text(value)


def ledger_verify(*, limit: int = 50, witness: Path | None = None) -> Report:
    """Check the whole ledger in one consistent snapshot. ``witness`` is the sealer's log of block hashes,
    kept outside the database (default ``LEDGER_WITNESS_FILE``): blocks cut off the chain's end show there."""
    report = Report(limit=limit)
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        leaves = _transactions_pass(report)
        _accounts_pass(report)
        _blocks_pass(report, leaves)
    _witness_pass(report, witness if witness is not None else witness_file())
    return report


def _transactions_pass(report: Report) -> dict[int, dict[int, bytes]]:
    """Returns, for each block, the leaf hashes its entries recorded, by position."""
    postings = _stream(
        "SELECT transaction_id, id, account_id, amount, account_seq, balance_after FROM ledger_posting "
        "ORDER BY transaction_id, id"
    )
    entries = _stream(
        "SELECT transaction_id, block_id, position, leaf FROM ledger_blockentry ORDER BY transaction_id"
    )
    next_posting = next(postings, None)
    next_entry = next(entries, None)
    leaves: dict[int, dict[int, bytes]] = {}
    reversals: dict[int, int] = {}
    kinds_reversed: dict[int, str] = {}
    last_sealed = 0
    unsealed_before: list[int] = []
    rows = _stream(
        "SELECT id, kind, memo, actor_id, subject, ref_type, ref_id, policy_id, area, idempotency_key, "
        "request_hash, reverses_id, created_at FROM ledger_transaction ORDER BY id"
    )
    for row in rows:
        txn_id = row[0]
        report.transactions += 1
        own: list[list[int]] = []
        while next_posting is not None and next_posting[0] < txn_id:
            report.add("transaction", next_posting[0], "postings of a transaction that does not exist")
            next_posting = next(postings, None)
        while next_posting is not None and next_posting[0] == txn_id:
            own.append(list(next_posting[1:]))
            next_posting = next(postings, None)
        report.postings += len(own)
        if len(own) < 2:
            report.add("transaction", txn_id, f"has {len(own)} posting(s); two or more are needed")
        total = sum(p[2] for p in own)
        if total != 0:
            report.add("transaction", txn_id, f"postings sum to {total}, not zero")
        if any(p[2] == 0 for p in own):
            report.add("transaction", txn_id, "a posting of zero minutes")
        if row[1] == "reversal":
            kinds_reversed[txn_id] = row[1]
        if row[11] is not None:
            reversals[txn_id] = row[11]
        while next_entry is not None and next_entry[0] < txn_id:
            report.add("block", next_entry[1], f"seals transaction {next_entry[0]}, which does not exist")
            next_entry = next(entries, None)
        if next_entry is not None and next_entry[0] == txn_id:
            document = proofs.transaction_document(
                txn_id=txn_id,
                kind=row[1],
                memo=row[2],
                actor_id=row[3],
                subject=row[4],
                ref_type=row[5],
                ref_id=row[6],
                policy_id=row[7],
                area=row[8],
                idempotency_key=row[9],
                request_hash=row[10],
                reverses_id=row[11],
                created_at=_when(row[12]),
                postings=own,
            )
            if proofs.leaf_hash(document).hex() != next_entry[3]:
                report.add("transaction", txn_id, f"was changed after it was sealed in block {next_entry[1]}")
            leaves.setdefault(next_entry[1], {})[next_entry[2]] = bytes.fromhex(next_entry[3])
            report.sealed += 1
            last_sealed = max(last_sealed, txn_id)
            next_entry = next(entries, None)
        else:
            unsealed_before.append(txn_id)
            if len(unsealed_before) > LOOKBACK * 2:
                unsealed_before = [t for t in unsealed_before if t >= last_sealed - LOOKBACK]
    if next_posting is not None:
        report.add("transaction", next_posting[0], "postings of a transaction that does not exist")
    if next_entry is not None:
        report.add("block", next_entry[1], f"seals transaction {next_entry[0]}, which does not exist")
    for txn_id in unsealed_before:
        if txn_id < last_sealed - LOOKBACK:
            report.add("transaction", txn_id, "was never sealed, though far older than sealed ones")
            break
    for txn_id, original in reversals.items():
        if original in kinds_reversed:
            report.add("transaction", txn_id, f"reverses transaction {original}, itself a reversal")
    for (txn_id,) in _stream(REVERSALS_THAT_DO_NOT_NEGATE):
        report.add("transaction", txn_id, "is a reversal that does not negate every posting of its original")
    return leaves


REVERSALS_THAT_DO_NOT_NEGATE = """
WITH candidates AS MATERIALIZED (
    SELECT id, kind, reverses_id FROM ledger_transaction WHERE kind = 'reversal' OR reverses_id IS NOT NULL
)
SELECT c.id FROM candidates c
 WHERE c.kind <> 'reversal' OR c.reverses_id IS NULL OR EXISTS (
        SELECT 1
          FROM (SELECT account_id, -amount AS amount FROM ledger_posting
                 WHERE transaction_id = c.reverses_id) o
          FULL JOIN (SELECT account_id, amount FROM ledger_posting WHERE transaction_id = c.id) n
               ON n.account_id = o.account_id
         WHERE o.account_id IS NULL OR n.account_id IS NULL OR o.amount <> n.amount)
 ORDER BY c.id
"""


def _accounts_pass(report: Report) -> None:
    accounts = {
        row[0]: row[1:]
        for row in _stream("SELECT id, balance, held, entries FROM ledger_account ORDER BY id")
    }
    report.accounts = len(accounts)
    pending: dict[int, int] = {}
    for account_id, amount in _stream(
        "SELECT account_id, amount FROM ledger_hold WHERE status = 'pending' ORDER BY account_id"
    ):
        pending[account_id] = pending.get(account_id, 0) + amount
    current: int | None = None
    balance = seq = 0
    seen: set[int] = set()

    def close(account_id: int) -> None:
        stored = accounts.get(account_id)
        if stored is None:
            report.add("account", account_id, "has postings but does not exist")
        elif (stored[0], stored[2]) != (balance, seq):
            report.add(
                "account",
                account_id,
                f"stored balance {stored[0]} ({stored[2]} entries) but its postings "
                f"give {balance} ({seq} entries)",
            )

    for account_id, txn_id, amount, account_seq, balance_after in _stream(
        "SELECT account_id, transaction_id, amount, account_seq, balance_after FROM ledger_posting "
        "ORDER BY account_id, account_seq"
    ):
        if account_id != current:
            if current is not None:
                close(current)
            current, balance, seq = account_id, 0, 0
            seen.add(account_id)
        seq += 1
        balance += amount
        if account_seq != seq:
            report.add(
                "account", account_id, f"entry {seq} is missing (next is {account_seq}, transaction {txn_id})"
            )
            seq = account_seq
        if balance_after != balance:
            report.add(
                "account",
                account_id,
                f"entry {account_seq} (transaction {txn_id}) says balance "
                f"{balance_after}, its postings give {balance}",
            )
            balance = balance_after
    if current is not None:
        close(current)
    for account_id, (stored_balance, held, entries) in accounts.items():
        if account_id not in seen and (stored_balance, entries) != (0, 0):
            report.add("account", account_id, f"stored balance {stored_balance} but it has no postings")
        if held != pending.get(account_id, 0):
            report.add(
                "account",
                account_id,
                f"holds {held} minutes but its pending holds add up to {pending.get(account_id, 0)}",
            )


def _blocks_pass(report: Report, leaves: dict[int, dict[int, bytes]]) -> None:
    keys = public_keys()
    previous = proofs.GENESIS
    expected_seq = 1
    present: set[int] = set()
    for seq, prev_hash, root, count, first, last, created_at, digest, signature, key_id in _stream(
        "SELECT seq, prev_hash, root, tx_count, first_txn_id, last_txn_id, created_at, hash, signature, "
        "key_id FROM ledger_block ORDER BY seq"
    ):
        report.blocks += 1
        present.add(seq)
        if seq != expected_seq:
            report.add("block", seq, f"block {expected_seq} is missing")
        expected_seq = seq + 1
        if prev_hash != previous:
            report.add("block", seq, "does not link to the block before it")
        document = proofs.block_document(
            seq=seq,
            prev_hash=prev_hash,
            root=root,
            tx_count=count,
            first_txn_id=first,
            last_txn_id=last,
            created_at=_when(created_at),
            key_id=key_id,
        )
        if proofs.block_hash(document) != digest:
            report.add("block", seq, "its hash does not match its contents")
        public = keys.get(key_id)
        if public is None or not proofs.signature_valid(public, bytes.fromhex(digest), signature):
            report.add("block", seq, "its signature is not the platform's")
        own = leaves.get(seq, {})
        if sorted(own) != list(range(count)):
            missing = sorted(set(range(count)) - set(own))
            report.add(
                "block",
                seq,
                f"holds {len(own)} of its {count} transactions (missing positions {missing[:5]})",
            )
        elif proofs.merkle_root([own[i] for i in range(count)]).hex() != root:
            report.add("block", seq, "its entries no longer hash to its root")
        previous = digest
    for seq in sorted(set(leaves) - present):
        report.add("block", seq, "seals transactions but the block itself is missing")


def _witness_pass(report: Report, witness: Path | None) -> None:
    """Every block hash the sealer witnessed must still be in the chain, unchanged."""
    if witness is None or not witness.exists():
        report.notes.append("no witness file: blocks cut off the end of the chain would go unseen")
        return
    witnessed = {}
    for line in witness.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            witnessed[int(parts[0])] = parts[1]
    stored = dict(Block.objects.filter(seq__in=witnessed).values_list("seq", "hash"))
    for seq, digest in sorted(witnessed.items()):
        if stored.get(seq) != digest:
            report.add("block", seq, "was witnessed when sealed but is missing or different now")
            return
