"""Members' time accounts for staff (balance and statement) and the signed statement a member can keep,
checkable offline with the platform's public key alone. Every statement issued to staff is audit-logged."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Schema
from pydantic import ConfigDict

from timebank.api.common import Id, caller, caller_member
from timebank.api.endpoints.me import StatementOut, statement_page
from timebank.api.endpoints.people import staff_member
from timebank.api.main import api
from timebank.common.errors import NotFound
from timebank.ledger.selectors import account_balance
from timebank.ledger.statements import member_statement_issue
from timebank.people.models import Member


class BalanceOut(Schema):
    member_id: int
    account_id: int
    balance_minutes: int
    held_minutes: int
    available_minutes: int
    entries: int


class SignedAccountOut(Schema):
    id: int
    kind: str
    area: str
    balance: int
    held: int
    available: int
    entries: int


class SignedEntryOut(Schema):
    seq: int
    transaction: int
    kind: str
    memo: str
    amount: int
    balance_after: int
    at: str


class SignedStatementOut(Schema):
    """A ``timebank-statement/1`` document as signed: amounts are integer minutes under the names the
    signature covers, times are UTC text; ``anchor`` (the sealed block the latest sealed entry lies in, with
    its Merkle path) is null while nothing of the account is sealed. ``timebank ledger verify-statement``
    checks it."""

    model_config = ConfigDict(extra="allow")  # whatever the signature covers is passed on untouched

    format: str
    issued_at: str
    account: SignedAccountOut
    entries: list[SignedEntryOut]
    anchor: dict[str, Any] | None
    key_id: str
    public_key: str
    signature: str


def _staff_account(request: HttpRequest, member_id: int) -> tuple[Member, int]:
    """A member of the staff member's regions and their account (another region's member is not found)."""
    member = staff_member(request, member_id)
    if member.account_id is None:
        raise NotFound(_("This member has no time account yet."), code="no_account")
    return member, member.account_id


@api.get("/people/{member_id}/balance", response=BalanceOut, tags=["accounts"])
def person_balance(request: HttpRequest, member_id: Id) -> dict[str, Any]:
    """A member's balance, the minutes held for services not yet done, and what is available. Staff only."""
    member, account_id = _staff_account(request, member_id)
    found = account_balance(account_id)
    return {
        "member_id": member.pk,
        "account_id": account_id,
        "balance_minutes": found.balance,
        "held_minutes": found.held,
        "available_minutes": found.available,
        "entries": found.entries,
    }


@api.get("/people/{member_id}/statement", response=StatementOut, tags=["accounts"])
def person_statement(
    request: HttpRequest, member_id: Id, cursor: str | None = None, limit: int = 50
) -> dict[str, Any]:
    """A member's account entries, newest first, each with the balance after it. Staff only."""
    _member, account_id = _staff_account(request, member_id)
    return statement_page(account_id, cursor, limit)


@api.get("/me/statement/signed", response=SignedStatementOut, tags=["me"])
def my_statement_signed(request: HttpRequest) -> dict[str, Any]:
    """My signed statement: balance, the last 20 entries and the sealed anchor, signed by the platform."""
    return member_statement_issue(actor=caller(request), member=caller_member(request))


@api.get("/people/{member_id}/statement/signed", response=SignedStatementOut, tags=["accounts"])
def person_statement_signed(request: HttpRequest, member_id: Id) -> dict[str, Any]:
    """A member's signed statement, issued by staff of their regions (to print or hand over). Every issue is
    audit-logged."""
    return member_statement_issue(actor=caller(request), member=staff_member(request, member_id))
