"""The fast tier (``--model fast``): a static token-embedding model distilled from the default one.

`model2vec <https://github.com/MinishLab/model2vec>`_ runs every token of the source model's
vocabulary through the source transformer once, keeps one vector per token (reduced by PCA
to 256 dimensions and SIF-weighted), and embeds a text as the mean of its tokens' vectors. No
data and no network are needed: the vocabulary comes with the packaged model. A prompt then
costs a tokenisation and a table lookup instead of six transformer layers.

The model is built on first use and cached in ``$PROMPTCOV_CACHE/models/`` (else
``~/.cache/promptcov/models/``) under a folder named by the source model and a hash of its
weights, so a different source never reuses a stale build. It is written to a temporary
folder and renamed into place (atomic), and saved as a sentence-transformers model
(a ``StaticEmbedding`` module), so it loads through sentence-transformers like any other.

The store records the precise name ``fast:<source>:pca<dims>:<hash>``; since the store refuses
a second model, a fast-tier store and a full-model store are separate stores (see README).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from promptcov.errors import InputError
from promptcov.index.unit_vectors import normalize, st_dimension

__all__ = ["FAST_MODEL", "FAST_PCA_DIMS", "cache_root", "source_hash", "fast_model_name", "parse_fast_name",
           "build_static_model", "StaticModelEmbedder"]

log = logging.getLogger(__name__)

#: What users type: ``--model fast``.
FAST_MODEL = "fast"
FAST_PCA_DIMS = 256


def cache_root() -> Path:
    """``$PROMPTCOV_CACHE``, else ``~/.cache/promptcov``."""
    env = os.environ.get("PROMPTCOV_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "promptcov"


def source_hash(source_dir: str | os.PathLike) -> str:
    """First 12 hex digits of a SHA-256 over the source model's weight and tokenizer files."""
    source_dir = Path(source_dir)
    h = hashlib.sha256()
    files = sorted(p for p in source_dir.iterdir() if p.is_file() and p.suffix in (".safetensors", ".bin", ".json")
                   or p.name == "vocab.txt")
    if not files:
        raise InputError(f"{source_dir}: no model files to distil the fast model from")
    for p in files:
        h.update(p.name.encode())
        with open(p, "rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:12]


def fast_model_name(source: str, digest: str, pca_dims: int = FAST_PCA_DIMS) -> str:
    """The precise name a store records for the fast model of ``source``."""
    return f"{FAST_MODEL}:{source}:pca{pca_dims}:{digest}"


def parse_fast_name(name: str, default_source: str) -> tuple[str, int, str | None] | None:
    """``(source, pca_dims, digest or None)`` for ``"fast"`` (from ``default_source``) or a precise
    fast name; ``None`` for any other model name."""
    if name == FAST_MODEL:
        return default_source, FAST_PCA_DIMS, None
    parts = name.split(":")
    if len(parts) == 4 and parts[0] == FAST_MODEL and parts[2].startswith("pca") and parts[2][3:].isdigit():
        return parts[1], int(parts[2][3:]), parts[3]
    return None


def build_static_model(source_dir: str | os.PathLike, out_dir: str | os.PathLike,
                       pca_dims: int = FAST_PCA_DIMS) -> Path:
    """Distil ``source_dir`` into a sentence-transformers static model at ``out_dir`` (atomic).

    Returns ``out_dir``. When ``out_dir`` already holds a model (another process built it
    first), that one is kept.
    """
    out_dir = Path(out_dir)
    if (out_dir / "modules.json").exists():
        return out_dir
    try:
        from model2vec.distill import distill
    except ImportError as exc:  # pragma: no cover - install problem
        raise InputError("--model fast needs model2vec with its distill extra: "
                         "pip install 'model2vec[distill]'") from exc
    from sentence_transformers import SentenceTransformer
    try:
        from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import StaticEmbedding

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        log.info("distilling the fast static model from %s (PCA to %d dims); done once, then cached in %s",
                 source_dir, pca_dims, out_dir)
        static = distill(str(source_dir), pca_dims=pca_dims)
        static.save_pretrained(str(tmp / "model2vec"))
        st = SentenceTransformer(modules=[StaticEmbedding.from_model2vec(str(tmp / "model2vec"))], device="cpu")
        st.save(str(tmp / "st"))
        (tmp / "st" / "SOURCE").write_text(f"{source_dir}\n", encoding="utf-8")
        try:
            os.replace(tmp / "st", out_dir)
        except OSError:
            if not (out_dir / "modules.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


class StaticModelEmbedder:
    """The fast tier as an :class:`~promptcov.protocols.Embedder`, loaded through sentence-transformers.

    Parameters
    ----------
    source : str
        Name of the source model (recorded in :attr:`name`).
    source_dir : str
        Folder of the source model (a sentence-transformers / Hugging Face model folder).
    pca_dims : int
        Dimensions kept by the distillation's PCA.
    expected_digest : str or None
        Hash of the source the store's vectors came from; a different installed source is refused.
    batch_size : int
        Texts per encode call (a static model takes large batches cheaply).
    """

    def __init__(self, source: str, source_dir: str, pca_dims: int = FAST_PCA_DIMS,
                 expected_digest: str | None = None, batch_size: int = 1024, device: str | None = None,
                 cache_dir: str | None = None):
        self.source = source
        self.source_dir = source_dir
        self.pca_dims = pca_dims
        self.expected_digest = expected_digest
        self.batch_size = batch_size
        self.device = device
        self.cache_dir = cache_dir
        self._st = None
        self._digest = None

    @property
    def digest(self) -> str:
        if self._digest is None:
            self._digest = source_hash(self.source_dir)
            if self.expected_digest is not None and self._digest != self.expected_digest:
                raise InputError(
                    f"the store's vectors come from the fast model of {self.source} with hash "
                    f"{self.expected_digest}, but the installed {self.source} hashes to {self._digest}; "
                    f"install the model the store was built with, or use a new --store")
        return self._digest

    @property
    def name(self) -> str:
        return fast_model_name(self.source, self.digest, self.pca_dims)

    @property
    def model_dir(self) -> Path:
        root = Path(self.cache_dir) if self.cache_dir else cache_root()
        return root / "models" / f"fast-{self.source.replace('/', '_')}-pca{self.pca_dims}-{self.digest}"

    def _load(self):
        if self._st is None:
            from sentence_transformers import SentenceTransformer

            path = build_static_model(self.source_dir, self.model_dir, self.pca_dims)
            self._st = SentenceTransformer(str(path), device=self.device or "cpu")
            log.info("loaded fast static model %s from %s", self.name, path)
        return self._st

    @property
    def dim(self) -> int:
        return st_dimension(self._load())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        st = self._load()
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return normalize(st.encode(list(texts), batch_size=self.batch_size, show_progress_bar=False,
                                   convert_to_numpy=True))
