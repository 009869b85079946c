"""Short human-readable evidence for a score: what pushed it up first, then what held it down."""

from __future__ import annotations

import numpy as np

from promptcov.coverage.scoring.params import ScoreWeights

__all__ = ["reasons_for"]

_SHRINK_N = ScoreWeights().shrink_n


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _phrase(driver: str, c: float, m: dict) -> str:
    if driver == "templated":
        k = int(np.nan_to_num(m.get("n_templates", 0.0)))
        return f"{_pct(m['template_share'])} templated ({k} rare template{'s' if k != 1 else ''})"
    if driver == "tiling":
        return f"{_pct(m['tiling_regularity'])} tiling (each prompt near an earlier one, not a copy)"
    if driver == "near_duplicates":
        return f"{_pct(m['near_dup_rate'])} near-duplicates of earlier prompts"
    if driver == "targeting":
        if m["cot_share"] >= m["high_value_share"]:
            return f"{_pct(m['cot_share'])} chain-of-thought elicitation"
        a1, a2 = m.get("top_capability", ""), m.get("second_capability", "")
        if a2 and m["top1_share"] < 0.9:
            return f"{_pct(m['top2_share'])} in {a1}+{a2}"
        return f"{_pct(m['top1_share'])} in {a1}"
    if driver == "followups":
        f = m["followup_share"]
        return "0 follow-ups" if c > 0 and f == 0 else f"{_pct(f)} follow-up turns"
    if driver == "timing":
        kind = m.get("timing_class", "")
        if kind == "round_the_clock":
            return f"active {m['active_hours']:.0f}/24 hours, flat round the clock"
        if kind == "scheduled":
            return f"scheduled: one {24 - m['quiet_hours']:.0f}-hour window on {m['active_days']:.0f} days"
        return f"diurnal: quiet {m['quiet_hours']:.0f} hours a day"
    if driver == "pacing":
        return f"machine-regular pacing (burstiness {m['burstiness']:.2f})"
    if driver == "coverage":
        ratio = m["coverage_ratio"]
        if c > 0:
            return f"tiles its region {ratio:.1f}x denser than organic accounts of its volume"
        return f"narrow: touches {ratio:.1f}x the cells random traffic of its volume would"
    if driver == "group":
        sync = np.nan_to_num(m.get("sync_share", 0.0))
        alike = np.nan_to_num(m.get("alike_members", 0.0))
        fill = f", {alike:.0f} filling its rare templates alike" if alike >= 1.5 else ""
        return f"coordinated group of {m.get('n_members', 0):.0f} accounts{fill} ({_pct(sync)} synchronised)"
    raise ValueError(f"unknown driver {driver!r}")


def reasons_for(
    metrics_row: dict,
    contributions_row: dict,
    max_items: int = 5,
    min_abs: float = 0.25,
    shrink_n: float = _SHRINK_N,
) -> str:
    """Short evidence, most important first: what pushed the score up, then what held it down.

    ``metrics_row``: metric name -> value for one row (plus ``timing_class``);
    ``contributions_row``: driver -> shrunk contribution (from :func:`score_metrics`).
    """
    metrics_row = {k: (np.nan if v is None else v) for k, v in metrics_row.items()}
    items = sorted(((c, d) for d, c in contributions_row.items() if abs(c) >= min_abs), key=lambda x: -x[0])
    up = [(c, d) for c, d in items if c > 0]
    down = sorted([(c, d) for c, d in items if c < 0])
    chosen = up[: max_items - min(2, len(down))] + down[:max_items]
    parts = [_phrase(d, c, metrics_row) for c, d in chosen[:max_items]]
    n = metrics_row.get("n_requests", 0.0)
    if n < shrink_n:
        parts.append(f"only {n:.0f} requests: evidence shrunk toward the prior")
    return "; ".join(parts) if parts else "no sweep evidence"
