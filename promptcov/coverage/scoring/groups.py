"""Score linked groups: their pooled traffic and its sweep component, with coordination evidence."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from promptcov.coverage.frame import RequestFrame
from promptcov.coverage.metrics.accounts import compute_pooled_metrics
from promptcov.coverage.scoring.component import (
    alike_members,
    cot_rows,
    group_owned_popular,
    rare_template_rows,
    spread_cap,
)
from promptcov.coverage.scoring.params import ScoreWeights
from promptcov.coverage.scoring.score import group_evidence, score_metrics, timing_class

__all__ = ["score_groups"]


def score_groups(frame: RequestFrame, members: dict[str, list[str]], cohesion: dict[str, float], cells: np.ndarray,
                 population, kw: dict, w: ScoreWeights, owned_share: float) -> tuple:
    """Pooled group scores: the larger of all traffic and its sweep component.

    A group's pooled traffic counts the popular-looking templates it owns as rare
    (:func:`~promptcov.coverage.scoring.component.group_owned_popular`), and each member adds
    at most as many rows as the group's second-largest contributor, to both the pooled traffic
    and the sweep component (:func:`~promptcov.coverage.scoring.component.spread_cap`). The
    component's evidence is as reliable as its volume, or as the number of members filling the
    group's rare templates alike (:func:`~promptcov.coverage.scoring.component.alike_members`),
    whichever is more.

    Returns ``(group ids, pooled metrics, scores, pooled contributions, component columns)``;
    the component columns map a group id to ``(component metrics, contributions, row)``.
    """
    ccols: dict = {}
    group_of = {a: g for g, accts in members.items() for a in accts}
    acct_code, ids = frame.account_codes()
    row_group = np.array([group_of.get(a, "") for a in ids], dtype=object)[acct_code]  # one look-up per account
    frame = replace(frame, template_popular=group_owned_popular(
        frame.template_id, frame.template_popular, row_group, owned_share))
    # only group members' rows are pooled: the subsets below copy those, not the whole window
    grouped = row_group != ""
    # many accounts acting as one: no single member's traffic may be most of the group's evidence
    keep = spread_cap(grouped, acct_code, row_group)
    gids, gm = compute_pooled_metrics(frame.subset(keep), members, cells=cells[keep], population=population, **kw)
    if not len(gids):
        return gids, gm, np.zeros(0), {}, ccols
    gm["timing_class"] = timing_class(gm, w)
    gm["cohesion"] = np.array([cohesion.get(g, 0.0) for g in gids])
    # the sweep component (rare-template fills or CoT) and, within it, the fills alone
    rare = rare_template_rows(frame.template_id, frame.template_popular)
    mask = spread_cap((rare | cot_rows(frame.capability, frame.marker)) & grouped, acct_code, row_group)
    filled = spread_cap(rare & grouped, acct_code, row_group)
    alike = alike_members(filled, acct_code, row_group)
    gm["alike_members"] = np.array([alike.get(g, (0.0, 0))[0] for g in gids])
    n_filled = np.array([alike.get(g, (0.0, 0))[1] for g in gids], dtype=np.float64)
    size = gm["alike_members"] if w.group_size_alike else gm["n_members"]
    evidence = group_evidence(size, gm["cohesion"], gm["sync_share"], w)
    gscore, gcontrib = score_metrics(gm, w, evidence)
    gm["pooled_score"] = gscore
    cids, cm = compute_pooled_metrics(frame.subset(mask), members, cells=cells[mask], population=population,
                                      **kw)
    where = {g: j for j, g in enumerate(gids)}
    pick = np.array([where[c] for c in cids], dtype=np.int64)
    gm["component_share"] = np.zeros(len(gids))
    gm["component_score"] = np.zeros(len(gids))
    if len(cids):
        cm["timing_class"] = timing_class(cm, w)
        # the replicates vouch for the fills: their share of the component, and of the pooled traffic
        share = n_filled[pick] / np.maximum(cm["n_requests"], 1.0) * np.minimum(
            1.0, n_filled[pick] / np.maximum(gm["n_requests"][pick], 1.0) / max(w.alike_full_share, 1e-9))
        cscore, ccontrib = score_metrics(cm, w, evidence[pick], gm["alike_members"][pick], share)
        gm["component_share"][pick] = cm["n_requests"] / gm["n_requests"][pick]
        gm["component_score"][pick] = cscore
        ccols = {g: (cm, ccontrib, k) for k, g in enumerate(cids)}
    return gids, gm, np.maximum(gscore, gm["component_score"]), gcontrib, ccols
