"""Metric functions on crafted inputs whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from promptcov.coverage.frame import RequestFrame
from promptcov.coverage.metrics.accounts import (
    LABEL_METRICS,
    NUMERIC_METRICS,
    compute_account_metrics,
    compute_group_metrics,
    compute_pooled_metrics,
    synchrony,
    window_cells,
)
from promptcov.coverage.metrics.basic import (
    capability_concentration,
    cluster_entropy,
    conversation_depth,
    cot_share,
    segments,
    template_metrics,
    timing_metrics,
)
from promptcov.coverage.metrics.coverage import (
    CellPopulation,
    assign_cells,
    coverage_metrics,
    expected_distinct,
)
from promptcov.coverage.metrics.space import distance_metrics, nearest_earlier_similarity, tiling_statistics
from tests.coverage.synth_frames import SynthWorld, add_hydra


def obj(values):
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


# ---------------------------------------------------------------- basic metrics
def test_segments_marks_contiguous_runs():
    seg, starts, keys = segments(np.array(["a", "a", "b", "c", "c", "c"], dtype=object))
    assert seg.tolist() == [0, 0, 1, 2, 2, 2]
    assert starts.tolist() == [0, 2, 3]
    assert list(keys) == ["a", "b", "c"]


def test_capability_concentration_known_shares():
    cap = obj(["coding", "coding", "coding", "general_chat", "creative_writing", "creative_writing"])
    seg = np.array([0, 0, 0, 0, 1, 1])
    out = capability_concentration(cap, seg, 2)
    assert out["top1_share"].tolist() == [0.75, 1.0]
    assert out["top2_share"].tolist() == [1.0, 1.0]
    assert out["high_value_share"].tolist() == [0.75, 0.0]
    assert list(out["top_capability"]) == ["coding", "creative_writing"]
    assert list(out["second_capability"]) == ["general_chat", ""]
    assert out["n_areas"].tolist() == [2, 1]


def test_cluster_entropy_one_cluster_vs_all_distinct_and_noise_as_singletons():
    cid = np.array([3, 3, 3, 3, 0, 1, 2, 4, -1, -1, -1, -1])
    seg = np.repeat([0, 1, 2], 4)
    out = cluster_entropy(cid, seg, 3)
    assert out["cluster_entropy"][0] == pytest.approx(0.0)
    assert out["cluster_entropy"][1] == pytest.approx(1.0)
    assert out["cluster_entropy"][2] == pytest.approx(1.0)  # noise = long tail
    assert out["n_clusters"].tolist() == [1, 4, 0]


def test_template_metrics_excludes_popular_templates():
    tid = obj(["T1", "T1", None, "P", "T2", "T3"])
    pop = np.array([False, False, False, True, False, False])
    seg = np.array([0, 0, 0, 0, 1, 1])
    out = template_metrics(tid, pop, seg, 2)
    assert out["template_share"].tolist() == [0.5, 1.0]
    assert out["popular_share"].tolist() == [0.25, 0.0]
    assert out["n_templates"].tolist() == [1, 2]
    assert out["top_template_share"].tolist() == [0.5, 0.5]


def test_cot_share_counts_marker_or_area():
    cap = obj(["cot_elicitation", "coding", "coding", "general_chat"])
    marker = obj([None, "cot_elicitation", None, None])
    assert cot_share(cap, marker, np.zeros(4, int), 1).tolist() == [0.5]
    # stored marker names are "area:rule"; another area's marker or a lookalike name does not count
    marker = obj([None, "cot_elicitation:show_reasoning", "tool_use:tool_schema", "cot_elicitation_x"])
    assert cot_share(cap, marker, np.zeros(4, int), 1).tolist() == [0.5]


def test_conversation_depth_from_turns_and_from_conversation_ids():
    turns = np.array([0, 1, 2, 0, -1, -1, -1, -1, -1])
    conv = obj([None, None, None, None, "c1", "c1", "c2", None, None])
    seg = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2])
    out = conversation_depth(turns, conv, seg, 3)
    assert out["followup_share"][0] == pytest.approx(0.5)
    assert out["turns_per_conversation"][0] == pytest.approx(2.0)
    assert out["followup_share"][1] == pytest.approx(1 / 3)  # c1 repeats
    assert np.isnan(out["followup_share"][2])  # nothing known
    assert out["turn_known_share"].tolist() == [1.0, 1.0, 0.0]


def test_timing_round_the_clock_diurnal_and_regular_pace():
    day = 86400.0
    flat = np.arange(240) * 3600.0  # every hour for ten days: flat and perfectly regular
    rng = np.random.default_rng(0)
    diurnal = np.sort(np.concatenate([d * day + rng.uniform(9, 17, 12) * 3600 for d in range(10)]))
    ts = np.concatenate([flat, diurnal, flat[:10]])
    seg = np.repeat([0, 1, 2], [240, 120, 10])
    out = timing_metrics(ts, seg, 3)
    assert out["quiet_hours"][0] == 0 and out["active_hours"][0] == 24
    assert out["hour_entropy"][0] == pytest.approx(1.0)
    assert out["diurnal_amplitude"][0] == pytest.approx(0.0, abs=1e-9)
    assert out["burstiness"][0] == pytest.approx(-1.0)  # machine-regular
    assert out["gap_cv"][0] == pytest.approx(0.0, abs=1e-9)
    assert out["quiet_hours"][1] == 16 and out["active_hours"][1] == 8
    assert out["diurnal_amplitude"][1] > 0.5
    assert out["active_days"].tolist() == [10, 10, 1]
    assert np.isnan(out["quiet_hours"][2])  # too few requests for an hour profile
    assert out["span_hours"][2] == pytest.approx(9.0)


def test_metric_functions_reject_misaligned_input():
    with pytest.raises(ValueError):
        cot_share(obj(["a", "b"]), obj([None]), np.zeros(2, int), 1)
    with pytest.raises(ValueError):
        template_metrics(obj([None]), np.array([False]), np.array([3]), 1)


# ---------------------------------------------------------------- distances
def test_nearest_earlier_similarity_all_and_recent():
    e = np.eye(4, dtype=np.float32)
    x = np.stack([e[0], e[1], e[2], unit(e[0] + 0.1 * e[3])])
    sim_all, sim_recent = nearest_earlier_similarity(x, lookback=1)
    assert sim_all == pytest.approx([0.0, 0.0, 0.995], abs=1e-3)
    assert sim_recent == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)  # only the previous prompt counts
    assert len(nearest_earlier_similarity(x[:1])[0]) == 0


def test_tiling_statistics_known_values():
    sims = np.array([0.95, 0.5, 0.5, 0.1])
    out = tiling_statistics(sims, sims, dup_cos=0.9, related_cos=0.35)
    assert out["near_dup_rate"] == 0.25
    assert out["tiling_regularity"] == 0.5
    assert out["nn_sim_median"] == 0.5
    d = 1 - sims
    assert out["nn_dist_cv"] == pytest.approx(d.std() / d.mean())
    assert np.isnan(out["nn_normality"])  # fewer than 20
    rng = np.random.default_rng(1)
    normal = tiling_statistics(*(2 * [0.5 + 0.05 * rng.standard_normal(400)]))
    bimodal = tiling_statistics(
        *(2 * [np.r_[np.full(200, 0.97), np.full(200, 0.1)] + 0.01 * rng.random(400)])
    )
    assert normal["nn_normality"] > 0.98 > bimodal["nn_normality"]
    assert normal["tiling_regularity"] > 0.99 and bimodal["tiling_regularity"] == 0.0


def test_distance_metrics_matches_per_account_reference_with_subsampling():
    rng = np.random.default_rng(3)
    sizes = [1, 2, 3, 8, 9, 25, 40, 130, 620, 0, 17]
    vecs = rng.normal(size=(sum(sizes), 16)).astype(np.float32)
    vecs[:, :4] += 2
    vecs = unit(vecs)
    seg = np.repeat(np.arange(len(sizes)), sizes)
    vec_row = np.arange(len(seg))
    vec_row[5] = -1
    vecs[30] = vecs[29]
    out = distance_metrics(vec_row, vecs, seg, len(sizes), max_sample=500, lookback=10, seed=7)
    bounds = np.searchsorted(seg, np.arange(len(sizes) + 1))
    for s in range(len(sizes)):
        rows = vec_row[bounds[s] : bounds[s + 1]]
        rows = rows[rows >= 0]
        if len(rows) > 500:
            rows = rows[np.sort(np.random.default_rng([7, s]).choice(len(rows), 500, replace=False))]
        if len(rows) < 2:
            assert all(np.isnan(out[k][s]) for k in out)
            continue
        ref = tiling_statistics(*nearest_earlier_similarity(vecs[rows], 10))
        for key, value in ref.items():
            assert out[key][s] == pytest.approx(value, abs=1e-5, nan_ok=True), (s, key)


# ---------------------------------------------------------------- cells and coverage
def test_expected_distinct_matches_closed_form():
    p = np.full(10, 0.1)
    assert expected_distinct(p, 1) == pytest.approx(1.0)
    assert expected_distinct(p, 5) == pytest.approx(10 * (1 - 0.9**5))
    assert expected_distinct(p, 10_000) == pytest.approx(10.0)
    assert expected_distinct(np.array([1.0, 0.0]), 50) == pytest.approx(1.0)


def test_coverage_ratio_broad_walk_vs_focused_user():
    # area A has 10 cells; everybody else mostly asks about cell 0
    cap = obj(["A"] * 40)
    others = np.r_[np.zeros(15, int), np.arange(1, 5)]  # 19 requests of 5 accounts
    broad = np.arange(10)  # a walk over every cell
    focused = np.r_[np.zeros(9, int), [1]]
    cells = np.r_[others, broad, focused, [9]].astype(np.int64)
    seg = np.r_[np.repeat(np.arange(5), [4, 4, 4, 4, 3]), np.full(10, 5), np.full(10, 6), [7]]
    pop = CellPopulation.from_arrays(cap, cells)
    out = coverage_metrics(cap, cells, seg, 8, obj(["A"] * 8), pop)
    assert out["coverage_cells"][5] == 10 and out["coverage_cells"][6] == 2
    assert out["coverage_ratio"][5] > 1.5 > 1.0 > out["coverage_ratio"][6]
    # leave-self-out: the expected count for the walker uses everybody but itself
    base = pop.counts[0] - np.bincount(broad, minlength=10)
    p = (base + 5.0 / 10) / (base.sum() + 5.0)
    assert out["coverage_expected"][5] == pytest.approx(expected_distinct(p, 10))
    assert out["coverage_n"][5] == 10
    assert np.isnan(coverage_metrics(cap, cells, seg, 8, obj(["B"] * 8), pop)["coverage_ratio"]).all()


def test_assign_cells_separates_blobs_and_skips_missing_vectors():
    rng = np.random.default_rng(0)
    centres = unit(rng.normal(size=(2, 32)))
    vecs = unit(np.repeat(centres, 100, axis=0) + 0.05 * rng.normal(size=(200, 32))).astype(np.float32)
    vec_row = np.arange(200)
    vec_row[3] = -1
    seg = np.repeat(np.arange(20), 10)
    cells = assign_cells(vecs, vec_row, seg, n_cells=8, seed=1)
    assert cells[3] == -1
    assert not set(cells[:100][cells[:100] >= 0]) & set(cells[100:])
    assert np.array_equal(cells, assign_cells(vecs, vec_row, seg, n_cells=8, seed=1))


# ---------------------------------------------------------------- drivers
@pytest.fixture(scope="module")
def small_world():
    world = SynthWorld(seed=5, days=7)
    for i in range(12):
        world.organic(f"org-{i:02d}", 30)
    pools = add_hydra(world, n_accounts=6, per_account=20)
    return world.frame(), pools


def test_compute_account_metrics_shapes_and_pooling(small_world):
    frame, pools = small_world
    cells, pop = window_cells(frame, seed=0)
    ids, m = compute_account_metrics(frame, cells=cells, population=pop)
    assert list(ids) == sorted(set(frame.account_id))
    for name in (*NUMERIC_METRICS, *LABEL_METRICS):
        assert len(m[name]) == len(ids), name
    assert m["n_requests"].sum() == len(frame)
    hydra = [i for i, a in enumerate(ids) if a.startswith("hydra")]
    assert np.all(m["cot_share"][hydra] == 1.0)
    keys, gm = compute_pooled_metrics(frame, pools, cells=cells, population=pop)
    assert list(keys) == ["G-hydra"] and gm["n_requests"][0] == 120 and gm["n_members"][0] == 6
    single = compute_group_metrics(frame, pools["G-hydra"], cells=cells, population=pop)
    assert single["n_requests"] == 120 and single["top_capability"] in ("cot_elicitation", "rubric_grading")
    with pytest.raises(ValueError):
        compute_group_metrics(frame, ["nobody"], cells=cells, population=pop)


def test_compute_account_metrics_without_vectors_uses_clusters():
    frame = RequestFrame.from_columns(
        {
            "account_id": ["a"] * 3 + ["b"],
            "ts": [1, 2, 3, 4],
            "text_id": [1, 2, 3, 4],
            "cluster_id": [0, 1, 2, 0],
            "capability": ["coding"] * 4,
        }
    )
    ids, m = compute_account_metrics(frame)
    assert list(ids) == ["a", "b"]
    assert m["coverage_cells"].tolist() == [3, 1]
    assert np.isnan(m["tiling_regularity"]).all()


def test_synchrony_together_vs_apart():
    ts = np.array([0, 10, 3600 * 5, 3600 * 5 + 60], dtype=float)
    assert synchrony(ts, np.array(["a", "b", "a", "b"])) == 1.0
    assert synchrony(ts, np.array(["a", "a", "b", "b"])) == 0.0
    assert np.isnan(synchrony(ts, np.array(["a"] * 4)))
