"""Groups of linked accounts: Leiden communities (CPM) over the posterior-weighted account graph.

Why Leiden with the Constant Potts Model. Modularity (Louvain's objective) compares a community's
internal weight with what a degree-preserving random graph would put there, so a campaign whose
accounts are tied by many weak links (a shared scaffold) next to a few strong ones (a card shared by
a handful) is cut along the strong ones: that split the 85-account campaign of the field test into
one group per card. CPM asks a fixed density instead: a set of accounts is a group when the sum of
its edge weights exceeds ``resolution`` times its number of possible pairs. Merging two parts pays
when the ties between them exceed ``resolution * |A| * |B|``, so many weak ties keep a campaign
whole, while an outsider with a single tie to a large group stays out. Leiden (Traag, Waltman and
van Eck, 2019) also guarantees connected communities, which Louvain does not. igraph's
``community_leiden`` implements it; its default objective is CPM with resolution 1, far too strict
for weights that are probabilities, hence the explicit resolution (see
:class:`~promptcov.coverage.linking.params.LinkParams`).
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["leiden_groups", "held_together"]

log = logging.getLogger(__name__)


def leiden_groups(n_nodes: int, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray,
                  resolution: float, seed: int = 0) -> list[np.ndarray]:
    """Communities (arrays of node indices, 2+ nodes) of the weighted undirected graph."""
    if len(rows) == 0:
        return []
    import igraph as ig

    nodes = np.unique(np.concatenate([rows, cols]))
    pos = np.searchsorted(nodes, rows), np.searchsorted(nodes, cols)
    g = ig.Graph(n=len(nodes), edges=list(zip(pos[0].tolist(), pos[1].tolist(), strict=True)), directed=False)
    g.es["weight"] = [float(w) for w in weights]
    import random

    state = random.getstate()
    try:  # igraph draws from Python's random module: seed it, then restore the caller's state
        random.seed(seed)
        ig.set_random_number_generator(random)
        part = g.community_leiden(objective_function="CPM", weights="weight", resolution=resolution, n_iterations=-1)
    finally:
        random.setstate(state)
    out = []
    for members in part:
        if len(members) >= 2:
            out.append(np.sort(nodes[np.asarray(members, dtype=np.int64)]))
    return out


def held_together(members: np.ndarray, rows: np.ndarray, cols: np.ndarray, bits: np.ndarray,
                  min_bits: float) -> np.ndarray:
    """Drop members whose summed evidence (bits) to the rest of the group is below ``min_bits``.

    One weak tie (a benchmark that ran the same judge template once) does not make a member; a real
    member is tied to the others by several or by strong links. Repeats until stable.
    """
    members = np.asarray(members)
    inside = np.isin(rows, members) & np.isin(cols, members)
    r, c, b = rows[inside], cols[inside], np.maximum(bits[inside], 0.0)
    keep = members.copy()
    while len(keep):
        live = np.isin(r, keep) & np.isin(c, keep)
        tie = np.zeros(int(members.max()) + 1)
        np.add.at(tie, r[live], b[live])
        np.add.at(tie, c[live], b[live])
        ok = tie[keep] >= min_bits
        if ok.all():
            break
        keep = keep[ok]
    return keep
