"""Build the weekly capability-targeting report as one plain, JSON-able dict.

:func:`build_report_data` reads the store's DuckDB tables and computes *every* figure the
HTML and Markdown renderers show, so the three outputs always agree and the JSON is the
machine-readable record of the report. The renderers do no arithmetic.

What the figures are for: a sweep is many accounts acting as one, putting high volume into a
few valuable capability areas through one template with its slots varied. The report
therefore measures, per ISO week,

* requests per capability area, and the share of each area's requests that come from
  flagged accounts or members of flagged groups ("pressure"): organic demand spreads over
  many areas and many unrelated accounts, so a high flagged share in one area means that
  area is being mapped systematically;
* clusters new this week, and clusters whose traffic comes from few accounts (top-5 share):
  organic topics draw many independent users, a sweep's cluster is fed by a handful;
* the flagged groups with their link evidence, timeline, example prompts and model pivots.

Free text from the logs is redacted and clipped here (:mod:`promptcov.reports.redact`), so
the JSON is as safe to forward as the HTML; escaping happens in the renderers.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import duckdb

from promptcov.coverage.areas.taxonomy import Taxonomy, default_taxonomy
from promptcov.errors import InputError
from promptcov.reports import groups as group_sec
from promptcov.reports import sections
from promptcov.reports._context import Context
from promptcov.reports._store import ScoreView, fetch_dicts, has_rows, load_scores, table_columns
from promptcov.reports.summary import summary_text
from promptcov.reports.weeks import last_full_iso_week, shift_week, store_time_range, week_bounds, week_of

__all__ = ["build_report_data", "last_full_iso_week", "REPORT_SCHEMA", "PRESSURE_SHARE"]

logger = logging.getLogger(__name__)

#: version tag of the dict layout (the JSON file carries it)
REPORT_SCHEMA = "promptcov.report/1"
#: an area is "under systematic pressure" when at least this share of its weekly requests is flagged
PRESSURE_SHARE = 0.2

_FLAG = "_promptcov_report_flagged"


def _change(cur: float, prev: float) -> dict[str, Any]:
    """A value with its previous-week value, absolute change and relative change (None from 0)."""
    pct = None if not prev else (cur - prev) / prev
    return {"value": cur, "previous": prev, "change": cur - prev, "change_pct": pct}


def _weekly_totals(con, weeks: list[str], lo: dt.datetime, hi: dt.datetime) -> dict[str, dict[str, int]]:
    rows = con.execute(
        f"""
        SELECT date_trunc('week', r.ts) AS wk, count(*), count(DISTINCT r.account_id),
               count(f.account_id), count(DISTINCT f.account_id), count(DISTINCT f.fgroup)
        FROM requests r LEFT JOIN {_FLAG} f ON f.account_id = r.account_id
        WHERE r.ts >= ? AND r.ts < ? GROUP BY 1
        """,
        [lo, hi],
    ).fetchall()
    keys = ("requests", "accounts", "flagged_requests", "flagged_accounts", "flagged_groups")
    out = {w: dict.fromkeys(keys, 0) for w in weeks}
    for wk, *vals in rows:
        out[week_of(wk)] = dict(zip(keys, (int(v) for v in vals), strict=True))
    return out


def _headline(totals: dict[str, dict[str, int]], week: str, prev: str) -> dict[str, Any]:
    cur, old = totals[week], totals[prev]
    head = {k: _change(cur[k], old[k]) for k in cur}
    share = cur["flagged_requests"] / cur["requests"] if cur["requests"] else 0.0
    prev_share = old["flagged_requests"] / old["requests"] if old["requests"] else 0.0
    head["flagged_share"] = {
        "value": share,
        "previous": prev_share,
        "change": share - prev_share,
        "change_pct": None,
    }
    return head


def _area_counts(ctx: Context, weeks: list[str]):
    """Per area: requests per week, flagged requests per week, and this week's flagged requests per group."""
    cap = "coalesce(m.capability, 'unmapped')" if ctx.has_map else "'unmapped'"
    join = "LEFT JOIN text_map m ON m.text_id = r.text_id" if ctx.has_map else ""
    rows = ctx.con.execute(
        f"""
        SELECT date_trunc('week', r.ts) AS wk, {cap} AS area, f.fgroup, count(*), count(f.account_id)
        FROM requests r {join} LEFT JOIN {ctx.flag_table} f ON f.account_id = r.account_id
        WHERE r.ts >= ? AND r.ts < ? GROUP BY 1, 2, 3
        """,
        [ctx.lo, ctx.end],
    ).fetchall()
    week_idx = {w: i for i, w in enumerate(weeks)}
    counts: dict[str, list[int]] = {}
    flagged: dict[str, list[int]] = {}
    by_group: dict[str, dict[str, int]] = {}
    for wk, area, fgroup, n, nf in rows:
        w = week_of(wk)
        area = ctx.text(area, 60)
        counts.setdefault(area, [0] * len(weeks))[week_idx[w]] += int(n)
        flagged.setdefault(area, [0] * len(weeks))[week_idx[w]] += int(nf)
        if fgroup is not None and w == weeks[-1]:
            gid = ctx.text(fgroup, 60)
            by_group.setdefault(area, {})[gid] = by_group.get(area, {}).get(gid, 0) + int(nf)
    return counts, flagged, by_group


