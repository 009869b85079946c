"""Stable cluster ids across map versions, and the on-disk form of a fitted map.

Every ``promptcov map`` run refits the prompt-space map on a fresh sample, so HDBSCAN numbers its
clusters from scratch: cluster 7 today may be cluster 31 tomorrow. Reports track areas over weeks
("this region first appeared in W47 and grew tenfold"), and a sweep that opens a *new* region of
the input space is itself a signal, so ids must follow regions, not fit order.

:func:`match_clusters` pairs each new cluster with at most one previous cluster by centroid cosine
(a one-to-one Hungarian assignment, so two new clusters can never both claim an old id) and keeps
the old id only when the two centroids are at least ``min_similarity`` alike. Everything else gets
a fresh id above every id ever issued, so an id is never reused for a different region.

:func:`write_map_files` / :func:`read_map_files` persist a fitted map as plain ``.npy`` arrays,
pickles of the reducer and clusterer, and a JSON manifest that is checked on load.

:func:`cluster_geometry` computes what a region *is* once the sample is clustered: its centroid in
the embedding space (what matching compares across versions and what assignment searches), its
radius and size; :func:`layout_2d` gives each region a deterministic position for plots.
"""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

from promptcov import __version__
from promptcov.errors import InputError, ManifestMismatchError
from promptcov.io import atomic_write, write_json

__all__ = [
    "MAP_FORMAT",
    "MAP_FORMAT_VERSION",
    "match_clusters",
    "write_map_files",
    "read_map_files",
    "save_map",
    "load_map",
    "cluster_geometry",
    "layout_2d",
]

log = logging.getLogger(__name__)

#: Name and version written into ``map.json``; a reader refuses other formats or newer versions.
MAP_FORMAT = "promptcov-map"
MAP_FORMAT_VERSION = 1

_ARRAYS = ("centroids", "cluster_ids", "radius", "sample_index", "labels")
_PICKLES = ("reducer", "clusterer")


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


