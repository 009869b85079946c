"""Candidate account pairs and their comparison levels, family by family (pure array functions).

Families of evidence that one operator runs two accounts:

- ``template``: both put their traffic into the same rare (non-popular) templates: the
  Bhattacharyya overlap of their template-usage distributions (a free-text request counts as its
  own key, so free text dilutes the overlap);
- ``near_duplicate``: the same over near-duplicate families of untemplated prompts;
- ``timing``: active in the same short time bins far beyond chance
  (:func:`~promptcov.coverage.linking.cooccurrence.timing_links`);
- ``payment``: a shared payment fingerprint (a card shared inside one org is a team's company
  card and does not count);
- ``network``: a shared address (strongest), /24 (IPv6 /48) prefix or ASN (weakest);
- ``client``: a shared user-agent string.

Identifier families carry the term-frequency bits ``-log2(tf)`` of the rarest value the pair
shares, with ``tf = n_v (n_v - 1) / (N (N - 1))``.
"""

from __future__ import annotations

import ipaddress
import re

import numpy as np
import scipy.sparse as sp

from promptcov.coverage.linking.cooccurrence import timing_links

__all__ = ["Accounts", "incidence", "overlap_factor", "overlap_matrix", "tf_bits_matrix", "pair_max_bits", "prefix_of",
           "prefixes", "timing_levels", "PairJoin", "account_values", "level_of", "null_levels", "null_level_counts",
           "rarity_bits_kept", "pair_shared_count", "null_keys"]


class Accounts:
    """Account codes of a frame: ``ids`` (sorted), ``code`` per request, ``n_req`` per account."""

    def __init__(self, account_id: np.ndarray, coded: tuple[np.ndarray, np.ndarray] | None = None):
        if coded is None:
            self.ids, code = np.unique(np.asarray(account_id).astype(str), return_inverse=True)
        else:  # (codes into the sorted distinct ids, the ids): the same as above, without the sort
            code, self.ids = coded[0], np.asarray(coded[1]).astype(str)
        self.code = np.asarray(code, dtype=np.int64).ravel()
        self.n = len(self.ids)
        self.n_req = np.bincount(self.code, minlength=self.n).astype(np.float64)

    @property
    def n_pairs(self) -> float:
        return self.n * (self.n - 1) / 2.0


def incidence(acc: np.ndarray, key: np.ndarray, n_acc: int, n_keys: int, values: np.ndarray) -> sp.csr_matrix:
    """Account x key matrix with one entry per distinct (account, key); ``values[key]`` as data."""
    ok = key >= 0
    if not ok.any() or n_keys == 0:
        return sp.csr_matrix((n_acc, max(n_keys, 1)))
    code = np.unique(acc[ok].astype(np.int64) * n_keys + key[ok])  # distinct (account, key), sorted
    a, k = code // n_keys, code % n_keys
    return sp.csr_matrix((values[k], (a, k)), shape=(n_acc, n_keys))


def null_keys(acc: np.ndarray, key: np.ndarray) -> np.ndarray:
    """``key`` as the shuffled null of the behaviour families sees it: one holder's excess volume dropped.

    The null deals a window's keyed requests to random accounts, which keeps how common each key
    is and destroys coordination. A key that one account sends far more than anyone else (a batch
    job's instruction around a thousand documents, which a dozen people also happened to send once)
    is common through that one account's volume, not through many users: dealt at random, its
    thousand requests would give hundreds of unrelated accounts a share of it and make every
    shared key look common. So each account's requests on a key count up to the key's
    second-largest holder's count (a key one account holds ties no pair and is dropped); the
    dropped rows get ``-1``, as have rows without a key.

    >>> null_keys(np.array([0, 0, 0, 0, 1, 2, 3]), np.array([5, 5, 5, 5, 5, 5, 9])).tolist()
    [5, -1, -1, -1, 5, 5, -1]
    """
    acc, key = np.asarray(acc, dtype=np.int64), np.asarray(key, dtype=np.int64)
    out = key.copy()
    ok = np.flatnonzero(key >= 0)
    if not len(ok):
        return out
    n_acc = int(acc.max()) + 1
    cell = key[ok] * n_acc + acc[ok]
    order = np.argsort(cell, kind="stable")
    cells, start, count = np.unique(cell[order], return_index=True, return_counts=True)
    rank = np.arange(len(order)) - np.repeat(start, count)  # 0, 1, ... within each (key, account)
    ck = cells // n_acc
    # per key: the largest and second-largest holder's counts (cells sorted by key, then by count)
    by = np.lexsort((-count, ck))
    first = np.r_[True, ck[by][1:] != ck[by][:-1]]
    second = np.zeros(int(ck.max()) + 1, dtype=np.int64)
    is_second = np.r_[False, ~first[1:] & first[:-1]]
    second[ck[by][is_second]] = count[by][is_second]
    cap = second[ck]
    keep_sorted = rank < np.repeat(cap, count)
    out[ok[order[~keep_sorted]]] = -1
    return out


