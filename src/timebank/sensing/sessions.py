"""Co-presence sessions from proximity sightings: the derivation itself, pure and incremental.

A *sighting* says "the device of member a saw the device of member b at time t with signal r". A session is
an interval in which a volunteer and an elder were together: their devices saw each other — in either
direction — at a signal of at least the policy's threshold, with no silence longer than the policy's merge
gap, for at least the policy's minimum duration. Nothing here touches the database: the caller hands in
sightings as plain tuples and a ``Resolver`` that says who is the volunteer and who the elder of two members
and which rules hold for that pair on a day; the deriver hands back the sessions that finished and the state
to carry to the next run.

The rules, for each sighting in event-id order (times are integer milliseconds since the epoch):

1. The watermark ``W`` is the newest sighting time seen so far (every sighting counts, strong or weak, paired
   or not).
2. A sighting between two members who are not a volunteer and an elder, or weaker than the threshold of the
   elder's policy on that day, changes nothing else.
3. An open session ``[start, last]`` of the pair absorbs a sighting at ``t`` when ``start - gap <= t <= last
   + gap`` (so a session grows at both ends; a sighting within the gap of two open sessions merges them).
   Otherwise the sighting is dropped as late if a finished session of the pair (not a blip) covers it within
   its gap, and opens a new session if not.
4. A session finishes once ``last + gap + lateness + lag < W``: nobody saw the pair together for longer than
   the gap, as far as the newest event shows, plus an allowance (``lateness``) for events that arrive late
   or from a device whose clock is behind, plus how late its first sighting arrived (``lag``, see below). A
   finished session shorter than the minimum duration is a *blip*.

Rule 4 is written as if it ran after every sighting; the code applies it lazily (when the pair's next
sighting comes, with the watermark as it stood before that sighting, and for every open session when a run
ends), which gives the same result. So the state between two runs — the open sessions, the watermark and
the last event id — is all there is to know, and deriving a sequence in one go or in any number of pieces
gives the same sessions (``test_sessions_properties`` checks it). Thresholds are read through the resolver
once per pair and local day, never per sighting; a session keeps the gap and minimum duration of the day it
started.

Clock drift. Each sighting carries the observer's own clock, and nothing corrects it: if the elder's
wristband runs δ seconds behind the volunteer's phone, her sightings of him land δ earlier than his of her.
Both sides feed the same session, which therefore stretches by δ at its start. When δ is below the merge gap
the two sides are one session from the first sighting; when it is above, each side starts a session of its
own, and they merge as soon as a sighting falls within the gap of both (after δ minus the gap of the visit) —
so a visit longer than that is still one session. Where sessions of a pair do overlap, measured time
(``matching``) counts the time once. The lateness allowance keeps a session open while a slow clock's
sightings are still coming; the policy's tolerance for measured against claimed time should be well above
any drift.

Late uploads. A gateway may forward, hours later, what it buffered while offline. A session opened by a
sighting that arrived ``lag`` behind the watermark is kept open ``lag`` longer (rule 4 reads ``last + gap +
lateness + lag < W``), so a late upload forms sessions of its own instead of a string of blips.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

# (event_id, at_ms, observer_member_id, peer_member_id, rssi_dbm)
Row = tuple[int, int, int, int, int]

MEMBER_BITS = 32
MEMBER_MASK = (1 << MEMBER_BITS) - 1


def pair_key(volunteer_id: int, elder_id: int) -> int:
    """One int for a (volunteer, elder) pair: cheaper to hash than a tuple in the hot loop."""
    return (volunteer_id << MEMBER_BITS) | elder_id


def pair_of(key: int) -> tuple[int, int]:
    """(volunteer_id, elder_id) of a pair key."""
    return key >> MEMBER_BITS, key & MEMBER_MASK


class Params(NamedTuple):
    """The rules for one pair on one local day ``[day_start_ms, day_end_ms)``."""

    day_start_ms: int
    day_end_ms: int
    threshold_dbm: int  # above 0 when no policy is in force: then no sighting is strong enough
    gap_ms: int
    min_ms: int
    policy_id: int | None


class Resolver(Protocol):
    def pair(self, a: int, b: int) -> int:
        """The pair key of members ``a`` and ``b`` (in whichever role each has), or 0 if they are not a
        volunteer and an elder."""

    def params(self, key: int, at_ms: int) -> Params:
        """The rules for the pair on the local day of ``at_ms``."""

    def finished_covers(self, key: int, at_ms: int) -> bool:
        """Whether a session of the pair that finished in an earlier run (not a blip) covers ``at_ms``
        within its merge gap."""


# An open session is a list, mutated in place (the loop's hottest data): ints, with None for a policy or a
# database row it does not have.
OpenSession = list[Any]
START, LAST, FIRST_ID, LAST_ID, VOLUNTEER_SIDE, ELDER_SIDE, GAP, MIN, POLICY, DB_ID, LAG, DIRTY = range(12)


def open_session(
    start_ms: int,
    last_ms: int,
    *,
    first_event_id: int,
    last_event_id: int,
    volunteer_side: int,
    elder_side: int,
    gap_ms: int,
    min_ms: int,
    policy_id: int | None,
    db_id: int | None,
    lag_ms: int,
    dirty: bool = True,
) -> OpenSession:
    return [
        start_ms,
        last_ms,
        first_event_id,
        last_event_id,
        volunteer_side,
        elder_side,
        gap_ms,
        min_ms,
        policy_id,
        db_id,
        lag_ms,
        dirty,
    ]


@dataclass(frozen=True)
class Finished:
    """A session that can no longer change."""

    key: int
    start_ms: int
    last_ms: int
    first_event_id: int
    last_event_id: int
    volunteer_side: int  # sightings made by the volunteer's devices
    elder_side: int  # sightings made by the elder's devices
    gap_ms: int
    min_ms: int
    policy_id: int | None
    db_id: int | None
    lag_ms: int
    blip: bool

    @property
    def volunteer_id(self) -> int:
        return self.key >> MEMBER_BITS

    @property
    def elder_id(self) -> int:
        return self.key & MEMBER_MASK


@dataclass
class Counts:
    sightings: int = 0
    unpaired: int = 0  # between two members who are not a volunteer and an elder
    weak: int = 0  # below the threshold
    no_policy: int = 0  # no policy in force for the elder's community on the day
    late: int = 0  # within a session that had already finished: dropped
    opened: int = 0


class Deriver:
    """Turns sightings into sessions, carrying its state from one run to the next.

    ``open_sessions`` maps a pair key to its open sessions (lists indexed by ``START`` … ``LAG``), usually
    one. After ``feed`` and ``close_idle``: ``finished`` holds the sessions that finished in this run,
    ``touched()`` the open sessions that were opened or grew, and ``absorbed`` the database ids of open
    sessions merged into another (a late sighting bridged the gap between them).
    """

    def __init__(
        self,
        resolver: Resolver,
        *,
        lateness_ms: int = 0,
        watermark_ms: int = 0,
        last_event_id: int = 0,
        open_sessions: dict[int, list[OpenSession]] | None = None,
    ) -> None:
        self.resolver = resolver
        self.lateness_ms = lateness_ms
        self.watermark_ms = watermark_ms
        self.last_event_id = last_event_id
        self.open: dict[int, list[OpenSession]] = {k: list(v) for k, v in (open_sessions or {}).items() if v}
        self.finished: list[Finished] = []
        self.absorbed: list[int] = []
        self.counts = Counts()
        self._pairs: dict[int, int] = {}
        self._params: dict[int, Params] = {}
        self._done: dict[int, list[tuple[int, int, int]]] = {}  # key -> (start, last, gap) finished here

    def feed(self, rows: Iterable[Row]) -> None:
        """Process sightings in event-id order."""
        # Everything the loop touches is a local: attribute lookups cost more than the work.
        resolver = self.resolver
        pairs, params, open_ = self._pairs, self._params, self.open
        place = self._place
        lateness = self.lateness_ms
        wm = self.watermark_ms
        last_id = self.last_event_id
        n = unpaired = weak = no_policy = 0
        for row in rows:
            event_id, t, a, b, rssi = row
            n += 1
            last_id = event_id
            before = wm
            if t > wm:
                wm = t
            ab = (a << 32) | b
            key = pairs.get(ab)
            if key is None:
                key = pairs[ab] = resolver.pair(a, b)
            if not key:
                unpaired += 1
                continue
            p = params.get(key)
            if p is None or t < p[0] or t >= p[1]:
                p = params[key] = resolver.params(key, t)
            if rssi < p[2]:
                if p[5] is None:
                    no_policy += 1
                else:
                    weak += 1
                continue
            ss = open_.get(key)
            if ss is not None and len(ss) == 1:
                # the usual case, inline: one open session, still open, and the sighting falls within it
                s = ss[0]
                gap = s[6]
                if s[1] + gap + lateness + s[10] >= before and s[0] - gap <= t <= s[1] + gap:
                    if t > s[1]:
                        s[1] = t
                    elif t < s[0]:
                        s[0] = t
                    s[3] = event_id
                    if a == key >> 32:
                        s[4] += 1
                    else:
                        s[5] += 1
                    s[11] = True
                    continue
            place(key, ss, row, before, p)
        self.watermark_ms = wm
        self.last_event_id = last_id
        counts = self.counts
        counts.sightings += n
        counts.unpaired += unpaired
        counts.weak += weak
        counts.no_policy += no_policy

    def _place(self, key: int, ss: list[OpenSession] | None, row: Row, before: int, p: Params) -> None:
        """The general case: close the pair's sessions the watermark has left behind, then extend the ones
        the sighting falls within (merging them if it bridges two), or drop it if a finished session covers
        it, or open a new session."""
        event_id, t, a, _b, _rssi = row
        by_volunteer = a == key >> 32
        lateness = self.lateness_ms
        if ss:
            for s in [s for s in ss if s[LAST] + s[GAP] + lateness + s[LAG] < before]:
                self._finish(key, s)
            ss = self.open.get(key)
        hits = sorted(
            (s for s in ss or () if s[START] - s[GAP] <= t <= s[LAST] + s[GAP]), key=lambda s: s[FIRST_ID]
        )
        if hits:
            s = hits[0]
            for other in hits[1:]:
                s[START] = min(s[START], other[START])
                s[LAST] = max(s[LAST], other[LAST])
                s[FIRST_ID] = min(s[FIRST_ID], other[FIRST_ID])
                s[VOLUNTEER_SIDE] += other[VOLUNTEER_SIDE]
                s[ELDER_SIDE] += other[ELDER_SIDE]
                s[LAG] = min(s[LAG], other[LAG])
                if s[DB_ID] is None:
                    s[DB_ID], other[DB_ID] = other[DB_ID], None
                if other[DB_ID] is not None:
                    self.absorbed.append(other[DB_ID])
                self.open[key].remove(other)
            s[START] = min(s[START], t)
            s[LAST] = max(s[LAST], t)
            s[LAST_ID] = event_id
            s[VOLUNTEER_SIDE if by_volunteer else ELDER_SIDE] += 1
            s[DIRTY] = True
            return
        if self._covered(key, t):
            self.counts.late += 1
            return
        s = open_session(
            t,
            t,
            first_event_id=event_id,
            last_event_id=event_id,
            volunteer_side=int(by_volunteer),
            elder_side=int(not by_volunteer),
            gap_ms=p.gap_ms,
            min_ms=p.min_ms,
            policy_id=p.policy_id,
            db_id=None,
            lag_ms=max(0, before - t),
        )
        self.open.setdefault(key, []).append(s)
        self.counts.opened += 1

    def _covered(self, key: int, t: int) -> bool:
        """Whether a session of the pair that finished already (here or in an earlier run; blips do not
        count) covers ``t`` within its gap."""
        for start, last, gap in self._done.get(key, ()):
            if start - gap <= t <= last + gap:
                return True
        return self.resolver.finished_covers(key, t)

    def touched(self) -> list[tuple[int, OpenSession]]:
        """The open sessions opened or grown since they were loaded, with their pair keys."""
        return [(key, s) for key, ss in self.open.items() for s in ss if s[DIRTY]]

    def close_idle(self) -> None:
        """Finish every open session that the watermark has left behind (rule 4)."""
        horizon = self.watermark_ms - self.lateness_ms
        for key, ss in list(self.open.items()):
            for s in [s for s in ss if s[LAST] + s[GAP] + s[LAG] < horizon]:
                self._finish(key, s)

    def _finish(self, key: int, s: OpenSession) -> None:
        ss = self.open[key]
        ss.remove(s)
        if not ss:
            del self.open[key]
        blip = s[LAST] - s[START] < s[MIN]
        if not blip:
            self._done.setdefault(key, []).append((s[START], s[LAST], s[GAP]))
        self.finished.append(
            Finished(
                key=key,
                start_ms=s[START],
                last_ms=s[LAST],
                first_event_id=s[FIRST_ID],
                last_event_id=s[LAST_ID],
                volunteer_side=s[VOLUNTEER_SIDE],
                elder_side=s[ELDER_SIDE],
                gap_ms=s[GAP],
                min_ms=s[MIN],
                policy_id=s[POLICY],
                db_id=s[DB_ID],
                lag_ms=s[LAG],
                blip=blip,
            )
        )


def derive(
    rows: Iterable[Row], resolver: Resolver, *, lateness_ms: int = 0
) -> tuple[list[Finished], dict[int, list[OpenSession]]]:
    """All of ``rows`` in one go: the finished sessions and the ones still open."""
    deriver = Deriver(resolver, lateness_ms=lateness_ms)
    deriver.feed(rows)
    deriver.close_idle()
    return deriver.finished, deriver.open
