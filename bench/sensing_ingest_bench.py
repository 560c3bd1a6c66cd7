"""Ingestion of signed proximity events into PostgreSQL, against a plain COPY of the same rows measured in the
same run, and the MQTT bridge's memory over a long run.

    python bench/sensing_ingest_bench.py [--events 1000000] [--batch 5000] [--clients 4]
                                         [--memory-seconds 600] [--only copy http mqtt memory]

1. copy: the reference — psycopg ``COPY`` of the very rows ingestion writes into the same (partitioned) table,
   in batches of ``--batch`` rows, one transaction each, from one connection; also as one single COPY.
2. http: the same events, HMAC-signed, posted as JSON batches to ``POST /api/v1/sensing/events`` of a real
   server process (``timebank serve``, threaded) by ``--clients`` concurrent gateways over keep-alive
   connections, until all are stored.
3. mqtt: the same events as signed frames on Mosquitto, queued for the bridge's persistent session, then
   ``timebank sensing bridge`` started and timed until all are stored.
4. memory: ``timebank sensing bridge`` fed steadily (``--memory-rate`` events/s) for ``--memory-seconds``;
   its resident memory sampled every 5 s.

Each run starts from an empty event table and devices that have sent nothing. Results go to
bench/results/sensing_ingest.json and are printed as the table BENCHMARKS.md shows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchdb import ROOT, BenchDatabase, psql

DATABASE = BenchDatabase("timebank_bench_sensing", TIMEBANK_LOG_LEVEL="INFO", PYTHONUNBUFFERED="1")
DB = DATABASE.name
BENCH_URL = DATABASE.url
PORT = 8765
REGION = "310101023001"


@dataclass
class Gateway:
    identifier: str
    token: str
    pk: int
    devices: list[tuple[int, str, bytes]] = field(default_factory=list)  # (id, identifier, secret)


@dataclass
class Workload:
    gateways: list[Gateway]
    bodies: list[list[bytes]]  # per gateway: JSON batches, in order
    copy_batches: list[bytes]  # the rows ingestion writes, as COPY text, batch by batch
    events: int


def setup_population(devices: int, clients: int) -> list[Gateway]:
    """``devices`` wristbands (half volunteers, half elders) through the real services, and one station
    gateway per client; the wristbands are shared out among the gateways."""
    from timebank.people.models import User
    from timebank.regions import services as regions
    from timebank.regions.models import Region
    from timebank.sensing import services, simulator

    if not Region.objects.filter(code=REGION).exists():
        regions.regions_import_shipped(actor=None, name="shanghai")
    region = Region.objects.get(code=REGION)
    admin = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        "bench-admin", password=uuid.uuid4().hex
    )
    pop = simulator.population(
        actor=admin, region=region, volunteers=devices // 2, elders=devices - devices // 2, prefix="bench"
    )
    gateways = []
    for i in range(clients):
        issued = services.gateway_create(
            actor=admin, identifier=f"bench-hub-{i}", name=f"hub {i}", region=region
        )
        gateways.append(Gateway(issued.gateway.identifier, issued.token, issued.gateway.pk))
    for k, device in enumerate(pop.devices):
        gateways[k % clients].devices.append((device.device_id, device.identifier, device.secret))
    return gateways


def make_workload(gateways: list[Gateway], events: int, batch: int, seed: int = 1) -> Workload:
    """``events`` signed events, spread over the gateways' wristbands: each sees its partner (and now and
    then a third) within the last half hour. Also the COPY text of the rows they become."""
    import orjson

    from timebank.sensing import ingest, signing

    rng = random.Random(seed)
    now = int(time.time() * 1000)
    per_gateway = events // len(gateways)
    bodies: list[list[bytes]] = []
    copy_batches: list[bytes] = []
    received = dt.datetime.now(dt.UTC).isoformat()
    for gateway in gateways:
        devs = gateway.devices
        by_name = {d[1]: d[0] for d in devs}
        seqs = [0] * len(devs)
        out: list[bytes] = []
        for start in range(0, per_gateway, batch):
            chunk = []
            lines = []
            for k in range(start, min(start + batch, per_gateway)):
                i = k % len(devs)
                device_id, name, secret = devs[i]
                partner = devs[i ^ 1] if (i ^ 1) < len(devs) else devs[0]
                peers = [(partner[1], rng.randint(-72, -52))]
                if k % 4 == 0:
                    third = devs[rng.randrange(len(devs))]
                    if third[0] not in (device_id, partner[0]):
                        peers.append((third[1], rng.randint(-90, -75)))
                ts = now - 1_800_000 + k * 1_800_000 // per_gateway
                battery = 80 if k % 50 == 0 else None
                chunk.append(
                    signing.event_sign(
                        device=name, seq=seqs[i], ts=ts, peers=peers, battery=battery, secret=secret
                    )
                )
                peer_ids = [by_name[p] for p, _r in peers]
                lines.append(
                    f"{device_id}\t{seqs[i]}\t{ingest._ts_text(ts)}\t{received}\t{gateway.pk}\t"
                    f"{{{','.join(map(str, peer_ids))}}}\t{{{','.join(str(r) for _p, r in peers)}}}\n"
                )
                seqs[i] += 1
            out.append(orjson.dumps({"gateway": gateway.identifier, "events": chunk}))
            copy_batches.append("".join(lines).encode())
        bodies.append(out)
    return Workload(gateways, bodies, copy_batches, per_gateway * len(gateways))


def reset() -> None:
    """An empty event table and devices that have sent nothing."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE sensing_event, sensing_ingestbatch, sensing_deadletter")
        cursor.execute("UPDATE sensing_device SET last_seq = -1, last_seen_at = NULL")
    connection.close()
    psql("VACUUM ANALYZE sensing_device", DB)
    psql("CHECKPOINT", DB)


