"""Reads of the ledger: balances in O(1), statements in O(page) by entry number (keyset, never OFFSET)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from timebank.ledger import errors
from timebank.ledger.models import Account, Posting

PAGE_MAX = 200


@dataclass(frozen=True)
class Balance:
    balance: int
    held: int
    entries: int

    @property
    def available(self) -> int:
        return self.balance - self.held


@dataclass(frozen=True)
class Entry:
    seq: int
    transaction_id: int
    kind: str
    memo: str
    amount: int
    balance_after: int
    at: dt.datetime


@dataclass(frozen=True)
class StatementPage:
    entries: list[Entry]  # newest first
    next_before: int | None  # pass as ``before`` for the next (older) page; None at the first entry


def account_get(account_id: int) -> Account:
    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        raise errors.AccountNotFound(extra={"detail": f"account={account_id}"})
    return account


def account_balance(account_id: int) -> Balance:
    row = Account.objects.filter(pk=account_id).values_list("balance", "held", "entries").first()
    if row is None:
        raise errors.AccountNotFound(extra={"detail": f"account={account_id}"})
    return Balance(*row)


def account_statement(account_id: int, *, before: int | None = None, limit: int = 50) -> StatementPage:
    """Entries of an account, newest first, ``limit`` at a time, each with the balance after it."""
    limit = max(1, min(limit, PAGE_MAX))
    postings = Posting.objects.filter(account_id=account_id)
    if before is not None:
        postings = postings.filter(account_seq__lt=before)
    rows = list(
        postings.order_by("-account_seq").values_list(
            "account_seq",
            "transaction_id",
            "transaction__kind",
            "transaction__memo",
            "amount",
            "balance_after",
            "transaction__created_at",
        )[:limit]
    )
    entries = [Entry(*row) for row in rows]
    next_before = entries[-1].seq if entries and entries[-1].seq > 1 else None
    return StatementPage(entries, next_before)
