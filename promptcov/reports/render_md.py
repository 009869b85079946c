"""Render the report data as Markdown (for tickets, chat and e-mail), with the HTML's figures.

Every string from the data goes through :func:`~promptcov.reports.redact.esc_md`, so a prompt
cannot break a table, open a code span, forge a link or inject raw HTML. Charts become tables
and a text sparkline of daily requests.
"""

from __future__ import annotations

from typing import Any

from promptcov.reports.redact import REDACTED_KINDS
from promptcov.reports.redact import esc_md as m
from promptcov.reports.summary import fmt_int, fmt_pct

__all__ = ["render_md", "text_sparkline"]

_BLOCKS = "▁▂▃▄▅▆▇█"


def text_sparkline(values: list[float]) -> str:
    """``[0, 1, 4, 2] -> '▁▂█▄'``: one block character per value, scaled to the maximum."""
    vmax = max(values, default=0) or 1
    return "".join(_BLOCKS[min(len(_BLOCKS) - 1, int(round((len(_BLOCKS) - 1) * v / vmax)))] for v in values)


def _chg(cur: float, prev: float, pct: float | None = None) -> str:
    d = cur - prev
    rel = "" if pct is None else f" ({'+' if pct >= 0 else '-'}{fmt_pct(abs(pct))})"
    return f"{'+' if d >= 0 else '-'}{fmt_int(abs(d))}{rel}"


def _table(head: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> list[str]:
    out = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---:" if i in right else "---" for i in range(len(head))) + "|",
    ]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out + [""]


def _header(data: dict[str, Any]) -> list[str]:
    return [
        f"# Capability-targeting report {m(data['week'])}",
        "",
        f"{m(data['week_start'])} to {m(data['week_end'])} (UTC), generated {m(data['generated_at'])}."
        + ("" if data["redacted"] else " **Personal data NOT redacted.**"),
        "",
        "## Summary",
        "",
        m(data["summary"]),
        "",
    ]


def _headline(data: dict[str, Any]) -> list[str]:
    h = data["headline"]
    rows = []
    for key, label in [
        ("requests", "Requests"),
        ("accounts", "Active accounts"),
        ("flagged_accounts", "Flagged accounts active"),
        ("flagged_groups", "Flagged groups active"),
        ("flagged_requests", "Flagged requests"),
    ]:
        f = h[key]
        rows.append(
            [label, fmt_int(f["value"]), fmt_int(f["previous"]), _chg(f["value"], f["previous"], f["change_pct"])]
        )
    fs = h["flagged_share"]
    rows.append(
        [
            "Flagged share of traffic",
            fmt_pct(fs["value"], 1),
            fmt_pct(fs["previous"], 1),
            f"{100 * fs['change']:+.1f} pp",
        ]
    )
    return _table(["", m(data["week"]), m(data["previous_week"]), "change"], rows, {1, 2, 3})


def _areas(data: dict[str, Any]) -> list[str]:
    a = data["areas"]
    out = [
        "## Capability areas",
        "",
        f"Requests per area and ISO week. **Under pressure**: at least {fmt_pct(a['pressure_threshold'])} of this "
        "week's requests come from flagged accounts or groups. *High-value*: an area the taxonomy lists as a "
        "target of distillation campaigns.",
        "",
    ]
    rows = []
    for r in a["rows"]:
        name = f"**{m(r['area'])}** (under pressure)" if r["under_pressure"] else m(r["area"])
        name += " *high-value*" if r.get("high_value") else ""
        groups = ", ".join(f"{m(g['group_id'])} ({fmt_int(g['requests'])})" for g in r["groups"][:3])
        rows.append(
            [
                name,
                *(fmt_int(v) for v in r["counts"]),
                _chg(r["this_week"], r["previous"], r["change_pct"]),
                fmt_pct(r["pressure_share"]),
                groups,
            ]
        )
    rows.append(["all areas", *(fmt_int(v) for v in a["totals"]), "", "", ""])
    n = len(a["weeks"])
    head = ["area", *(m(w) for w in a["weeks"]), "change", "flagged share", "flagged groups"]
    return out + _table(head, rows, set(range(1, n + 3)))


