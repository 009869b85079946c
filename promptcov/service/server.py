"""``promptcov serve``: open the store's snapshot, load the model once, run uvicorn."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from promptcov.index.search import Searcher
from promptcov.service.app import create_app
from promptcov.service.auth import token_from_env

__all__ = ["serve", "DEFAULT_HOST", "DEFAULT_PORT"]

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def serve(store_path: str | os.PathLike, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          max_seq_length: int = 128, announce: Callable[[str], None] | None = None) -> int:
    """Serve lookups over ``store_path`` until interrupted; returns the exit status.

    Refuses to start (``InputError``, exit 2) without ``$PROMPTCOV_TOKEN`` or without a
    store that has vectors. The model and index are loaded, and the model warmed, before the
    port opens, so the first request is as fast as the others.
    """
    import faiss
    import uvicorn

    token = token_from_env()
    searcher = Searcher.open(Path(store_path), max_seq_length=max_seq_length)
    searcher.embedder.embed(["warm up"])
    faiss.omp_set_num_threads(1)  # one query per call: threads only add contention between requests
    app = create_app(searcher, token)
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: reachable from other machines; keep the token secret and use TLS in front", host)
    if announce is not None:
        snap = searcher.snapshot
        announce(f"serve: http://{host}:{port} over {store_path} (generation {snap.generation}, "
                 f"{snap.counts.get('embedded', 0)} vectors, model {snap.manifest.get('model')}); "
                 f"schema at /openapi.json; Ctrl-C stops")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    return 0
