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

from promptcov.errors import DamagedStoreError, ManifestMismatchError
from promptcov.index.faiss_index import (
    CHECKSUM_MAX_BYTES,
    VectorIndex,
    is_compressed,
    min_train_size,
    normalize_factory,
)
from promptcov.index.records import embed_text
from promptcov.index.store import Store

__all__ = ["ShardSink", "embed_unique", "EmbedSummary", "embed_pending", "sync_index", "pending_count",
           "COMPRESSED_FACTORY", "COMPRESSED_THRESHOLD", "COMPRESSED_NPROBE", "RERANK_K", "index_kwargs",
           "tier_outgrown"]

log = logging.getLogger(__name__)


@dataclass
class EmbedSummary:
    embedded: int = 0
    already: int = 0
    shards: int = 0
    seconds: float = 0.0
    index_factory: str = ""
    index_count: int = 0
    forgotten: int = 0              # damaged or missing shards found and forgotten (texts re-embedded)

    def line(self) -> str:
        rate = self.embedded / self.seconds if self.seconds > 0 else 0.0
        fixed = f"; {self.forgotten} damaged or missing shard(s) re-embedded" if self.forgotten else ""
        return (f"embed: {self.embedded} new text(s) embedded ({rate:.1f}/s) in {self.shards} shard(s), "
                f"{self.already} already embedded; index {self.index_factory} holds {self.index_count}{fixed}")


def pending_count(store: Store) -> int:
    return int(store.con.execute(
        "SELECT count(*) FROM texts t ANTI JOIN embedded e ON t.text_id = e.text_id").fetchall()[0][0])


#: ``auto`` past this many vectors: the compressed tier (IVF-SQ8, memory-mapped, re-ranked exactly).
COMPRESSED_THRESHOLD = 2_000_000
#: 4096 lists train in minutes on 2 cores (sample 204,800); SQ8 = 384 bytes/vector (one byte a dimension):
#: recall@10 ~0.96 before re-ranking and ~1.0 after re-ranking 50 on the synthetic bench, and scanned as fast
#: as PQ96 codes; PQ96 needed 200-400 re-ranked candidates for 0.95 once a list holds a whole cluster (10^7).
COMPRESSED_FACTORY = "IDMap2,IVF4096,SQ8"
#: Lists probed by the compressed tier: at 10^7 a list holds ~2,400 vectors, so 16 lists scan ~39k codes.
COMPRESSED_NPROBE = 16
#: Candidates the compressed tier re-ranks exactly from the float32 shards.
RERANK_K = 50


def index_kwargs(cfg) -> dict:
    """:func:`sync_index`'s index keyword arguments from an ``[index]`` config (``IndexConfig``)."""
    return {"factory": cfg.factory, "large_factory": cfg.large_factory, "large_threshold": cfg.large_threshold,
            "nprobe": cfg.nprobe, "checksum_max_bytes": cfg.checksum_max_mb * 2**20,
            "compressed_factory": cfg.compressed_factory, "compressed_threshold": cfg.compressed_threshold,
            "rerank_k": cfg.rerank_k, "compressed_nprobe": cfg.compressed_nprobe}


def _choose_factory(n: int, factory: str, large_factory: str, large_threshold: int,
                    compressed_factory: str = COMPRESSED_FACTORY,
                    compressed_threshold: int = COMPRESSED_THRESHOLD) -> str:
    if factory != "auto":
        return factory
    if n > compressed_threshold:
        return compressed_factory
    return "IDMap2,Flat" if n <= large_threshold else large_factory


def _effective_factory(n: int, dim: int, factory: str, large_factory: str, large_threshold: int,
                       compressed: tuple[str, int] = (COMPRESSED_FACTORY, COMPRESSED_THRESHOLD)) -> str:
    """The factory to use for ``n`` vectors: the configured one, or exact ``IDMap2,Flat`` while the
    store holds too few vectors to train it (an IVF factory can start a new store)."""
    chosen = normalize_factory(_choose_factory(n, factory, large_factory, large_threshold, *compressed))
    need = min_train_size(chosen, dim)
    if need > n:
        log.info("index %s needs %d vectors to train, the store has %d: exact IDMap2,Flat until then",
                 chosen, need, n)
        return "IDMap2,Flat"
    return chosen


