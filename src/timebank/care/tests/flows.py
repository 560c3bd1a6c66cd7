"""Helpers for the care tests: carry a service through its life with the real services, and check that a
refused action changed nothing anyone could notice."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import time_machine

from timebank.audit.models import AuditEvent
from timebank.care import services as care
from timebank.care.models import (
    ConfirmMethod,
    Dispute,
    ElderSecret,
    FundBudget,
    Rating,
    ServiceCard,
    ServiceOrder,
)
from timebank.care.tests.conftest import member, user_of
from timebank.common.errors import ApplicationError
from timebank.ledger.models import Account, Hold, Transaction
from timebank.notifications.models import Notification
from timebank.people.models import Member, User
from timebank.regions.models import Region


def reload(order: ServiceOrder) -> ServiceOrder:
    return ServiceOrder.objects.get(pk=order.pk)


def worked(order: ServiceOrder, volunteer: Member, start: dt.datetime, end: dt.datetime) -> ServiceOrder:
    """The volunteer checks in at ``start`` and out at ``end`` in the app."""
    with time_machine.travel(start, tick=False):
        care.order_check_in(actor=user_of(volunteer), order=order)
    with time_machine.travel(end, tick=False):
        return care.order_check_out(actor=user_of(volunteer), order=order)


def confirmed_by_elder(order: ServiceOrder) -> ServiceOrder:
    """The elder confirms on her own phone."""
    return care.order_confirm(actor=user_of(order.elder), order=order, method=ConfirmMethod.DEVICE)


@dataclass(frozen=True)
class World:
    """Everything a refused action must leave as it was."""

    audit_events: int
    transactions: int
    notifications: int
    ratings: int
    disputes: tuple[tuple[int, str], ...]
    holds: tuple[tuple[int, str], ...]
    accounts: tuple[tuple[int, int, int], ...]
    budgets: tuple[tuple[int, int], ...]
    orders: tuple[tuple[Any, ...], ...]
    cards: tuple[tuple[int, Any, Any], ...]


def world() -> World:
    return World(
        audit_events=AuditEvent.objects.count(),
        transactions=Transaction.objects.count(),
        notifications=Notification.objects.count(),
        ratings=Rating.objects.count(),
        disputes=tuple(Dispute.objects.order_by("pk").values_list("pk", "outcome")),
        holds=tuple(Hold.objects.order_by("pk").values_list("pk", "status")),
        accounts=tuple(Account.objects.order_by("pk").values_list("pk", "balance", "held")),
        budgets=tuple(FundBudget.objects.order_by("pk").values_list("pk", "committed_minutes")),
        orders=tuple(
            ServiceOrder.objects.order_by("pk").values_list(
                "pk",
                "status",
                "volunteer_id",
                "hold_id",
                "reserved_minutes",
                "checked_in_at",
                "checked_out_at",
                "service_minutes",
                "confirmed_at",
                "credited_minutes",
                "credit_transaction_id",
            )
        ),
        cards=tuple(ServiceCard.objects.order_by("pk").values_list("pk", "revoked_at", "used_codes")),
    )


@contextmanager
def refused(code: str, *, writes_nothing: bool = True) -> Iterator[pytest.ExceptionInfo[ApplicationError]]:
    """The block raises an ``ApplicationError`` with ``code`` and (unless told otherwise) changes nothing:
    no audit record, no posting, no hold, no notice, no change to any service."""
    before = world()
    with pytest.raises(ApplicationError) as caught:
        yield caught
    assert caught.value.code == code, f"expected {code}, got {caught.value.code}: {caught.value.message}"
    if writes_nothing:
        assert world() == before


def failed_attempts(elder: Member) -> int:
    secret = ElderSecret.objects.filter(elder=elder).first()
    return secret.failed_attempts if secret else 0


def jinyang_elder_with_savings(actor: User, region: Region, minutes: int = 600) -> Member:
    """赵阿姨, 80, of 晋阳 (Hongkou, the tiered policy), with savings and her own sign-in."""
    from timebank.care.tests.conftest import deposit

    m = member(actor, region, "赵阿姨", birth=dt.date(1946, 6, 6), login="zhao-ayi", is_elder=True)
    deposit(m, minutes)
    return Member.objects.get(pk=m.pk)


def jinyang_volunteer(actor: User, region: Region) -> Member:
    """孙伟, 40, volunteer of 晋阳, with a sign-in."""
    return member(
        actor, region, "孙伟", birth=dt.date(1986, 1, 1), sex="M", login="sun-wei", is_volunteer=True
    )
