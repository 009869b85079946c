"""Private: the stylesheet and small HTML fragments the HTML renderer reuses."""

from __future__ import annotations

import datetime as dt
from typing import Any

from promptcov.reports.redact import esc_html
from promptcov.reports.summary import fmt_int, fmt_pct

__all__ = ["CSS", "delta", "pct_bar", "fmt_day_range"]

CSS = """
:root{--fg:#1d2329;--muted:#65707b;--line:#e2e6ea;--hot:#c62828;--hotbg:#fdecea;--good:#2e7d32;--card:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;color:var(--fg);background:#fff;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:24px;margin:0 0 4px}h1 .wk{color:var(--hot)}
h2{font-size:19px;margin:34px 0 8px;padding-bottom:4px;border-bottom:2px solid var(--line)}
h3{font-size:16px;margin:18px 0 6px}h4{font-size:13px;margin:12px 0 4px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
nav{margin-top:8px}nav a{margin-right:14px;color:#0b57d0;text-decoration:none;font-weight:600}
.muted{color:var(--muted)}.lead{color:#3b444d;margin:4px 0 10px}
.note{background:#fff8e1;border-left:4px solid #f9a825;padding:8px 12px}
.summary{background:var(--hotbg);border-left:5px solid var(--hot);padding:4px 18px 8px;margin-top:18px}
.summary h2{border:0;margin:10px 0 2px;font-size:15px;text-transform:uppercase;letter-spacing:.05em;color:var(--hot)}
.summary p{font-size:15.5px;margin:4px 0 8px}
.cards{display:grid;grid-template-columns:repeat(5,1fr);gap:12px;margin:18px 0 6px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 14px}
.card .k{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}
.card .v{font-size:26px;font-weight:700;margin:2px 0}.card .d{font-size:12.5px}
.up.bad,.down.good{color:var(--hot);font-weight:600}.down.bad,.up.good{color:var(--good);font-weight:600}
.flat{color:var(--muted)}
.fig{overflow-x:auto;margin:8px 0}.chart{max-width:100%;height:auto}
table.t{border-collapse:collapse;width:100%;margin:6px 0 10px;font-size:13px}
table.t th,table.t td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
table.t th{background:var(--card);font-weight:600;white-space:nowrap}
table.t td.num,table.t th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.t tr.pressure td{background:var(--hotbg)}table.t tr.total td{font-weight:700;border-top:2px solid var(--line)}
table.small{width:auto;font-size:12.5px}
.badge{display:inline-block;font-size:11px;font-weight:700;padding:1px 7px;border-radius:9px;margin-left:6px;vertical-align:1px}
.badge.hot{background:var(--hot);color:#fff}
.hv{font-size:11px;color:var(--muted);border:1px solid var(--line);border-radius:9px;padding:0 6px;margin-left:6px}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
.bar{display:inline-block;width:90px;height:9px;background:#eceff1;border-radius:5px;margin-right:6px;vertical-align:0}
.bar>span{display:block;height:9px;border-radius:5px;background:var(--hot)}
.group{border:1px solid var(--line);border-left:5px solid var(--hot);border-radius:8px;padding:6px 18px 12px;margin:14px 0;break-inside:avoid}
.group h3 .score{font-weight:400;color:var(--muted);font-size:13px;margin-left:8px}
dl.facts{display:grid;grid-template-columns:170px 1fr;gap:3px 14px;margin:6px 0}
dl.facts dt{color:var(--muted);font-weight:600}dl.facts dd{margin:0}
.ev{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,340px),1fr));gap:4px 28px;align-items:start}
.ev>div{min-width:0}.ev table.small{width:100%}.ev td code,.ev q{overflow-wrap:anywhere}
.ev ul.tpl li{margin:2px 0 6px}
code{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f1f3f5;border-radius:3px;padding:0 3px}
code.prompt{display:inline-block;white-space:pre-wrap;word-break:break-word;background:#f6f8fa;border:1px solid var(--line);padding:3px 6px;margin:2px 0}
ul.ex{list-style:none;padding-left:0}ul{margin:4px 0;padding-left:20px}
q{font-style:italic;color:#3b444d}
.spark{vertical-align:middle}
footer{margin-top:36px;font-size:12px}
@media (max-width:900px){.cards{grid-template-columns:repeat(2,1fr)}}
@media print{nav{display:none}main{max-width:none;padding:0}h2{break-after:avoid}.card,.group,tr{break-inside:avoid}}
"""


def delta(fig: dict[str, Any], bad_up: bool, pct_points: bool = False) -> str:
    """Change from the previous week, coloured when a rise is bad (``bad_up``) or good."""
    ch = fig.get("change") or 0
    if pct_points:
        text = f"{'+' if ch >= 0 else '−'}{abs(100 * ch):.1f} pp"
    else:
        pct = fig.get("change_pct")
        rel = "" if pct is None else f" ({'+' if pct >= 0 else '−'}{fmt_pct(abs(pct))})"
        text = f"{'+' if ch >= 0 else '−'}{fmt_int(abs(ch))}{rel}"
    if abs(ch) < 1e-12:
        return '<span class="flat">±0</span>'
    direction = "up" if ch > 0 else "down"
    tone = "bad" if bad_up else "neutral"
    arrow = "▲" if ch > 0 else "▼"
    return f'<span class="{direction} {tone}">{arrow} {esc_html(text)}</span>'


def pct_bar(share: float) -> str:
    """A small horizontal bar with the percentage next to it."""
    w = max(0.0, min(1.0, float(share))) * 100
    return f'<span class="bar"><span style="width:{w:.0f}%"></span></span>{fmt_pct(share)}'


def fmt_day_range(first: str, last: str) -> str:
    """``('2026-11-16', '2026-11-22') -> '16–22 Nov 2026'``."""
    a, b = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    if a.year == b.year and a.month == b.month:
        return f"{a.day}–{b.day} {b:%b %Y}"
    if a.year == b.year:
        return f"{a.day} {a:%b} – {b.day} {b:%b %Y}"
    return f"{a.day} {a:%b %Y} – {b.day} {b:%b %Y}"
