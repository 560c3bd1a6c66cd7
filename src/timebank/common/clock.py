"""The time the domain services act at: now, unless a replay says otherwise.

The demo replays months of history through the real services (requests posted, volunteers checking in and
out, confirmations, reviews) by running them ``at`` past moments. Only the services' own notion of "now"
moves; the ledger still stamps postings with the database's clock, which no replay can change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.utils import timezone

_replayed: ContextVar[dt.datetime | None] = ContextVar("timebank_clock", default=None)


def now() -> dt.datetime:
    return _replayed.get() or timezone.now()


def today() -> dt.date:
    return timezone.localtime(now()).date()


@contextmanager
def replay_at(moment: dt.datetime) -> Iterator[None]:
    if timezone.is_naive(moment):
        raise ValueError("replay_at needs an aware datetime")
    token = _replayed.set(moment)
    try:
        yield
    finally:
        _replayed.reset(token)
