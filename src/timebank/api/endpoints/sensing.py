"""Smart timing: gateways post batches of signed proximity events; staff register, list and revoke the devices
members wear; the elder or station staff record unplanned help the sensors measured as a service, or dismiss
it; anyone who may open a service sees the time the sensors measured for it. The wire format is described in
``timebank.sensing.ingest``."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Schema, Status
from pydantic import Field

from timebank.api.common import Id, Strict, caller, page
from timebank.api.endpoints.care import OrderDetailOut, order_detail_out
from timebank.api.main import api, caller_token, error, idempotent, scope_check
from timebank.api.models import TokenKind
from timebank.care import selectors as care_selectors
from timebank.care.models import Funding
from timebank.common.errors import ApplicationError, ValidationFailed
from timebank.people.models import Member
from timebank.people.selectors import member_get
from timebank.regions.selectors import region_get
from timebank.sensing import ingest, presence, presence_selectors, selectors, services
from timebank.sensing.models import Channel, Device, PresenceSession

EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["device", "seq", "ts", "peers", "sig"],
    "additionalProperties": False,
    "properties": {
        "device": {
            "type": "string",
            "pattern": "^[A-Za-z0-9._-]{1,64}$",
            "description": "the signing device",
        },
        "seq": {
            "type": "integer",
            "minimum": 0,
            "maximum": 2**63 - 1,
            "description": "the device's sequence number: greater than any it sent before",
        },
        "ts": {"type": "integer", "minimum": 0, "description": "when it observed: ms since the epoch, UTC"},
        "peers": {
            "type": "array",
            "maxItems": 64,
            "description": "the devices it saw: [identifier, RSSI in dBm]",
            "items": {
                "type": "array",
                "minItems": 2,
                "maxItems": 2,
                "prefixItems": [
                    {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
                    {"type": "integer", "minimum": -127, "maximum": 20},
                ],
            },
        },
        "battery": {"type": "integer", "minimum": 0, "maximum": 100, "description": "battery, percent"},
        "sig": {
            "type": "string",
            "description": "lowercase hex HMAC-SHA256 (or Ed25519 signature) of "
            "`device|seq|ts|battery|peer:rssi,peer:rssi` under the device's key (battery empty when absent)",
        },
    },
}
BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["gateway", "events"],
    "properties": {
        "gateway": {"type": "string", "description": "the identifier of the gateway whose token is used"},
        "events": {"type": "array", "maxItems": 10_000, "items": EVENT_SCHEMA},
    },
}


class IngestOut(Schema):
    accepted: int = Field(description="events stored")
    rejected: dict[str, int] = Field(
        description="events refused, by reason: unknown_device, revoked_device, not_allowed, clock_skew, "
        "bad_signature, replay"
    )
    dead_lettered: int = Field(description="malformed events, kept with the reason for investigation")


@api.post(
    "/sensing/events",
    response=IngestOut,
    tags=["sensing"],
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": BATCH_SCHEMA}}}
    },
)
def events_post(request: HttpRequest) -> Any:
    """A gateway forwards a batch of signed events (up to 10,000) with its device token (write scope). Each
    event is accepted or refused on its own — the answer counts both — and a batch is stored all or nothing.
    Malformed events are kept as dead letters; a body that cannot be read at all is a 422 (kept too).
    Sending the same batch again is harmless: its events are refused as replays."""
    scope_check(request, "write")
    token = caller_token(request)
    gateway = selectors.gateway_of_token(token.pk) if token is not None else None
    if token is None or token.kind != TokenKind.DEVICE or gateway is None:
        return error(403, "sensing_not_a_gateway", _("Only a gateway's device token may post events."))
    try:
        result = ingest.body_ingest(
            gateway_id=gateway.pk,
            gateway_identifier=gateway.identifier,
            body=request.body,
            channel=Channel.HTTP,
        )
    except OperationalError:  # a lock or statement timeout: nothing was stored, the batch may be sent again
        response = error(503, "sensing_busy", _("Busy: nothing was stored. Send the batch again shortly."))
        response["Retry-After"] = "1"
        return response
    return result.as_dict()


# --- devices ------------------------------------------------------------------------------------------------


class DeviceOut(Schema):
    id: int
    identifier: str
    kind: str
    member_id: int
    model: str
    firmware: str
    key_type: str
    public_key: str
    last_seq: int
    last_seen_at: dt.datetime | None
    battery_percent: int | None
    battery_at: dt.datetime | None
    registered_at: dt.datetime
    revoked_at: dt.datetime | None


class RegisteredOut(DeviceOut):
    secret: str | None = Field(description="the HMAC secret (hex), shown this once; none for Ed25519")


class DevicesOut(Schema):
    devices: list[DeviceOut]
    next_cursor: str | None


class DeviceIn(Strict):
    member_id: Id
    identifier: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    kind: Literal["wristband", "beacon", "phone"]
    key_type: Literal["hmac", "ed25519"] = "hmac"
    public_key: str = Field("", max_length=64, description="Ed25519 public key, hex (for key_type ed25519)")
    model: str = Field("", max_length=60)
    firmware: str = Field("", max_length=40)


def _device_out(device: Device) -> dict[str, Any]:
    return {
        "id": device.pk,
        "identifier": device.identifier,
        "kind": device.kind,
        "member_id": device.member_id,
        "model": device.model,
        "firmware": device.firmware,
        "key_type": device.key_type,
        "public_key": device.public_key,
        "last_seq": device.last_seq,
        "last_seen_at": device.last_seen_at,
        "battery_percent": device.battery_percent,
        "battery_at": device.battery_at,
        "registered_at": device.registered_at,
        "revoked_at": device.revoked_at,
    }


@api.get("/sensing/devices", response=DevicesOut, tags=["sensing"])
def devices(
    request: HttpRequest,
    member_id: Id | None = None,
    live: bool | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Devices worn by members I may see (staff: of my regions; a member: my own), newest first."""
    qs = selectors.devices_visible(caller(request), member_id=member_id, live=live)
    rows, next_cursor = page(qs, cursor, limit, _device_out)
    return {"devices": rows, "next_cursor": next_cursor}


