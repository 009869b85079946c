"""Tests for pivot detection: new-model rushes and capability shifts, and what is NOT a pivot."""

from __future__ import annotations

import numpy as np
import pytest

from promptcov.coverage.frame import RequestFrame
from promptcov.coverage.scoring.pivots import (
    capability_shift,
    detect_pivots,
    model_first_seen,
    new_model_rush,
    same_hours_expectation,
    total_variation,
)
from promptcov.errors import InputError

T0 = 1_763_251_200.0  # 2025-11-16 00:00 UTC
DAY = 86400.0
AREAS = ["coding", "general_chat", "creative_writing", "math_reasoning", "data_analysis", "tool_use", "other"]


def _frame(rows: list[tuple[str, float, str, str]]) -> RequestFrame:
    acc, ts, model, cap = zip(*rows, strict=True)
    return RequestFrame.from_columns(
        {"account_id": acc, "ts": ts, "text_id": np.arange(len(rows)), "model": model, "capability": cap}
    )


def _launch_population(seed: int, rush: bool):
    """100 organic accounts adopting ``x-2`` slowly (launched on day 3); optionally a rushing group."""
    rng = np.random.default_rng(seed)
    launch = T0 + 3 * DAY + 9 * 3600
    rows = []
    for i in range(100):
        for t in np.sort(rng.uniform(T0, T0 + 7 * DAY, 70)):
            adopt = 0.0 if t < launch else min(0.5, 0.05 * (t - launch) / DAY)
            rows.append(
                (f"user-{i:03d}", t, "x-2" if rng.random() < adopt else "x-1", str(rng.choice(AREAS)))
            )
    rows.append(("user-000", launch, "x-2", "other"))  # the model's first appearance
    if rush:
        for i in range(5):
            for t in np.sort(rng.uniform(T0, T0 + 7 * DAY, 120)):
                m = "x-2" if t >= launch + 3600 and rng.random() < 0.85 else "x-1"
                rows.append((f"atk-{i}", t, m, "cot_elicitation"))
    return _frame(rows), launch


def test_total_variation_bounds():
    assert total_variation([1, 0], [0, 3]) == pytest.approx(1.0)
    assert total_variation([2, 2], [5, 5]) == pytest.approx(0.0)
    assert total_variation([3, 1], [1, 3]) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        total_variation([1, 2], [1, 2, 3])


def test_model_first_seen_ignores_models_live_at_window_start():
    ts = np.array([T0, T0 + 100, T0 + 2 * DAY, T0 + 3 * DAY])
    model = np.array(["old", "old2", "new", "new"], dtype=object)
    assert model_first_seen(ts, model) == {"new": T0 + 2 * DAY}


def test_new_model_rush_excludes_entity_from_population():
    e_ts = T0 + np.arange(10) * 3600.0
    e_model = np.array(["n"] * 8 + ["o"] * 2, dtype=object)
    share, pop_share, k, n = new_model_rush(e_ts, e_model, (18, 110), "n", T0, DAY)
    assert (share, k, n) == (0.8, 8, 10) and pop_share == pytest.approx(10 / 100)


def test_group_rushing_to_new_model_is_a_pivot_and_slow_organic_adoption_is_not():
    frame, launch = _launch_population(1, rush=True)
    groups = {f"atk-{i}": "G-atk" for i in range(5)}
    pivots = detect_pivots(frame, groups)
    assert "G-atk" in pivots
    text = pivots["G-atk"][0]
    assert text.startswith("moved ") and "to x-2 within 48h of its first appearance" in text
    assert "2025-11-19 09:00 UTC" in text and "population: " in text
    assert {f"atk-{i}" for i in range(5)} <= set(pivots)
    assert not any(k.startswith("user-") for k in pivots)
    calm, _ = _launch_population(2, rush=False)
    assert detect_pivots(calm, min_requests=20) == {}


def test_capability_shift_flags_a_sweep_moving_to_the_next_area():
    rng = np.random.default_rng(3)
    rows = []
    for t in np.sort(rng.uniform(T0, T0 + 6 * DAY, 300)):
        rows.append(("sweeper", t, "x-1", "coding" if t < T0 + 3 * DAY else "cot_elicitation"))
    for i in range(20):
        for t in np.sort(rng.uniform(T0, T0 + 6 * DAY, 120)):
            rows.append((f"user-{i:02d}", t, "x-1", str(rng.choice(AREAS))))
    pivots = detect_pivots(_frame(rows))
    assert list(pivots) == ["sweeper"]
    assert pivots["sweeper"] == [
        "capability mix shifted at 2025-11-19 00:00 UTC (TVD 1.00): cot_elicitation 0% -> 100%"
    ]


def test_capability_shift_needs_enough_requests_on_both_sides():
    ts = T0 + np.arange(30) * 3600.0
    cap = np.array(["a"] * 15 + ["b"] * 15, dtype=object)
    assert capability_shift(ts, cap, min_side=20) is None
    split, tvd, p_value, areas, before, after = capability_shift(ts, cap, split_every_s=3600.0, min_side=5)
    assert tvd == pytest.approx(1.0) and split == T0 + 15 * 3600.0 and p_value < 1e-3
    assert list(areas) == ["a", "b"] and before.tolist() == [15, 0] and after.tolist() == [0, 15]


def test_bad_input():
    with pytest.raises(InputError):
        detect_pivots("frame")
    frame, _ = _launch_population(4, rush=False)
    with pytest.raises(InputError):
        detect_pivots(frame, window_s=0)


def test_a_release_everyone_takes_up_at_once_is_no_pivot():
    """All traffic moves to the new model at the same rate: no entity is ahead of the others."""
    rng = np.random.default_rng(5)
    launch = T0 + 3 * DAY + 9 * 3600
    rows = []
    for i in range(60):
        for t in np.sort(rng.uniform(T0, T0 + 7 * DAY, 80)):
            rows.append((f"user-{i:03d}", t, "x-2" if t >= launch else "x-1", str(rng.choice(AREAS))))
    for i in range(5):  # a group that follows the same switch, at a higher volume
        for t in np.sort(rng.uniform(T0, T0 + 7 * DAY, 150)):
            rows.append((f"grp-{i}", t, "x-2" if t >= launch else "x-1", "cot_elicitation"))
    pivots = detect_pivots(_frame(rows), {f"grp-{i}": "G-grp" for i in range(5)})
    assert not any("to x-2" in text for texts in pivots.values() for text in texts)


def test_same_hours_expectation_follows_the_rest_of_traffic():
    ts = T0 + np.arange(100) * 600.0
    model = np.array(["new" if i % 2 else "old" for i in range(100)], dtype=object)
    rows = np.arange(0, 100, 10)  # the entity's requests: all "old"
    k, n, expected = same_hours_expectation(ts, model, rows, "new", T0, DAY, 3600.0)
    assert (k, n) == (0, 10) and 4.0 < expected < 6.5  # about half of the others' traffic is "new"
