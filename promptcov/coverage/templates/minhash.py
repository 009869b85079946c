"""MinHash signatures in numpy batches, LSH banding by sorting, and connected groups.

Template detection (:mod:`promptcov.coverage.templates.detector`) sketches millions of texts. datasketch's
``MinHash.update_batch`` hashes every shingle with a Python call and ``MinHashLSH`` keeps one
dictionary entry per band per text; both are too slow and too large at a million texts. This
module computes the *same* signatures as ``datasketch.MinHash(num_perm, seed, scheme="affine32")``
fed :func:`shingle_hash` values (a test checks it), with one numpy product per batch, and finds
candidate pairs by sorting band keys, then verifies them by their estimated Jaccard.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

__all__ = ["MinHasher", "EdgeGroups", "band_edges", "lsh_params", "sequence_key", "shingle_hash"]

_M32 = np.uint32(0x01000193)  # FNV-1a prime: folds token hashes into a shingle hash
_F1, _F2 = np.uint32(0x85EBCA6B), np.uint32(0xC2B2AE35)  # MurmurHash3 fmix32, as datasketch applies it
_trapz = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz
_CHUNK = 1 << 17  # shingles per (shingles x num_perm) product: bounds memory at ~32 MB for 64 perms


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h = h * _F1
    h = h ^ (h >> np.uint32(13))
    h = h * _F2
    return h ^ (h >> np.uint32(16))


def shingle_hash(token_hashes: Sequence[int]) -> int:
    """32-bit hash of one shingle from its tokens' 32-bit hashes (the scalar twin of the numpy fold)."""
    h = 0x811C9DC5
    for t in token_hashes:
        h = ((h ^ t) * 0x01000193) & 0xFFFFFFFF
    return h


class MinHasher:
    """Batch MinHash signatures equal to datasketch's ``MinHash(num_perm, seed, scheme="affine32")``
    updated with :func:`shingle_hash` values, computed with one numpy product per batch."""

    def __init__(self, num_perm: int, seed: int, shingle: int):
        from datasketch import MinHash

        a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
        self.a, self.b = a.astype(np.uint32), b.astype(np.uint32)
        self.k = shingle
        self._cache: dict[str, int] = {}

    def token_hash(self, tok: str) -> int:
        h = self._cache.get(tok)
        if h is None:
            if len(self._cache) > 2_000_000:
                self._cache.clear()
            h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=4).digest(), "little")
            self._cache[tok] = h
        return h

    def token_hashes(self, toks: Sequence[str]) -> np.ndarray:
        """uint32 hash of each token (blake2b, cached): the unit the shingles fold."""
        return np.array([self.token_hash(t) for t in toks], dtype=np.uint32)

    def shingles(self, th: np.ndarray) -> np.ndarray:
        """uint32 hash of each ``shingle``-token window of token hashes ``th`` (one window when shorter)."""
        m = max(1, len(th) - self.k + 1)
        h = np.full(m, 0x811C9DC5, dtype=np.uint32)
        for j in range(min(self.k, len(th))):
            h = (h ^ th[j : j + m]) * _M32
        return h

    def signatures(self, hash_lists: Sequence[np.ndarray]) -> np.ndarray:
        """(n, num_perm) uint32 MinHash signatures of n token-hash arrays (each non-empty)."""
        out = np.empty((len(hash_lists), len(self.a)), dtype=np.uint32)
        i = 0
        while i < len(hash_lists):
            hs, total = [], 0
            while i + len(hs) < len(hash_lists) and (not hs or total < _CHUNK):
                hs.append(self.shingles(hash_lists[i + len(hs)]))
                total += len(hs[-1])
            h = _fmix32(np.concatenate(hs))
            starts = np.r_[0, np.cumsum([len(x) for x in hs])[:-1]]
            out[i : i + len(hs)] = np.minimum.reduceat(
                h[:, None] * self.a[None, :] + self.b[None, :], starts, axis=0
            )
            i += len(hs)
        return out


def sequence_key(th: np.ndarray) -> int:
    """64-bit key of an exact token-hash sequence (anchors, canonical members)."""
    return int.from_bytes(
        hashlib.blake2b(np.ascontiguousarray(th).tobytes(), digest_size=8).digest(), "little"
    )


@lru_cache(maxsize=32)
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimising equal-weight false-positive and false-negative mass, as
    datasketch's ``MinHashLSH`` chooses them."""
    s = np.linspace(0.0, 1.0, 2001)
    best, arg = np.inf, (1, num_perm)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            p = 1.0 - (1.0 - s**r) ** b
            fp = _trapz(np.where(s <= threshold, p, 0.0), s)
            fn = _trapz(np.where(s >= threshold, 1.0 - p, 0.0), s)
            if 0.5 * fp + 0.5 * fn < best:
                best, arg = 0.5 * fp + 0.5 * fn, (b, r)
    return arg


def band_edges(sig: np.ndarray, bands: int, rows: int, threshold: float) -> np.ndarray:
    """(m, 2) row pairs that share an LSH band bucket and whose estimated Jaccard (share of equal
    signature values) is at least ``threshold``. Each bucket links its members to its first row."""
    edges = []
    for i in range(bands):
        block = sig[:, i * rows : (i + 1) * rows].astype(np.uint64)
        key = np.zeros(len(sig), np.uint64)
        for c in range(block.shape[1]):
            key = (key ^ block[:, c]) * np.uint64(0x100000001B3)
        order = np.argsort(key, kind="stable")
        k = key[order]
        start = np.r_[True, k[1:] != k[:-1]]
        head = order[np.maximum.accumulate(np.where(start, np.arange(len(k)), 0))]
        a, b = head[~start], order[~start]
        if len(a):
            ok = (sig[a] == sig[b]).mean(axis=1) >= threshold
            edges.append(np.stack([a[ok], b[ok]], axis=1))
    if not edges:
        return np.zeros((0, 2), np.int64)
    e = np.concatenate(edges)
    return np.unique(e, axis=0) if len(e) else e.reshape(0, 2)


class EdgeGroups:
    """Connected components over ``n`` nodes from edge batches."""

    def __init__(self, n: int):
        self.n = n
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        if len(a):
            self.rows.append(np.asarray(a, np.int64))
            self.cols.append(np.asarray(b, np.int64))

    def labels(self) -> np.ndarray:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        if not self.rows:
            return np.arange(self.n, dtype=np.int64)
        r, c = np.concatenate(self.rows), np.concatenate(self.cols)
        g = coo_matrix((np.ones(len(r), np.int8), (r, c)), shape=(self.n, self.n))
        return connected_components(g, directed=False)[1].astype(np.int64)
