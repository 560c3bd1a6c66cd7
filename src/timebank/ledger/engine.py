"""Posting engine: one transaction, hold, capture or release per call.

On PostgreSQL a posting is one round trip to a stored function (``migrations/0002_database_rules``) that
keeps the rules inside the database. On SQLite the same rules run here in Python, under SQLite's write lock.
Both raise the same typed errors (``timebank.ledger.errors``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from timebank.ledger import errors
from timebank.ledger.models import (
    Account,
    AccountStatus,
    Hold,
    HoldStatus,
    Posting,
    Transaction,
    TransactionKind,
)
from timebank.regions.models import Policy

MAX_MINUTES = 10**12  # far beyond any real balance; keeps sums inside 64 bits
DEADLOCK_RETRIES = 8
T = TypeVar("T")


@dataclass(frozen=True)
class Leg:
    account_id: int
    amount: int


@dataclass(frozen=True)
class PostRequest:
    """Everything a transaction says. Two requests with the same idempotency key must say the same."""

    idempotency_key: str
    kind: str
    legs: tuple[Leg, ...]
    memo: str = ""
    actor_id: int | None = None
    subject: str = ""
    ref_type: str = ""
    ref_id: str = ""
    policy_id: int | None = None
    reverses_id: int | None = None

    def request_hash(self) -> str:
        body = [
            "post",
            self.actor_id,
            self.kind,
            sorted((leg.account_id, leg.amount) for leg in self.legs),
            self.memo,
            self.subject,
            self.ref_type,
            self.ref_id,
            self.policy_id,
            self.reverses_id,
        ]
        return hashlib.sha256(
            json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        ).hexdigest()


@dataclass(frozen=True)
class Posted:
    transaction_id: int
    created: bool  # False when the key was seen before and the first result is returned


@dataclass(frozen=True)
class HoldRequest:
    idempotency_key: str
    account_id: int
    amount: int
    memo: str = ""
    ref_type: str = ""
    ref_id: str = ""
    expires_at: dt.datetime | None = None

    def request_hash(self) -> str:
        body = [
            "hold",
            self.account_id,
            self.amount,
            self.memo,
            self.ref_type,
            self.ref_id,
            self.expires_at.isoformat() if self.expires_at else None,
        ]
        return hashlib.sha256(
            json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        ).hexdigest()


@dataclass(frozen=True)
class Held:
    hold_id: int
    created: bool


@dataclass
class _Limits:
    key: int = 100
    memo: int = 200
    subject: int = 64
    ref_type: int = 40
    ref_id: int = 64
    kinds: frozenset[str] = field(default_factory=lambda: frozenset(TransactionKind.values))


LIMITS = _Limits()


def _check_text(name: str, value: str, limit: int) -> None:
    if not isinstance(value, str) or len(value) > limit:
        raise errors.InvalidAmount(
            fields={name: [_("text of at most %(n)d characters") % {"n": limit}]}, code="ledger_invalid_field"
        )


def _check_amount(amount: object, *, positive: bool = False) -> int:
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise errors.InvalidAmount(fields={"amount": [_("a whole number of minutes")]})
    if amount == 0 or (positive and amount < 0) or abs(amount) > MAX_MINUTES:
        raise errors.InvalidAmount(
            fields={
                "amount": [(_("must be positive") if positive else _("must not be zero")) + f" ({amount})"]
            }
        )
    return amount


def validate_post(request: PostRequest) -> None:
    """The checks that need no database: the shape of the request."""
    if not request.idempotency_key or len(request.idempotency_key) > LIMITS.key:
        raise errors.InvalidAmount(
            fields={"idempotency_key": [_("1 to 100 characters")]}, code="ledger_invalid_key"
        )
    if request.kind not in LIMITS.kinds:
        raise errors.InvalidAmount(
            fields={"kind": [_("unknown kind “%(kind)s”") % {"kind": request.kind}]},
            code="ledger_invalid_kind",
        )
    for name in ("memo", "subject", "ref_type", "ref_id"):
        _check_text(name, getattr(request, name), getattr(LIMITS, name))
    if len(request.legs) < 2:
        raise errors.Unbalanced()
    for leg in request.legs:
        _check_amount(leg.amount)
    if len({leg.account_id for leg in request.legs}) != len(request.legs):
        raise errors.Unbalanced(fields={"legs": [_("each account appears once")]})
    if sum(leg.amount for leg in request.legs) != 0:
        raise errors.Unbalanced(extra={"sum": sum(leg.amount for leg in request.legs)})
    if (request.kind == TransactionKind.REVERSAL) != (request.reverses_id is not None):
        raise errors.Unbalanced(
            fields={"reverses": [_("a reversal, and only a reversal, names the original")]}
        )


# --- error mapping ----------------------------------------------------------------------------------------


def _translate(exc: DatabaseError) -> errors.LedgerError | None:
    """Turn a database refusal into the typed error it stands for."""
    cause = exc.__cause__
    diag = getattr(cause, "diag", None)
    if diag is not None:
        message = diag.message_primary or ""
        if message.startswith("ledger_"):
            return errors.error_for(message, diag.message_detail or "")
        constraint = diag.constraint_name or ""
        if constraint in errors.BY_CONSTRAINT:
            return errors.BY_CONSTRAINT[constraint](extra={"detail": diag.message_detail or constraint})
    text = str(exc)
    for constraint, cls in errors.BY_CONSTRAINT.items():
        if constraint in text:
            return cls(extra={"detail": constraint})
    return None


def _is_retryable(exc: DatabaseError) -> bool:
    code = getattr(getattr(exc, "__cause__", None), "sqlstate", None)
    return code in {"40P01", "40001"}  # deadlock detected, serialization failure


def _run(operation: Callable[[], T]) -> T:
    """Run a posting; retry a deadlock or serialization failure when we own the transaction."""
    attempt = 0
    while True:
        try:
            if connection.in_atomic_block:
                # Inside the caller's transaction: a savepoint, so a refusal leaves that transaction usable.
                with transaction.atomic():
                    return operation()
            return operation()  # autocommit: the stored function is the whole transaction, one round trip
        except DatabaseError as exc:
            if _is_retryable(exc) and not connection.in_atomic_block and attempt < DEADLOCK_RETRIES:
                attempt += 1
                time.sleep(0.002 * attempt)
                continue
            if _is_retryable(exc):  # inside the caller's transaction: only the caller can try again
                raise errors.LedgerBusy() from exc
            translated = _translate(exc)
            if translated is None:
                raise
            raise translated from exc


def _pg() -> bool:
    return connection.vendor == "postgresql"


# --- posting ----------------------------------------------------------------------------------------------

_POST_SQL = "SELECT ledger_post(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::bigint[], %s::bigint[])"


def _post_args(request: PostRequest, request_hash: str) -> list[Any]:
    return [
        request.idempotency_key,
        request_hash,
        request.kind,
        request.memo,
        request.actor_id,
        request.subject,
        request.ref_type,
        request.ref_id,
        request.policy_id,
        request.reverses_id,
        _array(leg.account_id for leg in request.legs),
        _array(leg.amount for leg in request.legs),
    ]


def _array(values: Iterable[int]) -> str:
    """A PostgreSQL array literal: cheaper to send than a list the driver must adapt element by element."""
    return "{" + ",".join(str(int(v)) for v in values) + "}"


_cursors: weakref.WeakKeyDictionary[Any, psycopg.Cursor[Any]] = weakref.WeakKeyDictionary()


def _call_prepared(sql: str, args: list[Any]) -> int:
    """The hot path: one round trip to a stored function as a prepared statement on the driver's own cursor
    (no query text to quote or parse each time)."""
    connection.ensure_connection()
    raw = connection.connection
    cursor = _cursors.get(raw)
    if cursor is None or cursor.closed:
        cursor = _cursors[raw] = psycopg.Cursor(raw)
    with connection.wrap_database_errors:
        row = cursor.execute(sql, args, prepare=True).fetchone()
    assert row is not None
    return int(row[0])


def _check_policy(policy_id: int | None) -> None:
    if policy_id is not None and not Policy.objects.filter(pk=policy_id).exists():
        raise errors.PolicyNotFound(extra={"detail": f"policy={policy_id}"})


def post(request: PostRequest) -> Posted:
    validate_post(request)
    _check_policy(request.policy_id)
    request_hash = request.request_hash()
    if _pg():
        args = _post_args(request, request_hash)

        def call() -> Posted:
            value = _call_prepared(_POST_SQL, args)
            return Posted(abs(value), value > 0)

        return _run(call)
    return _run(lambda: _post_python(request, request_hash))


_BATCH_SQL = (
    "SELECT ledger_post_batch(%s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[], %s::text[], "
    "%s::text[], %s::text[], %s::bigint[], %s::int[], %s::bigint[], %s::bigint[])"
)


def post_many(requests: Sequence[PostRequest]) -> list[Posted]:
    """Post many transactions in one database transaction (a station approving a day's records at once).
    All or nothing: if one is refused, none is posted."""
    hashes = []
    for request in requests:
        validate_post(request)
        if request.reverses_id is not None:
            raise errors.Unbalanced(fields={"reverses": [_("reversals are posted one by one")]})
        hashes.append(request.request_hash())
    if len({r.idempotency_key for r in requests}) != len(requests):
        raise errors.IdempotencyConflict(
            fields={"idempotency_key": [_("each request of a batch has its own key")]}
        )
    if _pg():
        if not requests:
            return []
        leg_txn: list[int] = []
        leg_accounts: list[int] = []
        leg_amounts: list[int] = []
        for index, request in enumerate(requests, start=1):
            for leg in request.legs:
                leg_txn.append(index)
                leg_accounts.append(leg.account_id)
                leg_amounts.append(leg.amount)
        args = [
            [r.idempotency_key for r in requests],
            hashes,
            [r.kind for r in requests],
            [r.memo for r in requests],
            [r.actor_id for r in requests],
            [r.subject for r in requests],
            [r.ref_type for r in requests],
            [r.ref_id for r in requests],
            [r.policy_id for r in requests],
            leg_txn,
            leg_accounts,
            leg_amounts,
        ]

        def call() -> list[Posted]:
            connection.ensure_connection()
            cursor = psycopg.Cursor(connection.connection)
            with connection.wrap_database_errors:
                row = cursor.execute(_BATCH_SQL, args).fetchone()
            assert row is not None
            return [Posted(abs(i), i > 0) for i in row[0]]

        return _run(call)

    def call_python() -> list[Posted]:
        with transaction.atomic():
            return [_post_python(r, h) for r, h in zip(requests, hashes, strict=True)]

    return _run(call_python)


def _existing(model: type[Transaction] | type[Hold], key: str, request_hash: str) -> int | None:
    found = model.objects.filter(idempotency_key=key).values_list("pk", "request_hash").first()
    if found is None:
        return None
    if found[1] != request_hash:
        raise errors.IdempotencyConflict(extra={"detail": f"{model.__name__.lower()}={found[0]}"})
    return int(found[0])


def _locked_accounts(ids: Iterable[int]) -> dict[int, Account]:
    wanted = sorted(set(ids))
    accounts = {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=wanted).order_by("pk")}
    for account_id in wanted:
        if account_id not in accounts:
            raise errors.AccountNotFound(extra={"detail": f"account={account_id}"})
    return accounts


def _post_python(request: PostRequest, request_hash: str) -> Posted:
    """The same rules as ``ledger_post``, for SQLite."""
    with transaction.atomic():
        existing = _existing(Transaction, request.idempotency_key, request_hash)
        if existing is not None:
            return Posted(existing, False)
        accounts = _locked_accounts(leg.account_id for leg in request.legs)
        first = accounts[request.legs[0].account_id]
        area = first.area
        if request.reverses_id is not None:
            _check_reversal(request)
        postings = []
        for leg in sorted(request.legs, key=lambda leg: leg.account_id):
            account = accounts[leg.account_id]
            if account.status != AccountStatus.OPEN:
                raise errors.AccountClosed(extra={"detail": f"account={account.pk}"})
            if account.area != area and request.kind != TransactionKind.CLEARING:
                raise errors.AreaMismatch(extra={"detail": f"account={account.pk}"})
            balance = account.balance + leg.amount
            if account.floor is not None and balance - account.held < account.floor:
                raise errors.InsufficientFunds(extra={"detail": f"account={account.pk}"})
            if account.cap is not None and balance > account.cap:
                raise errors.OverCap(extra={"detail": f"account={account.pk}"})
            account.balance = balance
            account.entries += 1
            postings.append(
                Posting(
                    account=account, amount=leg.amount, account_seq=account.entries, balance_after=balance
                )
            )
        txn = Transaction.objects.create(
            kind=request.kind,
            memo=request.memo,
            actor_id=request.actor_id,
            subject=request.subject,
            ref_type=request.ref_type,
            ref_id=request.ref_id,
            policy_id=request.policy_id,
            area=area,
            idempotency_key=request.idempotency_key,
            request_hash=request_hash,
            reverses_id=request.reverses_id,
            created_at=timezone.now(),
        )
        for posting in postings:
            posting.transaction = txn
        Posting.objects.bulk_create(postings)
        for posting in postings:
            Account.objects.filter(pk=posting.account_id).update(
                balance=posting.balance_after, entries=posting.account_seq
            )
        return Posted(txn.pk, True)


def _check_reversal(request: PostRequest) -> None:
    assert request.reverses_id is not None
    original = Transaction.objects.filter(pk=request.reverses_id).values_list("kind", flat=True).first()
    if original is None:
        raise errors.TransactionNotFound(extra={"detail": f"transaction={request.reverses_id}"})
    if original == TransactionKind.REVERSAL:
        raise errors.ReversalOfReversal(extra={"detail": f"transaction={request.reverses_id}"})
    if Transaction.objects.filter(reverses_id=request.reverses_id).exists():
        raise errors.AlreadyReversed(extra={"detail": f"transaction={request.reverses_id}"})
    negated = {
        a: -m
        for a, m in Posting.objects.filter(transaction_id=request.reverses_id).values_list(
            "account_id", "amount"
        )
    }
    if negated != {leg.account_id: leg.amount for leg in request.legs}:
        raise errors.Unbalanced(
            fields={"legs": [_("a reversal negates every posting of the original exactly")]}
        )


# --- holds ------------------------------------------------------------------------------------------------


def hold_place(request: HoldRequest) -> Held:
    _check_amount(request.amount, positive=True)
    if not request.idempotency_key or len(request.idempotency_key) > LIMITS.key:
        raise errors.InvalidAmount(
            fields={"idempotency_key": [_("1 to 100 characters")]}, code="ledger_invalid_key"
        )
    for name in ("memo", "ref_type", "ref_id"):
        _check_text(name, getattr(request, name), getattr(LIMITS, name))
    request_hash = request.request_hash()
    if _pg():

        def call() -> Held:
            if not Account.objects.filter(pk=request.account_id).exists():
                raise errors.AccountNotFound(extra={"detail": f"account={request.account_id}"})
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT ledger_hold_place(%s, %s, %s, %s, %s, %s, %s, %s)",
                    [
                        request.idempotency_key,
                        request_hash,
                        request.account_id,
                        request.amount,
                        request.memo,
                        request.ref_type,
                        request.ref_id,
                        request.expires_at,
                    ],
                )
                (value,) = cursor.fetchone()
            return Held(abs(value), value > 0)

        return _run(call)

    def call_python() -> Held:
        with transaction.atomic():
            existing = _existing(Hold, request.idempotency_key, request_hash)
            if existing is not None:
                return Held(existing, False)
            account = _locked_accounts([request.account_id])[request.account_id]
            if account.status != AccountStatus.OPEN:
                raise errors.AccountClosed(extra={"detail": f"account={account.pk}"})
            if account.floor is not None and account.balance - account.held - request.amount < account.floor:
                raise errors.InsufficientFunds(extra={"detail": f"account={account.pk}"})
            hold = Hold.objects.create(
                account=account,
                amount=request.amount,
                memo=request.memo,
                ref_type=request.ref_type,
                ref_id=request.ref_id,
                idempotency_key=request.idempotency_key,
                request_hash=request_hash,
                expires_at=request.expires_at,
            )
            Account.objects.filter(pk=account.pk).update(held=F("held") + request.amount)
            return Held(hold.pk, True)

    return _run(call_python)


def hold_capture(hold_id: int, request: PostRequest) -> Posted:
    """Turn a pending hold into a transaction. The leg on the held account may take less than was held; the
    rest is released."""
    validate_post(request)
    # The capture of this hold, not any transaction: the same key for another hold is another request.
    request_hash = hashlib.sha256(f"capture:{hold_id}:{request.request_hash()}".encode()).hexdigest()
    if _pg():

        def call() -> Posted:
            with connection.cursor() as cursor:
                args = _post_args(request, request_hash)
                cursor.execute(
                    "SELECT ledger_hold_capture(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                    "%s::bigint[], %s::bigint[])",
                    [hold_id, *args[:9], *args[10:]],
                )
                (value,) = cursor.fetchone()
            return Posted(abs(value), value > 0)

        return _run(call)

    def call_python() -> Posted:
        with transaction.atomic():
            existing = _existing(Transaction, request.idempotency_key, request_hash)
            if existing is not None:
                return Posted(existing, False)
            hold = Hold.objects.select_for_update().filter(pk=hold_id).first()
            if hold is None:
                raise errors.TransactionNotFound(extra={"detail": f"hold={hold_id}"})
            if hold.status != HoldStatus.PENDING:
                raise errors.HoldNotPending(extra={"detail": f"hold={hold_id}"})
            taken = -next((leg.amount for leg in request.legs if leg.account_id == hold.account_id), 0)
            if taken <= 0 or taken > hold.amount:
                raise errors.HoldExceeded(
                    extra={"detail": f"hold={hold_id} reserved={hold.amount} taken={taken}"}
                )
            _locked_accounts(leg.account_id for leg in request.legs)
            Hold.objects.filter(pk=hold.pk).update(status=HoldStatus.CAPTURED, closed_at=timezone.now())
            Account.objects.filter(pk=hold.account_id).update(held=F("held") - hold.amount)
            posted = _post_python(request, request_hash)
            Hold.objects.filter(pk=hold.pk).update(capture_id=posted.transaction_id)
            return posted

    return _run(call_python)


def hold_release(hold_id: int) -> str:
    if _pg():

        def call() -> str:
            with connection.cursor() as cursor:
                cursor.execute("SELECT ledger_hold_release(%s)", [hold_id])
                (value,) = cursor.fetchone()
            return str(value)

        return _run(call)

    def call_python() -> str:
        with transaction.atomic():
            hold = Hold.objects.select_for_update().filter(pk=hold_id).first()
            if hold is None:
                raise errors.TransactionNotFound(extra={"detail": f"hold={hold_id}"})
            if hold.status == HoldStatus.CAPTURED:
                raise errors.HoldNotPending(extra={"detail": f"hold={hold_id}"})
            if hold.status == HoldStatus.PENDING:
                Hold.objects.filter(pk=hold.pk).update(status=HoldStatus.RELEASED, closed_at=timezone.now())
                Account.objects.filter(pk=hold.account_id).update(held=F("held") - hold.amount)
            return HoldStatus.RELEASED

    return _run(call_python)


__all__ = [
    "Held",
    "HoldRequest",
    "Leg",
    "PostRequest",
    "Posted",
    "hold_capture",
    "hold_place",
    "hold_release",
    "post",
    "post_many",
]