@api.post("/sensing/devices", response={201: RegisteredOut}, tags=["sensing"])
def device_register(request: HttpRequest, payload: DeviceIn) -> Status[Any]:
    """Register a device a member of my regions wears (staff). An HMAC device's secret is in the answer, this
    once; an Ed25519 device brings its public key."""
    scope_check(request, "write")
    actor = caller(request)
    registered = services.device_register(
        actor=actor,
        member=member_get(actor, payload.member_id),
        identifier=payload.identifier,
        kind=payload.kind,
        key_type=payload.key_type,
        public_key=payload.public_key,
        model=payload.model,
        firmware=payload.firmware,
    )
    return Status(201, {**_device_out(registered.device), "secret": registered.secret})


@api.post("/sensing/devices/{device_id}/revoke", response=DeviceOut, tags=["sensing"])
def device_revoke(request: HttpRequest, device_id: Id) -> HttpResponse | dict[str, Any]:
    """Revoke a device at once (staff of the wearer's region): its events are refused from the next batch."""
    scope_check(request, "write")
    actor = caller(request)
    return _device_out(services.device_revoke(actor=actor, device=selectors.device_get(actor, device_id)))


# --- unplanned help -----------------------------------------------------------------------------------------


class CandidateOut(Schema):
    id: int
    number: str
    status: str = Field(description="pending (waiting for a decision), recorded (as a service) or dismissed")
    community: str = Field(description="the elder's community when the visit began: whose staff see it")
    elder_id: int
    elder_name: str
    volunteer_id: int
    volunteer_name: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    measured_minutes: int = Field(description="how long the sensors saw them together")
    order_id: int | None = Field(description="the service it was recorded as")
    decided_by_id: int | None
    decided_at: dt.datetime | None
    reason: str = Field(description="why it was dismissed")


class CandidatesOut(Schema):
    candidates: list[CandidateOut]
    next_cursor: str | None


class CandidateRecordedOut(Schema):
    candidate: CandidateOut
    order: OrderDetailOut


class CandidateRecordIn(Strict):
    category: str = Field(max_length=40, description="a category code of the catalogue in force that day")
    funding: Funding
    payer_id: Id | None = Field(None, description="the paying relative, for family")
    notes: str = Field("", max_length=400)


class CandidateDismissIn(Strict):
    reason: str = Field(
        "", max_length=2000, description="why it was not help (required, at most 300 characters)"
    )


def _candidate_out(session: PresenceSession) -> dict[str, Any]:
    return {
        "id": session.pk,
        "number": session.number,
        "status": session.candidate,
        "community": session.region.code,
        "elder_id": session.elder_id,
        "elder_name": session.elder.name,
        "volunteer_id": session.volunteer_id,
        "volunteer_name": session.volunteer.name,
        "started_at": session.started_at,
        "ended_at": session.ended_at,
        "measured_minutes": session.measured_minutes,
        "order_id": session.order_id,
        "decided_by_id": session.decided_by_id,
        "decided_at": session.decided_at,
        "reason": session.dismiss_reason,
    }


