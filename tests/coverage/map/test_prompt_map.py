"""Tests of the prompt-space map (promptcov.coverage.map.prompt_map) and stable ids (stability).

One real UMAP + HDBSCAN map on 1,500 small vectors is shared by the module (UMAP compiles numba
code on its first call); other tests plug in PCA + HDBSCAN, which fit in milliseconds.
"""

from __future__ import annotations

import hdbscan
import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

from promptcov.coverage.map.prompt_map import PromptMap, resolve_min_cluster_size
from promptcov.coverage.map.stability import match_clusters
from promptcov.errors import InputError, ManifestMismatchError, NotFittedError

DIM = 32


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def blobs(n: int, centres: np.ndarray, seed: int, spread: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit vectors around the given unit centres (cosine to the centre ~0.8) and their blob."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(centres), n)
    x = centres[truth] + spread * rng.standard_normal((n, centres.shape[1]))
    return unit(x), truth


def centres(k: int, seed: int = 1) -> np.ndarray:
    return unit(np.random.default_rng(seed).standard_normal((k, DIM)))


def cheap_map(**kw) -> PromptMap:
    return PromptMap(reducer=PCA(5, random_state=0), clusterer=hdbscan.HDBSCAN(min_cluster_size=20), **kw)


@pytest.fixture(scope="module")
def data():
    return blobs(1500, centres(5), seed=2)


@pytest.fixture(scope="module")
def umap_map(data):
    x, _ = data
    return PromptMap(sample_size=1200, n_neighbors=10, seed=0).fit(x)


def test_real_map_finds_the_blobs(umap_map, data):
    x, truth = data
    assert len(umap_map.cluster_ids_) == 5
    assert umap_map.resolved_min_cluster_size_ == resolve_min_cluster_size(1200) == 10
    assert len(umap_map.sample_index_) == 1200 and np.all(np.diff(umap_map.sample_index_) > 0)
    sample_truth = truth[umap_map.sample_index_]
    member = umap_map.labels_ >= 0
    assert member.mean() > 0.9
    assert adjusted_rand_score(sample_truth[member], umap_map.labels_[member]) > 0.95
    c = umap_map.centroids_
    assert c.dtype == np.float32 and c.shape == (5, DIM)
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.0, rtol=1e-5)
    assert umap_map.radius_.shape == (5,) and np.all((umap_map.radius_ > 0) & (umap_map.radius_ < 0.5))
    assert umap_map.layout_.shape == (5, 2)


def test_same_seed_same_labels(umap_map, data):
    x, _ = data
    again = PromptMap(sample_size=1200, n_neighbors=10, seed=0).fit(x)
    np.testing.assert_array_equal(again.sample_index_, umap_map.sample_index_)
    np.testing.assert_array_equal(again.labels_, umap_map.labels_)
    np.testing.assert_array_equal(again.predict(x), umap_map.predict(x))


def test_predict_agrees_with_fitted_labels_and_truth(umap_map, data):
    x, truth = data
    pred = umap_map.predict(x)
    assert pred.dtype == np.int64 and pred.shape == (len(x),)
    on_sample = pred[umap_map.sample_index_]
    member = umap_map.labels_ >= 0
    assert np.mean(on_sample[member] == umap_map.labels_[member]) > 0.9
    held_out = np.setdiff1d(np.arange(len(x)), umap_map.sample_index_)
    assert np.mean(pred[held_out] >= 0) > 0.9
    assert adjusted_rand_score(truth[held_out], pred[held_out]) > 0.9


def test_noise_stays_noise(umap_map):
    far = unit(np.random.default_rng(9).standard_normal((200, DIM)))
    assert np.all(umap_map.predict(far) == -1)


