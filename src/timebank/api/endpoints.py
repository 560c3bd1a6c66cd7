"""The first endpoints of ``/api/v1``: who I am, my balance and statement, services, and transfers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Q
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Schema, Status
from pydantic import ConfigDict, Field

from timebank.api.main import api, cursor_decode, cursor_encode, remember, replayed, scope_check
from timebank.care import selectors as care_selectors
from timebank.care import services as care_services
from timebank.care.models import ServiceOrder
from timebank.common.errors import NotFound, ValidationFailed
from timebank.exchange import services as exchange
from timebank.ledger.selectors import account_statement
from timebank.people.access import Perm, access_anywhere
from timebank.people.models import Member, User
from timebank.regions.selectors import region_get


class Strict(Schema):
    model_config = ConfigDict(extra="forbid")


class MeOut(Schema):
    username: str
    member_id: int | None
    name: str
    home_region: str | None
    available_minutes: int | None
    balance_minutes: int | None


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= 200:
        raise ValidationFailed.field("limit", _("1 to 200."), code="api_bad_limit")


def _member(request: HttpRequest) -> Member:
    member = _user(request).member
    if member is None:
        raise NotFound(code="api_no_member")
    return member


@api.get("/me", response=MeOut, tags=["me"])
def me(request: HttpRequest) -> dict[str, Any]:
    user = _user(request)
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


@api.get("/me/statement", response=StatementOut, tags=["me"])
def my_statement(request: HttpRequest, cursor: str | None = None, limit: int = 50) -> dict[str, Any]:
    member = _member(request)
    _check_limit(limit)
    if member.account_id is None:
        raise NotFound(code="api_no_account")
    page = account_statement(member.account_id, before=cursor_decode(cursor), limit=limit)
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
            for e in page.entries
        ],
        "next_cursor": cursor_encode(page.next_before) if page.next_before else None,
    }


class OrderOut(Schema):
    id: int
    number: str
    status: str
    category: str
    community: str
    window_start: dt.datetime
    window_end: dt.datetime
    funding: str
    elder_id: int
    volunteer_id: int | None
    service_minutes: int | None
    credited_minutes: int | None


class OrdersOut(Schema):
    orders: list[OrderOut]
    next_cursor: str | None


@api.get("/care/orders", response=OrdersOut, tags=["care"])
def orders(
    request: HttpRequest,
    status: str = "",
    category: str = "",
    community: str = "",
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Services of the staff member's regions (or, for a member, those they give or receive), newest first."""
    user = _user(request)
    _check_limit(limit)
    if access_anywhere(user, Perm.CARE_VIEW):
        qs = care_selectors.orders_visible(user, status=status, community=community, category=category)
    else:
        member = _member(request)
        qs = ServiceOrder.objects.filter(Q(elder=member) | Q(volunteer=member)).select_related(
            "region", "category"
        )
        if status:
            qs = qs.filter(status=status)
    before = cursor_decode(cursor)
    if before is not None:
        qs = qs.filter(pk__lt=before)
    rows = list(qs.order_by("-pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "orders": [_order_out(o) for o in rows],
        "next_cursor": cursor_encode(rows[-1].pk) if more and rows else None,
    }


class TransferIn(Strict):
    receiver_id: int
    minutes: int = Field(gt=0, le=10**9)
    gift: bool = False
    note: str = Field("", max_length=200)


class TransferOut(Schema):
    transaction_id: int
    overflow_minutes: int


@api.post("/exchange/transfers", response={201: TransferOut, 200: TransferOut}, tags=["exchange"])
def transfer(request: HttpRequest, payload: TransferIn) -> Status[Any]:
    """Transfer or give minutes to a relative or friend (the policy decides who may receive). Requires an
    Idempotency-Key: a retry returns the first answer; the same key with another body is a 409."""
    scope_check(request, "write")
    key, body_hash, first = replayed(request, payload.dict())
    if first is not None:
        return Status(200, first.body)
    giver = _member(request)
    receiver = Member.objects.filter(pk=payload.receiver_id).first()
    if receiver is None:
        raise ValidationFailed.field(
            "receiver_id",
            _("No member with this number has a verified bond with you."),
            code="exchange_no_bond",
        )
    moved = exchange.transfer_create(
        actor=_user(request),
        giver=giver,
        receiver=receiver,
        minutes=payload.minutes,
        idempotency_key=f"api:{key}",
        gift=payload.gift,
        note=payload.note,
    )
    answer = {"transaction_id": moved.transaction_id, "overflow_minutes": moved.overflow}
    remember(request, key, body_hash, 201, answer)
    return Status(201, answer)


# --- the life of a service ----------------------------------------------------------------------------------


class CheckIn(Strict):
    token: str = Field("", max_length=500, description="the elder's service-card QR token, when scanned")


def _order(request: HttpRequest, order_id: int) -> ServiceOrder:
    return care_selectors.order_get(_user(request), order_id)


def _order_out(order: ServiceOrder) -> dict[str, Any]:
    return {
        "id": order.pk,
        "number": order.number,
        "status": order.status,
        "category": order.category.code,
        "community": order.region.code,
        "window_start": order.window_start,
        "window_end": order.window_end,
        "funding": order.funding,
        "elder_id": order.elder_id,
        "volunteer_id": order.volunteer_id,
        "service_minutes": order.service_minutes,
        "credited_minutes": order.credited_minutes,
    }


@api.get("/care/orders/{order_id}", response=OrderOut, tags=["care"])
def order_detail(request: HttpRequest, order_id: int) -> dict[str, Any]:
    return _order_out(_order(request, order_id))


@api.post("/care/orders/{order_id}/accept", response=OrderOut, tags=["care"])
def order_accept(request: HttpRequest, order_id: int) -> dict[str, Any]:
    """A volunteer takes an open request (their own or a neighbouring community's)."""
    scope_check(request, "write")
    order = ServiceOrder.objects.filter(pk=order_id).first()
    if order is None:
        raise NotFound(code="care_order_not_found")
    return _order_out(care_services.order_accept(actor=_user(request), order=order))


@api.post("/care/orders/{order_id}/check-in", response=OrderOut, tags=["care"])
def order_check_in(request: HttpRequest, order_id: int, payload: CheckIn) -> dict[str, Any]:
    scope_check(request, "write")
    order = _order(request, order_id)
    return _order_out(care_services.order_check_in(actor=_user(request), order=order, token=payload.token))


@api.post("/care/orders/{order_id}/check-out", response=OrderOut, tags=["care"])
def order_check_out(request: HttpRequest, order_id: int, payload: CheckIn) -> dict[str, Any]:
    scope_check(request, "write")
    order = _order(request, order_id)
    return _order_out(care_services.order_check_out(actor=_user(request), order=order, token=payload.token))


# --- regions (read) -----------------------------------------------------------------------------------------


class RegionOut(Schema):
    code: str
    name: str
    name_en: str
    level: str
    parent: str | None


@api.get("/regions/{code}", response=RegionOut, tags=["regions"])
def region(request: HttpRequest, code: str) -> dict[str, Any]:
    found = region_get(code)
    return {
        "code": found.code,
        "name": found.name,
        "name_en": found.name_en,
        "level": found.level,
        "parent": found.parent.code if found.parent_id and found.parent else None,
    }
