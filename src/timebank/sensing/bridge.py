"""The MQTT bridge (``timebank sensing bridge``): gateways publish batches of signed events to Mosquitto, the
bridge stores them through the same ingestion as ``POST /api/v1/sensing/events``.

- Topic: ``timebank/sensing/<gateway identifier>/events``, QoS 1.
- Frame: ``<hex HMAC-SHA256 of the JSON under the gateway's token>\\n<JSON batch>`` (see ``signing``); the
  JSON batch is the one HTTP takes and must name the topic's gateway. The gateway proves itself with its token
  without putting it on the wire. Frames of an unknown or revoked gateway (or whose token was revoked or
  expired), with a wrong MAC, or unreadable, are kept as dead letters and never stop the bridge.
- Frames are gathered for up to ``--window`` ms (or ``--max-events``) and ingested in one transaction, then
  acknowledged: a frame is acknowledged only once stored (or dead-lettered), and the session is persistent
  (fixed client id, clean_session off), so what arrives while the bridge is down or the database refuses is
  delivered again later. Redelivered events are refused as replays: nothing is stored twice.
- Memory stays flat: frames wait in a bounded queue; when it is full the network thread waits, and the broker
  holds the rest (with QoS 1 it sends at most ``max_inflight_messages`` unacknowledged frames — 20 by default;
  raise it in mosquitto.conf for gateways that send many small frames).
- The client reconnects by itself after losing the broker; SIGTERM or SIGINT stop it after the batch in hand.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import queue
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, TypeVar
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from django.db import DatabaseError, DataError, IntegrityError, close_old_connections, connection, transaction
from paho.mqtt.enums import CallbackAPIVersion

from timebank.api.models import ApiToken
from timebank.sensing import ingest, signing
from timebank.sensing.conf import mqtt_url
from timebank.sensing.models import Channel, DeadLetter, IngestBatch
from timebank.sensing.registry import GatewayEntry, Snapshot

log = logging.getLogger(__name__)
T = TypeVar("T")

PREFIX = "timebank/sensing/"
NOT_TRANSIENT = (DataError, IntegrityError)  # the same frames would be refused again: never retried
SUFFIX = "/events"


class Refused(Exception):
    """The database refused the work for good (its ``__cause__`` says why)."""


@dataclass
class Message:
    topic: str
    payload: bytes
    mid: int
    qos: int


@dataclass
class Prepared:
    messages: list[Message]
    checked: list[ingest.Checked]
    letters: list[DeadLetter]
    now: dt.datetime


@dataclass
class Stats:
    frames: int = 0
    batches: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    dead_lettered: int = 0
    db_failures: int = 0
    db_refusals: int = 0
    connects: int = 0

    def line(self) -> str:
        refused = sum(self.rejected.values())
        return (
            f"frames {self.frames}, batches {self.batches}, accepted {self.accepted}, rejected {refused} "
            f"{dict(self.rejected)}, dead letters {self.dead_lettered}, "
            f"database failures {self.db_failures}, database refusals {self.db_refusals}"
        )


def broker_address(url: str | None = None) -> tuple[str, int]:
    parsed = urlparse(url or mqtt_url())
    return parsed.hostname or "127.0.0.1", parsed.port or 1883


class Bridge:
    def __init__(
        self,
        *,
        url: str | None = None,
        client_id: str = "timebank-sensing-bridge",
        window_ms: int = 100,
        max_events: int = 20_000,
        queue_frames: int = 256,
        prefix: str = PREFIX,
        clean_session: bool = False,
        pipeline: bool = True,
    ) -> None:
        self.host, self.port = broker_address(url)
        self.window = window_ms / 1000
        self.max_events = max_events
        self.prefix = prefix
        self.topic = f"{prefix}+{SUFFIX}"
        self.queue: queue.Queue[Message] = queue.Queue(maxsize=queue_frames)
        # checked batches waiting to be stored (pipeline: the next batch is checked while one is stored)
        self.pipeline = pipeline
        self.prepared: queue.Queue[Prepared | None] = queue.Queue(maxsize=2)
        self.stop_event = threading.Event()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.stats = Stats()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            manual_ack=True,
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    # --- the network thread ---------------------------------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("broker refused the connection: %s", reason)
            return
        self.stats.connects += 1
        client.subscribe(self.topic, qos=1)
        self.connected.set()
        log.info("connected to %s:%s, subscribed to %s", self.host, self.port, self.topic)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        self.subscribed.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if not self.stop_event.is_set():
            log.warning("lost the broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        item = Message(message.topic, bytes(message.payload), message.mid, message.qos)
        while not self.stop_event.is_set():
            try:
                self.queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    # --- the worker (the calling thread) --------------------------------------------------------------------

    def run(self, *, install_signals: bool = True, seconds: float | None = None) -> Stats:
        """Run until stopped (SIGTERM/SIGINT, ``stop()``, or after ``seconds``)."""
        previous = {}
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self._on_signal)
        deadline = None if seconds is None else time.monotonic() + seconds
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        storer = None
        if self.pipeline:
            storer = threading.Thread(target=self._storing, name="bridge-store", daemon=True)
            storer.start()
        last_report = time.monotonic()
        try:
            while not self.stop_event.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                batch = self._gather()
                prepared = self._prepare(batch) if batch else None
                if prepared is not None:
                    if storer is not None:
                        self._hand_over(prepared)
                    else:
                        self._store(prepared)
                if time.monotonic() - last_report >= 60:
                    log.info("bridge: %s", self.stats.line())
                    last_report = time.monotonic()
        finally:
            self.stop_event.set()
            if storer is not None:
                self.prepared.put(None)  # after what is queued: the storer finishes the batches in hand
                storer.join(60)
            self.client.disconnect()
            self.client.loop_stop()
            _drop_connection()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.stats

    def stop(self) -> None:
        self.stop_event.set()

    def _hand_over(self, prepared: Prepared) -> None:
        while True:  # the storer always moves on: it stores, or gives up once the bridge stops
            try:
                self.prepared.put(prepared, timeout=0.5)
                return
            except queue.Full:
                continue

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: stopping after the batch in hand", signum)
        self.stop_event.set()

    def _gather(self) -> list[Message]:
        try:
            first = self.queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        size = len(first.payload)
        until = time.monotonic() + self.window
        # ~200 bytes an event: stop gathering once the batch is likely to hold max_events
        while size < self.max_events * 200:
            left = until - time.monotonic()
            if left <= 0:
                break
            try:
                item = self.queue.get(timeout=left)
            except queue.Empty:
                break
            batch.append(item)
            size += len(item.payload)
        return batch

    def _retrying(self, what: str, work: Callable[[], T]) -> T | None:
        """``work()``, tried again after a database failure (with a growing pause) until it succeeds or the
        bridge stops (None: nothing acknowledged, the broker delivers the frames again). A refusal that trying
        again cannot cure (bad data, a broken constraint) raises ``Refused`` at once instead."""
        delay = 0.5
        while True:
            try:
                _fresh_connection()
                return work()
            except NOT_TRANSIENT as exc:
                self.stats.db_refusals += 1
                log.exception("%s refused by the database", what)
                raise Refused from exc
            except DatabaseError:
                self.stats.db_failures += 1
                log.exception("%s failed; trying again in %.1f s", what, delay)
                _drop_connection()
                if self.stop_event.wait(delay):
                    return None
                delay = min(delay * 2, 30)

    def _refused(self, messages: list[Message], error: BaseException | None) -> None:
        """Frames the database refuses even one at a time: kept as dead letters (if it takes those), then
        acknowledged, so that one bad frame never holds up the frames behind it."""
        now = dt.datetime.now(dt.UTC)
        letters = [
            ingest.dead_letter_build(
                received_at=now,
                channel=Channel.MQTT,
                source=message.topic,
                reason="database_refused",
                detail=repr(error),
                payload=message.payload[: ingest.EXCERPT],
            )
            for message in messages
        ]
        try:
            _fresh_connection()
            with transaction.atomic():
                DeadLetter.objects.bulk_create(letters)
                IngestBatch.objects.bulk_create(
                    [IngestBatch(received_at=now, channel=Channel.MQTT, dead_lettered=1) for _ in letters]
                )
        except DatabaseError:
            log.exception("keeping %s refused frames as dead letters failed; dropping them", len(messages))
        self._acknowledge(messages)
        self.stats.dead_lettered += len(messages)
        self.stats.frames += len(messages)

    def _acknowledge(self, messages: list[Message]) -> None:
        for message in messages:
            if message.qos > 0:
                self.client.ack(message.mid, message.qos)

    def _prepare(self, batch: list[Message]) -> Prepared | None:
        """Read the frames and check their events: what needs the CPU, not the database (but the registry's
        version and the gateways' tokens, one query each)."""

        def work() -> Prepared:
            with ingest.quiet_gc():
                snap = ingest.snapshot()
                parts: list[ingest.Part] = []
                letters: list[DeadLetter] = []
                now = dt.datetime.now(dt.UTC)
                live_tokens = self._live_tokens(snap, batch)
                for message in batch:
                    part = self._frame(message, snap, live_tokens, letters, now)
                    if part is not None:
                        parts.append(part)
                return Prepared(batch, ingest.events_check(parts, snap=snap), letters, now)

        try:
            return self._retrying(f"reading {len(batch)} frames", work)
        except Refused as exc:
            self._refused(batch, exc.__cause__)
            return None

    def _store(self, prepared: Prepared) -> None:
        """Store a prepared batch in one transaction, then acknowledge its frames, in order."""

        def work() -> bool:
            with ingest.quiet_gc(), transaction.atomic():
                if prepared.letters:
                    DeadLetter.objects.bulk_create(prepared.letters)
                    IngestBatch.objects.bulk_create(
                        [
                            IngestBatch(
                                received_at=prepared.now,
                                channel=Channel.MQTT,
                                gateway_id=letter.gateway_id,
                                dead_lettered=1,
                            )
                            for letter in prepared.letters
                        ]
                    )
                if prepared.checked:
                    ingest.events_store(prepared.checked, channel=Channel.MQTT)
            return True

        try:
            if not self._retrying(f"storing {len(prepared.messages)} frames", work):
                return
        except Refused as exc:
            if len(prepared.messages) == 1:
                self._refused(prepared.messages, exc.__cause__)
                return
            for message in prepared.messages:  # find the frame the database refuses: store them one by one
                alone = self._prepare([message])
                if alone is not None:
                    self._store(alone)
            return
        self._acknowledge(prepared.messages)
        stats = self.stats
        stats.dead_lettered += len(prepared.letters)
        for checked in prepared.checked:
            result = checked.result()
            stats.accepted += result.accepted
            stats.rejected.update(result.rejected)
            stats.dead_lettered += result.dead_lettered
        stats.frames += len(prepared.messages)
        stats.batches += 1

    def _storing(self) -> None:
        """The second stage of the pipeline: store what the worker prepared, in order, until told to stop."""
        try:
            while True:
                prepared = self.prepared.get()
                if prepared is None:
                    return
                try:
                    self._store(prepared)
                except Exception:  # a bug, not the database: the frames stay unacknowledged; carry on
                    log.exception("storing %s frames failed", len(prepared.messages))
        finally:
            _drop_connection()

    def _frame(
        self,
        message: Message,
        snap: Snapshot,
        live_tokens: set[int],
        letters: list[DeadLetter],
        now: dt.datetime,
    ) -> ingest.Part | None:
        def dead(reason: str, detail: str = "", gateway: GatewayEntry | None = None) -> None:
            letters.append(
                ingest.dead_letter_build(
                    received_at=now,
                    channel=Channel.MQTT,
                    gateway_id=gateway.id if gateway is not None else None,
                    source=message.topic,
                    reason=reason,
                    detail=detail,
                    payload=message.payload[: ingest.EXCERPT],
                )
            )

        name = self._gateway_name(message.topic)
        if name is None:
            dead("bad_topic")
            return None
        gateway = snap.gateway_by_identifier.get(name)
        if gateway is None or gateway.frame_key is None:
            dead("unknown_gateway", name)
            return None
        if gateway.revoked or gateway.token_id not in live_tokens:
            dead("revoked_gateway", name, gateway)
            return None
        mac, newline, body = message.payload.partition(b"\n")
        if not newline:
            dead("bad_frame", "no MAC line", gateway)
            return None
        expected = signing.hashlib_hex(gateway.frame_key, body).encode()
        if not hmac.compare_digest(expected, mac.strip()):
            dead("bad_frame_signature", "", gateway)
            return None
        try:
            named, events = ingest.batch_parse(body)
        except ingest.MalformedBatch as exc:
            dead(exc.reason, str(exc.message), gateway)
            return None
        if named != name:
            dead("gateway_mismatch", named, gateway)
            return None
        return ingest.Part(gateway, events)

    def _gateway_name(self, topic: str) -> str | None:
        if not (topic.startswith(self.prefix) and topic.endswith(SUFFIX)):
            return None
        name = topic[len(self.prefix) : -len(SUFFIX)]
        return name if name and "/" not in name else None

    def _live_tokens(self, snap: Snapshot, batch: list[Message]) -> set[int]:
        """The tokens, of the gateways this batch names, that are neither revoked nor expired (one query)."""
        ids = set()
        for message in batch:
            name = self._gateway_name(message.topic)
            gateway = snap.gateway_by_identifier.get(name) if name is not None else None
            if gateway is not None and gateway.token_id is not None:
                ids.add(gateway.token_id)
        if not ids:
            return set()
        return set(
            ApiToken.objects.filter(
                pk__in=ids,
                revoked_at__isnull=True,
                expires_at__gt=dt.datetime.now(dt.UTC),
                user__is_active=True,
            ).values_list("pk", flat=True)
        )


def _fresh_connection() -> None:
    """Drop a connection the database closed or that is too old — unless inside a transaction (a test's)."""
    if not connection.in_atomic_block:
        close_old_connections()


def _drop_connection() -> None:
    if not connection.in_atomic_block:
        connection.close()


def publish_frames(
    frames: list[tuple[str, bytes]],
    *,
    url: str | None = None,
    client_id: str = "",
    qos: int = 1,
    prefix: str = PREFIX,
) -> None:
    """Publish ``(gateway identifier, frame)`` pairs and wait until the broker has them all (simulator,
    tests, benchmark)."""
    host, port = broker_address(url)
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id)
    client.max_inflight_messages_set(200)
    client.max_queued_messages_set(0)
    client.connect(host, port, keepalive=30)
    client.loop_start()
    try:
        infos = [client.publish(f"{prefix}{gateway}{SUFFIX}", frame, qos=qos) for gateway, frame in frames]
        for info in infos:
            info.wait_for_publish(timeout=120)
    finally:
        client.disconnect()
        client.loop_stop()
