"""Render the report data as ONE self-contained HTML file (inline CSS and SVG, no scripts).

The page carries a Content-Security-Policy that forbids scripts and every network fetch, so
even a bug in escaping could not run attacker text or call home; escaping
(:func:`~promptcov.reports.redact.esc_html`) is still applied to every string taken from the
data. The order follows what a reader needs first: the summary, the headline numbers, the
areas under pressure, the groups and their evidence, then the detail.
"""

from __future__ import annotations

from typing import Any

from promptcov.reports import charts
from promptcov.reports._html_parts import CSS, delta, fmt_day_range, pct_bar
from promptcov.reports.redact import REDACTED_KINDS
from promptcov.reports.redact import esc_html as e
from promptcov.reports.summary import fmt_int, fmt_pct, join_words

__all__ = ["render_html", "CSP", "MAX_CARDS"]

#: no scripts, no fetches, no frames: the page is text, inline styles and inline SVG
#: flagged groups shown as full evidence cards; the rest of the list is a compact table
MAX_CARDS = 5
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def _cards(data: dict[str, Any]) -> str:
    h = data["headline"]
    specs = [
        ("Requests", h["requests"], False, fmt_int),
        ("Active accounts", h["accounts"], False, fmt_int),
        ("Flagged accounts active", h["flagged_accounts"], True, fmt_int),
        ("Flagged groups active", h["flagged_groups"], True, fmt_int),
        ("Flagged share of traffic", h["flagged_share"], True, lambda v: fmt_pct(v, 1)),
    ]
    out = ['<section class="cards" aria-label="headline">']
    for label, fig, bad_up, fmt in specs:
        out.append(
            f'<div class="card"><div class="k">{e(label)}</div><div class="v">{e(fmt(fig["value"]))}</div>'
            f'<div class="d">{delta(fig, bad_up, pct_points=fmt is not fmt_int)} '
            f'<span class="muted">vs {e(data["previous_week"][5:])}</span></div></div>'
        )
    out.append("</section>")
    return "".join(out)


def _areas(data: dict[str, Any], colors: dict[str, str]) -> str:
    a = data["areas"]
    rows = a["rows"]
    series = [(r["area"], r["counts"]) for r in rows]
    out = [
        '<section id="areas"><h2>Capability areas</h2>',
        f'<p class="lead">Requests per area over the last {len(a["weeks"])} ISO weeks. Rows marked '
        f'<span class="badge hot">under pressure</span> get at least {fmt_pct(a["pressure_threshold"])} of '
        "this week's requests from flagged accounts or flagged groups; <span class=\"hv\">high-value</span> "
        "marks the areas the taxonomy lists as targets of distillation campaigns.</p>",
    ]
    out.append(f'<div class="fig">{charts.stacked_bars(a["weeks"], series, colors)}</div>')
    head = "".join(f'<th class="num">{e(w[5:])}</th>' for w in a["weeks"])
    out.append(
        f'<table class="t"><thead><tr><th>area</th>{head}<th class="num">change</th>'
        "<th>flagged share (this week)</th><th>flagged groups</th></tr></thead><tbody>"
    )
    for r in rows:
        cells = "".join(f'<td class="num">{fmt_int(v)}</td>' for v in r["counts"])
        fig = {
            "value": r["this_week"],
            "previous": r["previous"],
            "change": r["change"],
            "change_pct": r["change_pct"],
        }
        badge = ' <span class="badge hot">under pressure</span>' if r["under_pressure"] else ""
        badge += ' <span class="hv" title="a high-value area in the taxonomy">high-value</span>' if r.get("high_value") else ""
        groups = ", ".join(f"{e(g['group_id'])} ({fmt_int(g['requests'])})" for g in r["groups"][:3])
        sw = f'<span class="sw" style="background:{colors[r["area"]]}"></span>'
        out.append(
            f'<tr class="{"pressure" if r["under_pressure"] else ""}"><td>{sw}{e(r["area"])}{badge}</td>{cells}'
            f'<td class="num">{delta(fig, False)}</td><td>{pct_bar(r["pressure_share"])}</td><td>{groups}</td></tr>'
        )
    tot = "".join(f'<td class="num">{fmt_int(v)}</td>' for v in a["totals"])
    out.append(
        f'<tr class="total"><td>all areas</td>{tot}<td></td><td></td><td></td></tr></tbody></table></section>'
    )
    return "".join(out)


