"""Smart timing in the demo: 雁荡's volunteers and elders wear wristbands, the station has a hub, and the last
two weeks reached the platform the way the wristbands saw them.

Everything goes through the real paths: the devices and the hub are registered by the community's staff
(``sensing.services``), the simulator (``sensing.simulator``) turns what happened into signed events — the
replayed visits, from check-in to check-out (a few volunteers left their wristband at home, a few left well
before they checked out), a few visits nobody planned, people walking past each other, heartbeats, with the
simulator's dropped, forged and replayed events — and the hub's batches go through the one ingestion, judged
by the clock of their day. Then ``sessions_derive`` matches the sessions to the services (the review queue's
"Measured by sensors") and keeps the unplanned visits as candidates for the station (``/console/care/
unplanned/``); the station dismisses one of them, a daughter's visit to her mother.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from django.db.models import Q
from django.utils import timezone

from timebank.care.models import ServiceOrder, Status
from timebank.common import clock
from timebank.people.models import Member, User
from timebank.regions.models import Region
from timebank.sensing import presence, services, simulator
from timebank.sensing.conf import sensing_setting
from timebank.sensing.models import Candidate, DeviceKind, Gateway, PresenceSession

GATEWAY = "st-yandang-1"
GATEWAY_NAME = "雁荡站"
DEVICE_MODEL, DEVICE_FIRMWARE = "TB-W2", "2.3.1"
SENSING_DAYS = 14  # the visits of the last two weeks were measured (the wristbands came then)
HEARTBEAT_DAYS = 2
SEED = 2026
FORGOT_WRISTBAND = 12  # one visit in so many the sensors never saw (a wristband left at home)
LEFT_EARLY = 9  # one visit in so many ended well before the check-out
# Visits nobody planned: volunteer, elder, days ago, start (hour, minute), minutes, the station's dismissal
UNPLANNED = [
    ("李秀英", "高凤英", 2, (19, 30), 45, ""),
    ("吴建国", "马玉兰", 6, (19, 0), 35, ""),
    ("周美华", "何春生", 9, (19, 40), 50, ""),
    ("林海燕", "林淑珍", 4, (19, 30), 90, "女儿回家看望母亲，不是志愿服务"),
]
SECOND = 1000
MINUTE = 60 * SECOND


def sensors_seed(
    *, registrar: User, reviewer: User, region: Region, members: dict[str, Member], history: bool
) -> None:
    """Wristbands for the volunteers and elders living in ``region`` and a hub for its station, registered
    by ``registrar``; with ``history``, the last two weeks of co-presence ingested and derived, and one
    unplanned visit dismissed by ``reviewer``."""
    pop = _population(registrar, region, members)
    if history:
        _history(pop, reviewer, members)


def _population(registrar: User, region: Region, members: dict[str, Member]) -> simulator.Population:
    wearers = Member.objects.filter(
        Q(is_volunteer=True) | Q(is_elder=True),
        pk__in=[m.pk for m in members.values()],
        home_region=region,  # as they live now (someone may have moved away)
    ).order_by("pk")
    volunteers: list[simulator.SimDevice] = []
    elders: list[simulator.SimDevice] = []
    for number, member in enumerate(wearers, start=1):
        registered = services.device_register(
            actor=registrar,
            member=member,
            identifier=f"wb-yd-{number:03d}",
            kind=DeviceKind.WRISTBAND,
            model=DEVICE_MODEL,
            firmware=DEVICE_FIRMWARE,
        )
        assert registered.secret is not None
        device = simulator.SimDevice(
            identifier=registered.device.identifier,
            device_id=registered.device.pk,
            member_id=member.pk,
            secret=bytes.fromhex(registered.secret),
        )
        (volunteers if member.is_volunteer else elders).append(device)
        if member.is_volunteer and member.is_elder:
            elders.append(device)  # 徐桂芳 volunteers, and is visited too: one wristband
    hub = services.gateway_create(actor=registrar, identifier=GATEWAY, name=GATEWAY_NAME, region=region)
    return simulator.Population(volunteers, elders, hub.gateway.pk, GATEWAY, hub.token)


def _history(pop: simulator.Population, reviewer: User, members: dict[str, Member]) -> None:
    sim = simulator.Simulator(pop, seed=SEED)
    now = timezone.now()
    seen = _services_seen(sim, now) + _unplanned_seen(sim, members, now) + _street_seen(sim, now)
    _upload(pop, sim.events(seen))
    # The seeding is one transaction with nothing ingesting meanwhile: no batch can commit late, so the
    # deriver need not wait for events to settle (on PostgreSQL it would otherwise see none of them yet).
    presence.sessions_derive(settle_seconds=0)
    _dismiss(reviewer, members)


def _services_seen(sim: simulator.Simulator, now: dt.datetime) -> list[simulator.Observation]:
    """The services of the last two weeks as the two wristbands saw them, from check-in to check-out — but a
    wristband left at home now and then, a volunteer leaving well before checking out now and then, and the
    first service in the station's review queue one of those."""
    worn = {d.member_id: d for d in sim.pop.devices}
    orders = list(
        ServiceOrder.objects.filter(
            volunteer_id__in=worn,
            elder_id__in=worn,
            checked_in_at__gte=now - dt.timedelta(days=SENSING_DAYS),
            checked_out_at__isnull=False,
        ).order_by("checked_in_at", "pk")
    )
    showcase = next((o.pk for o in orders if o.status == Status.CONFIRMED), None)
    seen: list[simulator.Observation] = []
    for number, order in enumerate(orders):
        assert order.volunteer_id is not None
        assert order.checked_in_at is not None and order.checked_out_at is not None
        if order.pk != showcase and number % FORGOT_WRISTBAND == FORGOT_WRISTBAND - 1:
            continue
        start = presence.to_ms(order.checked_in_at) + sim.rng.randint(0, 90) * SECOND
        end = presence.to_ms(order.checked_out_at) - sim.rng.randint(0, 90) * SECOND
        if order.pk == showcase or number % LEFT_EARLY == LEFT_EARLY // 2:
            end -= sim.rng.randint(15, 25) * MINUTE
        if end - start >= 10 * MINUTE:
            seen += sim.visit(worn[order.volunteer_id], worn[order.elder_id], start, (end - start) / MINUTE)
    return seen


