"""The in-memory registry ingestion checks events against: every device's key, wearer and home region, and
every gateway's scope and frame key.

Loaded whole once per process, then kept fresh cheaply: each batch reads the registry's version (one row)
and, when it moved, loads only the devices and gateways changed since (``version`` greater than the one held).
A revocation therefore takes effect with the very next batch in every process. The counter also carries a
random ``generation``, new whenever the row is created, so that a database emptied and refilled (tests,
restores) is never mistaken for the one loaded before. What changes outside this package (a member's home
region, family bonds) is picked up by a whole reload every ``SENSING_REGISTRY_RELOAD_SECONDS``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import connection
from django.db.models import Q

from timebank.people.crypto import decrypt_text
from timebank.people.models import BondStatus, FamilyBond
from timebank.sensing import signing
from timebank.sensing.conf import sensing_setting
from timebank.sensing.models import Device, Gateway, KeyType, RegistryVersion


@dataclass(slots=True)
class DeviceEntry:
    id: int
    identifier: str
    member_id: int
    region_path: str
    hmac_key: bytes | None
    ed25519_key: Ed25519PublicKey | None
    revoked: bool
    id_text: str = ""  # the id as COPY writes it, formatted once


@dataclass(slots=True)
class GatewayEntry:
    id: int
    identifier: str
    region_path: str | None  # a station hub: devices of members living in this subtree
    members: frozenset[int] | None  # a phone: its owner's devices and those of their verified family
    token_id: int | None
    frame_key: bytes | None
    revoked: bool
    id_text: str = ""
    # whether each device (by id) may be forwarded by this gateway, decided once per device
    allowed: dict[int, bool] = field(default_factory=dict)

    def may_forward(self, device: DeviceEntry) -> bool:
        ok = self.allowed.get(device.id)
        if ok is None:
            if self.region_path is not None:
                ok = device.region_path.startswith(self.region_path)
            else:
                ok = self.members is not None and device.member_id in self.members
            self.allowed[device.id] = ok
        return ok


@dataclass
class Snapshot:
    """What one batch checks against; never changed once published (a refresh publishes a new one)."""

    version: int = -1
    generation: str = ""
    devices: dict[str, DeviceEntry] = field(default_factory=dict)  # by identifier: the live one, else last
    device_by_id: dict[int, DeviceEntry] = field(default_factory=dict)
    gateways: dict[int, GatewayEntry] = field(default_factory=dict)
    gateway_by_identifier: dict[str, GatewayEntry] = field(default_factory=dict)
    loaded_at: float = 0.0


class Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot = Snapshot()

    def reset(self) -> None:
        with self._lock:
            self._snapshot = Snapshot()

    def current(self) -> Snapshot:
        """The registry as of now: one query when nothing changed."""
        snap = self._snapshot
        version, generation = _read_version()
        stale = time.monotonic() - snap.loaded_at > sensing_setting("SENSING_REGISTRY_RELOAD_SECONDS")
        if version == snap.version and generation == snap.generation and not stale:
            return snap
        with self._lock:
            snap = self._snapshot
            if generation != snap.generation or stale or version < snap.version:
                snap = _load(Snapshot(generation=generation), since=None)
            elif version != snap.version:
                snap = _load(snap, since=snap.version)
            snap.version = version
            self._snapshot = snap
            return snap


def _read_version() -> tuple[int, str]:
    row = RegistryVersion.objects.filter(pk=1).values_list("version", "generation").first()
    return (row[0], row[1]) if row else (0, "")


def _load(base: Snapshot, since: int | None) -> Snapshot:
    """A new snapshot: ``base`` with the rows changed after version ``since`` (all rows when None)."""
    snap = Snapshot(
        version=base.version,
        generation=base.generation,
        devices=dict(base.devices),
        device_by_id=dict(base.device_by_id),
        gateways=dict(base.gateways),
        gateway_by_identifier=dict(base.gateway_by_identifier),
        loaded_at=base.loaded_at if since is not None else time.monotonic(),
    )
    devices = Device.objects.order_by("id").values_list(
        "id",
        "identifier",
        "member_id",
        "member__home_region__path",
        "key_type",
        "secret_cipher",
        "public_key",
        "revoked_at",
    )
    gateways = Gateway.objects.values_list(
        "id", "identifier", "region__path", "member_id", "token_id", "token_cipher", "revoked_at"
    )
    if since is not None:
        devices = devices.filter(version__gt=since)
        gateways = gateways.filter(version__gt=since)
    for pk, ident, member_id, path, key_type, cipher, public, revoked_at in devices.iterator(chunk_size=5000):
        entry = DeviceEntry(
            id=pk,
            identifier=ident,
            member_id=member_id,
            region_path=path,
            hmac_key=bytes.fromhex(decrypt_text(cipher)) if key_type == KeyType.HMAC else None,
            ed25519_key=(
                Ed25519PublicKey.from_public_bytes(bytes.fromhex(public))
                if key_type == KeyType.ED25519
                else None
            ),
            revoked=revoked_at is not None,
            id_text=str(pk),
        )
        snap.device_by_id[pk] = entry
        held = snap.devices.get(ident)
        # the live device holds its identifier; a revoked one only while no live one took it over
        if held is None or held.id == pk or held.revoked:
            snap.devices[ident] = entry
    families = _families({row[3] for row in gateways if row[3] is not None})
    for pk, ident, region_path, member_id, token_id, token_cipher, revoked_at in gateways:
        gateway = GatewayEntry(
            id=pk,
            identifier=ident,
            region_path=region_path,
            members=families[member_id] if member_id is not None else None,
            token_id=token_id,
            frame_key=signing.frame_key(decrypt_text(token_cipher)) if token_cipher else None,
            revoked=revoked_at is not None,
            id_text=str(pk),
        )
        snap.gateways[pk] = gateway
        snap.gateway_by_identifier[ident] = gateway
    if since is not None:
        # a device changed: the gateways' decisions about it must be taken again
        for gateway in snap.gateways.values():
            gateway.allowed = {}
    return snap


def _families(member_ids: set[int]) -> dict[int, frozenset[int]]:
    """Each phone owner with their verified family, in one query for all the phone gateways."""
    families: dict[int, set[int]] = {member_id: {member_id} for member_id in member_ids}
    if member_ids:
        bonds = FamilyBond.objects.filter(status=BondStatus.VERIFIED).filter(
            Q(member_id__in=member_ids) | Q(relative_id__in=member_ids)
        )
        for a, b in bonds.values_list("member_id", "relative_id"):
            for owner in (a, b):
                if owner in families:
                    families[owner].update((a, b))
    return {member_id: frozenset(members) for member_id, members in families.items()}


def registry_bump() -> int:
    """The next registry version, inside the caller's transaction: the row stays locked until it commits, so
    versions become visible in order."""
    table = RegistryVersion._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (id, version, generation) VALUES (1, 1, %s) "  # noqa: S608 (our table)
            f"ON CONFLICT (id) DO UPDATE SET version = {table}.version + 1 RETURNING version",
            [_new_generation()],
        )
        row = cursor.fetchone()
    assert row is not None
    return int(row[0])


def _new_generation() -> str:
    import secrets

    return secrets.token_hex(8)


registry = Registry()
