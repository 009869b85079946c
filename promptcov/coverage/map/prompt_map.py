"""The prompt-space map: dense regions of the embedding space, found on a sample, applied to all.

Why a map. A distillation sweep is a structured walk over a few valuable regions of the input
space: one template with its slots varied puts thousands of distinct texts into one tight region.
Organic traffic spreads over a long tail of regions. Per-account metrics (how concentrated an
account is, how many regions a group covers, whether a region is new) need every text to carry a
region id, and those ids must be comparable across accounts and across weeks.

How. As in BERTopic: reduce the 384-d sentence vectors with UMAP (cosine metric, 5 components,
``min_dist=0``, which keeps local density instead of spreading points for display) and find dense
regions with HDBSCAN, whose label -1 ("noise") is an honest answer for the long tail. Neither
scales to millions of rows on a CPU (BERTopic users report UMAP ~2 h and HDBSCAN >15 h at 1.2M
documents), so the map is fitted on a seeded sample of at most ``sample_size`` distinct texts and
every other text is *assigned*, streaming in batches:

- ``assign="centroid"`` (default): the nearest cluster centroid in the original embedding space
  (a FAISS inner-product search over the few hundred centroids), kept only within that cluster's
  radius (``radius_``, a high quantile of its members' cosine distance to the centroid); beyond
  every radius the text is noise. Cost O(N * k * d), no UMAP needed at predict time.
- ``assign="hdbscan"``: ``umap.transform`` then ``hdbscan.approximate_predict``. Faithful to the
  fitted density model, but UMAP's transform runs a neighbour search and an optimisation per row.

``scripts/bench_map.py`` compares both (a map fitted on 80% of a sample labels the other 20%,
scored against HDBSCAN's labels of the whole sample): their agreement is close and the centroid
assignment is two orders of magnitude faster, hence the default (figures in the README).

Sampling. Rows are sampled uniformly over *distinct texts*, not requests: a sweep shows up as many
distinct texts in one region, which is exactly what density clustering sees, while a popular
prompt pasted 10,000 times is one point however it is weighted. When ``weights`` (request counts)
are given they bias the sample mildly, with probability proportional to ``sqrt(weight)``, so heavily
used texts are likelier to be in the sample without crowding out the long tail.

Default sizes: ``sample_size=20000`` keeps the fit time flat whatever N (``scripts/bench_map.py``);
``min_cluster_size`` resolves to ``max(10, n_sample // 500)`` (40 at the default sample), i.e. a region must hold 0.2% of the sample to be a cluster. A region smaller than
that in the sample is noise in the map; the template and near-duplicate detectors are the tools
for very small sweeps.
"""

from __future__ import annotations

import copy
import inspect
import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from promptcov.coverage.map.geometry import cluster_geometry, layout_2d
from promptcov.coverage.map.persist import load_map, save_map
from promptcov.coverage.map.stability import match_clusters
from promptcov.errors import InputError, NotFittedError

__all__ = ["PromptMap", "RADIUS_QUANTILE", "resolve_min_cluster_size"]

log = logging.getLogger(__name__)

#: Quantile of the members' cosine distance to their centroid that bounds a cluster's region
#: (``assign_max_distance="auto"``): high enough that a cluster keeps nearly all its members, low
#: enough that the long tail stays noise, as HDBSCAN itself leaves it (``scripts/bench_map.py``
#: compares 0.9, 0.95, 0.99 and 1.0).
RADIUS_QUANTILE = 0.95

_ASSIGN = ("centroid", "hdbscan")


