"""What every endpoint module shares: strict input schemas, the caller, limits and cursor pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Annotated, Any, Protocol, TypeVar

from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Schema
from pydantic import AfterValidator, ConfigDict, Field

from timebank.api.main import caller as caller
from timebank.api.main import cursor_decode, cursor_encode
from timebank.common.errors import NotFound, PermissionDenied, ValidationFailed
from timebank.people.access import Perm, access_anywhere
from timebank.people.models import Member, User
from timebank.regions.models import Region
from timebank.regions.selectors import region_find, region_get

M = TypeVar("M", bound=Model)
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


def _utc(moment: dt.datetime) -> dt.datetime:
    """An instant as UTC: the database holds any instant in range, but not every offset a request may carry
    (PostgreSQL refuses one beyond ±15:59, and with it the whole transaction). A naive time is left as sent,
    for the service to refuse by name."""
    if moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError as exc:
        raise ValueError("out of range") from exc


# An instant in a query or a body
Moment = Annotated[dt.datetime, AfterValidator(_utc)]

# A row's number, in a path, a query or a body: bounded, so that no number is too large for the database
MAX_ID = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class Strict(Schema):
    """Input: an unknown field is refused by name, not ignored."""

    model_config = ConfigDict(extra="forbid")


def caller_member(request: HttpRequest) -> Member:
    member = caller(request).member
    if member is None:
        raise NotFound(_("This sign-in has no member record."), code="api_no_member")
    return member


def staff_with(request: HttpRequest, perm: Perm, message: Any = None) -> User:
    """The caller, who must hold ``perm`` somewhere: which regions is for the service or selector to say."""
    user = caller(request)
    if not access_anywhere(user, perm):
        raise PermissionDenied(message)
    return user


def region_or_none(code: str | None) -> Region | None:
    """A filter's region (that code, or no filter when none is given); an unknown code is a 404."""
    return region_get(code) if code else None


def region_field(code: str) -> Region:
    """The region a body names in its ``region`` field; an unknown code is that field's error."""
    found = region_find(code)
    if found is None:
        raise ValidationFailed.field(
            "region", _("There is no region with this code."), code="region_not_found"
        )
    return found


def no_store(response: HttpResponse) -> None:
    """For an answer holding a secret (a token, card codes, an ID number): no cache keeps it."""
    response["Cache-Control"] = "no-store"


def limit_check(limit: int) -> None:
    if not 1 <= limit <= 200:
        raise ValidationFailed.field("limit", _("1 to 200."), code="api_bad_limit")


class Sliceable(Protocol[T_co]):
    def __getitem__(self, positions: slice, /) -> Iterable[T_co]: ...


def position_page(items: Sliceable[T], cursor: str | None, limit: int) -> tuple[list[T], str | None]:
    """A page of a list kept in its own order (nearest, soonest): the cursor is a position in it. ``items``
    may be a list or a query set (only the page and one more row are read)."""
    limit_check(limit)
    start = cursor_decode(cursor) or 0
    rows = list(items[start : start + limit + 1])
    return rows[:limit], (cursor_encode(start + limit) if len(rows) > limit else None)


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
