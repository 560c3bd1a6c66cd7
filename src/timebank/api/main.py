"""``/api/v1``: django-ninja over the same services the web uses. Endpoints parse, call one service or
selector, and answer; every refusal has one shape: ``{"code", "message", "fields"}``."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer

from timebank.api.models import ApiToken, IdempotentResponse
from timebank.api.services import token_authenticate
from timebank.common.context import origin
from timebank.common.errors import (
    ApplicationError,
    AuthenticationFailed,
    Conflict,
    PermissionDenied,
    ValidationFailed,
)
from timebank.people.models import User


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        user, api_token = token_authenticate(token)
        request.user = user
        request.api_token = api_token  # type: ignore[attr-defined]
        return user


api = NinjaAPI(
    title="TimeBank API",
    version="1.0",
    urls_namespace="api-v1",
    auth=BearerToken(),
    docs_url=None,  # the interactive docs need Swagger UI served locally (not from a CDN): not yet
)


def error(status: int, code: str, message: Any, fields: dict[str, list[str]] | None = None) -> JsonResponse:
    return JsonResponse({"code": code, "message": str(message), "fields": fields or {}}, status=status)


@api.exception_handler(ApplicationError)
def on_application_error(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
    return error(exc.status, exc.code, exc.message, exc.fields)


@api.exception_handler(NinjaValidationError)
def on_validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    fields: dict[str, list[str]] = {}
    for item in exc.errors:
        location = [str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path", "payload")]
        fields.setdefault(".".join(location) or "request", []).append(str(item.get("msg", "")))
    return error(422, "validation_failed", _("Some fields are not valid."), fields)


@api.exception_handler(AuthenticationError)
def on_authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error(401, "api_bad_token", _("Sign in with a valid bearer token."))


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return error(exc.status_code, "http_error", str(exc))


def scope_check(request: HttpRequest, scope: str) -> None:
    token: ApiToken | None = getattr(request, "api_token", None)
    if token is None or scope not in token.scopes:
        raise PermissionDenied(
            _("This token may not do this (it lacks the “%(scope)s” scope).") % {"scope": scope},
            code="api_scope_missing",
        )


# --- idempotency --------------------------------------------------------------------------------------------


def replayed(request: HttpRequest, body: Any) -> tuple[str, str, IdempotentResponse | None]:
    """For a request that moves time: the required Idempotency-Key, the body's hash, and the first answer if
    this is a retry. The same key with another body is refused."""
    key = (request.headers.get("Idempotency-Key") or "").strip()
    if not key or len(key) > 100:
        raise ValidationFailed.field(
            "Idempotency-Key",
            _("Send an Idempotency-Key header of 1 to 100 characters."),
            code="api_key_required",
        )
    body_hash = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    first = IdempotentResponse.objects.filter(user=_caller(request), key=key).first()
    if first is not None and (first.body_hash, first.path, first.method) != (
        body_hash,
        request.path,
        request.method,
    ):
        raise Conflict(
            _("This Idempotency-Key was used for another request."), code="api_idempotency_conflict"
        )
    return key, body_hash, first


def _caller(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def remember(request: HttpRequest, key: str, body_hash: str, status: int, answer: dict[str, Any]) -> None:
    try:
        with transaction.atomic():
            IdempotentResponse.objects.create(
                user=_caller(request),
                key=key,
                method=request.method or "",
                path=request.path,
                body_hash=body_hash,
                status=status,
                body=answer,
            )
    except (
        IntegrityError
    ):  # a concurrent retry recorded it first; the ledger's own key kept it to one posting
        pass


# --- cursors ------------------------------------------------------------------------------------------------


def cursor_encode(value: int) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def cursor_decode(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        value = int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed.field(
            "cursor", _("Not a cursor this API gave."), code="api_bad_cursor"
        ) from exc
    if value < 0:
        raise ValidationFailed.field("cursor", _("Not a cursor this API gave."), code="api_bad_cursor")
    return value


def channel(request: HttpRequest) -> Any:
    return origin(request.META.get("REMOTE_ADDR"), "api")


__all__ = ["AuthenticationFailed", "api", "channel", "cursor_decode", "cursor_encode", "remember", "replayed"]
