"""Ingestion of signed proximity events: the one function HTTP, the MQTT bridge and the simulator call.

Wire format
-----------
A batch (the body of ``POST /api/v1/sensing/events``, or an MQTT frame after its MAC line) is JSON::

    {"gateway": "st-yandang-1",
     "events": [{"device": "wb-00017", "seq": 42, "ts": 1764900000123,
                 "peers": [["wb-00031", -58], ["bc-00002", -71]], "battery": 87, "sig": "3f9a…"}]}

- ``gateway``: the forwarding gateway's identifier (it must be the one the token or the topic names);
- ``device``: the identifier of the device that observed and signed;
- ``seq``: the device's sequence number, 0 ≤ seq < 2⁶³, increasing with every event it emits;
- ``ts``: when it observed, milliseconds since the epoch (UTC), by its own clock;
- ``peers``: what it saw, ``[identifier, rssi]`` pairs with the RSSI in dBm (−127…20), at most 64;
- ``battery`` (optional): its battery in percent, 0–100;
- ``sig``: the lowercase hex signature of the canonical payload ``device|seq|ts|battery|peer:rssi,…``
  (see ``signing``), by the device's own key: HMAC-SHA256 or Ed25519.

At most ``SENSING_MAX_BATCH_EVENTS`` (10,000) events a batch; an event is about 150–250 bytes of JSON, so a
full batch stays well under the 5 MB request limit.

What is refused
---------------
Each event is accepted or rejected on its own, counted by reason:

- ``malformed``: a field missing or of the wrong type or range — also kept as a dead letter;
- ``unknown_device`` / ``revoked_device``: no such live device (revocation counts from the very next batch);
- ``not_allowed``: a device the gateway may not forward (a station's hub forwards for members living in its
  region's subtree, a phone for its owner and their verified family);
- ``clock_skew``: stamped more than ``SENSING_CLOCK_SKEW_SECONDS`` (300) in the future or more than
  ``SENSING_MAX_DELAY_SECONDS`` (3 days) in the past — late events are fine as long as they are in order;
- ``bad_signature``: the signature does not verify under the device's key;
- ``replay``: ``seq`` not greater than the last accepted one of the device (a repeat, an older event, or a
  duplicate inside the batch). Sequence numbers are checked and advanced under a row lock on the device, so
  two gateways forwarding the same event concurrently accept it once. A gateway sends its batches one after
  another: were a later batch stored first, the earlier one's events would be refused as replays.

A batch that cannot be read at all (not JSON, no event list, too many events, an unknown gateway) is refused
whole and kept as one dead letter.

Storage
-------
A batch is one transaction: its accepted rows (COPY on PostgreSQL, one INSERT of many rows elsewhere), the
devices' new last sequence numbers, battery and last-seen time (one UPDATE), its counters (one
``IngestBatch`` row per gateway) and its dead letters commit together or not at all. Signatures are checked
before the transaction opens, so the device rows stay locked only while the rows are written.

A stored row keeps the peers that are registered, unrevoked devices (others are dropped) as two arrays the
session deriver unnests: ``peer_devices`` (device ids) and ``peer_rssi``; ``received_at`` is the ingesting
transaction's start (the column's default), which the readers' horizon relies on (see ``selectors``).

Speed (bench/sensing_ingest_bench.py): the registry of keys is cached (``registry``); a batch is parsed by
orjson and checked with the cyclic garbage collector paused; each accepted event's COPY line is built while it
is checked; the database sees a handful of statements per batch, whatever its size.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hmac
import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from django.db import connection, transaction
from django.utils.translation import gettext_lazy as _

from timebank.common.errors import PermissionDenied, ValidationFailed
from timebank.sensing import partitions
from timebank.sensing.conf import sensing_setting
from timebank.sensing.models import DeadLetter, IngestBatch
from timebank.sensing.registry import DeviceEntry, GatewayEntry, Snapshot, registry

log = logging.getLogger(__name__)

MALFORMED = "malformed"
UNKNOWN_DEVICE = "unknown_device"
REVOKED_DEVICE = "revoked_device"
NOT_ALLOWED = "not_allowed"
CLOCK_SKEW = "clock_skew"
BAD_SIGNATURE = "bad_signature"
REPLAY = "replay"
REASONS = (MALFORMED, UNKNOWN_DEVICE, REVOKED_DEVICE, NOT_ALLOWED, CLOCK_SKEW, BAD_SIGNATURE, REPLAY)

MAX_PEERS = 64
MAX_SEQ = 2**63
DEAD_LETTERS_PER_BATCH = 100  # more malformed events than this in one batch are counted, not kept
EXCERPT = 1000
# Bounds on the ingesting transaction, which the readers' horizon (SENSING_SETTLE_SECONDS) relies on; and the
# transaction's start, which is every row's received_at.
TRANSACTION_START = (
    "SELECT set_config('statement_timeout', '5s', true), "
    "set_config('idle_in_transaction_session_timeout', '5s', true), now()"
)


class MalformedBatch(ValidationFailed):
    """A batch that cannot be read at all; ``reason`` says why (kept with its dead letter)."""

    code = "sensing_malformed_batch"

    def __init__(self, reason: str, message: Any) -> None:
        super().__init__(message, fields={"body": [message]})
        self.reason = reason


@dataclass
class Part:
    """Events forwarded by one gateway (``None``: written directly, e.g. by the simulator)."""

    gateway: GatewayEntry | None
    events: Sequence[Any]


@dataclass
class IngestResult:
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    dead_lettered: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "rejected": self.rejected, "dead_lettered": self.dead_lettered}


@contextlib.contextmanager
def quiet_gc() -> Iterator[None]:
    """No cyclic garbage collection meanwhile: a batch allocates hundreds of thousands of small lists and
    dicts (none in a cycle), and the collector, woken every 700 of them to walk all that is alive, would take
    more time than the whole ingestion otherwise does."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# --- parsing ------------------------------------------------------------------------------------------------


