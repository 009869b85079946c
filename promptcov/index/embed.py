"""The embed job: every stored text without a vector gets one, and joins the FAISS index.

Cost control, because the default model embeds only ~50 prompts/s on two CPU cores:

* **dedup** — the unit is the distinct (system, prompt) text, not the request; a sweep that
  repeats its scaffold-plus-task pays once;
* **length-sorted batches** — pending texts are taken shortest first, so each model batch pads
  to a similar length;
* **explicit truncation** — the model keeps ``max_seq_length`` tokens, and the text is cut to
  ``chars_per_token * max_seq_length`` characters before tokenising, so a 20 kB issue costs no
  more than a 1 kB one.

Resume: each shard of ``shard_size`` texts is written atomically and recorded before the next
one starts; the FAISS index is saved as the job goes and re-synced from the shards on the next
run. A job killed at any point loses at most the shard in flight and recomputes nothing else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from promptcov.errors import ManifestMismatchError
from promptcov.index.faiss_index import VectorIndex
from promptcov.index.records import embed_text
from promptcov.index.store import Store

__all__ = ["EmbedSummary", "embed_pending", "sync_index", "pending_count"]

log = logging.getLogger(__name__)


@dataclass
class EmbedSummary:
    embedded: int = 0
    already: int = 0
    shards: int = 0
    seconds: float = 0.0
    index_factory: str = ""
    index_count: int = 0

    def line(self) -> str:
        rate = self.embedded / self.seconds if self.seconds > 0 else 0.0
        return (f"embed: {self.embedded} new text(s) embedded ({rate:.1f}/s) in {self.shards} shard(s), "
                f"{self.already} already embedded; index {self.index_factory} holds {self.index_count}")


def pending_count(store: Store) -> int:
    return int(store.con.execute(
        "SELECT count(*) FROM texts t ANTI JOIN embedded e ON t.text_id = e.text_id").fetchall()[0][0])


def _choose_factory(n: int, factory: str, large_factory: str, large_threshold: int) -> str:
    if factory != "auto":
        return factory
    return "IDMap2,Flat" if n <= large_threshold else large_factory


def _train_sample(store: Store, n: int, seed: int = 0):
    """Yield a seeded sample of about ``n`` stored vectors, shard by shard."""
    total = store.count("embedded")
    frac = min(1.0, n / max(total, 1))
    rng = np.random.default_rng(seed)
    for _, _, vecs in store.iter_shards():
        take = rng.random(len(vecs)) < frac
        if take.any():
            yield vecs[take]


def sync_index(store: Store, model: str, dim: int, factory: str = "auto",
               large_factory: str = "IDMap2,IVF4096,Flat", large_threshold: int = 200_000,
               nprobe: int = 32) -> VectorIndex:
    """Load the store's index and add any shard it misses; (re)build it when needed.

    A rebuild happens when there is no index yet, when the saved one is inconsistent (an
    interrupted write), or when the store outgrew the exact index and ``factory`` is ``auto``.
    """
    n = store.count("embedded")
    wanted = _choose_factory(n, factory, large_factory, large_threshold)
    index = None
    if (store.index_dir / "manifest.json").exists():
        try:
            index = VectorIndex.load(store.index_dir, model=model, dim=dim)
        except ManifestMismatchError as exc:
            if "count" not in str(exc):
                raise
            log.warning("%s; rebuilding the index from the vector shards", exc)
    if index is not None and index.factory != (wanted if wanted.startswith("IDMap2,") else "IDMap2," + wanted):
        log.info("index grows from %s to %s (%d vectors): rebuilding", index.factory, wanted, n)
        index = None
    if index is None:
        if wanted.startswith("IDMap2,Flat") or wanted == "Flat":
            sample = None
        else:
            nlist_hint = 50 * 4096
            sample = _train_sample(store, min(n, nlist_hint))
        index = VectorIndex.build(store.iter_shards(), dim, model, wanted, nprobe, sample)
        index.save(store.index_dir)
        return index
    known = {r[0] for r in store.con.execute("SELECT DISTINCT shard FROM embedded").fetchall()}
    missing = sorted(known - index.shards)
    if missing:
        for shard, ids, vecs in store.iter_shards(missing):
            index.add(ids, vecs)
            index.shards.add(shard)
        log.info("added %d shard(s) the saved index lacked", len(missing))
        index.save(store.index_dir)
    return index


def embed_pending(store: Store, embedder, shard_size: int = 2048, chars_per_token: int = 8,
                  max_seq_length: int = 128, factory: str = "auto",
                  large_factory: str = "IDMap2,IVF4096,Flat", large_threshold: int = 200_000,
                  nprobe: int = 32, save_every_s: float = 60.0,
                  progress: Callable[[int, int], None] | None = None) -> EmbedSummary:
    """Embed every text that has no vector yet; ``progress(done, total)`` after each shard."""
    t0 = time.perf_counter()
    store.reconcile_shards()
    store.bind_model(embedder.name, embedder.dim)
    summary = EmbedSummary(already=store.count("embedded"))
    pending = store.con.execute(
        "SELECT t.text_id FROM texts t ANTI JOIN embedded e ON t.text_id = e.text_id "
        "ORDER BY length(t.prompt) + length(t.system), t.text_id").fetchnumpy()["text_id"]
    index = sync_index(store, embedder.name, embedder.dim, factory, large_factory, large_threshold, nprobe)
    total = len(pending)
    if progress is not None:
        progress(0, total)
    shard = store.next_shard_number()
    max_chars = max(64, chars_per_token * max_seq_length)
    last_save = time.perf_counter()
    try:
        for start in range(0, total, shard_size):
            ids = np.asarray(pending[start:start + shard_size], dtype=np.int64)
            rows = store.texts_for(ids)
            vecs = embedder.embed([embed_text(s, p)[:max_chars] for s, p in rows])
            store.write_shard(shard, ids, vecs)
            index.add(ids, vecs)
            index.shards.add(shard)
            shard += 1
            summary.shards += 1
            summary.embedded += len(ids)
            if progress is not None:
                progress(summary.embedded, total)
            if time.perf_counter() - last_save > save_every_s:
                index.save(store.index_dir)
                last_save = time.perf_counter()
    finally:
        if summary.shards:
            index.save(store.index_dir)
    if summary.embedded and factory == "auto" and index.factory.startswith("IDMap2,Flat") \
            and index.ntotal > large_threshold:
        index = sync_index(store, embedder.name, embedder.dim, factory, large_factory, large_threshold, nprobe)
    summary.seconds = time.perf_counter() - t0
    summary.index_factory = index.factory
    summary.index_count = index.ntotal
    return summary
