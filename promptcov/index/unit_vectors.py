"""Unit-length vectors and the dimension of a loaded sentence-transformers model, shared by the embedders."""

from __future__ import annotations

import numpy as np

__all__ = ["normalize", "st_dimension"]


def st_dimension(st) -> int:
    """Output dimension of a loaded ``SentenceTransformer`` (the method's name changed across versions)."""
    get_dim = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
    return int(get_dim())


def normalize(x: np.ndarray) -> np.ndarray:
    """Return ``x`` as C-contiguous float32 with unit-length rows (zero rows stay zero)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(x / norms, dtype=np.float32)
