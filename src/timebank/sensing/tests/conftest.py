"""Sensing test helpers: a volunteer and an elder of 雁荡 wearing wristbands, a station hub of 雁荡 and one of
晋阳, and signed events. Every test starts with a fresh registry cache and reads without the horizon
(``SENSING_SETTLE_SECONDS = 0``)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from timebank.conftest import make_id_number
from timebank.people import services as people
from timebank.people.models import Member, User
from timebank.regions.models import Region
from timebank.sensing import partitions, services, signing
from timebank.sensing.models import Device, Gateway
from timebank.sensing.registry import registry


@pytest.fixture(autouse=True)
def _sensing_fresh(settings) -> Iterator[None]:
    settings.SENSING_SETTLE_SECONDS = 0
    registry.reset()
    partitions.forget_known()
    yield
    registry.reset()
    partitions.forget_known()


@dataclass
class Worn:
    device: Device
    secret: bytes

    @property
    def identifier(self) -> str:
        return self.device.identifier

    def event(
        self,
        seq: int,
        peers: list[tuple[str, int]] | tuple[tuple[str, int], ...] = (),
        *,
        ts: int | None = None,
        battery: int | None = None,
    ) -> dict[str, object]:
        return signing.event_sign(
            device=self.identifier,
            seq=seq,
            ts=now_ms() if ts is None else ts,
            peers=list(peers),
            battery=battery,
            secret=self.secret,
        )


def now_ms() -> int:
    return int(time.time() * 1000)


def wear(actor: User, member: Member, identifier: str, kind: str = "wristband") -> Worn:
    registered = services.device_register(actor=actor, member=member, identifier=identifier, kind=kind)
    assert registered.secret is not None
    return Worn(registered.device, bytes.fromhex(registered.secret))


@pytest.fixture
def volunteer(yandang_staff: User, tree: dict[str, Region]) -> Member:
    return people.member_register(
        actor=yandang_staff,
        name="王志愿",
        home_region=tree["310101023001"],
        mobile="13901000021",
        id_number=make_id_number(dt.date(1990, 1, 2), "F", serial=21),
        is_volunteer=True,
    )


@pytest.fixture
def band_v(yandang_staff: User, volunteer: Member) -> Worn:
    return wear(yandang_staff, volunteer, "wb-00017")


@pytest.fixture
def band_e(yandang_staff: User, elder: Member) -> Worn:
    return wear(yandang_staff, elder, "wb-00031")


@dataclass
class Hub:
    gateway: Gateway
    token: str


@pytest.fixture
def hub(yandang_staff: User, tree: dict[str, Region]) -> Hub:
    issued = services.gateway_create(
        actor=yandang_staff, identifier="st-yandang-1", name="雁荡站", region=tree["310101023001"]
    )
    return Hub(issued.gateway, issued.token)


@pytest.fixture
def jinyang_hub(jinyang_staff: User, tree: dict[str, Region]) -> Hub:
    issued = services.gateway_create(
        actor=jinyang_staff, identifier="st-jinyang-1", name="晋阳站", region=tree["310109018021"]
    )
    return Hub(issued.gateway, issued.token)