def overlap_factor(acc: np.ndarray, key: np.ndarray, n_req: np.ndarray, live: np.ndarray,
                   max_key_accounts: int, prior: float = 2.0) -> sp.csr_matrix | None:
    """Account x key matrix ``sqrt(p_a(k))`` whose product with its transpose is :func:`overlap_matrix`.

    ``None`` when no live key is held by 2 to ``max_key_accounts`` accounts.
    """
    n_acc = len(n_req)
    ok = (key >= 0) & live[np.maximum(key, 0)]
    if not ok.any():
        return None
    n_keys = int(key.max()) + 1
    code, counts = np.unique(acc[ok] * n_keys + key[ok], return_counts=True)
    a, k = code // n_keys, code % n_keys
    holders = np.bincount(k, minlength=n_keys)
    keep = (holders[k] >= 2) & (holders[k] <= max_key_accounts)
    a, k, counts = a[keep], k[keep], counts[keep]
    if len(a) == 0:
        return None
    return sp.csr_matrix((np.sqrt(counts / (n_req[a] + prior)), (a, k)), shape=(n_acc, n_keys))


def overlap_matrix(acc: np.ndarray, key: np.ndarray, n_req: np.ndarray, live: np.ndarray,
                   max_key_accounts: int, prior: float = 2.0) -> sp.coo_matrix:
    """Bhattacharyya overlap ``sum_k sqrt(p_a(k) p_b(k))`` over live keys, upper triangle.

    ``p_a(k)`` is the share of account ``a``'s requests (plus ``prior`` pseudo-requests, so two
    requests are not "all" of an account) on key ``k``. Keys held by one account or by more than
    ``max_key_accounts`` are skipped. (The linker streams the product by row blocks instead:
    :mod:`~promptcov.coverage.linking.pairs`.)
    """
    m = overlap_factor(acc, key, n_req, live, max_key_accounts, prior)
    if m is None:
        return sp.coo_matrix((len(n_req), len(n_req)))
    return sp.triu(m @ m.T, k=1).tocoo()


