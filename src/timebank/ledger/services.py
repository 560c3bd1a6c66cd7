"""Writes to the ledger. Every capability that moves time calls these, and nothing else writes ledger rows.

These functions check the ledger's own rules (balanced, no overdraft, caps, one currency area, idempotent,
reversed once). Who may ask for a posting is decided by the calling domain service (care, exchange), which
checks permission and writes the audit log.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import transaction
from django.utils.translation import gettext as _

from timebank.common.errors import ValidationFailed
from timebank.ledger import engine, errors
from timebank.ledger.engine import Held, HoldRequest, Leg, Posted, PostRequest
from timebank.ledger.models import (
    NORMAL_SIDE,
    Account,
    AccountKind,
    AccountStatus,
    Transaction,
    TransactionKind,
)
from timebank.regions.models import Region

__all__ = [
    "Held",
    "HoldRequest",
    "Leg",
    "PostRequest",
    "Posted",
    "account_close",
    "account_limits_set",
    "account_open",
    "credit_legs",
    "hold_capture",
    "hold_place",
    "hold_release",
    "system_account",
    "transaction_post",
    "transaction_reverse",
    "transactions_post_batch",
    "transfer",
]


# System accounts that hold only what was given to them: they never go below zero.
NEVER_NEGATIVE = frozenset({AccountKind.POOL})


def area_of(region: Region) -> str:
    """The currency area of a region: its province. Minutes move freely inside one area; between areas they
    go through the clearing accounts."""
    return region.ancestor_codes[0]


def account_open(*, kind: str, region: Region, floor: int | None = 0, cap: int | None = None) -> Account:
    """Open an account. A member account may not go below ``floor`` (0, or minus a policy's credit line);
    system accounts may go negative (the public fund's negative balance is what it has funded)."""
    if kind not in AccountKind.values:
        raise ValidationFailed.field("kind", _("Unknown account kind."))
    if kind == AccountKind.MEMBER and floor is None:
        raise ValidationFailed.field("floor", _("A member account has a lowest balance."))
    if floor is not None and floor > 0:
        raise ValidationFailed.field("floor", _("The lowest balance is zero or below."))
    if cap is not None and cap < 0:
        raise ValidationFailed.field("cap", _("A cap is zero or more."))
    return Account.objects.create(
        kind=kind,
        normal_side=NORMAL_SIDE[kind],
        region=region,
        area=area_of(region),
        floor=floor if kind == AccountKind.MEMBER else (0 if kind in NEVER_NEGATIVE else None),
        cap=cap,
    )


def system_account(*, kind: str, region: Region) -> Account:
    """The region's account of a system kind (public fund, pool, …), opened on first use. A pool holds only
    donated minutes and never goes below zero; the public fund may (its negative balance is what it
    funded)."""
    if kind == AccountKind.MEMBER:
        raise ValidationFailed.field("kind", _("Member accounts are opened for a member."))
    found = Account.objects.filter(kind=kind, region=region).first()
    if found is not None:
        return found
    with transaction.atomic():
        Region.objects.select_for_update().filter(pk=region.pk).first()
        found = Account.objects.filter(kind=kind, region=region).first()
        return found or account_open(kind=kind, region=region, floor=None)


def account_limits_set(*, account: Account, floor: int | None, cap: int | None) -> Account:
    """Apply a policy's credit line and cap. Refused if the account is already outside the new limits."""
    if account.kind == AccountKind.MEMBER and floor is None:
        raise ValidationFailed.field("floor", _("A member account has a lowest balance."))
    if floor is not None and floor > 0:
        raise ValidationFailed.field("floor", _("The lowest balance is zero or below."))
    if cap is not None and cap < 0:
        raise ValidationFailed.field("cap", _("A cap is zero or more."))
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        if floor is not None and locked.balance - locked.held < floor:
            raise errors.InsufficientFunds(fields={"floor": [_("The account is already below this floor.")]})
        if cap is not None and locked.balance > cap:
            raise errors.OverCap(fields={"cap": [_("The account already holds more than this cap.")]})
        Account.objects.filter(pk=account.pk).update(floor=floor, cap=cap)
        locked.floor, locked.cap = floor, cap
    return locked


def account_close(*, account: Account) -> Account:
    """Close an empty account (after a move, its minutes went elsewhere first)."""
    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        if locked.balance != 0 or locked.held != 0:
            raise ValidationFailed.field(
                "account",
                _("Only an empty account with no holds can be closed."),
                code="ledger_account_not_empty",
            )
        Account.objects.filter(pk=account.pk).update(status=AccountStatus.CLOSED)
        locked.status = AccountStatus.CLOSED
    return locked


def credit_legs(
    *, source_id: int, destination: Account, minutes: int, overflow_to: int | None
) -> tuple[tuple[Leg, ...], int]:
    """The legs that move ``minutes`` from ``source_id`` into ``destination``; with ``overflow_to`` (the pool,
    where a policy routes what exceeds an account's cap) the excess goes there instead. One leg per account:
    when the source is also where the overflow goes, the two net out. Returns the legs and the overflow."""
    overflow = 0
    if overflow_to is not None and destination.cap is not None:
        overflow = max(minutes - max(destination.cap - destination.balance, 0), 0)
    net: dict[int, int] = {source_id: -minutes}
    net[destination.pk] = net.get(destination.pk, 0) + minutes - overflow
    if overflow and overflow_to is not None:
        net[overflow_to] = net.get(overflow_to, 0) + overflow
    return tuple(Leg(account_id, amount) for account_id, amount in sorted(net.items()) if amount), overflow


def transaction_post(request: PostRequest) -> Posted:
    """Post a transaction of two or more legs summing to zero, once per idempotency key."""
    return engine.post(request)


def transactions_post_batch(requests: Sequence[PostRequest]) -> list[Posted]:
    """Post many transactions in one database transaction: all are posted, or none."""
    return engine.post_many(requests)


def transfer(
    *,
    idempotency_key: str,
    source: int,
    destination: int,
    minutes: int,
    kind: str = TransactionKind.TRANSFER,
    memo: str = "",
    actor_id: int | None = None,
    subject: str = "",
    ref_type: str = "",
    ref_id: str = "",
    policy_id: int | None = None,
) -> Posted:
    """Move ``minutes`` from one account to another."""
    if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes <= 0:
        raise errors.InvalidAmount(fields={"minutes": [_("A positive whole number of minutes.")]})
    return engine.post(
        PostRequest(
            idempotency_key=idempotency_key,
            kind=kind,
            legs=(Leg(source, -minutes), Leg(destination, minutes)),
            memo=memo,
            actor_id=actor_id,
            subject=subject,
            ref_type=ref_type,
            ref_id=ref_id,
            policy_id=policy_id,
        )
    )


def transaction_reverse(
    *, idempotency_key: str, transaction_id: int, memo: str, actor_id: int | None = None
) -> Posted:
    """Correct a mistake: a new transaction that negates every posting of the original. Once per original;
    a reversal itself is never reversed."""
    original = Transaction.objects.filter(pk=transaction_id).first()
    if original is None:
        raise errors.TransactionNotFound(extra={"detail": f"transaction={transaction_id}"})
    if original.kind == TransactionKind.REVERSAL:
        raise errors.ReversalOfReversal(extra={"detail": f"transaction={transaction_id}"})
    legs = tuple(Leg(p.account_id, -p.amount) for p in original.postings.order_by("account_id"))
    return engine.post(
        PostRequest(
            idempotency_key=idempotency_key,
            kind=TransactionKind.REVERSAL,
            legs=legs,
            memo=memo,
            actor_id=actor_id,
            subject=original.subject,
            ref_type="ledger.transaction",
            ref_id=str(original.pk),
            policy_id=original.policy_id,
            reverses_id=original.pk,
        )
    )


def hold_place(
    *,
    idempotency_key: str,
    account_id: int,
    minutes: int,
    memo: str = "",
    ref_type: str = "",
    ref_id: str = "",
    expires_at: dt.datetime | None = None,
) -> Held:
    """Reserve minutes for a pending service or goods order: available balance drops, balance does not."""
    return engine.hold_place(
        HoldRequest(
            idempotency_key=idempotency_key,
            account_id=account_id,
            amount=minutes,
            memo=memo,
            ref_type=ref_type,
            ref_id=ref_id,
            expires_at=expires_at,
        )
    )


def hold_capture(*, hold_id: int, request: PostRequest) -> Posted:
    return engine.hold_capture(hold_id, request)


def hold_release(*, hold_id: int) -> str:
    return engine.hold_release(hold_id)