def batch_parse(body: bytes) -> tuple[str, list[Any]]:
    """The gateway identifier and the events of a batch; ``MalformedBatch`` when it cannot be read."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedBatch("not_json", _("The body is not JSON.")) from exc
    if not isinstance(data, dict):
        raise MalformedBatch("not_a_batch", _("The body is not a batch object."))
    gateway, events = data.get("gateway"), data.get("events")
    if not isinstance(gateway, str) or not isinstance(events, list):
        raise MalformedBatch("not_a_batch", _("A batch has a gateway (text) and events (a list)."))
    limit = sensing_setting("SENSING_MAX_BATCH_EVENTS")
    if len(events) > limit:
        raise MalformedBatch("too_many_events", _("At most %(n)s events in one batch.") % {"n": limit})
    return gateway, events


def storable(text: str) -> str:
    """``text`` as PostgreSQL can store it: text refuses NUL, so it is kept visibly as ``\\u0000``."""
    return text.replace("\x00", "\\u0000")


def dead_letter_build(
    *,
    received_at: dt.datetime,
    channel: str,
    reason: str,
    detail: str,
    payload: bytes | str,
    gateway_id: int | None = None,
    source: str = "",
) -> DeadLetter:
    """An unsaved dead letter whose text every database stores (whatever bytes the payload held)."""
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    return DeadLetter(
        received_at=received_at,
        channel=channel,
        gateway_id=gateway_id,
        source=storable(source)[:100],
        reason=reason[:40],
        detail=storable(str(detail))[:200],
        payload=storable(text[:EXCERPT])[:EXCERPT],
    )


def dead_letter_record(
    *,
    channel: str,
    reason: str,
    detail: str,
    payload: bytes | str,
    gateway_id: int | None = None,
    source: str = "",
) -> None:
    """Keep a payload that could not be read as a batch (its own short transaction)."""
    now = dt.datetime.now(dt.UTC)
    with transaction.atomic():
        dead_letter_build(
            received_at=now,
            channel=channel,
            reason=reason,
            detail=detail,
            payload=payload,
            gateway_id=gateway_id,
            source=source,
        ).save()
        IngestBatch.objects.create(received_at=now, channel=channel, gateway_id=gateway_id, dead_lettered=1)


def snapshot() -> Snapshot:
    """The registry as of now (one query when nothing changed since the last call)."""
    return registry.current()


class GatewayRefused(PermissionDenied):
    code = "sensing_gateway_refused"


def gateway_events_ingest(
    *, gateway_id: int | None, events: Sequence[Any], channel: str, now_ms: int | None = None
) -> IngestResult:
    """Ingest the events one gateway forwarded (``None``: written directly, e.g. by the simulator)."""
    snap = registry.current()
    entry = None
    if gateway_id is not None:
        entry = snap.gateways.get(gateway_id)
        if entry is None or entry.revoked:
            raise GatewayRefused(_("This gateway is unknown or revoked."))
    return events_ingest([Part(entry, events)], channel=channel, now_ms=now_ms, snap=snap)[0]


def body_ingest(*, gateway_id: int, gateway_identifier: str, body: bytes, channel: str) -> IngestResult:
    """Ingest a batch as received (JSON bytes) from the gateway a credential proved. A batch that cannot be
    read, or that names another gateway, is refused whole and kept as a dead letter."""
    try:
        with quiet_gc():
            named, events = batch_parse(body)
    except MalformedBatch as exc:
        dead_letter_record(
            channel=channel,
            reason=exc.reason,
            detail=str(exc.message),
            payload=body,
            gateway_id=gateway_id,
            source=gateway_identifier,
        )
        raise
    if named != gateway_identifier:
        dead_letter_record(
            channel=channel,
            reason="gateway_mismatch",
            detail=named[:200],
            payload=body,
            gateway_id=gateway_id,
            source=gateway_identifier,
        )
        raise GatewayRefused(
            _("The batch names another gateway than the one signed in."), code="sensing_gateway_mismatch"
        )
    return gateway_events_ingest(gateway_id=gateway_id, events=events, channel=channel)


# --- ingestion ----------------------------------------------------------------------------------------------


@dataclass
class Checked:
    """A part's events that passed the checks needing no database, in arrival order, with what was refused.
    ``rows``: (device, seq, ts, COPY line, peer ids text, peer RSSI text, battery) per event."""

    part: Part
    rows: list[tuple[DeviceEntry, int, int, str, str, str, int | None]] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    dead: list[tuple[str, str, Any]] = field(default_factory=list)  # (reason, detail, event)
    # set by events_store (afresh on every attempt, so that a failed transaction can simply be tried again)
    accepted: int = 0
    refused_in_store: Counter[str] = field(default_factory=Counter)

    def refused(self) -> dict[str, int]:
        return dict(self.rejected + self.refused_in_store)

    def result(self) -> IngestResult:
        return IngestResult(accepted=self.accepted, rejected=self.refused(), dead_lettered=len(self.dead))


def events_ingest(
    parts: Sequence[Part], *, channel: str, now_ms: int | None = None, snap: Snapshot | None = None
) -> list[IngestResult]:
    """Check and store the events of ``parts`` in one transaction; what became of each part's events.

    ``now_ms`` replaces the server's clock for the skew check (the simulator replaying history)."""
    with quiet_gc():
        checked = events_check(parts, now_ms=now_ms, snap=snap)
        events_store(checked, channel=channel)
    return [c.result() for c in checked]


