"""Signed statements a member can keep: what the account holds, its recent entries, and the sealed block its
latest sealed entry is anchored in — checkable offline with the platform's public key alone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from timebank.audit.services import audit_record
from timebank.common.errors import NotFound
from timebank.ledger import proofs
from timebank.ledger.models import Account, Block, BlockEntry, Posting, Transaction
from timebank.ledger.sealing import TXN_FIELDS, documents, postings_of
from timebank.ledger.selectors import account_statement
from timebank.ledger.signing import PlatformKey, platform_key
from timebank.people.access import Perm, access_member_check

if TYPE_CHECKING:
    from timebank.people.models import Member, User


def block_document_of(block: Block, *, key_id: str | None = None) -> dict[str, Any]:
    """What a block's hash covers, from the stored block (``key_id`` to sign it with another key)."""
    return proofs.block_document(
        seq=block.seq,
        prev_hash=block.prev_hash,
        root=block.root,
        tx_count=block.tx_count,
        first_txn_id=block.first_txn_id,
        last_txn_id=block.last_txn_id,
        created_at=block.created_at,
        key_id=key_id or block.key_id,
    )


def _anchor(account: Account) -> dict[str, Any] | None:
    latest = (
        Posting.objects.filter(account=account, transaction__block_entry__isnull=False)
        .order_by("-account_seq")
        .values_list("transaction_id", flat=True)
        .first()
    )
    if latest is None:
        return None
    entry = BlockEntry.objects.select_related("block").get(transaction_id=latest)
    block: Block = entry.block
    leaves = [bytes.fromhex(h) for h in block.entries.order_by("position").values_list("leaf", flat=True)]
    row = Transaction.objects.filter(pk=latest).values_list(*TXN_FIELDS).get()
    document = next(documents([row], postings_of(latest, latest)))
    return {
        "block": block_document_of(block),
        "block_hash": block.hash,
        "block_signature": block.signature,
        "transaction": document,
        "index": entry.position,
        "path": [h.hex() for h in proofs.inclusion_path(leaves, entry.position)],
    }


def statement_issue(account: Account, *, entries: int = 20) -> dict[str, Any]:
    """A signed statement of ``account`` with its last ``entries`` entries (oldest first)."""
    key = platform_key()
    with transaction.atomic():
        # The account stays still while it is read: balance, entries and anchor agree.
        account = Account.objects.select_for_update().get(pk=account.pk)
        return _statement(account, key, entries)


def member_statement_issue(*, actor: User, member: Member) -> dict[str, Any]:
    """The signed statement of ``member``'s time account, for the member themselves or staff who may see them.
    Issued to anyone but the member it is audit-logged: it shows the member's account to someone else."""
    access_member_check(actor, member, Perm.PEOPLE_VIEW)
    account = member.account
    if account is None:
        raise NotFound(_("This member has no time account yet."), code="no_account")
    with transaction.atomic():
        document = statement_issue(account)
        if actor.member_id != member.pk:
            audit_record(
                actor=actor,
                event_type="ledger.statement_issued",
                subject=member,
                region=member.home_region,
                new={"balance": document["account"]["balance"]},
                on_behalf_of=member,
            )
    return document


def _statement(account: Account, key: PlatformKey, entries: int) -> dict[str, Any]:
    page = account_statement(account.pk, limit=entries)
    statement: dict[str, Any] = {
        "format": proofs.STATEMENT_FORMAT,
        "issued_at": proofs.utc_text(timezone.now()),
        "account": {
            "id": account.pk,
            "kind": account.kind,
            "area": account.area,
            "balance": account.balance,
            "held": account.held,
            "available": account.balance - account.held,
            "entries": account.entries,
        },
        "entries": [
            {
                "seq": e.seq,
                "transaction": e.transaction_id,
                "kind": e.kind,
                "memo": e.memo,
                "amount": e.amount,
                "balance_after": e.balance_after,
                "at": proofs.utc_text(e.at),
            }
            for e in reversed(page.entries)
        ],
        "anchor": _anchor(account),
        "key_id": key.key_id,
        "public_key": key.public_hex,
    }
    statement["signature"] = key.sign(proofs.statement_body(statement))
    return statement


def receipt_of(statement: dict[str, Any]) -> dict[str, Any]:
    """The few facts of a statement small enough for a QR code, signed on their own."""
    anchor = statement.get("anchor") or {}
    receipt: dict[str, Any] = {
        "format": proofs.RECEIPT_FORMAT,
        "account": statement["account"]["id"],
        "balance": statement["account"]["balance"],
        "entries": statement["account"]["entries"],
        "issued_at": statement["issued_at"],
        "block": anchor.get("block", {}).get("seq"),
        "block_hash": anchor.get("block_hash"),
        "key_id": statement["key_id"],
    }
    receipt["signature"] = platform_key().sign(proofs.statement_body(receipt))
    return receipt
