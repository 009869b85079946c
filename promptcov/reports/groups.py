"""The flagged-groups section: who swept what, since when, on what evidence.

A group ("hydra cluster") is many accounts acting as one. For each flagged group the report
gathers what a reviewer needs to act on it:

* members (count and a few ids), this week's volume and its change, and the areas it hit;
* the link evidence that ties the accounts together, counted by link type (shared templates,
  near-duplicate prompts, payment instruments, IPs/ASNs, synchronised timing): organic users
  rarely share a payment id *and* a template *and* a clock;
* the templates it used and what share of its traffic each carries -- one skeleton with its
  slots varied is the signature of a sweep;
* a daily timeline over the trend window and the first/last day seen;
* example prompts, and any pivot to a newly released model (extraction campaigns move to a
  new model within days of its release; organic users drift over weeks).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from promptcov.reports._context import Context
from promptcov.reports._store import table_columns
from promptcov.reports.examples import N_EXAMPLES, pick_examples

__all__ = ["groups_section", "PIVOT_DAYS"]

#: a group "pivoted" when it first used a model at most this many days after the model's first appearance
PIVOT_DAYS = 7
_MEM = "_promptcov_report_members"


def _day(v: Any) -> str | None:
    if isinstance(v, dt.datetime):
        return v.date().isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    return None if v in (None, "") else str(v)[:10]


def _timelines(ctx: Context) -> dict[str, dict[str, int]]:
    rows = ctx.con.execute(
        f"""SELECT g.group_id, CAST(r.ts AS DATE), count(*) FROM requests r
            JOIN {_MEM} g ON g.account_id = r.account_id WHERE r.ts >= ? AND r.ts < ? GROUP BY 1, 2""",
        [ctx.lo, ctx.end],
    ).fetchall()
    out: dict[str, dict[str, int]] = {}
    for g, d, n in rows:
        out.setdefault(g, {})[d.isoformat()] = int(n)
    return out


def _areas(ctx: Context) -> dict[str, list[tuple[str, int, int]]]:
    cap = "coalesce(m.capability, 'unmapped')" if ctx.has_map else "'unmapped'"
    join = "LEFT JOIN text_map m ON m.text_id = r.text_id" if ctx.has_map else ""
    rows = ctx.con.execute(
        f"""SELECT g.group_id, {cap}, count(*), count(DISTINCT r.account_id) FROM requests r
            JOIN {_MEM} g ON g.account_id = r.account_id {join}
            WHERE r.ts >= ? AND r.ts < ? GROUP BY 1, 2 ORDER BY 3 DESC, 2""",
        ctx.week_params(),
    ).fetchall()
    out: dict[str, list[tuple[str, int, int]]] = {}
    for g, a, n, k in rows:
        out.setdefault(g, []).append((a, int(n), int(k)))
    return out


def _seen(ctx: Context) -> dict[str, tuple[Any, Any, int]]:
    rows = ctx.con.execute(
        f"""SELECT g.group_id, min(r.ts), max(r.ts),
                   count(DISTINCT r.account_id) FILTER (WHERE r.ts >= ? AND r.ts < ?)
            FROM requests r JOIN {_MEM} g ON g.account_id = r.account_id GROUP BY 1""",
        ctx.week_params(),
    ).fetchall()
    return {g: (lo, hi, int(k)) for g, lo, hi, k in rows}


def _links(ctx: Context) -> dict[str, dict[str, dict[str, int]]]:
    """group -> link_type -> detail -> edge count, over links whose both ends are members."""
    if table_columns(ctx.con, "links") is None:
        return {}
    rows = ctx.con.execute(
        f"""SELECT a.group_id, l.link_type, coalesce(l.detail, ''), count(*) FROM links l
            JOIN {_MEM} a ON a.account_id = l.account_a
            JOIN {_MEM} b ON b.account_id = l.account_b AND b.group_id = a.group_id
            GROUP BY 1, 2, 3"""
    ).fetchall()
    out: dict[str, dict[str, dict[str, int]]] = {}
    for g, t, d, n in rows:
        out.setdefault(g, {}).setdefault(str(t), {})[d] = int(n)
    return out


def _templates(ctx: Context) -> dict[str, list[dict[str, Any]]]:
    if not ctx.has_map:
        return {}
    tcols = table_columns(ctx.con, "templates")
    skel = "t.skeleton, t.popular" if tcols and {"skeleton", "popular"} <= tcols else "NULL, NULL"
    tjoin = "LEFT JOIN templates t ON t.template_id = x.template_id" if tcols and "skeleton" in tcols else ""
    rows = ctx.con.execute(
        f"""WITH x AS (
              SELECT g.group_id, m.template_id, count(*) AS n FROM requests r
              JOIN {_MEM} g ON g.account_id = r.account_id JOIN text_map m ON m.text_id = r.text_id
              WHERE r.ts >= ? AND r.ts < ? AND m.template_id IS NOT NULL GROUP BY 1, 2
              QUALIFY row_number() OVER (PARTITION BY g.group_id ORDER BY count(*) DESC, m.template_id) <= 3)
            SELECT x.group_id, x.template_id, x.n, {skel} FROM x {tjoin} ORDER BY x.group_id, x.n DESC""",
        ctx.week_params(),
    ).fetchall()
    out: dict[str, list[dict[str, Any]]] = {}
    for g, tid, n, sk, pop in rows:
        out.setdefault(g, []).append(
            {
                "template_id": ctx.text(tid, 60),
                "requests": int(n),
                "skeleton": ctx.text(sk, 200),
                "popular": bool(pop),
            }
        )
    return out


def _example_candidates(ctx: Context) -> dict[str, list[tuple[str | None, str | None, str, int]]]:
    """group -> ``(template_id, area, prompt, requests)`` this week, the top few per (template, area)."""
    tpl = "m.template_id" if ctx.has_map else "NULL"
    cap = "coalesce(m.capability, 'unmapped')" if ctx.has_map else "'unmapped'"
    join = "LEFT JOIN text_map m ON m.text_id = r.text_id" if ctx.has_map else ""
    rows = ctx.con.execute(
        f"""SELECT g.group_id, {tpl} AS tpl, {cap} AS area, t.prompt, count(*) AS n FROM requests r
            JOIN {_MEM} g ON g.account_id = r.account_id JOIN texts t ON t.text_id = r.text_id {join}
            WHERE r.ts >= ? AND r.ts < ? AND t.prompt IS NOT NULL GROUP BY 1, 2, 3, 4
            QUALIFY row_number() OVER (PARTITION BY g.group_id, tpl, area ORDER BY count(*) DESC, t.prompt)
                    <= {2 * N_EXAMPLES}""",
        ctx.week_params(),
    ).fetchall()
    out: dict[str, list[tuple[str | None, str | None, str, int]]] = {}
    for g, t, a, p, n in rows:
        out.setdefault(g, []).append((t, a, p, int(n)))
    return out


def _pivots(ctx: Context) -> dict[str, list[dict[str, Any]]]:
    """Models a group adopted within ``PIVOT_DAYS`` of their first appearance in the store.

    Only models that first appear inside the trend window, after the store's first day, count
    as "newly released" (at the start of a store every model looks new).
    """
    rows = ctx.con.execute(
        f"""WITH mf AS (SELECT model, min(ts) AS first_ts FROM requests WHERE model IS NOT NULL GROUP BY 1)
            SELECT g.group_id, r.model, min(r.ts), count(*) FILTER (WHERE r.ts >= ? AND r.ts < ?),
                   any_value(mf.first_ts)
            FROM requests r JOIN {_MEM} g ON g.account_id = r.account_id JOIN mf ON mf.model = r.model
            WHERE mf.first_ts >= ? AND mf.first_ts > ? GROUP BY 1, 2""",
        [ctx.start, ctx.end, ctx.lo, ctx.store_first + dt.timedelta(days=1)],
    ).fetchall()
    out: dict[str, list[dict[str, Any]]] = {}
    for g, model, grp_first, n_week, first in sorted(rows, key=lambda r: (r[0], r[2])):
        lag = (grp_first - first).total_seconds() / 86400
        if lag <= PIVOT_DAYS and n_week > 0:
            name = ctx.text(model, 60)
            out.setdefault(g, []).append(
                {
                    "model": name,
                    "model_first_seen": first.date().isoformat(),
                    "group_first_use": grp_first.date().isoformat(),
                    "lag_days": round(lag, 2),
                    "requests_week": int(n_week),
                    "text": f"moved to model {name} on {grp_first.date().isoformat()}, {lag:.1f} days after it "
                    f"first appeared in the store ({first.date().isoformat()}); {int(n_week):,} requests on it this week",
                }
            )
    return out


def _link_evidence(ctx: Context, glinks: dict[str, dict[str, int]] | None, ev: dict[str, Any]) -> dict[str, Any]:
    """Links by type (most first), up to two shared values per type, and where they came from."""
    if glinks:
        link_types = {ctx.text(t, 30): sum(d.values()) for t, d in glinks.items()}
        details = {
            ctx.text(t, 30): [ctx.text(k, 60) for k, _ in sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))[:2] if k]
            for t, d in glinks.items()
        }
        source = "links"
    else:
        raw = ev.get("link_types", {}) if isinstance(ev.get("link_types"), dict) else {}
        link_types = {ctx.text(t, 30): int(n) for t, n in raw.items() if isinstance(n, int | float)}
        details, source = {}, "evidence" if link_types else None
    return {
        "link_types": dict(sorted(link_types.items(), key=lambda kv: (-kv[1], kv[0]))),
        "link_details": details,
        "link_source": source,
    }


def _group_item(ctx: Context, gid: str, found: dict[str, dict], days: list[str]) -> dict[str, Any]:
    """One flagged group's card data: volume, areas, evidence, templates, timeline, examples, pivots."""
    view = ctx.view
    r, ev = view.groups[gid], view.groups[gid]["evidence"]
    tl = found["timelines"].get(gid, {})
    week_days, prev_days = set(days[-7:]), set(days[-14:-7])
    cur = sum(n for d, n in tl.items() if d in week_days)
    prev = sum(n for d, n in tl.items() if d in prev_days)
    first, last, active = found["seen"].get(gid, (None, None, 0))
    first_seen = _day(r.get("first_seen")) or _day(first)
    members = view.members.get(gid, [])
    evidence_examples = [e for e in ev.get("examples", []) if isinstance(e, str)]
    examples = pick_examples(evidence_examples, found["examples"].get(gid, []), N_EXAMPLES, show=ctx.text)
    piv_found = found["pivots"].get(gid, [])
    return {
        "group_id": ctx.text(gid, 60),
        "score": float(r.get("score") or 0.0),
        "n_accounts": int(r.get("n_accounts") or len(members)),
        "active_accounts_week": active,
        "members_sample": [ctx.text(m, 60) for m in members[:5]],
        "n_requests": int(r.get("n_requests") or 0),
        "requests_week": cur,
        "requests_previous": prev,
        "capabilities": [ctx.text(c, 40) for c in r["capabilities"]],
        "areas_week": [
            {"area": ctx.text(a, 60), "requests": n, "accounts": k, "share": n / cur if cur else 0.0}
            for a, n, k in found["areas"].get(gid, [])[:5]
        ],
        "reasons": ctx.text(r.get("reasons")),
        **_link_evidence(ctx, found["links"].get(gid), ev),
        "templates": [
            dict(t, share=t["requests"] / cur if cur else 0.0) for t in found["templates"].get(gid, [])
        ],
        "first_seen": first_seen,
        "last_seen": _day(r.get("last_seen")) or _day(last),
        "new_this_week": bool(first_seen and first_seen >= days[-7] and ctx.store_first < ctx.start),
        "timeline": [[d, tl.get(d, 0)] for d in days],
        "examples": examples,
        "pivots": [ctx.text(p) for p in ev.get("pivots", []) if isinstance(p, str)] + [p["text"] for p in piv_found],
        "pivot_models": [{k: v for k, v in p.items() if k != "text"} for p in piv_found],
    }