def events_check(
    parts: Sequence[Part], *, now_ms: int | None = None, snap: Snapshot | None = None
) -> list[Checked]:
    """The checks that need no database (shape, device, gateway scope, clock, signature): pure CPU, so that a
    caller may run them for the next batch while the previous one is being stored (the MQTT bridge does)."""
    snap = snap or registry.current()
    now = int(time.time() * 1000) if now_ms is None else now_ms
    lo = now - sensing_setting("SENSING_MAX_DELAY_SECONDS") * 1000
    hi = now + sensing_setting("SENSING_CLOCK_SKEW_SECONDS") * 1000
    return [_check(part, snap, lo, hi) for part in parts]


try:  # the one-shot HMAC of OpenSSL, without the Python wrapper's frame (hmac.digest calls it)
    from _hashlib import hmac_digest as _hmac_digest
except ImportError:  # pragma: no cover - a Python without OpenSSL's HMAC
    _hmac_digest = hmac.digest


def _check(part: Part, snap: Snapshot, lo: int, hi: int) -> Checked:
    out = Checked(part)
    rows = out.rows
    rejected = out.rejected
    dead = out.dead
    devices = snap.devices
    gateway = part.gateway
    gateway_text = gateway.id_text if gateway is not None else "\\N"
    may_forward = gateway.may_forward if gateway is not None else None
    allowed = gateway.allowed if gateway is not None else {}
    digest = _hmac_digest
    same = hmac.compare_digest
    ts_text = _ts_text
    for event in part.events:
        try:
            name = event["device"]
            seq = event["seq"]
            ts = event["ts"]
            peers = event["peers"]
            sig = event["sig"]
            battery = event.get("battery")
        except (TypeError, KeyError, AttributeError, IndexError):
            dead.append((MALFORMED, "missing_field", event))
            continue
        if (
            type(seq) is not int
            or type(ts) is not int
            or type(name) is not str
            or type(sig) is not str
            or type(peers) is not list
            or not 0 <= seq < MAX_SEQ
            or not 0 <= ts < MAX_SEQ
            or (battery is not None and (type(battery) is not int or not 0 <= battery <= 100))
        ):
            dead.append((MALFORMED, "field_type", event))
            continue
        if len(peers) > MAX_PEERS:
            dead.append((MALFORMED, "too_many_peers", event))
            continue
        device = devices.get(name)
        if device is None:
            rejected[UNKNOWN_DEVICE] += 1
            continue
        if device.revoked:
            rejected[REVOKED_DEVICE] += 1
            continue
        if may_forward is not None and not (allowed.get(device.id) or may_forward(device)):
            rejected[NOT_ALLOWED] += 1
            continue
        if not lo <= ts <= hi:
            rejected[CLOCK_SKEW] += 1
            continue
        texts = []
        ids = []
        strengths = []
        try:
            for peer, rssi in peers:
                if type(peer) is not str or type(rssi) is not int or not -127 <= rssi <= 20:
                    raise ValueError
                strength = str(rssi)
                texts.append(peer + ":" + strength)
                seen = devices.get(peer)
                if seen is not None and not seen.revoked and seen is not device:
                    ids.append(seen.id_text)
                    strengths.append(strength)
        except (TypeError, ValueError):
            dead.append((MALFORMED, "peers", event))
            continue
        joined = ",".join(texts)
        if texts and (joined.count(":") != len(texts) or joined.count(",") != len(texts) - 1):
            dead.append((MALFORMED, "peer_identifier", event))
            continue
        payload = f"{name}|{seq}|{ts}|{'' if battery is None else battery}|{joined}".encode()
        key = device.hmac_key
        if key is not None:
            try:
                good = same(digest(key, payload, "sha256").hex(), sig)
            except TypeError:  # a non-ASCII signature
                good = False
        else:
            good = _ed25519_ok(device, payload, sig)
        if not good:
            rejected[BAD_SIGNATURE] += 1
            continue
        ids_text = ",".join(ids)
        rssi_text = ",".join(strengths)
        rows.append(
            (
                device,
                seq,
                ts,
                f"{device.id_text}\t{seq}\t{ts_text(ts)}\t{gateway_text}\t{{{ids_text}}}\t{{{rssi_text}}}\n",
                ids_text,
                rssi_text,
                battery,
            )
        )
    return out


