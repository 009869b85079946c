"""Hand-built inline SVG charts for the HTML report: no scripts, no fonts, no external files.

Hand-built SVG keeps the report one self-contained file that renders the same in any browser,
offline, and prints cleanly. Every label passes through :func:`~promptcov.reports.redact.esc_html`
because area names, cluster ids and group ids come from the store.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

from promptcov.reports.redact import esc_html

__all__ = [
    "area_colors",
    "stacked_bars",
    "scatter_map",
    "sparkline",
    "nice_ticks",
    "FLAG_COLOR",
    "MAX_LABELS",
]

#: colour of flagged traffic marks
FLAG_COLOR = "#d62728"
#: at most this many cluster labels on the map
MAX_LABELS = 8
_PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#393b79",
    "#637939",
    "#9edae5",
    "#c7c7c7",
]
_EXTRA = ["#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363", "#fd8d3c"]
_FONT = "font-family='system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif'"


def area_colors(areas: Sequence[str], known: Sequence[str] = ()) -> dict[str, str]:
    """A stable colour per capability area.

    ``known`` is the taxonomy's list of area ids (the report data's ``taxonomy.areas``): the
    n-th area of the taxonomy gets the n-th palette colour, so an area keeps its colour every
    week. Areas outside it (or past the palette) get a colour from a hash of their name.
    """
    slot = {a: i for i, a in enumerate(known) if i < len(_PALETTE)}
    out = {}
    for a in areas:
        if a in slot:
            out[a] = _PALETTE[slot[a]]
        elif a == "unmapped":
            out[a] = "#a0a0a0"
        else:
            out[a] = _EXTRA[zlib.crc32(a.encode("utf-8")) % len(_EXTRA)]
    return out


def nice_ticks(vmax: float, n: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``vmax`` (1, 2, 2.5 or 5 times a power of ten)."""
    if vmax <= 0:
        return [0.0, 1.0]
    raw = vmax / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    top = math.ceil(vmax / step) * step
    return [round(i * step, 10) for i in range(int(round(top / step)) + 1)]


def _fmt(v: float) -> str:
    if v >= 1_000_000:
        return f"{v / 1_000_000:g}M"
    if v >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


def stacked_bars(
    weeks: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
    colors: dict[str, str],
    title: str = "Requests per capability area and week",
) -> str:
    """Stacked bars: one bar per week, one segment per area (largest areas at the bottom)."""
    w, h, ml, mr, mt, mb = 760, 320, 56, 190, 16, 44
    pw, ph = w - ml - mr, h - mt - mb
    totals = [sum(s[1][i] for s in series) for i in range(len(weeks))]
    ticks = nice_ticks(max(totals, default=0))
    top = ticks[-1] or 1
    slot = pw / max(len(weeks), 1)
    bw = slot * 0.64
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' class='chart' viewBox='0 0 {w} {h}' width='{w}' "
        f"height='{h}' role='img' aria-label='{esc_html(title)}' {_FONT} font-size='12'>",
        f"<title>{esc_html(title)}</title>",
    ]
    for t in ticks:
        y = mt + ph - ph * t / top
        parts.append(f"<line x1='{ml}' x2='{ml + pw}' y1='{y:.1f}' y2='{y:.1f}' stroke='#e3e3e3'/>")
        parts.append(f"<text x='{ml - 6}' y='{y + 4:.1f}' text-anchor='end' fill='#555'>{_fmt(t)}</text>")
    for i, wk in enumerate(weeks):
        x = ml + i * slot + (slot - bw) / 2
        y = mt + ph
        for area, counts in series:
            v = counts[i]
            if v <= 0:
                continue
            hh = ph * v / top
            y -= hh
            parts.append(
                f"<rect x='{x:.1f}' y='{y:.1f}' width='{bw:.1f}' height='{hh:.1f}' "
                f"fill='{colors[area]}'><title>{esc_html(area)} {esc_html(wk)}: {v:,}</title></rect>"
            )
        last = i == len(weeks) - 1
        weight = " font-weight='700'" if last else ""
        parts.append(
            f"<text x='{x + bw / 2:.1f}' y='{mt + ph + 16}' text-anchor='middle' fill='#333'{weight}>"
            f"{esc_html(wk)}</text>"
        )
        parts.append(
            f"<text x='{x + bw / 2:.1f}' y='{mt + ph - ph * totals[i] / top - 4:.1f}' "
            f"text-anchor='middle' fill='#333' font-size='11'>{totals[i]:,}</text>"
        )
    parts.append(f"<line x1='{ml}' x2='{ml + pw}' y1='{mt + ph}' y2='{mt + ph}' stroke='#888'/>")
    _legend(parts, [a for a, _ in series][::-1], colors, ml + pw + 18, mt + 4)
    parts.append("</svg>")
    return "".join(parts)


def _legend(parts: list[str], areas: Sequence[str], colors: dict[str, str], x: float, y: float) -> None:
    for j, area in enumerate(areas[:16]):
        yy = y + j * 18
        parts.append(f"<rect x='{x}' y='{yy}' width='12' height='12' rx='2' fill='{colors[area]}'/>")
        parts.append(f"<text x='{x + 18}' y='{yy + 10}' fill='#333'>{esc_html(area)}</text>")
    if len(areas) > 16:
        parts.append(f"<text x='{x}' y='{y + 16 * 18 + 10}' fill='#777'>+{len(areas) - 16} more</text>")


