"""The MQTT bridge through the real Mosquitto: frames in, rows stored, bad frames dead-lettered, a clean
stop."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid

import orjson
import pytest

from timebank.sensing import services, signing
from timebank.sensing.bridge import Bridge, broker_address, publish_frames
from timebank.sensing.models import DeadLetter, Event

pytestmark = pytest.mark.django_db


def broker_up() -> bool:
    host, port = broker_address()
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def broker() -> None:
    if not broker_up():
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("Mosquitto is not reachable at {}:{} (CI must start it)".format(*broker_address()))
        pytest.skip("Mosquitto is not reachable at {}:{}".format(*broker_address()))


def run_bridge(frames: list[tuple[str, bytes]], *, expect: int | None = None, **kwargs) -> Bridge:
    """Run a bridge on a topic root of its own (test runs may share the broker) in this thread — it stores
    through the test's own database connection — while another thread publishes ``frames`` and stops it once
    it has handled ``expect`` of them (all by default)."""
    prefix = f"test-{uuid.uuid4().hex[:12]}/sensing/"
    kwargs.setdefault("pipeline", False)  # the pipeline's second thread has a database connection of its own
    bridge = Bridge(
        prefix=prefix,
        client_id=f"tb-test-{uuid.uuid4().hex[:12]}",
        window_ms=30,
        clean_session=True,
        **kwargs,
    )
    wanted = len(frames) if expect is None else expect
    failure: list[BaseException] = []

    def publish() -> None:
        try:
            assert bridge.subscribed.wait(10), "the bridge did not subscribe"
            publish_frames(frames, prefix=prefix)
            wait_for(lambda: bridge.stats.frames >= wanted)
        except BaseException as exc:  # reported by the test
            failure.append(exc)
        finally:
            bridge.stop()

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    bridge.run(install_signals=False, seconds=60)
    publisher.join(5)
    if failure:
        raise failure[0]
    return bridge


def frame(token: str, batch: dict) -> bytes:
    return signing.frame_sign(token, orjson.dumps(batch))


def wait_for(condition, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_frames_are_stored_and_bad_frames_dead_lettered(broker, hub, band_v, band_e):
    # given
    good = {
        "gateway": "st-yandang-1",
        "events": [band_v.event(1, [(band_e.identifier, -60)]), band_v.event(2)],
    }
    frames = [
        ("st-yandang-1", frame(hub.token, good)),
        ("st-yandang-1", frame(hub.token, good)),  # the same again: replays
        ("st-yandang-1", frame("tb_wrong_token", good)),  # a MAC by someone else
        ("st-nobody", frame(hub.token, {**good, "gateway": "st-nobody"})),  # no such gateway
        ("st-yandang-1", signing.frame_sign(hub.token, b"{not json")),
        ("st-yandang-1", b"no mac line at all"),
        ("st-yandang-1", frame(hub.token, {"gateway": "st-jinyang-1", "events": []})),  # names another
    ]
    # when
    bridge = run_bridge(frames)
    # then
    assert Event.objects.count() == 2
    assert bridge.stats.accepted == 2 and bridge.stats.rejected == {"replay": 2}
    reasons = sorted(DeadLetter.objects.values_list("reason", flat=True))
    assert reasons == sorted(
        ["bad_frame_signature", "unknown_gateway", "not_json", "bad_frame", "gateway_mismatch"]
    )


def test_a_revoked_gateways_frames_are_dead_lettered(broker, hub, band_v, yandang_staff):
    # given
    services.gateway_revoke(actor=yandang_staff, gateway=hub.gateway)
    # when
    run_bridge([("st-yandang-1", frame(hub.token, {"gateway": "st-yandang-1", "events": [band_v.event(1)]}))])
    # then
    assert not Event.objects.exists()
    assert DeadLetter.objects.get().reason == "revoked_gateway"


def test_many_frames_are_gathered_into_few_batches(broker, hub, band_v):
    frames = [
        ("st-yandang-1", frame(hub.token, {"gateway": "st-yandang-1", "events": [band_v.event(seq)]}))
        for seq in range(1, 201)
    ]
    bridge = run_bridge(frames)
    assert Event.objects.count() == 200
    assert bridge.stats.batches < 200


def test_sigterm_stops_the_bridge_cleanly(broker, hub):
    # given: the bridge in the main thread, as `timebank sensing bridge` runs it
    bridge = Bridge(prefix=f"test-{uuid.uuid4().hex[:12]}/sensing/", client_id="", clean_session=True)
    before = signal.getsignal(signal.SIGTERM)
    threading.Timer(1.0, os.kill, args=(os.getpid(), signal.SIGTERM)).start()
    # when
    started = time.monotonic()
    stats = bridge.run(seconds=20)
    # then
    assert time.monotonic() - started < 10
    assert stats.connects >= 1
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.mark.django_db(transaction=True)
def test_the_pipelined_bridge_stores_every_frame_in_order(postgres_only, broker, hub, band_v, band_e):
    # given: many small frames, checked by one thread while another stores the previous batch
    frames = [
        (
            "st-yandang-1",
            frame(
                hub.token,
                {"gateway": "st-yandang-1", "events": [band_v.event(2 * k), band_v.event(2 * k + 1)]},
            ),
        )
        for k in range(300)
    ]
    # when
    bridge = run_bridge(frames, pipeline=True)
    # then: nothing lost to a reordering (a later batch stored first would turn earlier events into replays)
    assert bridge.stats.accepted == 600 and bridge.stats.rejected == {}
    assert Event.objects.count() == 600


def test_a_database_failure_is_tried_again_and_nothing_is_lost(broker, hub, band_v, monkeypatch):
    # given: the database refuses the first attempt to store
    from django.db import OperationalError

    from timebank.sensing import ingest

    real = ingest.events_store
    failures: list[int] = []

    def flaky(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise OperationalError("the server closed the connection")
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest, "events_store", flaky)
    # when
    bridge = run_bridge(
        [("st-yandang-1", frame(hub.token, {"gateway": "st-yandang-1", "events": [band_v.event(1)]}))]
    )
    # then
    assert bridge.stats.db_failures == 1
    assert bridge.stats.accepted == 1 and Event.objects.count() == 1


def test_the_bridge_reconnects_after_losing_the_broker(broker, hub, band_v):
    # given: a bridge whose connection breaks once it has subscribed
    prefix = f"test-{uuid.uuid4().hex[:12]}/sensing/"
    bridge = Bridge(
        prefix=prefix, client_id=f"tb-test-{uuid.uuid4().hex[:12]}", clean_session=True, pipeline=False
    )
    bridge.client.reconnect_delay_set(min_delay=1, max_delay=2)
    failure: list[BaseException] = []

    def break_then_publish() -> None:
        try:
            assert bridge.subscribed.wait(10)
            sock = bridge.client.socket()
            assert sock is not None
            sock.close()  # as if the broker went away
            wait_for(lambda: bridge.stats.connects >= 2 and bridge.subscribed.is_set(), 20)
            batch = {"gateway": "st-yandang-1", "events": [band_v.event(1)]}
            publish_frames([("st-yandang-1", frame(hub.token, batch))], prefix=prefix)
            wait_for(lambda: bridge.stats.frames >= 1)
        except BaseException as exc:
            failure.append(exc)
        finally:
            bridge.stop()

    thread = threading.Thread(target=break_then_publish, daemon=True)
    thread.start()
    # when
    bridge.run(install_signals=False, seconds=60)
    thread.join(5)
    # then
    assert failure == []
    assert bridge.stats.connects >= 2
    assert Event.objects.count() == 1


def test_simulated_visits_reach_the_sightings_through_mosquitto(broker, yandang_staff, tree):
    # given: a volunteer visiting an elder for 40 minutes, an hour ago, with a few dropped, forged and
    # replayed events on the way
    from timebank.sensing import selectors, simulator

    pop = simulator.population(actor=yandang_staff, region=tree["310101023001"], volunteers=1, elders=1)
    sim = simulator.Simulator(pop, seed=11, drop=0.05, forged=0.05, replayed=0.05)
    start = int(time.time() * 1000) - 3_600_000
    events = sim.events(sim.visit(pop.volunteers[0], pop.elders[0], start, 40))
    prefix = f"test-{uuid.uuid4().hex[:12]}/sensing/"
    bridge = Bridge(
        prefix=prefix, client_id=f"tb-test-{uuid.uuid4().hex[:12]}", clean_session=True, pipeline=False
    )
    sent: list[int] = []

    def publish() -> None:
        try:
            assert bridge.subscribed.wait(10)
            sent.append(simulator.send_mqtt(pop, events, prefix=prefix, batch=50))
            wait_for(lambda: bridge.stats.frames >= sent[0])
        finally:
            bridge.stop()

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    # when
    bridge.run(install_signals=False, seconds=60)
    thread.join(5)
    # then: every genuine event is stored, and the sightings span the visit
    summary = sim.summary
    assert bridge.stats.accepted == summary.genuine
    assert bridge.stats.rejected == {
        k: v for k, v in (("bad_signature", summary.forged), ("replay", summary.replayed)) if v
    }
    sightings = list(selectors.sightings_stream(0))
    assert {(s.observer_member_id, s.peer_member_id) for s in sightings} == {
        (pop.volunteers[0].member_id, pop.elders[0].member_id),
        (pop.elders[0].member_id, pop.volunteers[0].member_id),
    }
    first, last = sightings[0].at.timestamp() * 1000, sightings[-1].at.timestamp() * 1000
    assert start - 5000 <= first < start + 120_000 and start + 38 * 60_000 < last <= start + 41 * 60_000


def nul_frames(hub, band_v) -> list[tuple[str, bytes]]:
    named_with_nul = {"gateway": "st-yandang-1\x00", "events": [band_v.event(1)]}
    good = {"gateway": "st-yandang-1", "events": [band_v.event(2)]}
    return [
        ("st-nobody", b"\x00"),  # an unknown gateway's frame holding a NUL
        ("st-yandang-1", frame(hub.token, named_with_nul)),  # signed, but names a gateway with a NUL in it
        ("st-yandang-1", frame(hub.token, good)),
    ]


def assert_nul_frames_dead_lettered_and_the_next_stored(bridge: Bridge) -> None:
    assert bridge.stats.accepted == 1 and Event.objects.count() == 1
    letters = dict(DeadLetter.objects.values_list("reason", "payload"))
    assert letters["unknown_gateway"] == "\\u0000"
    assert DeadLetter.objects.get(reason="gateway_mismatch").detail == "st-yandang-1\\u0000"


def test_frames_holding_a_nul_are_dead_lettered_and_the_next_frame_stored(broker, hub, band_v):
    bridge = run_bridge(nul_frames(hub, band_v))
    assert_nul_frames_dead_lettered_and_the_next_stored(bridge)


def test_frames_holding_a_nul_are_dead_lettered_on_postgresql(postgres_only, broker, hub, band_v):
    # given: PostgreSQL text refuses NUL (SQLite takes it, so only this run proves the letters storable)
    # when
    bridge = run_bridge(nul_frames(hub, band_v))
    # then
    assert bridge.stats.db_failures == 0
    assert_nul_frames_dead_lettered_and_the_next_stored(bridge)


def test_a_frame_the_database_refuses_for_good_is_dead_lettered_not_retried(broker, hub, band_v, monkeypatch):
    # given: the database refuses (bad data, not a lost connection) every batch holding the event of seq 1
    from django.db import DataError

    from timebank.sensing import ingest

    real = ingest.events_store

    def refusing(checked, **kwargs):
        if any(event.get("seq") == 1 for c in checked for event in c.part.events):
            raise DataError("invalid byte sequence")
        return real(checked, **kwargs)

    monkeypatch.setattr(ingest, "events_store", refusing)
    frames = [
        ("st-yandang-1", frame(hub.token, {"gateway": "st-yandang-1", "events": [band_v.event(seq)]}))
        for seq in (1, 2)
    ]
    # when
    bridge = run_bridge(frames)
    # then: the refused frame is kept and acknowledged, the one behind it stored
    assert bridge.stats.db_failures == 0 and bridge.stats.db_refusals >= 1
    assert DeadLetter.objects.get().reason == "database_refused"
    assert Event.objects.get().seq == 2
