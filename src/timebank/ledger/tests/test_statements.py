"""Signed statements and receipts a member can check offline, and the keyset-paged account statement."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from timebank.ledger import errors, proofs
from timebank.ledger import services as ledger
from timebank.ledger.engine import Leg, PostRequest
from timebank.ledger.models import Account, Block
from timebank.ledger.sealing import ledger_seal
from timebank.ledger.selectors import PAGE_MAX, Entry, account_balance, account_statement
from timebank.ledger.signing import platform_key
from timebank.ledger.statements import receipt_of, statement_issue
from timebank.ledger.tests.conftest import funded, key
from timebank.regions.models import Region

Document = dict[str, Any]


@dataclass
class History:
    alice: Account
    bob: Account
    block: Block
    last_sealed_txn: int


def history(fund: Account, region: Region) -> History:
    """alice: funded 600, pays bob 90 and 30, the 30 is reversed, bob gives back 15 — all sealed; then, not
    yet sealed, she pays bob 45 and is funded 60 more. Balance 540 over 7 entries."""
    alice = funded(fund, region, 600)
    bob = funded(fund, region, 0)
    ledger.transfer(idempotency_key=key(), source=alice.pk, destination=bob.pk, minutes=90, memo="visit")
    wrong = ledger.transfer(idempotency_key=key(), source=alice.pk, destination=bob.pk, minutes=30)
    ledger.transaction_reverse(idempotency_key=key(), transaction_id=wrong.transaction_id, memo="by mistake")
    back = ledger.transfer(idempotency_key=key(), source=bob.pk, destination=alice.pk, minutes=15)
    block = ledger_seal(settle_seconds=0)
    assert block is not None
    ledger.transfer(idempotency_key=key(), source=alice.pk, destination=bob.pk, minutes=45, memo="洗衣")
    ledger.transfer(idempotency_key=key(), source=fund.pk, destination=alice.pk, minutes=60, kind="funding")
    alice.refresh_from_db()
    bob.refresh_from_db()
    return History(alice, bob, block, back.transaction_id)


def as_json(document: Document) -> Document:
    """The document as a member keeps it: written to a file and read back."""
    loaded: Document = json.loads(json.dumps(document, ensure_ascii=False))
    return loaded


def public_hex() -> str:
    return platform_key().public_hex


def resigned(document: Document) -> Document:
    """The document signed again with the platform key, as a dishonest operator could."""
    document = {k: v for k, v in document.items() if k != "signature"}
    document["signature"] = platform_key().sign(proofs.statement_body(document))
    return document


def flip_hex(text: str) -> str:
    return ("1" if text[0] == "0" else "0") + text[1:]


def other_key_hex() -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return proofs.public_key_hex(Ed25519PrivateKey.from_private_bytes(b"\x05" * 32))


def anchor_posting(statement: Document) -> list[int]:
    account_id = statement["account"]["id"]
    postings: list[list[int]] = statement["anchor"]["transaction"]["postings"]
    return next(p for p in postings if p[1] == account_id)


# --- a signed statement -----------------------------------------------------------------------------------


def test_a_statement_holds_the_balance_the_recent_entries_and_the_latest_sealed_anchor(fund, shanghai):
    # given
    h = history(fund, shanghai)

    # when
    statement = as_json(statement_issue(h.alice))

    # then
    assert statement["format"] == proofs.STATEMENT_FORMAT
    assert statement["account"] == {
        "id": h.alice.pk,
        "kind": "member",
        "area": "310000",
        "balance": 540,
        "held": 0,
        "available": 540,
        "entries": 7,
    }
    assert [(e["seq"], e["amount"], e["balance_after"]) for e in statement["entries"]] == [
        (1, 600, 600),
        (2, -90, 510),
        (3, -30, 480),
        (4, 30, 510),
        (5, 15, 525),
        (6, -45, 480),
        (7, 60, 540),
    ]
    assert [e["kind"] for e in statement["entries"]][2:4] == ["transfer", "reversal"]
    anchor = statement["anchor"]
    assert anchor["transaction"]["id"] == h.last_sealed_txn
    assert anchor["block"]["seq"] == h.block.seq and anchor["block_hash"] == h.block.hash
    assert anchor["block"]["count"] == 5
    assert anchor_posting(statement)[2:] == [15, 5, 525]
    assert statement["key_id"] == platform_key().key_id


def test_a_statement_verifies_with_the_platform_key(fund, shanghai):
    # given
    h = history(fund, shanghai)

    # when
    problems = proofs.verify_document(as_json(statement_issue(h.alice)), public_hex())

    # then
    assert problems == []


def test_the_platform_key_is_the_configured_rfc_8032_test_key(db):
    # when / then
    assert public_hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"


def test_a_statement_keeps_only_the_last_entries_oldest_first(fund, shanghai):
    # given
    h = history(fund, shanghai)

    # when
    statement = as_json(statement_issue(h.alice, entries=3))

    # then
    assert [e["seq"] for e in statement["entries"]] == [5, 6, 7]
    assert proofs.verify_document(statement, public_hex()) == []


def set_in(*path: str | int, to: Callable[[Any], Any]) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        target: Any = document
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = to(target[path[-1]])

    return change


def edit_anchor_posting(to: Callable[[list[int]], list[int]]) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        postings = document["anchor"]["transaction"]["postings"]
        i = next(i for i, p in enumerate(postings) if p[1] == document["account"]["id"])
        postings[i] = to(postings[i])

    return change


def raise_sealed_entry_by_100(document: Document) -> None:
    """Entry 5 (the sealed one) and every balance from it on, consistently: only the anchor can tell."""
    document["entries"][4]["amount"] += 100
    for entry in document["entries"][4:]:
        entry["balance_after"] += 100
    document["account"]["balance"] += 100


def lower_the_other_side(document: Document) -> None:
    for posting in document["anchor"]["transaction"]["postings"]:
        if posting[1] != document["account"]["id"]:
            posting[2] -= 1


SIGNATURE = "the statement's signature does not match its contents"
NOT_IN_BLOCK = "the anchor transaction is not in the sealed block"
BLOCK_HASH = "the block's hash does not match its contents"
BLOCK_SIGNATURE = "the block's signature is not the platform's"
TAMPERING: dict[str, tuple[Callable[[Document], None], list[str]]] = {
    "an entry's amount": (
        set_in("entries", 2, "amount", to=lambda v: v + 1),
        ["entry 3 does not follow from entry 2"],
    ),
    "an entry's balance": (
        set_in("entries", 2, "balance_after", to=lambda v: v + 1),
        ["entry 3 does not follow from entry 2", "entry 4 does not follow from entry 3"],
    ),
    "the sealed entry's amount and balance together": (
        raise_sealed_entry_by_100,
        ["entry 5 differs from the sealed record of it"],
    ),
    "the last entry's balance": (
        set_in("entries", -1, "balance_after", to=lambda v: v + 1),
        ["entry 7 does not follow from entry 6", "the last entry's balance is not the stated balance"],
    ),
    "the balance": (
        set_in("account", "balance", to=lambda v: v + 60),
        ["the last entry's balance is not the stated balance"],
    ),
    "the account": (
        set_in("account", "id", to=lambda v: v + 1000),
        ["the anchor transaction has no posting of this account"],
    ),
    "the Merkle path": (set_in("anchor", "path", 0, to=flip_hex), [NOT_IN_BLOCK]),
    "the Merkle path, truncated": (set_in("anchor", "path", to=lambda p: p[:-1]), [NOT_IN_BLOCK]),
    "the leaf index": (set_in("anchor", "index", to=lambda i: i - 1), [NOT_IN_BLOCK]),
    "the block hash": (set_in("anchor", "block_hash", to=flip_hex), [BLOCK_HASH, BLOCK_SIGNATURE]),
    "the block signature": (set_in("anchor", "block_signature", to=flip_hex), [BLOCK_SIGNATURE]),
    "the block's root": (set_in("anchor", "block", "root", to=flip_hex), [NOT_IN_BLOCK, BLOCK_HASH]),
    "the block's count": (set_in("anchor", "block", "count", to=lambda n: n + 1), [BLOCK_HASH]),
    "the anchor posting's amount": (
        edit_anchor_posting(lambda p: [p[0], p[1], p[2] + 1, p[3], p[4] + 1]),
        [NOT_IN_BLOCK, "entry 5 differs from the sealed record of it"],
    ),
    "the other side of the anchor transaction": (lower_the_other_side, [NOT_IN_BLOCK]),
    "the anchor transaction's memo": (
        set_in("anchor", "transaction", "memo", to=lambda m: m + "!"),
        [NOT_IN_BLOCK],
    ),
}


@pytest.mark.parametrize("what", list(TAMPERING))
def test_a_statement_edited_after_signing_fails_naming_the_problem(fund, shanghai, what):
    # given
    h = history(fund, shanghai)
    statement = as_json(statement_issue(h.alice))
    change, expected = TAMPERING[what]

    # when
    change(statement)
    problems = proofs.verify_document(statement, public_hex())

    # then
    assert SIGNATURE in problems
    for problem in expected:
        assert problem in problems


@pytest.mark.parametrize("what", list(TAMPERING))
def test_each_check_holds_on_its_own_even_when_the_statement_is_signed_again(fund, shanghai, what):
    """The anchor ties the statement to a block sealed earlier: an operator who signs a false statement
    later is caught by it, not by the statement's own signature."""
    # given
    h = history(fund, shanghai)
    statement = as_json(statement_issue(h.alice))
    change, expected = TAMPERING[what]

    # when
    change(statement)
    problems = proofs.verify_document(resigned(statement), public_hex())

    # then
    assert SIGNATURE not in problems
    for problem in expected:
        assert problem in problems


