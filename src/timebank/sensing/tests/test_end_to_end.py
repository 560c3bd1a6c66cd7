"""End to end through the real Mosquitto: the simulator's wristbands → MQTT frames → the bridge → stored
events → ``sessions_derive`` → the service shows the time measured, and is approved as the sensors agree.

王阿婆 asked for an hour yesterday 10:00–11:00; 李志强 took it, checked in at 10:02 and out at 10:57 in the
app, and she confirmed it on her phone. Both wear wristbands; the station's hub publishes what they saw. On
the way: a few events forged with a wrong key, a few replayed, a whole frame sent again, a frame signed by
someone without the hub's token, and 李志强 walking past her twice later that day. The bridge stores the
genuine events, counts every refusal by reason, keeps the bad frame as a dead letter and carries on.

It runs twice: with the bridge in the test's thread (storing through the test's own connection, so on SQLite
and PostgreSQL alike), and on PostgreSQL with the bridge pipelined in threads of its own, each with its own
connection, as ``timebank sensing bridge`` runs it (the test's data committed, emptied afterwards).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from django.utils import timezone

from timebank.care import services as care
from timebank.care.models import ConfirmMethod, ServiceOrder, Status
from timebank.care.tests.conftest import *  # noqa: F403 (the care fixtures: policies, 王阿婆, 李志强, post)
from timebank.care.tests.conftest import at, user_of
from timebank.common import clock
from timebank.people.models import Member, User
from timebank.regions.models import Policy, Region
from timebank.sensing import selectors, services, signing, simulator
from timebank.sensing.bridge import Bridge, publish_frames
from timebank.sensing.models import Candidate, DeadLetter, Event, PresenceSession, SessionStatus
from timebank.sensing.presence import sessions_derive, to_ms
from timebank.sensing.presence_selectors import order_measured
from timebank.sensing.tests.conftest import Hub
from timebank.sensing.tests.presence_kit import rules_for
from timebank.sensing.tests.test_bridge import broker, wait_for  # noqa: F401 (broker: a fixture, used by name)

MINUTE = dt.timedelta(minutes=1)
VISIT_MINUTES = 55
FRAME_EVENTS = 60
Frames = list[tuple[str, bytes]]


@pytest.fixture
def switched_on(tree: dict[str, Region], policies: dict[str, Policy]) -> Policy:
    """Huangpu's rules: Shanghai's, with automatic approval on (tolerance 10 minutes)."""
    return rules_for(tree["310101"], sensing_auto_approve=True)


@pytest.fixture
def visited(
    switched_on: Policy, post: Callable[..., ServiceOrder], helper: Member, old_elder: Member
) -> ServiceOrder:
    """王阿婆's hour yesterday 10:00–11:00, posted and taken the day before, checked in at 10:02 and out at
    10:57 by 李志强 in the app, confirmed by her on her own phone."""
    start = at(-1, 10)
    with clock.replay_at(start - dt.timedelta(days=1)):
        order = post(window_start=start, window_end=start + 60 * MINUTE)
        order = care.order_accept(actor=user_of(helper), order=order)
    with clock.replay_at(start + 2 * MINUTE):
        order = care.order_check_in(actor=user_of(helper), order=order)
    with clock.replay_at(start + (2 + VISIT_MINUTES) * MINUTE):
        order = care.order_check_out(actor=user_of(helper), order=order)
    with clock.replay_at(start + 70 * MINUTE):
        order = care.order_confirm(actor=user_of(old_elder), order=order, method=ConfirmMethod.DEVICE)
    assert order.status == Status.CONFIRMED
    return order


def wristband(actor: User, member: Member, identifier: str) -> simulator.SimDevice:
    registered = services.device_register(actor=actor, member=member, identifier=identifier, kind="wristband")
    assert registered.secret is not None
    return simulator.SimDevice(
        identifier=identifier,
        device_id=registered.device.pk,
        member_id=member.pk,
        secret=bytes.fromhex(registered.secret),
    )


@pytest.fixture
def wearers(yandang_staff: User, helper: Member, old_elder: Member, hub: Hub) -> simulator.Population:
    """李志强's and 王阿婆's wristbands, registered by 雁荡's staff, and the station's hub."""
    return simulator.Population(
        volunteers=[wristband(yandang_staff, helper, "wb-e2e-v1")],
        elders=[wristband(yandang_staff, old_elder, "wb-e2e-e1")],
        gateway_id=hub.gateway.pk,
        gateway_identifier=hub.gateway.identifier,
        token=hub.token,
    )


def signed_by_its_device(event: dict[str, Any], pop: simulator.Population) -> bool:
    device = next(d for d in pop.devices if d.identifier == event["device"])
    payload = signing.canonical(
        device.identifier, event["seq"], event["ts"], event.get("battery"), event["peers"]
    )
    return bool(signing.hmac_sign(device.secret, payload) == event["sig"])


def frame(pop: simulator.Population, events: list[dict[str, Any]], *, token: str | None = None) -> bytes:
    body = orjson.dumps({"gateway": pop.gateway_identifier, "events": events})
    return signing.frame_sign(token or pop.token, body)


@dataclass
class Story:
    """What the hub publishes, in three rounds (each handled before the next is sent), and what should
    become of it."""

    rounds: list[Frames]
    genuine: int  # events that should be stored
    bad_signature: int
    replay: int
    walk_by_sightings: int

    @property
    def frames(self) -> int:
        return sum(len(r) for r in self.rounds)


def story(pop: simulator.Population, order: ServiceOrder) -> Story:
    assert order.checked_in_at is not None
    sim = simulator.Simulator(pop, seed=8, forged=0.03, replayed=0.03)
    volunteer, elder = pop.volunteers[0], pop.elders[0]
    checked_in = to_ms(order.checked_in_at)
    hour = 60 * 60_000
    # the visit, heartbeats, and 李志强 walking past her in the afternoon — with the simulator's dropped,
    # forged and replayed events
    day = sim.visit(volunteer, elder, checked_in, VISIT_MINUTES)
    day += sim.walk_by(volunteer, elder, checked_in + 4 * hour)
    for device in pop.devices:
        day += sim.heartbeats(device, checked_in - hour, checked_in + 5 * hour)
    events = sim.events(day)
    assert sim.summary.forged and sim.summary.replayed
    first_round = [
        (pop.gateway_identifier, frame(pop, part)) for part in simulator.chunks(events, FRAME_EVENTS)
    ]
    # then the first frame sent again, and one signed by someone who does not hold the hub's token
    again = events[:FRAME_EVENTS]
    forged_again = sum(1 for e in again if not signed_by_its_device(e, pop))
    second_round = [
        (pop.gateway_identifier, frame(pop, again)),
        (pop.gateway_identifier, frame(pop, events[:5], token="tb_someone_else_secret")),
    ]
    # and, the bridge still running, another walk-by in the evening, nothing lost or forged
    sim.drop = sim.forged = sim.replayed = 0.0
    evening = sim.walk_by(volunteer, elder, checked_in + 8 * hour)
    late = sim.events(evening)
    third_round = [(pop.gateway_identifier, frame(pop, late))]
    walk_by_sightings = len(
        {
            (e["device"], e["seq"])
            for e in events + late
            if e["peers"] and e["ts"] > checked_in + 2 * hour and signed_by_its_device(e, pop)
        }
    )
    summary = sim.summary
    return Story(
        rounds=[first_round, second_round, third_round],
        genuine=summary.genuine,
        bad_signature=summary.forged + forged_again,
        replay=summary.replayed + len(again) - forged_again,
        walk_by_sightings=walk_by_sightings,
    )


def a_bridge() -> tuple[Bridge, str]:
    """A bridge on a topic root of its own (test runs may share the broker), without a persistent session."""
    prefix = f"test-{uuid.uuid4().hex[:12]}/sensing/"
    bridge = Bridge(
        prefix=prefix,
        client_id=f"tb-e2e-{uuid.uuid4().hex[:12]}",
        window_ms=30,
        clean_session=True,
        pipeline=False,
    )
    return bridge, prefix


def publish_rounds(bridge: Bridge, prefix: str, rounds: list[Frames]) -> None:
    """Publish each round once the bridge has handled the one before."""
    assert bridge.subscribed.wait(10), "the bridge did not subscribe"
    handled = 0
    for frames in rounds:
        publish_frames(frames, prefix=prefix)
        handled += len(frames)
        wait_for(lambda n=handled: bridge.stats.frames >= n, 30)


def assert_the_service_shows_the_visit(bridge: Bridge, told: Story, order: ServiceOrder) -> None:
    # the bridge stored every genuine event, refused the rest by reason, kept the bad frame, and ran on
    stats = bridge.stats
    assert stats.frames == told.frames and stats.connects == 1 and stats.db_failures == 0
    assert stats.accepted == told.genuine == Event.objects.count()
    assert stats.rejected == {"bad_signature": told.bad_signature, "replay": told.replay}
    assert list(DeadLetter.objects.values_list("reason", flat=True)) == ["bad_frame_signature"]
    totals = selectors.ingest_totals(since=timezone.now() - dt.timedelta(days=1))
    assert (totals["accepted"], totals["bad_signature"], totals["replay"], totals["dead_lettered"]) == (
        told.genuine,
        told.bad_signature,
        told.replay,
        1,
    )

    # when the sessions are derived from what was stored
    report = sessions_derive()

    # then the visit is one session, matched to the service; the walk-bys were too weak to make any
    session = PresenceSession.objects.get()
    assert (session.order_id, session.status, session.candidate) == (
        order.pk,
        SessionStatus.CLOSED,
        Candidate.NONE,
    )
    assert report.weak >= told.walk_by_sightings > 0
    assert not PresenceSession.objects.filter(candidate=Candidate.PENDING).exists()
    # the service shows about the 55 minutes spent together (the last scan falls within 30 s of the end)
    measured = order_measured(order)
    assert measured is not None
    assert measured.session_ids == (session.pk,)
    assert VISIT_MINUTES - 2 <= measured.minutes <= VISIT_MINUTES
    assert measured.claimed_minutes == VISIT_MINUTES and measured.agrees()
    # and, the policy allowing it, it was approved because the sensors agree
    order.refresh_from_db()
    assert report.approved == [order.number]
    assert order.status == Status.CREDITED and order.reviewed_by_id is None


@pytest.mark.usefixtures("broker")
def test_a_visit_travels_from_the_wristbands_through_mosquitto_to_the_service(
    visited: ServiceOrder, wearers: simulator.Population
) -> None:
    # given what the hub will publish, and the bridge in this thread (storing through the test's connection)
    told = story(wearers, visited)
    bridge, prefix = a_bridge()
    failure: list[BaseException] = []

    def publish() -> None:
        try:
            publish_rounds(bridge, prefix, told.rounds)
        except BaseException as exc:  # reported by the test
            failure.append(exc)
        finally:
            bridge.stop()

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    # when the bridge runs until everything published was handled
    bridge.run(install_signals=False, seconds=90)
    publisher.join(5)
    # then
    assert failure == []
    assert_the_service_shows_the_visit(bridge, told, visited)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgres_only", "broker")
def test_a_visit_travels_through_the_pipelined_bridge_on_connections_of_its_own(
    visited: ServiceOrder, wearers: simulator.Population
) -> None:
    # given what the hub will publish, and the bridge as `timebank sensing bridge` runs it: one thread
    # checking frames, another storing them, each with a database connection of its own
    told = story(wearers, visited)
    bridge, prefix = a_bridge()
    bridge.pipeline = True
    runner = threading.Thread(
        target=bridge.run, kwargs={"install_signals": False, "seconds": 90}, name="bridge", daemon=True
    )
    runner.start()
    # when the hub publishes, round after round
    try:
        publish_rounds(bridge, prefix, told.rounds)
    finally:
        bridge.stop()
        runner.join(30)
    # then what the bridge committed is there for the deriver, and the service shows the visit
    assert not runner.is_alive()
    assert_the_service_shows_the_visit(bridge, told, visited)
