"""Per-account region coverage: fine cells of the prompt space and rarefaction.

Rows are grouped into segments as in :mod:`promptcov.coverage.metrics.basic`.

**Coverage** (rarefaction). The window's vectors are cut into fine cells. For the account's
main area we compare the number of distinct cells it touched with the number that ``n``
requests drawn at random from everybody else's traffic in that area would touch. A person
asks about what *they* need: fewer cells than random draws (ratio < 1). A sweep enumerates
the region as a map: as many cells as random draws or more (ratio >= 1), and more still when
it reaches cells that ordinary users rarely visit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from promptcov.coverage.frame import factorize_str

__all__ = ["assign_cells", "CellPopulation", "expected_distinct", "coverage_metrics"]

log = logging.getLogger(__name__)


def assign_cells(
    vectors: np.ndarray,
    vec_row: np.ndarray,
    seg: np.ndarray,
    n_cells: int | None = None,
    per_account_cap: int = 20,
    seed: int = 0,
    proj_dim: int = 64,
) -> np.ndarray:
    """Cut the window's prompt space into fine cells with spherical k-means; cell per request.

    The k-means is trained on at most ``per_account_cap`` requests per segment (account), so
    one huge account cannot pull all centroids into its own corner and the cells describe the
    population, not its heaviest user. ``n_cells=None`` picks one cell per 8 training vectors,
    clipped to [8, 256]: fine enough that a region has tens of cells. Vectors wider than
    ``proj_dim`` are first projected by PCA (fitted on the training sample) and re-normalised,
    which keeps the assignment of a million prompts to a few seconds. Requests without a
    vector get cell -1.
    """
    vec_row = np.asarray(vec_row, dtype=np.int64)
    seg = np.asarray(seg, dtype=np.int64)
    if len(vec_row) != len(seg):
        raise ValueError("vec_row and seg must have the same length")
    cells = np.full(len(vec_row), -1, dtype=np.int64)
    has = vec_row >= 0
    if vectors.size == 0 or not has.any():
        return cells
    import faiss

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    rng = np.random.default_rng(seed)
    idx = np.flatnonzero(has)
    order = idx[np.lexsort((rng.random(len(idx)), seg[idx]))]
    first = np.searchsorted(seg[order], seg[order], side="left")
    train_rows = np.unique(vec_row[order[np.arange(len(order)) - first < per_account_cap]])
    k = int(np.clip(len(train_rows) // 8, 8, 256)) if n_cells is None else int(n_cells)
    if k < 1:
        raise ValueError(f"n_cells must be >= 1, got {n_cells}")
    k = min(k, len(train_rows))
    if len(train_rows) > 64 * k:
        train_rows = np.sort(rng.choice(train_rows, size=64 * k, replace=False))
    train = x[train_rows]
    project = None
    if x.shape[1] > proj_dim and len(train_rows) > proj_dim:
        pca = faiss.PCAMatrix(x.shape[1], proj_dim)
        pca.train(train)

        def project(v: np.ndarray) -> np.ndarray:
            p = pca.apply(np.ascontiguousarray(v))
            return np.ascontiguousarray(p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12))

        train = project(train)
    km = faiss.Kmeans(
        train.shape[1],
        k,
        niter=12,
        seed=int(seed) % (2**31),
        spherical=True,
        verbose=False,
        min_points_per_centroid=1,
        max_points_per_centroid=64,
    )
    km.train(train)
    index = faiss.IndexFlatIP(train.shape[1])
    index.add(km.centroids)
    used = np.unique(vec_row[has])
    lookup = np.full(int(used.max()) + 1, -1, dtype=np.int64)
    for lo in range(0, len(used), 100_000):
        part = used[lo : lo + 100_000]
        v = x[part] if project is None else project(x[part])
        _, lab = index.search(v, 1)
        lookup[part] = lab[:, 0]
    cells[has] = lookup[vec_row[has]]
    log.debug("assigned %d requests to %d cells", int(has.sum()), k)
    return cells


@dataclass(frozen=True)
class CellPopulation:
    """Requests per (capability area, cell) in the whole window: the null for rarefaction."""

    areas: tuple[str, ...]
    counts: np.ndarray  # (n_areas, n_cells) float64

    @classmethod
    def from_arrays(cls, capability: np.ndarray, cells: np.ndarray) -> CellPopulation:
        """Count requests per (area, cell); rows with cell -1 are ignored."""
        capability = np.asarray(capability, dtype=object)
        cells = np.asarray(cells, dtype=np.int64)
        if len(capability) != len(cells):
            raise ValueError("capability and cells must have the same length")
        ok = cells >= 0
        areas, code = factorize_str(capability[ok])
        n_cells = int(cells.max(initial=-1)) + 1
        counts = np.zeros((len(areas), max(n_cells, 1)))
        np.add.at(counts, (code, cells[ok]), 1.0)
        return cls(tuple(str(a) for a in areas), counts)


def expected_distinct(p: np.ndarray, n: np.ndarray | float) -> np.ndarray:
    """Rarefaction: expected distinct cells after ``n`` draws (with replacement) from ``p``.

    ``E = sum_c 1 - (1 - p_c)^n`` over the last axis of ``p``; ``n`` broadcasts over the rest.
    """
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    n = np.asarray(n, dtype=np.float64)
    return np.sum(1.0 - (1.0 - p) ** n[..., None], axis=-1)


def coverage_metrics(
    capability: np.ndarray,
    cells: np.ndarray,
    seg: np.ndarray,
    n_seg: int,
    area: np.ndarray,
    population: CellPopulation,
    alpha: float = 5.0,
    chunk: int = 2048,
) -> dict[str, np.ndarray]:
    """How broadly each segment covers its main area, against random draws from everyone else.

    For segment ``s`` with main area ``A = area[s]`` and ``n`` requests in ``A``:
    ``coverage_cells`` = distinct cells touched; ``coverage_expected`` = rarefaction of ``n``
    draws from the *other* segments' cell distribution in ``A`` (the segment's own requests
    are subtracted, so a sweep that dominates an area is not compared with itself), smoothed
    with ``alpha`` pseudo-requests spread uniformly over the area's cells;
    ``coverage_ratio = (cells + 0.5) / (expected + 0.5)``. NaN when the segment has no
    request with a cell in its main area.
    """
    capability = np.asarray(capability, dtype=object)
    cells = np.asarray(cells, dtype=np.int64)
    seg = np.asarray(seg, dtype=np.int64)
    area = np.asarray(area, dtype=object)
    if not len(capability) == len(cells) == len(seg) or len(area) != n_seg:
        raise ValueError("capability, cells and seg must align and area must have one entry per segment")
    out = {k: np.full(n_seg, np.nan) for k in ("coverage_ratio", "coverage_cells", "coverage_expected")}
    out["coverage_n"] = np.zeros(n_seg)
    if len(seg) == 0:
        return out
    n_cells = population.counts.shape[1]
    in_area = (capability == area[seg]) & (cells >= 0) & (cells < n_cells)
    for a_idx, a_name in enumerate(population.areas):
        segs = np.flatnonzero(area == a_name)
        if len(segs) == 0:
            continue
        base = population.counts[a_idx]
        support = base > 0
        k_area = int(support.sum())
        if k_area == 0:
            continue
        uniform = support / k_area
        local = np.full(n_seg, -1, dtype=np.int64)
        local[segs] = np.arange(len(segs))
        rows = np.flatnonzero(in_area & (local[seg] >= 0))
        loc = local[seg[rows]]  # non-decreasing: rows and segs are both in segment order
        for lo in range(0, len(segs), chunk):
            hi = min(lo + chunk, len(segs))
            sel = rows[np.searchsorted(loc, lo) : np.searchsorted(loc, hi)]
            key = (local[seg[sel]] - lo) * n_cells + cells[sel]
            own = np.bincount(key, minlength=(hi - lo) * n_cells).reshape(hi - lo, n_cells).astype(np.float64)
            n_own = own.sum(axis=1)
            others = np.maximum(base[None, :] - own, 0.0)
            p = (others + alpha * uniform[None, :]) / (others.sum(axis=1) + alpha)[:, None]
            expected = expected_distinct(p[:, support], n_own)
            observed = (own > 0).sum(axis=1).astype(np.float64)
            idx = segs[lo:hi]
            ok = n_own > 0
            out["coverage_n"][idx] = n_own
            out["coverage_cells"][idx] = np.where(ok, observed, np.nan)
            out["coverage_expected"][idx] = np.where(ok, expected, np.nan)
            out["coverage_ratio"][idx] = np.where(ok, (observed + 0.5) / (expected + 0.5), np.nan)
    return out
