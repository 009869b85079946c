import json

import numpy as np
import pytest

from promptcov.errors import ManifestMismatchError
from promptcov.index.embed import embed_pending, pending_count
from promptcov.index.embedders import HashingEmbedder
from promptcov.index.faiss_index import VectorIndex
from promptcov.index.ingest import ingest_files
from promptcov.index.store import Store


class CountingEmbedder(HashingEmbedder):
    """Counts what it embeds; can be told to die after N calls (a killed job)."""

    def __init__(self, die_after=None):
        super().__init__(dim=32)
        self.die_after = die_after
        self.calls = 0
        self.seen: list[str] = []

    def embed(self, texts):
        if self.die_after is not None and self.calls >= self.die_after:
            raise KeyboardInterrupt
        self.calls += 1
        self.seen.extend(texts)
        return super().embed(texts)


@pytest.fixture
def store(tmp_path, write_jsonl):
    recs = [{"request_id": f"r{i}", "account_id": f"a{i % 5}", "timestamp": 1763284364 + i,
             "prompt": f"question number {i % 45} about topic {i % 45 * 7}" + (" x" * (i % 45))}
            for i in range(120)]
    log = write_jsonl("log.jsonl", [json.dumps(r) for r in recs])
    s = Store(tmp_path / "store")
    ingest_files(s, [log])
    return s


def test_dedup_each_distinct_text_embedded_once(store):
    emb = CountingEmbedder()
    summary = embed_pending(store, emb, shard_size=10)
    assert store.count("texts") == 45
    assert summary.embedded == 45 and len(emb.seen) == 45 and len(set(emb.seen)) == 45
    lengths = [len(t) for t in emb.seen]
    assert lengths == sorted(lengths)  # length-sorted batches
    assert embed_pending(store, emb, shard_size=10).embedded == 0  # nothing twice


def test_interrupted_job_resumes_with_exact_counts(store):
    with pytest.raises(KeyboardInterrupt):
        embed_pending(store, CountingEmbedder(die_after=2), shard_size=10)
    assert store.count("embedded") == 20 and pending_count(store) == 25
    ix = VectorIndex.load(store.index_dir)
    assert ix.ntotal == 20  # saved on the way out
    second = CountingEmbedder()
    summary = embed_pending(store, second, shard_size=10)
    assert summary.embedded == 25 and len(second.seen) == 25
    ix = VectorIndex.load(store.index_dir)
    assert ix.ntotal == 45 == store.count("embedded")
    ids = np.concatenate([i for _, i, _ in store.iter_shards()])
    assert len(ids) == len(np.unique(ids)) == 45


def test_shard_written_but_not_recorded_is_recovered(store):
    """A job killed between the shard file and its bookkeeping loses nothing and redoes nothing."""
    emb = CountingEmbedder()
    embed_pending(store, emb, shard_size=10)
    store.con.execute("DELETE FROM embedded WHERE shard = 4").fetchall()  # as if killed before recording
    (store.index_dir / "manifest.json").unlink()
    again = CountingEmbedder()
    embed_pending(store, again, shard_size=10)
    assert again.seen == [] and store.count("embedded") == 45
    assert VectorIndex.load(store.index_dir).ntotal == 45


def test_store_refuses_a_second_model(store):
    embed_pending(store, CountingEmbedder(), shard_size=50)
    other = HashingEmbedder(dim=32, name="another-model")
    with pytest.raises(ManifestMismatchError, match="hashing-test-embedder.*another-model"):
        embed_pending(store, other)


def test_index_manifest_mismatch_names_both_sides(store):
    embed_pending(store, CountingEmbedder(), shard_size=50)
    with pytest.raises(ManifestMismatchError, match="'hashing-test-embedder'.*'other'"):
        VectorIndex.load(store.index_dir, model="other")
    with pytest.raises(ManifestMismatchError, match="dimension 32 != expected 384"):
        VectorIndex.load(store.index_dir, dim=384)


def test_large_factory_switch_rebuilds_ivf(store):
    # 45 texts train at most one IVF list (FAISS wants 39 vectors per list)
    s = embed_pending(store, CountingEmbedder(), shard_size=10, large_threshold=30,
                      large_factory="IDMap2,IVF1,Flat", nprobe=4)
    assert s.index_factory == "IDMap2,IVF1,Flat" and s.index_count == 45
    ix = VectorIndex.load(store.index_dir)
    _, vecs = store.get_vectors([int(store.con.execute("SELECT min(text_id) FROM texts").fetchall()[0][0])])
    sims, ids = ix.search(vecs, k=1)
    assert sims[0, 0] > 0.99


def test_bad_vectors_raise_value_error():
    ix = VectorIndex(dim=4, model="m")
    with pytest.raises(ValueError, match="shape"):
        ix.add(np.array([1]), np.ones((1, 3), np.float32))
    with pytest.raises(ValueError, match="ids for"):
        ix.add(np.array([1, 2]), np.ones((1, 4), np.float32))
