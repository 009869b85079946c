"""Micro-batching of query embeddings across concurrent requests.

On a CPU, one forward pass over eight short queries costs little more than over one, and
eight threads each running their own pass only fight for the same cores. So concurrent
requests queue their text; whichever request finds the model idle embeds everything queued
(up to ``max_batch``) in one pass and hands each request its vector.
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["EmbedBatcher"]


class EmbedBatcher:
    """Embed single texts from many threads through batched ``embed_fn(texts)`` calls."""

    def __init__(self, embed_fn, max_batch: int = 32):
        self.embed_fn = embed_fn
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: list[dict] = []
        self._busy = False

    def embed_one(self, text: str) -> np.ndarray:
        """The vector of ``text`` (raises what the embedder raised for its batch)."""
        slot = {"text": text, "vec": None, "error": None, "done": False}
        with self._cond:
            self._queue.append(slot)
            while not slot["done"]:
                if self._busy:
                    self._cond.wait()
                    continue
                self._busy = True
                batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
                self._cond.release()
                try:
                    self._run(batch)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
        if slot["error"] is not None:
            raise slot["error"]
        return slot["vec"]

    def _run(self, batch: list[dict]) -> None:
        try:
            vecs = self.embed_fn([s["text"] for s in batch])
            for s, v in zip(batch, vecs, strict=True):
                s["vec"] = v
        except Exception as exc:  # every waiter of this batch gets the error
            for s in batch:
                s["error"] = exc
        for s in batch:
            s["done"] = True