def stored() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(accepted), 0) FROM sensing_ingestbatch")
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def ensure_partitions() -> None:
    from timebank.sensing import partitions

    today = int(time.time() * 1000) // partitions.DAY_MS
    partitions.partitions_ensure(range(today - 1, today + 2))


# --- 1. the reference: COPY ---------------------------------------------------------------------------------


def bench_copy(work: Workload) -> dict[str, Any]:
    import psycopg

    columns = "device_id, seq, observed_at, received_at, gateway_id, peer_devices, peer_rssi"
    reset()
    with psycopg.connect(BENCH_URL) as conn:
        started = time.perf_counter()
        for data in work.copy_batches:
            with (
                conn.transaction(),
                conn.cursor() as cursor,
                cursor.copy(f"COPY sensing_event ({columns}) FROM STDIN") as copy,
            ):
                copy.write(data)
        batched = time.perf_counter() - started
    reset()
    with psycopg.connect(BENCH_URL) as conn:
        started = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor() as cursor,
            cursor.copy(f"COPY sensing_event ({columns}) FROM STDIN") as copy,
        ):
            for data in work.copy_batches:
                copy.write(data)
        single = time.perf_counter() - started
    return {
        "rows": work.events,
        "batched_seconds": round(batched, 2),
        "batched_rows_per_second": round(work.events / batched),
        "single_seconds": round(single, 2),
        "single_rows_per_second": round(work.events / single),
    }


# --- 2. HTTP ------------------------------------------------------------------------------------------------


def wait_port(port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port}")


def server_command(server: str, workers: int) -> list[str]:
    if server == "serve":  # the embedded server: one process, a thread per connection
        return [
            sys.executable, "-m", "timebank.cli.main", "serve", "--noreload", "--seal-every", "0",
            "--care-every", "0", "--sensing-every", "0", "--derive-every", "0", f"127.0.0.1:{PORT}",
        ]  # fmt: skip
    # production's: gunicorn's sync workers, a process each
    return [
        sys.executable, "-m", "gunicorn", "timebank.config.wsgi:application", "--bind", f"127.0.0.1:{PORT}",
        "--workers", str(workers), "--log-level", "warning",
    ]  # fmt: skip