def resolve_min_cluster_size(n_sample: int) -> int:
    """The default HDBSCAN ``min_cluster_size`` for a sample of ``n_sample`` rows: ``max(10, n // 500)``."""
    return max(10, int(n_sample) // 500)


def _as_vectors(x: Any, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] == 0:
        raise InputError(f"{what} must be a 2-D array (n, dim), got shape {x.shape}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)):
        raise InputError(f"{what} contains NaN or infinite values")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(x / norms, dtype=np.float32)


class PromptMap:
    """Cluster a sample of prompt vectors, then label any number of vectors with stable cluster ids.

    Parameters
    ----------
    sample_size: at most this many rows are reduced and clustered (the rest are assigned).
    n_components, n_neighbors, min_dist: UMAP parameters (metric cosine, ``low_memory=True``).
    min_cluster_size: HDBSCAN parameter; ``None`` resolves to ``max(10, n_sample // 500)``.
    min_samples: HDBSCAN parameter; ``None`` means HDBSCAN's default (= ``min_cluster_size``).
    assign: ``"centroid"`` (nearest centroid within the cluster radius) or ``"hdbscan"``
        (``umap.transform`` + ``hdbscan.approximate_predict``).
    assign_max_distance: for ``"centroid"``: ``"auto"`` = per-cluster radius (the
        ``RADIUS_QUANTILE`` of member cosine distances), a float = one cosine-distance cut-off for
        every cluster, ``None`` = no cut-off (every row joins its nearest cluster).
    seed: seeds the sample, UMAP (``random_state``; UMAP then runs single-threaded, which makes it
        reproducible) and nothing else needs one (HDBSCAN is deterministic given its input).
    reducer, clusterer: objects satisfying :class:`promptcov.protocols.Reducer` / ``Clusterer``
        used instead of UMAP / HDBSCAN; they are copied (``sklearn.base.clone`` when possible) and
        the copies fitted, so the objects passed in are never changed.

    Learned: ``sample_index_`` (rows of the fit input in the sample, sorted), ``labels_`` (cluster
    id per sample row, -1 noise), ``cluster_ids_`` (int64, one per cluster), ``centroids_``
    (k, d) float32 L2-normalised in the embedding space, ``radius_`` (k,) cosine-distance cut-offs,
    ``sizes_`` (sample members per cluster), ``layout_`` (k, 2) positions for plots,
    ``reducer_``, ``clusterer_``, ``resolved_min_cluster_size_``, ``is_new_`` (id -> bool),
    ``id_map_`` (fit-order cluster index -> id), ``dim_``, ``n_fit_``.

    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.cluster import KMeans
    >>> rng = np.random.default_rng(0)
    >>> centres = np.eye(8, dtype=np.float32)[:3]
    >>> x = centres[rng.integers(0, 3, 300)] + 0.05 * rng.standard_normal((300, 8)).astype(np.float32)
    >>> m = PromptMap(reducer=PCA(2), clusterer=KMeans(3, n_init=1, random_state=0)).fit(x)
    >>> len(m.cluster_ids_), bool(np.mean(m.predict(x) == m.labels_) > 0.9)
    (3, True)
    """

    def __init__(
        self,
        sample_size: int = 20000,
        n_components: int = 5,
        n_neighbors: int = 15,
        min_dist: float = 0.0,
        min_cluster_size: int | None = None,
        min_samples: int | None = None,
        assign: str = "centroid",
        assign_max_distance: float | str | None = "auto",
        seed: int = 0,
        reducer: Any = None,
        clusterer: Any = None,
    ):
        self.sample_size = sample_size
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.assign = assign
        self.assign_max_distance = assign_max_distance
        self.seed = seed
        self.reducer = reducer
        self.clusterer = clusterer

    # ------------------------------------------------------------------ fit
    def _check_params(self) -> None:
        if self.assign not in _ASSIGN:
            raise InputError(f"assign must be one of {_ASSIGN}, got {self.assign!r}")
        if int(self.sample_size) < 2:
            raise InputError(f"sample_size must be >= 2, got {self.sample_size}")
        amd = self.assign_max_distance
        if not (amd is None or amd == "auto" or (isinstance(amd, (int, float)) and 0 < amd <= 2)):
            raise InputError(f"assign_max_distance must be 'auto', None or a float in (0, 2], got {amd!r}")

    def _draw_sample(self, n: int, weights: np.ndarray | None) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        size = min(int(self.sample_size), n)
        if size == n:
            return np.arange(n, dtype=np.int64)
        if weights is None:
            idx = rng.choice(n, size=size, replace=False)
        else:
            # Efraimidis-Spirakis weighted sampling without replacement: key = log(u) / w, keep the
            # largest keys; w = sqrt(request count) damps very popular texts.
            w = np.sqrt(weights)
            with np.errstate(divide="ignore"):
                keys = np.log(rng.random(n)) / w
            idx = np.argpartition(-keys, size - 1)[:size]
        return np.sort(idx).astype(np.int64)

    def _make_reducer(self) -> Any:
        if self.reducer is not None:
            return _copy_estimator(self.reducer)
        import umap

        return umap.UMAP(
            n_components=self.n_components,
            n_neighbors=self.n_neighbors,
            min_dist=self.min_dist,
            metric="cosine",
            random_state=self.seed,
            n_jobs=1,
            low_memory=True,
        )

    def _make_clusterer(self, min_cluster_size: int) -> Any:
        if self.clusterer is not None:
            clusterer = _copy_estimator(self.clusterer)
            if self.assign == "hdbscan":
                import hdbscan

                if not isinstance(clusterer, hdbscan.HDBSCAN):
                    raise InputError("assign='hdbscan' needs an hdbscan.HDBSCAN clusterer")
                clusterer.set_params(prediction_data=True)
            return clusterer
        import hdbscan

        return hdbscan.HDBSCAN(
            min_cluster_size=min_cluster_size,
            min_samples=self.min_samples,
            metric="euclidean",
            cluster_selection_method="eom",
            prediction_data=self.assign == "hdbscan",
        )

    def fit(self, vectors: np.ndarray, weights: np.ndarray | None = None) -> PromptMap:
        """Sample, reduce, cluster; compute centroids and radii in the embedding space.

        ``vectors``: (n, d) float32 L2-normalised (any array-like, including a ``np.memmap``: only
        the sampled rows are read). ``weights``: optional (n,) non-negative request counts that
        bias the sample (see the module docstring).
        """
        self._check_params()
        vectors, weights = self._check_input(vectors, weights)
        n = int(vectors.shape[0])
        t0 = time.perf_counter()
        sample_index = self._draw_sample(n, weights)
        x = _as_vectors(vectors[sample_index], "vectors")
        n_sample = len(x)
        if self.reducer is None and n_sample <= self.n_neighbors:
            raise InputError(
                f"need more than n_neighbors={self.n_neighbors} vectors to fit a map, got {n_sample}"
            )
        mcs = int(self.min_cluster_size) if self.min_cluster_size is not None else None
        mcs = mcs if mcs is not None else resolve_min_cluster_size(n_sample)
        if mcs < 2:
            raise InputError(f"min_cluster_size must be >= 2, got {mcs}")
        reducer = self._make_reducer()
        clusterer = self._make_clusterer(mcs)
        log.info(
            "fitting prompt map: sample %d of %d rows (seed=%d, %s); reducer %s; clusterer %s",
            n_sample,
            n,
            self.seed,
            "uniform" if weights is None else "sqrt(weight)-biased",
            type(reducer).__name__
            + (
                f"(n_components={self.n_components}, n_neighbors={self.n_neighbors}, metric=cosine, "
                f"random_state={self.seed})"
                if self.reducer is None
                else ""
            ),
            type(clusterer).__name__ + (f"(min_cluster_size={mcs})" if self.clusterer is None else ""),
        )
        t1 = time.perf_counter()
        reduced = np.asarray(reducer.fit_transform(x))
        t2 = time.perf_counter()
        clusterer.fit(reduced)
        t3 = time.perf_counter()
        raw = np.asarray(clusterer.labels_).astype(np.int64)
        if raw.shape != (n_sample,):
            raise InputError(f"clusterer.labels_ has shape {raw.shape}, expected ({n_sample},)")
        raw_ids = np.unique(raw[raw >= 0])
        k = len(raw_ids)
        pos = np.searchsorted(raw_ids, raw)
        dense = np.where(raw >= 0, pos, -1).astype(np.int64)
        self._set_clusters(x, dense, k)
        self.raw_labels_ = raw_ids  # clusterer label of each cluster position (for approximate_predict)
        self.sample_index_ = sample_index
        self.reducer_ = reducer
        self.clusterer_ = clusterer
        self.resolved_min_cluster_size_ = mcs
        self.dim_ = int(x.shape[1])
        self.n_fit_ = n
        self.fit_seconds_ = {"sample": t1 - t0, "reduce": t2 - t1, "cluster": t3 - t2}
        if k == 0:
            log.warning("prompt map found no clusters in %d sampled rows: every row will be noise", n_sample)
        log.info(
            "prompt map: %d clusters, %.1f%% of the sample noise (UMAP %.1fs, clustering %.1fs)",
            k,
            100.0 * float(np.mean(dense < 0)),
            t2 - t1,
            t3 - t2,
        )
        return self

    def _check_input(self, vectors, weights):
        if not hasattr(vectors, "shape"):
            vectors = np.asarray(vectors)
        if len(vectors.shape) != 2:
            raise InputError(f"vectors must be a 2-D array (n, dim), got shape {vectors.shape}")
        n = int(vectors.shape[0])
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != (n,) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
                raise InputError(f"weights must be {n} finite non-negative numbers, got shape {weights.shape}")
            if np.count_nonzero(weights) < min(int(self.sample_size), n):
                raise InputError("weights: fewer rows with a positive weight than the sample needs")
        return vectors, weights

    def _set_clusters(self, x: np.ndarray, dense: np.ndarray, k: int) -> None:
        centroids, radius, sizes = cluster_geometry(x, dense, k, RADIUS_QUANTILE)
        self.centroids_ = centroids
        self.radius_ = radius
        self.sizes_ = sizes
        self.cluster_ids_ = np.arange(k, dtype=np.int64)
        self.labels_ = dense
        self.layout_ = layout_2d(centroids)
        self.is_new_ = {int(i): True for i in self.cluster_ids_}
        self.id_map_ = {j: int(j) for j in range(k)}

    # ------------------------------------------------------------- predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "centroids_"):
            raise NotFittedError("PromptMap is not fitted: call fit(vectors) or PromptMap.load(dir) first")

    def _cutoffs(self) -> np.ndarray:
        amd = self.assign_max_distance
        if amd == "auto":
            return self.radius_.astype(np.float32)
        return np.full(len(self.centroids_), np.inf if amd is None else float(amd), dtype=np.float32)

    def _predict_batch(self, batch: np.ndarray, index: Any, cutoffs: np.ndarray) -> np.ndarray:
        x = _as_vectors(batch, "vectors")
        if x.shape[1] != self.dim_:
            raise ValueError(
                f"dimension mismatch: the map has {self.dim_} dimensions, the vectors {x.shape[1]}"
            )
        out = np.full(len(x), -1, dtype=np.int64)
        k = len(self.centroids_)
        if k == 0 or len(x) == 0:
            return out
        if self.assign == "hdbscan":
            import hdbscan

            raw, _ = hdbscan.approximate_predict(self.clusterer_, np.asarray(self.reducer_.transform(x)))
            raw = np.asarray(raw, dtype=np.int64)
            pos = np.searchsorted(self.raw_labels_, raw)
            ok = raw >= 0
            out[ok] = self.cluster_ids_[pos[ok]]
            return out
        sims, nn = index.search(x, min(4, k))
        # the first of the nearest few centroids whose radius contains the row (else noise)
        inside = (nn >= 0) & (1.0 - sims <= cutoffs[np.maximum(nn, 0)])
        first = np.argmax(inside, axis=1)
        hit = inside[np.arange(len(x)), first]
        out[hit] = self.cluster_ids_[nn[hit, first[hit]]]
        return out

    def _index(self) -> Any:
        if self.assign != "centroid" or len(self.centroids_) == 0:
            return None
        import faiss

        index = faiss.IndexFlatIP(self.dim_)
        index.add(self.centroids_)
        return index

    def iter_predict(self, batches: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Label a stream of vector batches; yields one int64 label array per batch (memory: one batch)."""
        self._check_fitted()
        index, cutoffs = self._index(), self._cutoffs()
        for batch in batches:
            yield self._predict_batch(batch, index, cutoffs)

    def predict(self, vectors: np.ndarray, batch_size: int = 65536) -> np.ndarray:
        """Cluster id per row (-1 noise) for any number of rows, processed ``batch_size`` rows at a time.

        Only the int64 output grows with ``len(vectors)``; pass a ``np.memmap`` to label more rows
        than fit in memory, or use :meth:`iter_predict` for a generator of batches.
        """
        self._check_fitted()
        if int(batch_size) < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        if not hasattr(vectors, "shape"):
            vectors = np.asarray(vectors)
        if len(vectors.shape) != 2:
            raise InputError(f"vectors must be a 2-D array (n, dim), got shape {vectors.shape}")
        n, bs = int(vectors.shape[0]), int(batch_size)
        out = np.empty(n, dtype=np.int64)
        batches = (vectors[i : i + bs] for i in range(0, n, bs))
        for i, labels in zip(range(0, n, bs), self.iter_predict(batches), strict=True):
            out[i : i + len(labels)] = labels
        return out

    # ---------------------------------------------------------- stability
    def mark_new(self, is_new: bool) -> PromptMap:
        """Mark every cluster new (``True``) or not: a first map has no previous map to be new against."""
        self._check_fitted()
        self.is_new_ = {int(i): bool(is_new) for i in self.cluster_ids_}
        return self

    def match_previous(
        self,
        prev_centroids: np.ndarray,
        prev_ids: np.ndarray,
        min_similarity: float = 0.9,
        next_id: int | None = None,
    ) -> PromptMap:
        """Re-label clusters so a region the previous map also had keeps its previous id.

        See :func:`promptcov.coverage.map.stability.match_clusters`. New regions get fresh ids above
        ``max(prev_ids)`` (or from ``next_id`` when higher, e.g. the largest id ever issued, so an
        id that disappeared is never reused). Sets ``cluster_ids_``, ``labels_``, ``is_new_``,
        ``id_map_`` (fit-order cluster index -> id). Calling it again re-labels from scratch.
        """
        self._check_fitted()
        ids, is_new = match_clusters(self.centroids_, prev_centroids, prev_ids, min_similarity, next_id)
        # cluster_ids_[j] -> ids[j]: find each sample label's cluster position, then its new id
        order = np.argsort(self.cluster_ids_, kind="stable")
        member = self.labels_ >= 0
        pos = order[np.searchsorted(self.cluster_ids_[order], self.labels_[member])]
        labels = np.full(len(self.labels_), -1, dtype=np.int64)
        labels[member] = ids[pos]
        self.labels_ = labels
        self.cluster_ids_ = ids
        self.is_new_ = {int(i): bool(b) for i, b in zip(ids, is_new, strict=True)}
        self.id_map_ = {j: int(ids[j]) for j in range(len(ids))}
        return self

    # --------------------------------------------------------- persistence
    def get_params(self) -> dict[str, Any]:
        """The constructor parameters (reducer/clusterer as objects)."""
        names = list(inspect.signature(PromptMap.__init__).parameters)[1:]
        return {name: getattr(self, name) for name in names}

    def save(self, directory: str | Path) -> None:
        """Write the fitted map to ``directory`` (``map.json``, ``*.npy``, ``reducer.pkl``, ``clusterer.pkl``)."""
        self._check_fitted()
        save_map(self, directory)
        log.info("saved prompt map (%d clusters) to %s", len(self.cluster_ids_), directory)

    @classmethod
    def load(cls, directory: str | Path, dim: int | None = None) -> PromptMap:
        """Read a map written by :meth:`save`; ``dim`` (optional) must equal the map's dimension.

        A different dimension raises :class:`~promptcov.errors.ManifestMismatchError` (a ``ValueError``).
        """
        m = load_map(cls, directory, dim)
        m.layout_ = layout_2d(m.centroids_)
        return m


def _copy_estimator(obj: Any) -> Any:
    """An unfitted copy of a scikit-learn style estimator, else a deep copy (the caller's object stays intact)."""
    from sklearn.base import clone

    try:
        return clone(obj)
    except (TypeError, RuntimeError):
        return copy.deepcopy(obj)
