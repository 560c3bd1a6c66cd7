"""Writes of the API package: tokens. (Everything else the API does calls another package's services.)"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from timebank.api.models import ApiToken, RateCount, TokenKind
from timebank.audit.services import audit_record
from timebank.common.errors import AuthenticationFailed, PermissionDenied, RateLimited, ValidationFailed
from timebank.people.access import access_is_staff
from timebank.people.models import User

SCOPES = ("read", "write")
MAX_DAYS = 366


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_create(
    *,
    actor: User,
    user: User,
    name: str,
    scopes: list[str],
    days: int = 90,
    kind: str = TokenKind.PERSONAL,
    within: list[str] | None = None,
) -> IssuedToken:
    """Issue a token for ``user`` (themselves, or a staff member for a user of their communities). The secret
    is returned once and only its hash is kept. ``within``: the scopes of the token asking, when a token
    asks — a token never issues one that may do more than itself."""
    if actor.pk != user.pk and not (
        access_is_staff(actor) and (user.member is None or _staff_sees(actor, user))
    ):
        raise PermissionDenied(_("Only the user, or staff of their community, issue their tokens."))
    name = (name or "").strip()
    if not name or len(name) > 60:
        raise ValidationFailed.field("name", _("A name of 1 to 60 characters."), code="api_bad_token_name")
    if not scopes or any(s not in SCOPES for s in scopes):
        raise ValidationFailed.field("scopes", _("Scopes are read and/or write."), code="api_bad_scopes")
    if within is not None and not set(scopes) <= set(within):
        raise PermissionDenied(
            _("A token cannot issue one with scopes it lacks itself."), code="api_scope_escalation"
        )
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
        raise ValidationFailed.field("days", _("1 to 366 days."), code="api_bad_days")
    if kind not in TokenKind.values:
        raise ValidationFailed.field("kind", _("Personal or device."), code="api_bad_kind")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name,
            kind=kind,
            prefix=prefix,
            secret_hash=_digest(secret),
            scopes=sorted(set(scopes)),
            created_by=actor,
            expires_at=timezone.now() + dt.timedelta(days=days),
        )
        audit_record(
            actor=actor,
            event_type="api.token.created",
            subject=user,
            region=user.member.home_region if user.member else None,
            new={"token": token.pk, "name": name, "scopes": token.scopes, "days": days, "kind": kind},
        )
    return IssuedToken(token=token, secret=f"tb_{prefix}_{secret}")


def _staff_sees(actor: User, user: User) -> bool:
    from timebank.people.access import Perm, access_has

    return user.member is not None and access_has(actor, Perm.PEOPLE_MANAGE, user.member.home_region)


def token_revoke(*, actor: User, token: ApiToken) -> ApiToken:
    if actor.pk != token.user_id and not _staff_sees(actor, token.user):
        raise PermissionDenied(_("Only the user, or staff of their community, revoke their tokens."))
    with transaction.atomic():
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        audit_record(
            actor=actor,
            event_type="api.token.revoked",
            subject=token.user,
            region=token.user.member.home_region if token.user.member else None,
            old={"token": token.pk},
        )
    token.refresh_from_db()
    return token


def token_authenticate(raw: str) -> tuple[User, ApiToken]:
    """The user a bearer token stands for; any flaw (format, unknown, revoked, expired) is the same 401."""
    parts = (raw or "").strip().split("_", 2)
    if len(parts) != 3 or parts[0] != "tb":
        raise AuthenticationFailed(_("The token is not valid."), code="api_bad_token")
    token = ApiToken.objects.select_related("user").filter(prefix=parts[1]).first()
    now = timezone.now()
    if (
        token is None
        or not secrets.compare_digest(token.secret_hash, _digest(parts[2]))
        or token.revoked_at is not None
        or token.expires_at <= now
        or not token.user.is_active
    ):
        raise AuthenticationFailed(_("The token is not valid."), code="api_bad_token")
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user, token


def rate_limit(bucket: str, caller: str) -> None:
    """Count one request of kind ``bucket`` (a key of ``settings.API_RATE_LIMITS``) from ``caller``; refuse
    it once the window's allowance is spent, saying when to try again. One upsert, shared by all processes."""
    allowed, seconds = settings.API_RATE_LIMITS[bucket]
    now = int(time.time())
    window = now - now % seconds
    key = f"{bucket}:{caller}"[:150]
    table = RateCount._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (bucket, window_start, count) VALUES (%s, %s, 1) "  # noqa: S608 (our table)
            f"ON CONFLICT (bucket, window_start) DO UPDATE SET count = {table}.count + 1 RETURNING count",
            [key, window],
        )
        row = cursor.fetchone()
        if random.random() < 0.01:  # now and then, forget windows long past
            RateCount.objects.filter(window_start__lt=now - 2 * 86400).delete()
    if row is not None and row[0] > allowed:
        raise RateLimited(extra={"retry_after": window + seconds - now})
