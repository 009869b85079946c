"""Per-account sweep metrics in embedding space: near-duplicates and tiling.

Rows are grouped into segments as in :mod:`promptcov.coverage.metrics.basic` (``seg`` per row,
rows of a segment contiguous and in time order). Vectors are L2-normalised, so the inner
product is the cosine similarity.

Why these separate a sweep from organic use:

* **Tiling** (PRADA-style). Take each prompt's similarity to its nearest *earlier* prompt of
  the same account. A sweep walks one capability region task after task, so almost every
  prompt lands *near but not on* something it already asked: related (cosine above
  ``related_cos``) yet not a duplicate (below ``dup_cos``). An organic account mixes
  follow-ups and retries (near-identical) with topic jumps (unrelated); its nearest-earlier
  similarities scatter outside that band.

  With sentence embeddings, task sets swept one after another sit mostly inside that band and
  organic prompt mixes mostly outside it, while the coefficient of variation of the distances
  (PRADA's usual statistic) separates them less well: organic mixes are uniformly far. It is
  still reported (``nn_dist_cv``, ``nn_normality``) as evidence. (How well each separates on
  real sets is an evaluation figure: see the README, not this docstring.)
* **Near-duplicates**: a scaffold long enough to dominate the embedding (a judge rubric)
  makes most prompts near-copies of earlier ones (66% for filled Prometheus rubric prompts).
"""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np
from scipy import stats

__all__ = [
    "nearest_earlier_similarity",
    "tiling_statistics",
    "distance_metrics",
]

log = logging.getLogger(__name__)

_TILING_KEYS = ("near_dup_rate", "tiling_regularity", "nn_sim_median", "nn_dist_cv", "nn_normality")


