"""Transfers and gifts of time."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Schema, Status
from pydantic import Field

from timebank.api.common import Strict, caller, caller_member
from timebank.api.main import api, idempotency_key, idempotent, scope_check
from timebank.common.errors import ValidationFailed
from timebank.exchange import services as exchange
from timebank.people.models import Member


class TransferIn(Strict):
    receiver_id: int
    minutes: int = Field(gt=0, le=10**9)
    gift: bool = False
    note: str = Field("", max_length=200)


class TransferOut(Schema):
    transaction_id: int
    overflow_minutes: int


@api.post("/exchange/transfers", response={201: TransferOut}, tags=["exchange"])
@idempotent()
def transfer(request: HttpRequest, payload: TransferIn) -> Status[Any]:
    """Transfer or give minutes to a relative or friend (the policy decides who may receive). Requires an
    Idempotency-Key: a retry returns the first answer; the same key with another body is a 409."""
    scope_check(request, "write")
    giver = caller_member(request)
    receiver = Member.objects.filter(pk=payload.receiver_id).first()
    if receiver is None:
        raise ValidationFailed.field(
            "receiver_id",
            _("No member with this number has a verified bond with you."),
            code="exchange_no_bond",
        )
    moved = exchange.transfer_create(
        actor=caller(request),
        giver=giver,
        receiver=receiver,
        minutes=payload.minutes,
        idempotency_key=idempotency_key(request),
        gift=payload.gift,
        note=payload.note,
    )
    return Status(201, {"transaction_id": moved.transaction_id, "overflow_minutes": moved.overflow})
