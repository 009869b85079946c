"""Per-account sweep metrics that need no vectors: areas, clusters, templates, turns, timing.

Every function here works on *segments*: rows sorted so that each account's requests are one
contiguous block, ``seg`` giving the block index (0..n_seg-1) of each row (non-decreasing) and
rows inside a block sorted by time. One account is simply ``seg = np.zeros(n, int)``; the same
code then scales to a million requests because it only uses ``np.bincount``/``np.unique``.

Why these separate a distillation sweep from organic use:

* a sweep is *targeted*: most of its volume sits in one or two valuable capability areas
  (chain-of-thought elicitation, rubric grading, agentic coding...), while a person's traffic
  has a long tail of topics;
* a sweep is *templated*: one scaffold with its slots varied, so most prompts share a rare
  template that ordinary users do not use (popular public prompts are excluded: many unrelated
  people paste those);
* a sweep is *not a conversation*: it asks and moves on, so follow-up turns are almost absent;
* a sweep is *machine-paced*: round the clock with a flat hour-of-day profile, often at a
  regular pace, while people sleep and type in bursts.
"""

from __future__ import annotations

import numpy as np

from promptcov.coverage.frame import factorize_str

__all__ = [
    "default_high_value_weights",
    "COT_AREA",
    "segments",
    "capability_concentration",
    "cluster_entropy",
    "template_metrics",
    "cot_share",
    "is_cot_marker",
    "conversation_depth",
    "timing_metrics",
]

def default_high_value_weights() -> dict[str, float]:
    """Area -> weight of a request there in ``high_value_share``: the default taxonomy's
    ``high_value_weight`` per area (one source: ``promptcov/coverage/areas/taxonomy.toml``)."""
    from promptcov.coverage.areas.taxonomy import default_taxonomy

    return default_taxonomy().high_value_weights()


#: Area id (and marker name) of chain-of-thought elicitation.
COT_AREA = "cot_elicitation"


