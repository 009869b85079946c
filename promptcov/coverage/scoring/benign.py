"""Benign systematic traffic: one-off benchmark runs are structured but not a campaign."""

from __future__ import annotations

import numpy as np

from promptcov.coverage.scoring.score import column, n_rows, structure_evidence

__all__ = ["benchmark_like"]


def benchmark_like(
    metrics: dict,
    linked: np.ndarray,
    max_span_hours: float = 24.0,
    min_structure: float = 0.5,
    min_requests: int = 20,
) -> np.ndarray:
    """One-off benchmark runs: systematic, but benign.

    An evaluator runs one template over a task set once: structured (``S >= min_structure``),
    all inside ``max_span_hours`` on at most two calendar days, no follow-ups, and the account
    has no operator tie to another account (``linked`` false: the detector counts payment,
    address and synchrony ties, not shared content, since a runner on a public task set shares
    its tasks with whoever else uses them). A campaign differs by repeating and by spreading over
    many linked accounts.
    """
    n = n_rows(metrics)
    linked = np.asarray(linked, dtype=bool)
    if linked.shape != (n,):
        raise ValueError(f"linked has shape {linked.shape}, expected ({n},)")
    s, _ = structure_evidence(metrics)
    span = column(metrics, "span_hours", n)
    days = np.nan_to_num(column(metrics, "active_days", n), nan=99.0)
    f = np.nan_to_num(column(metrics, "followup_share", n), nan=0.0)
    n_req = column(metrics, "n_requests", n)
    return (
        ~linked
        & (s >= min_structure)
        & (np.nan_to_num(span, nan=1e9) < max_span_hours)
        & (days <= 2)
        & (f <= 0.05)
        & (n_req >= min_requests)
    )
