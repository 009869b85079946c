"""Combine coverage metrics into a sweep score in [0, 1], calibrate the flag threshold, explain.

The score has a **fixed functional form** (no ranking inside the population), so the same
traffic gets the same score in any run or window::

    z_evidence = bias + sum of bounded traffic contributions (log-odds units, below)
    r          = n / (n + shrink_n)                       # volume reliability
    score      = sigmoid(r * z_evidence + (1 - r) * prior_logit + group)

A sweep is *structure* AND *targeting*, carried by *non-human traffic*; the contributions
follow that definition (defaults of :class:`ScoreWeights`):

================== ===================================================================
driver             contribution and why
================== ===================================================================
structure (S)      ``2.0 * S`` with ``S = 1 - (1 - template_share)(1 - 0.55 g)(1 - 0.4 d)``:
                   a rare shared template is the sweep's signature; ``g`` rescales the
                   tiling band share (0.4 -> 0, 0.9 -> 1: organic mixes sit below 0.4 on real
                   embeddings), ``d`` is the near-duplicate rate (long scaffolds).
targeting (T)      ``1.5 * T`` with ``T = max(high_value_share, cot_share)``: campaigns buy
                   valuable areas and above all reasoning. How the traffic spreads over the
                   valuable areas does not count: a broad campaign over five of them is as
                   targeted as one over two, and benign jobs are concentrated too.
S x T              ``3.0 * S * T``: the AND. Templated traffic in a low-value area (a batch
                   job) or untemplated traffic in a valuable one (a coding tool) gets only
                   one of the two main terms; split half/half between the two drivers.
followups          ``+0.6`` with no follow-ups, falling to ``-1.5`` at 20% follow-up turns
                   (people converse; a sweep never needs to). 0 when turns are unknown.
timing             ``+1.0`` flat round-the-clock (<= 1 quiet hour, no daily rhythm: a
                   runner), ``-0.5`` diurnal (3-12 quiet hours: a person; 0 for a group's
                   pooled traffic, where a daily rhythm is an operator's office hours), ``-1.5``
                   scheduled (one short window on 3+ days: a nightly job), 0 otherwise
                   (a product's modulated round-the-clock traffic, a single burst, too few
                   requests).
pacing             ``+0.5 * clip(-2 * burstiness, 0, 1)``: machine-regular inter-arrival gaps.
coverage           ``1.5 * min(1, log2 ratio)`` above ``coverage_ratio`` 1: broader than
                   random traffic of its volume (a map of the region); 0 between 0.75 and 1
                   (a large account saturates its area, so a small deficit says nothing);
                   down to ``-1.5`` at ratio 0.375 and below: narrower than random traffic (a
                   person, a batch job over real documents). 0 below 10 requests in the area.
group              ``1.5 * G`` for groups only, ``G = 0.3 size + 0.4 link strength +
                   0.3 synchrony`` (:func:`group_evidence`). Added *after* the volume
                   shrinkage: coordination is a fact about the accounts, not a rate.
================== ===================================================================

``bias = -5.5`` puts traffic with no evidence at ~0.4%; a full templated sweep of valuable
areas with machine timing reaches z ~ +2.6 (0.93). Worked cases (z_evidence): batch job over
a low-value area ~ -6; the same job in a valuable area, scheduled and narrow ~ -1.4; a coding
tool with follow-ups ~ -2 to -3; a focused person ~ -3 to -5. ``prior_logit = -4`` (1.8%) and
``shrink_n = 50`` mean an account needs ~100 requests of clear sweep traffic to pass 0.5
alone: 25 requests of it score ~0.13, which is why low-volume campaign accounts are caught
through their group's pooled traffic instead. Measured on a simulated 4-week demo log with
all-MiniLM-L6-v2 vectors: a human-paced campaign over five valuable areas scores 0.52 for its
3-account group (81 requests) and 0.79 for its 4-account group (319); its largest account
(135 requests, diurnal) 0.35; every benign account (product, coding tool, batch job, team,
power user, benchmark, organic) stays at or below 0.04.

Known limit, chosen for precision: a single account sweeping a task set *without* a template
the template detector recognises gets structure only from tiling (``S <= 0.55``) and stays
below 0.5 unless its coverage is broader than random traffic. With all-MiniLM-L6-v2 vectors
of real task sets (150 requests, flat timing, no follow-ups, no template) such accounts
scored 0.12-0.21: raising the tiling weight would also lift single-key products whose many
users densely sample one topic. Such campaigns are caught through their linked group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from promptcov.coverage.metrics.groups import LINK_STRENGTH

__all__ = [
    "ScoreWeights",
    "DRIVERS",
    "LINK_STRENGTH",
    "structure_evidence",
    "targeting_evidence",
    "timing_class",
    "evidence_contributions",
    "score_metrics",
    "group_evidence",
    "calibrate_threshold",
    "null_fit",
    "benchmark_like",
    "reasons_for",
]

#: Driver names, in the order :func:`evidence_contributions` returns them.
DRIVERS = (
    "templated",
    "tiling",
    "near_duplicates",
    "targeting",
    "followups",
    "timing",
    "pacing",
    "coverage",
    "group",
)


@dataclass(frozen=True)
class ScoreWeights:
    """The fixed weights of the score (log-odds units); see the module docstring."""

    bias: float = -5.5
    structure: float = 2.0
    targeting: float = 1.5
    structure_x_targeting: float = 3.0
    tiling_weight: float = 0.55
    tiling_floor: float = 0.4
    tiling_span: float = 0.5
    near_dup_weight: float = 0.4
    no_followups: float = 0.6
    many_followups: float = 1.5
    followup_full: float = 0.2
    round_the_clock: float = 1.0
    diurnal: float = 0.5
    scheduled: float = 1.5
    pacing: float = 0.5
    coverage: float = 1.5
    coverage_min_n: float = 10.0
    coverage_dead_zone: float = -0.415
    group: float = 1.5
    prior_logit: float = -4.0
    shrink_n: float = 50.0


DEFAULT_WEIGHTS = ScoreWeights()


def _get(metrics: dict, name: str, n: int, fill: float = np.nan) -> np.ndarray:
    value = metrics.get(name)
    if value is None:
        return np.full(n, fill)
    return np.asarray(value, dtype=np.float64)


def _len(metrics: dict) -> int:
    if "n_requests" not in metrics:
        raise ValueError("metrics need 'n_requests'")
    return len(np.asarray(metrics["n_requests"]))


def structure_evidence(
    metrics: dict, w: ScoreWeights = DEFAULT_WEIGHTS
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Structure ``S`` in [0, 1] and the parts it is made of (templated, tiling, near_duplicates).

    A soft OR: any one of a rare template, a tiling walk or near-copies is structure.
    """
    n = _len(metrics)
    t = np.nan_to_num(_get(metrics, "template_share", n), nan=0.0)
    g = np.nan_to_num(_get(metrics, "tiling_regularity", n), nan=0.0)
    g = w.tiling_weight * np.clip((g - w.tiling_floor) / w.tiling_span, 0.0, 1.0)
    d = w.near_dup_weight * np.nan_to_num(_get(metrics, "near_dup_rate", n), nan=0.0)
    s = 1.0 - (1.0 - t) * (1.0 - g) * (1.0 - d)
    return s, {"templated": t, "tiling": g, "near_duplicates": d}