def test_an_altered_signature_fails(fund, shanghai):
    # given
    h = history(fund, shanghai)
    statement = as_json(statement_issue(h.alice))

    # when
    statement["signature"] = flip_hex(statement["signature"])

    # then
    assert proofs.verify_document(statement, public_hex()) == [SIGNATURE]


def test_another_public_key_fails(fund, shanghai):
    # given
    h = history(fund, shanghai)
    statement = as_json(statement_issue(h.alice))

    # when
    problems = proofs.verify_document(statement, other_key_hex())

    # then
    assert "signed with another key than the one given" in problems
    assert SIGNATURE in problems
    assert BLOCK_SIGNATURE in problems


def test_a_document_that_is_not_a_statement_fails(fund, shanghai):
    # given
    h = history(fund, shanghai)
    statement = as_json(statement_issue(h.alice))

    # when
    statement["format"] = "something/1"

    # then
    assert proofs.verify_document(statement, public_hex()) == [
        "not a TimeBank statement (format 'something/1')"
    ]


def test_a_statement_with_nothing_sealed_has_no_anchor_and_verifies(fund, shanghai):
    # given an account with entries, none of them sealed yet
    alice = funded(fund, shanghai, 600)
    bob = funded(fund, shanghai, 0)
    ledger.transfer(idempotency_key=key(), source=alice.pk, destination=bob.pk, minutes=90)

    # when
    statement = as_json(statement_issue(alice))

    # then
    assert statement["anchor"] is None
    assert [e["balance_after"] for e in statement["entries"]] == [600, 510]
    assert proofs.verify_document(statement, public_hex()) == []