def segments(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segment index of contiguous runs of equal ``keys``.

    Returns ``(seg, starts, first_keys)``: ``seg[i]`` is the run of row ``i``, ``starts`` the
    first row of each run and ``first_keys`` its key. Rows must already be grouped (as a
    :class:`~promptcov.coverage.frame.RequestFrame` is, by account).
    """
    keys = np.asarray(keys)
    n = len(keys)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), keys[:0]
    change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate([[0], change]).astype(np.int64)
    seg = np.zeros(n, np.int64)
    seg[change] = 1
    return np.cumsum(seg), starts, keys[starts]


def _check(seg: np.ndarray, n_seg: int, *arrays: np.ndarray) -> np.ndarray:
    seg = np.asarray(seg, dtype=np.int64)
    for a in arrays:
        if len(a) != len(seg):
            raise ValueError(f"array of length {len(a)} does not match seg of length {len(seg)}")
    if len(seg) and (seg.min() < 0 or seg.max() >= n_seg):
        raise ValueError(f"seg values must lie in [0, {n_seg})")
    return seg


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of an object column (None -> '')."""
    return factorize_str(values, none="")


def capability_concentration(
    capability: np.ndarray, seg: np.ndarray, n_seg: int, high_value: dict[str, float] | None = None
) -> dict[str, np.ndarray]:
    """How concentrated each account is on few (valuable) capability areas.

    Returns ``top1_share`` and ``top2_share`` (share of requests in the account's most and two
    most used areas), ``high_value_share`` (weighted share in the areas campaigns target, see
    :func:`default_high_value_weights`), ``n_areas`` and the names ``top_capability`` /
    ``second_capability`` (object arrays; '' when the account uses one area only).

    A sweep maps a few valuable areas densely (top-2 share near 1, high-value share near 1); a
    person's traffic spreads over a long tail of areas, mostly general chat and writing.
    """
    capability = np.asarray(capability, dtype=object)
    seg = _check(seg, n_seg, capability)
    weights = default_high_value_weights() if high_value is None else high_value
    names, code = _codes(capability)
    k = max(len(names), 1)
    counts = np.bincount(seg * k + code, minlength=n_seg * k).reshape(n_seg, k).astype(np.float64)
    n = counts.sum(axis=1)
    safe = np.maximum(n, 1.0)
    order = np.argsort(-counts, axis=1, kind="stable")
    top1 = np.take_along_axis(counts, order[:, :1], axis=1)[:, 0]
    w = np.array([weights.get(str(a), 0.0) for a in names], dtype=np.float64)
    names_obj = np.array([*names, ""], dtype=object)
    if k > 1:
        c2 = np.take_along_axis(counts, order[:, 1:2], axis=1)[:, 0]
        second = np.where(c2 > 0, order[:, 1], k)
    else:
        c2 = np.zeros(n_seg)
        second = np.full(n_seg, k)
    top2 = top1 + c2
    empty = n == 0
    return {
        "top1_share": np.where(empty, np.nan, top1 / safe),
        "top2_share": np.where(empty, np.nan, top2 / safe),
        "high_value_share": np.where(empty, np.nan, counts @ w / safe),
        "n_areas": (counts > 0).sum(axis=1).astype(np.float64),
        "top_capability": np.where(empty, "", names_obj[order[:, 0]]).astype(object),
        "second_capability": names_obj[second].astype(object),
    }


def cluster_entropy(cluster_id: np.ndarray, seg: np.ndarray, n_seg: int) -> dict[str, np.ndarray]:
    """Normalised entropy of each account's requests over the prompt map's clusters.

    Noise rows (``cluster_id == -1``) count as singletons: they are the long tail. The entropy
    is divided by ``log(min(n, K))`` with ``K`` the number of distinct categories in the window,
    so 1 means "as spread as its volume allows" and 0 "one cluster". Organic accounts score
    high (a long tail of topics); a sweep of one capability region scores low to medium.
    Also returns ``n_clusters`` (distinct non-noise clusters touched).
    """
    cluster_id = np.asarray(cluster_id, dtype=np.int64)
    seg = _check(seg, n_seg, cluster_id)
    n = np.bincount(seg, minlength=n_seg).astype(np.float64)
    noise = cluster_id < 0
    k_window = len(np.unique(cluster_id[~noise])) + int(noise.sum())
    keys = seg[~noise] * (int(cluster_id.max(initial=0)) + 1) + cluster_id[~noise]
    uniq, cnt = np.unique(keys, return_counts=True)
    useg = uniq // (int(cluster_id.max(initial=0)) + 1)
    p = cnt / n[useg]
    h = np.bincount(useg, weights=-p * np.log(p), minlength=n_seg).astype(np.float64)
    n_noise = np.bincount(seg[noise], minlength=n_seg).astype(np.float64)
    h += np.where(n_noise > 0, n_noise / np.maximum(n, 1) * np.log(np.maximum(n, 1)), 0.0)
    denom = np.log(np.minimum(n, max(k_window, 1)))
    ent = np.where(denom > 0, h / np.where(denom > 0, denom, 1.0), np.nan)
    return {
        "cluster_entropy": np.clip(ent, 0.0, 1.0),
        "n_clusters": np.bincount(useg, minlength=n_seg).astype(np.float64),
    }


def template_metrics(
    template_id: np.ndarray, template_popular: np.ndarray, seg: np.ndarray, n_seg: int
) -> dict[str, np.ndarray]:
    """Share of an account's requests built from a rare (non-popular) shared template.

    ``template_share``: requests whose text matches a shared slot-masked template that is *not*
    a popular public prompt; ``top_template_share``: share of the most used such template;
    ``n_templates``: distinct rare templates; ``popular_share``: requests on popular templates.

    A sweep is one scaffold with its slots varied, so its template share is near 1; organic
    users type free text (share near 0) or paste popular public prompts, which link no one and
    are excluded here.
    """
    template_id = np.asarray(template_id, dtype=object)
    popular = np.asarray(template_popular, dtype=bool)
    seg = _check(seg, n_seg, template_id, popular)
    has = np.array([t is not None for t in template_id], dtype=bool)
    rare = has & ~popular
    n = np.bincount(seg, minlength=n_seg).astype(np.float64)
    safe = np.maximum(n, 1)
    out = {
        "template_share": np.bincount(seg, weights=rare, minlength=n_seg) / safe,
        "popular_share": np.bincount(seg, weights=has & popular, minlength=n_seg) / safe,
        "n_templates": np.zeros(n_seg),
        "top_template_share": np.zeros(n_seg),
    }
    if rare.any():
        _, code = _codes(template_id[rare])
        k = int(code.max()) + 1
        uniq, cnt = np.unique(seg[rare] * k + code, return_counts=True)
        useg = uniq // k
        out["n_templates"] = np.bincount(useg, minlength=n_seg).astype(np.float64)
        top = np.zeros(n_seg)
        np.maximum.at(top, useg, cnt.astype(np.float64))
        out["top_template_share"] = top / safe
    for key in out:
        out[key] = np.where(n == 0, np.nan, out[key])
    return out


def is_cot_marker(marker: np.ndarray) -> np.ndarray:
    """True where a stored marker name (``"area"`` or ``"area:rule"``, or None) is of :data:`COT_AREA`."""
    marker = np.asarray(marker, dtype=object)
    return np.array(
        [m is not None and str(m).split(":", 1)[0] == COT_AREA for m in marker.tolist()], dtype=bool
    )


def cot_share(capability: np.ndarray, marker: np.ndarray, seg: np.ndarray, n_seg: int) -> np.ndarray:
    """Share of requests that elicit chain-of-thought ("write out your full internal reasoning").

    A request counts when a chain-of-thought marker rule fired (a stored marker name
    ``"cot_elicitation"`` or ``"cot_elicitation:<rule>"``) or its area is ``cot_elicitation``. Reasoning traces are the most valuable thing to distil, so a campaign
    asks for them on nearly every request; people rarely ask a model to dump its reasoning.
    """
    capability = np.asarray(capability, dtype=object)
    marker = np.asarray(marker, dtype=object)
    seg = _check(seg, n_seg, capability, marker)
    hit = (capability == COT_AREA) | is_cot_marker(marker)
    n = np.bincount(seg, minlength=n_seg).astype(np.float64)
    return np.where(n == 0, np.nan, np.bincount(seg, weights=hit, minlength=n_seg) / np.maximum(n, 1))


def conversation_depth(
    turn_index: np.ndarray, conversation_id: np.ndarray, seg: np.ndarray, n_seg: int
) -> dict[str, np.ndarray]:
    """How conversational an account is: follow-up share and turns per conversation.

    A request is a follow-up when ``turn_index > 0`` or its ``conversation_id`` already
    appeared earlier in the account. ``followup_share`` is over requests whose turn is known
    (NaN when none is), ``turns_per_conversation`` = known requests / conversation starts and
    ``turn_known_share`` says how much of the account carries turn information.

    People follow up ("shorter", "now in Python", "why?"); a sweep fires one-shot requests and
    rarely follows up, because each answer is a training example, not a step in a task.
    """
    turn_index = np.asarray(turn_index, dtype=np.int64)
    conversation_id = np.asarray(conversation_id, dtype=object)
    seg = _check(seg, n_seg, turn_index, conversation_id)
    has_conv = np.array([c is not None for c in conversation_id], dtype=bool)
    repeat = np.zeros(len(seg), dtype=bool)
    if has_conv.any():
        idx = np.flatnonzero(has_conv)
        _, code = _codes(conversation_id[has_conv])
        key = seg[idx] * (int(code.max()) + 1) + code
        _, first = np.unique(key, return_index=True)
        rep = np.ones(len(idx), dtype=bool)
        rep[first] = False
        repeat[idx] = rep
    known = (turn_index >= 0) | has_conv
    follow = known & ((turn_index > 0) | repeat)
    n = np.bincount(seg, minlength=n_seg).astype(np.float64)
    n_known = np.bincount(seg, weights=known, minlength=n_seg)
    n_follow = np.bincount(seg, weights=follow, minlength=n_seg)
    starts = n_known - n_follow
    return {
        "followup_share": np.where(n_known > 0, n_follow / np.maximum(n_known, 1), np.nan),
        "turns_per_conversation": np.where(starts > 0, n_known / np.maximum(starts, 1), np.nan),
        "turn_known_share": np.where(n > 0, n_known / np.maximum(n, 1), np.nan),
    }


def timing_metrics(
    ts: np.ndarray, seg: np.ndarray, n_seg: int, min_requests: int = 48
) -> dict[str, np.ndarray]:
    """Hour-of-day spread and pacing of each account's requests (UTC).

    * ``hour_entropy``: entropy of the hour-of-day histogram / log 24 (1 = flat).
    * ``active_hours`` / ``quiet_hours``: hours of the day that are active (at least a quarter
      of the flat rate ``n/24``) and the longest circular run of quiet hours. People sleep, so
      an account used by one person has a quiet run of 5+ hours; a script runs round the clock
      (0-1 quiet hours); a nightly batch job has one short active window (quiet 14+ hours).
    * ``diurnal_amplitude``: modulus of the first 24-hour Fourier harmonic of the histogram
      (0 = flat, 1 = all in one hour). Round-the-clock traffic made by many people (a product)
      still follows the day; a sweep runner is flat.
    * ``gap_cv`` and ``burstiness`` ``(sd - mean) / (sd + mean)`` of inter-arrival gaps:
      about 0 for random (Poisson) arrivals, above 0 for human bursts, below 0 for a
      machine-regular pace.
    * ``span_hours`` (first to last request) and ``active_days`` (distinct UTC days).

    Hour-of-day metrics are NaN below ``min_requests`` requests (the histogram is noise) and
    gap metrics below 10 gaps.
    """
    ts = np.asarray(ts, dtype=np.float64)
    seg = _check(seg, n_seg, ts)
    n = np.bincount(seg, minlength=n_seg).astype(np.float64)
    hour = (np.floor(ts / 3600.0).astype(np.int64)) % 24
    hist = np.bincount(seg * 24 + hour, minlength=n_seg * 24).reshape(n_seg, 24).astype(np.float64)
    p = hist / np.maximum(n, 1)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.nansum(np.where(p > 0, p * np.log(p), 0.0), axis=1) / np.log(24)
    angle = 2 * np.pi * np.arange(24) / 24
    amp = np.hypot(p @ np.cos(angle), p @ np.sin(angle))
    quiet = hist < np.maximum(1.0, 0.25 * n / 24)[:, None]
    run = np.zeros(n_seg)
    best = np.zeros(n_seg)
    for j in range(48):
        run = (run + 1) * quiet[:, j % 24]
        best = np.maximum(best, run)
    enough = n >= max(int(min_requests), 2)
    active_days = np.zeros(n_seg)
    if len(ts):
        day = np.floor(ts / 86400.0).astype(np.int64)
        day -= day.min()
        width = int(day.max()) + 1
        active_days = np.bincount(np.unique(seg * width + day) // width, minlength=n_seg).astype(np.float64)
    t_min = np.full(n_seg, np.inf)
    t_max = np.full(n_seg, -np.inf)
    np.minimum.at(t_min, seg, ts)
    np.maximum.at(t_max, seg, ts)
    same = np.zeros(len(ts), dtype=bool)
    same[1:] = seg[1:] == seg[:-1]
    gaps = np.zeros(len(ts))
    gaps[1:] = np.diff(ts)
    g_seg = seg[same]
    g = gaps[same]
    n_gaps = np.bincount(g_seg, minlength=n_seg).astype(np.float64)
    mean = np.bincount(g_seg, weights=g, minlength=n_seg) / np.maximum(n_gaps, 1)
    sq = np.bincount(g_seg, weights=g * g, minlength=n_seg) / np.maximum(n_gaps, 1)
    sd = np.sqrt(np.maximum(sq - mean**2, 0.0))
    ok_gaps = (n_gaps >= 10) & (mean > 0)
    return {
        "hour_entropy": np.where(n >= 2, np.clip(ent, 0.0, 1.0), np.nan),
        "active_hours": np.where(enough, 24 - quiet.sum(axis=1), np.nan),
        "quiet_hours": np.where(enough, np.minimum(best, 24), np.nan),
        "diurnal_amplitude": np.where(enough, amp, np.nan),
        "gap_cv": np.where(ok_gaps, sd / np.where(ok_gaps, mean, 1.0), np.nan),
        "burstiness": np.where(ok_gaps, (sd - mean) / np.where(ok_gaps, sd + mean, 1.0), np.nan),
        "span_hours": np.where(n > 0, (t_max - t_min) / 3600.0, np.nan),
        "active_days": active_days,
    }
