"""Pivots: an account or group that abruptly re-aims its traffic.

An extraction campaign follows the value: when a new model ships, the operator points the whole
sweep at it within hours, and when one capability area is covered it moves on to the next.
Ordinary customers adopt a new model gradually (some this week, most later) and their topic mix
drifts slowly. Two pivots are detected:

1. **New-model rush** (:func:`same_hours_expectation`): how many of an entity's requests in the
   ``window_s`` after a model first appeared went to it, against what they would have sent had
   they followed everyone *else* in the same hours (request by request, so a release that everyone
   takes up at once, or a ramp-up, raises the expectation with it). It is reported when the
   entity's share is large, several times that expectation, and not chance (Poisson tail).
2. **Capability shift** (:func:`capability_shift`): the largest total variation distance between
   the capability-area distribution before and after a day boundary, reported when it is large
   and significant (chi-square, Bonferroni over the boundaries tried).

:func:`detect_pivots` runs both over every account (and every linked group) of a
:class:`~promptcov.coverage.frame.RequestFrame` and returns readable evidence strings.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timezone

import numpy as np
from scipy.stats import chi2_contingency, poisson

from promptcov.coverage.frame import RequestFrame, factorize_str
from promptcov.coverage.scoring.params import PivotParams
from promptcov.errors import InputError

__all__ = [
    "detect_pivots",
    "total_variation",
    "model_first_seen",
    "new_model_rush",
    "capability_shift",
    "same_hours_expectation",
]

log = logging.getLogger(__name__)


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Total variation distance ``0.5 * sum |p - q|`` between two distributions (counts are normalised).

    0 when the two mixes are identical, 1 when they share no area at all. A sweep that finishes
    one area and starts the next jumps close to 1; organic drift stays low.
    """
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError(f"distributions differ in shape: {p.shape} vs {q.shape}")
    if p.sum() <= 0 or q.sum() <= 0:
        return 0.0
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def model_first_seen(ts: np.ndarray, model: np.ndarray, min_lead_s: float = 86400.0) -> dict[str, float]:
    """First timestamp of each model that is *new* in this window.

    A model seen within ``min_lead_s`` of the window's first request was probably live before the
    window began, so its "first appearance" is an artefact of where the window starts; only models
    first seen later are returned (model -> epoch seconds).
    """
    ts = np.asarray(ts, dtype=np.float64)
    if len(ts) == 0:
        return {}
    start = float(ts.min())
    present = np.array([m is not None and m != "" for m in model], dtype=bool)
    if not present.any():
        return {}
    names, codes = factorize_str(np.asarray(model, dtype=object)[present])
    first = np.full(len(names), np.inf)
    np.minimum.at(first, codes.ravel(), ts[present])
    return {str(m): float(t) for m, t in zip(names, first, strict=True) if t - start >= min_lead_s}


def new_model_rush(
    entity_ts: np.ndarray,
    entity_model: np.ndarray,
    pop_counts: tuple[int, int],
    target: str,
    first_seen: float,
    window_s: float,
) -> tuple[float, float, int, int]:
    """How much of an entity's traffic went to ``target`` in the ``window_s`` after ``first_seen``.

    ``pop_counts`` = (requests on ``target``, all requests) of the whole population in that
    window; the entity's own requests are removed from it, so a large group is compared with
    everyone *else*. Returns ``(share, population_share, n_on_target, n_in_window)``.
    """
    in_win = (entity_ts >= first_seen) & (entity_ts < first_seen + window_s)
    n_win = int(in_win.sum())
    k = int((entity_model[in_win] == target).sum())
    rest_k, rest_n = pop_counts[0] - k, pop_counts[1] - n_win
    pop_share = rest_k / rest_n if rest_n > 0 else 0.0
    return (k / n_win if n_win else 0.0), pop_share, k, n_win


