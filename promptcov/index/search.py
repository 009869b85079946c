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

A searcher reads the store's *published snapshot* (:mod:`promptcov.index.snapshot`), never the
catalog, so it keeps answering while a job holds the store; :meth:`Searcher.refresh` moves it
to a newer generation once one is published (the service calls it before each lookup).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from pathlib import Path

import numpy as np

from promptcov.errors import InputError
from promptcov.index.embedders import load_embedder
from promptcov.index.faiss_index import VectorIndex
from promptcov.index.records import embed_text, system_text
from promptcov.index.snapshot import Snapshot, current_generation, publish
from promptcov.index.store import Store

__all__ = ["Searcher"]

log = logging.getLogger(__name__)


class Searcher:
    """Nearest-neighbour lookups over a store's published snapshot.

    ``Searcher(store, embedder)`` over an open :class:`Store` publishes that store first (so it
    sees what the store holds now); :meth:`open` reads what the jobs last published.
    """

    def __init__(self, store: Store | None = None, embedder=None, index: VectorIndex | None = None,
                 snapshot: Snapshot | None = None, max_seq_length: int = 128, path: str | Path | None = None):
        self.store = store
        self.embedder = embedder
        self.max_seq_length = max_seq_length
        self.path = Path(path) if path is not None else (Path(store.path) if store is not None else None)
        self._state = (snapshot, index)  # swapped as one tuple, so a lookup never mixes generations
        self._lock = threading.Lock()

    @property
    def snapshot(self) -> Snapshot | None:
        return self._state[0]

    @property
    def index(self) -> VectorIndex | None:
        return self._state[1]

    @classmethod
    def open(cls, path: str | Path, embedder=None, max_seq_length: int = 128) -> Searcher:
        """A searcher over the store at ``path``'s live snapshot (publishing one if there is none)."""
        path = Path(path)
        if current_generation(path) is None:
            if not (path / "catalog.duckdb").exists():
                raise InputError(f"--store {path}: no promptcov store here; run `promptcov ingest LOG` first")
            with Store(path, read_only=True) as store:  # a store from before snapshots: publish it once
                if store.manifest().get("model") is None:
                    raise InputError(f"store {path} has no vectors yet; run `promptcov embed` first")
                publish(store)
        s = cls(None, embedder, max_seq_length=max_seq_length, path=path)
        s._load(Snapshot.open(path))
        return s

    def _load(self, snap: Snapshot) -> None:
        model, dim = snap.manifest.get("model"), snap.manifest.get("dim")
        if model is None:
            raise InputError(f"store {self.path} has no vectors yet; run `promptcov embed` first")
        if self.embedder is not None and self.embedder.name != model:
            if self.snapshot is None:
                raise InputError(f"store {self.path} was embedded with {model!r}, not {self.embedder.name!r}")
            self.embedder = None  # the store was rebuilt with another model
        if self.embedder is None:
            self.embedder = load_embedder(model, max_seq_length=self.max_seq_length)
        self._state = (snap, VectorIndex.load(snap.index_dir, model=model, dim=dim))

    def refresh(self) -> bool:
        """Move to the newest published generation; returns whether it changed.

        The previous generation stays open for lookups already running on it (it is closed when
        they drop it), and publishing keeps its files until a second newer generation exists.
        """
        if self.path is None:
            return False
        name = current_generation(self.path)
        if name is None or (self.snapshot is not None and self.snapshot.generation == name):
            return False
        with self._lock:
            if self.snapshot is not None and self.snapshot.generation == name:
                return False
            self._load(Snapshot.open(self.path))
            log.info("searcher moved to published generation %s", name)
            return True

    def _ensure(self) -> tuple[Snapshot, VectorIndex]:
        if self.snapshot is None:
            if self.store is None:
                raise InputError("Searcher needs a store or a snapshot")
            publish(self.store)
            self._load(Snapshot.open(self.store.path))
        return self._state

    def search_vector(self, vec: np.ndarray, k: int = 10, exclude: set[int] | None = None) -> list[dict]:
        """Hits for a query vector (already L2-normalised)."""
        snap, index = self._ensure()
        sims, ids = index.search(vec.reshape(1, -1), k + len(exclude or ()))
        pairs = [(int(i), float(s)) for i, s in zip(ids[0], sims[0], strict=True)
                 if i >= 0 and int(i) not in (exclude or set())][:k]
        return self._hits(snap, pairs)

    def search_text(self, text: str, k: int = 10, system: str = "", pool: int = 5) -> list[dict]:
        """The ``k`` stored texts nearest to the prompt ``text``.

        Stored vectors are the prompts' own, so an exact stored prompt finds itself at similarity 1
        whatever system prompt it was sent with. With ``system``, the ``pool * k`` nearest prompts
        are re-ranked by the mean of the prompt similarity and the similarity of their system
        prompt to ``system`` (a hit sent without a system prompt scores 0 on the second part).
        """
        if not text or not text.strip():
            raise InputError("search text is empty")
        snap, _ = self._ensure()
        vec = self.embedder.embed([embed_text("", text)])[0]
        if not system or not system.strip():
            return self.search_vector(vec, k)
        hits = self.search_vector(vec, max(k, pool * k))
        if not hits:
            return hits
        tids = [snap.text_of_request(h["request_id"]) for h in hits]
        sys_of = snap.systems([t for t in tids if t is not None])
        cand = [sys_of.get(t, "") if t is not None else "" for t in tids]
        q = self.embedder.embed([system_text(system)])[0]
        uniq = sorted({c for c in cand if c})
        sims = dict(zip(uniq, (self.embedder.embed([system_text(c) for c in uniq]) @ q).tolist(), strict=True)) \
            if uniq else {}
        for h, c in zip(hits, cand, strict=True):
            h["similarity"] = round(0.5 * (h["similarity"] + (sims.get(c, 0.0) if c else 0.0)), 4)
        return sorted(hits, key=lambda h: -h["similarity"])[:k]

    def search_request(self, request_id: str, k: int = 10) -> list[dict]:
        """The ``k`` stored texts nearest to the text of a stored request (itself included)."""
        snap, _ = self._ensure()
        text_id = snap.text_of_request(request_id)
        if text_id is None:
            raise InputError(f"request_id {request_id!r} is not in store {self.path}")
        vec = snap.vector(text_id)
        if vec is None:
            raise InputError(f"request {request_id!r} has no vector yet; run `promptcov embed`")
        return self.search_vector(vec, k)

    @staticmethod
    def _hits(snap: Snapshot, pairs: list[tuple[int, float]]) -> list[dict]:
        by_id = snap.hits([p[0] for p in pairs])
        hits = []
        for tid, sim in pairs:
            r = by_id.get(tid)
            if r is None:
                continue
            request_id, account_id, ts, prompt, n, accounts, cluster_id, capability = r
            hits.append({
                "request_id": request_id, "account_id": account_id, "timestamp": ts.isoformat() + "Z",
                "prompt": prompt, "similarity": round(min(1.0, sim), 4),
                "cluster_id": None if cluster_id is None else int(cluster_id), "capability": capability,
                "n_requests": int(n), "accounts": list(accounts or []),
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