def test_hdbscan_assignment(data):
    # PCA keeps this fast; UMAP's transform is exercised by scripts/bench_map.py
    x, truth = data
    m = cheap_map(sample_size=800, assign="hdbscan").fit(x)
    assert m.clusterer_.prediction_data
    held_out = np.setdiff1d(np.arange(len(x)), m.sample_index_)
    pred = m.predict(x[held_out], batch_size=128)
    assert np.mean(pred >= 0) > 0.8
    ok = pred >= 0
    assert adjusted_rand_score(truth[held_out][ok], pred[ok]) > 0.9
    with pytest.raises(InputError, match="hdbscan"):
        PromptMap(reducer=PCA(5), clusterer=PCA(2), assign="hdbscan").fit(x)


def test_batches_memmap_and_iter_predict(tmp_path, data):
    x, _ = data
    m = cheap_map(sample_size=600).fit(x)
    full = m.predict(x)
    np.testing.assert_array_equal(m.predict(x, batch_size=7), full)
    np.testing.assert_array_equal(np.concatenate(list(m.iter_predict([x[:100], x[100:]]))), full)
    mm = np.lib.format.open_memmap(tmp_path / "v.npy", mode="w+", dtype=np.float32, shape=x.shape)
    mm[:] = x
    np.testing.assert_array_equal(cheap_map(sample_size=600).fit(mm).predict(mm, batch_size=500), full)


def test_assign_max_distance_modes(data):
    x, _ = data
    far = unit(np.random.default_rng(3).standard_normal((50, DIM)))
    assert np.all(cheap_map(assign_max_distance=None).fit(x).predict(far) >= 0)
    assert np.all(cheap_map(assign_max_distance=0.5).fit(x).predict(far) == -1)
    tight = cheap_map(assign_max_distance=1e-4).fit(x)
    assert np.mean(tight.predict(x) == -1) > 0.99


def test_passed_estimators_are_not_fitted(data):
    x, _ = data
    reducer = PCA(5)
    PromptMap(reducer=reducer, clusterer=hdbscan.HDBSCAN(min_cluster_size=20)).fit(x)
    assert not hasattr(reducer, "components_")


def test_weights_bias_the_sample(data):
    x, _ = data
    w = np.ones(len(x))
    w[:100] = 10_000.0
    a = cheap_map(sample_size=150, seed=4).fit(x, weights=w)
    b = cheap_map(sample_size=150, seed=4).fit(x, weights=w)
    np.testing.assert_array_equal(a.sample_index_, b.sample_index_)
    assert np.mean(a.sample_index_ < 100) > 0.5
    uniform = cheap_map(sample_size=150, seed=4).fit(x)
    assert np.mean(uniform.sample_index_ < 100) < 0.2


def test_no_cluster_means_all_noise(data):
    x, _ = data
    m = PromptMap(reducer=PCA(2), clusterer=hdbscan.HDBSCAN(min_cluster_size=1400)).fit(x)
    assert len(m.cluster_ids_) == 0 and m.centroids_.shape == (0, DIM)
    assert np.all(m.predict(x[:10]) == -1)


def test_bad_input_and_not_fitted(data):
    x, _ = data
    with pytest.raises(NotFittedError):
        PromptMap().predict(x)
    with pytest.raises(NotFittedError):
        PromptMap().match_previous(x[:2], np.array([0, 1]))
    with pytest.raises(InputError):
        PromptMap().fit(x[0])
    with pytest.raises(InputError):
        PromptMap(assign="knn").fit(x)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError):
        cheap_map().fit(bad)
    with pytest.raises(InputError):
        PromptMap(n_neighbors=15).fit(x[:10])
    with pytest.raises(InputError):
        cheap_map().fit(x, weights=np.ones(3))
    m = cheap_map().fit(x)
    with pytest.raises(ValueError, match="32 dimensions.*16"):
        m.predict(x[:, :16])


