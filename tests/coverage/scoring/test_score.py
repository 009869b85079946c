"""Scoring: fixed form, monotonicity, the AND of structure and targeting, calibration, reasons."""

from __future__ import annotations

import numpy as np
import pytest

from promptcov.coverage.scoring.benign import benchmark_like
from promptcov.coverage.scoring.calibration import calibrate_threshold, null_fit
from promptcov.coverage.scoring.reasons import reasons_for
from promptcov.coverage.scoring.score import (
    DRIVERS,
    ScoreWeights,
    evidence_contributions,
    group_evidence,
    score_metrics,
    timing_class,
)


def row(**kw) -> dict:
    """One account's metrics: a neutral middle-of-the-road account unless overridden."""
    base = {
        "n_requests": 500.0,
        "template_share": 0.2,
        "n_templates": 1.0,
        "tiling_regularity": 0.5,
        "near_dup_rate": 0.1,
        "high_value_share": 0.4,
        "top1_share": 0.5,
        "top2_share": 0.7,
        "cot_share": 0.0,
        "followup_share": 0.1,
        "quiet_hours": 6.0,
        "diurnal_amplitude": 0.5,
        "active_days": 7.0,
        "active_hours": 18.0,
        "burstiness": 0.3,
        "coverage_ratio": 0.9,
        "coverage_n": 100.0,
        "span_hours": 160.0,
        "top_capability": "coding",
        "second_capability": "general_chat",
    }
    base.update(kw)
    return base


def arrays(*rows: dict) -> dict:
    keys = rows[0].keys()
    return {
        k: np.array([r[k] for r in rows], dtype=object if isinstance(rows[0][k], str) else float)
        for k in keys
    }


def score(**kw) -> float:
    return float(score_metrics(arrays(row(**kw)))[0][0])


SWEEP = dict(
    template_share=0.95,
    n_templates=2.0,
    tiling_regularity=0.95,
    high_value_share=1.0,
    top1_share=0.6,
    top2_share=1.0,
    cot_share=0.5,
    followup_share=0.0,
    quiet_hours=0.0,
    diurnal_amplitude=0.02,
    active_hours=24.0,
    burstiness=-0.1,
    coverage_ratio=1.3,
    top_capability="rubric_grading",
    second_capability="cot_elicitation",
)


@pytest.mark.parametrize(
    "name,values",
    [
        ("template_share", [0.0, 0.3, 0.6, 1.0]),
        ("tiling_regularity", [0.0, 0.5, 0.7, 1.0]),
        ("near_dup_rate", [0.0, 0.4, 0.8]),
        ("high_value_share", [0.0, 0.5, 1.0]),
        ("cot_share", [0.0, 0.5, 1.0]),
        ("coverage_ratio", [0.2, 0.5, 1.0, 1.5, 3.0]),
    ],
)
def test_score_never_decreases_with_sweep_evidence(name, values):
    scores = [score(**{name: v}) for v in values]
    assert all(b >= a for a, b in zip(scores, scores[1:], strict=False)), scores
    assert scores[-1] > scores[0]


def test_score_falls_with_followups_and_rises_with_volume_of_sweep_traffic():
    f = [score(**dict(SWEEP, followup_share=v)) for v in (0.0, 0.1, 0.2, 0.5)]
    assert f[0] > f[1] > f[2] and f[2] == pytest.approx(f[3])
    vol = [score(**dict(SWEEP, n_requests=n)) for n in (5, 25, 100, 1000, 100_000)]
    assert all(b > a for a, b in zip(vol, vol[1:], strict=False))
    assert vol[-1] > 0.9 and vol[1] < 0.5


def test_score_form_is_fixed_and_bounded():
    w = ScoreWeights()
    empty = score_metrics(arrays(row(n_requests=0.0)))[0][0]
    assert empty == pytest.approx(1 / (1 + np.exp(-w.prior_logit)))
    s, contrib = score_metrics(arrays(row(**SWEEP), row()))
    assert set(contrib) == set(DRIVERS)
    assert np.all((s >= 0) & (s <= 1))
    again, _ = score_metrics(arrays(row(**SWEEP)))
    assert again[0] == pytest.approx(s[0])  # no dependence on the rest of the population


def test_structure_and_targeting_are_both_needed():
    machine = dict(followup_share=0.0, quiet_hours=0.0, diurnal_amplitude=0.02, burstiness=-0.2)
    structure_only = dict(
        machine, template_share=1.0, tiling_regularity=1.0, high_value_share=0.0, cot_share=0.0
    )
    targeting_only = dict(
        machine,
        template_share=0.0,
        tiling_regularity=0.3,
        near_dup_rate=0.0,
        high_value_share=1.0,
        top2_share=1.0,
    )
    both = dict(machine, template_share=1.0, tiling_regularity=1.0, high_value_share=1.0, top2_share=1.0)
    assert score(n_requests=2000, **structure_only) < 0.5
    assert score(n_requests=2000, **targeting_only) < 0.5
    assert score(n_requests=2000, **both) > 0.9


