"""Synthetic vectors shared by the index tests."""

from __future__ import annotations

import numpy as np


def clustered(n: int, dim: int, seed: int = 0, k: int = 40) -> np.ndarray:
    """``n`` unit vectors around ``k`` random centres (float32)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, dim)).astype(np.float32)
    x = centers[rng.integers(0, k, n)] + 0.5 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)
