"""Group-level metrics: how much a pool of accounts behaves as one sender.

A campaign spreads its volume over many accounts (a "hydra"); accounts driven by one script fire
together. :func:`synchrony` measures that on the pooled traffic of a linked group.
"""

from __future__ import annotations

import numpy as np

__all__ = ["synchrony"]


def synchrony(ts: np.ndarray, member: np.ndarray, bucket_seconds: float = 3600.0) -> float:
    """Share of the members' active time buckets in which another member is active too.

    Each member's activity is cut into ``bucket_seconds`` buckets (absolute time, not hour of
    day); the statistic is the share of (member, bucket) pairs that coincide with at least one
    other member. Accounts run by one script fire together (near 1); unrelated people who
    happen to share an address or a card are active at their own times (low). NaN for fewer
    than two members.
    """
    ts = np.asarray(ts, dtype=np.float64)
    member = np.asarray(member)
    if len(ts) != len(member):
        raise ValueError("ts and member must have the same length")
    if len(ts) == 0:
        return float("nan")
    _, code = np.unique(member.astype(str), return_inverse=True)
    width = int(code.max()) + 1
    if width < 2:
        return float("nan")
    bucket = np.floor(ts / float(bucket_seconds)).astype(np.int64)
    pairs = np.unique((bucket - bucket.min()) * width + code)
    per_bucket = np.bincount(pairs // width)
    return float(np.mean(per_bucket[pairs // width] >= 2))