def test_match_previous_keeps_ids_and_marks_new_region():
    base = centres(5, seed=7)
    a, _ = blobs(1200, base[:4], seed=11)
    b, _ = blobs(300, base[4:], seed=12)
    old = cheap_map(seed=1).fit(a)
    old.match_previous(old.centroids_[:0], np.zeros(0, dtype=np.int64))  # no previous map: ids from 0
    old_ids = old.cluster_ids_ + 100  # pretend an earlier history
    new = cheap_map(seed=5).fit(np.concatenate([b, a]))
    new.match_previous(old.centroids_, old_ids)
    assert len(new.cluster_ids_) == 5
    # every old region keeps its id
    for j, oid in enumerate(old_ids):
        nearest = int(np.argmax(new.centroids_ @ old.centroids_[j]))
        assert new.cluster_ids_[nearest] == oid and new.is_new_[int(oid)] is False
    # B's region is the one new cluster, with a fresh id above every previous one
    b_label = np.bincount(new.predict(b)[new.predict(b) >= 0]).argmax()
    assert b_label == old_ids.max() + 1 and new.is_new_[int(b_label)] is True
    assert sum(new.is_new_.values()) == 1
    assert set(new.labels_[new.labels_ >= 0]) <= set(new.cluster_ids_.tolist())
    assert sorted(new.id_map_.values()) == sorted(new.cluster_ids_.tolist())
    # re-matching is deterministic and idempotent; sample labels follow the ids
    labels = new.labels_.copy()
    new.match_previous(old.centroids_, old_ids)
    np.testing.assert_array_equal(new.labels_, labels)
    np.testing.assert_array_equal(new.predict(a[:50]), new.predict(a[:50]))


def test_match_clusters_floor_order_and_next_id():
    prev = np.eye(4, dtype=np.float32)
    moved = unit(np.array([[1.0, 0.2, 0, 0], [0, 0, 0, 1.0], [0, 1.0, 1.0, 0]], dtype=np.float32))
    ids, is_new = match_clusters(moved, prev, np.array([3, 5, 7, 9]), min_similarity=0.9)
    assert ids.tolist() == [3, 9, 10] and is_new.tolist() == [False, False, True]
    ids, _ = match_clusters(moved, prev, np.array([3, 5, 7, 9]), min_similarity=0.9, next_id=50)
    assert ids.tolist() == [3, 9, 50]
    ids, is_new = match_clusters(moved, prev, np.array([3, 5, 7, 9]), min_similarity=0.99)
    assert ids.tolist() == [10, 9, 11] and is_new.tolist() == [True, False, True]
    with pytest.raises(ValueError, match="4 dimensions.*3"):
        match_clusters(moved, prev[:, :3], np.array([3, 5, 7, 9]))
    with pytest.raises(ValueError, match="unique"):
        match_clusters(moved, prev, np.array([1, 1, 2, 3]))


def test_save_load_round_trip(tmp_path, umap_map, data):
    x, _ = data
    umap_map.save(tmp_path / "map")
    loaded = PromptMap.load(tmp_path / "map", dim=DIM)
    np.testing.assert_array_equal(loaded.predict(x), umap_map.predict(x))
    np.testing.assert_array_equal(loaded.cluster_ids_, umap_map.cluster_ids_)
    np.testing.assert_array_equal(loaded.labels_, umap_map.labels_)
    assert loaded.is_new_ == umap_map.is_new_ and loaded.id_map_ == umap_map.id_map_
    assert loaded.get_params()["sample_size"] == 1200
    assert type(loaded.reducer_).__name__ == "UMAP" and loaded.reducer_.n_components == 5
    assert isinstance(loaded.clusterer_, hdbscan.HDBSCAN)
    with pytest.raises(ManifestMismatchError, match="32.*384"):
        PromptMap.load(tmp_path / "map", dim=384)
    with pytest.raises(InputError, match="no fitted map"):
        PromptMap.load(tmp_path / "empty")


def test_save_load_custom_estimators(tmp_path, data):
    x, _ = data
    m = cheap_map().fit(x)
    m.match_previous(m.centroids_[:2], np.array([40, 41]))
    m.save(tmp_path)
    loaded = PromptMap.load(tmp_path)
    assert isinstance(loaded.reducer, PCA)
    np.testing.assert_array_equal(loaded.predict(x), m.predict(x))
    assert loaded.is_new_ == m.is_new_
