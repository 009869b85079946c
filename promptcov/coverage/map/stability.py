"""Stable cluster ids across map versions.

Every ``promptcov map`` run refits the prompt-space map on a fresh sample, so HDBSCAN numbers its
clusters from scratch: cluster 7 today may be cluster 31 tomorrow. Reports track areas over weeks
("this region first appeared in W47 and grew tenfold"), and a sweep that opens a *new* region of
the input space is itself a signal, so ids must follow regions, not fit order.

:func:`match_clusters` pairs each new cluster with at most one previous cluster by centroid cosine
(a one-to-one Hungarian assignment, so two new clusters can never both claim an old id) and keeps
the old id only when the two centroids are at least ``min_similarity`` alike. Everything else gets
a fresh id above every id ever issued, so an id is never reused for a different region.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["match_clusters"]

log = logging.getLogger(__name__)


def match_clusters(
    centroids: np.ndarray,
    prev_centroids: np.ndarray,
    prev_ids: np.ndarray,
    min_similarity: float = 0.9,
    next_id: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Give each new cluster the id of the previous cluster covering the same region, or a fresh one.

    ``centroids`` (k, d) and ``prev_centroids`` (m, d) are L2-normalised, so their inner product is
    the cosine similarity of the two regions' centres. The Hungarian assignment maximises the total
    similarity of a one-to-one pairing; a pair below ``min_similarity`` is not a match (a region
    that moved that far is a different region). Unmatched new clusters get ids ``next_id``,
    ``next_id + 1``, ... in row order, where ``next_id`` defaults to ``max(prev_ids) + 1`` (0 when
    there is no previous map). Deterministic: same inputs, same ids.

    Returns ``(ids, is_new)``: int64 ids per row of ``centroids`` and a bool mask of fresh ids.

    >>> import numpy as np
    >>> old = np.eye(3, dtype=np.float32)
    >>> new = np.eye(3, dtype=np.float32)[[2, 0]]
    >>> ids, is_new = match_clusters(new, old, np.array([10, 11, 12]))
    >>> ids.tolist(), is_new.tolist()
    ([12, 10], [False, False])
    """
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    prev_centroids = np.ascontiguousarray(prev_centroids, dtype=np.float32)
    prev_ids = np.asarray(prev_ids)
    if centroids.ndim != 2:
        raise ValueError(f"centroids must be 2-D (k, d), got shape {centroids.shape}")
    if prev_centroids.ndim != 2 or prev_ids.ndim != 1 or len(prev_ids) != len(prev_centroids):
        raise ValueError(
            f"prev_centroids must be (m, d) with one id each: got centroids {prev_centroids.shape} "
            f"and ids {prev_ids.shape}"
        )
    if len(prev_ids) and not np.issubdtype(prev_ids.dtype, np.integer):
        raise ValueError(f"prev_ids must be integers, got dtype {prev_ids.dtype}")
    prev_ids = prev_ids.astype(np.int64)
    if len(prev_centroids) and prev_centroids.shape[1] != centroids.shape[1]:
        raise ValueError(
            f"dimension mismatch: this map's centroids have {centroids.shape[1]} dimensions, "
            f"the previous map's have {prev_centroids.shape[1]}"
        )
    if len(np.unique(prev_ids)) != len(prev_ids):
        raise ValueError("prev_ids must be unique")
    if np.any(prev_ids < 0):
        raise ValueError("prev_ids must be >= 0 (-1 is reserved for noise)")
    if not 0.0 < min_similarity <= 1.0:
        raise ValueError(f"min_similarity must be in (0, 1], got {min_similarity}")
    k = len(centroids)
    ids = np.full(k, -1, dtype=np.int64)
    if k and len(prev_centroids):
        sims = centroids @ prev_centroids.T
        rows, cols = linear_sum_assignment(sims, maximize=True)
        ok = sims[rows, cols] >= min_similarity
        ids[rows[ok]] = prev_ids[cols[ok]]
    is_new = ids < 0
    start = int(prev_ids.max()) + 1 if len(prev_ids) else 0
    if next_id is not None:
        start = max(start, int(next_id))
    ids[is_new] = start + np.arange(int(is_new.sum()), dtype=np.int64)
    log.info(
        "matched %d of %d clusters to the previous map (min_similarity=%.2f); %d new",
        k - int(is_new.sum()),
        k,
        min_similarity,
        int(is_new.sum()),
    )
    return ids, is_new
