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

import numpy as np
import scipy.sparse as sp

from promptcov.coverage.linking.cooccurrence import codes, timing_links

__all__ = ["Accounts", "incidence", "overlap_matrix", "tf_bits_matrix", "pair_max_bits", "prefix_of", "timing_levels",
           "account_values", "level_of", "null_levels", "rarity_bits_kept"]


class Accounts:
    """Account codes of a frame: ``ids`` (sorted), ``code`` per request, ``n_req`` per account."""

    def __init__(self, account_id: np.ndarray):
        self.ids, code = np.unique(np.asarray(account_id).astype(str), return_inverse=True)
        self.code = code.astype(np.int64).ravel()
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
    pairs = np.unique(np.stack([acc[ok], key[ok]], axis=1), axis=0)
    return sp.csr_matrix((values[pairs[:, 1]], (pairs[:, 0], pairs[:, 1])), shape=(n_acc, n_keys))


def overlap_matrix(acc: np.ndarray, key: np.ndarray, n_req: np.ndarray, live: np.ndarray,
                   max_key_accounts: int, prior: float = 2.0) -> sp.coo_matrix:
    """Bhattacharyya overlap ``sum_k sqrt(p_a(k) p_b(k))`` over live keys, upper triangle.

    ``p_a(k)`` is the share of account ``a``'s requests (plus ``prior`` pseudo-requests, so two
    requests are not "all" of an account) on key ``k``. Keys held by one account or by more than
    ``max_key_accounts`` are skipped.
    """
    n_acc = len(n_req)
    ok = (key >= 0) & live[np.maximum(key, 0)]
    if not ok.any():
        return sp.coo_matrix((n_acc, n_acc))
    code, counts = np.unique(acc[ok] * (int(key.max()) + 1) + key[ok], return_counts=True)
    a, k = code // (int(key.max()) + 1), code % (int(key.max()) + 1)
    holders = np.bincount(k, minlength=int(key.max()) + 1)
    keep = (holders[k] >= 2) & (holders[k] <= max_key_accounts)
    a, k, counts = a[keep], k[keep], counts[keep]
    if len(a) == 0:
        return sp.coo_matrix((n_acc, n_acc))
    m = sp.csr_matrix((np.sqrt(counts / (n_req[a] + prior)), (a, k)), shape=(n_acc, int(key.max()) + 1))
    return sp.triu(m @ m.T, k=1).tocoo()


def tf_bits_matrix(acc: np.ndarray, key: np.ndarray, n_acc: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """Account x value matrix holding ``-log2(tf)`` of each value held by 2+ accounts, and holder counts."""
    n_keys = int(key.max()) + 1 if (key >= 0).any() else 0
    if n_keys == 0:
        return sp.csr_matrix((n_acc, 1)), np.zeros(0, np.int64)
    ok = key >= 0
    pairs = np.unique(np.stack([key[ok], acc[ok]], axis=1), axis=0)
    holders = np.bincount(pairs[:, 0], minlength=n_keys)
    nv = holders.astype(np.float64)
    tf = nv * (nv - 1) / max(n_acc * (n_acc - 1), 2)
    bits = np.where(holders >= 2, -np.log2(np.maximum(tf, 1e-300)), 0.0)
    return incidence(acc, key, n_acc, n_keys, bits), holders


def pair_max_bits(mat: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Per pair, the largest ``-log2(tf)`` among the values both accounts hold (0 when none)."""
    if len(rows) == 0:
        return np.zeros(0)
    prod = mat[rows].multiply(mat[cols]).tocsr()  # bits^2 where both hold the value
    out = np.zeros(len(rows))
    nz = np.diff(prod.indptr) > 0
    if nz.any():
        out[nz] = np.sqrt(np.asarray(prod[np.flatnonzero(nz)].max(axis=1).todense()).ravel())
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


def account_values(acc: np.ndarray, values: np.ndarray, n_acc: int, exclude: np.ndarray | None = None):
    """``(tf matrix, holders, has_any)`` of an identifier column (None/'' ignored)."""
    key, _ = codes(values)
    if exclude is not None:
        key = np.where(exclude, -1, key)
    mat, holders = tf_bits_matrix(acc, key, n_acc)
    has = np.zeros(n_acc, dtype=bool)
    has[acc[key >= 0]] = True
    return mat, holders, has, key


def null_levels(null: sp.coo_matrix, cuts, n_pairs: float) -> np.ndarray:
    """Level distribution over all ``n_pairs`` pairs of a null overlap matrix (absent pairs: level 0)."""
    counts = np.bincount(level_of(null.data, cuts), minlength=len(cuts) + 1).astype(np.float64)
    counts[0] += max(n_pairs - null.nnz, 0.0)
    return counts / max(counts.sum(), 1.0)


def level_of(x: np.ndarray, cuts) -> np.ndarray:
    """Level 0 below ``cuts[0]``, 1 up to ``cuts[1]``, ...: ``searchsorted`` on the cut points."""
    return np.searchsorted(np.asarray(cuts, dtype=np.float64), np.asarray(x, dtype=np.float64), side="right")


def timing_levels(acc_code: np.ndarray, ts: np.ndarray, n_acc: int, params) -> tuple[sp.csr_matrix, dict, np.ndarray]:
    """Synchrony scores (csr, upper triangle), shared-bin counts, and which accounts are comparable."""
    mat, shared = timing_links(acc_code, ts, n_acc, bin_s=params.timing_bin_s,
                               min_requests=params.timing_min_requests,
                               min_shared_bins=params.timing_min_shared_bins, min_score=params.timing_min_score,
                               min_lift=params.timing_min_lift, alpha=params.timing_alpha)
    comparable = np.bincount(acc_code, minlength=n_acc) >= params.timing_min_requests
    return mat.tocsr(), shared, comparable





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