def _areas(ctx: Context, weeks: list[str], high_value: set[str]) -> dict[str, Any]:
    """Requests per capability area and week, with this week's flagged share ("pressure")."""
    counts, flagged, by_group = _area_counts(ctx, weeks)
    out_rows = []
    for area, series in counts.items():
        fl = flagged[area]
        cur, prev = series[-1], series[-2]
        share = fl[-1] / cur if cur else 0.0
        prev_share = fl[-2] / prev if prev else 0.0
        groups = sorted(by_group.get(area, {}).items(), key=lambda kv: -kv[1])
        out_rows.append(
            {
                "area": area,
                "high_value": area in high_value,
                "counts": series,
                "flagged_counts": fl,
                **{k: v for k, v in _change(cur, prev).items() if k != "value"},
                "this_week": cur,
                "flagged_requests": fl[-1],
                "pressure_share": share,
                "pressure_share_previous": prev_share,
                "under_pressure": bool(cur and share >= PRESSURE_SHARE),
                "groups": [{"group_id": g, "requests": n} for g, n in groups],
            }
        )
    out_rows.sort(key=lambda r: (-r["this_week"], -sum(r["counts"]), r["area"]))
    total = [sum(r["counts"][i] for r in out_rows) for i in range(len(weeks))]
    return {"weeks": weeks, "rows": out_rows, "totals": total, "pressure_threshold": PRESSURE_SHARE}


def _method(con, override: dict | None, view) -> dict[str, Any]:
    """Threshold and expected false-positive rate of the score run (latest ``score_runs`` row)."""
    method: dict[str, Any] = {"source": None}
    if table_columns(con, "score_runs") is not None:
        rows = fetch_dicts(con, "SELECT * FROM score_runs ORDER BY run_at DESC NULLS LAST LIMIT 1")
        if rows:
            method.update({k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in rows[0].items()})
            method["source"] = "score_runs"
    if override:
        method.update(override)
        method["source"] = method.get("source") or "given"
    if view.window is not None:
        method["flags_window"] = [str(view.window[0]), str(view.window[1])]
    method["pressure_threshold"] = PRESSURE_SHARE
    method["top5_threshold"] = sections.TOP5_SHARE
    method["n_flagged_accounts_in_run"] = sum(1 for a in view.accounts.values() if a["flagged"])
    method["n_flagged_groups_in_run"] = sum(1 for g in view.groups.values() if g["flagged"])
    return method


def _check_args(n_weeks: Any, map_points: Any) -> None:
    if not isinstance(n_weeks, int) or n_weeks < 2:
        raise InputError(f"n_weeks must be an integer >= 2, got {n_weeks!r}")
    if not isinstance(map_points, int) or map_points < 0:
        raise InputError(f"map_points must be a non-negative integer, got {map_points!r}")


def _resolve_week(con: duckdb.DuckDBPyConnection, week: str | None) -> tuple[str, tuple[dt.datetime, dt.datetime]]:
    """The report week (default: the last full one) and the store's time range; errors when it has no data."""
    rng = store_time_range(con)
    if rng is None:
        raise InputError("the store holds no requests; run `promptcov ingest LOG...` first")
    week = last_full_iso_week(con) if week is None else week.strip()
    start, end = week_bounds(week)
    if end <= rng[0] or start > rng[1]:
        raise InputError(
            f"week {week} has no requests: the store covers {week_of(rng[0])} to {week_of(rng[1])}"
        )
    return week, rng


