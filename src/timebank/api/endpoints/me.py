"""Who I am, my balance and my statement."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Schema

from timebank.api.common import caller, caller_member, limit_check
from timebank.api.main import api, cursor_decode, cursor_encode
from timebank.common.errors import NotFound
from timebank.ledger.selectors import StatementPage, account_statement


class MeOut(Schema):
    username: str
    member_id: int | None
    name: str
    home_region: str | None
    available_minutes: int | None
    balance_minutes: int | None


@api.get("/me", response=MeOut, tags=["me"])
def me(request: HttpRequest) -> dict[str, Any]:
    user = caller(request)
    member = user.member
    account = member.account if member is not None and member.account_id else None
    return {
        "username": user.get_username(),
        "member_id": member.pk if member else None,
        "name": user.display_name,
        "home_region": member.home_region.code if member else None,
        "available_minutes": account.available if account else None,
        "balance_minutes": account.balance if account else None,
    }


class EntryOut(Schema):
    seq: int
    transaction_id: int
    kind: str
    amount_minutes: int
    balance_after_minutes: int
    at: dt.datetime


class StatementOut(Schema):
    entries: list[EntryOut]
    next_cursor: str | None


def statement_out(found: StatementPage) -> dict[str, Any]:
    """A statement page as ``StatementOut`` (the shape ``/me/statement`` answers too)."""
    return {
        "entries": [
            {
                "seq": e.seq,
                "transaction_id": e.transaction_id,
                "kind": e.kind,
                "amount_minutes": e.amount,
                "balance_after_minutes": e.balance_after,
                "at": e.at,
            }
            for e in found.entries
        ],
        "next_cursor": cursor_encode(found.next_before) if found.next_before else None,
    }


def statement_page(account_id: int, cursor: str | None, limit: int) -> dict[str, Any]:
    """A page of an account's statement, newest first, as ``StatementOut``."""
    limit_check(limit)
    return statement_out(account_statement(account_id, before=cursor_decode(cursor), limit=limit))


@api.get("/me/statement", response=StatementOut, tags=["me"])
def my_statement(request: HttpRequest, cursor: str | None = None, limit: int = 50) -> dict[str, Any]:
    member = caller_member(request)
    limit_check(limit)
    if member.account_id is None:
        raise NotFound(code="api_no_account")
    return statement_page(member.account_id, cursor, limit)
