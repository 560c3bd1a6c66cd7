"""Services (orders): requests, the whole life of a service (accept, assign, check-in and out, confirm,
review, dispute, rate), the review queue, complaints, the catalogue and volunteers' certifications; and the
station's console: paper records, the dispatch board, public fund budgets, and elders' service cards and PINs.

Every single-service answer is ``OrderDetailOut``; lists give ``OrderOut`` rows (no street address) with a
``next_cursor``. Minutes are whole numbers in fields ending in ``_minutes``; statuses, categories, funding
sources and methods are codes. Writes that move or hold time (approving, resolving a complaint, entering a
paper record) require an ``Idempotency-Key``; the other writes honour one when sent, except those whose
answer or body is a secret (a new service card's codes, a PIN), which are never kept for a replay."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any, Literal, TypeVar

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import Schema, Status
from pydantic import Field

from timebank.api.common import (
    MAX_ID,
    Id,
    Moment,
    Strict,
    caller,
    caller_member,
    no_store,
    page,
    position_page,
    region_field,
    region_or_none,
    staff_with,
)
from timebank.api.main import api, idempotent, scope_check
from timebank.care import cards
from timebank.care import selectors as care_selectors
from timebank.care import services as care_services
from timebank.care.models import (
    Certification,
    Dispute,
    FundBudget,
    Funding,
    Outcome,
    Rating,
    ServiceOrder,
)
from timebank.care.models import Status as OrderStatus
from timebank.care.rules import weighted
from timebank.common.errors import ApplicationError, NotFound, PermissionDenied, ValidationFailed
from timebank.people.access import Perm
from timebank.people.models import Member, User
from timebank.people.selectors import member_get
from timebank.regions.models import Region
from timebank.regions.selectors import region_get

# A path id: a bad one ("abc", 0, too large) is a 422 naming it, never a server error.
T = TypeVar("T")

# --- what is answered ---------------------------------------------------------------------------------------


class OrderOut(Schema):
    id: int
    number: str
    status: str
    category: str
    community: str
    window_start: dt.datetime
    window_end: dt.datetime
    funding: str
    elder_id: int
    volunteer_id: int | None
    payer_id: int | None
    source: str
    series: str | None = Field(description="shared by the weekly services of one repeated request")
    occurrence: int
    notes: str
    status_changed_at: dt.datetime
    reserved_minutes: int = Field(description="held on whoever pays while the service is arranged")
    checked_in_at: dt.datetime | None
    checked_out_at: dt.datetime | None
    travel_minutes: int
    service_minutes: int | None
    flagged: bool = Field(description="recorded times overlap another service of the volunteer")
    escalated_at: dt.datetime | None
    confirmation_method: str | None
    confirmed_at: dt.datetime | None
    coefficient_permille: int | None
    credited_minutes: int | None
    capped_minutes: int
    overflow_minutes: int


class OrderDetailOut(OrderOut):
    address: str


class OrdersOut(Schema):
    orders: list[OrderOut]
    next_cursor: str | None


class OrdersCreatedOut(Schema):
    orders: list[OrderDetailOut]


class RatingOut(Schema):
    order_id: int
    side: str
    stars: int
    comment: str
    created_at: dt.datetime


class DisputeOut(Schema):
    id: int
    order_id: int
    order_status: str
    raised_by_id: int
    reason: str
    from_status: str
    opened_at: dt.datetime
    outcome: str | None
    resolution: str
    corrected_minutes: int | None
    resolved_by_id: int | None
    resolved_at: dt.datetime | None
    reversal_transaction_id: int | None


class DisputesOut(Schema):
    disputes: list[DisputeOut]
    next_cursor: str | None


class RefusedOut(Schema):
    order_id: int
    code: str
    message: str
    fields: dict[str, list[str]]


class BatchOut(Schema):
    approved: list[OrderDetailOut]
    failed: list[RefusedOut]


class CategoryOut(Schema):
    code: str
    name: str
    name_en: str
    tier: int
    coefficient_permille: int
    hour_credits_minutes: int = Field(description="what one hour of this service credits")
    requires_certification: str | None


class PolicyRefOut(Schema):
    id: int
    name: str
    version: int
    region: str
    effective_from: dt.date


class CatalogueOut(Schema):
    region: str
    day: dt.date
    policy: PolicyRefOut | None
    categories: list[CategoryOut]


class CertificationOut(Schema):
    id: int
    member_id: int
    code: str
    valid_until: dt.date | None
    granted_by_id: int
    granted_at: dt.datetime
    revoked_at: dt.datetime | None


class CertificationsOut(Schema):
    certifications: list[CertificationOut]
    next_cursor: str | None


class DispatchSuggestionOut(Schema):
    volunteer_id: int
    name: str
    community: str
    nearness: int = Field(
        description="0: the service's own community; 1: a neighbouring one of the same street; 2: elsewhere "
        "in the caller's regions"
    )
    credited_this_month_minutes: int = Field(description="credited for services given since the 1st")


class DispatchRequestOut(Schema):
    order: OrderOut
    suggestions: list[DispatchSuggestionOut] = Field(description="at most five, best first")


class DispatchOut(Schema):
    requests: list[DispatchRequestOut]
    next_cursor: str | None


class FundBudgetOut(Schema):
    id: int
    region: str
    region_name: str
    year: int
    limit_minutes: int
    committed_minutes: int = Field(description="reserved for booked services, or already credited")
    remaining_minutes: int
    set_by_id: int | None
    updated_at: dt.datetime


class FundBudgetsOut(Schema):
    budgets: list[FundBudgetOut]
    next_cursor: str | None


class CardCodeOut(Schema):
    number: int
    code: str


class ServiceCardIssuedOut(Schema):
    member_id: int
    serial: str
    issued_at: dt.datetime
    token: str = Field(description="what the card's QR code carries: volunteers scan it to check in and out")
    url: str = Field(description="the address the QR code holds")
    codes: list[CardCodeOut] = Field(description="the 20 one-time confirmation codes, shown this once")


class ElderPinOut(Schema):
    member_id: int
    has_pin: bool


def _order_out(order: ServiceOrder) -> dict[str, Any]:
    return {
        "id": order.pk,
        "number": order.number,
        "status": order.status,
        "category": order.category.code,
        "community": order.region.code,
        "window_start": order.window_start,
        "window_end": order.window_end,
        "funding": order.funding,
        "elder_id": order.elder_id,
        "volunteer_id": order.volunteer_id,
        "payer_id": order.payer_id,
        "source": order.source,
        "series": str(order.series) if order.series else None,
        "occurrence": order.occurrence,
        "notes": order.notes,
        "status_changed_at": order.status_changed_at,
        "reserved_minutes": order.reserved_minutes,
        "checked_in_at": order.checked_in_at,
        "checked_out_at": order.checked_out_at,
        "travel_minutes": order.travel_minutes,
        "service_minutes": order.service_minutes,
        "flagged": order.overlap_flag,
        "escalated_at": order.escalated_at,
        "confirmation_method": order.confirmation_method or None,
        "confirmed_at": order.confirmed_at,
        "coefficient_permille": order.coefficient_permille,
        "credited_minutes": order.credited_minutes,
        "capped_minutes": order.capped_minutes,
        "overflow_minutes": order.overflow_minutes,
    }


def order_detail_out(order: ServiceOrder) -> dict[str, Any]:
    return {**_order_out(order), "address": order.address}


def _rating_out(rating: Rating) -> dict[str, Any]:
    return {
        "order_id": rating.order_id,
        "side": rating.side,
        "stars": rating.stars,
        "comment": rating.comment,
        "created_at": rating.created_at,
    }


def _dispute_out(dispute: Dispute) -> dict[str, Any]:
    return {
        "id": dispute.pk,
        "order_id": dispute.order_id,
        "order_status": dispute.order.status,
        "raised_by_id": dispute.raised_by_id,
        "reason": dispute.reason,
        "from_status": dispute.from_status,
        "opened_at": dispute.opened_at,
        "outcome": dispute.outcome or None,
        "resolution": dispute.resolution,
        "corrected_minutes": dispute.corrected_minutes,
        "resolved_by_id": dispute.resolved_by_id,
        "resolved_at": dispute.resolved_at,
        "reversal_transaction_id": dispute.reversal_id,
    }


def _suggestion_out(suggestion: care_selectors.Suggestion) -> dict[str, Any]:
    volunteer = suggestion.volunteer
    return {
        "volunteer_id": volunteer.pk,
        "name": volunteer.name,
        "community": volunteer.home_region.code,
        "nearness": suggestion.nearness,
        "credited_this_month_minutes": suggestion.credited_this_month,
    }


def _budget_out(budget: FundBudget) -> dict[str, Any]:
    return {
        "id": budget.pk,
        "region": budget.region.code,
        "region_name": budget.region.name,
        "year": budget.year,
        "limit_minutes": budget.limit_minutes,
        "committed_minutes": budget.committed_minutes,
        "remaining_minutes": budget.remaining_minutes,
        "set_by_id": budget.set_by_id,
        "updated_at": budget.updated_at,
    }


def _certification_out(certification: Certification) -> dict[str, Any]:
    return {
        "id": certification.pk,
        "member_id": certification.member_id,
        "code": certification.code,
        "valid_until": certification.valid_until,
        "granted_by_id": certification.granted_by_id,
        "granted_at": certification.granted_at,
        "revoked_at": certification.revoked_at,
    }


# --- what is asked ------------------------------------------------------------------------------------------


class OrderIn(Strict):
    elder_id: int = Field(ge=1, le=MAX_ID)
    category: str = Field(max_length=40, description="a category code of the catalogue in force")
    window_start: Moment = Field(description="ISO 8601 with its offset, e.g. 2026-05-02T10:00:00+08:00")
    window_end: Moment
    funding: Funding
    payer_id: int | None = Field(None, ge=1, le=MAX_ID, description="the paying relative, for family")
    address: str = Field("", max_length=1000, description="empty: the address on file")
    notes: str = Field("", max_length=2000)
    place: str = Field("", max_length=12, description="community code; empty: the elder's own")
    repeat_weeks: int = Field(1, description="more than 1: the same visit weekly, one service a week")


class AssignIn(Strict):
    volunteer_id: int = Field(ge=1, le=MAX_ID)


class ReasonIn(Strict):
    reason: str = Field("", max_length=2000)


class NoShowIn(Strict):
    note: str = Field("", max_length=2000)


class CheckIn(Strict):
    token: str = Field("", max_length=500, description="the elder's service-card QR token, when scanned")


class TimesIn(Strict):
    started_at: Moment
    ended_at: Moment
    travel_minutes: int = 0
    card_ref: str = Field("", max_length=200, description="the paper card's number")


class ConfirmIn(Strict):
    method: Literal["pin", "card_code", "device", "proxy", "staff"] = Field(
        description="pin or card_code: typed by the elder on the volunteer's phone; device: the elder's own; "
        "proxy: a relative with a verified bond; staff: station staff who phoned the elder (note required)"
    )
    pin: str = Field("", max_length=20)
    code: str = Field("", max_length=20, description="a one-time code from the elder's service card")
    note: str = Field("", max_length=2000, description="staff: whom they phoned and what was said")


class RateIn(Strict):
    stars: int
    comment: str = Field("", max_length=2000)


class BatchIn(Strict):
    order_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(min_length=1, max_length=200)


class ResolveIn(Strict):
    outcome: Outcome
    resolution: str = Field("", max_length=2000)
    corrected_minutes: int | None = Field(None, description="the right service time, when corrected")


class CertificationIn(Strict):
    code: str = Field(max_length=200)
    valid_until: dt.date | None = None


class PaperRecordIn(Strict):
    elder_id: int = Field(ge=1, le=MAX_ID)
    volunteer_id: int = Field(ge=1, le=MAX_ID)
    category: str = Field(max_length=40, description="a category code of the catalogue in force that day")
    started_at: Moment = Field(description="as signed on the card; ISO 8601 with its offset")
    ended_at: Moment
    funding: Funding
    payer_id: int | None = Field(None, ge=1, le=MAX_ID, description="the paying relative, for family")
    travel_minutes: int = Field(0, description="travel time inside those times, left out")
    card_ref: str = Field("", max_length=200, description="the paper card's number")
    notes: str = Field("", max_length=2000)


class FundBudgetIn(Strict):
    region: str = Field(max_length=12, description="a jurisdiction's code: a district (310101) or a city")
    year: int = Field(description="e.g. 2027")
    limit_minutes: int = Field(description="the year's budget; never below what is already committed")


class ElderPinIn(Strict):
    pin: str = Field(max_length=20, description="4 to 6 digits, not easy to guess (like 1111 or 1234)")


# --- helpers ------------------------------------------------------------------------------------------------


def _order(request: HttpRequest, order_id: int) -> ServiceOrder:
    return care_selectors.order_get(caller(request), order_id)


def _member(member_id: int | None, field: str) -> Member | None:
    """A member named in a request body; whether the caller may involve them is the service's to say."""
    if member_id is None:
        return None
    found = Member.objects.select_related("home_region").filter(pk=member_id).first()
    if found is None:
        raise ValidationFailed.field(field, _("No member has this number."), code="member_not_found")
    return found


