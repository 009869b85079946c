"""The sweep component of a group's traffic: rare-template and CoT rows."""

import numpy as np
import pytest

from promptcov.coverage.scoring.component import sweep_component_mask


def obj(values):
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def test_sweep_component_mask_rare_templates_and_cot_only():
    mask = sweep_component_mask(
        obj(["T", "P", None, None]),
        np.array([False, True, False, False]),
        obj(["coding", "coding", "cot_elicitation", "coding"]),
        obj([None, None, None, "cot_elicitation:step_by_step"]),
    )
    assert mask.tolist() == [True, False, True, True]


def test_group_owned_popular_makes_a_groups_own_popular_looking_template_rare_for_it():
    from promptcov.coverage.scoring.component import group_owned_popular

    tids = obj(["S", "S", "S", "S", "P", "P", "P", "P", "R", None])
    popular = np.array([True] * 8 + [False, False])
    # S: 3 of its 4 uses come from group G; P: one use of 4 from G, the rest from strangers
    row_group = obj(["G", "G", "G", "", "G", "", "", "H", "G", "G"])
    out = group_owned_popular(tids, popular, row_group, min_share=0.5)
    assert out.tolist() == [False, False, False, True, True, True, True, True, False, False]
    # nothing grouped, nothing popular: unchanged
    assert group_owned_popular(tids, popular, obj([""] * 10)).tolist() == popular.tolist()
    assert not group_owned_popular(tids, np.zeros(10, bool), row_group).any()


def test_spread_cap_keeps_a_balanced_hydra_and_caps_one_dominant_member():
    from promptcov.coverage.scoring.component import spread_cap

    # group G: member 0 sends 10 component rows, members 1 and 2 send 2 each; group H is balanced
    acc = np.array([0] * 10 + [1] * 2 + [2] * 2 + [3] * 3 + [4] * 3 + [5] * 4)
    grp = obj(["G"] * 14 + ["H"] * 6 + [""] * 4)
    mask = np.ones(len(acc), dtype=bool)
    mask[-1] = False
    keep = spread_cap(mask, acc, grp)
    assert keep[:10].sum() == 2 and keep[0] and keep[9]  # capped to the second-largest, spread out
    assert keep[10:20].all()  # the other members and the balanced group lose nothing
    assert keep[20:23].all() and not keep[23]  # ungrouped rows keep the mask as it was
    assert spread_cap(mask, acc, obj([""] * len(acc))).tolist() == mask.tolist()


def test_alike_members_counts_separate_senders_not_rows():
    from promptcov.coverage.scoring.component import alike_members

    # G: six members with five fills each; H: one member with 20 fills and two with one each
    acc = np.array([k for k in range(6) for _ in range(5)] + [6] * 20 + [7, 8] + [9, 9])
    grp = obj(["G"] * 30 + ["H"] * 22 + ["", ""])
    mask = np.ones(len(acc), dtype=bool)
    out = alike_members(mask, acc, grp)
    assert set(out) == {"G", "H"}  # ungrouped rows count for nobody
    assert out["G"] == (pytest.approx(6.0), 30)
    assert out["H"][0] == pytest.approx(22**2 / (400 + 2)) and out["H"][0] < 1.3 and out["H"][1] == 22
    assert alike_members(np.zeros(len(acc), bool), acc, grp) == {}
