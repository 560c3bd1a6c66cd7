"""``/api/v1``: django-ninja over the same services the web uses. Endpoints parse, call one service or
selector, and answer; every refusal has one shape: ``{"code", "message", "fields"}``."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import inspect
import json
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DataError, IntegrityError, connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from ninja import NinjaAPI, Status, Swagger
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.openapi.schema import OpenAPISchema
from ninja.responses import NinjaJSONEncoder
from ninja.security import HttpBearer
from pydantic import BaseModel

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
        if request.method in ("GET", "HEAD"):
            scope_check(request, "read")  # writes check "write" themselves
        return user


IDEMPOTENCY_HEADER = "Idempotency-Key"
ERROR_STATUSES = {
    400: "The request could not be read.",
    401: "No valid bearer token.",
    403: "The token or its user may not do this.",
    404: "Not found, or not visible to this user.",
    405: "This path does not take this method.",
    409: "The state changed meanwhile, or an Idempotency-Key was reused with another request.",
    413: "The body is too large.",
    422: "Some fields are not valid; `fields` names each and why.",
    429: "Too many requests, or the account is locked for a while (see Retry-After).",
}
ERROR_SCHEMA = {
    "type": "object",
    "title": "Error",
    "required": ["code", "message", "fields"],
    "properties": {
        "code": {"type": "string", "description": "stable, for programs"},
        "message": {"type": "string", "description": "for people, in the request's language"},
        "fields": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "each field at fault and why",
        },
    },
}


class TimeBankAPI(NinjaAPI):
    """The document also says what every operation may refuse (the one error format) and which take an
    Idempotency-Key, so that clients and the schema fuzzer know both."""

    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: Any = None) -> OpenAPISchema:
        for router in self._get_bound_routers():
            for path_view in router.path_operations.values():
                for operation in path_view.operations:
                    required = getattr(operation.view_func, "idempotency_required", None)
                    if required is not None and not operation.openapi_extra:
                        operation.openapi_extra = {"parameters": [_key_parameter(required)]}
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for methods in schema["paths"].values():
            for details in methods.values():
                for status, reason in ERROR_STATUSES.items():
                    details["responses"].setdefault(status, {"description": reason, "content": error_content})
        return schema


def _key_parameter(required: bool) -> dict[str, Any]:
    return {
        "in": "header",
        "name": IDEMPOTENCY_HEADER,
        "required": required,
        "schema": {"type": "string", "minLength": 1, "maxLength": 100},
        "description": "Any unique string per intended request: a retry with the same key and body gets the "
        "first answer again and changes nothing.",
    }


api = TimeBankAPI(
    title="TimeBank API",
    version="1.0",
    urls_namespace="api-v1",
    auth=BearerToken(),
    # Swagger UI from django-ninja's own static files ("ninja" is an installed app), never a CDN; no online
    # validator badge either
    docs=Swagger(settings={"validatorUrl": None, "persistAuthorization": True}),
    docs_url="/docs",
)


def error(status: int, code: str, message: Any, fields: dict[str, list[str]] | None = None) -> JsonResponse:
    return JsonResponse({"code": code, "message": str(message), "fields": fields or {}}, status=status)


@api.exception_handler(ApplicationError)
def on_application_error(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
    response = error(exc.status, exc.code, exc.message, exc.fields)
    if "retry_after" in exc.extra:
        response["Retry-After"] = str(max(1, int(exc.extra["retry_after"])))
    return response


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


@api.exception_handler(RequestDataTooBig)
def on_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)
    message = _("The request body is larger than %(mb)s MB.") % {"mb": limit}
    return error(413, "api_payload_too_large", message)


@api.exception_handler(DataError)
@api.exception_handler(OverflowError)
def on_out_of_range(request: HttpRequest, exc: Exception) -> HttpResponse:
    """A value the database cannot hold (a number out of range, a NUL character), where no schema bounded it:
    the caller's error, not the server's (the database refused it, so nothing was written)."""
    return error(
        422,
        "api_value_not_storable",
        _("A value in the request cannot be stored (too large, or a character that is not allowed)."),
    )


@api.exception_handler(IntegrityError)
def on_integrity_error(request: HttpRequest, exc: IntegrityError) -> HttpResponse:
    """Two requests raced to make the same thing (one sign-in, one name): the loser is told, not a 500."""
    return error(409, "conflict", _("This conflicts with something saved meanwhile. Check and try again."))


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return error(exc.status_code, "http_error", str(exc))


def caller_token(request: HttpRequest) -> ApiToken | None:
    """The token the request was authenticated with (None before authentication)."""
    token: ApiToken | None = getattr(request, "api_token", None)
    return token


def scope_check(request: HttpRequest, scope: str) -> None:
    token = caller_token(request)
    if token is None or scope not in token.scopes:
        raise PermissionDenied(
            _("This token may not do this (it lacks the “%(scope)s” scope).") % {"scope": scope},
            code="api_scope_missing",
        )


# --- idempotency --------------------------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


def idempotency_key(request: HttpRequest) -> str:
    """The key the caller sent, scoped to them: what a service's own ``idempotency_key`` receives, so that a
    retry racing the first request still posts once."""
    sent = getattr(request, "idempotency_key", "")
    return f"api:{caller(request).pk}:{hashlib.sha256(sent.encode()).hexdigest()[:40]}"  # ≤ 80 characters


def idempotent(required: bool = True) -> Callable[[F], F]:
    """For a request that moves time: ``Idempotency-Key`` is required (or, with ``required=False``, honoured
    when sent). The first successful answer is kept; a retry with the same key and body gets it again (same
    status, header ``Idempotent-Replayed: true``) and changes nothing; the same key with another body or on
    another path is a 409. Refusals are not kept: a retry is decided afresh.

    On PostgreSQL two requests with one key wait for each other (an advisory lock on the user and key), so the
    second always replays the first."""

    def wrap(view: F) -> F:
        @functools.wraps(view)
        def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            key = (request.headers.get(IDEMPOTENCY_HEADER) or "").strip()
            if not key:
                if required:
                    raise ValidationFailed.field(
                        IDEMPOTENCY_HEADER,
                        _("Send an Idempotency-Key header of 1 to 100 characters."),
                        code="api_key_required",
                    )
                return view(request, *args, **kwargs)
            if len(key) > 100:
                raise ValidationFailed.field(
                    IDEMPOTENCY_HEADER,
                    _("An Idempotency-Key has at most 100 characters."),
                    code="api_key_too_long",
                )
            request.idempotency_key = key  # type: ignore[attr-defined]
            body_hash = _body_hash(kwargs)
            with _key_lock(caller(request).pk, key):
                first = IdempotentResponse.objects.filter(user=caller(request), key=key).first()
                if first is not None:
                    if (first.body_hash, first.path, first.method) != (
                        body_hash,
                        request.path,
                        request.method,
                    ):
                        raise Conflict(
                            _("This Idempotency-Key was used for another request."),
                            code="api_idempotency_conflict",
                        )
                    return JsonResponse(
                        first.body, status=first.status, headers={"Idempotent-Replayed": "true"}
                    )
                result = view(request, *args, **kwargs)
                status, value = (
                    (result.status_code, result.value) if isinstance(result, Status) else (200, result)
                )
                _remember(request, key, body_hash, status, value)
                return result

        # the view's annotations are strings (``from __future__ import annotations``) naming the view module's
        # schemas: resolve them there, for django-ninja reads the wrapper's signature
        inner.__signature__ = inspect.signature(view, eval_str=True)  # type: ignore[attr-defined]
        inner.idempotency_required = required  # type: ignore[attr-defined]
        return inner  # type: ignore[return-value]

    return wrap


def _body_hash(kwargs: dict[str, Any]) -> str:
    plain = {
        k: v.model_dump(mode="json", exclude_unset=True) if isinstance(v, BaseModel) else v
        for k, v in kwargs.items()
    }
    # keyed: a body may hold a PIN or a card code, which a plain hash of a few digits would give away
    text = json.dumps(plain, sort_keys=True, default=str)
    return salted_hmac("timebank.api.idempotency", text, algorithm="sha256").hexdigest()


@contextlib.contextmanager
def _key_lock(user_id: int, key: str) -> Iterator[None]:
    if connection.vendor != "postgresql":
        yield
        return
    lock = int.from_bytes(hashlib.sha256(f"{user_id}:{key}".encode()).digest()[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [lock])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [lock])


def caller(request: HttpRequest) -> User:
    """The user the bearer token stands for."""
    user = request.user
    assert isinstance(user, User)
    return user


def _remember(request: HttpRequest, key: str, body_hash: str, status: int, value: Any) -> None:
    body = json.loads(json.dumps(value, cls=NinjaJSONEncoder))
    try:
        with transaction.atomic():
            IdempotentResponse.objects.create(
                user=caller(request),
                key=key,
                method=request.method or "",
                path=request.path,
                body_hash=body_hash,
                status=status,
                body=body,
            )
    except IntegrityError:  # recorded by a concurrent request (SQLite has no advisory lock)
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


__all__ = [
    "AuthenticationFailed",
    "api",
    "channel",
    "cursor_decode",
    "cursor_encode",
    "idempotency_key",
    "idempotent",
]
