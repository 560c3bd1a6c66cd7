"""Writes of the sensing package: registering and revoking devices and gateways (by staff of the wearer's or
the station's region, audited), and the retention job. Ingesting events is ``ingest.events_ingest``.

Every change to a device or gateway bumps the registry version in the same transaction (``registry``), so
that every ingesting process sees it with its next batch.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from timebank.api.models import ApiToken, TokenKind
from timebank.api.services import token_create
from timebank.audit.services import audit_record
from timebank.common.errors import Conflict, ValidationFailed
from timebank.people.access import Perm, access_check, access_member_check
from timebank.people.crypto import encrypt_text
from timebank.people.models import Member, User
from timebank.regions.models import Region
from timebank.sensing import partitions
from timebank.sensing.conf import sensing_setting
from timebank.sensing.models import DeadLetter, Device, DeviceKind, Event, Gateway, IngestBatch, KeyType
from timebank.sensing.registry import registry_bump
from timebank.sensing.signing import IDENTIFIER

GATEWAY_TOKEN_DAYS = 366


@dataclass(frozen=True)
class RegisteredDevice:
    device: Device
    secret: str | None  # the HMAC secret in hex, shown this once; None for an Ed25519 device


@dataclass(frozen=True)
class IssuedGateway:
    gateway: Gateway
    token: str  # the bearer token (also the MQTT frame key), shown this once


def _identifier_check(identifier: str) -> str:
    identifier = (identifier or "").strip()
    if not IDENTIFIER.match(identifier):
        raise ValidationFailed.field(
            "identifier",
            _("1 to 64 letters, digits, dots, dashes or underscores."),
            code="sensing_bad_identifier",
        )
    return identifier


def device_register(
    *,
    actor: User,
    member: Member,
    identifier: str,
    kind: str,
    key_type: str = KeyType.HMAC,
    public_key: str = "",
    model: str = "",
    firmware: str = "",
) -> RegisteredDevice:
    """Register a device worn by ``member`` (staff of the member's community). An HMAC device gets a new
    random secret, returned this once and kept encrypted; an Ed25519 device brings its public key (hex)."""
    access_member_check(actor, member, Perm.PEOPLE_MANAGE)
    identifier = _identifier_check(identifier)
    if kind not in DeviceKind.values:
        raise ValidationFailed.field(
            "kind", _("A wristband, a beacon or a phone."), code="sensing_bad_device_kind"
        )
    if len(model) > 60 or len(firmware) > 40:
        raise ValidationFailed.field(
            "model", _("Model up to 60 characters, firmware up to 40."), code="sensing_bad_model"
        )
    secret: str | None = None
    cipher = ""
    if key_type == KeyType.HMAC:
        secret = secrets.token_hex(32)
        cipher = encrypt_text(secret)
        public_key = ""
    elif key_type == KeyType.ED25519:
        public_key = (public_key or "").strip().lower()
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key))
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ValidationFailed.field(
                "public_key", _("An Ed25519 public key: 64 hex digits."), code="sensing_bad_public_key"
            ) from exc
        # a new device starts its sequence afresh: the events an old one signed with this key would replay
        if Device.objects.filter(public_key=public_key).exists():
            raise ValidationFailed.field(
                "public_key",
                _("This public key was already registered for a device; give the device a new key pair."),
                code="sensing_key_reused",
            )
    else:
        raise ValidationFailed.field("key_type", _("hmac or ed25519."), code="sensing_bad_key_type")
    try:
        with transaction.atomic():
            device = Device.objects.create(
                identifier=identifier,
                kind=kind,
                member=member,
                model=model.strip(),
                firmware=firmware.strip(),
                key_type=key_type,
                secret_cipher=cipher,
                public_key=public_key,
                registered_by=actor,
                version=registry_bump(),
            )
            audit_record(
                actor=actor,
                event_type="sensing.device.registered",
                subject=member,
                region=member.home_region,
                new={"device": device.pk, "identifier": identifier, "kind": kind, "key_type": key_type},
            )
    except IntegrityError as exc:
        raise Conflict(
            _("A live device already has the identifier %(identifier)s.") % {"identifier": identifier},
            code="sensing_device_exists",
        ) from exc
    return RegisteredDevice(device=device, secret=secret)


def device_revoke(*, actor: User, device: Device) -> Device:
    """Revoke a device at once: its events are refused from the next batch on. Revoking twice changes
    nothing."""
    member = device.member
    access_member_check(actor, member, Perm.PEOPLE_MANAGE)
    with transaction.atomic():
        changed = Device.objects.filter(pk=device.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=actor, version=registry_bump()
        )
        if changed:
            audit_record(
                actor=actor,
                event_type="sensing.device.revoked",
                subject=member,
                region=member.home_region,
                old={"device": device.pk, "identifier": device.identifier},
            )
    device.refresh_from_db()
    return device


def gateway_create(
    *,
    actor: User,
    identifier: str,
    name: str,
    region: Region | None = None,
    member: Member | None = None,
    days: int = GATEWAY_TOKEN_DAYS,
) -> IssuedGateway:
    """A station's hub (``region``: it forwards for devices of members living in that subtree) or a member's
    phone app (``member``: for that member's devices and their verified family's). It signs in as its own
    user with a device token (write scope), returned this once; the same token keys its MQTT frames."""
    if (region is None) == (member is None):
        raise ValidationFailed.field(
            "region",
            _("A gateway serves either a region (a station) or a member (a phone)."),
            code="sensing_gateway_scope",
        )
    if region is not None:
        access_check(actor, Perm.PEOPLE_MANAGE, region)
    else:
        assert member is not None
        access_member_check(actor, member, Perm.PEOPLE_MANAGE)
    identifier = _identifier_check(identifier)
    name = (name or "").strip()
    if not name or len(name) > 60:
        raise ValidationFailed.field("name", _("A name of 1 to 60 characters."), code="sensing_bad_name")
    try:
        with transaction.atomic():
            user = User.objects.create(
                username=f"gateway-{identifier}", password=make_password(None), first_name=name[:150]
            )
            gateway = Gateway.objects.create(
                identifier=identifier,
                name=name,
                region=region,
                member=member,
                user=user,
                created_by=actor,
                version=0,
            )
            token = _token_issue(actor, gateway, days)
            audit_record(
                actor=actor,
                event_type="sensing.gateway.created",
                subject=gateway,
                region=_gateway_region(gateway),
                new={"identifier": identifier, "name": name, "region": region, "member": member},
            )
    except IntegrityError as exc:
        raise Conflict(
            _("A gateway %(identifier)s already exists.") % {"identifier": identifier},
            code="sensing_gateway_exists",
        ) from exc
    return IssuedGateway(gateway=gateway, token=token)


def _token_issue(actor: User, gateway: Gateway, days: int) -> str:
    issued = token_create(
        actor=actor,
        user=gateway.user,
        name=f"gateway {gateway.identifier}"[:60],
        scopes=["write"],
        days=days,
        kind=TokenKind.DEVICE,
    )
    gateway.token = issued.token
    gateway.token_cipher = encrypt_text(issued.secret)
    gateway.version = registry_bump()
    gateway.save(update_fields=["token", "token_cipher", "version"])
    return issued.secret


def gateway_token_rotate(*, actor: User, gateway: Gateway, days: int = GATEWAY_TOKEN_DAYS) -> IssuedGateway:
    """A new token for the gateway; the old one stops working at once."""
    _gateway_check(actor, gateway)
    if gateway.revoked_at is not None:
        raise Conflict(_("This gateway is revoked."), code="sensing_gateway_revoked")
    with transaction.atomic():
        old = gateway.token_id
        token = _token_issue(actor, gateway, days)
        # the old token and any a leaked one minted meanwhile: only the new one is left alive
        assert gateway.token_id is not None  # set by _token_issue
        ApiToken.objects.filter(user_id=gateway.user_id, revoked_at__isnull=True).exclude(
            pk=gateway.token_id
        ).update(revoked_at=timezone.now())
        audit_record(
            actor=actor,
            event_type="sensing.gateway.token_rotated",
            subject=gateway,
            region=_gateway_region(gateway),
            old={"token": old},
            new={"token": gateway.token_id},
        )
    return IssuedGateway(gateway=gateway, token=token)


def gateway_revoke(*, actor: User, gateway: Gateway) -> Gateway:
    """Revoke a gateway: its token and its sign-in stop working at once, over HTTP and MQTT alike."""
    _gateway_check(actor, gateway)
    with transaction.atomic():
        now = timezone.now()
        changed = Gateway.objects.filter(pk=gateway.pk, revoked_at__isnull=True).update(
            revoked_at=now, version=registry_bump()
        )
        if changed:
            ApiToken.objects.filter(user_id=gateway.user_id, revoked_at__isnull=True).update(revoked_at=now)
            User.objects.filter(pk=gateway.user_id).update(is_active=False)
            audit_record(
                actor=actor,
                event_type="sensing.gateway.revoked",
                subject=gateway,
                region=_gateway_region(gateway),
                old={"identifier": gateway.identifier},
            )
    gateway.refresh_from_db()
    return gateway


def _gateway_region(gateway: Gateway) -> Region:
    if gateway.region is not None:
        return gateway.region
    assert gateway.member is not None
    return gateway.member.home_region


def _gateway_check(actor: User, gateway: Gateway) -> None:
    access_check(actor, Perm.PEOPLE_MANAGE, _gateway_region(gateway))


@dataclass(frozen=True)
class PruneReport:
    cutoff: dt.datetime
    partitions_dropped: list[str]
    partitions_created: list[str]
    events_deleted: int
    dead_letters_deleted: int
    batches_deleted: int


def events_prune(*, days: int | None = None, now: dt.datetime | None = None) -> PruneReport:
    """Retention and upkeep: forget raw events, dead letters and batch counters older than ``days`` (default
    ``SENSING_RETENTION_DAYS``) — whole partitions dropped on PostgreSQL, rows deleted elsewhere — and create
    the partitions of the coming days."""
    days = sensing_setting("SENSING_RETENTION_DAYS") if days is None else days
    if days < 1:
        raise ValidationFailed.field("days", _("At least one day."), code="sensing_bad_retention")
    now = now or timezone.now()
    today = int(now.timestamp() * 1000) // partitions.DAY_MS
    cutoff_day = today - days
    cutoff = dt.datetime.fromtimestamp(cutoff_day * partitions.DAY_MS / 1000, dt.UTC)
    dropped = partitions.partitions_drop_before(cutoff_day)
    deleted = 0
    if not _is_postgres():
        deleted, _detail = Event.objects.filter(observed_at__lt=cutoff).delete()
    letters, _detail = DeadLetter.objects.filter(received_at__lt=cutoff).delete()
    batches, _detail = IngestBatch.objects.filter(received_at__lt=cutoff).delete()
    created = partitions.partitions_ensure(
        range(today, today + sensing_setting("SENSING_PARTITION_DAYS_AHEAD") + 1)
    )
    return PruneReport(cutoff, dropped, created, deleted, letters, batches)


def _is_postgres() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"