def _ed25519_ok(device: DeviceEntry, payload: bytes, sig: str) -> bool:
    if device.ed25519_key is None:
        return False
    try:
        device.ed25519_key.verify(bytes.fromhex(sig), payload)
    except (InvalidSignature, ValueError):
        return False
    return True


def events_store(checked: Sequence[Checked], *, channel: str) -> None:
    """Store what passed ``events_check`` in one transaction: lock the devices, refuse replays, write the
    accepted rows, advance the devices, count. Fills in each ``Checked``'s accepted and rejected counts."""
    candidates = [row for c in checked for row in c.rows]
    device_ids = sorted({row[0].id for row in candidates})
    postgres = connection.vendor == "postgresql"
    if postgres and candidates:
        partitions.partitions_ensure({row[2] // partitions.DAY_MS for row in candidates})
    with transaction.atomic():
        received = dt.datetime.now(dt.UTC)
        if postgres:
            with connection.cursor() as cursor:
                cursor.execute(TRANSACTION_START)
                row = cursor.fetchone()
                assert row is not None
                received = row[2]
        last, revoked = _lock_devices(device_ids, postgres)
        accepted: list[tuple[DeviceEntry, int, int, str, str, str, int | None]] = []
        newest: dict[int, tuple[int, int]] = {}  # device id -> (seq, ts) of its newest event
        batteries: dict[int, tuple[int, int]] = {}  # device id -> (ts, percent) of its newest battery report
        for c in checked:
            kept = 0
            refused = c.refused_in_store = Counter()
            for row in c.rows:
                device_id = row[0].id
                if device_id in revoked:
                    refused[REVOKED_DEVICE] += 1
                    continue
                if device_id not in last:  # deleted behind the registry's back
                    refused[UNKNOWN_DEVICE] += 1
                    continue
                seq = row[1]
                if seq <= last[device_id]:
                    refused[REPLAY] += 1
                    continue
                last[device_id] = seq
                newest[device_id] = (seq, row[2])
                if row[6] is not None:
                    batteries[device_id] = (row[2], row[6])
                accepted.append(row)
                kept += 1
            c.accepted = kept
        if accepted:
            if postgres:
                _copy_rows(accepted)
            else:
                _insert_rows(accepted, checked, received)
            _update_devices(newest, batteries, postgres)
        _record(checked, channel, received)


def _lock_devices(device_ids: list[int], postgres: bool) -> tuple[dict[int, int], set[int]]:
    """Lock the devices (in id order: no deadlock between batches), and read their last sequence numbers and
    whether they were revoked meanwhile."""
    last: dict[int, int] = {}
    revoked: set[int] = set()
    if not device_ids:
        return last, revoked
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute(
                "SELECT id, last_seq, revoked_at IS NOT NULL FROM sensing_device "
                "WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                [device_ids],
            )
            rows = cursor.fetchall()
        else:
            rows = []
            for start in range(0, len(device_ids), 500):
                chunk = device_ids[start : start + 500]
                cursor.execute(
                    "SELECT id, last_seq, revoked_at IS NOT NULL FROM sensing_device "  # noqa: S608
                    f"WHERE id IN ({','.join(['%s'] * len(chunk))})",
                    chunk,
                )
                rows.extend(cursor.fetchall())
    for device_id, last_seq, is_revoked in rows:
        last[device_id] = last_seq
        if is_revoked:
            revoked.add(device_id)
    return last, revoked


_seconds_text: dict[int, str] = {}


def _ts_text(ts: int) -> str:
    """A timestamp as PostgreSQL reads it, from milliseconds since the epoch (formatting each second once)."""
    seconds, ms = divmod(ts, 1000)
    base = _seconds_text.get(seconds)
    if base is None:
        if len(_seconds_text) > 200_000:
            _seconds_text.clear()
        base = _seconds_text[seconds] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))
    return f"{base}.{ms:03d}+00"


