"""Sealing: committed transactions are gathered into signed, chained blocks.

The sealer reads committed rows and writes only block rows, so it never holds a lock the posting path
needs. It seals transactions at least ``LEDGER_SEAL_SETTLE_SECONDS`` old, and looks back over the last
``LOOKBACK`` ids for any that committed late; so every transaction lands in exactly one block, in the order
the sealer saw them committed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from timebank.ledger import proofs
from timebank.ledger.models import Block, BlockEntry, Posting, Transaction
from timebank.ledger.signing import platform_key

BLOCK_MAX = 50_000
LOOKBACK = 100_000
TXN_FIELDS = (
    "pk",
    "kind",
    "memo",
    "actor_id",
    "subject",
    "ref_type",
    "ref_id",
    "policy_id",
    "area",
    "idempotency_key",
    "request_hash",
    "reverses_id",
    "created_at",
)


def documents(
    rows: Iterable[tuple[Any, ...]], postings: dict[int, list[list[int]]]
) -> Iterator[dict[str, Any]]:
    for row in rows:
        (
            pk,
            kind,
            memo,
            actor_id,
            subject,
            ref_type,
            ref_id,
            policy_id,
            area,
            key,
            request_hash,
            reverses_id,
            created_at,
        ) = row
        yield proofs.transaction_document(
            txn_id=pk,
            kind=kind,
            memo=memo,
            actor_id=actor_id,
            subject=subject,
            ref_type=ref_type,
            ref_id=ref_id,
            policy_id=policy_id,
            area=area,
            idempotency_key=key,
            request_hash=request_hash,
            reverses_id=reverses_id,
            created_at=created_at,
            postings=postings.get(pk, []),
        )


def postings_of(low: int, high: int) -> dict[int, list[list[int]]]:
    """Postings of transactions low..high, as [id, account, amount, entry number, balance after], by id."""
    found: dict[int, list[list[int]]] = {}
    rows = (
        Posting.objects.filter(transaction_id__gte=low, transaction_id__lte=high)
        .order_by("transaction_id", "id")
        .values_list("transaction_id", "id", "account_id", "amount", "account_seq", "balance_after")
    )
    for txn_id, *posting in rows:
        found.setdefault(txn_id, []).append(posting)
    return found


def ledger_seal(*, limit: int = BLOCK_MAX, settle_seconds: int | None = None) -> Block | None:
    """Seal committed, unsealed transactions (up to ``limit``) into one new block; None if there are none."""
    settle = settings.LEDGER_SEAL_SETTLE_SECONDS if settle_seconds is None else settle_seconds
    key = platform_key()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(7420117)")  # one sealer at a time
        last = Block.objects.order_by("-seq").first()
        horizon = timezone.now() - dt.timedelta(seconds=settle)
        since = max(0, (last.last_txn_id if last else 0) - LOOKBACK)
        sealed = BlockEntry.objects.filter(transaction_id__gt=since).values("transaction_id")
        ids = list(
            Transaction.objects.filter(pk__gt=since, created_at__lte=horizon)
            .exclude(pk__in=sealed)  # both sides by index range above ``since``, never the whole table
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
        if not ids:
            return None
        postings = postings_of(ids[0], ids[-1])
        wanted = set(ids)
        rows = [
            r
            for r in Transaction.objects.filter(pk__gte=ids[0], pk__lte=ids[-1])
            .order_by("pk")
            .values_list(*TXN_FIELDS)
            if r[0] in wanted
        ]
        leaves = [proofs.leaf_hash(d) for d in documents(rows, postings)]
        seq = (last.seq + 1) if last else 1
        created_at = timezone.now()
        root = proofs.merkle_root(leaves).hex()
        doc = proofs.block_document(
            seq=seq,
            prev_hash=last.hash if last else proofs.GENESIS,
            root=root,
            tx_count=len(ids),
            first_txn_id=ids[0],
            last_txn_id=ids[-1],
            created_at=created_at,
            key_id=key.key_id,
        )
        digest = proofs.block_hash(doc)
        block = Block.objects.create(
            seq=seq,
            prev_hash=doc["prev"],
            root=root,
            tx_count=len(ids),
            first_txn_id=ids[0],
            last_txn_id=ids[-1],
            created_at=created_at,
            hash=digest,
            signature=key.sign(bytes.fromhex(digest)),
            key_id=key.key_id,
        )
        BlockEntry.objects.bulk_create(
            (
                BlockEntry(transaction_id=txn_id, block=block, position=i, leaf=leaf.hex())
                for i, (txn_id, leaf) in enumerate(zip(ids, leaves, strict=True))
            ),
            batch_size=5000,
        )
    transaction.on_commit(lambda: _witness(block))
    return block


def witness_file() -> Path | None:
    """Where the sealer also writes each block's hash, outside the database (None to keep no witness)."""
    name = settings.LEDGER_WITNESS_FILE
    return Path(name) if name else None


def _witness(block: Block) -> None:
    path = witness_file()
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="ascii") as handle:
        handle.write(f"{block.seq} {block.hash} {proofs.utc_text(block.created_at)}\n")


def ledger_seal_all(*, settle_seconds: int | None = None) -> list[Block]:
    blocks = []
    while (block := ledger_seal(settle_seconds=settle_seconds)) is not None:
        blocks.append(block)
    return blocks