def nearest_earlier_similarity(
    vectors: np.ndarray, lookback: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine of each prompt (from the second on) to its nearest earlier prompt.

    ``vectors`` are one account's prompts in time order. Returns ``(sim_all, sim_recent)``, each
    of length ``k - 1``: the best match among *all* earlier prompts, and among the ``lookback``
    previous ones (the latter keeps the statistic comparable across volumes: with thousands of
    earlier prompts anything finds a close neighbour).
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {x.shape}")
    if lookback is not None and lookback < 1:
        raise ValueError(f"lookback must be >= 1, got {lookback}")
    k = len(x)
    if k < 2:
        return np.zeros(0), np.zeros(0)
    g = x[1:] @ x.T  # row i-1: prompt i against every prompt
    below = _strict_lower(k)[1:]
    sim_all = np.where(below, g, -np.inf).max(axis=1).astype(np.float64)
    if lookback is None or lookback >= k - 1:
        return sim_all, sim_all.copy()
    band = below & ~_strict_lower(k, int(lookback) + 1)[1:]
    return sim_all, np.where(band, g, -np.inf).max(axis=1).astype(np.float64)


_TRI: dict[int, np.ndarray] = {}


def _strict_lower(k: int, offset: int = 1) -> np.ndarray:
    """Boolean (k, k) mask of ``j <= i - offset`` (a slice of one cached triangle per offset)."""
    tri = _TRI.get(offset)
    if tri is None or len(tri) < k:
        tri = np.tri(max(k, 512), max(k, 512), -offset, dtype=bool)
        _TRI[offset] = tri
    return tri[:k, :k]


@lru_cache(maxsize=1024)
def _normal_scores(n: int) -> np.ndarray:
    """Blom's approximation of the expected standard normal order statistics."""
    return stats.norm.ppf((np.arange(1, n + 1) - 0.375) / (n + 0.25))


def tiling_statistics(
    sim_all: np.ndarray, sim_recent: np.ndarray, dup_cos: float = 0.9, related_cos: float = 0.35
) -> dict[str, float]:
    """Summarise nearest-earlier similarities of one account (see the module docstring).

    * ``near_dup_rate``: share of prompts with cosine >= ``dup_cos`` to an earlier prompt.
    * ``tiling_regularity``: share of prompts whose nearest recent prompt is related but not a
      duplicate (``related_cos <= cos < dup_cos``): the band a template with a varied slot, or
      a walk through one task set, produces.
    * ``nn_sim_median``: median nearest-recent cosine.
    * ``nn_dist_cv``: coefficient of variation of the distances ``1 - cos`` (PRADA's spread).
    * ``nn_normality``: Shapiro-Francia W' of those distances (squared correlation of the sorted
      distances with normal scores; close to PRADA's Shapiro-Wilk test, far cheaper). 1 =
      normal; NaN below 20 distances or when they are constant.
    """
    sim_all = np.asarray(sim_all, dtype=np.float64)
    sim_recent = np.asarray(sim_recent, dtype=np.float64)
    if len(sim_all) != len(sim_recent):
        raise ValueError("sim_all and sim_recent must have the same length")
    if not 0.0 < related_cos < dup_cos <= 1.0:
        raise ValueError(f"need 0 < related_cos < dup_cos <= 1, got {related_cos}, {dup_cos}")
    if len(sim_all) == 0:
        return dict.fromkeys(_TILING_KEYS, np.nan)
    d = np.clip(1.0 - sim_recent, 0.0, 2.0)
    mean = d.mean()
    normality = np.nan
    if len(d) >= 20 and np.ptp(d) > 1e-9:
        normality = float(np.corrcoef(np.sort(d), _normal_scores(len(d)))[0, 1] ** 2)
    return {
        "near_dup_rate": float(np.mean(sim_all >= dup_cos)),
        "tiling_regularity": float(np.mean((sim_recent >= related_cos) & (sim_recent < dup_cos))),
        "nn_sim_median": float(np.median(sim_recent)),
        "nn_dist_cv": float(d.std() / mean) if mean > 1e-12 else np.nan,
        "nn_normality": normality,
    }


def distance_metrics(
    vec_row: np.ndarray,
    vectors: np.ndarray,
    seg: np.ndarray,
    n_seg: int,
    max_sample: int = 500,
    lookback: int = 100,
    dup_cos: float = 0.9,
    related_cos: float = 0.35,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """:func:`tiling_statistics` for every segment, on at most ``max_sample`` requests each.

    Larger accounts are subsampled (seeded per segment, time order kept). Segments are padded
    into buckets of similar size and their nearest-earlier similarities computed with batched
    matrix products, then summarised with ``bincount``: the result equals calling
    :func:`nearest_earlier_similarity` and :func:`tiling_statistics` per segment, at a cost
    that does not grow with the number of accounts in Python. Rows without a vector are skipped.
    """
    vec_row = np.asarray(vec_row, dtype=np.int64)
    seg = np.asarray(seg, dtype=np.int64)
    if len(vec_row) != len(seg):
        raise ValueError("vec_row and seg must have the same length")
    if max_sample < 2:
        raise ValueError(f"max_sample must be >= 2, got {max_sample}")
    if lookback < 1:
        raise ValueError(f"lookback must be >= 1, got {lookback}")
    if not 0.0 < related_cos < dup_cos <= 1.0:
        raise ValueError(f"need 0 < related_cos < dup_cos <= 1, got {related_cos}, {dup_cos}")
    out = {k: np.full(n_seg, np.nan) for k in _TILING_KEYS}
    if len(seg) == 0 or vectors.size == 0:
        return out
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    has = vec_row >= 0
    rows, rseg = vec_row[has], seg[has]
    k = np.bincount(rseg, minlength=n_seg)
    starts = np.concatenate([[0], np.cumsum(k)])
    big = np.flatnonzero(k > max_sample)
    if len(big):  # subsample large segments, keeping time order
        keep = np.ones(len(rows), dtype=bool)
        for s in big:
            pick = np.random.default_rng([seed, int(s)]).choice(k[s], size=max_sample, replace=False)
            keep[starts[s] : starts[s + 1]] = False
            keep[starts[s] + pick] = True
        rows, rseg = rows[keep], rseg[keep]
        k = np.bincount(rseg, minlength=n_seg)
        starts = np.concatenate([[0], np.cumsum(k)])
    sim_seg, sim_all, sim_rec = [], [], []
    width = 8
    lo_k = 2
    while lo_k <= max_sample:
        hi_k = min(width, max_sample)
        segs = np.flatnonzero((k >= lo_k) & (k <= hi_k))
        chunk = max(1, (1 << 22) // (hi_k * x.shape[1]))
        for c in range(0, len(segs), chunk):
            part = segs[c : c + chunk]
            a, b, r = _padded_nearest(x, rows, starts[part], k[part], hi_k, lookback)
            sim_seg.append(part[r]), sim_all.append(a), sim_rec.append(b)
        lo_k, width = hi_k + 1, width * 2
    if not sim_seg:
        return out
    return _summarise(
        np.concatenate(sim_seg),
        np.concatenate(sim_all),
        np.concatenate(sim_rec),
        n_seg,
        dup_cos,
        related_cos,
        out,
    )


def _padded_nearest(
    x: np.ndarray, rows: np.ndarray, start: np.ndarray, k: np.ndarray, width: int, lookback: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest-earlier similarities of several segments at once (padded to ``width``)."""
    pos = np.arange(width)
    valid = pos[None, :] < k[:, None]
    index = np.where(valid, start[:, None] + pos[None, :], 0)
    xb = x[rows[index]]  # (B, width, d)
    g = np.matmul(xb[:, 1:, :], xb.transpose(0, 2, 1))  # (B, width-1, width)
    below = _strict_lower(width)[1:][None, :, :] & valid[:, None, :]
    sim_all = np.where(below, g, -np.inf).max(axis=2)
    if lookback < width - 1:
        band = below & ~_strict_lower(width, lookback + 1)[1:][None, :, :]
        sim_rec = np.where(band, g, -np.inf).max(axis=2)
    else:
        sim_rec = sim_all
    ok = valid[:, 1:]
    which = np.nonzero(ok)[0]
    return sim_all[ok].astype(np.float64), sim_rec[ok].astype(np.float64), which


def _summarise(
    sseg: np.ndarray,
    sim_all: np.ndarray,
    sim_rec: np.ndarray,
    n_seg: int,
    dup_cos: float,
    related_cos: float,
    out: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Vectorised :func:`tiling_statistics` over flat (segment, similarity) rows."""
    order = np.lexsort((sim_rec, sseg))
    sseg, sim_all, sim_rec = sseg[order], sim_all[order], sim_rec[order]
    n = np.bincount(sseg, minlength=n_seg).astype(np.float64)
    has = n > 0
    safe = np.maximum(n, 1.0)

    def per(values: np.ndarray) -> np.ndarray:
        return np.bincount(sseg, weights=values, minlength=n_seg)

    out["near_dup_rate"] = np.where(has, per(sim_all >= dup_cos) / safe, np.nan)
    out["tiling_regularity"] = np.where(
        has, per((sim_rec >= related_cos) & (sim_rec < dup_cos)) / safe, np.nan
    )
    first = np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64)
    mid_lo = first + (np.maximum(n, 1).astype(np.int64) - 1) // 2
    mid_hi = first + np.maximum(n, 1).astype(np.int64) // 2
    m_lo = sim_rec[np.minimum(mid_lo, len(sim_rec) - 1)]
    m_hi = sim_rec[np.minimum(mid_hi, len(sim_rec) - 1)]
    out["nn_sim_median"] = np.where(has, (m_lo + m_hi) / 2.0, np.nan)
    d = np.clip(1.0 - sim_rec, 0.0, 2.0)
    mean = per(d) / safe
    sd = np.sqrt(np.maximum(per(d * d) / safe - mean**2, 0.0))
    out["nn_dist_cv"] = np.where(has & (mean > 1e-12), sd / np.where(mean > 1e-12, mean, 1.0), np.nan)
    # Shapiro-Francia: d sorted ascending within segment (sim_rec sorted ascending reverses it)
    rank = np.arange(len(sseg)) - first[sseg]
    n_row = n[sseg]
    z = -stats.norm.ppf((rank + 1 - 0.375) / (n_row + 0.25))
    mz = per(z) / safe
    cov = per(d * z) / safe - mean * mz
    vz = per(z * z) / safe - mz**2
    vd = sd**2
    ok = has & (n >= 20) & (vd > 1e-18)
    spread = np.zeros(n_seg)
    np.maximum.at(spread, sseg, d)
    low = np.full(n_seg, np.inf)
    np.minimum.at(low, sseg, d)
    ok &= (spread - low) > 1e-9
    r2 = cov**2 / np.where(ok, vd * vz, 1.0)
    out["nn_normality"] = np.where(ok, r2, np.nan)
    return out
