"""Tests for the linker's scale path: streamed candidate pairs, folded EM rows, identifier joins, /24 parsing.

Each fast path is checked against the plain computation it replaces.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from promptcov.coverage.linking import evidence as ev
from promptcov.coverage.linking.fellegi_sunter import Family, fit_fs
from promptcov.coverage.linking.linker import AccountLinker
from promptcov.coverage.linking.pairs import Sources, candidate_blocks, row_blocks, triu_entries
from tests.coverage.linking.test_linker import DAY, T0, Builder


def _random_incidence(rng, n_acc, n_val, max_vals, density=0.5):
    rows, cols = [], []
    for a in range(n_acc):
        if rng.random() < density:
            k = int(rng.integers(1, max_vals + 1))
            for v in rng.choice(n_val, size=k, replace=False):
                rows.append(a)
                cols.append(int(v))
    bits = rng.uniform(0.5, 20.0, n_val)
    return sp.csr_matrix((bits[cols], (rows, cols)), shape=(n_acc, n_val))


def _reference_max_bits(mat, rows, cols):
    """The former implementation: sparse row copies multiplied, max per row."""
    prod = mat[rows].multiply(mat[cols]).tocsr()
    out = np.zeros(len(rows))
    nz = np.diff(prod.indptr) > 0
    if nz.any():
        out[nz] = np.sqrt(np.asarray(prod[np.flatnonzero(nz)].max(axis=1).todense()).ravel())
    return out


def test_pair_max_bits_matches_sparse_products_for_single_and_multi_valued_accounts():
    rng = np.random.default_rng(0)
    for max_vals in (1, 4):
        mat = _random_incidence(rng, 300, 40, max_vals)
        rows = rng.integers(0, 300, 5000)
        cols = rng.integers(0, 300, 5000)
        got = ev.pair_max_bits(mat, rows, cols)
        assert np.array_equal(got, _reference_max_bits(mat, rows, cols))
        assert (got > 0).sum() > 20  # the test compares real overlaps, not only zeros


def test_pair_max_bits_small_join_blocks_give_the_same_answer():
    rng = np.random.default_rng(1)
    mat = _random_incidence(rng, 200, 30, 5, density=0.9)
    rows, cols = rng.integers(0, 200, 3000), rng.integers(0, 200, 3000)
    nv = np.diff(mat.indptr)
    m = mat.copy()
    m.sort_indices()
    full = ev._max_shared(m, nv, rows, cols)
    assert np.array_equal(ev._max_shared(m, nv, rows, cols, block=7), full)
    bitset_max = ev._BITSET_MAX
    try:  # the binary-search path (tables too large for a lookup) gives the same answers
        ev._BITSET_MAX = 0
        assert np.array_equal(ev._max_shared(m, nv, rows, cols), full)
        assert np.array_equal(ev._max_shared(m, nv, rows, cols, count=True),
                              _count_reference(m, rows, cols))
    finally:
        ev._BITSET_MAX = bitset_max
    assert np.array_equal(ev._max_shared(m, nv, rows, cols, count=True), _count_reference(m, rows, cols))


def _count_reference(mat, rows, cols):
    held = (mat > 0).astype(np.float64)
    return np.asarray((held[rows].multiply(held[cols])).sum(axis=1)).ravel()


def test_prefixes_equal_ipaddress_for_ipv4_ipv6_and_junk():
    values = np.array(["1.2.3.4", " 10.0.0.255 ", "256.1.1.1", "01.2.3.4", "1.2.3", "::1", "2001:db8::1",
                       "junk", "", None, "1.2.3.4.5", "0.0.0.0", "255.255.255.255", "1.2.3.4/24",
                       "\u0661.2.3.4", "fe80::1%eth0", "1.2.3.4", "::ffff:1.2.3.4", "192.168.001.1"], dtype=object)
    assert list(ev.prefixes(values)) == [ev.prefix_of(v) for v in values]
    assert ev.prefixes(values)[0] == "1.2.3.0/24" and ev.prefixes(values)[6] == "2001:db8::/48"


def _all_pairs_reference(src: Sources):
    """Union of every source's upper-triangle pairs with their values, from whole products."""
    mats = [sp.triu(f @ f.T, k=1).tocsr() for f in src.factors] + [sp.triu(d, k=1).tocsr() for d in src.direct]
    union = sum((m != 0).astype(np.int8) for m in mats).tocoo()
    order = np.lexsort((union.col, union.row))
    r, c = union.row[order].astype(np.int64), union.col[order].astype(np.int64)
    return r, c, [np.asarray(m[r, c]).ravel() for m in mats]


