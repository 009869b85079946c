"""The sweep component of a group's traffic: rare-template and CoT rows."""

import numpy as np

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
