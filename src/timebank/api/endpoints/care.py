"""Services (orders): lists, details and the life of a service."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Q
from django.http import HttpRequest
from ninja import Schema
from pydantic import Field

from timebank.api.common import Strict, caller, caller_member, page
from timebank.api.main import api, scope_check
from timebank.care import selectors as care_selectors
from timebank.care import services as care_services
from timebank.care.models import ServiceOrder
from timebank.common.errors import NotFound
from timebank.people.access import Perm, access_anywhere


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
    user = caller(request)
    if access_anywhere(user, Perm.CARE_VIEW):
        qs = care_selectors.orders_visible(user, status=status, community=community, category=category)
    else:
        member = caller_member(request)
        qs = ServiceOrder.objects.filter(Q(elder=member) | Q(volunteer=member)).select_related(
            "region", "category"
        )
        if status:
            qs = qs.filter(status=status)
    rows, next_cursor = page(qs, cursor, limit, _order_out)
    return {"orders": rows, "next_cursor": next_cursor}


# --- the life of a service ----------------------------------------------------------------------------------


class CheckIn(Strict):
    token: str = Field("", max_length=500, description="the elder's service-card QR token, when scanned")


def _order(request: HttpRequest, order_id: int) -> ServiceOrder:
    return care_selectors.order_get(caller(request), order_id)


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
    return _order_out(care_services.order_accept(actor=caller(request), order=order))


@api.post("/care/orders/{order_id}/check-in", response=OrderOut, tags=["care"])
def order_check_in(request: HttpRequest, order_id: int, payload: CheckIn) -> dict[str, Any]:
    scope_check(request, "write")
    order = _order(request, order_id)
    return _order_out(care_services.order_check_in(actor=caller(request), order=order, token=payload.token))


@api.post("/care/orders/{order_id}/check-out", response=OrderOut, tags=["care"])
def order_check_out(request: HttpRequest, order_id: int, payload: CheckIn) -> dict[str, Any]:
    scope_check(request, "write")
    order = _order(request, order_id)
    return _order_out(care_services.order_check_out(actor=caller(request), order=order, token=payload.token))