def _unplanned_seen(
    sim: simulator.Simulator, members: dict[str, Member], now: dt.datetime
) -> list[simulator.Observation]:
    """Visits nobody planned: no service of the pair near them."""
    worn = {d.member_id: d for d in sim.pop.devices}
    seen: list[simulator.Observation] = []
    for volunteer, elder, days_ago, (hour, minute), minutes, _reason in UNPLANNED:
        start = _local(timezone.localdate() - dt.timedelta(days=days_ago), hour, minute)
        end = start + dt.timedelta(minutes=minutes)
        v, e = members[volunteer], members[elder]
        if end > now or v.pk not in worn or e.pk not in worn or _planned(v, e, start, end):
            continue
        seen += sim.visit(worn[v.pk], worn[e.pk], presence.to_ms(start), minutes)
    return seen


def _street_seen(sim: simulator.Simulator, now: dt.datetime) -> list[simulator.Observation]:
    """People passing each other in the street, twice a day, the last a moment ago (so that what ended a
    while back is known to have ended); the wristbands' heartbeats of the last days."""
    pop, rng = sim.pop, sim.rng
    now_ms = presence.to_ms(now)
    seen: list[simulator.Observation] = []
    for days_ago in range(SENSING_DAYS, -1, -1):
        midnight = presence.to_ms(_local(timezone.localdate() - dt.timedelta(days=days_ago), 0))
        for _ in range(2):
            at = midnight + rng.randint(7 * 60, 21 * 60) * MINUTE
            if at < now_ms - 10 * MINUTE:
                seen += sim.walk_by(rng.choice(pop.volunteers), rng.choice(pop.elders), at)
    seen += sim.walk_by(pop.volunteers[0], pop.elders[0], now_ms - 5 * MINUTE)
    for device in pop.devices:
        seen += sim.heartbeats(device, now_ms - HEARTBEAT_DAYS * simulator.DAY_MS, now_ms)
    return seen


def _upload(pop: simulator.Population, events: list[dict[str, Any]]) -> None:
    """The hub's uploads through the one ingestion, each day's judged by the clock of that day."""
    by_day: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_day[event["ts"] // simulator.DAY_MS].append(event)
    for day in sorted(by_day):
        simulator.send_db(pop, by_day[day])


def _local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, minute)))


def _planned(volunteer: Member, elder: Member, start: dt.datetime, end: dt.datetime) -> bool:
    """Whether a service of the pair comes within two hours of ``start``–``end``."""
    margin = dt.timedelta(hours=2)
    return ServiceOrder.objects.filter(
        volunteer=volunteer,
        elder=elder,
        window_start__lt=end + margin,
        window_end__gt=start - margin,
    ).exists()


def _dismiss(reviewer: User, members: dict[str, Member]) -> None:
    """The station dismisses the unplanned visits that were no service, the day after."""
    for volunteer, elder, _days_ago, _start, _minutes, reason in UNPLANNED:
        if not reason:
            continue
        session = PresenceSession.objects.filter(
            volunteer=members[volunteer], elder=members[elder], candidate=Candidate.PENDING
        ).first()
        if session is None or session.ended_at is None:
            continue
        with clock.replay_at(min(session.ended_at + dt.timedelta(hours=14), timezone.now())):
            presence.candidate_dismiss(actor=reviewer, session=session, reason=reason)


def sensors_note() -> str:
    """One line for the demo's summary: the hub, and how to send more visits while the demo runs."""
    gateway = (
        Gateway.objects.filter(identifier=GATEWAY, revoked_at__isnull=True).select_related("region").first()
    )
    if gateway is None or gateway.region is None:
        return ""
    every = sensing_setting("SENSING_DERIVE_EVERY_SECONDS")
    derived = (
        f"`timebank serve` derives sessions every {every} s"
        if every > 0
        else "then `timebank sensing derive`"
    )
    return (
        f"Sensors: wristbands in {gateway.region.name}, its station's hub {gateway.identifier}; send a day "
        f"of visits to the running demo with `timebank sensing simulate --to http --region "
        f"{gateway.region.code} --by community --days 1` ({derived})."
    )
