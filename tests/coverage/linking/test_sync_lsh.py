"""Synchrony candidates by MinHash/LSH banding: planted pairs are found, the candidate count is bounded."""

import numpy as np
import pytest
import scipy.sparse as sp

from promptcov.coverage.linking.cooccurrence import timing_links
from promptcov.coverage.linking.params import LinkParams
from promptcov.coverage.linking.sync_lsh import lsh_pairs, product_entries, recall

T0 = 600.0 * 2_833_334  # on a bin boundary


def _occupancy(sets, n_bins):
    rows = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    return sp.csr_matrix((np.ones(len(rows)), (rows, np.concatenate(sets))), shape=(len(sets), n_bins))


def _busy_window(rng, n_acc=2000, n_bins=1008, per_acc=40):
    """Random accounts, each active in ``per_acc`` of ``n_bins`` bins; accounts 0..3 share one schedule."""
    sets = [rng.choice(n_bins, per_acc, replace=False) for _ in range(n_acc)]
    shared = rng.choice(n_bins, per_acc, replace=False)
    for a in range(4):  # one scheduler: 36 of 40 bins in common (Jaccard ~ 0.8)
        sets[a] = np.unique(np.r_[shared[:36], rng.choice(n_bins, 4, replace=False)])
    return sets


def test_lsh_finds_planted_synchronised_accounts_among_random_ones_with_few_candidates():
    rng = np.random.default_rng(3)
    sets = _busy_window(rng)
    x = _occupancy(sets, 1008)
    r, c = lsh_pairs(x, seed=1)
    pairs = set(zip(r.tolist(), c.tolist(), strict=True))
    assert {(a, b) for a in range(4) for b in range(a + 1, 4)} <= pairs
    n = x.shape[0]
    assert np.all(r < c) and len(pairs) == len(r)
    # the product would list every pair sharing a bin (~80% of all pairs here); LSH a few percent of that
    assert product_entries(x) > 0.5 * n * (n - 1) / 2
    assert len(r) < 0.01 * n * (n - 1) / 2


def test_a_crowded_bucket_yields_at_most_max_bucket_pairs_per_member_and_band():
    x = _occupancy([np.arange(10)] * 50, 20)  # 50 identical accounts: one bucket in every band
    r, c = lsh_pairs(x, bands=1, rows=2, max_bucket=3, seed=0)
    assert 0 < len(r) <= 50 * 3 < 50 * 49 // 2
    r, c = lsh_pairs(x, bands=1, rows=2, max_bucket=49, seed=0)
    assert len(r) == 50 * 49 // 2  # a bucket of up to max_bucket + 1 members gives all its pairs
    with pytest.raises(ValueError):
        lsh_pairs(x, bands=0)


def test_recall_formula():
    assert recall(0.5, 160, 4) > 0.9999 and recall(0.02, 160, 4) < 1e-4
    assert recall(1.0, 1, 5) == pytest.approx(1.0)


def test_timing_links_through_lsh_keep_the_synchronised_pairs_of_the_exact_product():
    rng = np.random.default_rng(5)
    sets = _busy_window(rng, n_acc=600)
    acc = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    ts = T0 + np.concatenate(sets) * 600.0 + rng.uniform(0, 600, len(acc))
    exact, shared_exact = timing_links(acc, ts, len(sets))
    lsh, shared_lsh = timing_links(acc, ts, len(sets), exact_pairs=0)
    assert {(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)} <= set(shared_exact)
    assert {(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)} <= set(shared_lsh) <= set(shared_exact)
    same = list(shared_lsh)
    e, g = exact.tocsr(), lsh.tocsr()
    assert all(e[a, b] == pytest.approx(g[a, b]) and shared_exact[(a, b)] == shared_lsh[(a, b)] for a, b in same)


def test_link_params_reject_empty_lsh_settings():
    with pytest.raises(ValueError):
        LinkParams(timing_lsh_rows=0)


def test_timing_links_scored_in_small_chunks_equal_one_chunk_and_shared_counts_can_be_skipped():
    rng = np.random.default_rng(9)
    sets = _busy_window(rng, n_acc=300)
    acc = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    ts = T0 + np.concatenate(sets) * 600.0 + rng.uniform(0, 600, len(acc))
    for exact in (1e18, 0):
        big, shared = timing_links(acc, ts, len(sets), exact_pairs=exact)
        small, none = timing_links(acc, ts, len(sets), exact_pairs=exact, chunk_cells=50, shared_counts=False)
        assert none == {} and len(shared) == big.nnz >= 6
        assert np.allclose(big.toarray(), small.toarray())