def write_map_files(
    directory: str | Path, manifest: dict[str, Any], arrays: dict[str, np.ndarray], objects: dict[str, Any]
) -> None:
    """Write a fitted map into ``directory``: ``<name>.npy`` arrays, ``<name>.pkl`` pickles, ``map.json``.

    Every file is written atomically; the manifest goes last, so a reader that finds ``map.json``
    finds a complete map (a crash mid-save leaves the previous manifest and its files readable
    until they are overwritten one by one).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in _ARRAYS:
        with atomic_write(directory / f"{name}.npy", "wb") as fh:
            np.save(fh, np.ascontiguousarray(arrays[name]), allow_pickle=False)
    for name in _PICKLES:
        with atomic_write(directory / f"{name}.pkl", "wb") as fh:
            pickle.dump(objects[name], fh, protocol=pickle.HIGHEST_PROTOCOL)
    write_json(directory / "map.json", {"format": MAP_FORMAT, "version": MAP_FORMAT_VERSION, **manifest})


def read_map_files(
    directory: str | Path, dim: int | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    """Read what :func:`write_map_files` wrote; check format, version and dimension.

    ``dim`` is the caller's embedding dimension (e.g. the store's model); a map fitted on vectors
    of another dimension raises :class:`~promptcov.errors.ManifestMismatchError` (a ``ValueError``)
    naming both sides. Only load maps you wrote yourself: the reducer and clusterer are pickles.
    """
    directory = Path(directory)
    path = directory / "map.json"
    if not path.is_file():
        raise InputError(f"{path}: no fitted map here; run `promptcov map` first")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc
    if manifest.get("format") != MAP_FORMAT:
        raise InputError(f"{path}: not a promptcov map (format={manifest.get('format')!r})")
    if int(manifest.get("version", -1)) > MAP_FORMAT_VERSION:
        raise InputError(
            f"{path}: map format version {manifest.get('version')} is newer than this promptcov "
            f"reads ({MAP_FORMAT_VERSION}); upgrade promptcov or rerun `promptcov map`"
        )
    if dim is not None and int(manifest["dim"]) != int(dim):
        raise ManifestMismatchError(
            f"{path}: the map was fitted on {manifest['dim']}-dimensional vectors but the caller has "
            f"{dim}-dimensional ones; rerun `promptcov map` after changing the model"
        )
    arrays = {name: np.load(directory / f"{name}.npy", allow_pickle=False) for name in _ARRAYS}
    if arrays["centroids"].ndim != 2 or arrays["centroids"].shape[1] != int(manifest["dim"]):
        raise ManifestMismatchError(
            f"{directory / 'centroids.npy'}: centroids have shape {arrays['centroids'].shape} but "
            f"map.json says dim={manifest['dim']}"
        )
    objects = {}
    for name in _PICKLES:
        with open(directory / f"{name}.pkl", "rb") as fh:
            objects[name] = pickle.load(fh)
    return manifest, arrays, objects


def save_map(m: Any, directory: str | Path) -> None:
    """Persist the learned state of a fitted :class:`~promptcov.coverage.map.prompt_map.PromptMap`."""
    params = {k: v for k, v in m.get_params().items() if k not in ("reducer", "clusterer")}
    manifest = {
        "promptcov_version": __version__,
        "dim": m.dim_,
        "n_clusters": len(m.cluster_ids_),
        "n_fit": m.n_fit_,
        "params": params,
        "custom_reducer": m.reducer is not None,
        "custom_clusterer": m.clusterer is not None,
        "resolved_min_cluster_size": m.resolved_min_cluster_size_,
        "raw_labels": m.raw_labels_.tolist(),
        "sizes": m.sizes_.tolist(),
        "is_new": {str(k): v for k, v in m.is_new_.items()},
        "id_map": {str(k): v for k, v in m.id_map_.items()},
        "fit_seconds": m.fit_seconds_,
    }
    arrays = {
        "centroids": m.centroids_,
        "cluster_ids": m.cluster_ids_,
        "radius": m.radius_,
        "sample_index": m.sample_index_,
        "labels": m.labels_,
    }
    write_map_files(directory, manifest, arrays, {"reducer": m.reducer_, "clusterer": m.clusterer_})


def load_map(cls: type, directory: str | Path, dim: int | None = None) -> Any:
    """Rebuild a fitted ``cls`` (a PromptMap class) from what :func:`save_map` wrote."""
    manifest, arrays, objects = read_map_files(directory, dim)
    params = dict(manifest["params"])
    if manifest.get("custom_reducer"):
        params["reducer"] = objects["reducer"]
    if manifest.get("custom_clusterer"):
        params["clusterer"] = objects["clusterer"]
    m = cls(**params)
    m.centroids_ = np.ascontiguousarray(arrays["centroids"], dtype=np.float32)
    m.cluster_ids_ = arrays["cluster_ids"].astype(np.int64)
    m.radius_ = arrays["radius"].astype(np.float32)
    m.sample_index_ = arrays["sample_index"].astype(np.int64)
    m.labels_ = arrays["labels"].astype(np.int64)
    m.reducer_, m.clusterer_ = objects["reducer"], objects["clusterer"]
    m.raw_labels_ = np.asarray(manifest["raw_labels"], dtype=np.int64)
    m.sizes_ = np.asarray(manifest["sizes"], dtype=np.int64)
    m.resolved_min_cluster_size_ = int(manifest["resolved_min_cluster_size"])
    m.is_new_ = {int(k): bool(v) for k, v in manifest["is_new"].items()}
    m.id_map_ = {int(k): int(v) for k, v in manifest["id_map"].items()}
    m.dim_ = int(manifest["dim"])
    m.n_fit_ = int(manifest["n_fit"])
    m.fit_seconds_ = dict(manifest.get("fit_seconds", {}))
    return m