def test_a_statement_of_an_empty_account_verifies(fund, shanghai):
    # given
    empty = funded(fund, shanghai, 0)

    # when
    statement = as_json(statement_issue(empty))

    # then
    assert statement["entries"] == [] and statement["anchor"] is None
    assert statement["account"]["balance"] == 0
    assert proofs.verify_document(statement, public_hex()) == []
    statement["account"]["balance"] = 60
    assert proofs.verify_document(statement, public_hex()) == [SIGNATURE]


def test_the_anchor_is_the_block_of_the_latest_sealed_entry(fund, shanghai):
    # given alice's entries sealed in block 1, then bob and carol trading, sealed in block 2
    h = history(fund, shanghai)
    carol = funded(fund, shanghai, 100)
    ledger.transfer(idempotency_key=key(), source=carol.pk, destination=h.bob.pk, minutes=10)
    second = ledger_seal(settle_seconds=0)
    assert second is not None and second.seq == h.block.seq + 1

    # when
    of_alice = as_json(statement_issue(h.alice))
    of_bob = as_json(statement_issue(h.bob))

    # then her latest sealed entry is the 7th, sealed in block 2 with her last unsealed ones
    assert of_alice["anchor"]["block"]["seq"] == second.seq
    assert anchor_posting(of_alice)[3] == 7
    assert anchor_posting(of_bob)[3] == of_bob["account"]["entries"]
    assert proofs.verify_document(of_alice, public_hex()) == []
    assert proofs.verify_document(of_bob, public_hex()) == []