def _sections(ctx: Context, weeks: list[str], map_points: int, method: dict | None, tax: Taxonomy) -> dict:
    """Every section of the report, computed while the flagged-accounts relation is registered."""
    totals = _weekly_totals(ctx.con, weeks, ctx.lo, ctx.end)
    clusters = sections.clusters_section(ctx)
    label_ids = [c["cluster_id"] for c in clusters["new"]]
    return {
        "headline": _headline(totals, ctx.week, weeks[-2]),
        "weekly_totals": [totals[w] for w in weeks],
        "taxonomy": {"areas": tax.ids, "high_value": tax.high_value_ids},
        "areas": _areas(ctx, weeks, set(tax.high_value_ids)),
        "map": sections.map_section(ctx, map_points, label_ids),
        "clusters": clusters,
        "groups": group_sec.groups_section(ctx),
        "accounts": sections.accounts_section(ctx),
        "method": _method(ctx.con, method, ctx.view),
    }


def _notes(view: ScoreView, has_map: bool) -> list[str]:
    notes = []
    if not view.has_accounts:
        notes.append("No score tables in the store: run `promptcov score` to flag accounts and groups.")
    if not has_map:
        notes.append("No text_map table: run `promptcov map` to assign capability areas.")
    return notes


def build_report_data(
    con: duckdb.DuckDBPyConnection,
    week: str | None = None,
    n_weeks: int = 6,
    redact: bool = True,
    map_points: int = 2000,
    method: dict | None = None,
    max_items: int = 10,
    taxonomy: Taxonomy | None = None,
) -> dict[str, Any]:
    """Compute the weekly report for ISO ``week`` (default: the last full week in the store).

    Parameters
    ----------
    con: an open DuckDB connection on the store's catalog (read-only is fine).
    week: ``"YYYY-Www"``; a malformed week, or one with no requests and outside the store's
        time range, raises :class:`promptcov.errors.InputError`.
    n_weeks: how many weeks (ending with ``week``) the trend chart and table cover (>= 2).
    redact: replace e-mails, phone numbers, addresses, keys and other obvious personal data in log text.
    map_points: at most this many texts on the prompt-space map.
    method: threshold/FPR facts to show when the store has no ``score_runs`` table (or to
        override it), e.g. ``{"threshold": 0.62, "expected_fpr": 0.01, "calibration": "..."}``.
    max_items: rows per list (groups, clusters, accounts).
    taxonomy: the capability areas (their order fixes the chart colours; ``high_value`` marks
        the areas campaigns sweep); default: the packaged taxonomy.

    Returns a JSON-able dict; see the keys below and ``docs/DESIGN.md``.
    """
    _check_args(n_weeks, map_points)
    week, rng = _resolve_week(con, week)
    start, end = week_bounds(week)
    weeks = [shift_week(week, i - n_weeks + 1) for i in range(n_weeks)]
    has_map = has_rows(con, "text_map")
    view = load_scores(con, start, end)
    ctx = Context(
        con=con,
        view=view,
        flag_table=_FLAG,
        week=week,
        start=start,
        end=end,
        prev_start=week_bounds(weeks[-2])[0],
        lo=week_bounds(weeks[0])[0],
        store_first=rng[0],
        has_map=has_map,
        redact=redact,
        max_items=max_items,
    )
    con.register(_FLAG, view.flagged_table())
    try:
        body = _sections(ctx, weeks, map_points, method, taxonomy or default_taxonomy())
    finally:
        con.unregister(_FLAG)
    data: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "week": week,
        "week_start": start.date().isoformat(),
        "week_end": (end - dt.timedelta(days=1)).date().isoformat(),
        "previous_week": weeks[-2],
        "weeks": weeks,
        "generated_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "store_range": [rng[0].isoformat(), rng[1].isoformat()],
        "redacted": bool(redact),
        **body,
        "notes": _notes(view, has_map),
    }
    data["summary"] = summary_text(data)
    logger.info("report data for %s: %d requests", week, data["headline"]["requests"]["value"])
    return data