def test_timing_class_cases():
    m = arrays(
        row(quiet_hours=0.0, diurnal_amplitude=0.02),
        row(quiet_hours=1.0, diurnal_amplitude=0.4),
        row(quiet_hours=7.0),
        row(quiet_hours=22.0, active_days=14.0),
        row(quiet_hours=20.0, active_days=1.0),
        row(quiet_hours=np.nan),
    )
    assert list(timing_class(m)) == ["round_the_clock", "modulated", "diurnal", "scheduled", "burst", ""]
    c = evidence_contributions(m)["timing"]
    assert c[0] > 0 and c[1] == 0 and c[2] < 0 and c[3] < c[2] and c[4] == 0 and c[5] == 0


def test_broad_campaign_over_many_valuable_areas_is_as_targeted_as_a_focused_one():
    focused = score(**dict(SWEEP, cot_share=0.0, top1_share=0.6, top2_share=1.0))
    broad = score(**dict(SWEEP, cot_share=0.0, top1_share=0.25, top2_share=0.45))
    assert broad == pytest.approx(focused)
    assert score(**dict(SWEEP, cot_share=0.0, high_value_share=0.3)) < broad


def test_group_term_is_not_shrunk_and_pooled_diurnal_rhythm_is_no_defence():
    small = dict(SWEEP, n_requests=40.0, quiet_hours=6.0, diurnal_amplitude=0.5, active_hours=18.0)
    m = arrays(row(**small))
    _, c0 = score_metrics(m)
    s1, c1 = score_metrics(m, group=np.array([1.0]))
    assert c1["group"][0] == pytest.approx(ScoreWeights().group)  # not multiplied by r = 40/90
    assert c0["timing"][0] < 0 and c1["timing"][0] == 0.0  # a person's day, not a pool's
    s2, _ = score_metrics(m, group=np.array([0.0]))
    assert s1[0] > s2[0]
    sched = arrays(row(**dict(small, quiet_hours=22.0, active_days=14.0)))
    assert evidence_contributions(sched, group=np.array([0.5]))["timing"][0] < 0  # a schedule still is


def test_narrow_coverage_is_counter_evidence_for_one_account_but_not_for_a_linked_pool():
    narrow = arrays(row(**dict(SWEEP, coverage_ratio=0.3, coverage_n=200.0)))
    assert evidence_contributions(narrow)["coverage"][0] == pytest.approx(-ScoreWeights().coverage)
    assert evidence_contributions(narrow, group=np.array([0.5]))["coverage"][0] == 0.0
    broad = arrays(row(**dict(SWEEP, coverage_ratio=2.0, coverage_n=200.0)))
    assert evidence_contributions(broad, group=np.array([0.5]))["coverage"][0] == pytest.approx(ScoreWeights().coverage)


def test_group_evidence_range_and_order():
    g = group_evidence(
        np.array([1, 4, 32, 64]), np.array([0.0, 0.5, 1.0, 1.0]), np.array([0.0, 0.5, 1.0, np.nan])
    )
    assert g[0] == 0.0 and g[1] < g[2] and g[2] == pytest.approx(1.0) and g[3] == pytest.approx(0.7)
    s0, _ = score_metrics(arrays(row(**SWEEP)), group=np.array([0.0]))
    s1, contrib = score_metrics(arrays(row(**SWEEP)), group=np.array([1.0]))
    assert s1[0] > s0[0] and contrib["group"][0] > 0


def test_calibration_clean_population_keeps_the_floor():
    rng = np.random.default_rng(0)
    logits = rng.normal(-5.0, 1.0, 5000)
    scores = 1 / (1 + np.exp(-logits))
    n = rng.integers(1, 500, 5000)
    t = calibrate_threshold(scores, n)
    assert t == 0.5
    center, scale, used = null_fit(scores, n)
    assert center == pytest.approx(-5.0, abs=0.1) and scale == pytest.approx(1.0, abs=0.1)
    assert used == int(np.sum(n >= 20))
    assert np.mean(scores >= t) < 0.001


