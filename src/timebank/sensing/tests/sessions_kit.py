"""Hand-made sightings for the derivation tests: members by number, times in seconds, and a resolver that
plays the database (roles, one policy for every day, the sessions earlier runs finished)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from timebank.sensing.sessions import (
    DIRTY,
    Deriver,
    Finished,
    OpenSession,
    Params,
    Row,
    pair_key,
)

DAY_MS = 86_400_000
# volunteers 1–9, elders 11–19; 21 volunteers too, 31 is both (and older than 21)
VOLUNTEERS = {1, 2, 3, 4, 5, 6, 7, 8, 9, 21, 31}
ELDERS = {11, 12, 13, 14, 15, 16, 17, 18, 19, 31}


@dataclass
class FakeResolver:
    threshold: int = -75
    gap_s: int = 120
    min_s: int = 300
    earlier: list[Finished] = field(default_factory=list)  # what earlier runs finished (non-blips)
    params_calls: int = 0

    def pair(self, a: int, b: int) -> int:
        if a in VOLUNTEERS and b in ELDERS and not (b in VOLUNTEERS and a in ELDERS):
            return pair_key(a, b)
        if b in VOLUNTEERS and a in ELDERS and not (a in VOLUNTEERS and b in ELDERS):
            return pair_key(b, a)
        if {a, b} == {21, 31}:
            return pair_key(21, 31)  # the older one is the elder
        return 0

    def params(self, key: int, at_ms: int) -> Params:
        self.params_calls += 1
        day = at_ms // DAY_MS
        return Params(
            day * DAY_MS, (day + 1) * DAY_MS, self.threshold, self.gap_s * 1000, self.min_s * 1000, 7
        )

    def finished_covers(self, key: int, at_ms: int) -> bool:
        return any(
            f.key == key and f.start_ms - f.gap_ms <= at_ms <= f.last_ms + f.gap_ms for f in self.earlier
        )


def sightings(*items: tuple[float, int, int] | tuple[float, int, int, int], first_id: int = 1) -> list[Row]:
    """``(seconds, observer, peer[, rssi])`` in event order → rows (rssi -60 unless given)."""
    ids = itertools.count(first_id)
    return [
        (next(ids), int(item[0] * 1000), item[1], item[2], item[3] if len(item) > 3 else -60)
        for item in items
    ]


def visit(
    volunteer: int,
    elder: int,
    start: float,
    end: float,
    *,
    every: float = 10,
    drift: float = 0,
    rssi: int = -60,
) -> list[tuple[float, int, int, int]]:
    """Both devices seeing each other every ``every`` seconds from ``start`` to ``end``; the elder's clock
    ``drift`` seconds behind."""
    out: list[tuple[float, int, int, int]] = []
    t = start
    while t <= end:
        out.append((t, volunteer, elder, rssi))
        out.append((t - drift, elder, volunteer, rssi))
        t += every
    return out


def in_time_order(*groups: Iterable[tuple[float, int, int, int]]) -> list[tuple[float, int, int, int]]:
    """Several visits interleaved as the events would arrive (by time, stable)."""
    return sorted(itertools.chain(*groups), key=lambda item: item[0])


def shape(f: Finished) -> tuple[int, int, int, int, bool]:
    """(volunteer, elder, start s, end s, blip) of a finished session."""
    return f.volunteer_id, f.elder_id, f.start_ms // 1000, f.last_ms // 1000, f.blip


def run(
    rows: list[Row], resolver: FakeResolver | None = None, *, lateness_s: int = 0, close: bool = True
) -> Deriver:
    """Derive ``rows`` in one go; unless ``close`` is false, traffic of two other volunteers a day after the
    last sighting then moves the watermark on, so that every session finishes."""
    deriver = Deriver(resolver or FakeResolver(), lateness_ms=lateness_s * 1000)
    deriver.feed(rows)
    if close and rows:
        deriver.feed([(rows[-1][0] + 1, max(r[1] for r in rows) + DAY_MS, 8, 9, -50)])
    deriver.close_idle()
    return deriver


def run_in_pieces(
    rows: list[Row], cuts: Iterable[int], *, lateness_s: int = 0, gap_s: int = 120, min_s: int = 300
) -> Deriver:
    """Derive ``rows`` in pieces cut at ``cuts``, each piece a new run that starts from what the last one
    left (the open sessions, watermark and last id as the database would hold them; finished sessions in
    the resolver's "database")."""
    resolver = FakeResolver(gap_s=gap_s, min_s=min_s)
    finished: list[Finished] = []
    state: dict[int, list[OpenSession]] = {}
    watermark = last_id = 0
    bounds = [0, *sorted(set(cuts)), len(rows)]
    deriver = Deriver(resolver)
    for low, high in itertools.pairwise(bounds):
        deriver = Deriver(
            resolver,
            lateness_ms=lateness_s * 1000,
            watermark_ms=watermark,
            last_event_id=last_id,
            open_sessions={k: [[*s[:DIRTY], False] for s in ss] for k, ss in state.items()},
        )
        deriver.feed(rows[low:high])
        deriver.close_idle()
        finished += deriver.finished
        resolver.earlier += [f for f in deriver.finished if not f.blip]
        state, watermark, last_id = deriver.open, deriver.watermark_ms, deriver.last_event_id
    deriver.finished = finished
    return deriver
