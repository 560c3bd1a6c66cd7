"""Deriving sessions in the database: a visit becomes a session with the service's measured time; one run or
many give the same rows; the cursor moves on; the rules come from the elder's policy, read once per community
and day."""

from __future__ import annotations

import datetime as dt

import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from timebank.care import services as care
from timebank.care.tests.conftest import at, member, user_of
from timebank.care.tests.flows import jinyang_elder_with_savings, jinyang_volunteer
from timebank.sensing.models import Candidate, PresenceSession, SessionCursor, SessionStatus
from timebank.sensing.presence import sessions_derive
from timebank.sensing.presence_selectors import order_measured
from timebank.sensing.tests.presence_kit import *  # noqa: F403
from timebank.sensing.tests.presence_kit import rows, rules_for
from timebank.web.tests.care_fixtures import *  # noqa: F403

MIN = dt.timedelta(minutes=1)


def test_a_visit_becomes_a_session_with_the_services_measured_time(confirmed, helper, old_elder, events):
    # given a service tomorrow 10:00–11:00 that the elder confirmed, and the two seen together 10:02–10:58
    order = confirmed(hour=10, minutes=60)
    start = at(1, 10)
    seen = events.together(helper, old_elder, start + 2 * MIN, start + 58 * MIN)

    # when derived, with traffic of others an hour later
    report = sessions_derive(sightings=seen + events.later(start + 120 * MIN), auto_approve=False)

    # then one closed session, matched to the service, measures 56 minutes against 60 claimed
    (session,) = PresenceSession.objects.all()
    assert (session.status, session.order_id, session.candidate) == (SessionStatus.CLOSED, order.pk, "")
    assert (session.started_at, session.ended_at) == (start + 2 * MIN, start + 58 * MIN)
    assert session.measured_seconds == 56 * 60
    assert (session.volunteer_sightings, session.elder_sightings) == (113, 113)
    measured = order_measured(order)
    assert measured is not None
    assert (measured.minutes, measured.claimed_minutes, measured.difference) == (56, 60, -4)
    assert measured.session_ids == (session.pk,)
    assert measured.agrees()  # the Shanghai preset's tolerance is 10 minutes
    assert (report.sightings, report.closed, report.matched, report.candidates) == (227, 1, 1, 0)


def test_a_visit_going_on_is_an_open_session_that_already_measures(post, helper, old_elder, events):
    # given a service in progress (the volunteer checked in at 10:00 tomorrow) and sightings until 10:40
    order = care.order_accept(actor=user_of(helper), order=post())
    with time_machine.travel(at(1, 10), tick=False):
        care.order_check_in(actor=user_of(helper), order=order)

    # when derived while the visit goes on
    sessions_derive(
        sightings=events.together(helper, old_elder, at(1, 10), at(1, 10, 40)), auto_approve=False
    )

    # then the session is open, matched, and the service shows 40 minutes so far
    (session,) = PresenceSession.objects.all()
    assert (session.status, session.ended_at, session.order_id) == (SessionStatus.OPEN, None, order.pk)
    measured = order_measured(order)
    assert measured is not None and measured.minutes == 40 and measured.claimed_minutes is None


def test_one_run_or_many_give_the_same_rows(helper, neighbour_helper, old_elder, events):
    # given two volunteers' visits, one with a long break, sightings uploaded late, and later traffic
    day = at(-1, 9)
    sightings = (
        events.together(helper, old_elder, day, day + 30 * MIN)
        + events.together(neighbour_helper, old_elder, day + 20 * MIN, day + 50 * MIN, every=45)
        + events.together(helper, old_elder, day + 40 * MIN, day + 70 * MIN)
        + events.together(helper, old_elder, day + 5 * MIN, day + 25 * MIN, every=17)  # late: dropped
        + events.together(helper, old_elder, day - 120 * MIN, day - 90 * MIN)  # buffered: its own session
        + events.later(day + 200 * MIN)
        + events.together(neighbour_helper, old_elder, day + 210 * MIN, day + 215 * MIN)
    )

    # when derived in one run
    sessions_derive(sightings=sightings, auto_approve=False)
    whole = rows()
    cursor = SessionCursor.objects.get()
    whole_cursor = (cursor.last_event_id, cursor.watermark_ms)

    # and again from nothing, in five runs cut anywhere
    PresenceSession.objects.all().delete()
    SessionCursor.objects.all().delete()
    for low, high in [(0, 7), (7, 150), (150, 151), (151, 400), (400, len(sightings))]:
        sessions_derive(sightings=sightings[low:high], auto_approve=False)

    # then the rows are the same, and so is where the cursor stands
    assert rows() == whole
    cursor = SessionCursor.objects.get()
    assert (cursor.last_event_id, cursor.watermark_ms) == whole_cursor
    # 李志强's two (split by his break), 陈美华's, the buffered one, and her short visit still open
    assert sorted(str(row[5]) for row in whole) == [SessionStatus.CLOSED] * 4 + [SessionStatus.OPEN]


