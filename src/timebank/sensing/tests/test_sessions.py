"""Deriving co-presence sessions from hand-made sightings with known answers: a visit, gaps merged and split,
blips, weak signals, several pairs at once, clock drift, late sightings and the watermark. Gap 120 s, minimum
300 s, threshold -75 dBm unless said otherwise; times in seconds."""

from __future__ import annotations

from timebank.sensing.sessions import LAST, START, pair_key
from timebank.sensing.tests.sessions_kit import FakeResolver, in_time_order, run, shape, sightings, visit


def test_a_visit_seen_from_both_sides_is_one_session():
    # given an hour in which volunteer 1 and elder 11 see each other every 10 s, and later someone else
    rows = sightings(*visit(1, 11, 0, 3600), (4000, 2, 12))

    # when derived
    deriver = run(rows)

    # then one session from the first sighting to the last, counted from both sides
    (visit_session, other) = deriver.finished
    assert shape(visit_session) == (1, 11, 0, 3600, False)
    assert (visit_session.volunteer_side, visit_session.elder_side) == (361, 361)
    assert shape(other) == (2, 12, 4000, 4000, True)


def test_a_gap_shorter_than_the_merge_gap_is_merged():
    # given a visit with 100 s of silence in the middle (the volunteer stepped out)
    rows = sightings(*visit(1, 11, 0, 600), *visit(1, 11, 700, 1200))

    # then it is one session
    assert [shape(f) for f in run(rows).finished] == [(1, 11, 0, 1200, False)]


def test_a_gap_longer_than_the_merge_gap_splits_the_session():
    # given 200 s of silence
    rows = sightings(*visit(1, 11, 0, 600), *visit(1, 11, 800, 1400))

    # then two sessions
    assert [shape(f) for f in run(rows).finished] == [(1, 11, 0, 600, False), (1, 11, 800, 1400, False)]


def test_a_blip_is_kept_apart_and_a_session_at_the_minimum_counts():
    # given a volunteer passing an elder's door for a minute, and a visit of exactly the minimum
    rows = sightings(*visit(1, 11, 0, 60), *visit(1, 12, 1000, 1300))

    # then the first is a blip and the second is not
    assert [shape(f) for f in run(rows).finished] == [(1, 11, 0, 60, True), (1, 12, 1000, 1300, False)]


def test_weak_sightings_are_ignored():
    # given a visit whose middle is seen only weakly (through a wall: -80 dBm), longer than the gap
    rows = sightings(*visit(1, 11, 0, 600), *visit(1, 11, 610, 1000, rssi=-80), *visit(1, 11, 1010, 1400))

    # when derived
    deriver = run(rows)

    # then the weak stretch neither joins nor counts, and a signal at the threshold counts
    assert [shape(f) for f in deriver.finished] == [(1, 11, 0, 600, False), (1, 11, 1010, 1400, False)]
    assert deriver.counts.weak == 2 * 40
    assert [shape(f) for f in run(sightings((0, 1, 11, -75), (400, 1, 11, -75))).finished] == [
        (1, 11, 0, 0, True),
        (1, 11, 400, 400, True),
    ]


def test_only_a_volunteer_and_an_elder_make_a_pair_whichever_device_saw_the_other():
    # given two volunteers together, two elders together, and an elder's wristband seeing a volunteer's
    rows = sightings(*visit(1, 2, 0, 600), *visit(11, 12, 0, 600), *[(t, 11, 3) for t in range(0, 601, 10)])

    # when derived
    deriver = run(rows)

    # then only the elder and the volunteer have a session, seen from the elder's side only
    (only,) = deriver.finished
    assert shape(only) == (3, 11, 0, 600, False)
    assert (only.volunteer_side, only.elder_side) == (0, 61)
    assert deriver.counts.unpaired == 2 * 2 * 61 + 1  # and the traffic that closes the run


def test_a_member_who_is_both_volunteer_and_elder_is_the_elder_of_a_younger_one():
    rows = sightings(*visit(21, 31, 0, 600))
    assert [shape(f) for f in run(rows).finished] == [(21, 31, 0, 600, False)]


def test_one_volunteer_near_two_elders_and_two_volunteers_near_one_elder():
    # given volunteer 1 with elders 11 and 12 at once (a couple), then volunteers 2 and 3 with elder 13
    rows = sightings(
        *in_time_order(
            visit(1, 11, 0, 1800),
            visit(1, 12, 600, 1800),
            visit(2, 13, 3000, 4800),
            visit(3, 13, 3600, 4200),
        )
    )

    # then each pair has its own session over its own time
    assert sorted(shape(f) for f in run(rows).finished) == [
        (1, 11, 0, 1800, False),
        (1, 12, 600, 1800, False),
        (2, 13, 3000, 4800, False),
        (3, 13, 3600, 4200, False),
    ]


def test_clock_drift_below_the_gap_stretches_the_session_by_the_drift():
    # given the elder's wristband 20 s behind the volunteer's phone
    rows = sightings(*visit(1, 11, 0, 1800, drift=20))

    # then the two sides make one session, 20 s longer at the start than either alone
    (only,) = run(rows).finished
    assert shape(only) == (1, 11, -20, 1800, False)
    assert (only.volunteer_side, only.elder_side) == (181, 181)


