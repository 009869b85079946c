"""The summary paragraph at the top of the report, written from the report data.

It answers the four questions a reader has in the first two minutes: which areas are being
swept, by which groups, since when, and on what evidence -- plus how that changed since the
previous week. It uses only figures already in the data dict, so it cannot disagree with the
tables below it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["summary_text", "fmt_int", "fmt_pct", "join_words"]

_LINK_WORDS = {
    "template": "shared templates",
    "near_duplicate": "near-duplicate prompts",
    "payment": "shared payment instruments",
    "ip": "shared IP addresses",
    "asn": "shared networks (ASN)",
    "timing": "synchronised timing",
}


def fmt_int(n: float | int | None) -> str:
    """``12345 -> '12,345'``."""
    return "0" if n is None else f"{int(round(n)):,}"


def fmt_pct(x: float | None, digits: int = 0) -> str:
    """``0.123 -> '12%'``; ``None -> 'n/a'``."""
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def join_words(words: list[str]) -> str:
    """``['a', 'b', 'c'] -> 'a, b and c'``."""
    words = [w for w in words if w]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def link_phrase(link_types: dict[str, int], k: int = 3) -> str:
    """``{'template': 340, 'payment': 1} -> 'shared templates (340 links) and shared payment instruments (1 link)'``."""
    parts = [
        f"{_LINK_WORDS.get(t, t)} ({fmt_int(n)} link{'s' if n != 1 else ''})"
        for t, n in list(link_types.items())[:k]
    ]
    return join_words(parts)


def _trend(cur: float, prev: float) -> str:
    if prev == 0:
        return "none the week before" if cur else "none either week"
    pct = (cur - prev) / prev
    if abs(pct) < 0.05:
        return f"about the same as the week before ({fmt_int(prev)})"
    return f"{'up' if pct > 0 else 'down'} {fmt_pct(abs(pct))} from {fmt_int(prev)}"


def summary_text(data: dict[str, Any]) -> str:
    """One paragraph (plain text) summarising the week; see the module docstring."""
    head, week = data["headline"], data["week"]
    groups = data["groups"]
    accounts = data["accounts"]
    areas = data["areas"]["rows"]
    out = [
        f"In {week} the store saw {fmt_int(head['requests']['value'])} requests from "
        f"{fmt_int(head['accounts']['value'])} accounts ({_trend(head['requests']['value'], head['requests']['previous'])})."
    ]
    if not data["groups"]["available"] and not accounts["available"]:
        out.append("Nothing has been scored yet: run `promptcov score` to flag sweeps.")
        return " ".join(out)
    active = [g for g in groups["items"] if g["requests_week"] > 0]
    swept = [r["area"] for r in areas if r["flagged_requests"] > 0]
    swept.sort(key=lambda a: -next(r["flagged_requests"] for r in areas if r["area"] == a))
    fl_req = head["flagged_requests"]
    if not fl_req["value"]:
        out.append("No flagged account or group was active this week.")
    else:
        who = []
        if groups.get("n_active"):
            who.append(
                f"{groups['n_active']} flagged group{'s' if groups['n_active'] != 1 else ''} "
                f"({fmt_int(groups['n_accounts_active'])} accounts)"
            )
        n_solo = sum(1 for a in accounts.get("flagged_outside_groups", []) if a["requests_week"] > 0)
        if n_solo:
            who.append(f"{n_solo} flagged account{'s' if n_solo != 1 else ''} outside groups")
        out.append(
            f"{join_words(who) or 'Flagged accounts'} sent {fmt_int(fl_req['value'])} requests "
            f"({fmt_pct(head['flagged_share']['value'], 1)} of all traffic; "
            f"{fmt_pct(head['flagged_share']['previous'], 1)} in {data['previous_week']}), "
            f"sweeping {join_words(swept[:3])}{' and others' if len(swept) > 3 else ''}."
        )
    if active:
        g = active[0]
        since = f"active since {g['first_seen']}" if g["first_seen"] else "first-seen date unknown"
        top = join_words([a["area"] for a in g["areas_week"][:2]])
        ev = link_phrase(g["link_types"])
        tpl = g["templates"][0] if g["templates"] else None
        s = (
            f"The largest, {g['group_id']} ({fmt_int(g['n_accounts'])} accounts, "
            f"{fmt_int(g['requests_week'])} requests, mostly {top}), has been {since}"
        )
        s += f"; its accounts are linked by {ev}" if ev else ""
        if tpl and tpl["share"] >= 0.2:
            s += f", and {fmt_pct(tpl['share'])} of its requests fill one template"
        out.append(s + ".")
        new = [x["group_id"] for x in active if x["new_this_week"]]
        if new:
            out.append(f"New this week: {join_words(new[:3])}{' and others' if len(new) > 3 else ''}.")
        piv = []
        for x in active:
            for p in x.get("pivot_models", [])[:1]:
                piv.append(
                    f"{x['group_id']} moved to {p['model']} {p['lag_days']:.1f} days after it first appeared"
                )
            if x["pivots"] and not x.get("pivot_models"):
                piv.append(f"{x['group_id']} pivoted to a newly released model")
        if piv:
            out.append(f"Model pivots: {join_words(piv[:3])}.")
    pressure = [r for r in areas if r["under_pressure"]]
    if pressure:
        parts = [f"{r['area']} ({fmt_pct(r['pressure_share'])} of its requests)" for r in pressure[:4]]
        out.append(f"Areas under systematic pressure: {join_words(parts)}.")
    cl = data["clusters"]
    if cl["available"] and (cl["n_new"] or cl["n_concentrated"]):
        out.append(
            f"{cl['n_new']} cluster{'s' if cl['n_new'] != 1 else ''} appeared this week; "
            f"{cl['n_concentrated']} draw{'s' if cl['n_concentrated'] == 1 else ''} "
            f"{fmt_pct(cl['top5_threshold'])}+ of their traffic from five accounts or fewer."
        )
    if accounts.get("n_benign"):
        out.append(
            f"{accounts['n_benign']} systematic but benign account(s) (e.g. benchmarks) are listed apart."
        )
    return " ".join(out)