def tier_outgrown(index, n: int, dim: int, factory: str = "auto", large_factory: str = "IDMap2,IVF4096,Flat",
                  large_threshold: int = 200_000, compressed_factory: str = COMPRESSED_FACTORY,
                  compressed_threshold: int = COMPRESSED_THRESHOLD, **_ignored) -> bool:
    """Whether ``index`` is not the tier ``n`` stored vectors call for (takes :func:`index_kwargs`).

    Both embedding engines ask this after adding vectors, so a store that grows past
    ``large_threshold`` or ``compressed_threshold`` is rebuilt to the next tier whichever engine
    embedded it.
    """
    return index.factory != _effective_factory(n, dim, factory, large_factory, large_threshold,
                                               (compressed_factory, compressed_threshold))


def _train_sample(store: Store, n: int, seed: int = 0):
    """Yield a seeded sample of about ``n`` stored vectors, shard by shard."""
    total = store.count("embedded")
    frac = min(1.0, n / max(total, 1))
    rng = np.random.default_rng(seed)
    for _, _, vecs in store.iter_shards():
        take = rng.random(len(vecs)) < frac
        if take.any():
            yield vecs[take]


def _load_saved(store: Store, model: str, dim: int, checksum_max_bytes: int | None) -> VectorIndex | None:
    """The saved index, or None when there is none or it is damaged (then it is rebuilt)."""
    if not (store.index_dir / "manifest.json").exists():
        return None
    try:
        return VectorIndex.load(store.index_dir, model=model, dim=dim, checksum_max_bytes=checksum_max_bytes)
    except DamagedStoreError as exc:
        log.warning("%s; rebuilding the index from the vector shards", exc)
    except ManifestMismatchError as exc:
        if "count" not in str(exc):
            raise
        log.warning("%s; rebuilding the index from the vector shards", exc)
    return None


def sync_index(store: Store, model: str, dim: int, factory: str = "auto",
               large_factory: str = "IDMap2,IVF4096,Flat", large_threshold: int = 200_000,
               nprobe: int = 32, checksum_max_bytes: int | None = CHECKSUM_MAX_BYTES,
               rebuild: bool = False, compressed_factory: str = COMPRESSED_FACTORY,
               compressed_threshold: int = COMPRESSED_THRESHOLD, rerank_k: int = RERANK_K,
               compressed_nprobe: int = COMPRESSED_NPROBE) -> VectorIndex:
    """Load the store's index and add any shard it misses; (re)build it when needed.

    A rebuild happens when there is no index yet, when the saved one is damaged or
    inconsistent (an interrupted write, a failed checksum), when it holds shards the store has
    forgotten, when the store outgrew the exact index (``factory`` ``auto``), or when the store
    now holds enough vectors to train a configured IVF factory; ``rebuild`` forces one. Past
    ``compressed_threshold`` vectors, ``auto`` switches to ``compressed_factory`` (IVF-SQ8 or
    IVF-PQ), searched with ``compressed_nprobe`` lists, whose searches re-rank the top
    ``rerank_k`` candidates exactly from the shards.
    """
    n = store.count("embedded")
    wanted = _effective_factory(n, dim, factory, large_factory, large_threshold,
                                (compressed_factory, compressed_threshold))
    index = None if rebuild else _load_saved(store, model, dim, checksum_max_bytes)
    known = set(store.registered_shards())
    if index is not None and index.factory != wanted:
        log.info("index changes from %s to %s (%d vectors): rebuilding", index.factory, wanted, n)
        index = None
    if index is not None and index.shards - known:
        log.warning("index holds %d shard(s) the store no longer has: rebuilding", len(index.shards - known))
        index = None
    if index is None:
        need = min_train_size(wanted, dim)
        sample = None if need == 0 else _train_sample(store, min(n, max(50 * 4096, need)))
        probe = compressed_nprobe if is_compressed(wanted) else nprobe
        index = VectorIndex.build(store.iter_shards(), dim, model, wanted, probe, sample, rerank_k)
        index.save(store.index_dir)
        if store.vectors_dir.is_dir():
            index.attach_vectors(store.vectors_dir)
        return index
    missing = sorted(known - index.shards)
    if missing:
        for shard, ids, vecs in store.iter_shards(missing):
            index.add(ids, vecs)
            index.shards.add(shard)
        log.info("added %d shard(s) the saved index lacked", len(missing))
        index.save(store.index_dir)
    return index


def _pending(store: Store) -> np.ndarray:
    return store.con.execute(
        "SELECT t.text_id FROM texts t ANTI JOIN embedded e ON t.text_id = e.text_id "
        "ORDER BY length(t.prompt) + length(t.system), t.text_id").fetchnumpy()["text_id"]