@api.get("/sensing/candidates", response=CandidatesOut, tags=["sensing"])
def candidates(
    request: HttpRequest,
    status: Literal["pending", "recorded", "dismissed"] | None = None,
    region: str = "",
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Unplanned help: visits the sensors measured with no service planned, which the elder or station staff
    record as a service or dismiss. The caller's: staff see those of their regions, an elder her own. Newest
    first. Filters: ``status``; ``region`` (code: that region and everything under it)."""
    within = region_get(region) if region else None
    qs = presence_selectors.candidates_for(caller(request), state=status or "", region=within)
    rows, next_cursor = page(qs, cursor, limit, _candidate_out)
    return {"candidates": rows, "next_cursor": next_cursor}


@api.get("/sensing/candidates/{candidate_id}", response=CandidateOut, tags=["sensing"])
def candidate_detail(request: HttpRequest, candidate_id: Id) -> dict[str, Any]:
    """One candidate in any state, for its elder and staff of her community; anyone else is told it does not
    exist."""
    return _candidate_out(presence_selectors.candidate_get(caller(request), candidate_id))


@api.post("/sensing/candidates/{candidate_id}/record", response={201: CandidateRecordedOut}, tags=["sensing"])
@idempotent()
def candidate_record(request: HttpRequest, candidate_id: Id, payload: CandidateRecordIn) -> Status[Any]:
    """Record a pending candidate as a service with the times the sensors measured, under the care rules for
    a service recorded afterwards: the elder herself (it is confirmed by her) or station staff of her
    community who took no part (she then confirms it). Either way a reviewer approves it; what it costs is
    held on whoever pays. Requires an Idempotency-Key: a retry replays the first answer."""
    scope_check(request, "write")
    actor = caller(request)
    session = presence_selectors.candidate_get(actor, candidate_id)
    payer = None
    if payload.payer_id is not None:
        payer = Member.objects.filter(pk=payload.payer_id).first()
        if payer is None:
            raise ValidationFailed.field("payer_id", _("No member has this number."), code="member_not_found")
    try:
        order = presence.candidate_record(
            actor=actor,
            session=session,
            category=payload.category,
            funding=payload.funding,
            payer=payer,
            notes=payload.notes,
        )
    except ApplicationError as exc:
        exc.fields = {"payer_id" if name == "payer" else name: why for name, why in exc.fields.items()}
        raise
    recorded = presence_selectors.candidate_get(actor, candidate_id)
    return Status(201, {"candidate": _candidate_out(recorded), "order": order_detail_out(order)})


@api.post("/sensing/candidates/{candidate_id}/dismiss", response=CandidateOut, tags=["sensing"])
@idempotent(required=False)
def candidate_dismiss(request: HttpRequest, candidate_id: Id, payload: CandidateDismissIn) -> dict[str, Any]:
    """Dismiss a pending candidate (a neighbour's chat, a passing visit), saying why: the elder herself or
    station staff of her community who took no part."""
    scope_check(request, "write")
    actor = caller(request)
    session = presence_selectors.candidate_get(actor, candidate_id)
    return _candidate_out(presence.candidate_dismiss(actor=actor, session=session, reason=payload.reason))


# --- measured time of a service -----------------------------------------------------------------------------


class PresenceSessionOut(Schema):
    id: int
    number: str
    status: str = Field(description="open (still together), closed, or blip (too short to count)")
    started_at: dt.datetime
    last_seen_at: dt.datetime
    ended_at: dt.datetime | None
    measured_minutes: int
    volunteer_sightings: int = Field(description="times the volunteer's devices saw the elder's")
    elder_sightings: int = Field(description="times the elder's devices saw the volunteer's")


class OrderSessionsOut(Schema):
    order_id: int
    measured_minutes: int | None = Field(
        description="the time the sensors measured within what the service claims; none without a volunteer"
    )
    claimed_minutes: int | None = Field(
        description="check-in to check-out less travel; none until checked out"
    )
    difference_minutes: int | None = Field(description="measured minus claimed")
    tolerance_minutes: int | None = Field(description="of the policy in force on the service's day")
    agrees: bool = Field(description="sessions were measured and agree with the claim within the tolerance")
    sessions: list[PresenceSessionOut] = Field(description="the sessions that measured it, oldest first")


@api.get("/care/orders/{order_id}/sessions", response=OrderSessionsOut, tags=["sensing"])
def order_sessions(request: HttpRequest, order_id: Id) -> dict[str, Any]:
    """The time the proximity sensors measured for a service, next to what it claims, and the co-presence
    sessions that measured it: for whoever may open the service. A few sessions: not paged."""
    order = care_selectors.order_get(caller(request), order_id)
    measured, sessions = presence_selectors.order_measured_sessions(order)
    return {
        "order_id": order.pk,
        "measured_minutes": measured.minutes if measured is not None else None,
        "claimed_minutes": measured.claimed_minutes if measured is not None else None,
        "difference_minutes": measured.difference if measured is not None else None,
        "tolerance_minutes": measured.tolerance_minutes if measured is not None else None,
        "agrees": measured.agrees() if measured is not None else False,
        "sessions": [
            {
                "id": s.pk,
                "number": s.number,
                "status": s.status,
                "started_at": s.started_at,
                "last_seen_at": s.last_seen_at,
                "ended_at": s.ended_at,
                "measured_minutes": s.measured_minutes,
                "volunteer_sightings": s.volunteer_sightings,
                "elder_sightings": s.elder_sightings,
            }
            for s in sessions
        ],
    }
