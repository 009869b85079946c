"""Combine coverage metrics into a sweep score in [0, 1] with a fixed functional form.

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
                   Groups get no narrowness penalty: a linked pool filling one scaffold is
                   narrow by construction (like a daily rhythm, narrowness describes one sender).
group              ``3.0 * G`` for groups only, ``G = 0.3 size + 0.4 link strength +
                   0.3 synchrony`` (:func:`group_evidence`; size counts the members acting
                   alike, i.e. filling the group's rare templates). Added *after* the volume
                   shrinkage: coordination is a fact about the accounts, not a rate.
================== ===================================================================

``bias = -5.5`` puts traffic with no evidence at ~0.4%; a full templated sweep of valuable
areas with machine timing reaches z ~ +2.6 (0.93). Worked cases (z_evidence): batch job over
a low-value area ~ -6; the same job in a valuable area, scheduled and narrow ~ -1.4; a coding
tool with follow-ups ~ -2 to -3; a focused person ~ -3 to -5. ``prior_logit = -4`` (1.8%) and
``shrink_n = 50`` mean an account needs ~100 requests of clear sweep traffic to pass 0.5
alone: 25 requests of it score ~0.13, which is why low-volume campaign accounts are caught
through their group: an account's published score is the larger of its own score and its
group's score times its tie to the group (:mod:`promptcov.coverage.scoring.detector`).

Known limit, chosen for precision: a single account sweeping a task set *without* a template
the template detector recognises gets structure only from tiling (``S <= 0.55``) and stays
below 0.5 unless its coverage is broader than random traffic; raising the tiling weight would
also lift single-key products whose many users densely sample one topic. Such campaigns are
caught through their linked group.
"""

from __future__ import annotations

import numpy as np

from promptcov.coverage.scoring.params import ScoreWeights

