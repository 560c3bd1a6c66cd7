"""Hashes, Merkle trees and signatures for the ledger — pure Python, no Django, no database.

A member's signed statement is checked with this module and the platform's public key alone, so a member
can prove their hours even if the operator disappears (``timebank ledger verify-statement``).

- A transaction's leaf hash is SHA-256(0x00 ‖ canonical JSON of the transaction and its postings).
- A block's root is the Merkle tree hash of its transactions' leaves (RFC 9162 §2.1.1); inclusion proofs
  follow RFC 9162 §2.1.3.
- A block's hash covers its number, the previous block's hash and its root, so the blocks form a chain;
  the platform signs each block hash with Ed25519.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

GENESIS = "0" * 64
STATEMENT_FORMAT = "timebank-statement/1"
RECEIPT_FORMAT = "timebank-receipt/1"


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def transaction_document(
    *,
    txn_id: int,
    kind: str,
    memo: str,
    actor_id: int | None,
    subject: str,
    ref_type: str,
    ref_id: str,
    policy_id: int | None,
    area: str,
    idempotency_key: str,
    request_hash: str,
    reverses_id: int | None,
    created_at: dt.datetime | str,
    postings: Sequence[Sequence[int]],
) -> dict[str, Any]:
    """Everything a transaction records; ``postings`` are [posting id, account, amount, entry number, balance
    after] in posting-id order."""
    return {
        "id": txn_id,
        "kind": kind,
        "memo": memo,
        "actor": actor_id,
        "subject": subject,
        "ref_type": ref_type,
        "ref_id": ref_id,
        "policy": policy_id,
        "area": area,
        "key": idempotency_key,
        "request": request_hash,
        "reverses": reverses_id,
        "at": created_at if isinstance(created_at, str) else utc_text(created_at),
        "postings": [list(p) for p in postings],
    }


def leaf_hash(document: dict[str, Any]) -> bytes:
    return hashlib.sha256(b"\x00" + canonical(document)).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    return _root(leaves)


def _root(leaves: Sequence[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node(_root(leaves[:k]), _root(leaves[k:]))


def inclusion_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    if not 0 <= index < len(leaves):
        raise IndexError(index)
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*inclusion_path(leaves[:k], index), _root(leaves[k:])]
    return [*inclusion_path(leaves[k:], index - k), _root(leaves[:k])]


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root a leaf and its inclusion path lead to (RFC 9162 §2.1.3.2); None if the path is malformed."""
    if index >= size or index < 0:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def block_document(
    *,
    seq: int,
    prev_hash: str,
    root: str,
    tx_count: int,
    first_txn_id: int,
    last_txn_id: int,
    created_at: dt.datetime | str,
    key_id: str,
) -> dict[str, Any]:
    return {
        "seq": seq,
        "prev": prev_hash,
        "root": root,
        "count": tx_count,
        "first": first_txn_id,
        "last": last_txn_id,
        "at": created_at if isinstance(created_at, str) else utc_text(created_at),
        "key": key_id,
    }


def block_hash(document: dict[str, Any]) -> str:
    return hashlib.sha256(b"\x02" + canonical(document)).hexdigest()


def public_key_hex(private_key: Ed25519PrivateKey) -> str:
    return private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def key_id_of(public_hex: str) -> str:
    return hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()[:32]


def sign(private_key: Ed25519PrivateKey, message: bytes) -> str:
    return private_key.sign(message).hex()


def signature_valid(public_hex: str, message: bytes, signature_hex: str) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(
            bytes.fromhex(signature_hex), message
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def statement_body(statement: dict[str, Any]) -> bytes:
    """What a statement's signature covers: everything but the signature."""
    return canonical({k: v for k, v in statement.items() if k != "signature"})


def verify_statement(statement: dict[str, Any], public_hex: str) -> list[str]:
    """Every reason the statement cannot be trusted with this public key; empty when it holds.

    Checks the statement's own signature; that each entry's running balance follows from the one before and
    the last equals the stated balance; and, when it is anchored, that the anchor transaction carries a
    posting of this account, lies in the sealed block by its Merkle path, and that the block's hash and
    signature are the platform's.
    """
    problems: list[str] = []
    if statement.get("format") != STATEMENT_FORMAT:
        return [f"not a TimeBank statement (format {statement.get('format')!r})"]
    if statement.get("key_id") != key_id_of(public_hex):
        problems.append("signed with another key than the one given")
    if not signature_valid(public_hex, statement_body(statement), str(statement.get("signature", ""))):
        problems.append("the statement's signature does not match its contents")
    account = statement.get("account", {})
    entries = statement.get("entries", [])
    for before, after in itertools.pairwise(entries):
        if (
            after["seq"] != before["seq"] + 1
            or after["balance_after"] != before["balance_after"] + after["amount"]
        ):
            problems.append(f"entry {after['seq']} does not follow from entry {before['seq']}")
    if entries and entries[-1]["balance_after"] != account.get("balance"):
        problems.append("the last entry's balance is not the stated balance")
    anchor = statement.get("anchor")
    if anchor:
        problems.extend(_verify_anchor(anchor, account.get("id"), public_hex))
        by_seq = {e["seq"]: e for e in entries}
        for _id, account_id, amount, seq, balance_after in anchor["transaction"]["postings"]:
            entry = by_seq.get(seq)
            if (
                account_id == account.get("id")
                and entry is not None
                and (entry["amount"], entry["balance_after"], entry["transaction"])
                != (amount, balance_after, anchor["transaction"]["id"])
            ):
                problems.append(f"entry {seq} differs from the sealed record of it")
    return problems


def verify_document(document: dict[str, Any], public_hex: str) -> list[str]:
    """Check a statement or a QR receipt offline; every problem found, empty when it holds."""
    if document.get("format") == RECEIPT_FORMAT:
        problems = []
        if document.get("key_id") != key_id_of(public_hex):
            problems.append("signed with another key than the one given")
        if not signature_valid(public_hex, statement_body(document), str(document.get("signature", ""))):
            problems.append("the receipt's signature does not match its contents")
        return problems
    return verify_statement(document, public_hex)


def _verify_anchor(anchor: dict[str, Any], account_id: Any, public_hex: str) -> list[str]:
    problems = []
    block = anchor["block"]
    document = anchor["transaction"]
    if not any(p[1] == account_id for p in document["postings"]):
        problems.append("the anchor transaction has no posting of this account")
    path = [bytes.fromhex(h) for h in anchor["path"]]
    root = root_from_path(leaf_hash(document), anchor["index"], block["count"], path)
    if root is None or root.hex() != block["root"]:
        problems.append("the anchor transaction is not in the sealed block")
    if block_hash(block) != anchor["block_hash"]:
        problems.append("the block's hash does not match its contents")
    if not signature_valid(public_hex, bytes.fromhex(anchor["block_hash"]), anchor["block_signature"]):
        problems.append("the block's signature is not the platform's")
    return problems