def test_calibration_noisy_population_hits_the_target_rate_and_ignores_a_sweep_minority():
    rng = np.random.default_rng(1)
    null = 1 / (1 + np.exp(-rng.normal(-1.0, 1.0, 20_000)))
    sweeps = np.full(500, 0.99)
    scores = np.r_[null, sweeps]
    n = np.full(len(scores), 100)
    t = calibrate_threshold(scores, n, target_fpr=0.01)
    assert t > 0.5
    assert np.mean(null >= t) == pytest.approx(0.01, abs=0.006)
    assert np.all(sweeps >= t)
    assert calibrate_threshold(scores, n, target_fpr=0.05) < t
    assert calibrate_threshold(np.full(1000, 0.999), np.full(1000, 100)) == 0.95  # the ceiling
    assert calibrate_threshold(scores[:10], n[:10]) == 0.5  # too few to calibrate
    small = calibrate_threshold(scores, np.full(len(scores), 5))  # all below min_requests
    assert small == 0.5


def test_calibration_survives_sweeps_outnumbering_active_organic_accounts():
    """A small window: 27 campaign accounts with 20+ requests next to 17 organic ones."""
    rng = np.random.default_rng(2)
    organic = 1 / (1 + np.exp(-rng.normal(-5.0, 0.5, 17)))
    sweeps = 1 / (1 + np.exp(-rng.normal(-2.0, 0.8, 27)))
    group_level = np.array([0.55, 0.8])  # pooled groups of those accounts
    scores = np.r_[organic, sweeps]
    t = calibrate_threshold(scores, np.full(len(scores), 50))
    assert t == 0.5 and np.all(group_level >= t) and not np.any(organic >= t)


@pytest.mark.parametrize("kw", [dict(target_fpr=0.0), dict(target_fpr=0.7), dict(floor=0.9, ceiling=0.5)])
def test_calibration_rejects_bad_arguments(kw):
    with pytest.raises(ValueError):
        calibrate_threshold(np.zeros(3), np.zeros(3), **kw)


def test_benchmark_like_needs_short_unlinked_structured_run():
    run = dict(SWEEP, n_requests=400.0, span_hours=3.0, active_days=1.0)
    m = arrays(
        row(**run),
        row(**dict(run, span_hours=40.0, active_days=2.0)),
        row(**run),
        row(**dict(run, template_share=0.0, tiling_regularity=0.2, near_dup_rate=0.0)),
        row(**dict(run, followup_share=0.3)),
    )
    out = benchmark_like(m, np.array([False, False, True, False, False]))
    assert out.tolist() == [True, False, False, False, False]
    with pytest.raises(ValueError):
        benchmark_like(m, np.array([False]))


def test_reasons_put_the_strongest_evidence_first_and_counter_evidence_after():
    m = arrays(row(**dict(SWEEP, followup_share=0.3)))
    s, contrib = score_metrics(m)
    r = {k: (v[0] if v.dtype == object else float(v[0])) for k, v in m.items()}
    r["timing_class"] = timing_class(m)[0]
    text = reasons_for(r, {k: float(v[0]) for k, v in contrib.items()})
    parts = text.split("; ")
    assert "templated" in parts[0] or "rubric_grading" in parts[0]
    assert parts[-1] == "30% follow-up turns"
    assert "flat round the clock" in text
    low = reasons_for(dict(r, n_requests=12.0), {"templated": 0.4})
    assert low.endswith("only 12 requests: evidence shrunk toward the prior")
    assert reasons_for(row(), {}) == "no sweep evidence"


def test_members_acting_alike_make_a_small_groups_evidence_reliable_in_proportion_to_their_share():
    m = arrays(row(**dict(SWEEP, n_requests=15.0, quiet_hours=6.0, diurnal_amplitude=0.5, active_hours=18.0)))
    g = np.array([0.5])
    base, c0 = score_metrics(m, group=g)
    six, c6 = score_metrics(m, group=g, alike=np.array([6.0]))  # r: 15/65 -> 5/(5+4)
    assert six[0] > base[0] and c6["templated"][0] > c0["templated"][0]
    half, _ = score_metrics(m, group=g, alike=np.array([6.0]), alike_share=np.array([0.5]))
    assert base[0] < half[0] < six[0]
    # one member (or none) is no replicate; sharing nothing vouches for nothing; 0 turns it off
    for kw in ({"alike": np.array([1.0])}, {"alike": np.array([6.0]), "alike_share": np.array([0.0])}):
        assert score_metrics(m, group=g, **kw)[0][0] == pytest.approx(base[0])
    off = ScoreWeights(shrink_members=0.0)
    assert score_metrics(m, off, group=g, alike=np.array([6.0]))[0][0] == pytest.approx(base[0])
    # never below the volume's own reliability: a large pool keeps its r
    big = arrays(row(**dict(SWEEP, n_requests=5000.0)))
    assert score_metrics(big, group=g, alike=np.array([2.0]))[0][0] == pytest.approx(score_metrics(big, group=g)[0][0])
