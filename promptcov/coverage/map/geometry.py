"""What a region of the prompt map *is* once the sample is clustered: its centroid in the embedding
space (what id matching compares across versions and what assignment searches), its radius and
size, and a deterministic 2-D position for plots."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["cluster_geometry", "layout_2d"]


def cluster_geometry(
    x: np.ndarray, labels: np.ndarray, k: int, quantile: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centroid, radius and size of each of ``k`` clusters of the L2-normalised rows ``x``.

    ``labels`` holds 0..k-1 per row (-1 noise). The centroid is the normalised mean of the members
    (float32, in the embedding space); the radius is the ``quantile`` of the members' cosine
    distance to it, the edge of the region beyond which a new text is not assigned to it.
    """
    member = labels >= 0
    onehot = sp.csr_matrix(
        (np.ones(int(member.sum())), (labels[member], np.flatnonzero(member))), shape=(k, len(x))
    )
    sums = np.asarray(onehot @ x.astype(np.float64))
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    centroids = np.ascontiguousarray(sums / norms, dtype=np.float32)
    sizes = np.bincount(labels[member], minlength=k).astype(np.int64)
    dist = 1.0 - np.einsum("ij,ij->i", x[member], centroids[labels[member]])
    order = np.argsort(labels[member], kind="stable")
    radius = np.zeros(k, dtype=np.float32)
    for j, chunk in enumerate(np.split(dist[order], np.cumsum(sizes)[:-1]) if k else []):
        radius[j] = float(np.quantile(chunk, quantile)) if len(chunk) else 0.0
    return centroids, radius, sizes


def layout_2d(centroids: np.ndarray) -> np.ndarray:
    """A deterministic 2-D position per cluster: the first two principal axes of the centroids."""
    k = len(centroids)
    out = np.zeros((k, 2), dtype=np.float64)
    if k < 2:
        return out
    c = centroids.astype(np.float64) - centroids.mean(axis=0)
    u, s, _ = np.linalg.svd(c, full_matrices=False)
    xy = u[:, :2] * s[:2]
    signs = np.sign(xy[np.argmax(np.abs(xy), axis=0), np.arange(xy.shape[1])])
    signs[signs == 0] = 1.0
    out[:, : xy.shape[1]] = xy * signs
    return out
