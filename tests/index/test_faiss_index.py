"""The compressed index tier: IVF-PQ past a threshold, memory-mapped on load, re-ranked exactly from the shards."""

import shutil

import numpy as np
import pytest

from promptcov.index.embed import sync_index
from promptcov.index.faiss_index import VectorIndex, is_compressed, min_train_size
from promptcov.index.rerank import ShardRows
from promptcov.index.store import Store
from tests.index.vectors import clustered

DIM = 32
N = 10_500                      # > 39 * 256, the floor to train a product quantiser
FACTORY = "IDMap2,IVF16,PQ8np"  # 8 sub-vectors of 4 dims: 8 bytes per vector, coarse on purpose


def _write_store(path):
    x = clustered(N, DIM)
    ids = np.arange(N, dtype=np.int64) * 7 + 3          # text ids are not row numbers
    s = Store(path)
    s.bind_model("m", DIM)
    for shard, start in enumerate(range(0, N, 1000)):
        s.write_shard(shard, ids[start:start + 1000], x[start:start + 1000])
    return s, ids, x


@pytest.fixture
def store(tmp_path):
    s, ids, x = _write_store(tmp_path / "store")
    yield s, ids, x
    s.close()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A store whose compressed index is trained once (``FACTORY``, ``rerank_k`` 200): training the
    product quantiser is the slow part, so the tests that only read or damage the index share it."""
    path = tmp_path_factory.mktemp("trained") / "store"
    s, ids, x = _write_store(path)
    built = sync_index(s, "m", DIM, compressed_factory=FACTORY, compressed_threshold=N - 1, nprobe=16,
                       rerank_k=200)
    s.close()
    return path, ids, x, built


@pytest.fixture
def trained_copy(trained, tmp_path):
    """A private copy of :func:`trained` for a test that changes the store or its index."""
    path, ids, x, _ = trained
    s = Store(shutil.copytree(path, tmp_path / "store"), create=False)
    yield s, ids, x
    s.close()


def _exact(x, ids, q, k):
    sims = q @ x.T
    top = np.argsort(-sims, axis=1)[:, :k]
    return np.take_along_axis(sims, top, 1), ids[top]


def test_is_compressed_and_training_floor():
    assert is_compressed(FACTORY) and is_compressed("IDMap2,OPQ48,IVF4096,PQ48")
    assert not is_compressed("IDMap2,IVF4096,Flat") and not is_compressed("IDMap2,Flat")
    assert min_train_size(FACTORY, DIM) == 39 * 256


def test_auto_switches_to_compressed_past_threshold_and_reranks_exactly(trained, trained_copy):
    built = trained[3]  # what sync_index built on the fresh store
    assert built.factory == FACTORY and built.ntotal == N
    s, ids, x = trained_copy
    ix = sync_index(s, "m", DIM, compressed_factory=FACTORY, compressed_threshold=N - 1, nprobe=16, rerank_k=200)
    assert ix.factory == FACTORY and ix.ntotal == N
    q = x[:50] + 0.05 * np.random.default_rng(1).standard_normal((50, DIM)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    want_s, want_i = _exact(x, ids, q, 5)

    loaded = VectorIndex.load(s.index_dir, model="m", dim=DIM)
    assert loaded.mmap_path is not None, "a compressed index is memory-mapped on load"
    assert loaded.rows is not None and loaded.rerank_k == 200
    got_s, got_i = loaded.search(q, k=5)
    np.testing.assert_array_equal(got_i, want_i)             # the top hits are the exact ones
    np.testing.assert_allclose(got_s, want_s, rtol=1e-5, atol=1e-5)  # with their exact similarities

    # without re-ranking the 8-byte codes do visibly worse: the re-ranking is what makes it exact
    approx_s, approx_i = loaded.search(q, k=5, rerank_k=0)
    assert np.mean(approx_i == want_i) < np.mean(got_i == want_i)
    assert not np.allclose(approx_s[:, 0], want_s[:, 0], atol=1e-4)


def test_adding_to_a_memory_mapped_index_reads_it_first(trained_copy):
    s, ids, x = trained_copy
    sync_index(s, "m", DIM, compressed_factory=FACTORY, compressed_threshold=N - 1, nprobe=16)
    loaded = VectorIndex.load(s.index_dir, model="m", dim=DIM)
    new = clustered(3, DIM, seed=9)
    loaded.add(np.array([1, 2, 4]), new)
    assert loaded.mmap_path is None and loaded.ntotal == N + 3
    loaded.save(s.index_dir)
    again = VectorIndex.load(s.index_dir, model="m", dim=DIM)
    assert again.ntotal == N + 3


def test_shard_rows_reads_single_rows_and_reports_unknown_ids(store):
    s, ids, x = store
    rows = ShardRows(s.vectors_dir, DIM, range(11))
    want = np.array([ids[5], 123456789, ids[N - 1], ids[2500]])
    found, vecs = rows.get(want)
    assert found.tolist() == [True, False, True, True]
    np.testing.assert_array_equal(vecs[[0, 2, 3]], x[[5, N - 1, 2500]])
    assert rows.nbytes == 16 * N
    rows.close()


def test_rerank_leaves_out_a_missing_shard_with_approximate_scores(trained_copy, caplog):
    s, ids, x = trained_copy
    sync_index(s, "m", DIM, compressed_factory=FACTORY, compressed_threshold=N - 1, nprobe=16)
    s.shard_path(0).unlink()
    loaded = VectorIndex.load(s.index_dir, model="m", dim=DIM)
    sims, got = loaded.search(x[5000:5001], k=3)
    assert got[0, 0] == ids[5000]
    assert "re-ranking leaves out 1 shard" in caplog.text
