"""Reads of the sensing package: devices and gateways as staff see them, ingestion counters and dead letters,
and the sightings the session deriver consumes.

Sightings
---------
A *sighting* is one peer observed in one stored event: "device A (worn by member a) saw device B (worn by
member b) at time t with signal strength r". ``sightings_after`` pages through them in event-id order;
``sightings_stream`` is the bulk variant for a backfill over millions of events.

Only events that saw at least one registered peer are read (heartbeats are skipped), so every event a page
covers yields at least one sighting and the caller may continue from the last ``event_id`` it got.

Concurrent ingestion on PostgreSQL commits batches out of id order: a batch given ids 1–1000 may commit after
the one given 1001–2000. So that a reader continuing from the last id it saw never skips a late commit, both
functions stop at the *horizon*: at the first event received less than ``SENSING_SETTLE_SECONDS`` (60) ago by
the database's clock. Ingestion bounds its transactions well below that (``statement_timeout`` and
``idle_in_transaction_session_timeout`` of 5 s, see ``ingest``), so whatever lies below the horizon has
committed. (SQLite has one writer at a time: ids commit in order and there is no horizon.) Tests that read
what they just ingested set ``SENSING_SETTLE_SECONDS = 0``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, NamedTuple

from django.db import connection
from django.db.models import Q, QuerySet
from django.db.models.functions import TruncDate

from timebank.common.errors import NotFound
from timebank.people.access import Perm, access_member_view, access_region_q
from timebank.people.models import User
from timebank.sensing.conf import sensing_setting
from timebank.sensing.models import DeadLetter, Device, Event, Gateway, IngestBatch


class Sighting(NamedTuple):
    event_id: int
    at: dt.datetime  # aware, UTC: when the observer saw the peer (the event's timestamp)
    observer_device_id: int
    observer_member_id: int
    peer_device_id: int
    peer_member_id: int
    rssi: int  # dBm, e.g. -58; nearer is larger


# --- sightings ----------------------------------------------------------------------------------------------

_SIGHTINGS_SQL = """
WITH ev AS (
    SELECT e.id, e.observed_at, e.device_id, e.peer_devices, e.peer_rssi,
           e.received_at <= %s AS settled
    FROM sensing_event e
    WHERE e.id > %s AND cardinality(e.peer_devices) > 0
    ORDER BY e.id
    LIMIT %s
)
SELECT ev.id, ev.observed_at, ev.device_id, d.member_id, p.peer, pd.member_id, p.rssi, ev.settled
FROM ev
JOIN sensing_device d ON d.id = ev.device_id
CROSS JOIN LATERAL unnest(ev.peer_devices, ev.peer_rssi) WITH ORDINALITY AS p(peer, rssi, n)
JOIN sensing_device pd ON pd.id = p.peer
ORDER BY ev.id, p.n
"""


def _horizon(settle_seconds: int | None = None) -> dt.datetime | None:
    """Events received after this are not read yet (PostgreSQL); None: read everything committed."""
    settle = sensing_setting("SENSING_SETTLE_SECONDS") if settle_seconds is None else settle_seconds
    if connection.vendor != "postgresql" or settle <= 0:
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT now() - make_interval(secs => %s)", [settle])
        row = cursor.fetchone()
    assert row is not None
    value: dt.datetime = row[0]
    return value


def _page(after_id: int, limit: int, horizon: dt.datetime | None) -> tuple[list[Sighting], bool]:
    """The sightings of the next ``limit`` events, and whether the page stopped at the horizon."""
    if connection.vendor == "postgresql":
        far = dt.datetime.max.replace(tzinfo=dt.UTC)
        with connection.cursor() as cursor:
            cursor.execute(_SIGHTINGS_SQL, [horizon or far, after_id, limit])
            rows = cursor.fetchall()
        out: list[Sighting] = []
        for event_id, at, device, member, peer, peer_member, rssi, settled in rows:
            if not settled:
                return out, True
            out.append(Sighting(event_id, at, device, member, peer, peer_member, rssi))
        return out, False
    events = list(
        Event.objects.filter(id__gt=after_id)
        .exclude(peer_devices="")
        .order_by("id")
        .values_list("id", "observed_at", "device_id", "peer_devices", "peer_rssi")[:limit]
    )
    wanted = {e[2] for e in events} | {p for e in events for p in e[3]}
    members = dict(Device.objects.filter(id__in=wanted).values_list("id", "member_id"))
    return [
        Sighting(event_id, at, device, members[device], peer, members[peer], rssi)
        for event_id, at, device, peers, strengths in events
        for peer, rssi in zip(peers, strengths, strict=True)
        if peer in members and device in members
    ], False


def sightings_after(after_id: int, limit: int) -> list[Sighting]:
    """The sightings of the next ``limit`` events (that saw a registered peer) with id > ``after_id``, in
    event-id order and, within an event, in the order the peers were sent; up to the horizon."""
    if limit < 1:
        return []
    return _page(after_id, limit, _horizon())[0]


def sightings_stream(
    after_id: int = 0, *, chunk: int = 10_000, settle_seconds: int | None = None
) -> Iterator[Sighting]:
    """Every sighting of events with id > ``after_id`` up to the horizon (fixed when the stream starts), in
    event-id order, read ``chunk`` events at a time by keyset (one index range scan each): for a backfill over
    millions of events in flat memory. ``settle_seconds`` overrides the setting (0: read all committed)."""
    horizon = _horizon(settle_seconds)
    while True:
        page, stopped = _page(after_id, chunk, horizon)
        yield from page
        if stopped or not page:
            return
        after_id = page[-1].event_id


# --- devices and gateways -----------------------------------------------------------------------------------


def devices_visible(
    user: User, *, member_id: int | None = None, live: bool | None = None
) -> QuerySet[Device]:
    """Devices worn by members the user may see (themselves, or staff: their subtree)."""
    scope = access_region_q(user, Perm.PEOPLE_VIEW, "member__home_region__path")
    if user.member_id is not None:
        scope |= Q(member_id=user.member_id)
    qs = Device.objects.filter(scope)
    if member_id is not None:
        qs = qs.filter(member_id=member_id)
    if live is not None:
        qs = qs.filter(revoked_at__isnull=live)
    return qs.select_related("member", "member__home_region").order_by("identifier", "id")


def device_get(user: User, device_id: int) -> Device:
    """A device the user may see; another community's is reported as not found, revealing nothing."""
    device = Device.objects.select_related("member__home_region").filter(pk=device_id).first()
    if device is None or not access_member_view(user, device.member):
        raise NotFound(code="sensing_device_not_found")
    return device


