"""ISO weeks: parsing ``YYYY-Www``, their UTC bounds, and the last full week held in a store.

A report covers one ISO week, Monday 00:00 UTC up to (not including) the next Monday. The
store's timestamps are naive UTC ``TIMESTAMP`` values, so bounds are naive ``datetime`` too.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

import duckdb

from promptcov.errors import InputError

__all__ = ["parse_week", "week_bounds", "week_of", "shift_week", "last_full_iso_week", "store_time_range"]

logger = logging.getLogger(__name__)

_WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")


def parse_week(week: str) -> tuple[int, int]:
    """``"2026-W47"`` -> ``(2026, 47)``; anything else raises :class:`InputError`."""
    if not isinstance(week, str):
        raise InputError(f"--week must be a string like 2026-W47, got {week!r}")
    m = _WEEK_RE.match(week.strip())
    if not m:
        raise InputError(f"--week {week!r} is not an ISO week; write it as YYYY-Www, e.g. 2026-W47")
    year, num = int(m.group(1)), int(m.group(2))
    try:
        dt.date.fromisocalendar(year, num, 1)
    except ValueError:
        raise InputError(f"--week {week!r}: {year} has no ISO week {num}") from None
    return year, num


def week_bounds(week: str) -> tuple[dt.datetime, dt.datetime]:
    """Start (Monday 00:00) and end (next Monday 00:00, exclusive) of an ISO week, naive UTC."""
    year, num = parse_week(week)
    start = dt.datetime.combine(dt.date.fromisocalendar(year, num, 1), dt.time())
    return start, start + dt.timedelta(days=7)


def week_of(day: dt.date | dt.datetime) -> str:
    """The ISO week label of a date: ``week_of(date(2026, 11, 18)) == "2026-W47"``."""
    iso = day.isocalendar()
    return f"{iso[0]:04d}-W{iso[1]:02d}"


def shift_week(week: str, n: int) -> str:
    """The week ``n`` weeks after ``week`` (negative: before)."""
    start, _ = week_bounds(week)
    return week_of(start + dt.timedelta(weeks=n))


def store_time_range(con: duckdb.DuckDBPyConnection) -> tuple[dt.datetime, dt.datetime] | None:
    """First and last request timestamp in the store, or ``None`` when it holds no requests."""
    try:
        row = con.execute("SELECT min(ts), max(ts) FROM requests").fetchone()
    except duckdb.CatalogException:
        raise InputError("the store has no requests table; run `promptcov ingest LOG...` first") from None
    if row is None or row[0] is None:
        return None
    return row[0], row[1]


def last_full_iso_week(con: duckdb.DuckDBPyConnection) -> str:
    """The last ISO week the store covers completely.

    A week counts as full when the store has requests on or after its Sunday: a log that ends
    on Sunday evening closes its week, one that ends on a Wednesday does not, and the report
    falls back to the week before. A store holding less than one week reports the week of its
    last request (with a warning), rather than an empty earlier week.
    """
    rng = store_time_range(con)
    if rng is None:
        raise InputError("the store holds no requests; run `promptcov ingest LOG...` first")
    first, last = rng
    last_day = last.date()
    week = week_of(last_day)
    if last_day.isoweekday() != 7:
        earlier = shift_week(week, -1)
        _, earlier_end = week_bounds(earlier)
        if earlier_end > first:
            return earlier
        logger.warning("the store covers less than one full ISO week; reporting the partial week %s", week)
    return week