COPY_SQL = "COPY sensing_event (device_id, seq, observed_at, gateway_id, peer_devices, peer_rssi) FROM STDIN"


def _copy_rows(rows: list[tuple[DeviceEntry, int, int, str, str, str, int | None]]) -> None:
    """COPY the rows (``received_at`` is the column's default: the transaction's start)."""
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor, under Django's wrapper
        with raw.copy(COPY_SQL) as copy:
            copy.write("".join([row[3] for row in rows]).encode())


def _insert_rows(
    rows: list[tuple[DeviceEntry, int, int, str, str, str, int | None]],
    checked: Sequence[Checked],
    received: dt.datetime,
) -> None:
    gateway_of = {id(row): c.part.gateway.id if c.part.gateway else None for c in checked for row in c.rows}
    adapt = connection.ops.adapt_datetimefield_value
    received_value = adapt(received)
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO sensing_event (device_id, seq, observed_at, received_at, gateway_id, peer_devices, "
            "peer_rssi) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    row[0].id,
                    row[1],
                    adapt(dt.datetime.fromtimestamp(row[2] / 1000, dt.UTC)),
                    received_value,
                    gateway_of[id(row)],
                    row[4],
                    row[5],
                )
                for row in rows
            ],
        )


def _update_devices(
    newest: dict[int, tuple[int, int]], batteries: dict[int, tuple[int, int]], postgres: bool
) -> None:
    ids = list(newest)
    seqs = [newest[i][0] for i in ids]
    with connection.cursor() as cursor:
        if postgres:
            # arrays of integers (milliseconds), which the driver sends far faster than timestamps
            cursor.execute(
                "UPDATE sensing_device AS d SET last_seq = v.seq, "
                "last_seen_at = to_timestamp(v.seen / 1000.0), "
                "battery_percent = COALESCE(b.percent, d.battery_percent), "
                "battery_at = COALESCE(to_timestamp(b.reported / 1000.0), d.battery_at) "
                "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS v(id, seq, seen) "
                "LEFT JOIN unnest(%s::bigint[], %s::smallint[], %s::bigint[]) AS b(id, percent, reported) "
                "ON b.id = v.id WHERE d.id = v.id",
                [
                    ids,
                    seqs,
                    [newest[i][1] for i in ids],
                    list(batteries),
                    [b[1] for b in batteries.values()],
                    [b[0] for b in batteries.values()],
                ],
            )
            return
        seen = [dt.datetime.fromtimestamp(newest[i][1] / 1000, dt.UTC) for i in ids]
        percents = [batteries[i][1] if i in batteries else None for i in ids]
        reported = [
            dt.datetime.fromtimestamp(batteries[i][0] / 1000, dt.UTC) if i in batteries else None for i in ids
        ]
        cursor.executemany(
            "UPDATE sensing_device SET last_seq = %s, last_seen_at = %s, "
            "battery_percent = COALESCE(%s, battery_percent), battery_at = COALESCE(%s, battery_at) "
            "WHERE id = %s",
            [
                (
                    seq,
                    connection.ops.adapt_datetimefield_value(when),
                    pct,
                    connection.ops.adapt_datetimefield_value(rep),
                    i,
                )
                for i, seq, when, pct, rep in zip(ids, seqs, seen, percents, reported, strict=True)
            ],
        )


