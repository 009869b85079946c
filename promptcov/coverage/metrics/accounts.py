"""Per-account (and per-group) coverage metrics over one :class:`RequestFrame` window.

This module applies the pure metric functions of :mod:`~promptcov.coverage.metrics.basic`
(areas, clusters, templates, turns, timing), :mod:`~promptcov.coverage.metrics.space`
(near-duplicates, tiling) and :mod:`~promptcov.coverage.metrics.coverage` (region coverage) to
every account of a frame, or to *pools* of accounts (a coordinated group's members treated as
one sender: "many accounts acting as one"). Each metric's docstring says what it measures and
why it separates sweeps from organic use.

Example::

    ids, m = compute_account_metrics(frame)
    m["template_share"][list(ids).index("acct-7")]

Scale: everything is vectorised with ``bincount``/``unique``; nearest-earlier distances use
batched matrix products over size buckets of accounts (at most ``max_sample`` requests each).
Time and memory at 10^6 requests are measured by ``scripts/bench_score.py`` (figures in the README).
"""

from __future__ import annotations

import logging

import numpy as np

from promptcov.coverage.frame import RequestFrame
from promptcov.coverage.metrics.basic import (
    capability_concentration,
    cluster_entropy,
    conversation_depth,
    cot_share,
    segments,
    template_metrics,
    timing_metrics,
)
from promptcov.coverage.metrics.coverage import CellPopulation, assign_cells, coverage_metrics
from promptcov.coverage.metrics.groups import synchrony
from promptcov.coverage.metrics.space import distance_metrics

__all__ = [
    "NUMERIC_METRICS",
    "LABEL_METRICS",
    "CellPopulation",
    "window_cells",
    "compute_account_metrics",
    "compute_pooled_metrics",
    "compute_group_metrics",
    "synchrony",
]

log = logging.getLogger(__name__)

#: Metrics stored as DOUBLE columns (``account_metrics`` table), in a stable order.
NUMERIC_METRICS: tuple[str, ...] = (
    "n_requests",
    "top1_share",
    "top2_share",
    "high_value_share",
    "n_areas",
    "cot_share",
    "cluster_entropy",
    "n_clusters",
    "template_share",
    "top_template_share",
    "n_templates",
    "popular_share",
    "near_dup_rate",
    "tiling_regularity",
    "nn_sim_median",
    "nn_dist_cv",
    "nn_normality",
    "coverage_ratio",
    "coverage_cells",
    "coverage_expected",
    "coverage_n",
    "followup_share",
    "turns_per_conversation",
    "turn_known_share",
    "hour_entropy",
    "active_hours",
    "quiet_hours",
    "diurnal_amplitude",
    "gap_cv",
    "burstiness",
    "span_hours",
    "active_days",
)
#: Metrics holding area names (object arrays).
LABEL_METRICS: tuple[str, ...] = ("top_capability", "second_capability")

_SPACE_KW = ("max_sample", "lookback", "dup_cos", "related_cos")


def window_cells(
    frame: RequestFrame, n_cells: int | None = None, per_account_cap: int = 20, seed: int = 0
) -> tuple[np.ndarray, CellPopulation]:
    """Fine cells of the window (cell per request) and the (area x cell) population counts.

    Uses :func:`~promptcov.coverage.metrics.space.assign_cells` on the frame's vectors; when the
    frame has no vectors the map's ``cluster_id`` serves as the cells.
    """
    seg, _, _ = segments(frame.account_id)
    if frame.vectors.size and (frame.vec_row >= 0).any():
        cells = assign_cells(frame.vectors, frame.vec_row, seg, n_cells, per_account_cap, seed)
    else:
        cells = np.asarray(frame.cluster_id, dtype=np.int64).copy()
    return cells, CellPopulation.from_arrays(frame.capability, cells)


def _segment_metrics(
    frame: RequestFrame,
    seg: np.ndarray,
    n_seg: int,
    cells: np.ndarray,
    population: CellPopulation,
    high_value: dict[str, float] | None,
    seed: int,
    min_timing_requests: int,
    space_kw: dict,
) -> dict[str, np.ndarray]:
    if n_seg == 0:
        empty = {k: np.zeros(0) for k in NUMERIC_METRICS}
        return empty | {k: np.zeros(0, dtype=object) for k in LABEL_METRICS}
    out: dict[str, np.ndarray] = {"n_requests": np.bincount(seg, minlength=n_seg).astype(np.float64)}
    out.update(capability_concentration(frame.capability, seg, n_seg, high_value))
    out["cot_share"] = cot_share(frame.capability, frame.marker, seg, n_seg)
    out.update(cluster_entropy(frame.cluster_id, seg, n_seg))
    out.update(template_metrics(frame.template_id, frame.template_popular, seg, n_seg))
    out.update(distance_metrics(frame.vec_row, frame.vectors, seg, n_seg, seed=seed, **space_kw))
    out.update(coverage_metrics(frame.capability, cells, seg, n_seg, out["top_capability"], population))
    out.update(conversation_depth(frame.turn_index, frame.conversation_id, seg, n_seg))
    out.update(timing_metrics(frame.ts, seg, n_seg, min_timing_requests))
    return out


