"""The simulator: realistic streams, deterministic for a seed, that ingestion counts exactly as intended."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from timebank.sensing import ingest, selectors, simulator
from timebank.sensing.models import Device, Event

pytestmark = pytest.mark.django_db

END = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def simulate(**kwargs: Any) -> tuple[simulator.Summary, ingest.IngestResult]:
    summary, result = simulator.simulate(**kwargs)
    assert isinstance(result, ingest.IngestResult)
    return summary, result


def test_a_simulated_week_is_ingested_as_the_simulator_intended(yandang_staff, tree):
    # when
    summary, result = simulate(
        actor=yandang_staff,
        region=tree["310101023001"],
        volunteers=3,
        elders=4,
        days=2,
        to="db",
        seed=7,
        end=END,
    )
    # then: every genuine event is stored, every forged and replayed one refused for that reason
    assert summary.visits and summary.walk_bys and summary.dropped
    assert result.accepted == summary.genuine == Event.objects.count()
    assert result.rejected.get("bad_signature", 0) == summary.forged
    assert result.rejected.get("replay", 0) == summary.replayed
    assert set(result.rejected) <= {"bad_signature", "replay"}
    assert Device.objects.filter(battery_percent__isnull=False).count() == 7


def test_visits_show_as_near_sightings_and_walk_bys_as_far_ones(yandang_staff, tree):
    # given
    summary, _result = simulate(
        actor=yandang_staff,
        region=tree["310101023001"],
        volunteers=2,
        elders=2,
        days=1,
        to="db",
        seed=3,
        end=END,
    )
    sightings = list(selectors.sightings_stream(0))
    # when
    near = [s for s in sightings if s.rssi >= -75]
    far = [s for s in sightings if s.rssi < -75]
    # then: near sightings fall inside the simulated visits (give or take the clocks' drift)
    assert near and far
    visits = summary.visits
    for s in near:
        at = int(s.at.timestamp() * 1000)
        assert any(
            {s.observer_member_id, s.peer_member_id} == {v, e} and start - 5000 <= at <= end + 7000
            for v, e, start, end in visits
        )


def test_the_same_seed_makes_the_same_stream(yandang_staff, tree):
    pop = simulator.population(actor=yandang_staff, region=tree["310101023001"], volunteers=2, elders=2)

    def stream(seed: int) -> list[tuple]:
        for device in pop.devices:
            device.next_seq = 0
        sim = simulator.Simulator(pop, seed=seed)
        start = int(END.timestamp() * 1000) - simulator.DAY_MS
        events = [e for day in sim.days(start, 1) for e in sim.events(day)]
        return [(e["device"], e["seq"], e["ts"], tuple(map(tuple, e["peers"]))) for e in events]

    assert stream(1) == stream(1)
    assert stream(1) != stream(2)


def test_the_population_is_found_again_and_continues_its_sequences(yandang_staff, tree):
    # given
    region = tree["310101023001"]
    simulate(actor=yandang_staff, region=region, volunteers=1, elders=1, days=1, to="db", end=END)
    # when: a second run, a day later
    summary, result = simulate(
        actor=yandang_staff,
        region=region,
        volunteers=1,
        elders=1,
        days=1,
        to="db",
        seed=1,
        end=END + dt.timedelta(days=1),
    )
    # then: the same two wristbands, nothing refused as a replay but the intended ones
    assert Device.objects.count() == 2
    assert result.accepted == summary.genuine
    assert result.rejected.get("replay", 0) == summary.replayed


@pytest.mark.django_db(transaction=True)
def test_the_simulator_posts_over_http_to_a_live_server(postgres_only, live_server, yandang_staff, tree):
    # when: a few hours ending now, sent as HTTP batches (the server's clock judges them)
    summary, result = simulate(
        actor=yandang_staff,
        region=tree["310101023001"],
        volunteers=2,
        elders=2,
        days=0.25,
        to="http",
        url=live_server.url,
        seed=4,
    )
    # then
    assert result.accepted == summary.genuine == Event.objects.count()
    assert result.rejected.get("bad_signature", 0) == summary.forged
    assert result.rejected.get("replay", 0) == summary.replayed
