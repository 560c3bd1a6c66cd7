"""Smart timing: gateways post batches of signed proximity events; staff register, list and revoke the devices
members wear. The wire format is described in ``timebank.sensing.ingest``."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Schema, Status
from pydantic import Field

from timebank.api.common import Id, Strict, caller, page
from timebank.api.main import api, caller_token, error, scope_check
from timebank.api.models import TokenKind
from timebank.people.selectors import member_get
from timebank.sensing import ingest, selectors, services
from timebank.sensing.models import Channel, Device

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