def groups_section(ctx: Context) -> dict[str, Any]:
    """The flagged groups, most active this week first, each with its evidence (see module doc)."""
    view = ctx.view
    if not view.has_groups:
        msg = "No groups table: run `promptcov score` first."
        return {"available": False, "message": msg, "items": [], "n_flagged": 0, "n_active": 0}
    flagged = [g for g, r in view.groups.items() if r["flagged"]]
    ctx.con.register(_MEM, view.member_table(flagged))
    try:
        found = {
            "timelines": _timelines(ctx),
            "areas": _areas(ctx),
            "seen": _seen(ctx),
            "links": _links(ctx),
            "templates": _templates(ctx),
            "examples": _example_candidates(ctx),
            "pivots": _pivots(ctx),
        }
    finally:
        ctx.con.unregister(_MEM)
    days = [(ctx.lo + dt.timedelta(days=i)).date().isoformat() for i in range((ctx.end - ctx.lo).days)]
    items = [_group_item(ctx, gid, found, days) for gid in flagged]
    items.sort(key=lambda g: (-g["requests_week"], -g["score"], g["group_id"]))
    active_items = [g for g in items if g["requests_week"] > 0]
    return {
        "available": True,
        "message": None,
        "n_flagged": len(items),
        "n_active": len(active_items),
        "n_accounts_active": sum(g["n_accounts"] for g in active_items),
        "items": items[: ctx.max_items],
    }
