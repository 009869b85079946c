"""Report sections computed from the store: the prompt-space map, clusters, flagged and benign accounts.

Each function takes the report :class:`~promptcov.reports._context.Context` and returns a
JSON-able dict with ``available`` (False plus a ``message`` when the step that writes its
tables has not run yet).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from promptcov.reports._context import Context
from promptcov.reports._store import fetch_dicts, has_rows, parse_json, table_columns

__all__ = ["map_section", "clusters_section", "accounts_section", "TOP5_SHARE", "MIN_CLUSTER_REQUESTS"]

#: a cluster is "fed by few accounts" when its top-5 accounts send at least this share of its weekly requests
TOP5_SHARE = 0.8
#: ... and it has at least this many requests in the week (tiny clusters are trivially concentrated)
MIN_CLUSTER_REQUESTS = 20


def _day(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return None if value is None else str(value)[:10]


def map_section(ctx: Context, limit: int, label_clusters: list[int] | None = None) -> dict[str, Any]:
    """A sample of this week's texts placed on the 2-D map written by ``promptcov map``.

    Each point is ``[x, y, area_index, flagged]``: flagged when any request for that text this
    week came from a flagged account. Sweeps show up as dense, flagged patches inside a few
    areas; organic traffic is spread over the whole map. The sample is a fixed hash order of
    text ids, so the same store always draws the same picture. ``label_clusters`` (e.g. the
    clusters new this week) are labelled at the mean position of their mapped texts.
    """
    if not has_rows(ctx.con, "map_points"):
        return {
            "available": False,
            "message": "No 2-D map in the store: run `promptcov map` first.",
            "points": [],
            "areas": [],
            "labels": [],
        }
    cap = "coalesce(m.capability, 'unmapped')" if ctx.has_map else "'unmapped'"
    join = "LEFT JOIN text_map m ON m.text_id = p.text_id" if ctx.has_map else ""

    def query(week_only: bool):
        where = "WHERE r.ts >= ? AND r.ts < ?" if week_only else ""
        params = ctx.week_params() if week_only else []
        return ctx.con.execute(
            f"""
            WITH used AS (
                SELECT r.text_id, max(CASE WHEN f.account_id IS NULL THEN 0 ELSE 1 END) AS flagged
                FROM requests r LEFT JOIN {ctx.flag_table} f ON f.account_id = r.account_id
                {where} GROUP BY 1)
            SELECT p.x, p.y, {cap} AS area, used.flagged
            FROM map_points p JOIN used ON used.text_id = p.text_id {join}
            WHERE p.x IS NOT NULL AND p.y IS NOT NULL AND isfinite(p.x) AND isfinite(p.y)
            ORDER BY hash(p.text_id), p.text_id LIMIT ?
            """,
            [*params, limit],
        ).fetchall()

    rows, scope = query(True), "week"
    if not rows:
        rows, scope = query(False), "store"
    names = {a: ctx.text(a, 60) for a in {r[2] for r in rows}}  # area names come from the store too
    rows = [(x, y, names[a], f) for x, y, a, f in rows]
    counts: dict[str, int] = {}
    for _x, _y, area, _f in rows:
        counts[area] = counts.get(area, 0) + 1
    areas = sorted(counts, key=lambda a: (-counts[a], a))
    idx = {a: i for i, a in enumerate(areas)}
    points = [[round(float(x), 4), round(float(y), 4), idx[a], int(f)] for x, y, a, f in rows]
    points.sort(key=lambda p: p[3])  # flagged drawn last, on top
    labels = []
    if label_clusters and ctx.has_map:
        got = ctx.con.execute(
            f"""
            SELECT m.cluster_id, avg(p.x), avg(p.y) FROM map_points p JOIN text_map m ON m.text_id = p.text_id
            WHERE m.cluster_id IN ({", ".join(str(int(c)) for c in label_clusters)})
              AND isfinite(p.x) AND isfinite(p.y) GROUP BY 1
            """
        ).fetchall()
        labels = [{"cluster_id": int(c), "x": round(float(x), 4), "y": round(float(y), 4)} for c, x, y in got]
        labels.sort(key=lambda d: d["cluster_id"])
    message = (
        None if scope == "week" else "No sampled text was requested this week; showing the whole sample."
    )
    return {
        "available": True,
        "message": message,
        "scope": scope,
        "areas": areas,
        "points": points,
        "n_points": len(points),
        "n_flagged": sum(p[3] for p in points),
        "labels": labels,
    }


def _cluster_info(ctx: Context) -> dict[int, dict[str, Any]]:
    cols = table_columns(ctx.con, "clusters")
    if cols is None:
        return {}
    where = "WHERE map_version = (SELECT max(map_version) FROM clusters)" if "map_version" in cols else ""
    return {int(r["cluster_id"]): r for r in fetch_dicts(ctx.con, f"SELECT * FROM clusters {where}")}


def clusters_section(ctx: Context) -> dict[str, Any]:
    """Clusters new this week, and clusters whose weekly traffic comes from few accounts.

    *New*: the cluster's first request in the store falls in this week, and the store holds
    earlier weeks (in a store that starts this week everything would be "new"); or the map
    marked it new. *Concentrated*: the top-5 accounts send >= ``TOP5_SHARE`` of the cluster's weekly
    requests. Popular organic topics draw many unrelated users, so their top-5 share is low;
    a sweep's cluster is fed by the few accounts that run it.
    """
    if not ctx.has_map:
        return {
            "available": False,
            "message": "No clusters: run `promptcov map` first.",
            "new": [],
            "concentrated": [],
        }
    f = ctx.flag_table
    rows = ctx.con.execute(
        f"""
        WITH wk AS (
            SELECT m.cluster_id, r.account_id, count(*) AS n,
                   max(CASE WHEN f.account_id IS NULL THEN 0 ELSE 1 END) AS fl
            FROM requests r JOIN text_map m ON m.text_id = r.text_id
            LEFT JOIN {f} f ON f.account_id = r.account_id
            WHERE r.ts >= ? AND r.ts < ? AND m.cluster_id >= 0 GROUP BY 1, 2),
        ranked AS (SELECT *, row_number() OVER (PARTITION BY cluster_id ORDER BY n DESC, account_id) AS rk FROM wk),
        agg AS (SELECT cluster_id, sum(n) AS requests, count(*) AS accounts,
                       sum(CASE WHEN rk <= 5 THEN n ELSE 0 END) AS top5, sum(n * fl) AS flagged
                FROM ranked GROUP BY 1),
        hist AS (SELECT m.cluster_id, min(r.ts) AS first_ts,
                        count(*) FILTER (WHERE r.ts >= ? AND r.ts < ?) AS prev
                 FROM requests r JOIN text_map m ON m.text_id = r.text_id
                 WHERE m.cluster_id IN (SELECT cluster_id FROM agg) GROUP BY 1),
        cap AS (SELECT cluster_id, mode(capability) AS capability FROM text_map
                WHERE cluster_id IN (SELECT cluster_id FROM agg) GROUP BY 1)
        SELECT agg.cluster_id, agg.requests, agg.accounts, agg.top5, agg.flagged, hist.first_ts, hist.prev,
               cap.capability
        FROM agg JOIN hist ON hist.cluster_id = agg.cluster_id LEFT JOIN cap ON cap.cluster_id = agg.cluster_id
        ORDER BY agg.requests DESC, agg.cluster_id
        """,
        [ctx.start, ctx.end, ctx.prev_start, ctx.start],
    ).fetchall()
    info = _cluster_info(ctx)
    items = []
    for cid, n, n_acc, top5, fl, first_ts, prev, cap in rows:
        meta = info.get(int(cid), {})
        exemplars = parse_json(meta.get("exemplars"), [])
        # "first request this week" only means new when the store saw earlier weeks
        seen_first = first_ts is not None and first_ts >= ctx.start and ctx.store_first < ctx.start
        is_new = seen_first or bool(meta.get("is_new"))
        items.append(
            {
                "cluster_id": int(cid),
                "capability": ctx.text(meta.get("capability") or cap or "unmapped", 60),
                "keywords": ctx.text(meta.get("keywords"), 120),
                "exemplars": [ctx.text(e, 160) for e in exemplars[:2]],
                "requests": int(n),
                "previous": int(prev),
                "accounts": int(n_acc),
                "top5_share": float(top5) / n if n else 0.0,
                "flagged_share": float(fl) / n if n else 0.0,
                "first_seen": _day(first_ts),
                "is_new": bool(is_new),
            }
        )
    new = [c for c in items if c["is_new"]]
    conc = [c for c in items if c["requests"] >= MIN_CLUSTER_REQUESTS and c["top5_share"] >= TOP5_SHARE]
    return {
        "available": True,
        "message": None,
        "n_active": len(items),
        "n_new": len(new),
        "n_concentrated": len(conc),
        "new": new[: ctx.max_items],
        "concentrated": conc[: ctx.max_items],
        "top5_threshold": TOP5_SHARE,
        "min_requests": MIN_CLUSTER_REQUESTS,
    }


def weekly_account_counts(ctx: Context) -> dict[str, tuple[int, int]]:
    """account_id -> (requests this week, requests the previous week)."""
    rows = ctx.con.execute(
        """
        SELECT account_id, count(*) FILTER (WHERE ts >= ?), count(*) FILTER (WHERE ts < ?)
        FROM requests WHERE ts >= ? AND ts < ? GROUP BY 1
        """,
        [ctx.start, ctx.start, ctx.prev_start, ctx.end],
    ).fetchall()
    return {str(a): (int(c), int(p)) for a, c, p in rows}


def accounts_section(ctx: Context) -> dict[str, Any]:
    """Flagged accounts outside flagged groups, and benign systematic traffic, listed apart.

    Benign systematic traffic (``benign_kind`` set by ``score``: a benchmark run once by an
    evaluator, a nightly batch job) is as structured as a sweep but is not extraction; it is
    shown separately so a reader sees it was recognised, not missed.
    """
    view = ctx.view
    if not view.has_accounts:
        return {
            "available": False,
            "message": "No accounts table: run `promptcov score` first.",
            "flagged_outside_groups": [],
            "benign": [],
            "n_flagged_outside_groups": 0,
            "n_benign": 0,
        }
    weekly = weekly_account_counts(ctx)

    def item(aid: str, r: dict[str, Any]) -> dict[str, Any]:
        ev = view.account_evidence(aid)
        cur, prev = weekly.get(aid, (0, 0))
        drivers = [d for d in ev.get("drivers", []) if isinstance(d, list | tuple) and len(d) == 2]
        return {
            "account_id": ctx.text(aid, 80),
            "requests_week": cur,
            "requests_previous": prev,
            "n_requests": int(r.get("n_requests") or 0),
            "score": float(r.get("score") or 0.0),
            "flagged": bool(r["flagged"]),
            "group_id": ctx.text(r.get("group_id"), 60) or None,
            "top_capability": ctx.text(r.get("top_capability"), 60),
            "reasons": ctx.text(r.get("reasons")),
            "drivers": [[ctx.text(n, 40), float(v)] for n, v in drivers[:3] if isinstance(v, int | float)],
            "examples": [ctx.text(e) for e in ev.get("examples", [])[:3] if isinstance(e, str)],
        }

    flagged = [item(a, r) for a, r in view.accounts.items() if r["flagged"] and view.flagged.get(a) is None]
    flagged.sort(key=lambda x: (-x["requests_week"], -x["score"], x["account_id"]))
    benign = []
    for a, r in view.accounts.items():
        kind = r.get("benign_kind")
        if kind:
            it = item(a, r)
            it["benign_kind"] = ctx.text(kind, 40)
            benign.append(it)
    benign.sort(key=lambda x: (-x["requests_week"], -x["n_requests"], x["account_id"]))
    return {
        "available": True,
        "message": None,
        "n_flagged_outside_groups": len(flagged),
        "n_benign": len(benign),
        "flagged_outside_groups": flagged[: ctx.max_items],
        "benign": benign[: ctx.max_items],
    }