def _group_facts(g: dict[str, Any]) -> str:
    """The facts list of a group card: members, volume, areas, dates, timeline, reasons."""
    fig = {
        "value": g["requests_week"],
        "previous": g["requests_previous"],
        "change": g["requests_week"] - g["requests_previous"],
        "change_pct": None,
    }
    members = ", ".join(f"<code>{e(m)}</code>" for m in g["members_sample"])
    more = g["n_accounts"] - len(g["members_sample"])
    members += f" and {fmt_int(more)} more" if more > 0 else ""
    areas = join_words([f"{e(x['area'])} {fmt_pct(x['share'])}" for x in g["areas_week"]]) or "none this week"
    days = [d for d, _ in g["timeline"]]
    spark = charts.sparkline([n for _, n in g["timeline"]], days, width=300)
    window = (
        f' <span class="muted">({fmt_int(g["n_requests"])} in the score window)</span>' if g["n_requests"] else ""
    )
    return (
        f'<dl class="facts"><dt>Members</dt><dd>{fmt_int(g["n_accounts"])} accounts '
        f"({fmt_int(g['active_accounts_week'])} active this week): {members}</dd>"
        f"<dt>Requests this week</dt><dd>{fmt_int(g['requests_week'])} {delta(fig, True)}{window}</dd>"
        f"<dt>Areas this week</dt><dd>{areas}</dd>"
        f"<dt>Active</dt><dd>since {e(g['first_seen'] or 'unknown')}, last seen {e(g['last_seen'] or 'unknown')}</dd>"
        f'<dt>Daily requests</dt><dd>{spark} <span class="muted">{e(days[0] if days else "")} → '
        f"{e(days[-1] if days else '')}, this week shaded</span></dd>"
        f"<dt>Why flagged</dt><dd>{e(g['reasons']) or '<span class=muted>n/a</span>'}</dd></dl>"
    )


def _group_evidence(g: dict[str, Any]) -> str:
    """Link evidence and templates side by side (stacked on a narrow page), each at least 340 px wide."""
    links = "".join(
        f"<tr><td>{e(t)}</td><td class='num'>{fmt_int(n)}</td>"
        f"<td>{', '.join(f'<code>{e(d)}</code>' for d in g['link_details'].get(t, []))}</td></tr>"
        for t, n in g["link_types"].items()
    )
    link_html = (
        (
            f"<table class='t small'><thead><tr><th>link type</th><th class='num'>links</th><th>shared value"
            f"</th></tr></thead><tbody>{links}</tbody></table>"
        )
        if links
        else "<p class='muted'>no link evidence recorded</p>"
    )
    tpl = "".join(
        f"<li><code>{e(t['template_id'])}</code> {fmt_pct(t['share'])} of this week's requests"
        f"{' (a popular public prompt)' if t['popular'] else ''}"
        f"{': <q>' + e(t['skeleton']) + '</q>' if t['skeleton'] else ''}</li>"
        for t in g["templates"]
    )
    tpl_html = f"<ul class='tpl'>{tpl}</ul>" if tpl else "<p class=muted>no shared template</p>"
    return (
        f'<div class="ev"><div class="links"><h4>Link evidence</h4>{link_html}</div>'
        f'<div class="templates"><h4>Templates</h4>{tpl_html}</div></div>'
    )


def _group(g: dict[str, Any]) -> str:
    new = ' <span class="badge hot">new this week</span>' if g["new_this_week"] else ""
    examples = "".join(f"<li><code class='prompt'>{e(x)}</code></li>" for x in g["examples"])
    pivots = "".join(f"<li>{e(p)}</li>" for p in g["pivots"])
    return (
        f'<article class="group"><h3><code>{e(g["group_id"])}</code>{new} '
        f'<span class="score">score {g["score"]:.2f}</span></h3>'
        + _group_facts(g)
        + _group_evidence(g)
        + (f"<h4>Pivot to a new model</h4><ul>{pivots}</ul>" if pivots else "")
        + (f"<h4>Example prompts</h4><ul class='ex'>{examples}</ul>" if examples else "")
        + "</article>"
    )


