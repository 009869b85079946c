"""Vectors of system prompts, kept apart from the prompts' own vectors and combined where needed.

The stored vector of a text is its prompt's (:func:`promptcov.index.records.embed_text`), so search
finds an exact prompt whatever system prompt came with it. The map still needs both: a CoT or
grading scaffold often lives in the system prompt. :func:`system_vectors` embeds each distinct
system prompt once (cached in the store's ``system_vectors`` table, keyed by a hash of its text and
the model) and :func:`combine` adds it to the prompt's vector.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

import numpy as np

from promptcov.index.records import system_text

__all__ = ["system_vectors", "combine", "embed_combined", "SYSTEM_WEIGHT"]

log = logging.getLogger(__name__)

#: Weight of the system prompt's vector in a combined vector (the prompt's weighs 1).
SYSTEM_WEIGHT = 0.5

_DDL = ("CREATE TABLE IF NOT EXISTS system_vectors (system_id BIGINT, model VARCHAR, vec FLOAT[], "
        "PRIMARY KEY (system_id, model))")


def _system_id(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                          "little") & ((1 << 63) - 1)


def system_vectors(store, embedder, systems: Sequence[str], batch: int = 256) -> np.ndarray:
    """(n, dim) float32 vector per system prompt (zero rows for empty ones), embedding only the
    distinct ones the store has not cached yet for this model."""
    import pyarrow as pa

    dim = int(embedder.dim)
    out = np.zeros((len(systems), dim), dtype=np.float32)
    texts = [system_text(s) for s in systems]
    keys = {t: _system_id(t) for t in set(texts) if t}
    if not keys:
        return out
    con = store.con
    con.execute(_DDL).fetchall()
    ids = pa.table({"system_id": np.fromiter(keys.values(), np.int64)})
    con.register("_want_sys", ids)
    try:
        rows = con.execute("SELECT s.system_id, s.vec FROM system_vectors s JOIN _want_sys USING (system_id) "
                           "WHERE s.model = ?", [embedder.name]).fetchall()
    finally:
        con.unregister("_want_sys")
    known = {int(r[0]): np.asarray(r[1], np.float32) for r in rows}
    missing = [t for t, k in keys.items() if k not in known]
    for lo in range(0, len(missing), batch):
        part = missing[lo:lo + batch]
        vecs = np.asarray(embedder.embed(part), np.float32)
        new = pa.table({"system_id": pa.array([keys[t] for t in part], pa.int64()),
                        "model": pa.array([embedder.name] * len(part), pa.string()),
                        "vec": pa.array([v.tolist() for v in vecs], pa.list_(pa.float32()))})
        con.register("_new_sys", new)
        try:
            with store.transaction() as c:
                c.execute("INSERT OR REPLACE INTO system_vectors SELECT * FROM _new_sys").fetchall()
        finally:
            con.unregister("_new_sys")
        known.update({keys[t]: v for t, v in zip(part, vecs, strict=True)})
    if missing:
        log.info("embedded %d new system prompt(s)", len(missing))
    for i, t in enumerate(texts):
        if t:
            out[i] = known[keys[t]]
    return out


def combine(prompt_vecs: np.ndarray, system_vecs: np.ndarray, weight: float = SYSTEM_WEIGHT) -> np.ndarray:
    """``normalize(prompt + weight * system)`` per row; rows without a system prompt stay as they are."""
    x = np.ascontiguousarray(prompt_vecs, dtype=np.float32) + weight * np.asarray(system_vecs, np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(x / norms, dtype=np.float32)


def embed_combined(embedder, systems: Sequence[str], prompts: Sequence[str]) -> np.ndarray:
    """The map's view of (system, prompt) pairs computed directly (no store): each prompt's vector
    combined with its system prompt's, as :mod:`promptcov.pipeline.map_job` combines stored ones."""
    from promptcov.index.records import embed_text

    p = np.asarray(embedder.embed([embed_text("", x) for x in prompts]), np.float32)
    texts = [system_text(s) for s in systems]
    uniq = sorted({t for t in texts if t})
    if not uniq:
        return p
    vecs = dict(zip(uniq, np.asarray(embedder.embed(uniq), np.float32), strict=True))
    sys_vecs = np.stack([vecs[t] if t else np.zeros(p.shape[1], np.float32) for t in texts])
    return combine(p, sys_vecs)