def capability_shift(
    ts: np.ndarray, capability: np.ndarray, *, split_every_s: float = 86400.0, min_side: int = 20
) -> tuple[float, float, float, np.ndarray, np.ndarray, np.ndarray] | None:
    """The day boundary where the entity's capability mix changes most.

    Tries every ``split_every_s`` boundary (epoch-anchored) with at least ``min_side`` requests on
    each side and returns ``(split_ts, tvd, p_value, areas, before_counts, after_counts)`` for the
    largest total variation distance; ``p_value`` is the chi-square test of homogeneity times the
    number of boundaries tried (Bonferroni, capped at 1). ``None`` when no boundary qualifies.
    """
    order = np.argsort(ts, kind="stable")
    ts, cap = np.asarray(ts, dtype=np.float64)[order], np.asarray(capability, dtype=object)[order]
    if len(ts) < 2 * min_side:
        return None
    areas, codes = factorize_str(cap)
    onehot = np.zeros((len(ts) + 1, len(areas)), dtype=np.int64)
    np.add.at(onehot, (np.arange(1, len(ts) + 1), codes.ravel()), 1)
    cum = np.cumsum(onehot, axis=0)
    bounds = np.arange(np.ceil(ts[0] / split_every_s), np.floor(ts[-1] / split_every_s) + 1) * split_every_s
    cuts = np.searchsorted(ts, bounds, side="left")
    ok = (cuts >= min_side) & (len(ts) - cuts >= min_side)
    bounds, cuts = bounds[ok], cuts[ok]
    if len(cuts) == 0:
        return None
    before = cum[cuts]
    after = cum[-1][None, :] - before
    tvd = 0.5 * np.abs(before / cuts[:, None] - after / (len(ts) - cuts)[:, None]).sum(axis=1)
    best = int(np.argmax(tvd))
    table = np.vstack([before[best], after[best]])
    table = table[:, table.sum(axis=0) > 0]
    p_value = 1.0
    if table.shape[1] > 1:
        p_value = min(1.0, float(chi2_contingency(table)[1]) * len(cuts))
    return float(bounds[best]), float(tvd[best]), p_value, areas, before[best], after[best]


def same_hours_expectation(
    ts: np.ndarray, model: np.ndarray, rows: np.ndarray, target: str, first_seen: float, window_s: float,
    context_s: float,
) -> tuple[int, int, float]:
    """``(k, n, expected)`` for an entity's requests ``rows`` in the ``window_s`` after ``first_seen``.

    ``k`` of its ``n`` requests in the window went to ``target``; ``expected`` is what they would
    have sent there had they followed everyone *else* in the same hours: for each of its requests,
    the share of the rest of the traffic within ``context_s`` either side that went to ``target``
    (add-half smoothed). Adoption that ramps up for everybody after a release therefore raises the
    expectation with it, and only an entity far ahead of the others in the same hours stands out.
    ``ts`` must be sorted.
    """
    e_ts = ts[rows]
    win = (e_ts >= first_seen) & (e_ts < first_seen + window_s)
    n = int(win.sum())
    if n == 0:
        return 0, 0, 0.0
    t = e_ts[win]
    hit_all = np.cumsum(np.r_[0, (model == target).astype(np.int64)])
    e_sorted = np.sort(e_ts)
    e_hit = np.cumsum(np.r_[0, (model[rows][np.argsort(e_ts, kind="stable")] == target).astype(np.int64)])
    lo_a, hi_a = np.searchsorted(ts, t - context_s), np.searchsorted(ts, t + context_s, side="right")
    lo_e, hi_e = np.searchsorted(e_sorted, t - context_s), np.searchsorted(e_sorted, t + context_s, side="right")
    n_rest = (hi_a - lo_a) - (hi_e - lo_e)
    k_rest = (hit_all[hi_a] - hit_all[lo_a]) - (e_hit[hi_e] - e_hit[lo_e])
    rate = (k_rest + 0.5) / (n_rest + 1.0)
    k = int((model[rows][win] == target).sum())
    return k, n, float(rate.sum())


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _hours(s: float) -> str:
    return f"{s / 3600:.0f}h"


def _entities(frame: RequestFrame, groups: dict | None, min_requests: int) -> list[tuple[str, np.ndarray]]:
    """Accounts and groups with at least ``min_requests`` requests, with their frame rows."""
    entities = [(acc, np.arange(sl.start, sl.stop)) for acc, sl in frame.accounts()
                if sl.stop - sl.start >= min_requests]
    if groups:
        acc, ids = frame.account_codes()  # one look-up per account, not per row
        names, per_acc = np.unique(np.array([groups.get(a) or "" for a in ids], dtype=str), return_inverse=True)
        codes = per_acc.ravel()[acc]
        order = np.lexsort((frame.ts, codes))
        bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
        for j, g in enumerate(names):
            rows = order[bounds[j] : bounds[j + 1]]
            if g and len(rows) >= min_requests:
                entities.append((str(g), rows))
    return entities


