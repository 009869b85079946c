"""The embed job: every stored text without a vector gets one (see :mod:`promptcov.index.embed`)."""

from __future__ import annotations

from promptcov.config import Config
from promptcov.errors import InputError
from promptcov.index.embed import EmbedSummary, embed_pending, index_kwargs
from promptcov.index.embedders import load_embedder
from promptcov.index.snapshot import publish
from promptcov.index.store import Store
from promptcov.pipeline.progress import Progress, ensure_progress
from promptcov.protocols import Embedder

__all__ = ["run_embed", "job_embedder", "EmbedSummary"]


def job_embedder(store: Store, config: Config) -> Embedder:
    """The embedder a job needs: the store's model once it has vectors, else the configured one."""
    e = config.embed
    model = store.manifest().get("model") or e.model
    return load_embedder(model, max_seq_length=e.max_seq_length, batch_size=e.batch_size, device=e.device)


def run_embed(store: Store, config: Config, progress: Progress | None = None, *,
              embedder: Embedder | None = None, engine: str = "local",
              ray_address: str | None = None) -> EmbedSummary:
    """Embed every pending text with ``embedder`` (default: ``config.embed.model``), here or on a
    Ray cluster (``engine="ray"``: a local one without ``ray_address``), then publish the snapshot
    that lookups read."""
    progress = ensure_progress(progress)
    if store.count("texts") == 0:
        raise InputError(f"store {store.path} holds no prompts; run `promptcov ingest LOG` first")
    e, ix = config.embed, config.index
    if engine == "ray":
        from promptcov.index.ray_embed import embed_pending_ray

        summary = embed_pending_ray(store, e, ix, address=ray_address,
                                    progress=lambda done, total: progress.update("embed", done, total))
        publish(store)
        return summary
    if engine != "local":
        raise InputError(f"--engine must be 'local' or 'ray', got {engine!r}")
    if embedder is None:
        embedder = load_embedder(e.model, max_seq_length=e.max_seq_length, batch_size=e.batch_size,
                                 device=e.device)
    summary = embed_pending(store, embedder, shard_size=e.shard_size, chars_per_token=e.chars_per_token,
                            max_seq_length=e.max_seq_length, **index_kwargs(ix),
                            progress=lambda done, total: progress.update("embed", done, total))
    publish(store)
    return summary