def gateways_visible(user: User) -> QuerySet[Gateway]:
    """Gateways of stations in the user's subtree, and phones of members there."""
    scope = access_region_q(user, Perm.PEOPLE_VIEW, "region__path") | access_region_q(
        user, Perm.PEOPLE_VIEW, "member__home_region__path"
    )
    return Gateway.objects.filter(scope).select_related("region", "member").order_by("identifier")


def gateway_of_token(token_id: int) -> Gateway | None:
    """The live gateway holding this API token."""
    return Gateway.objects.filter(token_id=token_id, revoked_at__isnull=True).first()


# --- counters -----------------------------------------------------------------------------------------------


def ingest_counts(*, since: dt.datetime, gateway_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Accepted, rejected (by reason) and dead-lettered events per gateway and day since ``since``."""
    qs = IngestBatch.objects.filter(received_at__gte=since)
    if gateway_ids is not None:
        qs = qs.filter(gateway_id__in=gateway_ids)
    totals: dict[tuple[Any, Any, str], dict[str, Any]] = {}
    rows = qs.annotate(day=TruncDate("received_at")).values_list(
        "day", "gateway_id", "gateway__identifier", "channel", "accepted", "rejected", "dead_lettered"
    )
    for day, gateway_id, identifier, channel, accepted, rejected, dead in rows.iterator(chunk_size=5000):
        key = (day, gateway_id, channel)
        total = totals.setdefault(
            key,
            {
                "day": day,
                "gateway": identifier or "",
                "channel": channel,
                "batches": 0,
                "accepted": 0,
                "rejected": {},
                "dead_lettered": 0,
            },
        )
        total["batches"] += 1
        total["accepted"] += accepted
        total["dead_lettered"] += dead
        for reason, count in (rejected or {}).items():
            total["rejected"][reason] = total["rejected"].get(reason, 0) + count
    return sorted(totals.values(), key=lambda t: (t["day"], t["gateway"], t["channel"]))


def ingest_totals(*, since: dt.datetime) -> dict[str, int]:
    """All accepted, rejected and dead-lettered events since ``since``, rejected ones by reason."""
    out: dict[str, int] = {"accepted": 0, "dead_lettered": 0}
    for row in ingest_counts(since=since):
        out["accepted"] += row["accepted"]
        out["dead_lettered"] += row["dead_lettered"]
        for reason, count in row["rejected"].items():
            out[reason] = out.get(reason, 0) + count
    return out


def dead_letters_recent(*, limit: int = 50) -> QuerySet[DeadLetter]:
    return DeadLetter.objects.select_related("gateway").order_by("-id")[:limit]
