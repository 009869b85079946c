"""Baseline detectors from the model-extraction literature, for side-by-side evaluation.

Each detector is a pure function over a :class:`~promptcov.coverage.frame.RequestFrame` that
returns ``(account_ids, scores)`` (accounts in frame order, higher = more suspicious). They judge
every account alone and know nothing of templates, capability areas or linked accounts, which is
what the evaluation wants to show against.

- :func:`prada_scores` - PRADA (Juuti, Szyller, Marchal and Asokan, "PRADA: Protecting against
  DNN Model Stealing Attacks", IEEE EuroS&P 2019). Assumes benign queries of one client are
  drawn naturally, so the distances from each new query to the nearest earlier one are roughly
  normally distributed; synthetic extraction queries (perturbations around seeds) make that
  distribution peaked or multi-modal. The Shapiro-Wilk statistic ``W`` measures normality;
  the score is ``1 - W``.
- :func:`knn_scores` - stateful detection (Chen, Carlini and Wagner, "Stateful Detection of
  Black-Box Adversarial Attacks", ACM SPAI 2020). Assumes an attack issues many queries close to
  each other (small steps around a point) while benign clients' queries are spread out: the mean
  distance of a query to its ``k`` nearest earlier queries of the same account is small during an
  attack. The score is minus the smallest sliding-window mean of that distance.
- :func:`volume_scores` - requests per account, the rate-limit view.
- :func:`mmd_scores` - window-MMD (2026): the maximum mean discrepancy between an account's
  window of query embeddings and a reference sample of benign (organic) traffic, with an RBF
  kernel whose bandwidth is the median heuristic on the reference, estimated without bias
  (MMD^2_u, Gretton et al. 2012), each account subsampled to at most 200 queries. Assumes
  extraction queries are drawn from a different distribution than benign traffic.
  :func:`mmd_threshold` calibrates the flag threshold on benign accounts only: the (1 - fpr)
  quantile of their scores. Our reading of the method: the reference and the calibration
  accounts are labelled benign traffic the defender holds (here: two disjoint halves of the
  organic accounts); the score is the raw MMD^2_u (no per-size normalisation), so small
  accounts are noisier and the calibrated threshold absorbs that.

Distances are L2 on the L2-normalised text vectors (``||a - b|| = sqrt(2 - 2 cos)``, 0..2).
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.stats import shapiro

from promptcov.coverage.frame import RequestFrame
from promptcov.errors import InputError

__all__ = [
    "prada_distances", "prada_scores", "knn_distances", "knn_scores", "volume_scores",
    "rbf_bandwidth", "mmd2_unbiased", "mmd_scores", "mmd_threshold",
]  # fmt: skip

log = logging.getLogger(__name__)

_BLOCK = 512


def _earlier_sims(x: np.ndarray):
    """Yield ``(start, sims)``: cosines of queries ``start..`` to all earlier queries (-inf elsewhere)."""
    n = len(x)
    for start in range(0, n, _BLOCK):
        stop = min(n, start + _BLOCK)
        sims = x[start:stop] @ x[:stop].T
        rows = np.arange(start, stop)[:, None]
        sims[np.arange(stop)[None, :] >= rows] = -np.inf
        yield start, sims


def _to_dist(sims: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(2.0 - 2.0 * sims, 0.0, 4.0))


def prada_distances(vectors: np.ndarray) -> np.ndarray:
    """For each query after the first, the L2 distance to the nearest earlier query (PRADA's set D).

    ``vectors`` are one account's L2-normalised query vectors in time order; returns ``n - 1``
    values. Without class labels, every earlier query counts as the same class (the paper keeps
    one growing set per predicted class).
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected (n, dim) vectors, got shape {x.shape}")
    out = np.empty(max(len(x) - 1, 0), dtype=np.float64)
    for start, sims in _earlier_sims(x):
        best = sims.max(axis=1)
        lo = max(start, 1)
        out[lo - 1 : start + len(best) - 1] = _to_dist(best[lo - start :])
    return out


def knn_distances(vectors: np.ndarray, k: int = 10) -> np.ndarray:
    """For each query, the mean L2 distance to its ``k`` nearest *earlier* queries (Chen et al. 2020).

    Queries with fewer than ``k`` earlier queries use those they have; the first query gets NaN.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected (n, dim) vectors, got shape {x.shape}")
    out = np.full(len(x), np.nan, dtype=np.float64)
    for start, sims in _earlier_sims(x):
        kk = min(k, sims.shape[1])
        top = -np.partition(-sims, kk - 1, axis=1)[:, :kk]  # the kk largest similarities
        avail = np.minimum(np.arange(start, start + len(sims)), kk)
        dist = _to_dist(top)
        dist[np.arange(kk)[None, :] >= avail[:, None]] = np.nan
        valid = avail > 0  # every valid row has at least one real neighbour, so nanmean is defined
        out[start : start + len(sims)][valid] = np.nanmean(dist[valid], axis=1)
    return out


def _account_vectors(frame: RequestFrame, max_queries: int | None):
    if not isinstance(frame, RequestFrame):
        raise InputError(f"expected a RequestFrame, got {type(frame).__name__}")
    if (frame.vec_row >= 0).any() and (frame.vectors.ndim != 2 or len(frame.vectors) == 0):
        raise InputError("the frame has vector rows but no vectors: run `promptcov embed` first")
    for acc, sl in frame.accounts():
        x = frame.account_vectors(sl)
        if max_queries is not None and len(x) > max_queries:
            x = x[-max_queries:]
        yield acc, x


def prada_scores(
    frame: RequestFrame, *, min_queries: int = 20, max_queries: int = 5000
) -> tuple[np.ndarray, np.ndarray]:
    """PRADA attack score ``1 - W`` per account (Shapiro-Wilk ``W`` of :func:`prada_distances`).

    Accounts with fewer than ``min_queries`` embedded queries, or whose distances are all equal
    (the test is undefined), score 0. Only the last ``max_queries`` queries are used (the test's
    p-value is not defined beyond 5000 samples, and the distance scan is quadratic).
    """
    if min_queries < 4:
        raise InputError(f"min_queries must be >= 4 (Shapiro-Wilk needs 3 distances), got {min_queries}")
    ids, scores = [], []
    for acc, x in _account_vectors(frame, max_queries):
        score = 0.0
        if len(x) >= min_queries:
            d = prada_distances(x)
            if np.ptp(d) > 1e-9:
                score = 1.0 - float(shapiro(d).statistic)
        ids.append(acc)
        scores.append(score)
    return np.array(ids, dtype=object), np.array(scores, dtype=np.float64)


def knn_scores(
    frame: RequestFrame, *, k: int = 10, window: int = 50, max_queries: int = 5000
) -> tuple[np.ndarray, np.ndarray]:
    """Stateful k-NN score per account: ``-min`` over sliding windows of the mean k-NN distance.

    Chen et al. flag an account as soon as one query's mean distance to its ``k`` nearest earlier
    queries falls below a threshold; a sliding mean over ``window`` queries (queries with a full
    ``k`` neighbours only) makes the score less sensitive to one repeated prompt. Scores lie in
    [-2, 0]; accounts with at most ``k`` embedded queries get -2 (no evidence).
    """
    if k < 1 or window < 1:
        raise InputError(f"k and window must be >= 1, got k={k}, window={window}")
    ids, scores = [], []
    for acc, x in _account_vectors(frame, max_queries):
        score = -2.0
        if len(x) > k:
            d = knn_distances(x, k)[k:]
            w = min(window, len(d))
            csum = np.concatenate([[0.0], np.cumsum(d)])
            score = -float(((csum[w:] - csum[:-w]) / w).min())
        ids.append(acc)
        scores.append(score)
    return np.array(ids, dtype=object), np.array(scores, dtype=np.float64)


def volume_scores(frame: RequestFrame) -> tuple[np.ndarray, np.ndarray]:
    """Requests per account in the window: what a rate limit sees. Assumes extraction needs volume."""
    if not isinstance(frame, RequestFrame):
        raise InputError(f"expected a RequestFrame, got {type(frame).__name__}")
    pairs = [(acc, float(sl.stop - sl.start)) for acc, sl in frame.accounts()]
    ids = np.array([a for a, _ in pairs], dtype=object)
    return ids, np.array([v for _, v in pairs], dtype=np.float64)


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aa = np.einsum("ij,ij->i", a, a)[:, None]
    bb = np.einsum("ij,ij->i", b, b)[None, :]
    return np.maximum(aa + bb - 2.0 * (a @ b.T), 0.0)


def rbf_bandwidth(reference: np.ndarray) -> float:
    """Median heuristic: the median pairwise L2 distance between distinct reference vectors."""
    x = np.asarray(reference, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise InputError("the MMD reference needs at least 2 vectors")
    d2 = _sqdist(x, x)[np.triu_indices(len(x), k=1)]
    sigma = float(np.median(np.sqrt(d2)))
    return sigma if sigma > 1e-9 else 1.0


def mmd2_unbiased(x: np.ndarray, y: np.ndarray, sigma: float) -> float:
    """Unbiased MMD^2 between samples ``x`` (m, d) and ``y`` (n, d), RBF kernel of width ``sigma``.

    ``k(a, b) = exp(-||a - b||^2 / (2 sigma^2))``; needs m, n >= 2. Can be slightly negative.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise ValueError(f"MMD^2_u needs at least 2 samples on each side, got {m} and {n}")
    g = 1.0 / (2.0 * sigma * sigma)
    kxx, kyy, kxy = np.exp(-g * _sqdist(x, x)), np.exp(-g * _sqdist(y, y)), np.exp(-g * _sqdist(x, y))
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2.0 * kxy.mean())


