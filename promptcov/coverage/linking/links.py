"""The links the account linker reports: one :class:`Link` per family that tied an edge, built in bulk.

:func:`edge_links` turns the linker's edge arrays into :class:`Link` records without a Python loop
per family and edge test; :func:`link_fields` and :func:`group_edges` read links back in the shapes
the detector and the store use.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

import numpy as np

__all__ = ["Link", "edge_links", "link_fields", "group_edges"]


@dataclass(frozen=True, slots=True)
class Link:
    """One piece of evidence that accounts ``a`` < ``b`` are run by one operator.

    ``weight`` is the pair's posterior probability of one operator (all families together);
    ``bits`` what this family added (log2 Bayes factor); ``detail`` says what was shared.
    """

    a: str
    b: str
    link_type: str
    weight: float
    detail: str
    bits: float = 0.0


_FIXED = {"payment": ("payment", "shared payment fingerprint across orgs"),
          "client": ("user_agent", "shared client user agent")}
_OVERLAP = {"template": "rare-template overlap {:.2f}", "near_duplicate": "near-duplicate prompt overlap {:.2f}",
            "timing": "active in the same short time bins (synchrony {:.2f})"}
_NETWORK = (("ip", "shared address"), ("prefix", "shared /24 network"), ("asn", "shared ASN"))


def _kinds(fam: str, sel: np.ndarray, parts: dict) -> tuple[list[str], list[str]]:
    """Link type and detail (without the bits) of the edges ``sel`` for one family."""
    if fam in _OVERLAP:
        fmt = _OVERLAP[fam]
        return [fam] * len(sel), [fmt.format(v) for v in parts[fam][sel].tolist()]
    if fam in _FIXED:
        kind, label = _FIXED[fam]
        return [kind] * len(sel), [label] * len(sel)
    kinds = np.full(len(sel), "network", dtype=object)
    labels = np.full(len(sel), "shared network", dtype=object)
    for kind, label in reversed(_NETWORK):  # the strongest shared level wins: ip over prefix over asn
        hit = parts[kind][sel] > 0
        kinds[hit], labels[hit] = kind, label
    return kinds.tolist(), labels.tolist()


def edge_links(ids: np.ndarray, er: np.ndarray, ec: np.ndarray, ep: np.ndarray, bits: dict, levels: dict,
               parts: dict) -> list[Link]:
    """One :class:`Link` per edge and family with positive bits at an agreement level, edge by edge
    (families in the order of ``bits``)."""
    if len(er) == 0:
        return []
    enabled = gc.isenabled()
    gc.disable()  # millions of small objects: the cyclic collector would rescan them over and over
    try:
        return _edge_links(ids, er, ec, ep, bits, levels, parts)
    finally:
        if enabled:
            gc.enable()


def _edge_links(ids, er, ec, ep, bits, levels, parts) -> list[Link]:
    names = [str(x) for x in ids.tolist()]  # one string object per account, shared by its links
    a = [names[i] for i in er.tolist()]
    b = [names[i] for i in ec.tolist()]
    weight = [round(x, 6) for x in ep.tolist()]
    edge_idx, fam_idx, kinds, details, fbits = [], [], [], [], []
    said: dict[str, str] = {}  # one string object per distinct detail (they repeat a lot)
    for j, fam in enumerate(bits):
        fb = bits[fam]
        sel = np.flatnonzero((fb > 0) & (levels[fam] > 0))
        if not len(sel):
            continue
        kind, label = _kinds(fam, sel, parts)
        vals = fb[sel].tolist()
        edge_idx.append(sel)
        fam_idx.append(np.full(len(sel), j))
        kinds += kind
        details += [said.setdefault(t, t) for t in (f"+{v:.1f} bits: {lab}" for v, lab in zip(vals, label, strict=True))]
        fbits += [round(v, 3) for v in vals]
    if not edge_idx:
        return []
    e, f = np.concatenate(edge_idx), np.concatenate(fam_idx)
    order = np.lexsort((f, e)).tolist()
    e = e.tolist()
    return [Link(a[e[i]], b[e[i]], kinds[i], weight[e[i]], details[i], fbits[i]) for i in order]


def link_fields(link) -> tuple[str, str, str, float, str]:
    """``(a, b, link_type, weight, detail)`` of a :class:`Link`, a dict or a 4/5-tuple."""
    if isinstance(link, dict):
        a, b, kind = link["a"], link["b"], link["link_type"]
        return str(a), str(b), str(kind), float(link.get("weight", 1.0)), str(link.get("detail", ""))
    if isinstance(link, (tuple, list)):
        a, b, kind, weight, *rest = link
        return str(a), str(b), str(kind), float(weight), str(rest[0]) if rest else ""
    return str(link.a), str(link.b), str(link.link_type), float(link.weight), str(getattr(link, "detail", ""))


def group_edges(edges: list[tuple], groups: dict[str, str]) -> dict[str, list[tuple]]:
    """Edges (as :func:`link_fields` tuples) whose two ends are in the same group, by group."""
    out: dict[str, list[tuple]] = {}
    for e in edges:
        g = groups.get(e[0])
        if g is not None and g == groups.get(e[1]):
            out.setdefault(g, []).append(e)
    return out
