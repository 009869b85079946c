"""The persistent embedding cache used by the evaluation scripts."""

from __future__ import annotations

import numpy as np
from embed_cache import CachedEmbedder

from promptcov.index.embedders import HashingEmbedder


class Counting(HashingEmbedder):
    def __init__(self):
        super().__init__(dim=16, name="counting")
        self.seen: list[str] = []

    def embed(self, texts):
        self.seen.extend(texts)
        return super().embed(texts)


def test_cache_returns_the_models_vectors_and_embeds_each_text_once(tmp_path):
    inner = Counting()
    emb = CachedEmbedder(inner, tmp_path)
    texts = ["alpha beta", "gamma", "alpha beta", "delta epsilon"]
    got = emb.embed(texts)
    assert np.allclose(got, HashingEmbedder(dim=16).embed(texts)) and got.dtype == np.float32
    assert sorted(inner.seen) == ["alpha beta", "delta epsilon", "gamma"]
    assert (emb.hits, emb.misses) == (0, 4)
    emb.embed(["gamma", "zeta"])
    assert inner.seen[-1] == "zeta" and (emb.hits, emb.misses) == (1, 5)
    assert emb.embed([]).shape == (0, 16) and emb.name == "counting"


def test_cache_persists_across_instances_in_atomic_shards(tmp_path):
    first = CachedEmbedder(Counting(), tmp_path)
    first.embed(["one", "two"])
    first.flush()
    first.flush()  # nothing new: no empty shard
    shards = list(tmp_path.rglob("shard-*.npz"))
    assert len(shards) == 1 and not list(tmp_path.rglob("*.tmp"))
    inner = Counting()
    second = CachedEmbedder(inner, tmp_path)
    assert len(second) == 2
    assert np.allclose(second.embed(["two", "one"]), first.embed(["two", "one"]))
    assert inner.seen == [] and second.hit_rate == 1.0
    (shards[0].parent / "shard-0-broken.npz").write_bytes(b"not a zip")
    assert len(CachedEmbedder(Counting(), tmp_path)) == 2  # an unreadable shard is skipped