def test_candidate_blocks_give_the_whole_products_whatever_the_budget():
    rng = np.random.default_rng(2)
    f1 = _random_incidence(rng, 120, 25, 3)
    f2 = _random_incidence(rng, 120, 60, 2)
    d = sp.triu(sp.random(120, 120, density=0.02, random_state=3, format="csr"), k=1).tocsr()
    src = Sources([f1, f2], [d], 120)
    ref_r, ref_c, ref_v = _all_pairs_reference(src)
    for budget in (1, 50, 10**9):
        blocks = list(candidate_blocks(src, budget))
        r = np.concatenate([b[0] for b in blocks])
        c = np.concatenate([b[1] for b in blocks])
        assert np.array_equal(r, ref_r) and np.array_equal(c, ref_c)
        for i in range(3):
            assert np.array_equal(np.concatenate([b[2][i] for b in blocks]), ref_v[i])
    assert len(row_blocks(np.ones(10), 3)) == 4 and row_blocks(np.zeros(0), 3) == []
    vals = np.concatenate([v for _, _, v in triu_entries(f1, 7)])
    assert np.array_equal(np.sort(vals), np.sort(sp.triu(f1 @ f1.T, k=1).tocoo().data))


def test_subset_compares_only_pairs_among_the_chosen_accounts():
    rng = np.random.default_rng(4)
    f = _random_incidence(rng, 50, 10, 2, density=0.9)
    src = Sources([f], [None], 50)
    users = np.array([3, 7, 8, 20, 41])
    ((r, c, vals),) = list(candidate_blocks(src.subset(users), 10**6))
    full = (f @ f.T).tocsr()
    assert np.allclose(vals[0], np.asarray(full[users[r], users[c]]).ravel())


def test_weighted_rows_estimate_the_same_model_as_listing_pairs():
    rng = np.random.default_rng(5)
    n = 4000
    lv_t = rng.choice([0, 0, 0, 1, 4], n)
    lv_p = rng.choice([-1, 0, 1], n)
    lv_n = rng.choice([-1, 0, 1, 2, 3], n)
    tf_n = np.where(lv_n > 0, 3.0, np.nan)

    def fams(t, p, net, tf):
        return [Family("template", t, 5, 12.0, null_u=np.array([0.97, 0.01, 0.01, 0.005, 0.005])),
                Family("payment", p, 2, 10.0, fixed_m=np.array([0.5, 0.5])),
                Family("network", net, 4, 4.0, tf_bits=tf, drives=False)]

    listed = fit_fs(fams(lv_t, lv_p, lv_n, tf_n), 1e6, lam_floor=1e-4)
    key = (lv_t + 1) * 100 + (lv_p + 1) * 10 + (lv_n + 1)
    u, first, counts = np.unique(key, return_index=True, return_counts=True)
    folded = fit_fs(fams(lv_t[first], lv_p[first], lv_n[first], tf_n[first]), 1e6, lam_floor=1e-4,
                    weights=counts.astype(float))
    assert np.isclose(listed.lam, folded.lam, rtol=1e-9) and listed.iterations == folded.iterations
    for name in listed.m:
        assert np.allclose(listed.m[name], folded.m[name], rtol=1e-9)
        assert np.allclose(listed.u[name], folded.u[name], rtol=1e-9)


def _window():
    b = Builder(7)
    for g in range(3):  # three small campaigns on their own scaffold, card and /24
        for i in range(6):
            for t in np.sort(b.rng.uniform(T0 + g * DAY, T0 + (g + 3) * DAY, 30)):
                b.add(f"g{g}-{i}", t, template_id=f"tpl-{g}", payment_id=f"card-{g}-{i % 2}",
                      ip=f"198.51.{g}.{i}", asn="64500", user_agent="bot/1")
    for i in range(60):  # organic accounts sharing a few common templates, ASNs and a browser string
        for t in np.sort(b.rng.uniform(T0, T0 + 7 * DAY, 25)):
            b.add(f"org-{i:02d}", t, template_id=f"tpl-common-{int(b.rng.integers(0, 600))}",
                  ip=f"203.0.{i}.1", asn=f"6451{i % 3}", user_agent="Mozilla/5.0", payment_id=f"pm-{i}")
    return b.frame()