def test_an_old_anchor_still_verifies_after_later_blocks(fund, shanghai):
    # given alice's last sealed entry in block 1, and other accounts sealed in block 2
    h = history(fund, shanghai)
    ledger_seal(settle_seconds=0)
    carol = funded(fund, shanghai, 100)
    dave = funded(fund, shanghai, 0)
    ledger.transfer(idempotency_key=key(), source=carol.pk, destination=dave.pk, minutes=10)
    third = ledger_seal(settle_seconds=0)
    assert third is not None

    # when
    statement = as_json(statement_issue(h.alice))

    # then
    assert statement["anchor"]["block"]["seq"] == third.seq - 1
    assert proofs.verify_document(statement, public_hex()) == []


# --- the QR receipt ---------------------------------------------------------------------------------------


def test_a_receipt_carries_the_statement_facts_and_verifies(fund, shanghai):
    # given
    h = history(fund, shanghai)
    statement = statement_issue(h.alice)

    # when
    receipt = as_json(receipt_of(statement))

    # then
    assert receipt["format"] == proofs.RECEIPT_FORMAT
    assert (receipt["account"], receipt["balance"], receipt["entries"]) == (h.alice.pk, 540, 7)
    assert (receipt["block"], receipt["block_hash"]) == (h.block.seq, h.block.hash)
    assert proofs.verify_document(receipt, public_hex()) == []


@pytest.mark.parametrize(("field", "value"), [("balance", 541), ("account", 1), ("entries", 8)])
def test_an_edited_receipt_fails(fund, shanghai, field, value):
    # given
    h = history(fund, shanghai)
    receipt = as_json(receipt_of(statement_issue(h.alice)))

    # when
    receipt[field] = value

    # then
    assert proofs.verify_document(receipt, public_hex()) == [
        "the receipt's signature does not match its contents"
    ]


def test_a_receipt_fails_with_another_key(fund, shanghai):
    # given
    h = history(fund, shanghai)
    receipt = as_json(receipt_of(statement_issue(h.alice)))

    # when
    problems = proofs.verify_document(receipt, other_key_hex())

    # then
    assert "signed with another key than the one given" in problems
    assert "the receipt's signature does not match its contents" in problems


def test_a_receipt_of_an_unsealed_account_verifies(fund, shanghai):
    # given
    alice = funded(fund, shanghai, 600)

    # when
    receipt = as_json(receipt_of(statement_issue(alice)))

    # then
    assert receipt["block"] is None and receipt["block_hash"] is None
    assert proofs.verify_document(receipt, public_hex()) == []


# --- the paged account statement --------------------------------------------------------------------------


def with_entries(fund: Account, region: Region, count: int) -> Account:
    """An account with ``count`` entries of varied amounts, some in and some out."""
    account = funded(fund, region, 1)
    requests = []
    for i in range(2, count + 1):
        legs = (
            (Leg(account.pk, -1), Leg(fund.pk, 1)) if i % 3 == 0 else (Leg(fund.pk, -i), Leg(account.pk, i))
        )
        requests.append(PostRequest(idempotency_key=key("many"), kind="transfer", legs=legs))
    ledger.transactions_post_batch(requests)
    account.refresh_from_db()
    assert account.entries == count
    return account