def has_gunicorn() -> bool:
    import importlib.util

    return importlib.util.find_spec("gunicorn") is not None


def bench_http(work: Workload, server_kind: str = "serve", workers: int = 2) -> dict[str, Any]:
    reset()
    server = subprocess.Popen(
        server_command(server_kind, workers),
        env=DATABASE.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(PORT)
        # warm up: the server process loads the registry (every device's key) once
        _post(Connection("127.0.0.1", PORT), work.gateways[0], _empty(work.gateways[0]))
        failures: list[str] = []
        answers: list[dict[str, Any]] = []

        def client(index: int) -> None:
            gateway = work.gateways[index]
            connection = Connection("127.0.0.1", PORT, timeout=120)
            for body in work.bodies[index]:
                status, answer = _post(connection, gateway, body)
                if status != 200:
                    failures.append(f"{status} {answer}")
                    return
                answers.append(answer)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(len(work.gateways))]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
    accepted = sum(a["accepted"] for a in answers)
    if failures or accepted != work.events:
        raise RuntimeError(f"http: accepted {accepted} of {work.events}; {failures[:3]}")
    return {
        "server": "timebank serve" if server_kind == "serve" else f"gunicorn, {workers} sync workers",
        "events": work.events,
        "clients": len(work.gateways),
        "requests": len(answers),
        "seconds": round(seconds, 2),
        "events_per_second": round(work.events / seconds),
    }


class Connection(http.client.HTTPConnection):
    """A keep-alive connection without Nagle's delay, as HTTP client libraries set up (urllib3 does)."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _empty(gateway: Gateway) -> bytes:
    return json.dumps({"gateway": gateway.identifier, "events": []}).encode()


def _post(connection: http.client.HTTPConnection, gateway: Gateway, body: bytes) -> tuple[int, Any]:
    for attempt in range(2):
        try:
            connection.request(
                "POST",
                "/api/v1/sensing/events",
                body=body,
                headers={"Authorization": f"Bearer {gateway.token}", "Content-Type": "application/json"},
            )
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            connection.close()
            if attempt:
                raise
    raise AssertionError("unreachable")


# --- 3. MQTT ----------------------------------------------------------------------------------------------


def start_bridge(client_id: str, *extra: str) -> tuple[subprocess.Popen[str], threading.Event, list[str]]:
    """``timebank sensing bridge`` in its own process; an event set once it has subscribed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "timebank.cli.main", "sensing", "bridge", "--client-id", client_id, *extra],
        env=DATABASE.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    subscribed = threading.Event()
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip())
            if "subscribed to" in line:
                subscribed.set()

    threading.Thread(target=read, daemon=True).start()
    if not subscribed.wait(60):
        process.kill()
        raise RuntimeError("the bridge did not subscribe: " + "\n".join(lines[-20:]))
    return process, subscribed, lines


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()