@contextlib.contextmanager
def _fields_as(names: dict[str, str]) -> Iterator[None]:
    """A refusal names the fields as this API does (``elder_id``), not as the service does (``elder``)."""
    try:
        yield
    except ApplicationError as exc:
        exc.fields = {names.get(name, name): reasons for name, reasons in exc.fields.items()}
        raise


ONLY_STAFF = _("Only station staff may do this.")  # translated when raised: see staff_with


def _staff_member(request: HttpRequest, member_id: int) -> tuple[User, Member]:
    """Station staff and a member of their regions (anyone else's is not found)."""
    user = staff_with(request, Perm.CARE_MANAGE, ONLY_STAFF)
    return user, member_get(user, member_id)


def _card_url(request: HttpRequest, token: str) -> str:
    """The card's own page, which its QR code holds."""
    return request.build_absolute_uri(reverse("web:care-card", kwargs={"token": token}))


# --- lists --------------------------------------------------------------------------------------------------


@api.get("/care/orders", response=OrdersOut, tags=["care"])
def orders(
    request: HttpRequest,
    status: OrderStatus | None = None,
    category: str = "",
    region: str = "",
    starts_from: dt.date | None = None,
    starts_until: dt.date | None = None,
    flagged: bool = False,
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Every service the caller may open: for staff, those of their regions; for a member, those they give,
    receive or pay for and those of the elders of their verified family. Newest first. Filters: ``status``;
    ``category`` (code); ``region`` (code: that region and everything under it); ``starts_from`` and
    ``starts_until`` (local days the service starts on, YYYY-MM-DD, both included); ``flagged`` (an overlap
    of recorded times, or escalated to the station)."""
    within = region_or_none(region)
    qs = care_selectors.orders_for(
        caller(request),
        status=status or "",
        category=category,
        region=within,
        starts_from=starts_from,
        starts_until=starts_until,
        flagged=flagged,
    )
    rows, next_cursor = page(qs, cursor, limit, _order_out)
    return {"orders": rows, "next_cursor": next_cursor}


@api.get("/care/orders/open", response=OrdersOut, tags=["care"])
def orders_open(request: HttpRequest, cursor: str | None = None, limit: int = 50) -> dict[str, Any]:
    """Requests near the calling volunteer that they may take: their own community first, then the
    neighbouring ones, soonest first within each. At most 200 are considered; the cursor is a position in
    this list, which is worked out again on each page (a request taken meanwhile shifts the rest by one)."""
    member = caller_member(request)
    if not member.is_volunteer:
        raise PermissionDenied(_("Only registered volunteers take requests."), code="care_not_volunteer")
    rows, next_cursor = position_page(care_selectors.orders_open_for(member), cursor, limit)
    return {"orders": [_order_out(o) for o in rows], "next_cursor": next_cursor}


@api.get("/care/review", response=OrdersOut, tags=["care"])
def review(
    request: HttpRequest,
    community: str = "",
    category: str = "",
    flagged: bool = False,
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Staff: services waiting for review in the caller's regions — confirmed ones, and completed ones
    escalated because nobody confirmed them. Newest first. Filters: ``community`` (code), ``category``
    (code), ``flagged`` (overlapping times: approve those one by one)."""
    user = staff_with(request, Perm.CARE_REVIEW, ONLY_STAFF)
    qs = care_selectors.review_queue(user, community=community, category=category, flagged=flagged)
    rows, next_cursor = page(qs, cursor, limit, _order_out)
    return {"orders": rows, "next_cursor": next_cursor}


@api.get("/care/disputes", response=DisputesOut, tags=["care"])
def disputes(request: HttpRequest, cursor: str | None = None, limit: int = 50) -> dict[str, Any]:
    """Staff: open complaints about services of the caller's regions, newest first."""
    user = staff_with(request, Perm.CARE_REVIEW, ONLY_STAFF)
    rows, next_cursor = page(care_selectors.disputes_open(user), cursor, limit, _dispute_out)
    return {"disputes": rows, "next_cursor": next_cursor}


@api.get("/care/disputes/{dispute_id}", response=DisputeOut, tags=["care"])
def dispute_detail(request: HttpRequest, dispute_id: Id) -> dict[str, Any]:
    """Staff: one complaint, open or resolved; another region's is reported as not found."""
    return _dispute_out(care_selectors.dispute_get(caller(request), dispute_id))


@api.get("/care/catalogue", response=CatalogueOut, tags=["care"])
def catalogue(request: HttpRequest, region: str = "", day: dt.date | None = None) -> dict[str, Any]:
    """The service categories of the policy in force in ``region`` (a code; by default the caller's own
    community) on ``day`` (YYYY-MM-DD; by default today): tier, coefficient, what an hour credits and the
    certification each needs. One policy's categories: a short list, not paged."""
    if region:
        where = region_get(region)
    else:
        member = caller(request).member
        if member is None:
            raise ValidationFailed.field("region", _("Give a region code."), code="api_region_required")
        where = member.home_region
    found = care_selectors.catalogue(where, on=day)
    policy = found.policy
    return {
        "region": found.region.code,
        "day": found.day,
        "policy": (
            {
                "id": policy.pk,
                "name": policy.name,
                "version": policy.version,
                "region": policy.region.code,
                "effective_from": policy.effective_from,
            }
            if policy is not None
            else None
        ),
        "categories": [
            {
                "code": c.code,
                "name": c.name,
                "name_en": c.name_en,
                "tier": c.tier,
                "coefficient_permille": c.coefficient_permille,
                "hour_credits_minutes": weighted(60, c.coefficient_permille),
                "requires_certification": c.requires_certification or None,
            }
            for c in found.categories
        ],
    }


# --- one service --------------------------------------------------------------------------------------------


@api.post("/care/orders", response={201: OrdersCreatedOut}, tags=["care"])
@idempotent(required=False)
def order_create(request: HttpRequest, payload: OrderIn) -> Status[Any]:
    """Ask for care: the elder, a relative with a verified bond, or station staff for an elder without a
    phone. Paid from the elder's own savings (``own``), a relative's (``family``, with ``payer_id``), the
    mutual-aid pool or the public fund (verified priority elders). With ``repeat_weeks`` > 1 the same visit
    is posted weekly: the answer always lists every service posted, in order."""
    scope_check(request, "write")
    place = None
    if payload.place:
        place = Region.objects.filter(code=payload.place).first()
        if place is None:
            raise ValidationFailed.field(
                "place", _("There is no region with this code."), code="region_not_found"
            )
    elder = _member(payload.elder_id, "elder_id")
    assert elder is not None
    with _fields_as({"elder": "elder_id", "payer": "payer_id"}):
        created = care_services.order_create(
            actor=caller(request),
            elder=elder,
            category=payload.category,
            window_start=payload.window_start,
            window_end=payload.window_end,
            funding=payload.funding,
            payer=_member(payload.payer_id, "payer_id"),
            address=payload.address,
            notes=payload.notes,
            place=place,
            repeat_weeks=payload.repeat_weeks,
        )
    return Status(201, {"orders": [order_detail_out(o) for o in created]})


@api.get("/care/orders/{order_id}", response=OrderDetailOut, tags=["care"])
def order_detail(request: HttpRequest, order_id: Id) -> dict[str, Any]:
    """One service, with its address: for its elder and their verified family, its volunteer, whoever pays
    and staff of its community. Anyone else is told it does not exist."""
    return order_detail_out(_order(request, order_id))


@api.post("/care/orders/{order_id}/accept", response=OrderDetailOut, tags=["care"])
@idempotent(required=False)
def order_accept(request: HttpRequest, order_id: Id) -> dict[str, Any]:
    """A volunteer takes an open request (their own or a neighbouring community's); the planned cost is held
    on whoever pays."""
    scope_check(request, "write")
    order = ServiceOrder.objects.filter(pk=order_id).first()
    if order is None:
        raise NotFound(code="care_order_not_found")
    return order_detail_out(care_services.order_accept(actor=caller(request), order=order))


@api.post("/care/orders/{order_id}/assign", response=OrderDetailOut, tags=["care"])
@idempotent(required=False)
def order_assign(request: HttpRequest, order_id: Id, payload: AssignIn) -> dict[str, Any]:
    """Staff assign a volunteer of their regions who meets the rules (not only a neighbour)."""
    scope_check(request, "write")
    order = _order(request, order_id)
    volunteer = _member(payload.volunteer_id, "volunteer_id")
    assert volunteer is not None
    with _fields_as({"volunteer": "volunteer_id"}):
        assigned = care_services.order_assign(actor=caller(request), order=order, volunteer=volunteer)
    return order_detail_out(assigned)


@api.post("/care/orders/{order_id}/withdraw", response=OrderDetailOut, tags=["care"])
@idempotent(required=False)
def order_withdraw(request: HttpRequest, order_id: Id, payload: ReasonIn) -> dict[str, Any]:
    """The volunteer (or staff) gives an assigned service back, saying why: it is open again and the hold is
    released."""
    scope_check(request, "write")
    order = _order(request, order_id)
    return order_detail_out(
        care_services.order_withdraw(actor=caller(request), order=order, reason=payload.reason)
    )


@api.post("/care/orders/{order_id}/cancel", response=OrderDetailOut, tags=["care"])
@idempotent(required=False)
def order_cancel(request: HttpRequest, order_id: Id, payload: ReasonIn) -> dict[str, Any]:
    """The elder's side or staff cancel an open or assigned service, saying why (one in progress: staff
    only); the hold is released."""
    scope_check(request, "write")
    order = _order(request, order_id)
    return order_detail_out(
        care_services.order_cancel(actor=caller(request), order=order, reason=payload.reason)
    )


@api.post("/care/orders/{order_id}/no-show", response=OrderDetailOut, tags=["care"])
@idempotent(required=False)
def order_no_show(request: HttpRequest, order_id: Id, payload: NoShowIn) -> dict[str, Any]:
    """The elder's side or staff record that the volunteer did not come (once the service has begun)."""
    scope_check(request, "write")
    order = _order(request, order_id)
    return order_detail_out(
        care_services.order_no_show(actor=caller(request), order=order, note=payload.note)
    )


@api.post("/care/orders/{order_id}/check-in", response=OrderDetailOut, tags=["care"])
@idempotent(required=False)
def order_check_in(request: HttpRequest, order_id: Id, payload: CheckIn) -> dict[str, Any]:
    """The assigned volunteer arrives (from an hour before the start), in the app or by scanning the
    elder's service card (``token``)."""
    scope_check(request, "write")
    order = _order(request, order_id)
    return order_detail_out(
        care_services.order_check_in(actor=caller(request), order=order, token=payload.token)
    )


@api.post("/care/orders/{order_id}/check-out", response=OrderDetailOut, tags=["care"])
@idempotent(required=False)
def order_check_out(request: HttpRequest, order_id: Id, payload: CheckIn) -> dict[str, Any]:
    """The volunteer leaves: the service time is fixed (rounded as the policy says) and the elder is asked to
    confirm it."""
    scope_check(request, "write")
    order = _order(request, order_id)
    return order_detail_out(
        care_services.order_check_out(actor=caller(request), order=order, token=payload.token)
    )


@api.post("/care/orders/{order_id}/times", response=OrderDetailOut, tags=["care"])
@idempotent(required=False)
def order_times(request: HttpRequest, order_id: Id, payload: TimesIn) -> dict[str, Any]:
    """Staff enter the times of an assigned service from the paper card (travel time left out); an overlap
    with the volunteer's other services is flagged."""
    scope_check(request, "write")
    order = _order(request, order_id)
    return order_detail_out(
        care_services.order_times_record(
            actor=caller(request),
            order=order,
            started_at=payload.started_at,
            ended_at=payload.ended_at,
            travel_minutes=payload.travel_minutes,
            card_ref=payload.card_ref,
        )
    )


@api.post("/care/orders/{order_id}/confirm", response=OrderDetailOut, tags=["care"])
@idempotent(required=False)
def order_confirm(request: HttpRequest, order_id: Id, payload: ConfirmIn) -> dict[str, Any]:
    """The elder's side confirms a completed service: the elder's PIN or a one-time code of their service
    card typed on the volunteer's phone, the elder on their own device, a verified relative, or staff who
    phoned the elder. Too many wrong codes lock confirmation for a while (429 ``care_confirm_locked``)."""
    scope_check(request, "write")
    order = _order(request, order_id)
    return order_detail_out(
        care_services.order_confirm(
            actor=caller(request),
            order=order,
            method=payload.method,
            secret=payload.pin if payload.method == "pin" else payload.code,
            note=payload.note,
        )
    )


@api.post("/care/orders/{order_id}/approve", response=OrderDetailOut, tags=["care"])
@idempotent()
def order_approve(request: HttpRequest, order_id: Id) -> dict[str, Any]:
    """Staff approve a confirmed service and the volunteer is credited (minutes × the coefficient in force
    on the day of the service). Requires an Idempotency-Key: a retry replays the first answer."""
    scope_check(request, "write")
    order = _order(request, order_id)
    return order_detail_out(care_services.order_approve(actor=caller(request), order=order))


@api.post("/care/orders/{order_id}/reject", response=OrderDetailOut, tags=["care"])
@idempotent(required=False)
def order_reject(request: HttpRequest, order_id: Id, payload: ReasonIn) -> dict[str, Any]:
    """Staff refuse a completed or confirmed service, saying why: nothing is credited, holds are released."""
    scope_check(request, "write")
    order = _order(request, order_id)
    return order_detail_out(
        care_services.order_reject(actor=caller(request), order=order, reason=payload.reason)
    )


@api.post("/care/orders/{order_id}/rate", response={201: RatingOut}, tags=["care"])
@idempotent(required=False)
def order_rate(request: HttpRequest, order_id: Id, payload: RateIn) -> Status[Any]:
    """The elder's side or the volunteer rate a done service once, 1 to 5 stars."""
    scope_check(request, "write")
    order = _order(request, order_id)
    rating = care_services.order_rate(
        actor=caller(request), order=order, stars=payload.stars, comment=payload.comment
    )
    return Status(201, _rating_out(rating))


@api.post("/care/orders/{order_id}/dispute", response={201: DisputeOut}, tags=["care"])
@idempotent(required=False)
def order_dispute(request: HttpRequest, order_id: Id, payload: ReasonIn) -> Status[Any]:
    """A complaint about a done service (credited or not) by the elder's side, the volunteer or staff; the
    service waits for staff to resolve it."""
    scope_check(request, "write")
    order = _order(request, order_id)
    dispute = care_services.order_dispute(actor=caller(request), order=order, reason=payload.reason)
    return Status(201, _dispute_out(dispute))


# --- review and complaints ----------------------------------------------------------------------------------


@api.post("/care/review/approve", response=BatchOut, tags=["care"])
@idempotent()
def review_approve(request: HttpRequest, payload: BatchIn) -> dict[str, Any]:
    """Staff approve several services of their review queue; each is credited or refused on its own (one
    elder short of savings does not hold up the rest; a flagged service is approved on its own). A service
    not in the caller's queue is refused as ``care_not_in_review_queue``. Requires an Idempotency-Key."""
    scope_check(request, "write")
    user = staff_with(request, Perm.CARE_REVIEW, ONLY_STAFF)
    wanted = list(dict.fromkeys(payload.order_ids))
    queued = care_selectors.review_queue(user).in_bulk(wanted)
    result = care_services.orders_approve(actor=user, orders=[queued[pk] for pk in wanted if pk in queued])
    refused = [
        {"order_id": order.pk, "code": exc.code, "message": str(exc.message), "fields": exc.fields}
        for order, exc in result.failed
    ]
    refused += [
        {
            "order_id": pk,
            "code": "care_not_in_review_queue",
            "message": _("This service is not waiting for your review."),
            "fields": {},
        }
        for pk in wanted
        if pk not in queued
    ]
    return {"approved": [order_detail_out(o) for o in result.approved], "failed": refused}


@api.post("/care/disputes/{dispute_id}/resolve", response=DisputeOut, tags=["care"])
@idempotent()
def dispute_resolve(request: HttpRequest, dispute_id: Id, payload: ResolveIn) -> dict[str, Any]:
    """Staff decide a complaint: the record ``stands``; the time is ``corrected`` (a credited service is
    reversed and credited again with ``corrected_minutes``); or the service is ``void`` (a credit is
    reversed). Requires an Idempotency-Key: a retry replays the first answer."""
    scope_check(request, "write")
    user = caller(request)
    dispute = care_selectors.dispute_get(user, dispute_id)
    resolved = care_services.dispute_resolve(
        actor=user,
        dispute=dispute,
        outcome=payload.outcome,
        resolution=payload.resolution,
        corrected_minutes=payload.corrected_minutes,
    )
    return _dispute_out(resolved)


# --- certifications -----------------------------------------------------------------------------------------


@api.get("/care/members/{member_id}/certifications", response=CertificationsOut, tags=["care"])
def certifications(
    request: HttpRequest, member_id: Id, cursor: str | None = None, limit: int = 50
) -> dict[str, Any]:
    """A volunteer's live certifications (care worker, counsellor …), for themselves and staff of their
    community."""
    member = member_get(caller(request), member_id)
    rows, next_cursor = page(care_selectors.certifications_of(member), cursor, limit, _certification_out)
    return {"certifications": rows, "next_cursor": next_cursor}


@api.post("/care/members/{member_id}/certifications", response={201: CertificationOut}, tags=["care"])
@idempotent(required=False)
def certification_grant(request: HttpRequest, member_id: Id, payload: CertificationIn) -> Status[Any]:
    """Staff record a certification they checked against the certificate (a live one of the same code is
    replaced)."""
    scope_check(request, "write")
    user = caller(request)
    member = member_get(user, member_id)
    granted = care_services.certification_grant(
        actor=user, member=member, code=payload.code, valid_until=payload.valid_until
    )
    return Status(201, _certification_out(granted))


@api.post(
    "/care/members/{member_id}/certifications/{certification_id}/revoke",
    response=CertificationOut,
    tags=["care"],
)
@idempotent(required=False)
def certification_revoke(request: HttpRequest, member_id: Id, certification_id: Id) -> dict[str, Any]:
    """Staff revoke a live certification."""
    scope_check(request, "write")
    user = caller(request)
    member = member_get(user, member_id)
    found = care_selectors.certifications_of(member).filter(pk=certification_id).first()
    if found is None:
        raise NotFound(code="care_certification_not_found")
    return _certification_out(care_services.certification_revoke(actor=user, certification=found))


# --- the station's console ----------------------------------------------------------------------------------


@api.post("/care/paper-records", response={201: OrderDetailOut}, tags=["care"])
@idempotent()
def paper_record(request: HttpRequest, payload: PaperRecordIn) -> Status[Any]:
    """Staff enter a service given earlier and signed on the elder's paper card. It goes straight to the
    review queue, confirmed by the signature and marked as a paper record; its cost is held on whoever pays;
    an overlap with the volunteer's other services is flagged. Nobody enters a service they took part in,
    and the same visit is not entered twice. Requires an Idempotency-Key: a retry replays the first answer."""
    scope_check(request, "write")
    user = staff_with(request, Perm.CARE_MANAGE, ONLY_STAFF)
    elder = _member(payload.elder_id, "elder_id")
    volunteer = _member(payload.volunteer_id, "volunteer_id")
    assert elder is not None and volunteer is not None
    with _fields_as({"elder": "elder_id", "volunteer": "volunteer_id", "payer": "payer_id"}):
        order = care_services.paper_record_create(
            actor=user,
            elder=elder,
            volunteer=volunteer,
            category=payload.category,
            started_at=payload.started_at,
            ended_at=payload.ended_at,
            funding=payload.funding,
            payer=_member(payload.payer_id, "payer_id"),
            travel_minutes=payload.travel_minutes,
            card_ref=payload.card_ref,
            notes=payload.notes,
        )
    return Status(201, order_detail_out(order))


@api.get("/care/dispatch", response=DispatchOut, tags=["care"])
def dispatch(request: HttpRequest, cursor: str | None = None, limit: int = 20) -> dict[str, Any]:
    """Staff: the dispatch board. Open requests of the caller's regions that are still ahead, soonest first,
    each with up to five volunteers who could take it: those the rules allow and who are free then, from the
    service's own community first, then the neighbouring ones, then the rest of the caller's regions; within
    each, whoever was credited least this month first. Assign one with ``POST
    /care/orders/{order_id}/assign``. The cursor is a position in this list, worked out again on each page (a
    request assigned meanwhile shifts the rest by one)."""
    user = staff_with(request, Perm.CARE_MANAGE, ONLY_STAFF)
    if limit > 50:  # each row weighs up its volunteers (a few queries a row)
        raise ValidationFailed.field("limit", _("1 to 50 on this board."), code="api_bad_limit")
    orders, next_cursor = position_page(care_selectors.orders_to_dispatch(user), cursor, limit)
    return {
        "requests": [
            {
                "order": _order_out(order),
                "suggestions": [
                    _suggestion_out(s) for s in care_selectors.volunteers_for(order, user, limit=5)
                ],
            }
            for order in orders
        ],
        "next_cursor": next_cursor,
    }


@api.get("/care/budgets", response=FundBudgetsOut, tags=["care"])
def budgets(request: HttpRequest, cursor: str | None = None, limit: int = 50) -> dict[str, Any]:
    """Staff: the public service fund's budgets, in minutes per jurisdiction and year, of the caller's regions
    and of those above them that pay for their elders (a station sees its district's): the budget, what is
    committed (reserved for booked services or already credited) and what remains. Newest first."""
    user = staff_with(request, Perm.CARE_VIEW, ONLY_STAFF)
    rows, next_cursor = page(care_selectors.budgets_visible(user), cursor, limit, _budget_out)
    return {"budgets": rows, "next_cursor": next_cursor}


@api.put("/care/budgets", response=FundBudgetOut, tags=["care"])
@idempotent(required=False)
def budget_set(request: HttpRequest, payload: FundBudgetIn) -> dict[str, Any]:
    """Operators set the public fund's budget of a jurisdiction of theirs for a year: created, or changed,
    but never below what is already committed. Every setting is audit-logged with the old and new budget."""
    scope_check(request, "write")
    user = staff_with(request, Perm.FUNDS_MANAGE)
    region = region_field(payload.region)
    budget = care_services.fund_budget_set(
        actor=user, region=region, year=payload.year, limit_minutes=payload.limit_minutes
    )
    return _budget_out(budget)


@api.post("/care/members/{member_id}/card", response={201: ServiceCardIssuedOut}, tags=["care"])
def card_issue(request: HttpRequest, response: HttpResponse, member_id: Id) -> Status[Any]:
    """Staff of the elder's community who do not volunteer for her issue a new service card; her previous
    card stops working at once. The answer holds what the card prints — the QR token and the 20 one-time
    codes — shown this once and kept out of every cache (``GET …/card.pdf`` prints them again, logged). No
    Idempotency-Key is kept for this request, since its answer is a secret: a retry issues another card."""
    scope_check(request, "write")
    user, member = _staff_member(request, member_id)
    card = care_services.service_card_issue(actor=user, elder=member)
    token = cards.card_token(card.serial)
    no_store(response)
    return Status(
        201,
        {
            "member_id": member.pk,
            "serial": card.serial,
            "issued_at": card.issued_at,
            "token": token,
            "url": _card_url(request, token),
            "codes": [{"number": n, "code": code} for n, code in cards.card_codes(card.serial)],
        },
    )


@api.get(
    "/care/members/{member_id}/card.pdf",
    response={200: None},
    tags=["care"],
    openapi_extra={
        "responses": {
            200: {
                "description": "The card: two A6 pages, front and back.",
                "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def card_pdf(request: HttpRequest, member_id: Id) -> HttpResponse:
    """The elder's service card as a PDF to print on both sides of one sheet (front: her name, community,
    station phone and the QR code; back: the 20 one-time codes), for staff of her community who do not
    volunteer for her. Every download is audit-logged as a printing, and kept out of every cache."""
    user, member = _staff_member(request, member_id)
    printed = care_services.service_card_print_pdf(
        actor=user, elder=member, card_url=lambda token: _card_url(request, token)
    )
    response = HttpResponse(printed.pdf, content_type="application/pdf")
    response["Content-Disposition"] = f"inline; filename={printed.filename}"
    no_store(response)
    return response


@api.post("/care/members/{member_id}/pin", response=ElderPinOut, tags=["care"])
def elder_pin(request: HttpRequest, member_id: Id, payload: ElderPinIn) -> dict[str, Any]:
    """Set the PIN an elder types on a volunteer's phone to confirm a service: the elder herself, or staff of
    her community who do not volunteer for her. A new PIN also lifts a lock after wrong codes. Audit-logged
    (never the PIN itself). No Idempotency-Key is kept for this request, since its body is the PIN (a retry
    sets the same PIN again)."""
    scope_check(request, "write")
    user = (
        caller(request)
        if caller(request).member_id == member_id
        else staff_with(request, Perm.CARE_MANAGE, ONLY_STAFF)
    )
    member = member_get(user, member_id)
    care_services.elder_pin_set(actor=user, elder=member, pin=payload.pin)
    return {"member_id": member.pk, "has_pin": care_selectors.elder_has_pin(member)}
