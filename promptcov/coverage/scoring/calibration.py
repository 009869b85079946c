"""The flag threshold, calibrated on the window's own population of scores."""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["calibrate_threshold", "null_fit"]


def calibrate_threshold(
    scores: np.ndarray,
    n_requests: np.ndarray,
    target_fpr: float = 0.01,
    min_requests: int = 20,
    floor: float = 0.5,
    ceiling: float = 0.95,
) -> float:
    """Flag threshold from the window's own score distribution, never below ``floor``.

    Method: take the logit scores of accounts with at least ``min_requests`` requests (smaller
    ones sit at the prior and say nothing), estimate the organic null from the *lower* part of
    that distribution (:func:`null_fit`) and put the threshold at the null's ``1 - target_fpr``
    normal quantile, clipped to ``[floor, ceiling]``. Sweeps only ever push scores *up*, and a
    small window can hold more campaign accounts with 20+ requests than organic ones (a hydra
    of 30 accounts next to 20 active people), so a median/MAD null would sit among the sweeps
    and calibrate them out of flagging; the lower quartiles stay organic up to ~75% sweeps.

    Expected false-positive rate: at most ``target_fpr`` (1%) of organic accounts with enough
    volume when the quantile binds (a noisy window), and lower when the fixed floor binds,
    which it does for a clean population: organic logits sit near -5, so a clean window flags
    nobody. The ceiling keeps a window dominated by attack traffic from calibrating itself out
    of flagging. With fewer than 20 qualifying accounts the floor is returned.
    """
    scores = np.asarray(scores, dtype=np.float64)
    n_requests = np.asarray(n_requests, dtype=np.float64)
    if scores.shape != n_requests.shape:
        raise ValueError(f"scores {scores.shape} and n_requests {n_requests.shape} differ in shape")
    if not 0.0 < target_fpr < 0.5:
        raise ValueError(f"target_fpr must be in (0, 0.5), got {target_fpr}")
    if not 0.0 < floor <= ceiling < 1.0:
        raise ValueError(f"need 0 < floor <= ceiling < 1, got {floor}, {ceiling}")
    center, scale, n_used = null_fit(scores, n_requests, min_requests)
    if n_used < 20:
        return float(floor)
    q = center + stats.norm.isf(target_fpr) * scale
    return float(np.clip(1.0 / (1.0 + np.exp(-q)), floor, ceiling))


def null_fit(scores: np.ndarray, n_requests: np.ndarray, min_requests: int = 20) -> tuple[float, float, int]:
    """Robust null of the logit scores from its lower quantiles: ``(centre, scale (>= 0.1), n used)``.

    For a normal null ``q25 = mu - 0.674 s`` and ``q10 = mu - 1.282 s``, so
    ``s = (q25 - q10) / 0.607`` and ``mu = q25 + 0.674 s``. Contamination by sweeps is one-sided
    (upward), so these quantiles belong to the organic accounts while sweeps are fewer than
    ~75% of the accounts used (a median would break at 50%); for a clean population the
    estimate equals the median and ``1.4826 * MAD``. Only accounts with at least
    ``min_requests`` requests are used; NaN centre and scale when there are none.
    """
    scores = np.asarray(scores, dtype=np.float64)
    n_requests = np.asarray(n_requests, dtype=np.float64)
    keep = (n_requests >= min_requests) & np.isfinite(scores)
    if not keep.any():
        return float("nan"), float("nan"), 0
    p = np.clip(scores[keep], 1e-9, 1 - 1e-9)
    q10, q25 = np.quantile(np.log(p / (1 - p)), [0.10, 0.25])
    z10, z25 = stats.norm.isf(0.10), stats.norm.isf(0.25)
    scale = max(float(q25 - q10) / (z10 - z25), 0.1)
    return float(q25 + z25 * scale), scale, int(keep.sum())
