"""A simulator of volunteers and elders wearing wristbands: realistic streams of signed events for the demo,
the tests and the benchmark (``timebank sensing simulate``).

What it makes, deterministic for a seed:

- visits: a volunteer at an elder's home for 20–180 minutes; both wristbands scan every ``interval``
  seconds and see each other at about −55…−70 dBm (with noise);
- walking past: a volunteer passing an elder for a few seconds up to a minute, at −78…−90 dBm;
- heartbeats: every wristband reports its battery every 15 minutes, seeing nobody;
- dropped packets (``drop``), a clock offset per device of a few seconds, forged events (a wrong key,
  ``forged``) and replayed ones (an earlier event sent again later, ``replayed``).

Use it as a library: ``population`` registers (or finds again) the members, their wristbands and a station
gateway; ``Simulator`` makes observations (``visit``, ``walk_by``, ``day``…), ``Simulator.events`` turns them
into signed events in each device's sequence order; ``send_db``, ``send_http`` and ``send_mqtt`` deliver them.
Over HTTP and MQTT the server's clock judges the timestamps, so simulate at most
``SENSING_MAX_DELAY_SECONDS`` (3 days) back; ``--to db`` ingests with the simulated clock and takes any span.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from timebank.people import services as people
from timebank.people.crypto import decrypt_text
from timebank.people.models import User
from timebank.regions.models import Region
from timebank.sensing import ingest, services, signing
from timebank.sensing.models import Channel, Device, Gateway

MINUTE_MS = 60_000
DAY_MS = 86_400_000
LOCAL_OFFSET_MS = 8 * 3_600_000  # visits happen in the daytime, China Standard Time


@dataclass
class SimDevice:
    identifier: str
    device_id: int
    member_id: int
    secret: bytes
    drift_ms: int = 0  # the device's clock minus the true time
    next_seq: int = 0
    battery: float = 100.0


@dataclass
class Population:
    volunteers: list[SimDevice]
    elders: list[SimDevice]
    gateway_id: int
    gateway_identifier: str
    token: str

    @property
    def devices(self) -> list[SimDevice]:
        return self.volunteers + self.elders


@dataclass(frozen=True)
class Observation:
    """What one device saw at one true time."""

    ts: int
    device: SimDevice
    peers: tuple[tuple[str, int], ...]
    heartbeat: bool = False


@dataclass
class Summary:
    """What the simulator sent, to compare with what ingestion counted."""

    genuine: int = 0  # signed events sent once (should be accepted)
    dropped: int = 0  # never sent
    forged: int = 0  # bad signatures
    replayed: int = 0  # sent again
    visits: list[tuple[int, int, int, int]] = field(
        default_factory=list
    )  # volunteer, elder member, start, end ms
    walk_bys: int = 0

    @property
    def sent(self) -> int:
        return self.genuine + self.forged + self.replayed


def population(
    *,
    actor: User,
    region: Region,
    volunteers: int,
    elders: int,
    prefix: str = "sim",
    gateway_identifier: str | None = None,
) -> Population:
    """Members with wristbands ``<prefix>-v-0001``… and ``<prefix>-e-0001``…, and a station gateway,
    registered through the real services by ``actor`` — or found again when they exist (their keys read
    back)."""

    def wearer(kind: str, number: int) -> SimDevice:
        identifier = f"{prefix}-{kind}-{number:04d}"
        device = Device.objects.filter(identifier=identifier, revoked_at__isnull=True).first()
        if device is None:
            member = people.member_register(
                actor=actor,
                name=f"{'模拟志愿者' if kind == 'v' else '模拟老人'}{number:04d}",
                home_region=region,
                is_volunteer=kind == "v",
                is_elder=kind == "e",
            )
            registered = services.device_register(
                actor=actor, member=member, identifier=identifier, kind="wristband", model="SIM-1"
            )
            assert registered.secret is not None
            device, secret = registered.device, registered.secret
        else:
            secret = decrypt_text(device.secret_cipher)
        return SimDevice(
            identifier=identifier,
            device_id=device.pk,
            member_id=device.member_id,
            secret=bytes.fromhex(secret),
            next_seq=device.last_seq + 1,
        )

    vols = [wearer("v", i) for i in range(1, volunteers + 1)]
    olds = [wearer("e", i) for i in range(1, elders + 1)]
    name = gateway_identifier or f"{prefix}-hub-{region.code}"
    gateway = Gateway.objects.filter(identifier=name, revoked_at__isnull=True).first()
    if gateway is None:
        issued = services.gateway_create(
            actor=actor, identifier=name, name=f"模拟 {region.code}", region=region
        )
        gateway, token = issued.gateway, issued.token
    else:
        token = decrypt_text(gateway.token_cipher)
    return Population(vols, olds, gateway.pk, gateway.identifier, token)


class Simulator:
    def __init__(
        self,
        pop: Population,
        *,
        seed: int = 0,
        interval_s: int = 30,
        drop: float = 0.05,
        forged: float = 0.005,
        replayed: float = 0.005,
        max_drift_s: float = 4.0,
    ) -> None:
        self.pop = pop
        self.rng = random.Random(seed)
        self.interval = interval_s * 1000
        self.drop = drop
        self.forged = forged
        self.replayed = replayed
        self.summary = Summary()
        for device in pop.devices:
            device.drift_ms = round(self.rng.uniform(-max_drift_s, max_drift_s) * 1000)

    # --- observations ---------------------------------------------------------------------------------------

    def visit(
        self, volunteer: SimDevice, elder: SimDevice, start_ms: int, minutes: float
    ) -> list[Observation]:
        """Both wristbands, every interval, seeing each other near (the elder may also see a beacon)."""
        end = start_ms + round(minutes * MINUTE_MS)
        self.summary.visits.append((volunteer.member_id, elder.member_id, start_ms, end))
        base = self.rng.uniform(-68, -57)
        out = []
        t = start_ms
        while t < end:
            for a, b in ((volunteer, elder), (elder, volunteer)):
                jitter = self.rng.randint(0, 2000)
                rssi = max(-90, min(-40, round(self.rng.gauss(base, 3))))
                out.append(Observation(t + jitter, a, ((b.identifier, rssi),)))
            t += self.interval
        return out

    def walk_by(self, volunteer: SimDevice, elder: SimDevice, at_ms: int) -> list[Observation]:
        """A volunteer passing an elder in the street: a few weak sightings within a minute."""
        self.summary.walk_bys += 1
        seconds = self.rng.randint(5, 60)
        out = []
        for k in range(max(1, seconds // 20)):
            t = at_ms + k * 20_000
            rssi = self.rng.randint(-90, -78)
            out.append(Observation(t, volunteer, ((elder.identifier, rssi),)))
            if self.rng.random() < 0.5:
                out.append(Observation(t + 700, elder, ((volunteer.identifier, rssi - 1),)))
        return out

    def heartbeats(self, device: SimDevice, start_ms: int, end_ms: int) -> list[Observation]:
        offset = self.rng.randint(0, 15 * MINUTE_MS)
        return [
            Observation(t, device, (), heartbeat=True)
            for t in range(start_ms + offset, end_ms, 15 * MINUTE_MS)
        ]

    def day(
        self, day_start_ms: int, *, visits_per_volunteer: float = 1.2, walk_bys: int = 2
    ) -> list[Observation]:
        """One day (``day_start_ms`` at local midnight): visits between 8:00 and 18:00, walk-bys and
        heartbeats."""
        out: list[Observation] = []
        elders = self.pop.elders
        for volunteer in self.pop.volunteers:
            if not elders:
                break
            count = self._poisson(visits_per_volunteer)
            at = day_start_ms + 8 * 60 * MINUTE_MS + self.rng.randint(0, 60) * MINUTE_MS
            for _ in range(count):
                minutes = self.rng.randint(20, 180)
                if at + minutes * MINUTE_MS > day_start_ms + 18 * 60 * MINUTE_MS:
                    break
                out.extend(self.visit(volunteer, self.rng.choice(elders), at, minutes))
                at += (minutes + self.rng.randint(20, 120)) * MINUTE_MS
            for _ in range(walk_bys):
                moment = day_start_ms + self.rng.randint(7 * 60, 21 * 60) * MINUTE_MS
                out.extend(self.walk_by(volunteer, self.rng.choice(elders), moment))
        for device in self.pop.devices:
            out.extend(self.heartbeats(device, day_start_ms, day_start_ms + DAY_MS))
        return out

    def days(self, start_ms: int, count: int, *, until_ms: int | None = None) -> Iterator[list[Observation]]:
        """``count`` days of observations from the local midnight on or before ``start_ms``, a day at a time,
        leaving out any after ``until_ms``."""
        first = (start_ms + LOCAL_OFFSET_MS) // DAY_MS * DAY_MS - LOCAL_OFFSET_MS
        for k in range(count + 1):
            observations = [
                o
                for o in self.day(first + k * DAY_MS)
                if o.ts >= start_ms and (until_ms is None or o.ts <= until_ms)
            ]
            if observations:
                yield observations

    def _poisson(self, mean: float) -> int:
        limit, k, p = math.exp(-mean), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1

    # --- events ---------------------------------------------------------------------------------------------

    def events(self, observations: Iterable[Observation]) -> list[dict[str, Any]]:
        """Signed events in time order, each device's in its sequence order: dropped ones left out, forged and
        replayed ones mixed in."""
        out: list[dict[str, Any]] = []
        sent: list[dict[str, Any]] = []
        for obs in sorted(observations, key=lambda o: (o.ts, o.device.identifier)):
            device = obs.device
            seq = device.next_seq
            device.next_seq += 1
            if self.rng.random() < self.drop:
                self.summary.dropped += 1
                continue
            battery = None
            if obs.heartbeat:
                device.battery = max(5.0, device.battery - self.rng.uniform(0.05, 0.3))
                battery = round(device.battery)
            event = signing.event_sign(
                device=device.identifier,
                seq=seq,
                ts=obs.ts + device.drift_ms,
                peers=list(obs.peers),
                battery=battery,
                secret=device.secret,
            )
            if self.rng.random() < self.forged:
                # someone claiming a visit that did not happen, signing with a key of their own
                fake = signing.event_sign(
                    device=device.identifier,
                    seq=seq,
                    ts=obs.ts + device.drift_ms,
                    peers=[(self.rng.choice(self.pop.devices).identifier, -55)],
                    secret=self.rng.randbytes(32),
                )
                out.append(fake)
                self.summary.forged += 1
            out.append(event)
            sent.append(event)
            self.summary.genuine += 1
            if sent and self.rng.random() < self.replayed:
                out.append(dict(self.rng.choice(sent[-500:])))
                self.summary.replayed += 1
        return out


# --- delivery -----------------------------------------------------------------------------------------------


def chunks(events: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(events), size):
        yield events[start : start + size]


def send_db(pop: Population, events: list[dict[str, Any]], *, batch: int = 5000) -> ingest.IngestResult:
    """Ingest directly (no HTTP, no broker), each batch judged by a clock just after its newest event."""
    total = ingest.IngestResult()
    for part in chunks(events, batch):
        newest = max((e["ts"] for e in part if isinstance(e.get("ts"), int)), default=0)
        result = ingest.gateway_events_ingest(
            gateway_id=pop.gateway_id, events=part, channel=Channel.DIRECT, now_ms=newest + 1000
        )
        _add(total, result.as_dict())
    return total


def send_http(
    pop: Population, events: list[dict[str, Any]], *, url: str, batch: int = 5000, timeout: float = 60
) -> ingest.IngestResult:
    """POST batches to ``<url>/api/v1/sensing/events`` with the gateway's token."""
    total = ingest.IngestResult()
    endpoint = url.rstrip("/") + "/api/v1/sensing/events"
    for part in chunks(events, batch):
        body = orjson.dumps({"gateway": pop.gateway_identifier, "events": part})
        request = urllib.request.Request(  # noqa: S310 (the operator's own server)
            endpoint,
            data=body,
            method="POST",
            headers={"Authorization": f"Bearer {pop.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                _add(total, json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{endpoint}: {exc.code} {exc.read()[:300]!r}") from exc
    return total


def send_mqtt(
    pop: Population,
    events: list[dict[str, Any]],
    *,
    url: str | None = None,
    batch: int = 2000,
    prefix: str | None = None,
) -> int:
    """Publish frames (QoS 1) for the bridge; returns how many. What became of them: the bridge's counters."""
    from timebank.sensing.bridge import PREFIX, publish_frames

    frames = [
        (
            pop.gateway_identifier,
            signing.frame_sign(pop.token, orjson.dumps({"gateway": pop.gateway_identifier, "events": part})),
        )
        for part in chunks(events, batch)
    ]
    publish_frames(frames, url=url, prefix=prefix or PREFIX)
    return len(frames)


def _add(total: ingest.IngestResult, result: dict[str, Any]) -> None:
    total.accepted += result["accepted"]
    total.dead_lettered += result["dead_lettered"]
    for reason, count in result["rejected"].items():
        total.rejected[reason] = total.rejected.get(reason, 0) + count


def simulate(
    *,
    actor: User,
    region: Region,
    volunteers: int,
    elders: int,
    days: float,
    to: str = "db",
    url: str | None = None,
    seed: int = 0,
    end: dt.datetime | None = None,
    prefix: str = "sim",
) -> tuple[Summary, ingest.IngestResult | int]:
    """Everything ``timebank sensing simulate`` does: register (or find) the population, make ``days`` of
    streams ending at ``end`` (now), and deliver them ``to`` db, http (at ``url``) or mqtt."""
    pop = population(actor=actor, region=region, volunteers=volunteers, elders=elders, prefix=prefix)
    sim = Simulator(pop, seed=seed)
    end_ms = int((end or dt.datetime.now(dt.UTC)).timestamp() * 1000)
    start_ms = end_ms - round(days * DAY_MS)
    result: ingest.IngestResult | int = 0 if to == "mqtt" else ingest.IngestResult()
    for observations in sim.days(start_ms, math.ceil(days), until_ms=end_ms - 2000):
        events = sim.events(observations)
        if to == "db":
            got: ingest.IngestResult | int = send_db(pop, events)
        elif to == "http":
            got = send_http(pop, events, url=url or "http://127.0.0.1:8000")
        elif to == "mqtt":
            got = send_mqtt(pop, events, url=url)
        else:
            raise ValueError(f"to: db, http or mqtt, not {to!r}")
        if isinstance(got, int) and isinstance(result, int):
            result += got
        elif isinstance(got, ingest.IngestResult) and isinstance(result, ingest.IngestResult):
            _add(result, got.as_dict())
    return sim.summary, result


__all__ = [
    "Population",
    "Simulator",
    "Summary",
    "population",
    "send_db",
    "send_http",
    "send_mqtt",
    "simulate",
]
