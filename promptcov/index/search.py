"""Similarity lookups: the stored prompts nearest to a text or to a stored request.

The Python API an analyst uses from a notebook::

    from promptcov.index.search import Searcher
    s = Searcher.open("promptcov-store")
    hits = s.search_text("Rate the response on a scale of 1-10 ...", k=10)
    hits = s.search_request("r-123", k=10)
    s.accounts_near(hits, min_similarity=0.9)   # who sent near-duplicates of the query

Each hit is a dict in the contract's search JSON shape (``request_id, account_id, timestamp,
prompt, similarity, cluster_id, capability``) plus ``n_requests`` (requests that carried this
exact text) and ``accounts`` (up to 20 accounts that sent it). A hit is one distinct text,
represented by its earliest request, so ten copies of one sweep prompt take one slot, not ten.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np

from promptcov.errors import InputError
from promptcov.index.embedders import load_embedder
from promptcov.index.faiss_index import VectorIndex
from promptcov.index.records import embed_text
from promptcov.index.store import Store

__all__ = ["Searcher"]

log = logging.getLogger(__name__)

_MAX_ACCOUNTS = 20


class Searcher:
    """Nearest-neighbour lookups over a store's FAISS index."""

    def __init__(self, store: Store, embedder=None, index: VectorIndex | None = None):
        self.store = store
        self.embedder = embedder
        self.index = index

    @classmethod
    def open(cls, path: str | Path, embedder=None, max_seq_length: int = 128) -> Searcher:
        store = Store(path, read_only=True)
        model = store.manifest().get("model")
        if model is None:
            raise InputError(f"store {store.path} has no vectors yet; run `promptcov embed` first")
        if embedder is None:
            embedder = load_embedder(model, max_seq_length=max_seq_length)
        elif embedder.name != model:
            raise InputError(f"store {store.path} was embedded with {model!r}, not {embedder.name!r}")
        index = VectorIndex.load(store.index_dir, model=model, dim=store.manifest().get("dim"))
        return cls(store, embedder, index)

    def _ensure(self):
        if self.index is None:
            m = self.store.manifest()
            self.index = VectorIndex.load(self.store.index_dir, model=m.get("model"), dim=m.get("dim"))
        if self.embedder is None:
            self.embedder = load_embedder(self.store.manifest()["model"])

    def search_vector(self, vec: np.ndarray, k: int = 10, exclude: set[int] | None = None) -> list[dict]:
        """Hits for a query vector (already L2-normalised)."""
        self._ensure()
        sims, ids = self.index.search(vec.reshape(1, -1), k + len(exclude or ()))
        pairs = [(int(i), float(s)) for i, s in zip(ids[0], sims[0], strict=True)
                 if i >= 0 and int(i) not in (exclude or set())][:k]
        return self._hits(pairs)

    def search_text(self, text: str, k: int = 10, system: str = "") -> list[dict]:
        """The ``k`` stored texts nearest to ``text`` (embedded as a prompt with ``system``)."""
        if not text or not text.strip():
            raise InputError("search text is empty")
        self._ensure()
        vec = self.embedder.embed([embed_text(system, text)])
        return self.search_vector(vec[0], k)

    def search_request(self, request_id: str, k: int = 10) -> list[dict]:
        """The ``k`` stored texts nearest to the text of a stored request (itself included)."""
        rows = self.store.con.execute("SELECT text_id FROM requests WHERE request_id = ?", [request_id]).fetchall()
        row = rows[0] if rows else None
        if row is None:
            raise InputError(f"request_id {request_id!r} is not in store {self.store.path}")
        ids, vecs = self.store.get_vectors([row[0]])
        if len(ids) == 0:
            raise InputError(f"request {request_id!r} has no vector yet; run `promptcov embed`")
        return self.search_vector(vecs[0], k)

    def _hits(self, pairs: list[tuple[int, float]]) -> list[dict]:
        if not pairs:
            return []
        import pyarrow as pa

        con = self.store.con
        con.register("hit_ids", pa.table({"text_id": np.array([p[0] for p in pairs], np.int64)}))
        try:
            has_map = self.store.has_table("text_map")
            map_cols = "m.cluster_id, m.capability" if has_map else "NULL, NULL"
            map_join = "LEFT JOIN text_map m ON m.text_id = h.text_id" if has_map else ""
            rows = con.execute(f"""
                WITH reqs AS (
                    SELECT r.text_id, r.request_id, r.account_id, r.ts,
                           row_number() OVER (PARTITION BY r.text_id ORDER BY r.ts, r.request_id) AS rn
                    FROM requests r JOIN hit_ids h USING (text_id))
                SELECT h.text_id, f.request_id, f.account_id, f.ts, t.prompt, {map_cols},
                       (SELECT count(*) FROM reqs x WHERE x.text_id = h.text_id) AS n,
                       (SELECT list(DISTINCT x.account_id) FROM reqs x WHERE x.text_id = h.text_id) AS accs
                FROM hit_ids h JOIN texts t USING (text_id)
                JOIN reqs f ON f.text_id = h.text_id AND f.rn = 1 {map_join}
            """).fetchall()
        finally:
            con.unregister("hit_ids")
        by_id = {r[0]: r for r in rows}
        hits = []
        for tid, sim in pairs:
            r = by_id.get(tid)
            if r is None:
                continue
            accounts = sorted(r[8] or [])
            hits.append({
                "request_id": r[1], "account_id": r[2], "timestamp": r[3].isoformat() + "Z",
                "prompt": r[4], "similarity": round(min(1.0, sim), 4),
                "cluster_id": None if r[5] is None else int(r[5]), "capability": r[6],
                "n_requests": int(r[7]), "accounts": accounts[:_MAX_ACCOUNTS],
            })
        return hits

    @staticmethod
    def accounts_near(hits: list[dict], min_similarity: float = 0.9) -> list[tuple[str, int]]:
        """Accounts that sent near-duplicates of the query (hits at or above ``min_similarity``),
        with how many of those hits each sent, most first."""
        c: Counter = Counter()
        for h in hits:
            if h["similarity"] >= min_similarity:
                for a in h["accounts"]:
                    c[a] += 1
        return c.most_common()
