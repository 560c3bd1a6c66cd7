"""PostgreSQL only: concurrent gateways, daily partitions and retention, and the readers' horizon."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connection

from timebank.sensing import ingest, partitions, selectors, services
from timebank.sensing.models import Event
from timebank.sensing.tests.conftest import Hub, now_ms

pytestmark = pytest.mark.usefixtures("postgres_only")
DAY = partitions.DAY_MS


def send(hub: Hub, events: list[Any], **kwargs: Any) -> ingest.IngestResult:
    return ingest.gateway_events_ingest(gateway_id=hub.gateway.pk, events=events, channel="http", **kwargs)


def tables() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'sensing_event'::regclass"
        )
        return {row[0] for row in cursor.fetchall()}


def partition_of(event_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM sensing_event WHERE id = %s", [event_id])
        row = cursor.fetchone()
    assert row is not None
    return str(row[0])


@pytest.mark.django_db(transaction=True)
def test_two_gateways_forwarding_the_same_events_at_once_store_each_once(yandang_staff, tree, band_v, band_e):
    # given: two hubs of the station both hear the volunteer's wristband
    hubs = [
        services.gateway_create(
            actor=yandang_staff, identifier=f"st-yandang-{i}", name=f"hub {i}", region=tree["310101023001"]
        ).gateway
        for i in (1, 2)
    ]
    events = [band_v.event(seq, [(band_e.identifier, -60)]) for seq in range(1, 301)]
    results: list[ingest.IngestResult] = []
    barrier = threading.Barrier(2)
    escaped: list[BaseException] = []

    def forward(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            for start in range(0, len(events), 20):
                results.append(
                    ingest.gateway_events_ingest(
                        gateway_id=hubs[index].pk, events=events[start : start + 20], channel="mqtt"
                    )
                )
        except BaseException as exc:
            escaped.append(exc)
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=forward, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # then: every event is stored once, and the other copy refused as a replay
    assert escaped == []
    assert sum(r.accepted for r in results) == 300
    assert sum(r.rejected.get("replay", 0) for r in results) == 300
    assert Event.objects.count() == 300
    assert sorted(Event.objects.values_list("seq", flat=True)) == list(range(1, 301))


@pytest.mark.django_db
def test_events_go_to_their_days_partition_created_on_demand(hub, band_v):
    # given
    now = now_ms()
    day = now // DAY
    # when
    send(hub, [band_v.event(1, ts=now - 40 * DAY)], now_ms=now - 40 * DAY + 1000)
    send(hub, [band_v.event(2, ts=now), band_v.event(3, ts=now)])
    # then
    old, new, newer = Event.objects.order_by("seq").values_list("id", flat=True)
    assert partition_of(old) == partitions._name(day - 40)
    assert partition_of(new) == partition_of(newer) == partitions._name(day)
    assert {partitions._name(day - 40), partitions._name(day)} <= tables()


@pytest.mark.django_db
def test_rows_that_landed_in_the_default_partition_move_to_their_own(band_v):
    # given: a row written for a day that has no partition yet
    day = now_ms() // DAY + 30
    moment = dt.datetime.fromtimestamp(day * DAY / 1000 + 3600, dt.UTC)
    event = Event.objects.create(
        device_id=band_v.device.pk,
        seq=1,
        observed_at=moment,
        received_at=moment,
        peer_devices=[],
        peer_rssi=[],
    )
    assert partition_of(event.pk) == partitions.DEFAULT
    # when
    created = partitions.partitions_ensure([day])
    # then
    assert created == [partitions._name(day)]
    assert partition_of(event.pk) == partitions._name(day)
    assert partitions.partitions_ensure([day]) == []


@pytest.mark.django_db
def test_pruning_drops_whole_partitions_past_retention(hub, band_v):
    # given: events of 100 days ago and of today
    now = now_ms()
    day = now // DAY
    send(hub, [band_v.event(1, ts=now - 100 * DAY)], now_ms=now - 100 * DAY + 1000)
    send(hub, [band_v.event(2, ts=now)])
    # when
    report = services.events_prune(days=90)
    # then
    assert partitions._name(day - 100) in report.partitions_dropped
    assert partitions._name(day - 100) not in tables()
    assert list(Event.objects.values_list("seq", flat=True)) == [2]
    # and the coming week's partitions exist
    assert {partitions._name(day + k) for k in range(1, 8)} <= tables()


@pytest.mark.django_db
def test_readers_wait_for_the_horizon_and_stop_at_the_first_young_event(
    hub, band_v, band_e, settings, volunteer
):
    # given
    settings.SENSING_SETTLE_SECONDS = 60
    send(hub, [band_v.event(1, [(band_e.identifier, -60)]), band_v.event(2, [(band_e.identifier, -61)])])
    first, second = Event.objects.order_by("id").values_list("id", flat=True)
    # then: both are too young
    assert selectors.sightings_after(0, 10) == []
    # when the second one is old enough but the first is not, still nothing (no gap is ever skipped)
    Event.objects.filter(pk=second).update(received_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2))
    assert selectors.sightings_after(0, 10) == []
    # when both are old enough
    Event.objects.filter(pk=first).update(received_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2))
    assert [s.event_id for s in selectors.sightings_after(0, 10)] == [first, second]
    assert [s.observer_member_id for s in selectors.sightings_stream(0)] == [volunteer.pk, volunteer.pk]