def forget_session(client_id: str) -> None:
    """Drop the persistent session the broker keeps for a bridge's client id (and what is queued for it)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from timebank.sensing.bridge import broker_address

    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True
    )
    client.connect(*broker_address())
    client.disconnect()


def frames_of(work: Workload) -> list[tuple[str, bytes]]:
    from timebank.sensing import signing

    frames = []
    for k in range(max(len(b) for b in work.bodies)):
        for gateway, bodies in zip(work.gateways, work.bodies, strict=True):
            if k < len(bodies):
                frames.append((gateway.identifier, signing.frame_sign(gateway.token, bodies[k])))
    return frames


def bench_mqtt(work: Workload) -> dict[str, Any]:
    from timebank.sensing.bridge import publish_frames

    reset()
    client_id = f"bench-bridge-{uuid.uuid4().hex[:8]}"
    # the bridge's persistent session subscribes once; then every frame is queued for it at the broker
    process, _subscribed, _lines = start_bridge(client_id)
    stop(process)
    frames = frames_of(work)
    published = time.perf_counter()
    publish_frames(frames, client_id=f"bench-pub-{uuid.uuid4().hex[:8]}")
    publish_seconds = time.perf_counter() - published
    started = time.perf_counter()
    process, _subscribed, lines = start_bridge(client_id)
    subscribed_at = time.perf_counter()
    deadline = time.monotonic() + 600
    while stored() < work.events and time.monotonic() < deadline:
        time.sleep(0.1)
    finished = time.perf_counter()
    stop(process)
    forget_session(client_id)
    count = stored()
    if count != work.events:
        raise RuntimeError(f"mqtt: stored {count} of {work.events}: " + "\n".join(lines[-20:]))
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT extract(epoch FROM max(received_at) - min(received_at)) FROM sensing_ingestbatch"
        )
        row = cursor.fetchone()
    first_to_last = float(row[0]) if row and row[0] else 0.0
    return {
        "events": work.events,
        "frames": len(frames),
        "publish_seconds": round(publish_seconds, 2),
        "seconds": round(finished - subscribed_at, 2),
        "seconds_with_startup": round(finished - started, 2),
        "events_per_second": round(work.events / (finished - subscribed_at)),
        "first_to_last_batch_seconds": round(first_to_last, 2),
    }


# --- 4. the bridge's memory over a long run -----------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(re.findall(r"\d+", line)[0])
    return 0


def bench_memory(gateways: list[Gateway], seconds: float, rate: int, frame_events: int) -> dict[str, Any]:
    """Feed the bridge ``rate`` events/s in frames of ``frame_events`` for ``seconds``; sample its memory."""
    import orjson
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from timebank.sensing import signing
    from timebank.sensing.bridge import PREFIX, SUFFIX, broker_address

    reset()
    client_id = f"bench-memory-{uuid.uuid4().hex[:8]}"
    process, _subscribed, lines = start_bridge(client_id)
    host, port = broker_address()
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="")
    client.max_inflight_messages_set(100)
    client.connect(host, port)
    client.loop_start()
    samples: list[tuple[float, int]] = []
    seqs = {d[0]: 0 for g in gateways for d in g.devices}
    sent = 0
    rng = random.Random(3)
    started = time.monotonic()
    next_sample = started
    try:
        while time.monotonic() - started < seconds:
            now = time.monotonic()
            if now >= next_sample:
                samples.append((round(now - started, 1), rss_kib(process.pid)))
                next_sample += 5
            due = int((now - started) * rate)
            if sent >= due:
                time.sleep(0.01)
                continue
            gateway = gateways[(sent // frame_events) % len(gateways)]
            ts = int(time.time() * 1000)
            events = []
            for k in range(frame_events):
                i = (sent + k) % len(gateway.devices)
                device_id, name, secret = gateway.devices[i]
                partner = gateway.devices[i ^ 1 if (i ^ 1) < len(gateway.devices) else 0]
                events.append(
                    signing.event_sign(
                        device=name,
                        seq=seqs[device_id],
                        ts=ts,
                        peers=[(partner[1], rng.randint(-72, -52))],
                        secret=secret,
                    )
                )
                seqs[device_id] += 1
            body = orjson.dumps({"gateway": gateway.identifier, "events": events})
            client.publish(
                f"{PREFIX}{gateway.identifier}{SUFFIX}", signing.frame_sign(gateway.token, body), qos=1
            )
            sent += frame_events
        time.sleep(3)
        samples.append((round(time.monotonic() - started, 1), rss_kib(process.pid)))
    finally:
        client.disconnect()
        client.loop_stop()
        stop(process)
        forget_session(client_id)
    count = stored()
    warm = [kib for at, kib in samples if at >= 30] or [kib for _at, kib in samples]
    return {
        "seconds": seconds,
        "rate": rate,
        "sent": sent,
        "stored": count,
        "rss_mib_first": round(samples[0][1] / 1024, 1),
        "rss_mib_after_30s": round(warm[0] / 1024, 1),
        "rss_mib_max": round(max(kib for _at, kib in samples) / 1024, 1),
        "rss_mib_last": round(samples[-1][1] / 1024, 1),
        "samples": samples,
        "bridge_last_lines": lines[-3:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--batch", type=int, default=5000, help="events per HTTP body, MQTT frame, COPY batch"
    )
    parser.add_argument("--clients", type=int, default=4, help="concurrent gateways (HTTP connections)")
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn's processes (when it is installed)")
    parser.add_argument("--memory-seconds", type=float, default=600)
    parser.add_argument("--memory-rate", type=int, default=10_000, help="events/s fed to the bridge")
    parser.add_argument("--only", nargs="*", default=["copy", "http", "mqtt", "memory"])
    parser.add_argument("--results", default=str(ROOT / "bench" / "results" / "sensing_ingest.json"))
    args = parser.parse_args()
    DATABASE.fresh()
    DATABASE.setup_django()
    results: dict[str, Any] = {
        "command": "python bench/sensing_ingest_bench.py " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    started = time.perf_counter()
    gateways = setup_population(args.devices, args.clients)
    ensure_partitions()
    work = make_workload(gateways, args.events, args.batch)
    results["setup_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps({"setup_seconds": results["setup_seconds"], "events": work.events}), flush=True)
    if "copy" in args.only:
        results["copy"] = bench_copy(work)
        print(json.dumps(results["copy"]), flush=True)
    if "http" in args.only:
        results["http"] = bench_http(work)
        print(json.dumps(results["http"]), flush=True)
        if has_gunicorn():  # pip install -e ".[production]"
            results["http_gunicorn"] = bench_http(work, "gunicorn", args.workers)
            print(json.dumps(results["http_gunicorn"]), flush=True)
    if "mqtt" in args.only:
        results["mqtt"] = bench_mqtt(work)
        print(json.dumps(results["mqtt"]), flush=True)
    if "memory" in args.only:
        results["memory"] = bench_memory(
            gateways, args.memory_seconds, args.memory_rate, min(args.batch, 2000)
        )
        print(json.dumps({k: v for k, v in results["memory"].items() if k != "samples"}), flush=True)
    if "copy" in results:
        reference = max(results["copy"]["batched_rows_per_second"], results["copy"]["single_rows_per_second"])
        for name in ("http", "http_gunicorn", "mqtt"):
            if name in results:
                results[name]["ratio_to_copy"] = round(results[name]["events_per_second"] / reference, 2)
    print(table(results), flush=True)
    out = Path(args.results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


def table(results: dict[str, Any]) -> str:
    lines = ["| | events/s | ratio to COPY |", "|---|---:|---:|"]
    if "copy" in results:
        c = results["copy"]
        lines.append(f"| COPY, batches of the same size (reference) | {c['batched_rows_per_second']:,} | |")
        lines.append(f"| COPY, one statement (reference) | {c['single_rows_per_second']:,} | |")
    for name, label in (
        ("http", "HTTP batches through `timebank serve` (embedded)"),
        ("http_gunicorn", "HTTP batches through gunicorn (production)"),
        ("mqtt", "MQTT frames through the bridge"),
    ):
        if name in results:
            r = results[name]
            ratio = r.get("ratio_to_copy", "")
            lines.append(f"| **{label}** | **{r['events_per_second']:,}** | **{ratio}** |")
    if "memory" in results:
        m = results["memory"]
        lines.append(
            f"\nbridge RSS over {m['seconds']:.0f} s at {m['rate']:,} events/s: "
            f"{m['rss_mib_first']} MiB at start, "
            f"{m['rss_mib_after_30s']} after 30 s, max {m['rss_mib_max']}, {m['rss_mib_last']} at the end "
            f"({m['stored']:,} of {m['sent']:,} events stored)"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
