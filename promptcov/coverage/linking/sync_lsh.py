"""Bounded candidate pairs for synchrony: MinHash/LSH banding over each account's set of time bins.

:func:`~promptcov.coverage.linking.cooccurrence.timing_links` compares accounts that are active in
the same short time bins. Multiplying the account x bin occupancy with its transpose lists every
pair that shares one bin: about ``sum_bins df^2 / 2`` entries, which grows with the square of the
number of accounts (250k accounts active over a week put ~10^4 accounts in every 10-minute bin,
~4 x 10^10 entries). Past a budget (:func:`product_entries`) the candidates come from
:func:`lsh_pairs` instead: each band hashes ``rows`` exact MinHash values of an account's bin set
(one random permutation of the bins per value, so a band collides with probability ``J^rows``
for Jaccard ``J``), and accounts whose bands collide become candidates. A bucket pairs each
member with its next ``max_bucket`` members in a random order drawn per band, so one band yields
at most ``n x max_bucket`` pairs whatever the crowding: the candidate count is set by the
settings, not by the log. Candidates are then scored exactly, as the product's pairs are.

The probability that a pair of Jaccard ``J`` is a candidate is ``1 - (1 - J^rows)^bands`` (:func:`recall`):
with the defaults (160 bands of 4) 0.73 at ``J = 0.3``, 0.91 at 0.35, 0.984 at 0.4, > 0.9999 at 0.5.
Synchronised accounts fed by one scheduler share most of their bins (``J`` well above 0.5), while
two random accounts of a busy week share ``J`` ~ 0.02 (a candidate with probability ~ 2 x 10^-5):
250k such accounts give ~20 candidates each (3 bands' rows would give ~400: too many to score).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["product_entries", "lsh_pairs", "recall"]

_MIX = np.uint64(0x100000001B3)  # FNV-1a 64-bit prime: folds a band's values into one key


def product_entries(x: sp.csr_matrix) -> float:
    """Upper-triangle entries the occupancy product would list before merging: ``sum_bins df (df - 1) / 2``."""
    df = np.diff(x.tocsc().indptr).astype(np.float64)
    return float((df * (df - 1) / 2).sum())


def recall(jaccard: float | np.ndarray, bands: int, rows: int) -> float | np.ndarray:
    """Probability that a pair of this Jaccard similarity collides in at least one band."""
    return 1.0 - (1.0 - np.asarray(jaccard, dtype=np.float64) ** rows) ** bands


def lsh_pairs(x: sp.csr_matrix, *, bands: int = 160, rows: int = 4, max_bucket: int = 64,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs ``(r, c)``, ``r < c`` (sorted, unique), of rows of ``x`` whose bin sets collide in a band.

    ``x`` is an account x bin occupancy (csr; every row non-empty). Memory: the accounts' MinHash
    values of one band and at most ``bands x n x max_bucket`` pair codes (fewer: pairs are merged
    band by band).
    """
    if bands < 1 or rows < 1 or max_bucket < 1:
        raise ValueError("bands, rows and max_bucket must be positive")
    x = x.tocsr()
    n, n_bins = x.shape
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    x.sort_indices()
    if (np.diff(x.indptr) == 0).any():
        raise ValueError("every row of the occupancy must hold a bin")
    rng = np.random.default_rng(seed)
    idx = x.indices.astype(np.intp)
    found = np.zeros(0, np.int64)
    pending: list[np.ndarray] = []
    held = 0
    per = max(1, 64 // rows)  # bands hashed together: one gather of 64 permutations' ranks
    for first in range(0, bands, per):
        k = min(per, bands - first)
        sig = _minhash(x, rng, k * rows, idx)
        for j in range(k):
            key = np.zeros(n, np.uint64)
            for col in range(j * rows, (j + 1) * rows):
                key = (key ^ (sig[:, col].astype(np.uint64) + np.uint64(1))) * _MIX
            pending.append(_bucket_pairs(key, rng.random(n), max_bucket, n))
            held += len(pending[-1])
        if held > max(len(found), n):  # merge now and then: memory stays a few times the distinct pairs
            found = _distinct(np.concatenate([found, *pending]))
            pending, held = [], 0
    found = _distinct(np.concatenate([found, *pending]))
    return found // n, found % n


def _minhash(x: sp.csr_matrix, rng: np.random.Generator, k: int, idx: np.ndarray) -> np.ndarray:
    """``(n, k)`` MinHash values of the rows' bin sets: each column the least rank of a row's bins under
    one random permutation of the bins (``idx``: ``x.indices`` as intp, a gather and a ``reduceat`` each)."""
    n, n_bins = x.shape
    dtype = np.int16 if n_bins < 2**15 else np.int32
    out, buf = np.empty((n, k), dtype=dtype), np.empty(len(idx), dtype=dtype)
    for j in range(k):
        np.take(rng.permutation(n_bins).astype(dtype), idx, out=buf)
        out[:, j] = np.minimum.reduceat(buf, x.indptr[:-1])
    return out


def _distinct(codes: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a sort and a mask: numpy 2's hash-based ``np.unique`` is far slower on int64)."""
    s = np.sort(codes)
    return s[np.r_[True, s[1:] != s[:-1]]] if len(s) else s


def _bucket_pairs(key: np.ndarray, prio: np.ndarray, window: int, n: int) -> np.ndarray:
    """Pair codes ``min * n + max`` of each member with its next ``window`` members of the same bucket
    (members in a random order ``prio``): every pair of a bucket of up to ``window + 1`` members."""
    order = np.lexsort((prio, key))
    k = key[order]
    pos = np.arange(n)
    new = np.r_[True, k[1:] != k[:-1]]
    run_end = np.r_[np.flatnonzero(new)[1:], n]  # one past each run's last position
    end = run_end[np.cumsum(new) - 1]
    cnt = np.minimum(window, end - pos - 1)
    if cnt.sum() == 0:
        return np.zeros(0, np.int64)
    a = np.repeat(pos, cnt)
    step = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    u, v = order[a], order[a + 1 + step]
    return np.minimum(u, v).astype(np.int64) * n + np.maximum(u, v)
