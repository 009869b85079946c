"""Co-occurrence evidence between accounts: the pure array functions behind account linking.

Each function turns per-request arrays (account codes, keys, times) into evidence between
accounts: which texts are near-duplicates of each other (:func:`near_duplicate_families`) and which
accounts are active in the same short time bins far more than chance (:func:`timing_links`), plus
the small array helpers the linker shares (:func:`codes`, :func:`pick`). Shared keys and their
rarity are compared in :mod:`promptcov.coverage.linking.evidence`.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.stats import binom

from promptcov.coverage.linking.sync_lsh import lsh_pairs, product_entries

__all__ = ["near_duplicate_families", "timing_links", "codes", "pick"]

log = logging.getLogger(__name__)


def near_duplicate_families(vectors: np.ndarray, min_cosine: float, k: int = 10) -> np.ndarray:
    """Label each row of ``vectors`` (L2-normalised) with its near-duplicate family.

    Rows with inner product >= ``min_cosine`` to one of their ``k`` nearest neighbours are
    joined (connected components); a sweep's paraphrased or lightly varied prompts fall into
    one family while organic prompts stay alone. Exact search below 20k rows, FAISS IVF above.
    """
    import faiss

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    m = len(x)
    if m < 2:
        return np.arange(m, dtype=np.int64)
    if m <= 20_000:
        index = faiss.IndexFlatIP(x.shape[1])
    else:
        nlist = int(min(1024, m // 40, 4 * np.sqrt(m)))  # >= 40 training points per list
        index = faiss.IndexIVFFlat(
            faiss.IndexFlatIP(x.shape[1]), x.shape[1], nlist, faiss.METRIC_INNER_PRODUCT
        )
        step = max(1, m // (40 * nlist))
        index.train(x[::step])
        index.nprobe = 3  # near-duplicates (cos >= 0.95) almost always share a cell
    index.add(x)
    sims, nbrs = index.search(x, min(k + 1, m))
    rows = np.repeat(np.arange(m), nbrs.shape[1])
    ok = (sims.ravel() >= min_cosine) & (nbrs.ravel() >= 0)
    g = sp.coo_matrix((np.ones(int(ok.sum())), (rows[ok], nbrs.ravel()[ok])), shape=(m, m))
    return connected_components(g, directed=False)[1].astype(np.int64)


def timing_links(
    acc: np.ndarray,
    ts: np.ndarray,
    n_acc: int,
    *,
    bin_s: float = 600.0,
    min_requests: int = 20,
    min_shared_bins: int = 5,
    min_score: float = 0.3,
    min_lift: float = 3.0,
    alpha: float = 0.01,
    lag_s: tuple[float, ...] = (86400.0, 172800.0),
    chunk_cells: int = 5_000_000,
    exact_pairs: float = 1e9,
    lsh: tuple[int, int, int] = (160, 4, 64),
    seed: int = 0,
    shared_counts: bool = True,
    max_partners: int = 0,
) -> tuple[sp.coo_matrix, dict]:
    """Score account pairs whose activity falls into the same short time bins far beyond chance.

    Accounts with ``min_requests`` or more become binary occupancy vectors over ``bin_s`` bins.
    Bins are weighted by idf ``log((n + 1) / (df + 1))``: a busy bin where every account is
    active says nothing. The observed weighted co-occupancy ``O`` is compared with what
    independent accounts would share, ``E``: the larger of the uniform expectation
    ``s_a * s_b / S`` and the mean co-occupancy with one account shifted by +-1 and +-2 days.
    The shift keeps each account's daily rhythm, so two people who both work 9-to-5 share as
    much at lag 0 as at lag 24h and do not look synchronized, while accounts fed by one scheduler
    coincide only at lag 0. The score ``(O - E) / (min(s_a, s_b) - E)`` is 1 for "always active
    exactly when the other is" and about 0 for chance. It counts only where the lift ``O / E``
    is at least ``min_lift``: next to an account busy in nearly every bin (a round-the-clock
    product) anyone's bins are "shared", and that says nothing about being synchronized.
    Among tens of thousands of accounts some pairs coincide by luck, so a pair must also pass a
    binomial tail test (shared bins of the smaller account, null rate ``E / min(s_a, s_b)``) at
    ``alpha`` divided by the number of pairs compared.
    Products run as sparse row chunks (memory ~ ``chunk_cells``), never a dense n x n matrix.
    When the product would list more than ``exact_pairs`` entries (``sum_bins df^2 / 2``: it grows
    with the square of the accounts), the candidates come from MinHash/LSH banding of the
    accounts' bin sets instead (``lsh`` = bands, rows, largest bucket; see
    :mod:`~promptcov.coverage.linking.sync_lsh`), a subset of the product's pairs that keeps the
    synchronised ones with high probability; every candidate is then scored and tested exactly.

    ``max_partners`` (0: no cap) keeps a synchronised pair only when it is among the ``max_partners``
    highest-scoring partners of at least one of its accounts. Synchrony ties an account to the accounts
    run by the same scheduler; its strongest partners already put it in their community (communities
    are found transitively), while the rest of a crowd of coincident bursts adds edges that no group
    needs and every later step pays for (15.6 M pairs in the 10^7 benchmark window).

    Returns the upper-triangular score matrix (account codes) and ``{(a, b): shared bins}`` (empty
    unless ``shared_counts``: at 10^7 requests it can hold tens of millions of pairs).
    """
    acc, ts = np.asarray(acc, dtype=np.int64), np.asarray(ts, dtype=np.float64)
    elig = np.flatnonzero(np.bincount(acc, minlength=n_acc) >= max(min_requests, 1))
    if len(elig) < 2:
        return sp.coo_matrix((n_acc, n_acc)), {}
    occ = _Occupancy(acc, ts, elig, n_acc, bin_s, min_lift, chunk_cells)
    if product_entries(occ.x) <= exact_pairs:
        r, c, o = occ.candidates(min_score, chunk_cells)
    else:
        r, c, o = occ.lsh_candidates(min_score, chunk_cells, lsh, seed)
    score = shared = np.zeros(0)
    if len(r):
        e = np.maximum(occ.uniform(r, c), occ.lagged(r, c, lag_s))
        shared = occ.pair_sum(occ.x, occ.x, r, c)
        score = occ.excess(r, c, o, e)
        # far more than chance, counting every pair looked at: binomial tail, Bonferroni over pairs
        n_small = np.minimum(occ.n_bins_of[r], occ.n_bins_of[c])
        p_null = np.clip(e / np.maximum(np.minimum(occ.s[r], occ.s[c]), 1e-12), 1e-12, 1.0)
        log_p = binom.logsf(shared - 1, n_small, p_null)
        n_e = len(elig)
        ok = (score >= min_score) & (shared >= min_shared_bins)
        ok &= log_p <= np.log(alpha) - np.log(n_e * (n_e - 1) / 2)
        r, c, score, shared = r[ok], c[ok], score[ok], shared[ok]
        del o, e, n_small, p_null, log_p, ok  # tens of millions of candidates at 10^7 requests
        if max_partners > 0 and len(r):
            keep = top_partners(r, c, score, max_partners)
            r, c, score, shared = r[keep], c[keep], score[keep], shared[keep]
    log.info("synchrony: %d linked pairs among %d accounts", len(r), len(elig))
    ra, ca = elig[r], elig[c]
    mat = sp.coo_matrix((np.clip(score, 0.0, 1.0), (ra, ca)), shape=(n_acc, n_acc))
    if not shared_counts:
        return mat, {}
    return mat, {(int(a), int(b)): int(k) for a, b, k in zip(ra, ca, shared, strict=True)}


def top_partners(r: np.ndarray, c: np.ndarray, score: np.ndarray, k: int) -> np.ndarray:
    """Indices of the pairs ``(r, c)`` that are among the ``k`` highest-``score`` pairs of ``r`` or of ``c``
    (ties broken by pair order), sorted.

    >>> # account 0's best is pair 0, account 2's is pair 3, account 3 has only pair 2; pair 1 is nobody's best
    >>> top_partners(np.array([0, 0, 0, 1]), np.array([1, 2, 3, 2]), np.array([0.9, 0.5, 0.1, 0.8]), 1).tolist()
    [0, 2, 3]
    """
    n = len(r)
    idx = np.int32 if max(n, int(np.max(r, initial=0)), int(np.max(c, initial=0))) < 2**31 - 1 else np.int64
    node = np.concatenate([r, c]).astype(idx, copy=False)
    pair = np.concatenate([np.arange(n, dtype=idx), np.arange(n, dtype=idx)])
    order = np.lexsort((pair, -np.concatenate([score, score]), node))
    node, pair = node[order], pair[order]
    del order
    start = np.r_[0, np.flatnonzero(node[1:] != node[:-1]) + 1].astype(idx)
    first = np.repeat(start, np.diff(np.r_[start, len(node)]))
    del node
    return np.unique(pair[np.arange(len(pair), dtype=idx) - first < k]).astype(np.int64)


class _Occupancy:
    """Binary account x time-bin occupancy of the eligible accounts, idf-weighted (see :func:`timing_links`)."""

    def __init__(self, acc, ts, elig, n_acc, bin_s, min_lift, chunk_cells=5_000_000):
        pos = np.full(n_acc, -1, dtype=np.int64)
        pos[elig] = np.arange(len(elig))
        sel = pos[acc] >= 0
        bins = np.floor(ts[sel] / bin_s).astype(np.int64)  # anchored to the epoch, not to the data
        bins -= bins.min()
        self.bin_s, self.min_lift = bin_s, min_lift
        self.n_bins, n_e = int(bins.max()) + 1, len(elig)
        x = sp.csr_matrix((np.ones(int(sel.sum())), (pos[acc[sel]], bins)), shape=(n_e, self.n_bins))
        x.data[:] = 1.0
        w = np.log((n_e + 1.0) / (np.asarray(x.sum(axis=0)).ravel() + 1.0))
        self.x, self.xw = x, x.multiply(w[None, :]).tocsr()
        self.s, self.total_w = np.asarray(self.xw.sum(axis=1)).ravel(), float(w.sum())
        self.n_bins_of = np.asarray(x.sum(axis=1)).ravel()
        # pairs per chunk of the row-by-row products: about ``chunk_cells`` entries gathered at once
        self.step = max(1, int(chunk_cells // max(x.nnz / max(n_e, 1), 1.0)))

    def pair_sum(self, a, b, r, c):
        """``sum_bins a[r_i] * b[c_i]`` for each pair, in chunks of :attr:`step` pairs."""
        out = np.zeros(len(r))
        for lo in range(0, len(r), self.step):
            hi = lo + self.step
            out[lo:hi] = np.asarray(a[r[lo:hi]].multiply(b[c[lo:hi]]).sum(axis=1)).ravel()
        return out

    def excess(self, r, c, o, e):
        """``(O - E) / (min(s_a, s_b) - E)``, 0 where the lift ``O / E`` is below ``min_lift``."""
        m = np.minimum(self.s[r], self.s[c])
        den = np.where(m - e > 1e-6 * np.maximum(m, 1e-12), m - e, np.inf)
        return np.where(o >= self.min_lift * e, (o - e) / den, 0.0)

    def uniform(self, r, c):
        """Weighted co-occupancy two independent accounts would share (uniform null)."""
        return self.s[r] * self.s[c] / max(self.total_w, 1e-12)

    def candidates(self, min_score, chunk_cells):
        """Pairs (upper triangle) passing the cheap uniform null, in sparse row chunks."""
        n_e = self.x.shape[0]
        xt, parts = self.x.T.tocsc(), []  # bins x accounts, sliced by account columns
        step = max(1, int(chunk_cells // n_e))
        for start in range(0, n_e, step):
            # only columns from ``start`` on: the lower triangle is never multiplied
            blk = (self.xw[start : start + step] @ xt[:, start:]).tocoo()
            r, c, o = blk.row + start, blk.col + start, blk.data
            up = c > r
            r, c, o = r[up], c[up], o[up]
            keep = self.excess(r, c, o, self.uniform(r, c)) >= min_score
            parts.append((r[keep], c[keep], o[keep]))
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))

    def lsh_candidates(self, min_score, chunk_cells, lsh, seed):
        """The LSH pairs (see :func:`~promptcov.coverage.linking.sync_lsh.lsh_pairs`) passing the uniform null."""
        bands, rows, max_bucket = lsh
        r_all, c_all = lsh_pairs(self.x, bands=bands, rows=rows, max_bucket=max_bucket, seed=seed)
        log.info("synchrony: %d LSH candidate pairs among %d accounts", len(r_all), self.x.shape[0])
        parts = []
        for start in range(0, len(r_all), self.step):
            r, c = r_all[start : start + self.step], c_all[start : start + self.step]
            o = self.pair_sum(self.xw, self.x, r, c)
            keep = (o > 0) & (self.excess(r, c, o, self.uniform(r, c)) >= min_score)
            parts.append((r[keep], c[keep], o[keep]))
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))

    def lagged(self, r, c, lag_s):
        """Mean co-occupancy with one account shifted by each lag either way (keeps daily rhythms)."""
        lags = [int(round(lag / self.bin_s)) for lag in lag_s if 0 < lag / self.bin_s < self.n_bins / 2]
        if not lags:
            return np.zeros(len(r))
        xc, total = self.x.tocoo(), np.zeros(len(r))
        for lag in lags:  # one shifted occupancy at a time
            for sign in (1, -1):
                col = xc.col - sign * lag
                k = (col >= 0) & (col < self.n_bins)
                xl = sp.csr_matrix((xc.data[k], (xc.row[k], col[k])), shape=self.x.shape)
                total += self.pair_sum(self.xw, xl, r, c) * self.n_bins / (self.n_bins - lag)
        return total / (2 * len(lags))


def codes(values: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of the non-None entries of an object column (-1 for None) and the uniques."""
    present = np.array([v is not None and v != "" for v in values], dtype=bool)
    if mask is not None:
        present &= mask
    codes = np.full(len(values), -1, dtype=np.int64)
    if not present.any():
        return codes, np.array([], dtype=object)
    uniq, inv = np.unique(values[present].astype(str), return_inverse=True)
    codes[present] = inv
    return codes, uniq


def pick(mat: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Entries ``mat[rows[i], cols[i]]`` as a dense 1-D array (empty-safe)."""
    if len(rows) == 0:
        return np.zeros(0)
    return np.asarray(mat[rows, cols]).ravel()


