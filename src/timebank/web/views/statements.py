"""A member's time account: statement pages, the signed statement download and the printable receipt with its
QR code. Members see their own; staff see the members of their subtree (and the issue is audit-logged)."""

from __future__ import annotations

import json

import segno
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from timebank.common.errors import NotFound
from timebank.exchange.models import AccountMove
from timebank.ledger import selectors as ledger
from timebank.ledger.statements import member_statement_issue, receipt_of
from timebank.people import selectors as people
from timebank.people.models import Member, User
from timebank.web.views.console import signed_in


def _target(request: HttpRequest, member_id: int | None) -> tuple[User, Member]:
    user = signed_in(request)
    if member_id is None:
        if user.member is None:
            raise NotFound(_("This sign-in has no time account."), code="no_account")
        member = user.member
    else:
        people.require_staff(user)
        member = people.member_get(user, member_id)
    if member.account_id is None:
        raise NotFound(_("This member has no time account yet."), code="no_account")
    return user, member


def _before(request: HttpRequest) -> int | None:
    raw = request.GET.get("before", "")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 10**15 else None


@login_required
def statement(request: HttpRequest, member_id: int | None = None) -> HttpResponse:
    _user, member = _target(request, member_id)
    assert member.account_id is not None
    return render(
        request,
        "web/statement.html",
        {
            "member": member,
            "balance": ledger.account_balance(member.account_id),
            "page": ledger.account_statement(member.account_id, before=_before(request), limit=30),
            "staff_view": member_id is not None,
            # no selector lists a member's moves; these rows only say where the earlier accounts went
            "moves": AccountMove.objects.filter(member=member)
            .select_related("from_region", "to_region")
            .order_by("moved_at", "id"),
        },
    )


def _issued(request: HttpRequest, member_id: int | None) -> tuple[Member, dict[str, object]]:
    user, member = _target(request, member_id)
    return member, member_statement_issue(actor=user, member=member)


@login_required
def statement_json(request: HttpRequest, member_id: int | None = None) -> HttpResponse:
    member, document = _issued(request, member_id)
    response = HttpResponse(
        json.dumps(document, ensure_ascii=False, indent=2), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="timebank-statement-{member.account_id}.json"'
    return response


@login_required
def statement_print(request: HttpRequest, member_id: int | None = None) -> HttpResponse:
    member, document = _issued(request, member_id)
    receipt = receipt_of(document)
    text = json.dumps(receipt, ensure_ascii=False, separators=(",", ":"))
    qr = segno.make(text, error="m")
    return render(
        request,
        "web/statement_print.html",
        {
            "member": member,
            "statement": document,
            "receipt": receipt,
            "qr_svg": qr.svg_inline(scale=4, dark="#000", light="#fff"),
        },
    )
