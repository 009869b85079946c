"""The embed job on Ray Data (``promptcov embed --engine ray [--ray-address ADDR]``).

Same contract as :func:`promptcov.index.embed.embed_pending`: every stored text without a
vector gets one, written as the store's own vector shards, recorded, added to the FAISS index
and saved; the job resumes where it stopped and never stores a text twice.

How it is split: only the driver (this process) opens the store, because DuckDB allows one
writer. The driver reads the pending texts in *waves* (``wave_shards`` shards' worth, 32 by default, shortest first),
cut to the same character budget as the local job, and hands each wave to Ray Data as an
Arrow table; ``map_batches`` runs an actor pool of embedders (each loads the model once;
one GPU per actor when the cluster has GPUs), and the driver streams the results back,
writing one shard per ``shard_size`` vectors. A wave that dies loses only its unwritten shards.

With no address a local cluster is started (``num_cpus`` = this machine's cores, no
dashboard, worker logs not forwarded) and stopped at the end; with an address the job joins
that cluster and leaves it running.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import numpy as np

from promptcov.index.embed import EmbedSummary, ShardSink, index_kwargs, sync_index, tier_outgrown
from promptcov.index.embedders import load_embedder
from promptcov.index.records import embed_text
from promptcov.index.store import Store

__all__ = ["embed_pending_ray", "RayEmbedActor"]

log = logging.getLogger(__name__)


class RayEmbedActor:
    """One embedder per actor: loads the model once, then embeds batches of ``{"text_id", "text"}``."""

    def __init__(self, model: str, max_seq_length: int, batch_size: int, device: str | None, threads: int):
        self.embedder = load_embedder(model, max_seq_length=max_seq_length, batch_size=batch_size, device=device)
        if threads > 0 and not model.startswith("hashing"):  # one torch thread per reserved CPU
            import torch

            torch.set_num_threads(threads)

    def __call__(self, batch: dict) -> dict:
        vecs = self.embedder.embed([str(t) for t in batch["text"]])
        return {"text_id": np.asarray(batch["text_id"], np.int64), "vec": vecs}


def _init_ray(address: str | None):
    """Join ``address`` or start a local cluster; returns ``(ray, started_here)``."""
    try:
        import ray
    except ImportError as exc:
        from promptcov.errors import InputError

        raise InputError("--engine ray needs Ray Data: pip install 'promptcov[ray]' (or 'ray[data]')") from exc
    if ray.is_initialized():
        return ray, False
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    return ray, True


def _pool(ray, device: str | None) -> tuple[int, float, int]:
    """``(actors, gpus per actor, torch threads per actor)`` for the cluster we are on."""
    res = ray.cluster_resources()
    gpus, cpus = int(res.get("GPU", 0)), int(res.get("CPU", 1))
    if gpus > 0 and device != "cpu":
        return gpus, 1.0, 1
    return max(1, cpus), 0.0, 1


def embed_pending_ray(store: Store, embed_cfg, index_cfg, address: str | None = None,
                      progress: Callable[[int, int], None] | None = None, wave_shards: int | None = None,
                      save_every_s: float = 60.0) -> EmbedSummary:
    """Embed every text that has no vector yet on Ray; ``embed_cfg``/``index_cfg`` as in the config."""
    t0 = time.perf_counter()
    e = embed_cfg
    probe = load_embedder(e.model, max_seq_length=e.max_seq_length, batch_size=e.batch_size, device=e.device)
    name, dim = probe.name, probe.dim
    del probe
    store.reconcile_shards()
    store.bind_model(name, dim)
    summary = EmbedSummary(already=store.count("embedded"))
    pending = store.con.execute(
        "SELECT t.text_id FROM texts t ANTI JOIN embedded e ON t.text_id = e.text_id "
        "ORDER BY length(t.prompt) + length(t.system), t.text_id").fetchnumpy()["text_id"]
    index = sync_index(store, name, dim, **index_kwargs(index_cfg))
    total = len(pending)
    if progress is not None:
        progress(0, total)
    if total == 0:
        return _finish(summary, index, t0)
    ray, started = _init_ray(address)
    try:
        actors, gpus, threads = _pool(ray, e.device)
        wave = e.shard_size * (wave_shards or max(32, 4 * actors))
        log.info("ray embed: %d texts, %d actor(s), %.0f GPU each, waves of %d", total, actors, gpus, wave)
        max_chars = max(64, e.chars_per_token * e.max_seq_length)
        with ShardSink(store, index, summary, total, progress, save_every_s) as sink:
            for start in range(0, total, wave):
                ids = np.asarray(pending[start:start + wave], dtype=np.int64)
                texts = [embed_text(s, p)[:max_chars] for s, p in store.texts_for(ids)]
                for out_ids, vecs in _run_wave(ray, ids, texts, e, actors, gpus, threads, name):
                    sink.put(out_ids, vecs)
    finally:
        if started:
            ray.shutdown()
    if summary.embedded and tier_outgrown(index, store.count("embedded"), dim, **index_kwargs(index_cfg)):
        index = sync_index(store, name, dim, **index_kwargs(index_cfg))  # the next tier, as the local job does
    return _finish(summary, index, t0)


def _run_wave(ray, ids: np.ndarray, texts: list[str], e, actors: int, gpus: float, threads: int, name: str):
    """Yield ``(ids, vecs)`` blocks of up to ``e.shard_size`` rows embedded by the actor pool."""
    import pyarrow as pa

    ds = ray.data.from_arrow(pa.table({"text_id": ids, "text": texts}))
    ds = ds.map_batches(RayEmbedActor, batch_size=max(e.batch_size, 256), batch_format="numpy",
                        fn_constructor_kwargs={"model": name, "max_seq_length": e.max_seq_length,
                                               "batch_size": e.batch_size, "device": e.device, "threads": threads},
                        compute=ray.data.ActorPoolStrategy(size=min(actors, max(1, len(ids) // max(e.batch_size, 256)))),
                        num_gpus=gpus or None, num_cpus=None if gpus else threads)
    seen = 0
    for batch in ds.iter_batches(batch_size=e.shard_size, batch_format="numpy"):
        out_ids = np.asarray(batch["text_id"], np.int64)
        vecs = np.ascontiguousarray(np.stack(list(batch["vec"])) if batch["vec"].dtype == object else batch["vec"],
                                    dtype=np.float32)
        seen += len(out_ids)
        yield out_ids, vecs
    if seen != len(ids):
        from promptcov.errors import JobError

        raise JobError(f"ray embed: a wave of {len(ids)} texts returned {seen} vectors")


def _finish(summary: EmbedSummary, index, t0: float) -> EmbedSummary:
    summary.seconds = time.perf_counter() - t0
    summary.index_factory = index.factory
    summary.index_count = index.ntotal
    return summary
