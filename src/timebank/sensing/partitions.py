"""Daily partitions of the event table on PostgreSQL, and retention.

``sensing_event`` is range-partitioned by ``observed_at`` (UTC days): ``sensing_event_pYYYYMMDD`` holds one
day, ``sensing_event_default`` whatever arrives for a day without its own partition. Partitions are created
ahead by ``timebank sensing prune`` (and ``timebank serve``'s background loop) and, should an event arrive for
a day still missing, by ingestion itself before it writes. Creating one moves that day's rows out of the
default partition and attaches the new table, which locks the parent only in SHARE UPDATE EXCLUSIVE mode:
ingestion goes on meanwhile. Retention drops whole partitions, which is instant whatever they hold.

On SQLite there is one plain table, and retention deletes rows.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import zlib
from collections.abc import Iterable

from django.db import connection, transaction

DAY_MS = 86_400_000
PARENT = "sensing_event"
DEFAULT = "sensing_event_default"
_NAME = re.compile(r"^sensing_event_p(\d{8})$")

_known: set[int] = set()  # days since the epoch known to have a partition (in this process)
_known_lock = threading.Lock()


def _day_date(day: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=day)


def _name(day: int) -> str:
    return f"{PARENT}_p{_day_date(day):%Y%m%d}"


def partition_days() -> set[int]:
    """The days that have a partition of their own (PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [PARENT],
        )
        names = [row[0] for row in cursor.fetchall()]
    days = set()
    for name in names:
        match = _NAME.match(name)
        if match:
            day = dt.datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=dt.UTC).date()
            days.add((day - dt.date(1970, 1, 1)).days)
    return days


def partitions_ensure(days: Iterable[int]) -> list[str]:
    """Create the partitions of these days (days since the epoch) that are missing; return their names.
    Cheap when they exist: a set lookup in memory."""
    if connection.vendor != "postgresql":
        return []
    wanted = set(days) - _known
    if not wanted:
        return []
    with _known_lock:
        _known.update(partition_days())
        created = [_create(day) for day in sorted(wanted - _known)]
        _known.update(wanted)
    return created


def forget_known() -> None:
    """Forget which partitions exist (after they were dropped, or in tests)."""
    with _known_lock:
        _known.clear()


def _create(day: int) -> str:
    name = _name(day)
    lo = dt.datetime.combine(_day_date(day), dt.time(), tzinfo=dt.UTC)
    hi = lo + dt.timedelta(days=1)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [zlib.crc32(name.encode())])
        cursor.execute("SELECT to_regclass(%s)", [name])
        row = cursor.fetchone()
        if row is not None and row[0] is not None:
            return name
        cursor.execute("SET LOCAL lock_timeout = '10s'")
        cursor.execute(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        # the partition constraint as a CHECK first, so that attaching need not scan the table again
        cursor.execute(
            f"ALTER TABLE {name} ADD CONSTRAINT {name}_range CHECK (observed_at >= %s AND observed_at < %s)",
            [lo, hi],
        )
        cursor.execute(
            f"WITH moved AS (DELETE FROM {DEFAULT} WHERE observed_at >= %s AND observed_at < %s "  # noqa: S608
            f"RETURNING *) INSERT INTO {name} SELECT * FROM moved",
            [lo, hi],
        )
        cursor.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)", [lo, hi])
        cursor.execute(f"ALTER TABLE {name} DROP CONSTRAINT {name}_range")
    return name


def partitions_drop_before(day: int) -> list[str]:
    """Drop the partitions of days before ``day``, and delete such rows from the default partition."""
    if connection.vendor != "postgresql":
        return []
    dropped = []
    cutoff = dt.datetime.combine(_day_date(day), dt.time(), tzinfo=dt.UTC)
    for old in sorted(d for d in partition_days() if d < day):
        name = _name(old)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '10s'")
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
        dropped.append(name)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {DEFAULT} WHERE observed_at < %s", [cutoff])  # noqa: S608
    with _known_lock:
        _known.difference_update(d for d in list(_known) if d < day)
    return dropped