def tf_bits_matrix(acc: np.ndarray, key: np.ndarray, n_acc: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """Account x value matrix holding ``-log2(tf)`` of each value held by 2+ accounts, and holder counts."""
    n_keys = int(key.max()) + 1 if (key >= 0).any() else 0
    if n_keys == 0:
        return sp.csr_matrix((n_acc, 1)), np.zeros(0, np.int64)
    ok = key >= 0
    code = np.unique(key[ok].astype(np.int64) * n_acc + acc[ok])  # distinct (key, account)
    holders = np.bincount(code // n_acc, minlength=n_keys)
    nv = holders.astype(np.float64)
    tf = nv * (nv - 1) / max(n_acc * (n_acc - 1), 2)
    bits = np.where(holders >= 2, -np.log2(np.maximum(tf, 1e-300)), 0.0)
    return incidence(acc, key, n_acc, n_keys, bits), holders


def pair_max_bits(mat: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Per pair, the largest ``-log2(tf)`` among the values both accounts hold (0 when none).

    ``mat`` holds the bits of each (account, value) (:func:`tf_bits_matrix`). Pairs of accounts
    that hold one value each are compared directly; for the others every value of the account
    holding fewer is looked up in the other's (a sorted-code join, no sparse row copies).
    """
    return PairJoin(mat).max_bits(rows, cols)


def pair_shared_count(mat: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Per pair, how many values with positive bits both accounts hold (as ``(mat > 0)`` products)."""
    return PairJoin(mat).shared_count(rows, cols)


class PairJoin:
    """:func:`pair_max_bits` and :func:`pair_shared_count` over one matrix for many lists of pairs: the
    per-account preparation (linear in accounts and entries) is done once, not once per list."""

    def __init__(self, mat: sp.csr_matrix):
        mat = mat.tocsr()
        mat.sort_indices()
        self.mat, self.nv = mat, np.diff(mat.indptr)
        first = np.minimum(mat.indptr[:-1], max(mat.nnz - 1, 0))
        self.one = np.where(self.nv == 1, mat.indices[first], -1) if mat.nnz else np.full(mat.shape[0], -1)
        self.one_bits = np.where(self.nv == 1, mat.data[first], 0.0) if mat.nnz else np.zeros(mat.shape[0])
        self._held = None

    def max_bits(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return self._join(rows, cols, count=False)

    def shared_count(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return self._join(rows, cols, count=True)

    def _join(self, rows: np.ndarray, cols: np.ndarray, count: bool) -> np.ndarray:
        out = np.zeros(len(rows))
        if len(rows) == 0 or self.mat.nnz == 0:
            return out
        nv, one_bits = self.nv, self.one_bits
        va, vb = self.one[rows], self.one[cols]
        simple = (nv[rows] <= 1) & (nv[cols] <= 1)
        hit = simple & (va >= 0) & (va == vb)
        out[hit] = (one_bits[rows[hit]] > 0) if count else one_bits[rows[hit]]
        multi = np.flatnonzero(~simple & (nv[rows] > 0) & (nv[cols] > 0))
        if len(multi):
            if self._held is None:  # every (account, value) code, sorted
                self._held = np.repeat(np.arange(self.mat.shape[0], dtype=np.int64), nv) * self.mat.shape[1] \
                    + self.mat.indices
            out[multi] = _max_shared(self.mat, nv, rows[multi], cols[multi], count=count, held=self._held)
        return out


_BITSET_MAX = 1 << 28  # accounts x values up to this: a bool lookup table (256 MB at most)


def _max_shared(mat: sp.csr_matrix, nv: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                block: int = 4_000_000, count: bool = False, held: np.ndarray | None = None) -> np.ndarray:
    """Largest shared value's bits (or, ``count``, how many shared values have positive bits) for
    pairs where an account holds several values: a sorted-code join in bounded pieces."""
    n_val = mat.shape[1]
    if held is None:
        held = np.repeat(np.arange(mat.shape[0], dtype=np.int64), nv) * n_val + mat.indices
    bitset = None
    size = mat.shape[0] * n_val
    if size <= _BITSET_MAX and size <= 8 * int(np.minimum(nv[rows], nv[cols]).sum()):
        # (account, value) membership by direct lookup instead of a binary search per lookup
        bitset = np.zeros(size, dtype=bool)
        bitset[held] = True
    swap = nv[rows] > nv[cols]
    a, b = np.where(swap, cols, rows), np.where(swap, rows, cols)
    out = np.zeros(len(rows))
    cnt = nv[a]
    ends = np.cumsum(cnt)
    start = 0
    while start < len(a):  # bounded expansion: at most ~block (pair, value) lookups at a time
        stop = max(int(np.searchsorted(ends, (ends[start - 1] if start else 0) + block, side="right")), start + 1)
        c = cnt[start:stop]
        idx = np.repeat(np.arange(start, stop), c)
        first = np.repeat(mat.indptr[a[start:stop]] - (np.cumsum(c) - c), c) + np.arange(int(c.sum()))
        q = b[idx] * n_val + mat.indices[first]
        if bitset is not None:
            found = bitset[q]
        else:
            found = held[np.minimum(np.searchsorted(held, q), len(held) - 1)] == q
        if count:
            np.add.at(out, idx[found], (mat.data[first[found]] > 0).astype(np.float64))
        elif found.any():
            np.maximum.at(out, idx[found], mat.data[first[found]])
        start = stop
    return out


def prefix_of(ip: str | None) -> str | None:
    """The /24 (IPv4) or /48 (IPv6) network of an address, or ``None`` when it is not an address."""
    if not ip:
        return None
    try:
        addr = ipaddress.ip_address(str(ip).strip())
    except ValueError:
        return None
    bits = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def prefixes(values: np.ndarray) -> np.ndarray:
    """:func:`prefix_of` of every entry of an object column, parsing each distinct value once.

    Dotted-quad IPv4 addresses take a regular-expression path (``a.b.c.0/24``); anything else
    goes through :mod:`ipaddress`, so the result equals :func:`prefix_of` entry by entry.
    """
    values = np.asarray(values, dtype=object)
    out = np.full(len(values), None, dtype=object)
    have = np.array([v is not None and v != "" for v in values], dtype=bool)
    if not have.any():
        return out
    uniq, inv = np.unique(values[have].astype(str), return_inverse=True)
    parsed = []
    for x in uniq.tolist():
        t = x.strip()
        if _IPV4.fullmatch(t):
            parsed.append(t[: t.rindex(".")] + ".0/24")
        else:
            parsed.append(prefix_of(x))
    out[have] = np.array(parsed, dtype=object)[inv.ravel()]
    return out


def account_values(acc: np.ndarray, key: np.ndarray, n_acc: int):
    """``(tf matrix, holders, has_any)`` of an identifier column given as codes ``key`` per request
    (-1 for none: :meth:`~promptcov.coverage.frame.RequestFrame.codes`)."""
    mat, holders = tf_bits_matrix(acc, key, n_acc)
    has = np.zeros(n_acc, dtype=bool)
    has[acc[key >= 0]] = True
    return mat, holders, has


def null_levels(null: sp.coo_matrix, cuts, n_pairs: float) -> np.ndarray:
    """Level distribution over all ``n_pairs`` pairs of a null overlap matrix (absent pairs: level 0)."""
    counts = np.bincount(level_of(null.data, cuts), minlength=len(cuts) + 1).astype(np.float64)
    counts[0] += max(n_pairs - null.nnz, 0.0)
    return counts / max(counts.sum(), 1.0)


def null_level_counts(blocks, cuts, n_pairs: float) -> np.ndarray:
    """:func:`null_levels` from ``(rows, cols, values)`` blocks of a null overlap (streamed)."""
    counts = np.zeros(len(cuts) + 1)
    nnz = 0
    for _, _, v in blocks:
        counts += np.bincount(level_of(v, cuts), minlength=len(cuts) + 1)
        nnz += len(v)
    counts[0] += max(n_pairs - nnz, 0.0)
    return counts / max(counts.sum(), 1.0)


def level_of(x: np.ndarray, cuts) -> np.ndarray:
    """Level 0 below ``cuts[0]``, 1 up to ``cuts[1]``, ...: ``searchsorted(cuts, x, side="right")``
    (counted cut by cut, which is faster for a handful of cuts; NaN is past every cut)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.isnan(x).astype(np.int64) * len(cuts)
    for c in np.asarray(cuts, dtype=np.float64).tolist():
        out += x >= c
    return out


def timing_levels(acc_code: np.ndarray, ts: np.ndarray, n_acc: int, params) -> tuple[sp.csr_matrix, np.ndarray]:
    """Synchrony scores (csr, upper triangle) and which accounts are comparable."""
    mat, _ = timing_links(acc_code, ts, n_acc, bin_s=params.timing_bin_s,
                          min_requests=params.timing_min_requests,
                          min_shared_bins=params.timing_min_shared_bins, min_score=params.timing_min_score,
                          min_lift=params.timing_min_lift, alpha=params.timing_alpha,
                          exact_pairs=params.timing_exact_pairs, seed=params.seed,
                          lsh=(params.timing_lsh_bands, params.timing_lsh_rows, params.timing_lsh_max_bucket),
                          shared_counts=False, max_partners=params.timing_max_partners)
    comparable = np.bincount(acc_code, minlength=n_acc) >= params.timing_min_requests
    return mat.tocsr(), comparable





def rarity_bits_kept(key_bits: np.ndarray, both_lasting: np.ndarray, n_shared: np.ndarray,
                     min_shared: int = 2) -> np.ndarray:
    """The rarity bits of a pair's shared signature template, where they count, else 0.

    A one-off run inside a day (an evaluator running a judge template) shares a template with
    whoever uses it, which says little about one operator; a hydra's burner accounts also live a
    few hours, but each fills several of the campaign's scaffolds. So the bits count when both
    accounts were active for a while (``both_lasting``) or share ``min_shared`` or more distinct
    rare templates.

    >>> rarity_bits_kept(np.array([9.0, 9.0, 9.0]), np.array([True, False, False]), np.array([1, 1, 3]))
    array([9., 0., 9.])
    """
    keep = np.asarray(both_lasting, dtype=bool) | (np.asarray(n_shared) >= min_shared)
    return np.where(keep, np.asarray(key_bits, dtype=np.float64), 0.0)
