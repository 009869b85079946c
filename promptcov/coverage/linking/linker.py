"""Account linking: find the coordinated groups ("hydra clusters") behind a sweep.

A campaign spreads one sweep over many accounts so that no single account looks big. The
accounts still act as one: they fill the same rare scaffolds, send near-duplicate prompts, fire in
the same minutes, share cards, proxy addresses and client strings. :class:`AccountLinker` compares
every candidate pair of accounts on six families of such evidence
(:mod:`~promptcov.coverage.linking.evidence`), weighs each by how surprising it is *in this
window* with Fellegi-Sunter weights estimated by EM (:mod:`~promptcov.coverage.linking.fellegi_sunter`:
a card or address few accounts share weighs a lot, a big proxy pool's address or a common ASN
little), and groups the accounts with Leiden communities (:mod:`~promptcov.coverage.linking.communities`).

Two rules keep ordinary customers out:

- a shared address, prefix, ASN or client string never links on its own: an edge needs behaviour
  (template, near-duplicate, timing) or payment evidence;
- a template that many accounts use a little (a popular public prompt) links no one, unless its
  users are otherwise tied together (infrastructure, payment, timing) beyond chance: then it is a
  campaign's signature (``min_coherence``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import fields

import networkx as nx
import numpy as np

from promptcov.coverage.frame import RequestFrame
from promptcov.coverage.linking import evidence as ev
from promptcov.coverage.linking.communities import held_together, leiden_groups
from promptcov.coverage.linking.comparison import Comparison
from promptcov.coverage.linking.cooccurrence import (
    codes,
    near_duplicate_families,
    timing_links,
)
from promptcov.coverage.linking.fellegi_sunter import FSModel, fit_fs
from promptcov.coverage.linking.links import Link, edge_links, group_edges, link_fields
from promptcov.coverage.linking.pairs import triu_entries
from promptcov.coverage.linking.params import LinkParams
from promptcov.errors import InputError, NotFittedError

__all__ = ["Link", "LINK_TYPES", "BEHAVIOUR", "AccountLinker", "link_fields", "group_edges",
           "near_duplicate_families",
           "timing_links"]

log = logging.getLogger(__name__)

#: Link types written to the ``links`` table (the network family reports its strongest level).
LINK_TYPES = ("template", "near_duplicate", "timing", "payment", "ip", "prefix", "asn", "user_agent")
#: Families that can make an edge on their own (with payment); network and client only add.
BEHAVIOUR = ("template", "near_duplicate", "timing")


class AccountLinker:
    """Link accounts by shared rare behaviour, payment and infrastructure; find their groups.

    Parameters: one :class:`~promptcov.coverage.linking.params.LinkParams` (``params``) or its
    fields as keywords.

    Learned: ``model_`` (the fitted :class:`~promptcov.coverage.linking.fellegi_sunter.FSModel`),
    ``edges_`` (list of :class:`Link`, one per family that added evidence to an edge),
    ``graph_`` (networkx Graph of the edges, ``weight`` = posterior, ``bits`` = total evidence),
    ``groups_`` (account -> group id), ``group_members_`` (group id -> sorted accounts),
    ``membership_`` (account -> probability that it is tied to its group: ``1 - prod(1 - p)``
    over its edges to fellow members), ``cohesion_`` (group -> mean posterior of its edges),
    ``readmitted_templates_`` (popular-looking templates kept as signatures). Group ids are
    ``"G-"`` + a hash of the sorted members.

    Example::

        linker = AccountLinker().fit(frame)
        linker.group_members_   # {"G-3fa2c9e1d0": ["acct-7", "acct-9", ...]}
    """

    def __init__(self, params: LinkParams | None = None, **overrides):
        self.params = params
        self.overrides = overrides

    def _params(self) -> LinkParams:
        base = self.params if self.params is not None else LinkParams()
        known = {f.name for f in fields(LinkParams)}
        bad = sorted(set(self.overrides) - known)
        if bad:
            raise InputError(f"unknown linker setting(s): {', '.join(bad)}")
        from dataclasses import replace

        try:
            return replace(base, **self.overrides)
        except ValueError as exc:
            raise InputError(f"linker settings: {exc}") from exc

    # ------------------------------------------------------------------ fit
    def fit(self, frame: RequestFrame) -> AccountLinker:
        """Compare candidate pairs, estimate the weights, find the groups; returns ``self``."""
        if not isinstance(frame, RequestFrame):
            raise InputError(f"AccountLinker.fit needs a RequestFrame, got {type(frame).__name__}")
        p = self.params_ = self._params()
        t0 = time.perf_counter()
        if len(frame) == 0:
            self._empty()
            return self
        accts = ev.Accounts(frame.account_id, frame.account_codes())
        self._ids = accts.ids
        tkey, tnames = frame.codes("template_id")
        popular = self._popular_templates(frame, tkey, len(tnames))
        fixed = self._fixed_evidence(frame, accts, tkey)
        live = ~popular
        cmp = Comparison(p, accts, fixed, tkey, np.r_[live, False])
        families, rows, cols, parts, w = cmp.run()
        lam_floor = p.prior_siblings / max(accts.n, 1)
        model = fit_fs(families, accts.n_pairs, p.em_iterations, p.em_prior, lam_floor=lam_floor, weights=w)
        self.readmitted_templates_ = []
        # popular-looking templates whose users are tied otherwise: first by operator evidence alone,
        # then also by the templates kept so far (a campaign's scaffolds vouch for each other)
        for exclude in (("template", "near_duplicate"), ("near_duplicate",)):
            if not (popular & ~live).any() or not len(w):
                break
            back = cmp.coherent(popular & ~live, tkey, model, families, w, exclude=exclude)
            if not back.any():
                break
            live = live | back
            self.readmitted_templates_ = sorted(str(tnames[k]) for k in np.flatnonzero(popular & live))
            # the re-admitted templates count toward overlap, but give no rarity bits
            cmp = Comparison(p, accts, fixed, tkey, np.r_[live, False], rare_ext=np.r_[~popular & live, False])
            families, rows, cols, parts, w = cmp.run()
            model = fit_fs(families, accts.n_pairs, p.em_iterations, p.em_prior, lam_floor=lam_floor, weights=w)
        self.model_: FSModel = model
        n = len(rows)  # the tied pairs, one by one; the weighted rows after them never make an edge
        bits = {k: v[:n] for k, v in model.bits(families).items()}
        total = sum(bits.values()) if bits else np.zeros(0)
        post = model.posterior(total) if n else np.zeros(0)
        levels = {f.name: f.levels[:n] for f in families}
        self._build(rows, cols, levels, bits, total, post, parts)
        log.info("linked %d accounts into %d groups (%d edges, lambda %.2g) in %.1fs", len(self.groups_),
                 len(self.group_members_), len(self._edge_arrays[0]), model.lam, time.perf_counter() - t0)
        return self

    def _popular_templates(self, frame: RequestFrame, tkey: np.ndarray, n_t: int) -> np.ndarray:
        pop = np.zeros(n_t, dtype=bool)
        flag = np.asarray(frame.template_popular, dtype=bool)
        if n_t:
            pop[tkey[(tkey >= 0) & flag]] = True
        return pop

    def _fixed_evidence(self, frame: RequestFrame, accts: ev.Accounts, tkey: np.ndarray) -> dict:
        """Evidence that does not depend on which templates are live: near-duplicates, timing, identifiers."""
        p, acc, n = self.params_, accts.code, accts.n
        nkey = self._near_dup_keys(frame, tkey)
        all_live = np.ones(int(nkey.max(initial=-1)) + 2, bool)
        near = ev.overlap_factor(acc, nkey, accts.n_req, all_live, p.max_key_accounts)
        # the null of the behaviour families: the same requests dealt to accounts at random (account
        # sizes kept), which keeps how common each key is and destroys any coordination
        shuffled = np.random.default_rng(p.seed).permutation(acc)
        near_null = ev.null_level_counts(
            triu_entries(ev.overlap_factor(shuffled, nkey, accts.n_req, all_live, p.max_key_accounts), p.pair_block),
            p.overlap_levels, accts.n_pairs)
        timing, t_ok = ev.timing_levels(acc, frame.ts, n, p)
        org_key, _ = frame.codes("org_id")
        org = np.full(n, -1, dtype=np.int64)
        org[acc[org_key >= 0]] = org_key[org_key >= 0]
        ids, binary = {}, []
        ip_key, ip_values = frame.codes("ip")
        p_key, _ = codes(ev.prefixes(ip_values))  # each distinct address parsed once
        keys = {"payment": frame.codes("payment_id")[0], "ip": ip_key,
                "prefix": np.where(ip_key >= 0, p_key[np.maximum(ip_key, 0)] if len(p_key) else -1, -1),
                "asn": frame.codes("asn")[0], "user_agent": frame.codes("user_agent")[0]}
        for name, key in keys.items():
            mat, holders, has = ev.account_values(acc, key, n)
            ids[name] = (mat, holders, has, key)
            if name in ("payment", "ip", "prefix"):  # values held by 2 to max_key_accounts make candidates
                b = mat.copy()
                b.data = (((holders[b.indices] >= 2) & (holders[b.indices] <= p.max_key_accounts)).astype(np.float64)
                          if b.nnz else b.data)
                b.eliminate_zeros()
                binary.append(b)
        span = np.zeros(n)
        if len(acc):
            lo, hi = np.full(n, np.inf), np.full(n, -np.inf)
            np.minimum.at(lo, acc, frame.ts)
            np.maximum.at(hi, acc, frame.ts)
            span = (hi - lo) / 3600.0
        # the template keys the shuffled null deals (the same whichever templates are live)
        null_tkey = ev.null_keys(acc, tkey)
        return {"near_factor": near, "near_null": near_null, "shuffled": shuffled, "null_tkey": null_tkey,
                "timing": timing, "span_h": span, "timing_ok": t_ok, "org": org, "ids": ids, "binary": binary}

    def _near_dup_keys(self, frame: RequestFrame, tkey: np.ndarray) -> np.ndarray:
        """Near-duplicate family per untemplated request (-1 for templated or popular rows)."""
        p = self.params_
        untemplated = (tkey < 0) & ~np.asarray(frame.template_popular, dtype=bool)
        uniq_t, t_inv = np.unique(frame.text_id, return_inverse=True)
        t_inv = t_inv.ravel()
        fam = np.arange(len(uniq_t), dtype=np.int64)
        rows = np.full(len(uniq_t), -1, dtype=np.int64)
        rows[t_inv] = frame.vec_row
        has_vec = (rows >= 0) & (frame.vectors.ndim == 2) & (frame.vectors.shape[0] > 0)
        used = np.zeros(len(uniq_t), dtype=bool)
        used[t_inv[untemplated]] = True
        sel = np.flatnonzero(has_vec & used)
        if len(sel) > 1:
            labels = near_duplicate_families(frame.vectors[rows[sel]], p.near_dup_cosine, p.near_dup_k)
            fam[sel] = len(uniq_t) + labels
        _, fam = np.unique(fam, return_inverse=True)
        return np.where(untemplated, fam.ravel()[t_inv], -1)

    # ------------------------------------------------------------------ groups
    def _build(self, rows, cols, levels, bits, total, post, parts) -> None:
        p, ids = self.params_, self._ids
        strong = np.zeros(len(rows), dtype=bool)
        for name in (*BEHAVIOUR, "payment"):
            strong |= (levels[name] > 0) & (bits[name] > 0)
        edge = (post >= p.min_posterior) & strong
        er, ec, ep, eb = rows[edge], cols[edge], post[edge], total[edge]
        self._edge_arrays = (er, ec, ep, eb)
        self.edges_ = edge_links(ids, er, ec, ep, {k: v[edge] for k, v in bits.items()},
                                 {k: v[edge] for k, v in levels.items()}, {k: v[edge] for k, v in parts.items()})
        self.groups_, self.group_members_, self.membership_, self.cohesion_ = {}, {}, {}, {}
        label = np.full(len(ids), -1, dtype=np.int64)
        comms = leiden_groups(len(ids), er, ec, ep, p.resolution, p.seed)
        for j, sel in enumerate(_edges_by_part(len(ids), comms, er, ec)):  # each community's own edges
            comm = held_together(comms[j], er[sel], ec[sel], eb[sel], p.min_member_bits)
            if len(comm) < p.min_group_size:
                continue
            label[comm] = len(self.group_members_)
            members = sorted(str(ids[i]) for i in comm)
            self.group_members_["G-" + hashlib.sha1("\n".join(members).encode()).hexdigest()[:10]] = comm
        same = (label[er] >= 0) & (label[er] == label[ec])
        g_of_edge = np.where(same, label[er], -1)
        inside = np.flatnonzero(same)
        inside = inside[np.argsort(g_of_edge[inside], kind="stable")]  # by group, edge order kept
        bounds = np.searchsorted(g_of_edge[inside], np.arange(len(self.group_members_) + 1))
        miss = np.ones(len(ids))
        np.multiply.at(miss, er[same], 1.0 - ep[same])
        np.multiply.at(miss, ec[same], 1.0 - ep[same])
        for g, (gid, comm) in enumerate(list(self.group_members_.items())):
            ep_g = ep[inside[bounds[g]:bounds[g + 1]]]
            self.cohesion_[gid] = float(ep_g.mean()) if len(ep_g) else 0.0
            self.group_members_[gid] = sorted(str(ids[i]) for i in comm)
            for i in comm:
                self.groups_[str(ids[i])] = gid
                self.membership_[str(ids[i])] = float(1.0 - miss[i])
        self.group_members_ = dict(sorted(self.group_members_.items()))

    @property
    def graph_(self) -> nx.Graph:
        """networkx Graph of the edges (``weight`` = posterior, ``bits`` = total evidence), built on first use."""
        if "_graph" not in self.__dict__:
            er, ec, ep, eb = self._edge_arrays  # AttributeError before fit, as for any learned attribute
            g = nx.Graph()
            ids = self._ids
            g.add_edges_from((str(ids[r]), str(ids[c]), {"weight": w, "bits": b})
                             for r, c, w, b in zip(er.tolist(), ec.tolist(), ep.tolist(), eb.tolist(), strict=True))
            self._graph = g
        return self._graph

    def _empty(self) -> None:
        self.model_ = FSModel(lam=0.0, m={}, u={}, n_pairs=0.0, iterations=0)
        self.readmitted_templates_, self.edges_ = [], []
        self._edge_arrays = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
        self.groups_, self.group_members_, self.membership_, self.cohesion_ = {}, {}, {}, {}

    # ------------------------------------------------------------------ queries
    def links_for(self, account_id: str) -> list[Link]:
        """The links that touch ``account_id`` (strongest first)."""
        if not hasattr(self, "edges_"):
            raise NotFittedError("AccountLinker is not fitted: call fit(frame) first")
        out = [e for e in self.edges_ if account_id in (e.a, e.b)]
        return sorted(out, key=lambda e: (-e.weight, -e.bits))


def _edges_by_part(n: int, parts: list[np.ndarray], er: np.ndarray, ec: np.ndarray) -> list[np.ndarray]:
    """For each part (disjoint node sets), the indices of the edges inside it, in edge order."""
    label = np.full(n, -1, dtype=np.int64)
    for j, part in enumerate(parts):
        label[part] = j
    inside = np.flatnonzero((label[er] >= 0) & (label[er] == label[ec]))
    inside = inside[np.argsort(label[er[inside]], kind="stable")]
    bounds = np.searchsorted(label[er[inside]], np.arange(len(parts) + 1))
    return [inside[bounds[j]:bounds[j + 1]] for j in range(len(parts))]
