"""What every endpoint module shares: strict input schemas, the caller, limits and cursor pages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Schema
from pydantic import ConfigDict, Field

from timebank.api.main import cursor_decode, cursor_encode
from timebank.common.errors import NotFound, ValidationFailed
from timebank.people.models import Member, User

M = TypeVar("M", bound=Model)

# A row's number, in a path, a query or a body: bounded, so that no number is too large for the database
MAX_ID = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class Strict(Schema):
    """Input: an unknown field is refused by name, not ignored."""

    model_config = ConfigDict(extra="forbid")


def caller(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def caller_member(request: HttpRequest) -> Member:
    member = caller(request).member
    if member is None:
        raise NotFound(_("This sign-in has no member record."), code="api_no_member")
    return member


def no_store(response: HttpResponse) -> None:
    """For an answer holding a secret (a token, card codes, an ID number): no cache keeps it."""
    response["Cache-Control"] = "no-store"


def limit_check(limit: int) -> None:
    if not 1 <= limit <= 200:
        raise ValidationFailed.field("limit", _("1 to 200."), code="api_bad_limit")


def page(
    qs: QuerySet[M], cursor: str | None, limit: int, out: Callable[[M], dict[str, Any]]
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first by primary key: the rows before ``cursor``, at most ``limit``, and the next cursor."""
    limit_check(limit)
    before = cursor_decode(cursor)
    if before is not None:
        qs = qs.filter(pk__lt=before)
    rows: Sequence[M] = list(qs.order_by("-pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return [out(r) for r in rows], (cursor_encode(rows[-1].pk) if more and rows else None)
