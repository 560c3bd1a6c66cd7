"""Fixtures for the care pages' tests: the care package's own people and policies (the Shanghai policy,
瑞金二路 station staff, 王阿婆 with savings and a sign-in, the volunteer 李志强, her son with a
verified bond), a browser per person, and services brought to a given state through the real services.

Test modules take them with ``from timebank.web.tests.care_fixtures import *``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone, translation

from timebank.care import services as care
from timebank.care.models import ConfirmMethod, ServiceOrder
from timebank.care.tests.conftest import *  # noqa: F403 (the care fixtures, for the tests that import these)
from timebank.care.tests.conftest import at, deposit, member, user_of
from timebank.common.units import format_minutes
from timebank.people.models import Member, User
from timebank.regions.models import Region


@pytest.fixture
def browser(db: None) -> Callable[[User], Client]:
    """A signed-in browser of its own for each person (so several people can take turns in one test)."""

    def open_for(user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return open_for


@contextmanager
def at_time(client: Client, user: User, moment: dt.datetime) -> Iterator[Client]:
    """``client`` at ``moment`` (the clock stands still), signed in afresh: a sign-in lasts 8 hours."""
    with time_machine.travel(moment, tick=False):
        client.force_login(user)
        yield client


def zh_minutes(minutes: int) -> str:
    """Minutes as a Chinese page shows them."""
    with translation.override("zh-hans"):
        return format_minutes(minutes)


def done(order: ServiceOrder, volunteer: Member, start: dt.datetime, end: dt.datetime) -> ServiceOrder:
    """The volunteer checks in at ``start`` and out at ``end`` in the app."""
    with time_machine.travel(start, tick=False):
        order = care.order_check_in(actor=user_of(volunteer), order=order)
    with time_machine.travel(end, tick=False):
        return care.order_check_out(actor=user_of(volunteer), order=order)


@pytest.fixture
def confirmed(
    post: Callable[..., ServiceOrder], helper: Member, old_elder: Member
) -> Callable[..., ServiceOrder]:
    """A service of 王阿婆 taken by 李志强, given tomorrow from ``hour`` for ``minutes`` and confirmed
    by her on her own phone: it waits in the station's review queue."""

    def make(hour: int = 10, minutes: int = 60, **overrides: Any) -> ServiceOrder:
        order = post(window_start=at(1, hour), window_end=at(1, hour + 1), **overrides)
        order = care.order_accept(actor=user_of(helper), order=order)
        order = done(order, helper, at(1, hour), at(1, hour) + dt.timedelta(minutes=minutes))
        return care.order_confirm(actor=user_of(order.elder), order=order, method=ConfirmMethod.DEVICE)

    return make


@pytest.fixture
def poor_elder(station: User, tree: dict[str, Region]) -> Member:
    """赵阿公, 86, of 雁荡, with only 1 h 40 min of savings and his own sign-in."""
    m = member(
        station,
        tree["310101023001"],
        "赵阿公",
        birth=dt.date(1940, 1, 1),
        sex="M",
        login="zhao-agong",
        is_elder=True,
    )
    deposit(m, 100)
    return Member.objects.get(pk=m.pk)


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, minute)))
