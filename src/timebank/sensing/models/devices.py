"""Devices, gateways, raw events, dead letters and the ingestion log.

- A ``Device`` (wristband, beacon, phone) is worn by one member for life and signs its own events, with an
  HMAC secret (kept encrypted, like ID numbers) or an Ed25519 key pair (only the public half is kept).
  Re-registering the same hardware after revocation makes a new device with a new key.
- A ``Gateway`` (a station hub or a member's phone app) forwards events for many devices. It signs in as its
  own user with a device-kind ``ApiToken``; the token, kept encrypted too, is also the key of its MQTT frames.
- ``RegistryVersion`` is one counter, bumped by every change to a device or gateway in the same transaction;
  each changed row records the value. Ingestion reads the counter once per batch and reloads only the rows
  changed since, so a revocation is refused by the very next batch.
- ``Event`` rows are written by COPY on PostgreSQL into a table range-partitioned by day of ``observed_at``
  (see migration 0001), without foreign-key constraints (devices and gateways are never deleted, only
  revoked; a constraint would cost a lookup per row).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Q
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _

from timebank.people.models import Member
from timebank.regions.models import Region

__all__ = [
    "Channel",
    "DeadLetter",
    "Device",
    "DeviceKind",
    "Event",
    "Gateway",
    "IngestBatch",
    "IntListField",
    "KeyType",
    "RegistryVersion",
]

IDENTIFIER_RE = r"^[A-Za-z0-9._-]{1,64}$"


class DeviceKind(models.TextChoices):
    WRISTBAND = "wristband", _("Wristband")
    BEACON = "beacon", _("Beacon")
    PHONE = "phone", _("Phone")


class KeyType(models.TextChoices):
    HMAC = "hmac", _("HMAC-SHA256 secret")
    ED25519 = "ed25519", _("Ed25519 key pair")


class Channel(models.TextChoices):
    HTTP = "http", "HTTP"
    MQTT = "mqtt", "MQTT"
    DIRECT = "direct", _("direct (simulator, import)")


class IntListField(models.Field):  # type: ignore[type-arg]
    """A list of integers: an array (``bigint[]`` or ``smallint[]``) on PostgreSQL — what COPY writes and
    ``unnest`` reads — and comma-separated text elsewhere."""

    def __init__(self, *args: Any, small: bool = False, **kwargs: Any) -> None:
        self.small = small
        kwargs.setdefault("default", list)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if self.small:
            kwargs["small"] = True
        if kwargs.get("default") is list:
            del kwargs["default"]
        return name, path, args, kwargs

    def db_type(self, connection: BaseDatabaseWrapper) -> str:
        if connection.vendor == "postgresql":
            return "smallint[]" if self.small else "bigint[]"
        return "text"

    def from_db_value(self, value: Any, expression: Any, connection: BaseDatabaseWrapper) -> list[int]:
        if value is None:
            return []
        if isinstance(value, str):
            return [int(v) for v in value.split(",")] if value else []
        return list(value)

    def to_python(self, value: Any) -> list[int]:
        if isinstance(value, str):
            return [int(v) for v in value.split(",")] if value else []
        return list(value or [])

    def get_db_prep_value(self, value: Any, connection: BaseDatabaseWrapper, prepared: bool = False) -> Any:
        values = [int(v) for v in value or []]
        if connection.vendor == "postgresql":
            return values
        return ",".join(map(str, values))


class RegistryVersion(models.Model):
    """One row (id 1): the version of the device and gateway registry, and a random generation that is new
    whenever the row is created (see ``registry``)."""

    version = models.BigIntegerField(default=0)
    generation = models.CharField(max_length=16, default="")

    def __str__(self) -> str:
        return str(self.version)


class Device(models.Model):
    identifier = models.CharField(
        _("identifier"), max_length=64, help_text=_("what the device's events carry, e.g. wb-00017")
    )
    kind = models.CharField(_("kind"), max_length=10, choices=DeviceKind.choices)
    member = models.ForeignKey(Member, models.PROTECT, related_name="devices", verbose_name=_("worn by"))
    model = models.CharField(_("model"), max_length=60, blank=True)
    firmware = models.CharField(_("firmware"), max_length=40, blank=True)
    key_type = models.CharField(_("key type"), max_length=8, choices=KeyType.choices)
    secret_cipher = models.TextField(blank=True, editable=False)  # HMAC secret (hex), Fernet-encrypted
    public_key = models.CharField(_("public key"), max_length=64, blank=True)  # Ed25519, hex
    last_seq = models.BigIntegerField(_("last sequence number"), default=-1, editable=False)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True, editable=False)
    battery_percent = models.PositiveSmallIntegerField(_("battery (%)"), null=True, blank=True)
    battery_at = models.DateTimeField(_("battery reported"), null=True, blank=True)
    registered_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="+")
    registered_at = models.DateTimeField(_("registered"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+"
    )
    version = models.BigIntegerField(default=0, editable=False)  # the registry version of its last change

    class Meta:
        verbose_name = _("device")
        verbose_name_plural = _("devices")
        constraints = [
            # one live device per identifier; a revoked one's identifier may be registered again
            models.UniqueConstraint(
                fields=["identifier"], condition=Q(revoked_at__isnull=True), name="sensing_device_live_ident"
            ),
            models.CheckConstraint(
                condition=Q(identifier__regex=IDENTIFIER_RE), name="sensing_device_identifier_chars"
            ),
            models.CheckConstraint(
                condition=(Q(key_type="hmac") & ~Q(secret_cipher=""))
                | (Q(key_type="ed25519") & ~Q(public_key="")),
                name="sensing_device_has_key",
            ),
        ]
        indexes = [models.Index(fields=["version"], name="sensing_device_version")]

    def __str__(self) -> str:
        return self.identifier

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Gateway(models.Model):
    """A station hub (``region``: forwards for devices of members living in that subtree) or a member's
    phone app (``member``: forwards for that member's devices and those of their verified family)."""

    identifier = models.CharField(_("identifier"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=60)
    region = models.ForeignKey(
        Region, models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("station region")
    )
    member = models.ForeignKey(
        Member, models.PROTECT, null=True, blank=True, related_name="gateways", verbose_name=_("phone owner")
    )
    user = models.OneToOneField(settings.AUTH_USER_MODEL, models.PROTECT, related_name="sensing_gateway")
    token = models.ForeignKey("api.ApiToken", models.PROTECT, null=True, blank=True, related_name="+")
    token_cipher = models.TextField(blank=True, editable=False)  # the bearer token, Fernet-encrypted
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    version = models.BigIntegerField(default=0, editable=False)

    class Meta:
        verbose_name = _("gateway")
        verbose_name_plural = _("gateways")
        constraints = [
            models.CheckConstraint(
                condition=Q(region__isnull=True) ^ Q(member__isnull=True), name="sensing_gateway_one_scope"
            ),
            models.CheckConstraint(
                condition=Q(identifier__regex=IDENTIFIER_RE), name="sensing_gateway_identifier_chars"
            ),
        ]

    def __str__(self) -> str:
        return self.identifier


class Event(models.Model):
    """One signed event as received. ``peer_devices``/``peer_rssi``: the registered, unrevoked devices it saw
    and their signal strength (dBm), in the order sent; peers that are not registered devices are dropped."""

    id = models.BigAutoField(primary_key=True)
    device = models.ForeignKey(
        Device, models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    seq = models.BigIntegerField()
    observed_at = models.DateTimeField()
    received_at = models.DateTimeField(db_default=Now())  # the ingesting transaction's start
    gateway = models.ForeignKey(
        Gateway, models.DO_NOTHING, db_constraint=False, db_index=False, null=True, related_name="+"
    )
    peer_devices = IntListField()
    peer_rssi = IntListField(small=True)

    class Meta:
        verbose_name = _("sensor event")
        verbose_name_plural = _("sensor events")

    def __str__(self) -> str:
        return f"{self.device_id}#{self.seq}"


class DeadLetter(models.Model):
    """A payload that could not be read as an event (or a batch), kept with the reason for investigation."""

    received_at = models.DateTimeField(db_index=True)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    gateway = models.ForeignKey(Gateway, models.SET_NULL, null=True, blank=True, related_name="+")
    source = models.CharField(max_length=100, blank=True)  # the topic or gateway identifier as claimed
    reason = models.CharField(max_length=40)
    detail = models.CharField(max_length=200, blank=True)
    payload = models.TextField(blank=True)  # an excerpt

    class Meta:
        verbose_name = _("dead letter")
        verbose_name_plural = _("dead letters")

    def __str__(self) -> str:
        return f"{self.received_at:%Y-%m-%d %H:%M:%S} {self.reason}"


class IngestBatch(models.Model):
    """One ingested batch and what became of its events: the counters (summed by gateway and day by
    ``selectors.ingest_counts``). Append-only, one row per batch, so concurrent batches never contend."""

    received_at = models.DateTimeField(db_index=True)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    gateway = models.ForeignKey(Gateway, models.SET_NULL, null=True, blank=True, related_name="+")
    accepted = models.PositiveIntegerField(default=0)
    rejected = models.JSONField(default=dict)  # {reason: count}
    dead_lettered = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("ingested batch")
        verbose_name_plural = _("ingested batches")

    def __str__(self) -> str:
        return f"{self.received_at:%Y-%m-%d %H:%M:%S} +{self.accepted}"
