"""Deriving in one go or in any number of runs gives the same sessions: the state carried between runs (open
sessions, watermark, last event id, and the finished sessions in the database) is all there is."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from timebank.sensing.sessions import DB_ID, DIRTY, Finished, OpenSession
from timebank.sensing.tests.sessions_kit import run_in_pieces, sightings

# Mostly one pair (both ways round), so that its sessions meet, merge and catch late sightings; a second
# pair, two volunteers (no pair) and the volunteer-and-elder couple now and then.
PAIRS = [(1, 11), (11, 1)] * 4 + [(2, 11), (1, 12), (1, 2), (21, 31)]


def finished_content(finished: list[Finished]) -> list[tuple[object, ...]]:
    return sorted(
        (
            f.key,
            f.start_ms,
            f.last_ms,
            f.first_event_id,
            f.last_event_id,
            f.volunteer_side,
            f.elder_side,
            f.lag_ms,
            f.blip,
        )
        for f in finished
    )


def open_content(open_: dict[int, list[OpenSession]]) -> list[tuple[object, ...]]:
    return sorted(
        (key, *(v for i, v in enumerate(s) if i not in (DB_ID, DIRTY)))
        for key, ss in open_.items()
        for s in ss
    )


# Mostly moving forward in steps of a few seconds, sometimes jumping back (a late upload) or ahead (silence).
steps = st.one_of(
    st.integers(min_value=0, max_value=30),
    st.integers(min_value=0, max_value=30),
    st.integers(min_value=-600, max_value=-1),
    st.integers(min_value=100, max_value=900),
)
sighting = st.tuples(steps, st.sampled_from(PAIRS), st.sampled_from([-90, -76, -75, -60, -40]))


def timeline(moves: list[tuple[int, tuple[int, int], int]]) -> list[tuple[int, int, int, int]]:
    t = 10_000
    items = []
    for step, (a, b), rssi in moves:
        t += step
        items.append((t, a, b, rssi))
    return items


@settings(max_examples=300, deadline=None)
@given(
    moves=st.lists(sighting, max_size=200),
    cut_fractions=st.lists(st.floats(min_value=0, max_value=1), max_size=6),
    lateness_s=st.sampled_from([0, 30, 300]),
    gap_s=st.sampled_from([20, 120]),
    min_s=st.sampled_from([0, 60, 300]),
)
def test_one_run_or_many_give_the_same_sessions(moves, cut_fractions, lateness_s, gap_s, min_s):
    # given a sequence of sightings (times wandering forward, with late ones) cut into pieces anywhere
    rows = sightings(*timeline(moves))
    cuts = [int(f * len(rows)) for f in cut_fractions]

    # when derived in one run and in pieces
    whole = run_in_pieces(rows, [], lateness_s=lateness_s, gap_s=gap_s, min_s=min_s)
    pieces = run_in_pieces(rows, cuts, lateness_s=lateness_s, gap_s=gap_s, min_s=min_s)

    # then the same sessions finished, the same are open, and the watermark and cursor agree
    assert finished_content(pieces.finished) == finished_content(whole.finished)
    assert open_content(pieces.open) == open_content(whole.open)
    assert (pieces.watermark_ms, pieces.last_event_id) == (whole.watermark_ms, whole.last_event_id)


@settings(max_examples=200, deadline=None)
@given(moves=st.lists(sighting, max_size=150))
def test_sessions_of_a_pair_are_well_formed(moves):
    deriver = run_in_pieces(sightings(*timeline(moves)), [], lateness_s=30)
    for f in deriver.finished:
        assert f.start_ms <= f.last_ms
        assert f.first_event_id <= f.last_event_id
        assert f.volunteer_side + f.elder_side >= 1
        assert f.blip == (f.last_ms - f.start_ms < f.min_ms)
