"""Sightings for the database-level session tests: a volunteer and an elder together from one moment to
another (both devices seeing each other), and traffic of strangers that moves the watermark on. Event ids
count up within a test, as the event table's would."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator

import pytest
from django.utils import translation

from timebank.people.models import Member
from timebank.regions import services as regions
from timebank.regions.models import Policy, Region
from timebank.sensing.models import PresenceSession
from timebank.sensing.selectors import Sighting

NOBODY = 2_000_000_000  # member ids that do not exist: their sightings pair nobody


class Events:
    def __init__(self) -> None:
        self.ids = itertools.count(1)

    def together(
        self,
        volunteer: Member,
        elder: Member,
        start: dt.datetime,
        end: dt.datetime,
        *,
        every: int = 30,
        rssi: int = -60,
        drift: int = 0,
    ) -> list[Sighting]:
        """Both devices see each other every ``every`` seconds from ``start`` to ``end``; the elder's clock
        ``drift`` seconds behind."""
        out = []
        moment = start
        while moment <= end:
            out.append(self.one(moment, volunteer.pk, elder.pk, rssi))
            out.append(self.one(moment - dt.timedelta(seconds=drift), elder.pk, volunteer.pk, rssi))
            moment += dt.timedelta(seconds=every)
        return out

    def later(self, moment: dt.datetime) -> list[Sighting]:
        """Two strangers seen at ``moment``: every session that ended well before it finishes."""
        return [self.one(moment, NOBODY, NOBODY + 1, -50)]

    def one(self, moment: dt.datetime, observer: int, peer: int, rssi: int) -> Sighting:
        return Sighting(
            event_id=next(self.ids),
            at=moment.astimezone(dt.UTC),
            observer_device_id=observer,
            observer_member_id=observer,
            peer_device_id=peer,
            peer_member_id=peer,
            rssi=rssi,
        )


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture(autouse=True)
def sensing_lateness(settings: pytest.FixtureRequest) -> None:
    settings.SENSING_SESSION_LATENESS_SECONDS = 60  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def in_english() -> Iterator[None]:
    """Messages are asserted in English (the catalogues translate them for people)."""
    with translation.override("en"):
        yield


def rules_for(region: Region, preset: str = "shanghai-2026", **changes: object) -> Policy:
    """A new policy version for ``region`` (from 2020): the preset with ``changes``."""
    return regions.policy_create(
        actor=None,
        region=region,
        effective_from=dt.date(2020, 1, 1),
        rules=regions.policy_preset_rules(preset) | changes,
    )


def rows() -> list[tuple[object, ...]]:
    """Every session as the tests compare them (ids and bookkeeping left out)."""
    return sorted(
        PresenceSession.objects.values_list(
            "volunteer_id",
            "elder_id",
            "started_at",
            "last_seen_at",
            "ended_at",
            "status",
            "measured_seconds",
            "volunteer_sightings",
            "elder_sightings",
            "first_event_id",
            "last_event_id",
            "order_id",
            "candidate",
        )
    )
