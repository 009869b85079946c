"""A persistent text -> vector cache in front of an embedder, shared by evaluation runs.

:class:`CachedEmbedder` wraps any :class:`~promptcov.protocols.Embedder`: ``embed(texts)`` looks
every text up (by SHA-1 of the UTF-8 text) in ``DIR/<model key>/`` and only sends the misses to
the model. New vectors are written as shards (``shard-<ns>-<pid>.npz``: ``keys`` (n, 20) uint8
and ``vectors`` (n, dim) float32) atomically (temporary file + ``os.replace``), so concurrent or
interrupted runs never leave a half-written shard, and later seeds and reruns embed only texts
they have not seen. The model key holds the model name and the truncation length.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["CachedEmbedder"]

log = logging.getLogger(__name__)


def _key(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).digest()


class CachedEmbedder:
    """``embedder`` with a persistent cache under ``cache_dir`` (see the module docstring)."""

    def __init__(self, embedder, cache_dir: Path, model_key: str | None = None, flush_every: int = 2048):
        self.inner = embedder
        self.name = embedder.name
        key = model_key or f"{embedder.name}-{getattr(embedder, 'max_seq_length', 'na')}"
        self.dir = Path(cache_dir) / re.sub(r"[^A-Za-z0-9._-]+", "_", key)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.flush_every = flush_every
        self.hits = 0
        self.misses = 0
        self._rows: dict[bytes, np.ndarray] = {}
        self._pending: dict[bytes, np.ndarray] = {}
        self._load()

    @property
    def dim(self) -> int:
        if self._rows:
            return int(next(iter(self._rows.values())).shape[0])
        return int(self.inner.dim)

    def _load(self) -> None:
        for path in sorted(self.dir.glob("shard-*.npz")):
            try:
                with np.load(path) as z:
                    keys, vecs = z["keys"], z["vectors"]
            except (OSError, ValueError, KeyError) as exc:
                log.warning("skipping unreadable cache shard %s: %s", path, exc)
                continue
            for k, v in zip(keys, vecs, strict=True):
                self._rows[bytes(k)] = v
        log.info("embedding cache %s: %d vectors", self.dir, len(self._rows))

    def __len__(self) -> int:
        return len(self._rows)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for ``texts``, from the cache where possible (same contract as the model)."""
        keys = [_key(t) for t in texts]
        missing: dict[bytes, str] = {}
        for k, t in zip(keys, texts, strict=True):
            if k not in self._rows and k not in missing:
                missing[k] = t
        self.misses += sum(1 for k in keys if k in missing)
        self.hits += len(keys) - sum(1 for k in keys if k in missing)
        if missing:
            vecs = np.asarray(self.inner.embed(list(missing.values())), dtype=np.float32)
            for k, v in zip(missing, vecs, strict=True):
                self._rows[k] = v
                self._pending[k] = v
            if len(self._pending) >= self.flush_every:
                self.flush()
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.ascontiguousarray(np.stack([self._rows[k] for k in keys]), dtype=np.float32)

    def flush(self) -> None:
        """Write the vectors embedded since the last flush as one new shard (atomically)."""
        if not self._pending:
            return
        keys = np.frombuffer(b"".join(self._pending), dtype=np.uint8).reshape(len(self._pending), 20)
        vecs = np.stack(list(self._pending.values())).astype(np.float32)
        path = self.dir / f"shard-{time.time_ns()}-{os.getpid()}.npz"
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, keys=keys, vectors=vecs)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        self._pending.clear()

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0