def targeting_evidence(metrics: dict) -> tuple[np.ndarray, np.ndarray]:
    """Targeting ``T`` in [0, 1] and whether chain-of-thought elicitation is what drives it.

    ``T = max(high_value_share, cot_share)``: the share of the traffic that buys something worth
    distilling. How that traffic is spread over the valuable areas does not enter: a campaign
    may buy two areas or sweep five of them, and all of its traffic is valuable either way,
    while concentration in few areas is just as typical of benign single-purpose traffic (a
    batch job, a product).
    """
    n = _len(metrics)
    area = np.nan_to_num(_get(metrics, "high_value_share", n), nan=0.0)
    cot = np.nan_to_num(_get(metrics, "cot_share", n), nan=0.0)
    return np.maximum(area, cot), cot > area


def timing_class(metrics: dict) -> np.ndarray:
    """Per row: 'round_the_clock', 'modulated', 'diurnal', 'scheduled', 'burst' or '' (unknown).

    Round-the-clock means at most one quiet hour *and* a flat profile: the first daily
    harmonic below ``max(0.12, 2.5 / sqrt(n))`` (above the noise of a flat histogram of n).
    """
    n_req = _get(metrics, "n_requests", _len(metrics))
    quiet = _get(metrics, "quiet_hours", len(n_req))
    amp = _get(metrics, "diurnal_amplitude", len(n_req))
    days = np.nan_to_num(_get(metrics, "active_days", len(n_req)), nan=0.0)
    flat = amp < np.maximum(0.12, 2.5 / np.sqrt(np.maximum(n_req, 1)))
    out = np.full(len(n_req), "", dtype=object)
    known = ~np.isnan(quiet)
    out[known & (quiet <= 2)] = "modulated"
    out[known & (quiet <= 1) & flat] = "round_the_clock"
    out[known & (quiet > 2) & (quiet <= 12)] = "diurnal"
    out[known & (quiet > 12)] = "burst"
    out[known & (quiet > 12) & (days >= 3)] = "scheduled"
    return out