def _check_and_sync(store: Store, embedder, summary: EmbedSummary, index_args: tuple, tier: dict):
    """Check every shard's sha256 and forget damaged or missing ones (their texts become pending),
    then load the index, or rebuild it when it is damaged or holds forgotten shards.

    The embed job is the one that repairs, so it reads every shard (sha256 ran at 270 MB/s on the
    loaded 2-core development machine: about 6 s per million texts at dimension 384, 1.5 GB): a
    bit-flipped shard that a map or score job refused is re-embedded here, never left to loop."""
    summary.forgotten = len(store.repair_shards(full=True))
    return sync_index(store, embedder.name, embedder.dim, *index_args, **tier)


def embed_unique(embedder, texts: list[str]) -> np.ndarray:
    """Vectors of ``texts``, each distinct text embedded once (a prompt sent with several system
    prompts is several stored texts with one vector)."""
    uniq, inv = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
    if len(uniq) == len(texts):
        return embedder.embed(texts)
    return np.asarray(embedder.embed(list(uniq)))[inv.ravel()]


class ShardSink:
    """Where embedded batches go, for the local and the Ray job alike: each batch is written as one
    atomic shard, added to the index, reported to ``progress(done, total)``, and the index is saved
    every ``save_every_s`` seconds and when the sink closes (so a killed job loses one shard at most)."""

    def __init__(self, store: Store, index: VectorIndex, summary: EmbedSummary, total: int, progress,
                 save_every_s: float = 60.0):
        self.store, self.index, self.summary, self.total = store, index, summary, total
        self.progress, self.save_every_s = progress, save_every_s
        self.shard = store.next_shard_number()
        self.last_save = time.perf_counter()

    def put(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        self.store.write_shard(self.shard, ids, vecs)
        self.index.add(ids, vecs)
        self.index.shards.add(self.shard)
        self.shard += 1
        self.summary.shards += 1
        self.summary.embedded += len(ids)
        if self.progress is not None:
            self.progress(self.summary.embedded, self.total)
        if time.perf_counter() - self.last_save > self.save_every_s:
            self.index.save(self.store.index_dir)
            self.last_save = time.perf_counter()

    def __enter__(self) -> ShardSink:
        return self

    def __exit__(self, *exc) -> None:
        if self.summary.shards:
            self.index.save(self.store.index_dir)


def embed_pending(store: Store, embedder, shard_size: int = 2048, chars_per_token: int = 8,
                  max_seq_length: int = 128, factory: str = "auto",
                  large_factory: str = "IDMap2,IVF4096,Flat", large_threshold: int = 200_000,
                  nprobe: int = 32, save_every_s: float = 60.0,
                  progress: Callable[[int, int], None] | None = None,
                  checksum_max_bytes: int | None = CHECKSUM_MAX_BYTES,
                  compressed_factory: str = COMPRESSED_FACTORY, compressed_threshold: int = COMPRESSED_THRESHOLD,
                  rerank_k: int = RERANK_K, compressed_nprobe: int = COMPRESSED_NPROBE) -> EmbedSummary:
    """Embed every text that has no vector yet; ``progress(done, total)`` after each shard.

    Missing or damaged shards are found first (full sha256 check) and forgotten, so their texts
    are embedded again, and a damaged index is rebuilt from the shards.
    """
    t0 = time.perf_counter()
    store.bind_model(embedder.name, embedder.dim)
    summary = EmbedSummary()
    index_args = (factory, large_factory, large_threshold, nprobe, checksum_max_bytes)
    tier = {"compressed_factory": compressed_factory, "compressed_threshold": compressed_threshold,
            "rerank_k": rerank_k, "compressed_nprobe": compressed_nprobe}
    index = _check_and_sync(store, embedder, summary, index_args, tier)
    summary.already = store.count("embedded")
    pending = _pending(store)
    total = len(pending)
    if progress is not None:
        progress(0, total)
    max_chars = max(64, chars_per_token * max_seq_length)
    with ShardSink(store, index, summary, total, progress, save_every_s) as sink:
        for start in range(0, total, shard_size):
            ids = np.asarray(pending[start:start + shard_size], dtype=np.int64)
            texts = [embed_text(s, p)[:max_chars] for s, p in store.texts_for(ids)]
            sink.put(ids, embed_unique(embedder, texts))
    if summary.embedded and tier_outgrown(index, store.count("embedded"), embedder.dim, factory, large_factory,
                                          large_threshold, **tier):
        index = sync_index(store, embedder.name, embedder.dim, *index_args, **tier)
    summary.seconds = time.perf_counter() - t0
    summary.index_factory = index.factory
    summary.index_count = index.ntotal
    return summary
