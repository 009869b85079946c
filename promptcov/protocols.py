"""The small Protocols through which each pipeline step is plugged in.

Any object with these methods works: a test plugs in a fake, a user plugs in their own model,
reducer or clusterer. ``umap.UMAP`` and ``hdbscan.HDBSCAN`` satisfy ``Reducer``/``Clusterer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Embedder", "Reducer", "Clusterer"]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of shape ``(len(texts), dim)``."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class Reducer(Protocol):
    """Projects vectors to a low dimension (UMAP by default)."""

    def fit_transform(self, X: np.ndarray) -> np.ndarray: ...

    def transform(self, X: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class Clusterer(Protocol):
    """Density clustering of the reduced vectors (HDBSCAN by default); -1 marks noise."""

    labels_: np.ndarray

    def fit(self, X: np.ndarray): ...