def detect_pivots(frame: RequestFrame, groups: dict[str, str] | None = None, params: PivotParams | None = None,
                  **overrides) -> dict[str, list[str]]:
    """Readable pivot evidence per account id and group id (entities without pivots are left out).

    ``groups`` maps account -> group id (``AccountLinker.groups_``); a group is judged on the union
    of its members' traffic. Settings: :class:`~promptcov.coverage.scoring.params.PivotParams`
    (``params``, or its fields as keywords). ``alpha`` is the chance of any false pivot in the
    whole window (Bonferroni over entities and new models), which keeps tens of thousands of
    ordinary accounts quiet.

    Example::

        detect_pivots(frame, linker.groups_)
        # {"G-3fa2c9e1d0": ["moved 82% of traffic to claude-x-2 within 48h of its first
        #   appearance (2026-11-18 09:00 UTC; population: 9% in the same hours)"], ...}
    """
    if not isinstance(frame, RequestFrame):
        raise InputError(f"detect_pivots needs a RequestFrame, got {type(frame).__name__}")
    try:
        p = replace(params or PivotParams(), **overrides)
    except TypeError as exc:
        raise InputError(f"detect_pivots: {exc}") from exc
    if p.min_requests < 1 or p.window_s <= 0 or p.split_every_s <= 0:
        raise InputError("detect_pivots: min_requests, window_s and split_every_s must be positive")
    order = np.argsort(frame.ts, kind="stable")
    inv = np.empty_like(order)
    inv[order] = np.arange(len(order))
    ts = np.asarray(frame.ts, dtype=np.float64)[order]
    model = np.asarray(frame.model, dtype=object)[order]
    entities = [(name, np.sort(inv[rows])) for name, rows in _entities(frame, groups, p.min_requests)]
    new_models = model_first_seen(ts, model, p.new_model_lead_s)
    rush_alpha = p.alpha / max(1, len(entities) * len(new_models))
    shift_alpha = p.alpha / max(1, len(entities))
    capability = np.asarray(frame.capability, dtype=object)[order]
    out: dict[str, list[str]] = {}
    for name, rows in entities:
        found = [text for m, first in new_models.items()
                 if (text := _rush(ts, model, rows, m, first, p, rush_alpha))]
        shift = capability_shift(ts[rows], capability[rows], split_every_s=p.split_every_s, min_side=p.min_side)
        if shift is not None:
            split, tvd, p_value, areas, before, after = shift
            if tvd >= p.min_tvd and p_value <= shift_alpha:
                pb, pa = before / before.sum(), after / after.sum()
                grown = int(np.argmax(pa - pb))
                found.append(f"capability mix shifted at {_when(split)} (TVD {tvd:.2f}): "
                             f"{areas[grown]} {pb[grown]:.0%} -> {pa[grown]:.0%}" + _after_release(split, new_models))
        if found:
            out[name] = found
    log.info("pivots: %d of %d entities", len(out), len(entities))
    return out


def _rush(ts, model, rows, m: str, first: float, p: PivotParams, alpha: float) -> str | None:
    k, n, expected = same_hours_expectation(ts, model, rows, m, first, p.window_s, p.context_s)
    if n < p.min_window_requests or k < p.min_share * n or k < p.min_lift * expected:
        return None
    if poisson.sf(k - 1, max(expected, 1e-3)) > alpha:
        return None
    verb = "moved" if (ts[rows] < first).any() else "sent"
    return (f"{verb} {k / n:.0%} of traffic to {m} within {_hours(p.window_s)} of its first appearance "
            f"({_when(first)}; population: {expected / n:.0%} in the same hours)")


def _after_release(split: float, new_models: dict[str, float]) -> str:
    """", 18h after x-2 appeared" when the shift follows a new model's first appearance within 2 days."""
    near = [(split - t, m) for m, t in new_models.items() if 0 <= split - t <= 2 * 86400]
    if not near:
        return ""
    dt, m = min(near)
    return f", {dt / 3600:.0f}h after {m} appeared"
