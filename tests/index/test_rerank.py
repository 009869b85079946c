"""Exact re-ranking of the compressed tier: batched gathers, bounded file handles, the SQ8 default."""

import numpy as np
import pytest

from promptcov.config import IndexConfig
from promptcov.index.embed import COMPRESSED_FACTORY, COMPRESSED_NPROBE, RERANK_K, index_kwargs, sync_index
from promptcov.index.faiss_index import VectorIndex, is_compressed, min_train_size
from promptcov.index.rerank import ShardRows, rerank
from promptcov.index.store import Store
from tests.index.vectors import clustered

DIM = 32
N = 4_000
SQ8 = "IDMap2,IVF16,SQ8"


@pytest.fixture
def store(tmp_path):
    x = clustered(N, DIM)
    ids = np.arange(N, dtype=np.int64) * 7 + 3
    s = Store(tmp_path / "store")
    s.bind_model("m", DIM)
    for shard, start in enumerate(range(0, N, 250)):   # 16 shards
        s.write_shard(shard, ids[start:start + 250], x[start:start + 250])
    yield s, ids, x
    s.close()


@pytest.mark.parametrize("prefetch", [True, False])
def test_shard_rows_reads_across_more_shards_than_open_handles(store, prefetch):
    s, ids, x = store
    rows = ShardRows(s.vectors_dir, DIM, range(16), max_open=3, prefetch=prefetch)
    pick = np.random.default_rng(2).choice(N, 300)          # every shard, in random order, with repeats
    found, vecs = rows.get(ids[pick])
    assert found.all()
    np.testing.assert_array_equal(vecs, x[pick])
    rows.close()


def test_rerank_of_a_batch_matches_exact_scores_per_query(store):
    s, ids, x = store
    rows = ShardRows(s.vectors_dir, DIM, range(16))
    rng = np.random.default_rng(3)
    q = x[:4] + 0.1 * rng.standard_normal((4, DIM)).astype(np.float32)
    cand = np.stack([rng.choice(N, 20, replace=False) for _ in range(4)])
    cid = ids[cand]
    cid[1, 5:] = -1                              # a query with fewer candidates than the others
    cid[2, 0] = 999_999_999                      # an id no shard holds: keeps its approximate similarity
    approx = np.full(cid.shape, -5.0, np.float32)
    approx[2, 0] = 7.0
    sims, got = rerank(q, approx, cid, rows, k=6)
    for i in range(4):
        ok = cid[i] >= 0
        score = np.where(cid[i, ok] == 999_999_999, 7.0, (x[cand[i, ok]] @ q[i]))
        order = np.argsort(-score, kind="stable")[:6]
        want_i = np.full(6, -1)
        want_i[:len(order)] = cid[i, ok][order]
        np.testing.assert_array_equal(got[i], want_i)
        np.testing.assert_allclose(sims[i, :len(order)], score[order], rtol=1e-5)
    assert got[2, 0] == 999_999_999 and sims[2, 0] == pytest.approx(7.0)
    assert (got[1, 5:] == -1).all() and np.isneginf(sims[1, 5:]).all()


def test_sq8_tier_is_compressed_memory_mapped_and_exact_after_rerank(store):
    s, ids, x = store
    assert is_compressed(SQ8) and is_compressed(COMPRESSED_FACTORY) and min_train_size(SQ8, DIM) == 39 * 16
    ix = sync_index(s, "m", DIM, compressed_factory=SQ8, compressed_threshold=N - 1, nprobe=2,
                    compressed_nprobe=8, rerank_k=40)
    assert ix.factory == SQ8 and ix.nprobe == 8, "the compressed tier is probed with compressed_nprobe"
    loaded = VectorIndex.load(s.index_dir, model="m", dim=DIM)
    assert loaded.mmap_path is not None and loaded.rows is not None and loaded.nprobe == 8
    q = x[100:140] + 0.05 * np.random.default_rng(4).standard_normal((40, DIM)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    exact = q @ x.T
    want = ids[np.argsort(-exact, axis=1)[:, :5]]
    got_s, got_i = loaded.search(q, k=5)
    np.testing.assert_array_equal(got_i, want)
    np.testing.assert_allclose(got_s, -np.sort(-exact, axis=1)[:, :5], atol=1e-5)
    # the codes alone: ranks close but similarities off by SQ8's rounding, which the re-ranking removes
    approx_s, _ = loaded.search(q, k=5, rerank_k=0)
    assert not np.allclose(approx_s, got_s, atol=1e-6)


def test_large_tier_keeps_nprobe_and_index_kwargs_carries_every_key(store):
    s, ids, x = store
    ix = sync_index(s, "m", DIM, large_factory="IDMap2,IVF16,Flat", large_threshold=10, nprobe=3,
                    compressed_nprobe=8)
    assert ix.factory == "IDMap2,IVF16,Flat" and ix.nprobe == 3
    cfg = IndexConfig(compressed_factory=SQ8, compressed_threshold=100, compressed_nprobe=5, rerank_k=7)
    assert index_kwargs(cfg)["compressed_nprobe"] == 5
    sync_index(s, "m", DIM, rebuild=True, **index_kwargs(cfg))     # as `verify --repair` and `--engine ray` do
    again = VectorIndex.load(s.index_dir, model="m", dim=DIM)
    assert (again.factory, again.nprobe, again.rerank_k) == (SQ8, 5, 7), "every [index] key reaches the rebuild"


def test_defaults_agree_with_the_config():
    cfg = IndexConfig()
    assert (cfg.compressed_factory, cfg.compressed_nprobe, cfg.rerank_k) == (COMPRESSED_FACTORY, COMPRESSED_NPROBE,
                                                                            RERANK_K)
