"""Candidate account pairs, streamed in blocks of accounts so that memory follows a budget, not the log.

A pair of accounts is a candidate when it shares a key that few accounts hold (a template or a
near-duplicate family: the product of an overlap factor with its transpose, see
:func:`~promptcov.coverage.linking.evidence.overlap_factor`), an identifier value held by 2 to
``max_key_accounts`` accounts (the product of a binary account x value matrix with its transpose),
or a synchrony link (an upper-triangular account x account matrix). The products are never formed
whole: :func:`candidate_blocks` cuts the accounts into row blocks whose candidate count is bounded
by ``budget`` (an upper bound computed from how many accounts hold each key) and yields the pairs
``a < b`` of one block at a time, in (a, b) order, with each source's value for them.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

__all__ = ["Sources", "row_bound", "row_blocks", "candidate_blocks", "triu_entries"]


class Sources:
    """The pair sources of one comparison: ``factors`` (n x K matrices or ``None``) and ``direct``
    (n x n upper-triangular matrices or ``None``). ``subset(rows)`` restricts all of them to a sorted
    set of accounts (pairs among those accounts, local indices)."""

    def __init__(self, factors: list, direct: list, n: int):
        self.factors = [None if f is None else sp.csr_matrix(f) for f in factors]
        self.direct = [None if d is None else sp.csr_matrix(d) for d in direct]
        self.n = n
        self._ft = [None if f is None else f.T.tocsc() for f in self.factors]  # K x n, columns sliceable

    def product(self, i: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Pair codes ``row * n + col`` and values of ``factors[i][lo:hi] @ factors[i].T``, upper triangle
        (only columns from ``lo`` on are multiplied)."""
        blk = self.factors[i][lo:hi] @ self._ft[i][:, lo:]
        return _upper(blk, lo, self.n, col_offset=lo)

    def subset(self, rows: np.ndarray) -> Sources:
        rows = np.asarray(rows, dtype=np.int64)
        return Sources([None if f is None else f[rows] for f in self.factors],
                       [None if d is None else d[rows][:, rows] for d in self.direct], len(rows))

    @property
    def n_sources(self) -> int:
        return len(self.factors) + len(self.direct)


def row_bound(src: Sources) -> np.ndarray:
    """Per account, an upper bound of its candidate entries in the block products (both triangles)."""
    bound = np.zeros(src.n)
    for f in src.factors:
        if f is None or f.nnz == 0:
            continue
        fb = f.copy()
        fb.data = np.ones_like(fb.data)
        holders = np.asarray(fb.sum(axis=0)).ravel()
        bound += fb @ holders
    for d in src.direct:
        if d is not None:
            bound += np.diff(d.indptr)
    return bound


def row_blocks(bound: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Consecutive ``(lo, hi)`` account ranges whose summed ``bound`` stays near ``budget``."""
    n = len(bound)
    if n == 0:
        return []
    ends = np.cumsum(bound)
    out, lo = [], 0
    while lo < n:
        base = ends[lo - 1] if lo else 0.0
        hi = max(int(np.searchsorted(ends, base + budget, side="right")), lo + 1)
        out.append((lo, min(hi, n)))
        lo = hi
    return out


def _upper(mat: sp.spmatrix, lo: int, n: int, col_offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    coo = mat.tocoo()
    r = coo.row.astype(np.int64) + lo
    c = coo.col.astype(np.int64) + col_offset
    keep = (c > r) & (coo.data != 0)
    return r[keep] * n + c[keep], coo.data[keep]


def candidate_block(src: Sources, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Candidate pairs ``(rows, cols)`` with ``lo <= row < hi`` (sorted) and every source's value (0 = none)."""
    n, found = src.n, []
    for i, f in enumerate(src.factors):
        found.append(None if f is None else src.product(i, lo, hi))
    for d in src.direct:
        found.append(None if d is None else _upper(d[lo:hi], lo, n))
    codes = [fc[0] if fc is not None else np.zeros(0, np.int64) for fc in found]
    sizes = np.array([len(c) for c in codes])
    allc = np.concatenate(codes) if sizes.sum() else np.zeros(0, np.int64)
    order = np.argsort(allc, kind="stable")
    sc = allc[order]
    new = np.r_[True, sc[1:] != sc[:-1]] if len(sc) else np.zeros(0, bool)  # a pair several sources give
    union = sc[new]
    where = np.empty(len(allc), dtype=np.int64)
    where[order] = np.cumsum(new) - 1  # each source entry's position in ``union``
    vals, start = [], 0
    for fc, k in zip(found, sizes.tolist(), strict=True):
        v = np.zeros(len(union))
        if k:
            v[where[start:start + k]] = fc[1]
        vals.append(v)
        start += k
    return union // n, union % n, vals


def candidate_blocks(src: Sources, budget: int) -> Iterator[tuple[np.ndarray, np.ndarray, list[np.ndarray]]]:
    """:func:`candidate_block` over row blocks of about ``budget`` candidate entries each."""
    for lo, hi in row_blocks(row_bound(src), budget):
        rows, cols, vals = candidate_block(src, lo, hi)
        if len(rows):
            yield rows, cols, vals


def triu_entries(factor: sp.csr_matrix | None, budget: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The upper-triangle entries ``(rows, cols, values)`` of ``factor @ factor.T``, by row blocks."""
    if factor is None:
        return
    src = Sources([factor], [], factor.shape[0])
    for lo, hi in row_blocks(row_bound(src), budget):
        code, vals = src.product(0, lo, hi)
        yield code // src.n, code % src.n, vals
