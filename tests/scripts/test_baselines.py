"""Tests for the literature baselines: PRADA, stateful k-NN and request volume."""

from __future__ import annotations

import baselines
import numpy as np
import pytest
from baselines import (
    knn_distances,
    knn_scores,
    mmd2_unbiased,
    mmd_scores,
    mmd_threshold,
    prada_distances,
    prada_scores,
    rbf_bandwidth,
    volume_scores,
)

from promptcov.coverage.frame import RequestFrame
from promptcov.errors import InputError

T0 = 1_763_251_200.0


def _norm(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _frame(accounts: dict[str, np.ndarray]) -> RequestFrame:
    acc, ts, rows, vecs = [], [], [], []
    for name, x in accounts.items():
        for i, v in enumerate(x):
            acc.append(name)
            ts.append(T0 + i * 60.0)
            rows.append(len(vecs))
            vecs.append(v)
    cols = {"account_id": acc, "ts": ts, "text_id": np.arange(len(acc)), "vec_row": rows}
    return RequestFrame.from_columns(cols, vectors=np.array(vecs, dtype=np.float32))


def _organic_and_sweep(seed=0, n=200, dim=32):
    rng = np.random.default_rng(seed)
    organic = _norm(rng.normal(size=(n, dim)))  # spread-out, unrelated questions
    seeds = _norm(rng.normal(size=(8, dim)))  # a sweep: small variations around a few seeds
    sweep = _norm(seeds[rng.integers(0, 8, n)] + 0.05 * rng.normal(size=(n, dim)))
    return organic, sweep


def test_prada_and_knn_distances_match_brute_force_across_blocks(monkeypatch):
    monkeypatch.setattr(baselines, "_BLOCK", 7)  # force several blocks on a small input
    x = _norm(np.random.default_rng(1).normal(size=(40, 8)))
    dist = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=2)
    want_min = [dist[i, :i].min() for i in range(1, 40)]
    want_knn = [np.sort(dist[i, :i])[:5].mean() for i in range(1, 40)]
    assert np.allclose(prada_distances(x), want_min, atol=1e-5)
    got = knn_distances(x, k=5)
    assert np.isnan(got[0]) and np.allclose(got[1:], want_knn, atol=1e-5)


def test_prada_distances_on_a_crafted_sequence():
    e = np.eye(3, dtype=np.float32)
    d = prada_distances(np.stack([e[0], e[1], e[0], e[2]]))
    assert np.allclose(d, [np.sqrt(2), 0.0, np.sqrt(2)])


def test_prada_scores_non_normal_distances_higher():
    organic, sweep = _organic_and_sweep()
    ids, scores = prada_scores(_frame({"organic": organic, "sweep": sweep, "tiny": organic[:5]}))
    got = dict(zip(ids, scores, strict=True))
    assert list(ids) == ["organic", "sweep", "tiny"]
    assert got["sweep"] > 0.4 > 0.1 > got["organic"] >= 0.0
    assert got["tiny"] == 0.0  # too few queries for the test


def test_prada_degenerate_repeats_score_zero():
    v = _norm(np.ones((30, 4)))
    _, scores = prada_scores(_frame({"repeat": v}))
    assert scores.tolist() == [0.0]


def test_knn_scores_near_duplicate_cluster_is_most_suspicious():
    organic, sweep = _organic_and_sweep(2)
    ids, scores = knn_scores(_frame({"organic": organic, "sweep": sweep, "few": organic[:3]}), k=5, window=20)
    got = dict(zip(ids, scores, strict=True))
    assert -2.0 <= got["organic"] < got["sweep"] <= 0.0
    assert got["sweep"] > -0.6 and got["organic"] < -1.0
    assert got["few"] == -2.0


def test_volume_scores_count_requests():
    organic, sweep = _organic_and_sweep(3, n=20)
    ids, scores = volume_scores(_frame({"b": sweep[:7], "a": organic}))
    assert list(ids) == ["a", "b"] and scores.tolist() == [20.0, 7.0]


def test_bad_input():
    with pytest.raises(InputError):
        prada_scores("frame")
    with pytest.raises(InputError):
        volume_scores(None)
    with pytest.raises(InputError):
        knn_scores(_frame({"a": _norm(np.ones((3, 4)))}), k=0)
    frame = _frame({"a": _norm(np.ones((3, 4)))})
    frame.vectors = np.zeros((0, 0), dtype=np.float32)
    with pytest.raises(InputError, match="embed"):
        knn_scores(frame)
    with pytest.raises(ValueError):
        knn_distances(np.ones(3))


def _mmd2_brute(x, y, sigma):
    def k(a, b):
        return np.exp(-np.sum((a - b) ** 2) / (2 * sigma * sigma))

    m, n = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kxy = sum(k(a, b) for a in x for b in y) / (m * n)
    return kxx + kyy - 2 * kxy


def test_mmd2_unbiased_matches_the_formula_and_bandwidth_is_the_median_distance():
    rng = np.random.default_rng(4)
    x, y = _norm(rng.normal(size=(9, 6))), _norm(rng.normal(size=(12, 6)) + 0.5)
    assert mmd2_unbiased(x, y, 0.7) == pytest.approx(_mmd2_brute(x.astype(float), y.astype(float), 0.7), rel=1e-9)
    d = [np.linalg.norm(y[i] - y[j]) for i in range(12) for j in range(i + 1, 12)]
    assert rbf_bandwidth(y) == pytest.approx(np.median(d), rel=1e-6)
    with pytest.raises(ValueError):
        mmd2_unbiased(x[:1], y, 1.0)
    with pytest.raises(InputError):
        rbf_bandwidth(y[:1])


def test_mmd_same_distribution_near_zero_shifted_distribution_positive():
    rng = np.random.default_rng(5)
    ref = _norm(rng.normal(size=(400, 16)))
    same = _norm(rng.normal(size=(150, 16)))
    organic, sweep = _organic_and_sweep(6, n=150, dim=16)
    sigma = rbf_bandwidth(ref)
    assert abs(mmd2_unbiased(same, ref, sigma)) < 0.01
    assert mmd2_unbiased(sweep, ref, sigma) > 10 * max(abs(mmd2_unbiased(same, ref, sigma)), 1e-3)


def test_mmd_scores_rank_a_sweep_first_and_threshold_is_calibrated_on_benign():
    rng = np.random.default_rng(7)
    ref = _norm(rng.normal(size=(300, 32)))
    organic, sweep = _organic_and_sweep(8, n=400)
    accounts = {f"benign{i}": _norm(rng.normal(size=(30, 32))) for i in range(20)}
    accounts.update({"sweep": sweep, "big_organic": organic, "one": organic[:1]})
    ids, scores = mmd_scores(_frame(accounts), ref, max_queries=200)
    got = dict(zip(ids, scores, strict=True))
    assert got["one"] == 0.0  # one query: no evidence
    assert got["sweep"] > max(v for k, v in got.items() if k != "sweep")
    benign = np.array([got[f"benign{i}"] for i in range(20)])
    thr = mmd_threshold(benign, fpr=0.1)
    assert np.mean(benign > thr) <= 0.1 and got["sweep"] > thr
    with pytest.raises(InputError):
        mmd_threshold(np.array([]), 0.01)
    with pytest.raises(InputError):
        mmd_scores(_frame(accounts), ref, max_queries=1)