def _prepare(
    frame: RequestFrame, cells: np.ndarray | None, population: CellPopulation | None, kw: dict
) -> tuple[np.ndarray, CellPopulation, dict]:
    if not isinstance(frame, RequestFrame):
        raise TypeError(f"expected a RequestFrame, got {type(frame).__name__}")
    unknown = set(kw) - set(_SPACE_KW) - {"n_cells", "per_account_cap", "seed"}
    if unknown:
        raise TypeError(f"unexpected keyword arguments: {sorted(unknown)}")
    space_kw = {k: kw[k] for k in _SPACE_KW if k in kw}
    if cells is None:
        cells, fresh = window_cells(
            frame, kw.get("n_cells"), kw.get("per_account_cap", 20), kw.get("seed", 0)
        )
        population = population if population is not None else fresh
    cells = np.asarray(cells, dtype=np.int64)
    if cells.shape != (len(frame),):
        raise ValueError(f"cells has shape {cells.shape}, expected ({len(frame)},)")
    if population is None:
        population = CellPopulation.from_arrays(frame.capability, cells)
    return cells, population, space_kw


def compute_account_metrics(
    frame: RequestFrame,
    *,
    cells: np.ndarray | None = None,
    population: CellPopulation | None = None,
    high_value: dict[str, float] | None = None,
    seed: int = 0,
    min_timing_requests: int = 48,
    **kw,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """All metrics for every account of ``frame`` (sorted by account, then time).

    Parameters
    ----------
    cells, population : optional
        Cell per request and the window's (area x cell) counts, from :func:`window_cells`;
        computed here when omitted (pass them in to reuse them for groups).
    high_value : dict, optional
        Area -> weight for ``high_value_share`` (default: the taxonomy's, :func:`~promptcov.coverage.metrics.basic.default_high_value_weights`).
    seed : int
        Seeds the per-account subsampling and the k-means cells.
    **kw
        ``max_sample`` (500), ``lookback`` (100), ``dup_cos`` (0.9), ``related_cos`` (0.35) for
        the distance metrics; ``n_cells`` and ``per_account_cap`` for the cells.

    Returns ``(account_ids, metrics)``: ids in frame order and name -> array aligned with them
    (:data:`NUMERIC_METRICS` float64, :data:`LABEL_METRICS` object).
    """
    cells, population, space_kw = _prepare(frame, cells, population, dict(kw, seed=seed))
    seg, _, ids = segments(frame.account_id)
    metrics = _segment_metrics(
        frame, seg, len(ids), cells, population, high_value, seed, min_timing_requests, space_kw
    )
    return np.asarray(ids, dtype=object), metrics


def compute_pooled_metrics(
    frame: RequestFrame,
    pools: dict[str, list[str]],
    *,
    cells: np.ndarray | None = None,
    population: CellPopulation | None = None,
    high_value: dict[str, float] | None = None,
    seed: int = 0,
    min_timing_requests: int = 48,
    **kw,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The same metrics for pools of accounts, each pool's requests merged into one time line.

    ``pools`` maps a key (a group id) to member account ids; members absent from the frame are
    ignored. Coverage compares a pool with everybody *outside* it. Adds ``n_members`` (members
    with traffic) and ``sync_share`` (:func:`synchrony`). Returns ``(keys, metrics)`` like
    :func:`compute_account_metrics`.
    """
    cells, population, space_kw = _prepare(frame, cells, population, dict(kw, seed=seed))
    slices = dict(frame.accounts())
    keys, parts, seg_parts = [], [], []
    for key, members in pools.items():
        rows = [np.arange(slices[m].start, slices[m].stop) for m in dict.fromkeys(members) if m in slices]
        if not rows:
            continue
        rows = np.concatenate(rows)
        rows = rows[np.argsort(frame.ts[rows], kind="stable")]
        parts.append(rows)
        seg_parts.append(np.full(len(rows), len(keys), dtype=np.int64))
        keys.append(key)
    if not keys:
        return np.zeros(0, dtype=object), {}
    index = np.concatenate(parts)
    seg = np.concatenate(seg_parts)
    sub = frame.take(index)
    metrics = _segment_metrics(
        sub, seg, len(keys), cells[index], population, high_value, seed, min_timing_requests, space_kw
    )
    bounds = np.searchsorted(seg, np.arange(len(keys) + 1))
    metrics["n_members"] = np.array(
        [len(set(sub.account_id[bounds[i] : bounds[i + 1]])) for i in range(len(keys))], dtype=np.float64
    )
    metrics["sync_share"] = np.array(
        [
            synchrony(sub.ts[bounds[i] : bounds[i + 1]], sub.account_id[bounds[i] : bounds[i + 1]])
            for i in range(len(keys))
        ]
    )
    return np.asarray(keys, dtype=object), metrics


def compute_group_metrics(frame: RequestFrame, members: list[str], **kw) -> dict[str, float | str]:
    """Metrics of one group's pooled traffic (convenience wrapper of :func:`compute_pooled_metrics`)."""
    keys, metrics = compute_pooled_metrics(frame, {"group": list(members)}, **kw)
    if len(keys) == 0:
        raise ValueError("none of the group's members has traffic in the frame")
    return {
        name: (values[0] if values.dtype == object else float(values[0])) for name, values in metrics.items()
    }