def mmd_scores(
    frame: RequestFrame, reference: np.ndarray, *, max_queries: int = 200, min_queries: int = 2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Window-MMD score per account: MMD^2_u of its queries (a random subsample of at most
    ``max_queries``) against ``reference`` (benign query vectors, e.g. <= 1000 organic queries).

    Accounts with fewer than ``min_queries`` embedded queries score 0 (no evidence).
    """
    ref = np.asarray(reference, dtype=np.float64)
    if max_queries < 2 or min_queries < 2:
        raise InputError(f"max_queries and min_queries must be >= 2, got {max_queries}, {min_queries}")
    sigma = rbf_bandwidth(ref)
    rng = np.random.default_rng(seed)
    ids, scores = [], []
    for acc, x in _account_vectors(frame, None):
        if len(x) > max_queries:
            x = x[np.sort(rng.choice(len(x), size=max_queries, replace=False))]
        ids.append(acc)
        scores.append(mmd2_unbiased(x, ref, sigma) if len(x) >= min_queries else 0.0)
    return np.array(ids, dtype=object), np.array(scores, dtype=np.float64)


def mmd_threshold(benign_scores: np.ndarray, fpr: float = 0.01) -> float:
    """The flag threshold calibrated on benign accounts: the ``1 - fpr`` quantile of their scores."""
    s = np.asarray(benign_scores, dtype=np.float64)
    if s.size == 0 or not (0.0 < fpr < 1.0):
        raise InputError("mmd_threshold needs benign scores and 0 < fpr < 1")
    return float(np.quantile(s, 1.0 - fpr))
