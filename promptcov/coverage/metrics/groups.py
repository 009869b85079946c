"""Group-level metrics: synchrony, link strength and the sweep component of mixed traffic.

A campaign spreads its volume over many accounts (a "hydra"), often proxy accounts that also
carry ordinary customers' traffic. The linker finds the group; these functions measure how
much the group behaves as one operator and isolate the part of its traffic that can be a sweep.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from promptcov.coverage.metrics.basic import COT_AREA, is_cot_marker

__all__ = [
    "LINK_STRENGTH",
    "link_fields",
    "link_strength",
    "group_edges",
    "synchrony",
    "sweep_component_mask",
]

#: How much one link of each type says that two accounts are run by the same operator: a
#: shared rare template, near-duplicate prompts or one payment card are hard to explain
#: otherwise; shared timing or an IP address less so (NAT, offices); a shared ASN hardly.
LINK_STRENGTH = {"template": 1.0, "near_duplicate": 1.0, "payment": 1.0, "timing": 0.6, "ip": 0.5, "asn": 0.2}


def link_fields(link) -> tuple[str, str, str, float, str]:
    """``(a, b, link_type, weight, detail)`` of a linker ``Link``, a dict or a 4/5-tuple."""
    if isinstance(link, dict):
        a, b, kind = link["a"], link["b"], link["link_type"]
        return str(a), str(b), str(kind), float(link.get("weight", 1.0)), str(link.get("detail", ""))
    if isinstance(link, (tuple, list)):
        a, b, kind, weight, *rest = link
        return str(a), str(b), str(kind), float(weight), str(rest[0]) if rest else ""
    return str(link.a), str(link.b), str(link.link_type), float(link.weight), str(getattr(link, "detail", ""))


def group_edges(edges: list[tuple], groups: dict[str, str]) -> dict[str, list[tuple]]:
    """Edges (as :func:`link_fields` tuples) whose two ends are in the same group, by group."""
    out: dict[str, list[tuple]] = defaultdict(list)
    for e in edges:
        g = groups.get(e[0])
        if g is not None and g == groups.get(e[1]):
            out[g].append(e)
    return out


def link_strength(edges: list[tuple], strengths: dict[str, float] | None = None) -> float:
    """Mean over linked pairs of the strongest link type between them (0 without edges).

    A group held together by shared rare templates or a card scores near 1; one held together
    by a shared ASN scores 0.2: the group exists, but says little about a common operator.
    """
    table = LINK_STRENGTH if strengths is None else strengths
    pair: dict[tuple[str, str], float] = {}
    for a, b, kind, *_ in edges:
        key = (min(a, b), max(a, b))
        pair[key] = max(pair.get(key, 0.0), table.get(kind, 0.3))
    return float(np.mean(list(pair.values()))) if pair else 0.0


def synchrony(ts: np.ndarray, member: np.ndarray, bucket_seconds: float = 3600.0) -> float:
    """Share of the members' active time buckets in which another member is active too.

    Each member's activity is cut into ``bucket_seconds`` buckets (absolute time, not hour of
    day); the statistic is the share of (member, bucket) pairs that coincide with at least one
    other member. Accounts run by one script fire together (near 1); unrelated people who
    happen to share an address or a card are active at their own times (low). NaN for fewer
    than two members.
    """
    ts = np.asarray(ts, dtype=np.float64)
    member = np.asarray(member)
    if len(ts) != len(member):
        raise ValueError("ts and member must have the same length")
    if len(ts) == 0:
        return float("nan")
    _, code = np.unique(member.astype(str), return_inverse=True)
    width = int(code.max()) + 1
    if width < 2:
        return float("nan")
    bucket = np.floor(ts / float(bucket_seconds)).astype(np.int64)
    pairs = np.unique((bucket - bucket.min()) * width + code)
    per_bucket = np.bincount(pairs // width)
    return float(np.mean(per_bucket[pairs // width] >= 2))


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
