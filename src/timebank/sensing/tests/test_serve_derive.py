"""``timebank serve`` derives co-presence sessions in the background, as it seals the ledger and ticks care:
every ``--derive-every`` seconds (``SENSING_DERIVE_EVERY_SECONDS``, 30; 0: never), a failing round logged and
the server serving on."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

import pytest
from django.contrib.staticfiles.management.commands.runserver import Command as RunServer

from timebank.care.tests.conftest import *  # noqa: F403 (the care fixtures: policies, 王阿婆, 李志强)
from timebank.care.tests.conftest import at
from timebank.cli.management.commands import serve
from timebank.people.models import Member, User
from timebank.sensing import ingest
from timebank.sensing.models import Candidate, PresenceSession
from timebank.sensing.presence import to_ms
from timebank.sensing.tests.conftest import Hub, wear


def options(*args: str) -> dict[str, Any]:
    return vars(serve.Command().create_parser("timebank", "serve").parse_args(list(args)))


def loops_started(monkeypatch: pytest.MonkeyPatch, *args: str) -> dict[str, float]:
    """The background loops ``serve`` starts (by name, with their period), the server itself left out."""
    started: dict[str, float] = {}

    def record(every: float, work: object, what: str) -> None:
        started[what] = every

    monkeypatch.setattr(serve, "_background", record)
    monkeypatch.setattr(RunServer, "inner_run", lambda self, *a, **kw: None)
    serve.Command().inner_run(**options(*args))
    return started


def test_serve_derives_every_thirty_seconds_unless_told_otherwise(monkeypatch, settings):
    assert loops_started(monkeypatch)["sensing derive"] == 30
    assert loops_started(monkeypatch, "--derive-every", "5")["sensing derive"] == 5
    assert "sensing derive" not in loops_started(monkeypatch, "--derive-every", "0")
    # the setting (or TIMEBANK_SENSING_DERIVE_EVERY_SECONDS) changes the default
    settings.SENSING_DERIVE_EVERY_SECONDS = 0
    assert "sensing derive" not in loops_started(monkeypatch)
    assert {"ledger sealing", "care tick", "sensing prune"} <= set(loops_started(monkeypatch))


def test_the_environment_sets_the_period(monkeypatch):
    monkeypatch.setenv("TIMEBANK_SENSING_DERIVE_EVERY_SECONDS", "120")
    assert options()["derive_every"] == 120


def test_a_failing_round_is_logged_and_the_next_one_runs(caplog):
    # given work that fails once, then stops the loop
    stop = threading.Event()
    rounds: list[int] = []

    def work() -> None:
        rounds.append(1)
        if len(rounds) == 1:
            raise RuntimeError("the database went away")
        stop.set()

    # when the loop runs
    with caplog.at_level(logging.ERROR, logger=serve.log.name):
        serve._forever(0.01, work, "sensing derive", stop)
    # then the failure was logged with its traceback, and the loop went on to the next round
    assert len(rounds) == 2
    (record,) = caplog.records
    assert record.getMessage() == "sensing derive failed" and record.exc_info is not None


@pytest.mark.django_db
def test_a_round_derives_the_sessions_from_what_was_stored(
    caplog, hub: Hub, yandang_staff: User, helper: Member, old_elder: Member
):
    # given 李志强's and 王阿婆's wristbands seeing each other yesterday 15:00–15:40, then a later sighting
    his, hers = wear(yandang_staff, helper, "wb-1001"), wear(yandang_staff, old_elder, "wb-2001")
    start = at(-1, 15)
    events = []
    for n in range(81):
        ts = to_ms(start + dt.timedelta(seconds=30 * n))
        events.append(his.event(n + 1, [(hers.identifier, -58)], ts=ts))
        events.append(hers.event(n + 1, [(his.identifier, -61)], ts=ts + 700))
    events.append(his.event(200, [(hers.identifier, -90)], ts=to_ms(at(-1, 18))))
    ingest.gateway_events_ingest(gateway_id=hub.gateway.pk, events=events, channel="http")
    # when a round of serve's loop runs
    with caplog.at_level(logging.INFO, logger=serve.log.name):
        serve._sensing_derive()
    # then the visit is a session, waiting as unplanned help (no service explains it), and the log says so
    session = PresenceSession.objects.get()
    assert (session.volunteer_id, session.elder_id, session.candidate) == (
        helper.pk,
        old_elder.pk,
        Candidate.PENDING,
    )
    assert "sensing derive: 163 sightings" in caplog.text and "1 unplanned" in caplog.text