def _groups(data: dict[str, Any]) -> str:
    g = data["groups"]
    out = ['<section id="groups"><h2>Flagged groups</h2>']
    if not g["available"]:
        return out[0] + f'<p class="note">{e(g["message"])}</p></section>'
    out.append(
        f'<p class="lead">{fmt_int(g["n_flagged"])} flagged group(s) in the score run, {fmt_int(g["n_active"])} '
        f"active this week; the {min(len(g['items']), g['n_flagged'])} most active are shown.</p>"
    )
    out.extend(_group(x) for x in g["items"][:MAX_CARDS])
    rest = g["items"][MAX_CARDS:]
    if rest:
        rows = "".join(
            f"<tr><td><code>{e(x['group_id'])}</code></td><td class='num'>{fmt_int(x['n_accounts'])}</td>"
            f"<td class='num'>{fmt_int(x['requests_week'])}</td>"
            f"<td>{join_words([e(a['area']) for a in x['areas_week'][:3]])}</td><td>{e(x['first_seen'])}</td>"
            f"<td>{join_words([e(t) for t in list(x['link_types'])[:3]])}</td><td>{e(x['reasons'])}</td></tr>"
            for x in rest
        )
        out.append(
            "<h3>More flagged groups</h3><table class='t'><thead><tr><th>group</th><th class='num'>accounts</th>"
            "<th class='num'>requests this week</th><th>areas</th><th>since</th><th>links</th><th>why</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>"
        )
    if not g["items"]:
        out.append('<p class="muted">No flagged group.</p>')
    out.append("</section>")
    return "".join(out)