def test_clock_drift_beyond_the_gap_still_ends_in_one_session():
    # given a wristband 200 s behind (more than the gap; ingestion accepts up to 300 s of skew)
    rows = sightings(*visit(1, 11, 0, 1800, drift=200))

    # when the first few minutes are derived, each side has a session of its own
    early = run(rows[:10], close=False)
    assert sorted((s[START], s[LAST]) for s in early.open[pair_key(1, 11)]) == [
        (-200_000, -160_000),
        (0, 40_000),
    ]

    # then as soon as one side's sighting falls within the gap of both, they merge into one
    (only,) = run(rows).finished
    assert shape(only) == (1, 11, -200, 1800, False)
    assert (only.volunteer_side, only.elder_side) == (181, 181)


def test_the_rules_are_read_once_per_pair_and_day():
    resolver = FakeResolver()
    run(sightings(*visit(1, 11, 0, 3600), *visit(1, 11, 86_400, 87_000)), resolver)
    assert resolver.params_calls == 2


def test_a_session_stays_open_until_the_watermark_passes_its_gap_and_the_lateness():
    # given a visit ending at 600 s, then other pairs' sightings at 700 s and 800 s
    rows = sightings(*visit(1, 11, 0, 600), (700, 2, 12), (800, 2, 12))

    # when the watermark is 100 s past the end (within gap 120 + lateness 60), the session is open
    deriver = run(rows[:-1], lateness_s=60, close=False)
    assert deriver.finished == []
    assert deriver.open[pair_key(1, 11)][0][LAST] == 600_000

    # then 200 s past the end it is finished
    deriver.feed(rows[-1:])
    deriver.close_idle()
    assert [shape(f) for f in deriver.finished] == [(1, 11, 0, 600, False)]


def test_a_late_sighting_within_the_lateness_still_extends_the_session():
    # given a visit, another pair seen 150 s after its end, then a late sighting of the visit 50 s after it
    rows = sightings(*visit(1, 11, 0, 600), (750, 2, 12), (650, 1, 11))

    # then (gap 120 + lateness 60 = 180 > 150) the late sighting joins the session
    (visit_session,) = [f for f in run(rows, lateness_s=60).finished if f.key == pair_key(1, 11)]
    assert shape(visit_session) == (1, 11, 0, 650, False)


def test_a_late_sighting_inside_a_finished_session_is_dropped():
    # given a visit that finished, then the volunteer's phone uploading what it saw during the visit
    rows = sightings(*visit(1, 11, 0, 600), (1000, 2, 12), (300, 1, 11), (650, 1, 11))

    # when derived
    deriver = run(rows)

    # then the session stands as it was and the two late sightings are counted
    assert [shape(f) for f in deriver.finished if f.key == pair_key(1, 11)] == [(1, 11, 0, 600, False)]
    assert deriver.counts.late == 2


def test_a_buffered_upload_hours_late_makes_its_own_session():
    # given live traffic up to 10 h, then a gateway uploading a 20-minute visit of 2 h earlier
    live = [(t, 2, 12) for t in range(30_000, 36_001, 60)]
    buffered = [(t, 1, 11) for t in range(28_800, 30_001, 10)]
    rows = sightings(*live, *buffered, (36_100, 2, 12), (36_700, 2, 12))

    # when derived in one go
    deriver = run(rows, lateness_s=60)

    # then the buffered visit is a session of its own, not a string of blips
    assert [shape(f) for f in deriver.finished if f.key == pair_key(1, 11)] == [
        (1, 11, 28_800, 30_000, False)
    ]


def test_a_late_sighting_before_an_open_session_opens_another():
    # given a visit going on, and a visit of the same pair an hour earlier uploaded late
    rows = sightings(*visit(1, 11, 3600, 4000), *visit(1, 11, 100, 500))

    # when derived without the watermark moving on
    deriver = run(rows, lateness_s=60, close=False)

    # then both are open sessions of the pair, and both finish as sessions in their own right
    assert sorted((s[START], s[LAST]) for s in deriver.open[pair_key(1, 11)]) == [
        (100_000, 500_000),
        (3_600_000, 4_000_000),
    ]
    assert sorted(shape(f) for f in run(rows, lateness_s=60).finished) == [
        (1, 11, 100, 500, False),
        (1, 11, 3600, 4000, False),
    ]


def test_a_sighting_that_bridges_two_open_sessions_merges_them():
    # given a live session, a late one 200 s before it (both open), then a late sighting between them
    rows = sightings((1000, 1, 11), (1100, 1, 11), (800, 1, 11), (700, 1, 11), (900, 1, 11))
    deriver = run(rows[:-1], lateness_s=1000, close=False)
    assert sorted((s[START], s[LAST]) for s in deriver.open[pair_key(1, 11)]) == [
        (700_000, 800_000),
        (1_000_000, 1_100_000),
    ]

    # when the bridging sighting comes
    deriver.feed(rows[-1:])

    # then one session covers both
    assert [(s[START], s[LAST]) for s in deriver.open[pair_key(1, 11)]] == [(700_000, 1_100_000)]
