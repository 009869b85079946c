"""The FAISS index over distinct texts, persisted with a manifest that is checked on load.

Vectors are L2-normalised and searched by inner product (= cosine similarity). Ids are the
int64 ``text_id`` of each distinct (system, prompt) text, through ``IndexIDMap2``; the store's
``requests`` table maps them back to requests.

The index type comes from a factory string: exact ``IDMap2,Flat`` while the store is small,
and the configured large factory (``IDMap2,IVF4096,Flat`` by default, searched with ``nprobe``)
once it holds more than ``large_threshold`` vectors. IVF needs training, so the switch rebuilds
the index from the vector shards (streamed, one shard at a time).

A factory that needs training (IVF, PQ) cannot start on a new store: until the store holds
:func:`min_train_size` vectors (39 per IVF list, FAISS's own floor), the embed job keeps the
exact ``IDMap2,Flat`` index, then trains the configured one and rebuilds.

Compressed tier (10^6..10^7+ vectors): a factory with a scalar or product quantiser (``SQ``/``PQ``,
the ``compressed_factory`` past ``compressed_threshold``, see :mod:`promptcov.index.embed`) keeps
384 bytes per vector (``SQ8``, the default) or 96 (``PQ96``) instead of 1,536.
:meth:`VectorIndex.load` memory-maps such an index
(``faiss.IO_FLAG_MMAP``: the inverted lists stay on disk, in the page cache), and
:meth:`VectorIndex.search` re-ranks the top ``rerank_k`` candidates exactly with the float32
vectors of the store's shards (:class:`promptcov.index.rerank.ShardRows`, found next to the
index folder as ``../vectors``). Adding to a memory-mapped index first reads it into memory.

Integrity: the manifest records the byte size and sha256 of ``index.faiss``. :meth:`VectorIndex.load`
checks the size always and the sha256 when the file is at most ``checksum_max_bytes`` (256 MB by
default; ``None`` checks every byte), so a truncated or bit-flipped index raises
:class:`~promptcov.errors.DamagedStoreError` instead of a FAISS traceback or wrong hits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import faiss
import numpy as np

from promptcov.errors import DamagedStoreError, InputError, ManifestMismatchError
from promptcov.index.rerank import ShardRows, rerank
from promptcov.io import file_digest, read_json, tmp_path_for, write_json

__all__ = ["VectorIndex", "INDEX_SCHEMA_VERSION", "CHECKSUM_MAX_BYTES", "min_train_size", "normalize_factory",
           "is_compressed"]

log = logging.getLogger(__name__)

INDEX_SCHEMA_VERSION = 1

#: Largest ``index.faiss`` whose sha256 is checked on every load (larger: size only; `verify` reads all).
CHECKSUM_MAX_BYTES = 256 * 2**20

_REPAIR = "run `promptcov verify --repair` or `promptcov embed`"


def normalize_factory(factory: str) -> str:
    """The factory string as stored in manifests: always with the ``IDMap2,`` prefix."""
    return factory if factory.startswith("IDMap2,") else "IDMap2," + factory


def is_compressed(factory: str) -> bool:
    """Whether ``factory`` stores compressed codes (PQ/SQ): memory-mapped on load, re-ranked exactly."""
    return any(part.startswith(("PQ", "SQ")) for part in factory.split(","))


def min_train_size(factory: str, dim: int) -> int:
    """Vectors needed to train ``factory`` (0 when it needs no training).

    IVF wants 39 vectors per list (FAISS warns below that, and fails below one per list); a
    product quantiser wants 39 per code (256 codes per sub-quantiser).
    """
    try:
        index = faiss.index_factory(int(dim), normalize_factory(factory), faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise InputError(f"bad FAISS factory string {factory!r}: {exc}") from exc
    if index.is_trained:
        return 0
    need = 1
    try:
        need = max(need, 39 * int(faiss.extract_index_ivf(index).nlist))
    except RuntimeError:
        pass
    if "PQ" in factory:
        need = max(need, 39 * 256)
    return need


def _as_f32(x: np.ndarray, dim: int) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"expected vectors of shape (n, {dim}), got {x.shape}")
    return x


class VectorIndex:
    """A FAISS ``IDMap2`` index with inner-product metric and a manifest.

    >>> ix = VectorIndex(dim=4, model="m")
    >>> v = np.eye(4, dtype=np.float32)
    >>> ix.add(np.array([10, 11, 12, 13]), v)
    >>> sims, ids = ix.search(v[:1], k=2)
    >>> int(ids[0, 0]), round(float(sims[0, 0]), 3)
    (10, 1.0)
    """

    def __init__(self, dim: int, model: str, factory: str = "IDMap2,Flat", nprobe: int = 32, rerank_k: int = 100):
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim = int(dim)
        self.model = model
        self.factory = factory
        self.nprobe = nprobe
        self.rerank_k = int(rerank_k)
        self.shards: set[int] = set()
        self.index = self._make(factory)
        self.rows: ShardRows | None = None      # float32 vectors for exact re-ranking (compressed tier)
        self.mmap_path: Path | None = None      # set when the index is memory-mapped from this file

    def _make(self, factory: str):
        if not factory.startswith("IDMap2,"):
            factory = "IDMap2," + factory
        try:
            index = faiss.index_factory(self.dim, factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            raise InputError(f"bad FAISS factory string {factory!r}: {exc}") from exc
        self.factory = factory
        return index

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def is_trained(self) -> bool:
        return bool(self.index.is_trained)

    def train(self, sample: np.ndarray) -> None:
        self.index.train(_as_f32(sample, self.dim))

    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        vecs = _as_f32(vecs, self.dim)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.shape != (vecs.shape[0],):
            raise ValueError(f"{len(ids)} ids for {vecs.shape[0]} vectors")
        if not self.is_trained:
            raise ValueError(f"index {self.factory} must be trained before adding vectors")
        if self.mmap_path is not None:  # a memory-mapped index is read-only: read it into memory first
            self.index = faiss.read_index(str(self.mmap_path))
            self.mmap_path = None
        self.index.add_with_ids(vecs, ids)
        self.rows = None  # the shards change: the re-ranking lookup is rebuilt on next use

    def _set_search_params(self) -> None:
        try:
            ivf = faiss.extract_index_ivf(self.index)
        except RuntimeError:
            ivf = None
        if ivf is not None:
            ivf.nprobe = self.nprobe
        sub = faiss.downcast_index(self.index.index)
        if hasattr(sub, "hnsw"):
            sub.hnsw.efSearch = max(self.nprobe, 64)

    def attach_vectors(self, vectors_dir: str | Path) -> None:
        """Re-rank searches of a compressed index with the float32 shards in ``vectors_dir``."""
        self.rows = ShardRows(vectors_dir, self.dim, self.shards)

    def search(self, queries: np.ndarray, k: int = 10, rerank_k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(similarities, ids)`` of the ``k`` nearest texts per query; missing hits have id -1.

        A compressed index with attached vectors fetches ``max(k, rerank_k)`` candidates and
        returns the ``k`` best by exact inner product (``rerank_k`` 0: approximate only).
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        q = _as_f32(queries, self.dim)
        if self.ntotal == 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        self._set_search_params()
        rk = self.rerank_k if rerank_k is None else int(rerank_k)
        if self.rows is None or rk <= 0 or not is_compressed(self.factory):
            return self.index.search(q, min(k, self.ntotal))
        sims, ids = self.index.search(q, min(max(k, rk), self.ntotal))
        return rerank(q, sims, ids, self.rows, k)

    # -- persistence -------------------------------------------------------------------
    def manifest(self) -> dict:
        return {"schema_version": INDEX_SCHEMA_VERSION, "model": self.model, "dim": self.dim,
                "factory": self.factory, "count": self.ntotal, "nprobe": self.nprobe,
                "rerank_k": self.rerank_k, "shards": sorted(self.shards)}

    def save(self, directory: str | Path) -> None:
        """Write ``index.faiss`` then ``manifest.json``, each atomically.

        The manifest (with the file's size and sha256) is written last, so a crash in between
        leaves a manifest that does not match the index: :meth:`load` raises
        :class:`~promptcov.errors.DamagedStoreError` and the embed job rebuilds from the shards.
        """
        directory = Path(directory)
        tmp = tmp_path_for(directory / "index.faiss")
        faiss.write_index(self.index, str(tmp))
        size, sha = file_digest(tmp)
        tmp.replace(directory / "index.faiss")
        write_json(directory / "manifest.json", {**self.manifest(), "bytes": size, "sha256": sha})

    @classmethod
    def load(cls, directory: str | Path, model: str | None = None, dim: int | None = None,
             checksum_max_bytes: int | None = CHECKSUM_MAX_BYTES, mmap: bool | None = None) -> VectorIndex:
        """Load and check against the expected ``model`` and ``dim``; a mismatch names both sides.

        ``mmap`` (default: for compressed factories) memory-maps the file instead of reading it;
        a compressed index also gets the store's shards (``directory/../vectors``) for re-ranking.

        The file's size is checked against the manifest, and its sha256 too when the file is at
        most ``checksum_max_bytes`` (``None``: always). A missing, truncated, altered or unreadable
        ``index.faiss`` raises :class:`~promptcov.errors.DamagedStoreError`.
        """
        directory = Path(directory)
        mpath = directory / "manifest.json"
        if not mpath.exists():
            raise InputError(f"no FAISS index in {directory}; run `promptcov embed` first")
        m = read_json(mpath)
        if m.get("schema_version") != INDEX_SCHEMA_VERSION:
            raise ManifestMismatchError(
                f"{mpath}: index schema version {m.get('schema_version')} != expected {INDEX_SCHEMA_VERSION}")
        if model is not None and m.get("model") != model:
            raise ManifestMismatchError(
                f"{mpath}: index was built with model {m.get('model')!r}, but {model!r} was asked for")
        if dim is not None and m.get("dim") != dim:
            raise ManifestMismatchError(f"{mpath}: index dimension {m.get('dim')} != expected {dim}")
        mmap = is_compressed(str(m.get("factory", ""))) if mmap is None else mmap
        index = _read_checked(directory / "index.faiss", m, checksum_max_bytes, mmap)
        if index.d != m["dim"]:
            raise ManifestMismatchError(f"{mpath}: manifest dimension {m['dim']} != index file dimension {index.d}")
        if index.ntotal != m["count"]:
            raise ManifestMismatchError(
                f"{mpath}: manifest count {m['count']} != index file count {index.ntotal} (interrupted write?)")
        self = cls.__new__(cls)
        self.dim, self.model, self.factory = int(m["dim"]), m["model"], m["factory"]
        self.nprobe = int(m.get("nprobe", 32))
        self.rerank_k = int(m.get("rerank_k", 100))
        self.shards = set(m.get("shards", []))
        self.index = index
        self.mmap_path = (directory / "index.faiss") if mmap else None
        if mmap:
            _no_prefetch_threads(index)
        self.rows = None
        if is_compressed(self.factory) and (directory.parent / "vectors").is_dir():
            self.attach_vectors(directory.parent / "vectors")
        return self

    @classmethod
    def build(cls, shards: Iterable[tuple[int, np.ndarray, np.ndarray]], dim: int, model: str, factory: str,
              nprobe: int = 32, train_sample: Iterator | None = None, rerank_k: int = 100) -> VectorIndex:
        """Build a fresh index from ``(shard, ids, vecs)`` batches; trains first when needed."""
        ix = cls(dim, model, factory, nprobe, rerank_k)
        if not ix.is_trained:
            sample = list(train_sample) if train_sample is not None else []
            if not sample:
                raise ValueError(f"factory {factory} needs training vectors and none were given")
            ix.train(np.concatenate(sample))
        for shard, ids, vecs in shards:
            ix.add(ids, vecs)
            ix.shards.add(int(shard))
        return ix


def _no_prefetch_threads(index) -> None:
    """Stop a memory-mapped IVF index from starting threads on every search to pre-read its lists.

    ``OnDiskInvertedLists`` starts ``prefetch_nthread`` (32) threads per search to touch the probed
    lists: ~2-3 ms per single query even when every page is cached (1e6 vectors, IVF4096,SQ8,
    nprobe 16: 2.9 ms -> 0.97 ms here). Without them a cold list is read by the page faults of the scan.
    """
    try:
        lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(index).invlists)
    except RuntimeError:
        return
    if hasattr(lists, "prefetch_nthread"):
        lists.prefetch_nthread = 0


def _read_checked(path: Path, manifest: dict, checksum_max_bytes: int | None, mmap: bool = False):
    """``faiss.read_index`` after the manifest's size and sha256 checks; damage -> DamagedStoreError."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DamagedStoreError(f"index damaged: {path} is missing; {_REPAIR}") from None
    if manifest.get("bytes") is not None and size != manifest["bytes"]:
        raise DamagedStoreError(f"index damaged: {path} has {size} bytes, its manifest says "
                                f"{manifest['bytes']}; {_REPAIR}")
    if manifest.get("sha256") and (checksum_max_bytes is None or size <= checksum_max_bytes):
        if file_digest(path)[1] != manifest["sha256"]:
            raise DamagedStoreError(f"index damaged: {path} fails its sha256 checksum; {_REPAIR}")
    try:
        return faiss.read_index(str(path), faiss.IO_FLAG_MMAP) if mmap else faiss.read_index(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DamagedStoreError(f"index damaged: {path} cannot be read ({first[:120]}); {_REPAIR}") from exc