def scatter_map(
    points: Sequence[Sequence[float]],
    areas: Sequence[str],
    colors: dict[str, str],
    labels: Sequence[dict] = (),
    title: str = "Prompt-space map",
) -> str:
    """The 2-D prompt map: ``points`` are ``[x, y, area_index, flagged]``.

    Organic points are small translucent dots in their area's colour; flagged points get a
    red ring, so a sweep appears as a red-ringed patch. ``labels`` (``cluster_id``, ``x``,
    ``y``) mark clusters new this week.
    """
    w, h, pad, lw = 760, 470, 14, 190
    pw, ph = w - lw - 2 * pad, h - 2 * pad
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' class='chart' viewBox='0 0 {w} {h}' width='{w}' "
        f"height='{h}' role='img' aria-label='{esc_html(title)}' {_FONT} font-size='12'>",
        f"<title>{esc_html(title)}</title>",
        f"<rect x='{pad}' y='{pad}' width='{pw}' height='{ph}' fill='#fafafa' stroke='#ddd'/>",
    ]
    xs = [p[0] for p in points] + [lb["x"] for lb in labels]
    ys = [p[1] for p in points] + [lb["y"] for lb in labels]
    if xs:
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        sx = (pw - 24) / ((x1 - x0) or 1.0)
        sy = (ph - 24) / ((y1 - y0) or 1.0)

        def px(x: float) -> float:
            return pad + 12 + (x - x0) * sx

        def py(y: float) -> float:
            return pad + ph - 12 - (y - y0) * sy

        for x, y, ai, fl in points:
            c = colors[areas[int(ai)]]
            if fl:
                parts.append(
                    f"<circle cx='{px(x):.1f}' cy='{py(y):.1f}' r='3.4' fill='{c}' "
                    f"stroke='{FLAG_COLOR}' stroke-width='1.3'/>"
                )
            else:
                parts.append(
                    f"<circle cx='{px(x):.1f}' cy='{py(y):.1f}' r='2.4' fill='{c}' fill-opacity='0.6'/>"
                )
        placed: list[tuple[float, float]] = []
        for lb in labels:
            cx, cy = px(lb["x"]), py(lb["y"])
            # skip a label that would overprint one already drawn; cap the count to keep the map legible
            if len(placed) >= MAX_LABELS or any(abs(cx - ox) < 70 and abs(cy - oy) < 16 for ox, oy in placed):
                continue
            placed.append((cx, cy))
            text = f"new #{esc_html(lb['cluster_id'])}"
            parts.append(
                f"<circle cx='{cx:.1f}' cy='{cy:.1f}' r='9' fill='none' stroke='#111' "
                f"stroke-dasharray='3 2'/>"
                f"<text x='{cx + 12:.1f}' y='{cy + 4:.1f}' fill='#111' font-weight='700' "
                f"stroke='#fff' stroke-width='3' paint-order='stroke'>{text}</text>"
            )
    else:
        parts.append(
            f"<text x='{pad + pw / 2}' y='{h / 2}' text-anchor='middle' fill='#777'>no points</text>"
        )
    lx = w - lw + 8
    _legend(parts, list(areas), colors, lx, pad + 4)
    ly = pad + 4 + min(len(areas), 17) * 18 + 10
    parts.append(
        f"<circle cx='{lx + 6}' cy='{ly + 6}' r='4' fill='#fff' stroke='{FLAG_COLOR}' stroke-width='1.5'/>"
        f"<text x='{lx + 18}' y='{ly + 10}' fill='#333'>flagged traffic</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def sparkline(
    values: Sequence[float],
    days: Sequence[str] = (),
    highlight_last: int = 7,
    width: int = 220,
    height: int = 40,
) -> str:
    """A small line of daily requests; the last ``highlight_last`` days (the report week) shaded."""
    n = len(values)
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' class='spark' viewBox='0 0 {width} {height}' "
        f"width='{width}' height='{height}' role='img' aria-label='daily requests' {_FONT} font-size='10'>"
    ]
    if n == 0:
        return parts[0] + "</svg>"
    vmax = max(values) or 1
    step = (width - 4) / max(n - 1, 1)

    def pt(i: int, v: float) -> tuple[float, float]:
        return 2 + i * step, height - 3 - (height - 8) * v / vmax

    if highlight_last and n > highlight_last:
        xw = pt(n - highlight_last, 0)[0] - step / 2
        parts.append(f"<rect x='{xw:.1f}' y='0' width='{width - xw:.1f}' height='{height}' fill='#fdecea'/>")
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in (pt(i, v) for i, v in enumerate(values)))
    base = f"{pt(n - 1, 0)[0]:.1f},{height - 3} {pt(0, 0)[0]:.1f},{height - 3}"
    parts.append(f"<polygon points='{coords} {base}' fill='#9ecae1' fill-opacity='0.5'/>")
    parts.append(f"<polyline points='{coords}' fill='none' stroke='#1f77b4' stroke-width='1.5'/>")
    first = esc_html(days[0]) if days else ""
    last = esc_html(days[-1]) if days else ""
    parts.append(f"<title>daily requests {first} to {last}; peak {int(max(values)):,}</title></svg>")
    return "".join(parts)