__all__ = [
    "ScoreWeights",
    "DEFAULT_WEIGHTS",
    "column",
    "n_rows",
    "DRIVERS",
    "structure_evidence",
    "targeting_evidence",
    "timing_class",
    "evidence_contributions",
    "score_metrics",
    "group_evidence",
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


DEFAULT_WEIGHTS = ScoreWeights()


def column(metrics: dict, name: str, n: int, fill: float = np.nan) -> np.ndarray:
    """Metric ``name`` as a float array of length ``n`` (``fill`` when the metric is absent)."""
    value = metrics.get(name)
    if value is None:
        return np.full(n, fill)
    return np.asarray(value, dtype=np.float64)


def n_rows(metrics: dict) -> int:
    """Number of rows of a metrics dict (its ``n_requests`` column)."""
    if "n_requests" not in metrics:
        raise ValueError("metrics need 'n_requests'")
    return len(np.asarray(metrics["n_requests"]))


def structure_evidence(
    metrics: dict, w: ScoreWeights = DEFAULT_WEIGHTS
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Structure ``S`` in [0, 1] and the parts it is made of (templated, tiling, near_duplicates).

    A soft OR: any one of a rare template, a tiling walk or near-copies is structure.
    """
    n = n_rows(metrics)
    t = np.nan_to_num(column(metrics, "template_share", n), nan=0.0)
    g = np.nan_to_num(column(metrics, "tiling_regularity", n), nan=0.0)
    g = w.tiling_weight * np.clip((g - w.tiling_floor) / w.tiling_span, 0.0, 1.0)
    d = w.near_dup_weight * np.nan_to_num(column(metrics, "near_dup_rate", n), nan=0.0)
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
    n = n_rows(metrics)
    area = np.nan_to_num(column(metrics, "high_value_share", n), nan=0.0)
    cot = np.nan_to_num(column(metrics, "cot_share", n), nan=0.0)
    return np.maximum(area, cot), cot > area


def timing_class(metrics: dict, w: ScoreWeights = DEFAULT_WEIGHTS) -> np.ndarray:
    """Per row: 'round_the_clock', 'modulated', 'diurnal', 'scheduled', 'burst' or '' (unknown).

    Round-the-clock means at most one quiet hour *and* a flat profile: the first daily harmonic
    below ``max(w.flat_amplitude, w.flat_noise / sqrt(n))`` (above the noise of a flat histogram).
    """
    n_req = column(metrics, "n_requests", n_rows(metrics))
    quiet = column(metrics, "quiet_hours", len(n_req))
    amp = column(metrics, "diurnal_amplitude", len(n_req))
    days = np.nan_to_num(column(metrics, "active_days", len(n_req)), nan=0.0)
    flat = amp < np.maximum(w.flat_amplitude, w.flat_noise / np.sqrt(np.maximum(n_req, 1)))
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
    n = n_rows(metrics)
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
    f = column(metrics, "followup_share", n)
    frac = np.clip(np.nan_to_num(f, nan=0.0) / w.followup_full, 0.0, 1.0)
    out["followups"] = np.where(np.isnan(f), 0.0, w.no_followups - (w.no_followups + w.many_followups) * frac)
    kind = timing_class(metrics, w)
    timing = np.zeros(n)
    timing[kind == "round_the_clock"] = w.round_the_clock
    if group is None:  # a daily rhythm says "a person" of one sender, not of a pool of accounts
        timing[kind == "diurnal"] = -w.diurnal
    timing[kind == "scheduled"] = -w.scheduled
    out["timing"] = timing
    burst = np.nan_to_num(column(metrics, "burstiness", n), nan=0.0)
    out["pacing"] = w.pacing * np.clip(-2.0 * burst, 0.0, 1.0)
    ratio = column(metrics, "coverage_ratio", n)
    cov_n = np.nan_to_num(column(metrics, "coverage_n", n), nan=0.0)
    ok = ~np.isnan(ratio) & (cov_n >= w.coverage_min_n)
    lr = np.log2(np.where(ok, ratio, 1.0))
    cov = np.where(lr >= 0, np.minimum(lr, 1.0), np.clip((lr - w.coverage_dead_zone) / 1.0, -1.0, 0.0))
    if group is not None:  # narrowness says "a person, a batch job" of one sender, not of a linked pool
        cov = np.maximum(cov, 0.0)
    out["coverage"] = np.where(ok, w.coverage * cov, 0.0)
    out["group"] = (
        np.zeros(n) if group is None else w.group * np.clip(np.asarray(group, np.float64), 0.0, 1.0)
    )
    return out


def score_metrics(
    metrics: dict, weights: ScoreWeights | None = None, group: np.ndarray | None = None,
    alike: np.ndarray | None = None, alike_share: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Score in [0, 1] per row and each driver's contribution to its (shrunk) logit.

    ``group`` (optional, in [0, 1]) is :func:`group_evidence` for pooled group rows. The traffic
    contributions are multiplied by the volume reliability ``r``; the group term is not: links
    between accounts and their synchrony are facts about the accounts, not a rate estimated
    from the requests, so a small group is as coordinated as a large one. The returned
    contributions are what moved this row's logit away from the prior.

    ``alike`` (optional, per row) is the number of members sending a group's template fills alike
    (:func:`~promptcov.coverage.scoring.component.alike_members`) and ``alike_share`` the share of
    the row's traffic those fills vouch for. Shrinkage guards against one sender's fluke: thirty
    templated requests from one account may be an afternoon's project, from six linked accounts
    filling the same rare scaffolds they are a pattern. So ``r`` is at least
    ``alike_share * (k - 1) / (k - 1 + w.shrink_members)``: every member beyond the first is a
    replicate.
    """
    w = DEFAULT_WEIGHTS if weights is None else weights
    contrib = evidence_contributions(metrics, w, group)
    n = np.nan_to_num(column(metrics, "n_requests", n_rows(metrics)), nan=0.0)
    r = n / (n + w.shrink_n)
    if alike is not None and w.shrink_members > 0:
        k = np.maximum(np.nan_to_num(np.asarray(alike, np.float64), nan=0.0) - 1.0, 0.0)
        share = 1.0 if alike_share is None else np.clip(np.nan_to_num(np.asarray(alike_share, np.float64)), 0, 1)
        r = np.maximum(r, share * k / (k + w.shrink_members))
    traffic = sum(v for k, v in contrib.items() if k != "group")
    z = r * (w.bias + traffic) + (1.0 - r) * w.prior_logit + contrib["group"]
    shrunk = {k: (v if k == "group" else r * v) for k, v in contrib.items()}
    return 1.0 / (1.0 + np.exp(-z)), shrunk


def group_evidence(
    n_members: np.ndarray, cohesion: np.ndarray, sync_share: np.ndarray, w: ScoreWeights = DEFAULT_WEIGHTS
) -> np.ndarray:
    """Coordination evidence of a group in [0, 1]: a weighted mean of size, cohesion and synchrony.

    ``size = min(1, log2(n_members) / log2(w.group_size_saturation))``; ``cohesion`` is the mean
    posterior probability that two linked members are run by one operator (the linker's
    Fellegi-Sunter estimate, :attr:`AccountLinker.cohesion_`); ``sync_share`` is
    :func:`promptcov.coverage.metrics.groups.synchrony`. Organic accounts that share an office
    network still have organic pooled traffic, so this can only tip a group whose pooled traffic
    already looks like a sweep.
    """
    n_members = np.asarray(n_members, dtype=np.float64)
    size = np.clip(np.log2(np.maximum(n_members, 1.0)) / np.log2(w.group_size_saturation), 0.0, 1.0)
    links = np.clip(np.nan_to_num(np.asarray(cohesion, np.float64), nan=0.0), 0.0, 1.0)
    sync = np.clip(np.nan_to_num(np.asarray(sync_share, np.float64), nan=0.0), 0.0, 1.0)
    total = w.group_size_weight + w.group_cohesion_weight + w.group_sync_weight
    return (w.group_size_weight * size + w.group_cohesion_weight * links + w.group_sync_weight * sync) / total