def _group(x: dict[str, Any], prev: str) -> list[str]:
    """One flagged group: the facts as a bullet list, then templates, pivots and examples."""
    new = " (new this week)" if x["new_this_week"] else ""
    members = ", ".join(m(s) for s in x["members_sample"])
    areas = ", ".join(f"{m(y['area'])} {fmt_pct(y['share'])}" for y in x["areas_week"]) or "none this week"
    details = x.get("link_details") or {}
    links = (
        ", ".join(
            f"{m(t)} {fmt_int(c)}" + (f" ({', '.join(m(d) for d in details[t])})" if details.get(t) else "")
            for t, c in x["link_types"].items()
        )
        or "none recorded"
    )
    tl = x["timeline"]
    out = [
        f"### {m(x['group_id'])}{new}, score {x['score']:.2f}",
        "",
        f"- **Members**: {fmt_int(x['n_accounts'])} accounts ({fmt_int(x['active_accounts_week'])} active "
        f"this week), e.g. {members}",
        f"- **Requests this week**: {fmt_int(x['requests_week'])} "
        f"({_chg(x['requests_week'], x['requests_previous'])} vs {prev})",
        f"- **Areas this week**: {areas}",
        f"- **Active**: since {m(x['first_seen'] or 'unknown')}, last seen {m(x['last_seen'] or 'unknown')}",
        f"- **Daily requests** ({m(tl[0][0] if tl else '')} to {m(tl[-1][0] if tl else '')}): "
        f"{text_sparkline([v for _, v in tl])}",
        f"- **Link evidence** (links by type, shared values): {links}",
        f"- **Why flagged**: {m(x['reasons']) or 'n/a'}",
    ]
    for t in x["templates"]:
        out.append(
            f"- **Template** {m(t['template_id'])}: {fmt_pct(t['share'])} of this week's requests; "
            f"skeleton: {m(t['skeleton'])}"
        )
    out += [f"- **Pivot**: {m(p)}" for p in x["pivots"]]
    out += [f"- Example prompt: {m(ex)}" for ex in x["examples"]]
    return out + [""]


def _groups(data: dict[str, Any]) -> list[str]:
    g = data["groups"]
    out = ["## Flagged groups", ""]
    if not g["available"]:
        return out + [m(g["message"]), ""]
    out += [
        f"{fmt_int(g['n_flagged'])} flagged group(s) in the score run, {fmt_int(g['n_active'])} active this week.",
        "",
    ]
    for x in g["items"]:
        out += _group(x, m(data["previous_week"]))
    return out


def _accounts(data: dict[str, Any]) -> list[str]:
    acc = data["accounts"]
    out: list[str] = []
    for key, title in [
        ("flagged_outside_groups", "Flagged accounts outside groups"),
        ("benign", "Benign systematic traffic (not for action)"),
    ]:
        out += [f"## {title}", ""]
        if not acc["available"]:
            out += [m(acc["message"]), ""]
            continue
        rows = [
            [
                m(x["account_id"]),
                m(x.get("benign_kind") or f"{x['score']:.2f}"),
                fmt_int(x["requests_week"]),
                m(x["top_capability"]),
                "; e.g. ".join(m(t) for t in [x["reasons"], *x["examples"]] if t),
            ]
            for x in acc[key]
        ]
        head = ["account", "kind" if key == "benign" else "score", "requests this week", "top area", "evidence"]
        out += _table(head, rows, {2}) if rows else ["None.", ""]
    return out


def _clusters(data: dict[str, Any]) -> list[str]:
    c = data["clusters"]
    out = ["## Clusters", ""]
    if not c["available"]:
        return out + [m(c["message"]), ""]
    head = ["cluster", "area", "keywords", "requests", "accounts", "top-5 share", "flagged share", "first seen"]
    for key, title in [("new", "New this week"), ("concentrated", "Fed by few accounts (top-5 share)")]:
        rows = [
            [
                str(x["cluster_id"]),
                m(x["capability"]),
                m(x["keywords"]),
                fmt_int(x["requests"]),
                fmt_int(x["accounts"]),
                fmt_pct(x["top5_share"]),
                fmt_pct(x["flagged_share"]),
                m(x["first_seen"]),
            ]
            for x in c[key]
        ]
        out += [f"### {title}", ""]
        out += _table(head, rows, {0, 3, 4, 5, 6}) if rows else ["None.", ""]
    return out


def _map_and_method(data: dict[str, Any]) -> list[str]:
    mp = data["map"]
    me = data.get("method") or {}
    fpr = me.get("expected_fpr")
    out = [
        "## Prompt-space map",
        "",
        "See the HTML report for the map." if mp["available"] else m(mp["message"]),
        "",
        "## Method and thresholds",
        "",
        f"- Flag threshold: {m(me.get('threshold', 'n/a'))}; expected false-positive rate on organic accounts: "
        f"{fmt_pct(fpr, 1) if fpr is not None else 'not recorded'}.",
    ]
    if me.get("calibration"):
        out.append(f"- Calibration: {m(me['calibration'])}.")
    if me.get("flags_window"):
        out.append(f"- Flags from the score run over {m(me['flags_window'][0])} to {m(me['flags_window'][1])}.")
    out.append(
        "- Prompt text is escaped, clipped to 240 characters and shown with bidirectional-override characters "
        "made visible" + (f"; {REDACTED_KINDS} are redacted." if data["redacted"] else "; NOT redacted.")
    )
    return out + [f"- {m(x)}" for x in data.get("notes", [])]


def render_md(data: dict[str, Any]) -> str:
    """The Markdown report for a data dict from :func:`promptcov.reports.data.build_report_data`."""
    parts = [_header, _headline, _areas, _groups, _accounts, _clusters, _map_and_method]
    return "\n".join(line for part in parts for line in part(data)) + "\n"
