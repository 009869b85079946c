"""The sweep component of a group's traffic: the rows that can belong to a hidden sweep."""

from __future__ import annotations

import numpy as np

from promptcov.coverage.metrics.basic import COT_AREA, is_cot_marker

__all__ = ["sweep_component_mask"]


def sweep_component_mask(
    template_id: np.ndarray, template_popular: np.ndarray, capability: np.ndarray, marker: np.ndarray
) -> np.ndarray:
    """Rows that can belong to a sweep hidden in mixed traffic: a rare template or CoT elicitation.

    A proxy network resells its accounts to ordinary customers too, so a group's pooled
    traffic can be half organic and its shares diluted. Scoring the group's rows that carry a
    rare (non-popular) shared template or ask for chain-of-thought on their own answers the
    question "does this coordinated group contain a sweep?" without the organic half hiding it.
    Ordinary groups (an office, a family) have almost no such rows, so the shrinkage toward the
    prior keeps their component score low.
    """
    template_id = np.asarray(template_id, dtype=object)
    rare = np.array([t is not None for t in template_id], dtype=bool) & ~np.asarray(
        template_popular, dtype=bool
    )
    cot = (np.asarray(capability, dtype=object) == COT_AREA) | is_cot_marker(marker)
    return rare | cot