def evidence_contributions(
    metrics: dict, w: ScoreWeights = DEFAULT_WEIGHTS, group: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Unshrunk log-odds contribution of every driver in :data:`DRIVERS` (bias excluded)."""
    n = _len(metrics)
    s, parts = structure_evidence(metrics, w)
    t, _ = targeting_evidence(metrics)
    inter = w.structure_x_targeting * s * t
    structure = w.structure * s + 0.5 * inter
    total_parts = parts["templated"] + parts["tiling"] + parts["near_duplicates"]
    safe = np.where(total_parts > 0, total_parts, 1.0)
    out = {
        name: np.where(total_parts > 0, structure * parts[name] / safe, 0.0)
        for name in ("templated", "tiling", "near_duplicates")
    }
    out["targeting"] = w.targeting * t + 0.5 * inter
    f = _get(metrics, "followup_share", n)
    frac = np.clip(np.nan_to_num(f, nan=0.0) / w.followup_full, 0.0, 1.0)
    out["followups"] = np.where(np.isnan(f), 0.0, w.no_followups - (w.no_followups + w.many_followups) * frac)
    kind = timing_class(metrics)
    timing = np.zeros(n)
    timing[kind == "round_the_clock"] = w.round_the_clock
    if group is None:  # a daily rhythm says "a person" of one sender, not of a pool of accounts
        timing[kind == "diurnal"] = -w.diurnal
    timing[kind == "scheduled"] = -w.scheduled
    out["timing"] = timing
    burst = np.nan_to_num(_get(metrics, "burstiness", n), nan=0.0)
    out["pacing"] = w.pacing * np.clip(-2.0 * burst, 0.0, 1.0)
    ratio = _get(metrics, "coverage_ratio", n)
    cov_n = np.nan_to_num(_get(metrics, "coverage_n", n), nan=0.0)
    ok = ~np.isnan(ratio) & (cov_n >= w.coverage_min_n)
    lr = np.log2(np.where(ok, ratio, 1.0))
    cov = np.where(lr >= 0, np.minimum(lr, 1.0), np.clip((lr - w.coverage_dead_zone) / 1.0, -1.0, 0.0))
    out["coverage"] = np.where(ok, w.coverage * cov, 0.0)
    out["group"] = (
        np.zeros(n) if group is None else w.group * np.clip(np.asarray(group, np.float64), 0.0, 1.0)
    )
    return out


def score_metrics(
    metrics: dict, weights: ScoreWeights | None = None, group: np.ndarray | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Score in [0, 1] per row and each driver's contribution to its (shrunk) logit.

    ``group`` (optional, in [0, 1]) is :func:`group_evidence` for pooled group rows. The traffic
    contributions are multiplied by the volume reliability ``r``; the group term is not: links
    between accounts and their synchrony are facts about the accounts, not a rate estimated
    from the requests, so a small group is as coordinated as a large one. The returned
    contributions are what moved this row's logit away from the prior.
    """
    w = DEFAULT_WEIGHTS if weights is None else weights
    contrib = evidence_contributions(metrics, w, group)
    n = np.nan_to_num(_get(metrics, "n_requests", _len(metrics)), nan=0.0)
    r = n / (n + w.shrink_n)
    traffic = sum(v for k, v in contrib.items() if k != "group")
    z = r * (w.bias + traffic) + (1.0 - r) * w.prior_logit + contrib["group"]
    shrunk = {k: (v if k == "group" else r * v) for k, v in contrib.items()}
    return 1.0 / (1.0 + np.exp(-z)), shrunk


def group_evidence(n_members: np.ndarray, link_strength: np.ndarray, sync_share: np.ndarray) -> np.ndarray:
    """Coordination evidence of a group in [0, 1]: ``0.3 size + 0.4 links + 0.3 synchrony``.

    ``size = min(1, log2(n_members) / 5)`` (32 accounts saturate); ``link_strength`` is the
    mean :data:`LINK_STRENGTH` of the group's edges (a shared rare template or card says more
    than a shared ASN); ``sync_share`` is :func:`promptcov.coverage.metrics.synchrony`.
    Organic accounts that share an office network still have organic pooled traffic, so this
    can only tip a group whose pooled traffic already looks like a sweep.
    """
    n_members = np.asarray(n_members, dtype=np.float64)
    size = np.clip(np.log2(np.maximum(n_members, 1.0)) / 5.0, 0.0, 1.0)
    links = np.clip(np.nan_to_num(np.asarray(link_strength, np.float64), nan=0.0), 0.0, 1.0)
    sync = np.clip(np.nan_to_num(np.asarray(sync_share, np.float64), nan=0.0), 0.0, 1.0)
    return 0.3 * size + 0.4 * links + 0.3 * sync


def calibrate_threshold(
    scores: np.ndarray,
    n_requests: np.ndarray,
    target_fpr: float = 0.01,
    min_requests: int = 20,
    floor: float = 0.5,
    ceiling: float = 0.95,
) -> float:
    """Flag threshold from the window's own score distribution, never below ``floor``.

    Method: take the logit scores of accounts with at least ``min_requests`` requests (smaller
    ones sit at the prior and say nothing), estimate the organic null from the *lower* part of
    that distribution (:func:`null_fit`) and put the threshold at the null's ``1 - target_fpr``
    normal quantile, clipped to ``[floor, ceiling]``. Sweeps only ever push scores *up*, and a
    small window can hold more campaign accounts with 20+ requests than organic ones (a hydra
    of 30 accounts next to 20 active people), so a median/MAD null would sit among the sweeps
    and calibrate them out of flagging; the lower quartiles stay organic up to ~75% sweeps.

    Expected false-positive rate: at most ``target_fpr`` (1%) of organic accounts with enough
    volume when the quantile binds (a noisy window), and lower when the fixed floor binds,
    which it does for a clean population: organic logits sit near -5, so a clean window flags
    nobody. The ceiling keeps a window dominated by attack traffic from calibrating itself out
    of flagging. With fewer than 20 qualifying accounts the floor is returned.
    """
    scores = np.asarray(scores, dtype=np.float64)
    n_requests = np.asarray(n_requests, dtype=np.float64)
    if scores.shape != n_requests.shape:
        raise ValueError(f"scores {scores.shape} and n_requests {n_requests.shape} differ in shape")
    if not 0.0 < target_fpr < 0.5:
        raise ValueError(f"target_fpr must be in (0, 0.5), got {target_fpr}")
    if not 0.0 < floor <= ceiling < 1.0:
        raise ValueError(f"need 0 < floor <= ceiling < 1, got {floor}, {ceiling}")
    center, scale, n_used = null_fit(scores, n_requests, min_requests)
    if n_used < 20:
        return float(floor)
    q = center + stats.norm.isf(target_fpr) * scale
    return float(np.clip(1.0 / (1.0 + np.exp(-q)), floor, ceiling))


def null_fit(scores: np.ndarray, n_requests: np.ndarray, min_requests: int = 20) -> tuple[float, float, int]:
    """Robust null of the logit scores from its lower quantiles: ``(centre, scale (>= 0.1), n used)``.

    For a normal null ``q25 = mu - 0.674 s`` and ``q10 = mu - 1.282 s``, so
    ``s = (q25 - q10) / 0.607`` and ``mu = q25 + 0.674 s``. Contamination by sweeps is one-sided
    (upward), so these quantiles belong to the organic accounts while sweeps are fewer than
    ~75% of the accounts used (a median would break at 50%); for a clean population the
    estimate equals the median and ``1.4826 * MAD``. Only accounts with at least
    ``min_requests`` requests are used; NaN centre and scale when there are none.
    """
    scores = np.asarray(scores, dtype=np.float64)
    n_requests = np.asarray(n_requests, dtype=np.float64)
    keep = (n_requests >= min_requests) & np.isfinite(scores)
    if not keep.any():
        return float("nan"), float("nan"), 0
    p = np.clip(scores[keep], 1e-9, 1 - 1e-9)
    q10, q25 = np.quantile(np.log(p / (1 - p)), [0.10, 0.25])
    z10, z25 = stats.norm.isf(0.10), stats.norm.isf(0.25)
    scale = max(float(q25 - q10) / (z10 - z25), 0.1)
    return float(q25 + z25 * scale), scale, int(keep.sum())


def benchmark_like(
    metrics: dict,
    linked: np.ndarray,
    max_span_hours: float = 24.0,
    min_structure: float = 0.5,
    min_requests: int = 20,
) -> np.ndarray:
    """One-off benchmark runs: systematic, but benign.

    An evaluator runs one template over a task set once: structured (``S >= min_structure``),
    all inside ``max_span_hours`` on at most two calendar days, no follow-ups, and the account
    is linked to no other account (``linked`` false). A campaign differs by repeating and by
    spreading over many linked accounts.
    """
    n = _len(metrics)
    linked = np.asarray(linked, dtype=bool)
    if linked.shape != (n,):
        raise ValueError(f"linked has shape {linked.shape}, expected ({n},)")
    s, _ = structure_evidence(metrics)
    span = _get(metrics, "span_hours", n)
    days = np.nan_to_num(_get(metrics, "active_days", n), nan=99.0)
    f = np.nan_to_num(_get(metrics, "followup_share", n), nan=0.0)
    n_req = _get(metrics, "n_requests", n)
    return (
        ~linked
        & (s >= min_structure)
        & (np.nan_to_num(span, nan=1e9) < max_span_hours)
        & (days <= 2)
        & (f <= 0.05)
        & (n_req >= min_requests)
    )


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
        return f"coordinated group of {m.get('n_members', 0):.0f} accounts ({_pct(sync)} synchronised)"
    raise ValueError(f"unknown driver {driver!r}")


def reasons_for(
    metrics_row: dict,
    contributions_row: dict,
    max_items: int = 5,
    min_abs: float = 0.25,
    shrink_n: float = DEFAULT_WEIGHTS.shrink_n,
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
