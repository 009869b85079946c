"""Private helpers: read the score tables of a store the same way for every report section.

The report works on whatever the store holds: before ``score`` has run there are no
``accounts``/``groups`` tables, before ``map`` no ``text_map``. Each helper says what is
missing instead of failing, and the sections print a "run promptcov ... first" note.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

__all__ = ["has_rows", "table_columns", "fetch_dicts", "parse_json", "parse_list", "ScoreView", "load_scores"]

logger = logging.getLogger(__name__)


def has_rows(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """True when table ``name`` exists and holds at least one row (a step that ran)."""
    if table_columns(con, name) is None:
        return False
    return con.execute(f'SELECT 1 FROM "{name}" LIMIT 1').fetchone() is not None


def table_columns(con: duckdb.DuckDBPyConnection, name: str) -> set[str] | None:
    """Column names of table/view ``name`` in the main schema, or ``None`` when it does not exist."""
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main'",
        [name],
    ).fetchall()
    return {r[0] for r in rows} if rows else None


def fetch_dicts(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    """Run ``sql`` and return the rows as dicts keyed by column name."""
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def parse_json(value: Any, default: Any) -> Any:
    """Decode a JSON column; a NULL, a broken value or a value of the wrong type gives ``default``."""
    if value is None:
        return default
    if isinstance(value, type(default)) and not isinstance(value, str):
        return value
    try:
        out = json.loads(value)
    except (TypeError, ValueError):
        return default
    return out if isinstance(out, type(default)) else default


def parse_list(value: Any) -> list[str]:
    """A list column stored either as a JSON list or as a comma/semicolon-joined string."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if v is not None and str(v) != ""]
    s = str(value).strip()
    if s.startswith("["):
        got = parse_json(s, [])
        return [str(v) for v in got if v is not None and str(v) != ""]
    return [p.strip() for p in s.replace(";", ",").split(",") if p.strip()]


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "t", "yes", "y"}
    return bool(value)


@dataclass
class ScoreView:
    """The score run a report uses, loaded once.

    ``flagged`` maps every account whose traffic counts as flagged -- flagged itself, or a
    member of a flagged group -- to its flagged group id (``None`` outside groups).
    """

    has_accounts: bool = False
    has_groups: bool = False
    window: tuple[Any, Any] | None = None
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)
    flagged: dict[str, str | None] = field(default_factory=dict)

    def account_evidence(self, account_id: str) -> dict[str, Any]:
        """The decoded ``evidence`` JSON of one account (decoded on demand: most are never shown)."""
        r = self.accounts[account_id]
        if not isinstance(r.get("evidence"), dict):
            r["evidence"] = parse_json(r.get("evidence"), {})
        return r["evidence"]

    def flagged_table(self) -> pa.Table:
        ids = sorted(self.flagged)
        return pa.table(
            {
                "account_id": pa.array(ids, pa.string()),
                "fgroup": pa.array([self.flagged[a] for a in ids], pa.string()),
            }
        )

    def member_table(self, group_ids: list[str]) -> pa.Table:
        acc, grp = [], []
        for g in group_ids:
            for a in self.members.get(g, []):
                acc.append(a)
                grp.append(g)
        return pa.table({"account_id": pa.array(acc, pa.string()), "group_id": pa.array(grp, pa.string())})


def _as_day(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and value:
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "")).date()
        except ValueError:
            return None
    return None


def _pick_window(con: duckdb.DuckDBPyConnection, table: str, start: dt.datetime, end: dt.datetime):
    """Choose one score window when ``table`` keeps several runs.

    Prefer the runs whose window overlaps the report week; among them (or among all, when none
    overlaps) take the one that ends last. ``None`` when the table has no window columns.
    """
    cols = table_columns(con, table) or set()
    if not {"window_start", "window_end"} <= cols:
        return None
    rows = con.execute(
        f"SELECT DISTINCT window_start, window_end FROM {table} WHERE window_end IS NOT NULL"  # noqa: S608
    ).fetchall()
    if not rows:
        return None
    week_lo, week_hi = start.date(), end.date()

    def overlaps(r):
        lo, hi = _as_day(r[0]), _as_day(r[1])
        return lo is not None and hi is not None and lo < week_hi and hi >= week_lo

    cands = [r for r in rows if overlaps(r)] or rows
    cands.sort(key=lambda r: (str(r[1]), str(r[0])))
    if len(rows) > 1:
        logger.info("%s holds %d score windows; using %s .. %s", table, len(rows), cands[-1][0], cands[-1][1])
    return cands[-1]


def load_scores(con: duckdb.DuckDBPyConnection, start: dt.datetime, end: dt.datetime) -> ScoreView:
    """Load the ``accounts`` and ``groups`` rows of the score run that covers the week [start, end).

    An empty ``accounts`` table means ``score`` has not run (a store may create its tables
    up front); an empty ``groups`` table next to scored accounts means no group was found.
    """
    view = ScoreView()
    if has_rows(con, "accounts"):
        view.has_accounts = True
        win = _pick_window(con, "accounts", start, end)
        view.window = win
        if win is None:
            rows = fetch_dicts(con, "SELECT * FROM accounts")
        else:
            rows = fetch_dicts(
                con, "SELECT * FROM accounts WHERE window_start = ? AND window_end = ?", [win[0], win[1]]
            )
        for r in rows:
            aid = str(r.get("account_id"))
            prev = view.accounts.get(aid)
            if prev is None or (r.get("score") or 0) > (prev.get("score") or 0):
                r["flagged"] = _truthy(r.get("flagged"))
                r["group_id"] = r.get("group_id") or None
                view.accounts[aid] = r
    if view.has_accounts and table_columns(con, "groups") is not None:
        view.has_groups = True
        win = _pick_window(con, "groups", start, end)
        if win is None:
            rows = fetch_dicts(con, "SELECT * FROM groups")
        else:
            rows = fetch_dicts(
                con, "SELECT * FROM groups WHERE window_start = ? AND window_end = ?", list(win)
            )
        for r in rows:
            gid = str(r.get("group_id"))
            r["flagged"] = _truthy(r.get("flagged"))
            r["evidence"] = parse_json(r.get("evidence"), {})
            r["capabilities"] = parse_list(r.get("capabilities"))
            view.groups[gid] = r
            view.members[gid] = sorted({str(m) for m in parse_list(r.get("members"))})
    for aid, r in view.accounts.items():
        gid = r.get("group_id")
        if gid and gid in view.groups and aid not in view.members[gid]:
            view.members[gid].append(aid)
    for gid, r in view.groups.items():
        if r["flagged"]:
            for aid in view.members[gid]:
                view.flagged[aid] = gid
    for aid, r in view.accounts.items():
        if r["flagged"] and aid not in view.flagged:
            gid = r.get("group_id")
            view.flagged[aid] = gid if gid in view.groups and view.groups[gid]["flagged"] else None
    return view
