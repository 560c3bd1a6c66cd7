"""Proofs without a database: Merkle trees and inclusion paths (RFC 9162), Ed25519 (RFC 8032), leaf hashes."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from timebank.ledger import proofs

RFC8032_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
RFC8032_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
RFC8032_EMPTY_SIGNATURE = (
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
    "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
SIZES = range(1, 21)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaves_of(size: int) -> list[bytes]:
    return [sha256(b"leaf %d" % i) for i in range(size)]


def flipped(data: bytes, at: int = 0) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def rfc8032_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(RFC8032_SEED))


# --- Merkle trees -----------------------------------------------------------------------------------------


def test_the_root_of_an_empty_tree_is_the_hash_of_nothing():
    # when
    root = proofs.merkle_root([])

    # then
    assert root == sha256(b"")
    assert root.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_the_root_of_one_leaf_is_the_leaf():
    # given
    leaf = sha256(b"only")

    # when / then
    assert proofs.merkle_root([leaf]) == leaf
    assert proofs.inclusion_path([leaf], 0) == []
    assert proofs.root_from_path(leaf, 0, 1, []) == leaf


def test_two_and_three_leaves_follow_rfc_9162():
    # given
    l0, l1, l2 = leaves_of(3)

    # when
    two = proofs.merkle_root([l0, l1])
    three = proofs.merkle_root([l0, l1, l2])

    # then: interior nodes are H(0x01 ‖ left ‖ right), split at the largest power of two below n
    assert two == sha256(b"\x01" + l0 + l1)
    assert three == sha256(b"\x01" + sha256(b"\x01" + l0 + l1) + l2)


def test_five_leaves_split_four_and_one():
    # given
    h = leaves_of(5)

    # when
    root = proofs.merkle_root(h)

    # then
    left = sha256(b"\x01" + sha256(b"\x01" + h[0] + h[1]) + sha256(b"\x01" + h[2] + h[3]))
    assert root == sha256(b"\x01" + left + h[4])


@pytest.mark.parametrize("size", SIZES)
def test_every_leaf_path_leads_back_to_the_root(size):
    # given
    leaves = leaves_of(size)
    root = proofs.merkle_root(leaves)

    for index in range(size):
        # when
        path = proofs.inclusion_path(leaves, index)

        # then
        assert proofs.root_from_path(leaves[index], index, size, path) == root, index


@pytest.mark.parametrize("size", SIZES)
def test_a_wrong_index_does_not_lead_to_the_root(size):
    # given
    leaves = leaves_of(size)
    root = proofs.merkle_root(leaves)

    for index in range(size):
        path = proofs.inclusion_path(leaves, index)

        # when
        found = {o: proofs.root_from_path(leaves[index], o, size, path) for o in range(-1, size + 1)}

        # then only the true index leads to the root; indices outside the tree are malformed
        assert [o for o, r in found.items() if r == root] == [index]
        assert found[-1] is None and found[size] is None


@pytest.mark.parametrize("size", SIZES)
def test_a_wrong_size_does_not_prove_inclusion(size):
    """A path binds its tree size only through its shape: a size with the same shape leads to the same root
    (which is why a block's signed hash covers its count). For any other size it is malformed, and it never
    proves inclusion in the tree of that size."""
    # given
    every = leaves_of(22)
    leaves = every[:size]

    for index in range(size):
        path = proofs.inclusion_path(leaves, index)
        for other in range(1, 22):
            if other == size:
                continue
            # when
            found = proofs.root_from_path(leaves[index], index, other, path)

            # then
            assert found != proofs.merkle_root(every[:other]), (index, other)
            if index >= other or len(proofs.inclusion_path(every[:other], index)) != len(path):
                assert found is None, (index, other)


@pytest.mark.parametrize("size", SIZES)
def test_a_flipped_byte_in_the_leaf_or_any_path_element_fails(size):
    # given
    leaves = leaves_of(size)
    root = proofs.merkle_root(leaves)

    for index in range(size):
        path = proofs.inclusion_path(leaves, index)

        # when / then: the leaf
        assert proofs.root_from_path(flipped(leaves[index], 31), index, size, path) != root
        # and each path element, at its first and last byte
        for i in range(len(path)):
            for at in (0, 31):
                tampered = [*path[:i], flipped(path[i], at), *path[i + 1 :]]
                assert proofs.root_from_path(leaves[index], index, size, tampered) != root, (index, i)


@pytest.mark.parametrize("size", SIZES[1:])
def test_a_truncated_or_extended_path_is_malformed(size):
    # given
    leaves = leaves_of(size)

    for index in range(size):
        path = proofs.inclusion_path(leaves, index)

        # when / then
        assert proofs.root_from_path(leaves[index], index, size, path[:-1]) is None, index
        assert proofs.root_from_path(leaves[index], index, size, path[1:]) is None, index
        assert proofs.root_from_path(leaves[index], index, size, [*path, path[-1]]) is None, index


@pytest.mark.parametrize("index", [-1, 3, 4])
def test_there_is_no_path_for_a_leaf_outside_the_tree(index):
    # given
    leaves = leaves_of(3)

    # when / then
    with pytest.raises(IndexError):
        proofs.inclusion_path(leaves, index)


# --- Ed25519 ----------------------------------------------------------------------------------------------


def test_the_rfc_8032_test_1_key_has_its_published_public_key():
    # when
    public = proofs.public_key_hex(rfc8032_key())

    # then
    assert public == RFC8032_PUBLIC
    assert proofs.key_id_of(public) == hashlib.sha256(bytes.fromhex(RFC8032_PUBLIC)).hexdigest()[:32]


def test_the_rfc_8032_test_1_key_signs_the_empty_message_as_published():
    # when
    signature = proofs.sign(rfc8032_key(), b"")

    # then
    assert signature == RFC8032_EMPTY_SIGNATURE
    assert proofs.signature_valid(RFC8032_PUBLIC, b"", RFC8032_EMPTY_SIGNATURE)


def test_a_signature_is_not_valid_for_another_message_key_or_signature():
    # given
    other_public = proofs.public_key_hex(Ed25519PrivateKey.from_private_bytes(b"\x07" * 32))
    bad_signature = flipped(bytes.fromhex(RFC8032_EMPTY_SIGNATURE), 63).hex()

    # when / then
    assert not proofs.signature_valid(RFC8032_PUBLIC, b"x", RFC8032_EMPTY_SIGNATURE)
    assert not proofs.signature_valid(other_public, b"", RFC8032_EMPTY_SIGNATURE)
    assert not proofs.signature_valid(RFC8032_PUBLIC, b"", bad_signature)


@pytest.mark.parametrize(
    ("public", "signature"),
    [
        (RFC8032_PUBLIC, ""),
        (RFC8032_PUBLIC, "not hex"),
        (RFC8032_PUBLIC, RFC8032_EMPTY_SIGNATURE[:-2]),
        ("", RFC8032_EMPTY_SIGNATURE),
        ("zz" * 32, RFC8032_EMPTY_SIGNATURE),
        (RFC8032_PUBLIC[:-2], RFC8032_EMPTY_SIGNATURE),
    ],
)
def test_malformed_keys_and_signatures_are_invalid_not_errors(public, signature):
    # when / then
    assert proofs.signature_valid(public, b"", signature) is False


# --- canonical JSON and leaf hashes -----------------------------------------------------------------------


def test_canonical_json_does_not_depend_on_key_order():
    # given the same object built in two orders
    one = {"b": 1, "a": {"y": [1, 2], "x": "上海"}, "c": None}
    other = {"c": None, "a": {"x": "上海", "y": [1, 2]}, "b": 1}

    # when / then
    assert proofs.canonical(one) == proofs.canonical(other)
    assert proofs.canonical(one) == '{"a":{"x":"上海","y":[1,2]},"b":1,"c":null}'.encode()


def test_canonical_json_keeps_list_order():
    # when / then
    assert proofs.canonical([1, 2]) != proofs.canonical([2, 1])


BASE: dict[str, Any] = {
    "txn_id": 7,
    "kind": "transfer",
    "memo": "visit",
    "actor_id": 3,
    "subject": "order:9",
    "ref_type": "care.order",
    "ref_id": "9",
    "policy_id": 2,
    "area": "310000",
    "idempotency_key": "k-7",
    "request_hash": "ab" * 32,
    "reverses_id": None,
    "created_at": dt.datetime(2025, 3, 1, 8, 30, 0, 123456, tzinfo=dt.UTC),
    "postings": [[11, 1, -90, 4, 510], [12, 2, 90, 1, 90]],
}
CHANGES: list[tuple[str, Any]] = [
    ("txn_id", 8),
    ("kind", "gift"),
    ("memo", "visit!"),
    ("actor_id", None),
    ("actor_id", 4),
    ("subject", "order:10"),
    ("ref_type", "exchange.gift"),
    ("ref_id", "10"),
    ("policy_id", None),
    ("area", "110000"),
    ("idempotency_key", "k-8"),
    ("request_hash", "cd" * 32),
    ("reverses_id", 6),
    ("created_at", dt.datetime(2025, 3, 1, 8, 30, 0, 123457, tzinfo=dt.UTC)),
    ("postings", [[11, 1, -91, 4, 509], [12, 2, 91, 1, 91]]),
    ("postings", [[11, 1, -90, 4, 510], [12, 3, 90, 1, 90]]),
    ("postings", [[11, 1, -90, 5, 510], [12, 2, 90, 1, 90]]),
    ("postings", [[11, 1, -90, 4, 511], [12, 2, 90, 1, 90]]),
    ("postings", [[13, 1, -90, 4, 510], [12, 2, 90, 1, 90]]),
    ("postings", [[12, 2, 90, 1, 90], [11, 1, -90, 4, 510]]),
]


def test_the_leaf_hash_is_sha256_of_0x00_and_the_canonical_document():
    # given
    document = proofs.transaction_document(**BASE)

    # when / then
    assert proofs.leaf_hash(document) == sha256(b"\x00" + proofs.canonical(document))
    assert document["at"] == "2025-03-01T08:30:00.123456Z"


def test_the_time_is_the_same_instant_whatever_its_time_zone():
    # given the same instant in Shanghai time
    shanghai = dt.timezone(dt.timedelta(hours=8))
    local = {**BASE, "created_at": BASE["created_at"].astimezone(shanghai)}

    # when / then
    assert proofs.leaf_hash(proofs.transaction_document(**local)) == proofs.leaf_hash(
        proofs.transaction_document(**BASE)
    )


@pytest.mark.parametrize(("field", "value"), CHANGES, ids=[f"{f}-{i}" for i, (f, _v) in enumerate(CHANGES)])
def test_any_change_to_a_transaction_changes_its_document_and_leaf_hash(field, value):
    # given
    original = proofs.transaction_document(**BASE)

    # when
    changed = proofs.transaction_document(**{**BASE, field: value})

    # then
    assert changed != original
    assert proofs.leaf_hash(changed) != proofs.leaf_hash(original)


BLOCK: dict[str, Any] = {
    "seq": 3,
    "prev_hash": "11" * 32,
    "root": "22" * 32,
    "tx_count": 5,
    "first_txn_id": 10,
    "last_txn_id": 14,
    "created_at": "2025-03-01T08:30:00.000000Z",
    "key_id": "33" * 16,
}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seq", 4),
        ("prev_hash", "12" * 32),
        ("root", "23" * 32),
        ("tx_count", 6),
        ("first_txn_id", 9),
        ("last_txn_id", 15),
        ("created_at", "2025-03-01T08:30:00.000001Z"),
        ("key_id", "34" * 16),
    ],
)
def test_any_change_to_a_block_changes_its_hash(field, value):
    # given
    original = proofs.block_hash(proofs.block_document(**BLOCK))

    # when
    changed = proofs.block_hash(proofs.block_document(**{**BLOCK, field: value}))

    # then
    assert changed != original
