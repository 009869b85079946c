"""Render the report data as Markdown (for tickets, chat and e-mail), with the HTML's figures.

Every string from the data goes through :func:`~promptcov.reports.redact.esc_md`, so a prompt
cannot break a table, open a code span, forge a link or inject raw HTML. Charts become tables
and a text sparkline of daily requests.
"""

from __future__ import annotations

from typing import Any

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


def render_md(data: dict[str, Any]) -> str:
    """The Markdown report for a data dict from :func:`promptcov.reports.data.build_report_data`."""
    h, week = data["headline"], m(data["week"])
    L = [
        f"# Capability-targeting report {week}",
        "",
        f"{m(data['week_start'])} to {m(data['week_end'])} (UTC), generated {m(data['generated_at'])}."
        + ("" if data["redacted"] else " **Personal data NOT redacted.**"),
        "",
        "## Summary",
        "",
        m(data["summary"]),
        "",
    ]
    prev = m(data["previous_week"])
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
            [
                label,
                fmt_int(f["value"]),
                fmt_int(f["previous"]),
                _chg(f["value"], f["previous"], f["change_pct"]),
            ]
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
    L += _table(["", week, prev, "change"], rows, {1, 2, 3})

    a = data["areas"]
    L += [
        "## Capability areas",
        "",
        f"Requests per area and ISO week. **Under pressure**: at least {fmt_pct(a['pressure_threshold'])} of this "
        "week's requests come from flagged accounts or groups.",
        "",
    ]
    rows = []
    for r in a["rows"]:
        name = f"**{m(r['area'])}** (under pressure)" if r["under_pressure"] else m(r["area"])
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
    L += _table(
        ["area", *(m(w) for w in a["weeks"]), "change", "flagged share", "flagged groups"],
        rows,
        set(range(1, n + 3)),
    )

    g = data["groups"]
    L += ["## Flagged groups", ""]
    if not g["available"]:
        L += [m(g["message"]), ""]
    else:
        L += [
            f"{fmt_int(g['n_flagged'])} flagged group(s) in the score run, {fmt_int(g['n_active'])} active this week.",
            "",
        ]
        for x in g["items"]:
            new = " (new this week)" if x["new_this_week"] else ""
            L += [f"### {m(x['group_id'])}{new}, score {x['score']:.2f}", ""]
            members = ", ".join(m(s) for s in x["members_sample"])
            areas = (
                ", ".join(f"{m(y['area'])} {fmt_pct(y['share'])}" for y in x["areas_week"])
                or "none this week"
            )
            links = ", ".join(f"{m(t)} {fmt_int(c)}" for t, c in x["link_types"].items()) or "none recorded"
            L += [
                f"- **Members**: {fmt_int(x['n_accounts'])} accounts ({fmt_int(x['active_accounts_week'])} active "
                f"this week), e.g. {members}",
                f"- **Requests this week**: {fmt_int(x['requests_week'])} "
                f"({_chg(x['requests_week'], x['requests_previous'])} vs {prev})",
                f"- **Areas this week**: {areas}",
                f"- **Active**: since {m(x['first_seen'] or 'unknown')}, last seen {m(x['last_seen'] or 'unknown')}",
                f"- **Daily requests** ({m(x['timeline'][0][0] if x['timeline'] else '')} to "
                f"{m(x['timeline'][-1][0] if x['timeline'] else '')}): {text_sparkline([v for _, v in x['timeline']])}",
                f"- **Link evidence** (links by type): {links}",
                f"- **Why flagged**: {m(x['reasons']) or 'n/a'}",
            ]
            for t in x["templates"]:
                L.append(
                    f"- **Template** {m(t['template_id'])}: {fmt_pct(t['share'])} of this week's requests; "
                    f"skeleton: {m(t['skeleton'])}"
                )
            for p in x["pivots"]:
                L.append(f"- **Pivot**: {m(p)}")
            for ex in x["examples"]:
                L.append(f"- Example prompt: {m(ex)}")
            L.append("")

    acc = data["accounts"]
    for key, title in [
        ("flagged_outside_groups", "Flagged accounts outside groups"),
        ("benign", "Benign systematic traffic (not for action)"),
    ]:
        L += [f"## {title}", ""]
        if not acc["available"]:
            L += [m(acc["message"]), ""]
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
        L += (
            _table(
                [
                    "account",
                    "kind" if key == "benign" else "score",
                    "requests this week",
                    "top area",
                    "evidence",
                ],
                rows,
                {2},
            )
            if rows
            else ["None.", ""]
        )

    c = data["clusters"]
    L += ["## Clusters", ""]
    if not c["available"]:
        L += [m(c["message"]), ""]
    else:
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
            L += [f"### {title}", ""]
            L += (
                _table(
                    [
                        "cluster",
                        "area",
                        "keywords",
                        "requests",
                        "accounts",
                        "top-5 share",
                        "flagged share",
                        "first seen",
                    ],
                    rows,
                    {0, 3, 4, 5, 6},
                )
                if rows
                else ["None.", ""]
            )
    mp = data["map"]
    L += [
        "## Prompt-space map",
        "",
        "See the HTML report for the map." if mp["available"] else m(mp["message"]),
        "",
    ]

    me = data.get("method") or {}
    fpr = me.get("expected_fpr")
    L += [
        "## Method and thresholds",
        "",
        f"- Flag threshold: {m(me.get('threshold', 'n/a'))}; expected false-positive rate on organic accounts: "
        f"{fmt_pct(fpr, 1) if fpr is not None else 'not recorded'}.",
    ]
    if me.get("calibration"):
        L.append(f"- Calibration: {m(me['calibration'])}.")
    if me.get("flags_window"):
        L.append(f"- Flags from the score run over {m(me['flags_window'][0])} to {m(me['flags_window'][1])}.")
    L.append(
        "- Prompt text is escaped and clipped to 240 characters"
        + (
            "; e-mails, phone numbers, keys and tokens are redacted."
            if data["redacted"]
            else "; NOT redacted."
        )
    )
    L += [f"- {m(x)}" for x in data.get("notes", [])]
    return "\n".join(L) + "\n"