def assert_running_balances(entries: list[Entry]) -> None:
    """Newest first: each balance is the one before it plus its amount."""
    for newer, older in itertools.pairwise(entries):
        assert newer.seq == older.seq + 1
        assert newer.balance_after == older.balance_after + newer.amount, newer.seq


def test_statement_pages_go_newest_first_by_entry_number(fund, shanghai, django_assert_max_num_queries):
    # given
    account = with_entries(fund, shanghai, 120)

    # when
    pages = []
    before = None
    while True:
        with django_assert_max_num_queries(1):
            page = account_statement(account.pk, before=before, limit=50)
        pages.append(page)
        if page.next_before is None:
            break
        before = page.next_before
        assert len(pages) < 10

    # then
    assert [len(p.entries) for p in pages] == [50, 50, 20]
    assert [p.next_before for p in pages] == [71, 21, None]
    every = [e for p in pages for e in p.entries]
    assert [e.seq for e in every] == list(range(120, 0, -1))
    assert_running_balances(every)
    assert every[0].balance_after == account.balance
    assert every[-1].balance_after == every[-1].amount == 1


def test_a_page_continues_where_the_last_stopped_even_after_new_entries(fund, shanghai):
    # given the first page read
    account = with_entries(fund, shanghai, 120)
    first = account_statement(account.pk, limit=50)

    # when new entries arrive before the next page is read
    ledger.transfer(idempotency_key=key(), source=fund.pk, destination=account.pk, minutes=5)
    ledger.transfer(idempotency_key=key(), source=fund.pk, destination=account.pk, minutes=6)
    second = account_statement(account.pk, before=first.next_before, limit=50)

    # then the next page starts right below the first, not shifted by the new entries
    assert first.entries[-1].seq == 71
    assert [e.seq for e in second.entries] == list(range(70, 20, -1))
    assert second.entries[0].balance_after == first.entries[-1].balance_after - first.entries[-1].amount


@pytest.mark.parametrize("count", [3, 120])
def test_a_page_is_one_query_whatever_the_account_size(fund, shanghai, django_assert_max_num_queries, count):
    # given
    account = with_entries(fund, shanghai, count)

    # when / then
    with django_assert_max_num_queries(1):
        first = account_statement(account.pk, limit=50)
    with django_assert_max_num_queries(1):
        account_statement(account.pk, before=first.entries[-1].seq, limit=50)


def test_an_entry_carries_its_transaction(fund, shanghai):
    # given
    h = history(fund, shanghai)

    # when
    page = account_statement(h.alice.pk, limit=5)

    # then
    assert [(e.seq, e.kind, e.memo, e.amount) for e in page.entries] == [
        (7, "funding", "", 60),
        (6, "transfer", "洗衣", -45),
        (5, "transfer", "", 15),
        (4, "reversal", "by mistake", 30),
        (3, "transfer", "", -30),
    ]
    assert page.next_before == 3
    assert_running_balances(page.entries)


@pytest.mark.parametrize(("limit", "size"), [(0, 1), (-5, 1), (PAGE_MAX + 50, PAGE_MAX)])
def test_the_page_size_is_kept_between_one_and_the_maximum(fund, shanghai, limit, size):
    # given
    account = with_entries(fund, shanghai, PAGE_MAX + 10)

    # when
    page = account_statement(account.pk, limit=limit)

    # then
    assert len(page.entries) == size


def test_an_empty_account_has_an_empty_statement(fund, shanghai):
    # given
    empty = funded(fund, shanghai, 0)

    # when
    page = account_statement(empty.pk)

    # then
    assert page.entries == [] and page.next_before is None


def test_the_balance_is_one_query(fund, shanghai, django_assert_num_queries):
    # given
    h = history(fund, shanghai)
    ledger.hold_place(idempotency_key=key(), account_id=h.alice.pk, minutes=40)

    # when
    with django_assert_num_queries(1):
        balance = account_balance(h.alice.pk)

    # then
    assert (balance.balance, balance.held, balance.available, balance.entries) == (540, 40, 500, 7)


def test_the_balance_of_an_unknown_account_is_an_error(db):
    # when / then
    with pytest.raises(errors.AccountNotFound):
        account_balance(999_999)
