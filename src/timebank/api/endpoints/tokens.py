"""Signing in for a token, and managing tokens: personal tokens for apps, device tokens for gateways."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Schema, Status
from pydantic import Field

from timebank.api import selectors
from timebank.api import services as api_services
from timebank.api.common import Id, Strict, caller, no_store, page
from timebank.api.main import api, caller_token, scope_check
from timebank.api.models import ApiToken
from timebank.common.middleware import client_ip
from timebank.people.services import sign_in

Scope = Literal["read", "write"]


class TokenOut(Schema):
    id: int
    name: str
    kind: str
    scopes: list[str]
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


class IssuedOut(TokenOut):
    token: str = Field(description="the bearer token; shown this once, only its hash is kept")


class TokensOut(Schema):
    tokens: list[TokenOut]
    next_cursor: str | None


class SignInIn(Strict):
    username: str = Field(min_length=1, max_length=150, description="user name or mobile number")
    password: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=60, description="what the token is for, e.g. the phone's name")
    scopes: list[Scope] = Field(default=["read", "write"], min_length=1, max_length=2)
    days: int = Field(90, ge=1, le=366)


class TokenIn(Strict):
    name: str = Field(min_length=1, max_length=60)
    scopes: list[Scope] = Field(min_length=1, max_length=2)
    days: int = Field(90, ge=1, le=366)
    kind: Literal["personal", "device"] = "personal"
    member_id: Id | None = Field(None, description="staff: issue it for a member of their communities")


def _token_out(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.pk,
        "name": token.name,
        "kind": token.kind,
        "scopes": token.scopes,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
        "last_used_at": token.last_used_at,
    }


def _issued_out(issued: api_services.IssuedToken) -> dict[str, Any]:
    return {**_token_out(issued.token), "token": issued.secret}


@api.post("/auth/token", auth=None, response={201: IssuedOut}, tags=["tokens"])
def sign_in_for_token(request: HttpRequest, response: HttpResponse, payload: SignInIn) -> Status[Any]:
    """Sign in with a user name (or mobile number) and password and receive a personal token. Limited per
    client address (429 with Retry-After); repeated wrong passwords lock the account as on the web."""
    api_services.rate_limit("sign_in", client_ip(request) or "unknown")
    user = sign_in(identifier=payload.username, password=payload.password)
    api_services.rate_limit("token_create", str(user.pk))
    issued = api_services.token_create(
        actor=user, user=user, name=payload.name, scopes=list(payload.scopes), days=payload.days
    )
    no_store(response)
    return Status(201, _issued_out(issued))


@api.get("/tokens", response=TokensOut, tags=["tokens"])
def tokens(
    request: HttpRequest, member_id: Id | None = None, cursor: str | None = None, limit: int = 50
) -> dict[str, Any]:
    """My tokens, or (staff) a member's. Secrets are never shown again."""
    holder = selectors.token_holder(caller(request), member_id)
    rows, next_cursor = page(selectors.tokens_of(holder), cursor, limit, _token_out)
    return {"tokens": rows, "next_cursor": next_cursor}


@api.post("/tokens", response={201: IssuedOut}, tags=["tokens"])
def token_create(request: HttpRequest, response: HttpResponse, payload: TokenIn) -> Status[Any]:
    """Issue a token for myself or (staff) for a member of my communities: a personal token for an app or a
    device token for a gateway. Never with more scopes than the asking token has. Limited per user (429)."""
    scope_check(request, "write")
    actor = caller(request)
    api_services.rate_limit("token_create", str(actor.pk))
    issued = api_services.token_create(
        actor=actor,
        user=selectors.token_holder(actor, payload.member_id),
        name=payload.name,
        scopes=list(payload.scopes),
        days=payload.days,
        kind=payload.kind,
        within=list(token.scopes) if (token := caller_token(request)) else [],
    )
    no_store(response)
    return Status(201, _issued_out(issued))


@api.post("/tokens/{token_id}/revoke", response=TokenOut, tags=["tokens"])
def token_revoke(request: HttpRequest, token_id: Id) -> dict[str, Any]:
    """Revoke a token at once (mine, or a member's for staff). Revoking twice changes nothing."""
    scope_check(request, "write")
    actor = caller(request)
    return _token_out(api_services.token_revoke(actor=actor, token=selectors.token_get(actor, token_id)))
