"""Private: the per-report context every section function reads (connection, week bounds, scores)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from promptcov.reports._store import ScoreView
from promptcov.reports.redact import MAX_CHARS, safe_text

__all__ = ["Context"]


@dataclass
class Context:
    """Everything a section needs: the store, the week [start, end), the scores, the display rules.

    ``flag_table`` names a registered relation ``(account_id, fgroup)`` of flagged accounts;
    ``lo`` is the start of the trend window, ``prev_start`` the start of the previous week.
    """

    con: duckdb.DuckDBPyConnection
    view: ScoreView
    flag_table: str
    week: str
    start: dt.datetime
    end: dt.datetime
    prev_start: dt.datetime
    lo: dt.datetime
    store_first: dt.datetime
    has_map: bool
    redact: bool
    max_items: int

    def text(self, value: object, limit: int = MAX_CHARS) -> str:
        """Log text as the report shows it: redacted (unless turned off) and clipped."""
        return safe_text(None if value is None else str(value), redact=self.redact, limit=limit)

    def week_params(self) -> list[dt.datetime]:
        return [self.start, self.end]
