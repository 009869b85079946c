"""The sweep component of a group's traffic, and the templates a group owns."""

from __future__ import annotations

import numpy as np

from promptcov.coverage.frame import factorize_str
from promptcov.coverage.metrics.basic import COT_AREA, is_cot_marker

__all__ = ["sweep_component_mask", "rare_template_rows", "cot_rows", "group_owned_popular", "spread_cap",
           "alike_members"]


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
    return rare_template_rows(template_id, template_popular) | cot_rows(capability, marker)


def rare_template_rows(template_id: np.ndarray, template_popular: np.ndarray) -> np.ndarray:
    """Rows that fill a shared template that is not popular: a scaffold's fills, not a public prompt."""
    has = np.array([t is not None for t in np.asarray(template_id, dtype=object)], dtype=bool)
    return has & ~np.asarray(template_popular, dtype=bool)


def cot_rows(capability: np.ndarray, marker: np.ndarray) -> np.ndarray:
    """Rows that ask for chain-of-thought: the area, or a CoT marker rule that fired."""
    return (np.asarray(capability, dtype=object) == COT_AREA) | is_cot_marker(marker)


def group_owned_popular(
    template_id: np.ndarray, template_popular: np.ndarray, row_group: np.ndarray, min_share: float = 0.5
) -> np.ndarray:
    """``template_popular`` per row, with the templates a linked group owns made rare again.

    Popularity (:func:`~promptcov.coverage.templates.detector.template_popularity`) is judged
    account by account: many accounts, each using a template a little. A hydra of many small
    accounts uses its own scaffold exactly that way. What tells the two apart is *who* the users
    are: a public prompt's users are unrelated, a signature's users are one linked group. So for
    the pooled traffic of a group, a popular-looking template of which the group sent at least
    ``min_share`` of all the window's uses is the group's own template, and counts as rare.
    ``row_group`` holds each row's group id ("" or None: no group); rows outside any group keep
    their popularity.
    """
    template_id = np.asarray(template_id, dtype=object)
    popular = np.asarray(template_popular, dtype=bool).copy()
    groups = np.asarray(row_group, dtype=object)
    cand = popular & np.array([t is not None for t in template_id], dtype=bool)
    if not cand.any():
        return popular
    t_codes, t_inv = factorize_str(template_id[cand])
    total = np.bincount(t_inv, minlength=len(t_codes)).astype(np.float64)
    grouped = np.array([bool(g) for g in groups[cand]], dtype=bool)
    if not grouped.any():
        return popular
    g_codes, g_inv = factorize_str(groups[cand][grouped])
    pair = t_inv[grouped].astype(np.int64) * len(g_codes) + g_inv
    upair, cnt = np.unique(pair, return_counts=True)
    owned = upair[cnt >= min_share * total[upair // len(g_codes)]]
    rows = np.flatnonzero(cand)[grouped]
    popular[rows[np.isin(pair, owned)]] = False
    return popular


def spread_cap(mask: np.ndarray, account_code: np.ndarray, row_group: np.ndarray) -> np.ndarray:
    """``mask`` with each group member's rows capped at the second-largest member's count.

    A group is many accounts acting as one, so its sweep component must come from more than one of
    them: when one member sends nearly all of the group's templated rows (a nightly batch job that
    a few ordinary accounts are tied to through a shared template), the group's evidence is that
    one account's, which is already scored on its own. Each member keeps at most as many rows as
    the group's second-largest contributor (evenly spaced, so the kept rows span the member's
    window); a hydra whose members contribute alike loses nothing. Rows outside any group
    (``row_group`` "" or None) are kept as they are.
    """
    mask = np.asarray(mask, dtype=bool)
    keep = mask.copy()
    groups = np.asarray(row_group, dtype=object)
    account_code = np.asarray(account_code)
    rows = np.flatnonzero(mask & np.array([bool(g) for g in groups], dtype=bool))
    if not len(rows):
        return keep
    g_codes, g_inv = factorize_str(groups[rows])
    order = np.lexsort((rows, account_code[rows], g_inv))
    rows, acc, grp = rows[order], account_code[rows][order], g_inv[order]
    start = np.r_[True, (acc[1:] != acc[:-1]) | (grp[1:] != grp[:-1])]
    bounds = np.r_[np.flatnonzero(start), len(rows)]
    counts = np.diff(bounds)
    member_group = grp[bounds[:-1]]
    for g in range(len(g_codes)):
        idx = np.flatnonzero(member_group == g)
        if len(idx) < 2:
            continue
        cap = int(np.sort(counts[idx])[-2])
        for k in idx[counts[idx] > cap]:
            lo, hi = bounds[k], bounds[k + 1]
            chosen = np.unique(np.linspace(lo, hi - 1, max(cap, 1)).round().astype(np.int64))
            drop = np.setdiff1d(np.arange(lo, hi), chosen)
            keep[rows[drop]] = False
    return keep


def alike_members(mask: np.ndarray, account_code: np.ndarray, row_group: np.ndarray) -> dict[str, tuple[float, int]]:
    """Per group: how many members send its ``mask`` rows alike, and how many rows that is.

    The count is the inverse Simpson index of the members' row counts, ``(sum c)^2 / sum c^2``:
    six members sending five template fills each count 6, one member sending nearly all of them
    with a few members tied to it counts about 1. It is the number of separate senders behind a
    group's sweep, which no single account's volume can fake. Rows outside any group are ignored.
    """
    mask = np.asarray(mask, dtype=bool)
    groups = np.asarray(row_group, dtype=object)
    rows = np.flatnonzero(mask & np.array([bool(g) for g in groups], dtype=bool))
    if not len(rows):
        return {}
    account_code = np.asarray(account_code, dtype=np.int64)
    g_codes, g_inv = factorize_str(groups[rows])
    width = int(account_code.max()) + 1
    upair, cnt = np.unique(g_inv.astype(np.int64) * width + account_code[rows], return_counts=True)
    g_of = upair // width
    total = np.bincount(g_of, weights=cnt, minlength=len(g_codes))
    sq = np.bincount(g_of, weights=cnt.astype(np.float64) ** 2, minlength=len(g_codes))
    return {str(g): (float(total[j] ** 2 / sq[j]), int(total[j])) for j, g in enumerate(g_codes)}