def test_linker_gives_the_same_groups_and_links_whatever_the_block_budget():
    frame = _window()
    big = AccountLinker().fit(frame)
    small = AccountLinker(pair_block=40).fit(frame)
    assert sorted(map(sorted, big.group_members_.values())) == sorted(map(sorted, small.group_members_.values()))
    assert len(big.group_members_) >= 3
    assert [(e.a, e.b, e.link_type, e.detail) for e in big.edges_] == \
        [(e.a, e.b, e.link_type, e.detail) for e in small.edges_]
    assert np.allclose([e.weight for e in big.edges_], [e.weight for e in small.edges_])
    assert np.isclose(big.model_.lam, small.model_.lam, rtol=1e-9)
    assert big.graph_.number_of_edges() == len({(e.a, e.b) for e in big.edges_})


def test_pair_shared_count_matches_binary_products():
    rng = np.random.default_rng(8)
    mat = _random_incidence(rng, 150, 20, 4, density=0.9)
    mat.data[np.isin(mat.indices, [3, 11, 17])] = 0.0  # values held by one account carry no bits
    rows, cols = rng.integers(0, 150, 4000), rng.integers(0, 150, 4000)
    held = (mat > 0).astype(np.float64)
    ref = np.asarray((held[rows].multiply(held[cols])).sum(axis=1)).ravel()
    got = ev.pair_shared_count(mat, rows, cols)
    assert np.array_equal(got, ref) and (got >= 2).sum() > 10


def test_folded_rows_carry_the_levels_and_bits_of_the_pairs_they_stand_for():
    from promptcov.coverage.linking.comparison import Comparison
    from promptcov.coverage.linking.cooccurrence import codes
    from promptcov.coverage.linking.params import LinkParams

    frame = _window()
    lk = AccountLinker()
    lk.params_ = LinkParams()
    accts = ev.Accounts(frame.account_id)
    tkey, names = codes(frame.template_id)
    fx = lk._fixed_evidence(frame, accts, tkey)
    cmp = Comparison(lk.params_, accts, fx, tkey, np.ones(len(names) + 1, dtype=bool))
    fams, rows, cols, _, w = cmp.run()
    ((r, c, vals),) = list(candidate_blocks(cmp.src, 10**9))
    lv, tf, _ = cmp.levels(r, c, vals)
    listed = cmp.families(lv, tf)
    assert w.sum() == len(r) and len(w) < len(r) and len(rows) < len(r)  # most pairs were folded
    model = fit_fs(fams, accts.n_pairs, weights=w)
    for f, g in zip(fams, listed, strict=True):
        assert np.array_equal(np.bincount(f.levels + 1, weights=w, minlength=6),
                              np.bincount(g.levels + 1, minlength=6).astype(float))
        assert np.isclose(model.level_bits(f) @ w, model.level_bits(g).sum(), rtol=1e-12)
    other = [i for i, f in enumerate(fams) if f.name not in ("template", "near_duplicate")]
    post_f = model.posterior(sum(model.level_bits(fams[i]) for i in other))
    post_l = model.posterior(sum(model.level_bits(listed[i]) for i in other))
    assert np.isclose(post_f @ w, post_l.sum(), rtol=1e-12)
    assert w[post_f >= 0.5].sum() == (post_l >= 0.5).sum()


def test_level_of_counts_cuts_like_searchsorted():
    x = np.r_[np.random.default_rng(9).random(5000), 0.05, 0.2, 0.5, 0.8, 0.0, 1.0, np.nan, -1.0, np.inf]
    cuts = (0.05, 0.2, 0.5, 0.8)
    assert np.array_equal(ev.level_of(x, cuts), np.searchsorted(np.array(cuts), x, side="right"))
    assert ev.level_of(np.zeros(0), cuts).shape == (0,)


def test_one_pair_join_serves_many_lists_of_pairs_as_fresh_lookups_would():
    rng = np.random.default_rng(21)
    mat = _random_incidence(rng, 200, 30, 4, density=0.8)
    join = ev.PairJoin(mat)  # prepared once, as Comparison does for every block and popular template
    held = (mat > 0).astype(np.float64)
    for _ in range(5):
        rows, cols = rng.integers(0, 200, 700), rng.integers(0, 200, 700)
        assert np.array_equal(join.max_bits(rows, cols), _reference_max_bits(mat, rows, cols))
        ref = np.asarray((held[rows].multiply(held[cols])).sum(axis=1)).ravel()
        assert np.array_equal(join.shared_count(rows, cols), ref)
    assert len(join.max_bits(np.zeros(0, np.int64), np.zeros(0, np.int64))) == 0
    empty = ev.PairJoin(sp.csr_matrix((5, 3)))
    assert not empty.max_bits(np.arange(4), np.arange(1, 5)).any()