def test_sightings_already_read_are_not_read_again(helper, old_elder, events):
    sightings = events.together(helper, old_elder, at(-1, 9), at(-1, 10)) + events.later(at(-1, 12))
    first = sessions_derive(sightings=sightings, auto_approve=False)
    before = rows()

    again = sessions_derive(sightings=sightings, auto_approve=False)

    assert first.sightings == len(sightings) and again.sightings == 0
    assert rows() == before


def test_the_threshold_is_the_elders_communitys(helper, old_elder, hongkou_staff, tree, events):
    # given Hongkou's rules asking for a stronger signal (-50 dBm), and an elder and a volunteer of 晋阳
    rules_for(tree["310109"], "paper-tiered", sensing_rssi_threshold_dbm=-50)
    jinyang_elder = jinyang_elder_with_savings(hongkou_staff, tree["310109018021"])
    jinyang_helper = jinyang_volunteer(hongkou_staff, tree["310109018021"])

    # when both pairs are seen at -60 dBm for an hour
    report = sessions_derive(
        sightings=events.together(helper, old_elder, at(-1, 9), at(-1, 10))
        + events.together(jinyang_helper, jinyang_elder, at(-1, 9), at(-1, 10))
        + events.later(at(-1, 12)),
        auto_approve=False,
    )

    # then only the 雁荡 pair was together; the 晋阳 sightings were too weak
    assert list(PresenceSession.objects.values_list("elder_id", flat=True)) == [old_elder.pk]
    assert report.weak == 2 * 121


def test_the_rules_are_read_once_per_community_and_day(helper, old_elder, events):
    # given a short and a long run of sightings on one day
    short = events.together(helper, old_elder, at(-2, 9), at(-2, 9, 5))
    long = events.together(helper, old_elder, at(-1, 9), at(-1, 17), every=10)

    # when each is derived
    with CaptureQueriesContext(connection) as few:
        sessions_derive(sightings=short, auto_approve=False)
    with CaptureQueriesContext(connection) as many:
        sessions_derive(sightings=long, auto_approve=False)

    # then the number of queries does not grow with the sightings (5,762 of them)
    assert len(long) > 5000
    assert len(many.captured_queries) <= len(few.captured_queries) + 2


def test_a_member_without_a_policy_has_no_session(admin_user, tree, events):
    # given a volunteer and an elder of 雁荡 with no policy anywhere above them
    elder = member(admin_user, tree["310101023001"], "孤老", birth=dt.date(1940, 1, 1), is_elder=True)
    volunteer = member(admin_user, tree["310101023001"], "志愿", birth=dt.date(1990, 1, 1), is_volunteer=True)

    report = sessions_derive(
        sightings=events.together(volunteer, elder, at(-1, 9), at(-1, 10)), auto_approve=False
    )

    assert not PresenceSession.objects.exists()
    assert report.no_policy == 2 * 121


def test_a_blip_is_kept_as_a_blip_and_is_no_candidate(helper, old_elder, events):
    sessions_derive(
        sightings=events.together(helper, old_elder, at(-1, 9), at(-1, 9, 2)) + events.later(at(-1, 12)),
        auto_approve=False,
    )
    (blip,) = PresenceSession.objects.all()
    assert (blip.status, blip.candidate, blip.order_id) == (SessionStatus.BLIP, Candidate.NONE, None)
