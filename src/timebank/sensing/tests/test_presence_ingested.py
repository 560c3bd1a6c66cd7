"""From stored events to sessions: signed events of two wristbands ingested through a station hub are read by
``sessions_derive`` through the ingestion's own sightings reader (and by ``timebank sensing derive``)."""

from __future__ import annotations

import datetime as dt
import io

from django.core.management import call_command

from timebank.care.tests.conftest import at
from timebank.sensing import ingest
from timebank.sensing.models import Candidate, PresenceSession, SessionCursor
from timebank.sensing.presence import sessions_derive, to_ms
from timebank.sensing.tests.conftest import wear
from timebank.sensing.tests.presence_kit import *  # noqa: F403
from timebank.web.tests.care_fixtures import *  # noqa: F403


def test_stored_events_become_a_session(hub, yandang_staff, helper, old_elder):
    # given 李志强's and 王阿婆's wristbands seeing each other every 30 s yesterday 15:00–15:40, uploaded by
    # the station's hub, and a later heartbeat-with-a-peer from another pair to move time on
    his, hers = wear(yandang_staff, helper, "wb-1001"), wear(yandang_staff, old_elder, "wb-2001")
    start = at(-1, 15)
    events = []
    for n in range(81):
        ts = to_ms(start + dt.timedelta(seconds=30 * n))
        events.append(his.event(n + 1, [(hers.identifier, -58)], ts=ts))
        events.append(hers.event(n + 1, [(his.identifier, -61)], ts=ts + 700))
    events.append(his.event(200, [(hers.identifier, -90)], ts=to_ms(at(-1, 18))))
    result = ingest.gateway_events_ingest(gateway_id=hub.gateway.pk, events=events, channel="http")
    assert result.accepted == len(events)

    # when the sessions are derived from what is stored
    report = sessions_derive()

    # then one session 15:00–15:40:00.7, seen from both sides, waiting as unplanned help
    (session,) = PresenceSession.objects.all()
    assert (session.volunteer_id, session.elder_id, session.candidate) == (
        helper.pk,
        old_elder.pk,
        Candidate.PENDING,
    )
    assert (session.started_at, session.ended_at) == (
        start,
        start + dt.timedelta(minutes=40, milliseconds=700),
    )
    assert (session.volunteer_sightings, session.elder_sightings) == (81, 81)
    assert (report.sightings, report.weak) == (163, 1)
    assert SessionCursor.objects.get().last_event_id == report.last_event_id

    # and a second run finds nothing new
    assert sessions_derive().sightings == 0


def test_the_command_derives_and_says_what_it_did(policies):
    out = io.StringIO()
    call_command("sensing", "derive", "--no-auto-approve", stdout=out)
    assert out.getvalue().startswith("read 0 sightings up to event 0")