def _acc_table(items: list[dict[str, Any]], benign: bool) -> str:
    extra = "<th>kind</th>" if benign else "<th>score</th>"
    rows = []
    for a in items:
        ex = "".join(f"<div><code class='prompt'>{e(x)}</code></div>" for x in a["examples"])
        kind = f"<td>{e(a.get('benign_kind'))}</td>" if benign else f"<td class='num'>{a['score']:.2f}</td>"
        rows.append(
            f"<tr><td><code>{e(a['account_id'])}</code></td>{kind}<td class='num'>{fmt_int(a['requests_week'])}"
            f"</td><td>{e(a['top_capability'])}</td><td>{e(a['reasons'])}{ex}</td></tr>"
        )
    return (
        f"<table class='t'><thead><tr><th>account</th>{extra}<th class='num'>requests this week</th>"
        f"<th>top area</th><th>evidence</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _accounts(data: dict[str, Any]) -> str:
    a = data["accounts"]
    out = ['<section id="accounts"><h2>Flagged accounts outside groups</h2>']
    if not a["available"]:
        return out[0] + f'<p class="note">{e(a["message"])}</p></section>'
    out.append(
        _acc_table(a["flagged_outside_groups"], False)
        if a["flagged_outside_groups"]
        else '<p class="muted">None.</p>'
    )
    out.append(
        '<h2 id="benign">Benign systematic traffic</h2><p class="lead">Structured like a sweep but recognised '
        "as benign (benchmarks run once, batch jobs): listed for context, not for action.</p>"
    )
    out.append(_acc_table(a["benign"], True) if a["benign"] else '<p class="muted">None.</p>')
    return "".join(out) + "</section>"


def _map(data: dict[str, Any], colors: dict[str, str]) -> str:
    m = data["map"]
    out = ['<section id="map"><h2>Prompt-space map</h2>']
    if not m["available"]:
        return out[0] + f'<p class="note">{e(m["message"])}</p></section>'
    out.append(
        f'<p class="lead">A 2-D projection of {fmt_int(m["n_points"])} texts requested this week, coloured by '
        f"area; {fmt_int(m['n_flagged'])} ringed in red were sent by flagged accounts. Sweeps show as dense "
        "ringed patches; organic use spreads across the map.</p>"
    )
    if m.get("message"):
        out.append(f'<p class="note">{e(m["message"])}</p>')
    cmap = {a: colors.get(a) or charts.area_colors([a])[a] for a in m["areas"]}
    out.append(
        f'<div class="fig">{charts.scatter_map(m["points"], m["areas"], cmap, m["labels"])}</div></section>'
    )
    return "".join(out)


def _cluster_table(items: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td class='num'>{c['cluster_id']}</td><td>{e(c['capability'])}</td><td>{e(c['keywords'])}</td>"
        f"<td class='num'>{fmt_int(c['requests'])}</td><td class='num'>{fmt_int(c['accounts'])}</td>"
        f"<td class='num'>{fmt_pct(c['top5_share'])}</td><td>{pct_bar(c['flagged_share'])}</td>"
        f"<td>{e(c['first_seen'])}</td><td>{''.join(f'<div><code class=prompt>{e(x)}</code></div>' for x in c['exemplars'][:1])}</td></tr>"
        for c in items
    )
    return (
        "<table class='t'><thead><tr><th class='num'>cluster</th><th>area</th><th>keywords</th>"
        "<th class='num'>requests</th><th class='num'>accounts</th><th class='num'>top-5 share</th>"
        f"<th>flagged share</th><th>first seen</th><th>exemplar</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _clusters(data: dict[str, Any]) -> str:
    c = data["clusters"]
    out = ['<section id="clusters"><h2>Clusters</h2>']
    if not c["available"]:
        return out[0] + f'<p class="note">{e(c["message"])}</p></section>'
    out.append(f"<h3>New this week ({fmt_int(c['n_new'])})</h3>")
    out.append(_cluster_table(c["new"]) if c["new"] else '<p class="muted">None.</p>')
    out.append(
        f"<h3>Fed by few accounts ({fmt_int(c['n_concentrated'])})</h3><p class='lead'>Clusters with at least "
        f"{fmt_int(c['min_requests'])} requests this week where the top five accounts send "
        f"{fmt_pct(c['top5_threshold'])} or more: organic topics draw many unrelated users.</p>"
    )
    out.append(_cluster_table(c["concentrated"]) if c["concentrated"] else '<p class="muted">None.</p>')
    return "".join(out) + "</section>"


def _method(data: dict[str, Any]) -> str:
    m = data.get("method") or {}
    thr = m.get("threshold")
    fpr = m.get("expected_fpr")
    items = [
        f"Accounts are flagged when their sweep score is at least <b>{e(thr if thr is not None else 'n/a')}</b>; "
        f"expected false-positive rate on organic accounts: <b>{e(fmt_pct(fpr, 1) if fpr is not None else 'not recorded')}</b>."
    ]
    if m.get("calibration"):
        items.append(f"Calibration: {e(m['calibration'])}.")
    if m.get("flags_window"):
        items.append(
            f"Flags come from the score run over {e(m['flags_window'][0])} to {e(m['flags_window'][1])}"
            f"{', run at ' + e(m['run_at']) if m.get('run_at') else ''}; weekly counts are the flagged "
            "accounts and members of flagged groups that sent requests in the week."
        )
    items.append(
        f"An area is <i>under pressure</i> when at least {fmt_pct(m.get('pressure_threshold'))} of its weekly "
        f"requests come from flagged traffic; a cluster is <i>fed by few accounts</i> when its top five "
        f"accounts send {fmt_pct(m.get('top5_threshold'))} or more of its weekly requests."
    )
    items.append(
        "Prompt text is attacker-controlled: it is shown escaped, clipped to 240 characters, with "
        "bidirectional-override characters made visible, and "
        + (f"with {REDACTED_KINDS} redacted." if data["redacted"] else "NOT redacted.")
    )
    items.extend(e(n) for n in data.get("notes", []))
    return (
        '<section id="method"><h2>Method and thresholds</h2><ul>'
        + "".join(f"<li>{x}</li>" for x in items)
        + "</ul></section>"
    )


def render_html(data: dict[str, Any]) -> str:
    """The full HTML page for a report data dict from :func:`promptcov.reports.data.build_report_data`."""
    all_areas = [r["area"] for r in data["areas"]["rows"]] + list(data["map"].get("areas", []))
    colors = charts.area_colors(list(dict.fromkeys(all_areas)), (data.get("taxonomy") or {}).get("areas", ()))
    week = e(data["week"])
    nav = "".join(
        f'<a href="#{k}">{v}</a>'
        for k, v in [
            ("areas", "Areas"),
            ("groups", "Groups"),
            ("accounts", "Accounts"),
            ("map", "Map"),
            ("clusters", "Clusters"),
            ("method", "Method"),
        ]
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<meta name='generator' content='promptcov'><title>promptcov report {week}</title><style>{CSS}</style>"
        "</head><body><main>"
        f"<header><h1>Capability-targeting report <span class='wk'>{week}</span></h1>"
        f"<p class='muted'>{e(fmt_day_range(data['week_start'], data['week_end']))} (UTC) · generated "
        f"{e(data['generated_at'])} · store data {e(data['store_range'][0][:10])} to {e(data['store_range'][1][:10])}"
        f"{'' if data['redacted'] else ' · <b>personal data NOT redacted</b>'}</p><nav>{nav}</nav></header>"
        f"<section class='summary' aria-label='summary'><h2>Summary</h2><p>{e(data['summary'])}</p></section>"
        f"{_cards(data)}{_areas(data, colors)}{_groups(data)}{_accounts(data)}{_map(data, colors)}"
        f"{_clusters(data)}{_method(data)}"
        "<footer class='muted'>promptcov · confidential: trust and safety review</footer></main></body></html>\n"
    )