def _record(checked: Sequence[Checked], channel: str, received: dt.datetime) -> None:
    batches = []
    letters = []
    for c in checked:
        part = c.part
        gateway_id = part.gateway.id if part.gateway is not None else None
        batches.append(
            IngestBatch(
                received_at=received,
                channel=channel,
                gateway_id=gateway_id,
                accepted=c.accepted,
                rejected=c.refused(),
                dead_lettered=len(c.dead),
            )
        )
        for reason, detail, event in c.dead[:DEAD_LETTERS_PER_BATCH]:
            letters.append(
                DeadLetter(
                    received_at=received,
                    channel=channel,
                    gateway_id=gateway_id,
                    source=part.gateway.identifier if part.gateway is not None else "",
                    reason=reason,
                    detail=detail,
                    payload=_excerpt(event),
                )
            )
    IngestBatch.objects.bulk_create(batches)
    if letters:
        DeadLetter.objects.bulk_create(letters)


def _excerpt(event: Any) -> str:
    try:
        return orjson.dumps(event).decode()[:EXCERPT]
    except TypeError:
        return repr(event)[:EXCERPT]


__all__ = [
    "REASONS",
    "Checked",
    "IngestResult",
    "MalformedBatch",
    "Part",
    "batch_parse",
    "body_ingest",
    "events_check",
    "events_ingest",
    "events_store",
    "gateway_events_ingest",
]
