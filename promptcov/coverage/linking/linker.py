"""Account linking: find the coordinated groups ("hydra clusters") behind a sweep.

A distillation campaign spreads one sweep over many accounts so that no single account looks
big. The accounts still act as one: they fill the same *rare* templates, send near-duplicate
prompts, are paid with the same card and are driven by the same scheduler. Each of these is
turned into a weighted account-account edge, weighted so that common things link no one:

- ``template`` / ``near_duplicate``: accounts whose traffic goes to the same rare templates (or
  near-duplicate prompt families) in the same time window. The weight is a Bhattacharyya
  overlap of the two accounts' key-usage distributions, each key scaled by its rarity
  (:func:`rarity_weights`): two sweep accounts that put most traffic into one rare template
  score near 1; two users who each pasted a popular prompt once score near 0. Popular keys
  (flagged ``template_popular`` or used by more than ``max_key_accounts``) link no one.
- ``payment``: a shared payment fingerprint. Strong, but diluted once more than ``payment_cap``
  accounts share it, and weak inside one ``org_id``: a team sharing a company card is expected,
  so each member gets ``same_org_factor`` (< ``min_member_weight``) in all from it, split over
  its card partners, and that alone makes no group.
- ``ip`` / ``asn``: weight ``~ 1/log2(accounts on the key)`` with a low ceiling, because proxy
  pools, NATs and ISPs are shared with ordinary users. They only add weight to a pair that is
  already linked by behaviour or payment: ip/asn alone never form a group.
- ``timing``: accounts active in the same short time bins far more than chance
  (:func:`timing_links`).

Communities: pairs whose behavioural + payment weight reaches ``min_link_weight`` are kept
(at most ``max_neighbors`` strongest per account), networkx Louvain (seeded, deterministic)
splits the resulting graph, and members tied to the rest of their community by less than
``min_member_weight`` of behaviour + payment are let go. Louvain rather than connected
components because a proxy network mixes customers: one weak bridge must not merge a hydra with
an unrelated account, and modularity cuts such bridges while keeping a densely linked group
whole (``community="components"`` is available where every kept edge should bind).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

import networkx as nx
import numpy as np
import scipy.sparse as sp

from promptcov.coverage.frame import RequestFrame
from promptcov.coverage.linking.cooccurrence import (
    _accounts_per_key,
    _bucketed_overlap,
    _codes,
    _pick,
    near_duplicate_families,
    rarity_weights,
    shared_key_pairs,
    timing_links,
)
from promptcov.errors import InputError, NotFittedError

__all__ = [
    "Link",
    "LINK_TYPES",
    "AccountLinker",
    "rarity_weights",
    "shared_key_pairs",
    "near_duplicate_families",
    "timing_links",
]

log = logging.getLogger(__name__)

#: Link types, as written to the ``links`` table.
LINK_TYPES = ("template", "near_duplicate", "payment", "ip", "asn", "timing")
_BEHAVIOUR = ("template", "near_duplicate", "timing")


@dataclass(frozen=True)
class Link:
    """One piece of evidence that accounts ``a`` < ``b`` are run by the same operator."""

    a: str
    b: str
    link_type: str
    weight: float
    detail: str



class AccountLinker:
    """Link accounts by shared rare behaviour and payment; find their communities.

    Parameters (all keyword):

    - ``window_s``: co-use window for template / near-duplicate links (a week: a campaign's
      rotating accounts work the same templates within days of each other); ``max_key_accounts``: a
      key used by more accounts is popular and links no one; ``evidence_prior``: pseudo-requests
      added to each account's total before key shares are taken (a few shared requests are weak
      evidence); ``near_dup_cosine``, ``near_dup_k``: near-duplicate search.
    - ``payment_cap``, ``same_org_factor``; ``ip_weight``, ``asn_weight``, ``ip_ceiling``,
      ``asn_ceiling``, ``max_ip_accounts``: see the module docstring.
    - ``timing_bin_s``, ``timing_min_requests``, ``timing_min_shared_bins``, ``timing_min_score``,
      ``timing_min_lift``, ``timing_alpha``: see :func:`timing_links`.
    - ``min_link_weight``: behaviour + payment weight a pair needs to count for communities;
      ``min_member_weight``: behaviour + payment weight a member needs to the rest of its group;
      ``max_neighbors``: strongest kept edges per account; ``community`` ("louvain" |
      "components"), ``resolution``, ``min_group_size``, ``seed``.

    Learned: ``edges_`` (list of :class:`Link`), ``graph_`` (networkx Graph, summed weights
    plus one attribute per link type), ``groups_`` (account -> group id), ``group_members_``
    (group id -> sorted accounts). Group ids are ``"G-"`` + a hash of the sorted members.

    Example::

        linker = AccountLinker(seed=0).fit(frame)
        linker.groups_          # {"acct-7": "G-3fa2c9e1d0", ...}
        linker.group_members_   # {"G-3fa2c9e1d0": ["acct-7", "acct-9", ...]}
    """

    def __init__(
        self,
        *,
        window_s: float = 7 * 86400.0,
        max_key_accounts: int = 1000,
        near_dup_cosine: float = 0.95,
        near_dup_k: int = 10,
        evidence_prior: float = 10.0,
        payment_cap: int = 20,
        same_org_factor: float = 0.2,
        ip_weight: float = 0.3,
        asn_weight: float = 0.05,
        ip_ceiling: float = 0.3,
        asn_ceiling: float = 0.05,
        max_ip_accounts: int = 500,
        timing_bin_s: float = 600.0,
        timing_min_requests: int = 20,
        timing_min_shared_bins: int = 5,
        timing_min_score: float = 0.3,
        timing_min_lift: float = 3.0,
        timing_alpha: float = 0.01,
        min_link_weight: float = 0.15,
        min_member_weight: float = 0.3,
        max_neighbors: int = 50,
        community: str = "louvain",
        resolution: float = 1.0,
        min_group_size: int = 2,
        seed: int = 0,
    ):
        self.window_s = window_s
        self.max_key_accounts = max_key_accounts
        self.near_dup_cosine = near_dup_cosine
        self.near_dup_k = near_dup_k
        self.evidence_prior = evidence_prior
        self.payment_cap = payment_cap
        self.same_org_factor = same_org_factor
        self.ip_weight = ip_weight
        self.asn_weight = asn_weight
        self.ip_ceiling = ip_ceiling
        self.asn_ceiling = asn_ceiling
        self.max_ip_accounts = max_ip_accounts
        self.timing_bin_s = timing_bin_s
        self.timing_min_requests = timing_min_requests
        self.timing_min_shared_bins = timing_min_shared_bins
        self.timing_min_score = timing_min_score
        self.timing_min_lift = timing_min_lift
        self.timing_alpha = timing_alpha
        self.min_link_weight = min_link_weight
        self.min_member_weight = min_member_weight
        self.max_neighbors = max_neighbors
        self.community = community
        self.resolution = resolution
        self.min_group_size = min_group_size
        self.seed = seed

    # ------------------------------------------------------------------ evidence per type
    def _behaviour(self, frame, acc, n_req, n_acc, kind):
        """Template or near-duplicate overlap matrix plus per-account key sets (for details)."""
        if kind == "template":
            mask = ~np.asarray(frame.template_popular, dtype=bool)
            key, names = _codes(frame.template_id, mask)
        else:
            untemplated = np.array([t is None or t == "" for t in frame.template_id], dtype=bool)
            untemplated &= ~np.asarray(frame.template_popular, dtype=bool)
            uniq_t, t_inv = np.unique(frame.text_id, return_inverse=True)
            fam = np.arange(len(uniq_t), dtype=np.int64)
            rows = np.full(len(uniq_t), -1, dtype=np.int64)
            rows[t_inv] = frame.vec_row
            has_vec = (rows >= 0) & (frame.vectors.ndim == 2) & (frame.vectors.shape[0] > 0)
            used = np.zeros(len(uniq_t), dtype=bool)
            used[t_inv[untemplated]] = True
            sel = np.flatnonzero(has_vec & used)
            if len(sel) > 1:
                labels = near_duplicate_families(
                    frame.vectors[rows[sel]], self.near_dup_cosine, self.near_dup_k
                )
                fam[sel] = len(uniq_t) + labels
            _, fam = np.unique(fam, return_inverse=True)
            key = np.where(untemplated, fam[t_inv], -1)
            names = np.array(
                [f"family-{i}" for i in range(int(key.max()) + 1 if key.size else 0)], dtype=object
            )
        ok = key >= 0
        n_keys = len(names)
        n_k = _accounts_per_key(acc[ok], key[ok], n_keys) if n_keys else np.zeros(0, dtype=np.int64)
        key_w = rarity_weights(n_k, n_acc, self.max_key_accounts)
        mat = _bucketed_overlap(
            acc[ok], key[ok], frame.ts[ok], n_req + self.evidence_prior, key_w, float(self.window_s), n_acc
        )
        return mat, (acc[ok], key[ok], key_w > 0), names, n_k

    @staticmethod
    def _incidence(acc, key, n_acc, pair_w):
        """Account x key matrix holding ``sqrt(pair_w[key])``: ``A[a] . A[b]`` sums shared keys."""
        ok = key >= 0
        pairs = np.unique(np.stack([acc[ok], key[ok]], axis=1), axis=0)
        pairs = pairs[pair_w[pairs[:, 1]] > 0] if len(pairs) else pairs.reshape(0, 2)
        vals = np.sqrt(pair_w[pairs[:, 1]])
        return sp.csr_matrix((vals, (pairs[:, 0], pairs[:, 1])), shape=(n_acc, max(len(pair_w), 1)))

    @staticmethod
    def _key_sets(acc, key, live, wanted):
        """``{account: set of live keys}`` for the accounts in ``wanted`` (for evidence strings)."""
        sel = wanted[acc] & live[key] if len(acc) else np.zeros(0, dtype=bool)
        sets: dict[int, set[int]] = {}
        for a, k in zip(acc[sel].tolist(), key[sel].tolist(), strict=True):
            sets.setdefault(a, set()).add(k)
        return sets

    # ------------------------------------------------------------------ fit
    def fit(self, frame: RequestFrame) -> AccountLinker:
        """Compute link evidence over ``frame`` and the communities it implies; returns ``self``."""
        if not isinstance(frame, RequestFrame):
            raise InputError(f"AccountLinker.fit needs a RequestFrame, got {type(frame).__name__}")
        if self.community not in ("louvain", "components"):
            raise InputError(f"community must be 'louvain' or 'components', got {self.community!r}")
        if not self.window_s or self.window_s <= 0:
            raise InputError(f"window_s must be > 0, got {self.window_s!r}")
        ids, acc = np.unique(frame.account_id.astype(str), return_inverse=True)
        acc = acc.astype(np.int64).ravel()
        n_acc = len(ids)
        n_req = np.bincount(acc, minlength=n_acc).astype(np.float64)
        t0 = time.perf_counter()
        mats: dict[str, sp.coo_matrix] = {}
        details: dict[str, tuple] = {}
        for kind in ("template", "near_duplicate"):
            mat, sets, names, n_k = self._behaviour(frame, acc, n_req, n_acc, kind)
            mats[kind], details[kind] = mat, (sets, names, n_k)
            log.debug("%s links: %d pairs (%.1fs)", kind, mat.nnz, time.perf_counter() - t0)
        org_codes, _ = _codes(frame.org_id)
        org = np.full(n_acc, -1, dtype=np.int64)
        org[acc[org_codes >= 0]] = org_codes[org_codes >= 0]  # an account's (last seen) org
        shared_ids: dict[str, sp.csr_matrix] = {}
        for kind, field in (("payment", "payment_id"), ("ip", "ip"), ("asn", "asn")):
            key, names = _codes(getattr(frame, field))
            ok = key >= 0
            n_k = _accounts_per_key(acc[ok], key[ok], len(names)) if len(names) else np.zeros(0, np.int64)
            n_k_f = np.maximum(n_k, 2).astype(np.float64)
            if kind == "payment":
                pair_w = np.minimum(1.0, self.payment_cap / n_k_f)
                pair_w[(n_k < 2) | (n_k > self.max_key_accounts)] = 0.0
            else:
                pair_w = (self.ip_weight if kind == "ip" else self.asn_weight) / np.log2(n_k_f)
                pair_w[(n_k < 2) | (n_k > self.max_ip_accounts)] = 0.0
            shared_ids[kind] = self._incidence(acc, key, n_acc, pair_w)
            details[kind] = ((acc[ok], key[ok], pair_w > 0), names, n_k)
        pay = shared_key_pairs(*sp.find(shared_ids["payment"]), n_acc)
        if pay.nnz:
            # a card shared inside one org is a team's company card: it weighs same_org_factor per
            # member in all, split over the member's card partners, so it alone never makes a group
            same = (org[pay.row] >= 0) & (org[pay.row] == org[pay.col])
            deg = np.bincount(np.concatenate([pay.row, pay.col]), minlength=n_acc)
            split = np.maximum(np.maximum(deg[pay.row], deg[pay.col]), 1)
            data = np.minimum(np.where(same, pay.data * self.same_org_factor / split, pay.data), 1.0)
            pay = sp.coo_matrix((data, (pay.row, pay.col)), shape=pay.shape)
        mats["payment"] = pay
        mats["timing"], shared_bins = timing_links(
            acc,
            frame.ts,
            n_acc,
            bin_s=self.timing_bin_s,
            min_requests=self.timing_min_requests,
            min_shared_bins=self.timing_min_shared_bins,
            min_score=self.timing_min_score,
            min_lift=self.timing_min_lift,
            alpha=self.timing_alpha,
        )
        log.debug("payment/ip/asn/timing links done (%.1fs)", time.perf_counter() - t0)
        self._build(ids, mats, shared_ids, details, shared_bins, org)
        log.debug("graph and communities done (%.1fs)", time.perf_counter() - t0)
        return self

    def _build(self, ids, mats, shared_ids, details, shared_bins, org):
        n_acc = len(ids)
        csr = {k: m.tocsr() for k, m in mats.items()}
        strong = sum(csr[k] for k in (*_BEHAVIOUR, "payment"))
        strong = sp.triu(strong, k=1).tocoo()
        keep = strong.data >= self.min_link_weight
        beh = sum(csr[k] for k in _BEHAVIOUR)
        has_beh = _pick(beh, strong.row, strong.col) > 0
        has_pay = _pick(csr["payment"], strong.row, strong.col) > 0
        keep &= has_beh | has_pay
        rows, cols = strong.row[keep], strong.col[keep]
        # ip / asn only add to pairs already linked, each capped: a proxy pool convicts no one
        for kind, cap in (("ip", self.ip_ceiling), ("asn", self.asn_ceiling)):
            inc = shared_ids[kind]
            w = np.asarray(inc[rows].multiply(inc[cols]).sum(axis=1)).ravel() if len(rows) else np.zeros(0)
            csr[kind] = sp.csr_matrix((np.minimum(w, cap), (rows, cols)), shape=(n_acc, n_acc))
        total = strong.data[keep] + _pick(csr["ip"] + csr["asn"], rows, cols)
        rows, cols, total = self._prune_neighbors(rows, cols, total)
        order = np.lexsort((cols, rows))
        rows, cols, total = rows[order], cols[order], total[order]
        typed = {k: _pick(csr[k], rows, cols) for k in LINK_TYPES}
        wanted = np.zeros(n_acc, dtype=bool)
        wanted[rows], wanted[cols] = True, True
        sets = {k: self._key_sets(*details[k][0], wanted) for k in details}
        self.graph_ = nx.Graph()
        self.edges_ = []
        for i, (r, c, w) in enumerate(zip(rows.tolist(), cols.tolist(), total.tolist(), strict=True)):
            a, b = str(ids[r]), str(ids[c])
            per_type = {k: float(typed[k][i]) for k in LINK_TYPES}
            self.graph_.add_edge(a, b, weight=float(w), **{k: v for k, v in per_type.items() if v > 0})
            for kind in LINK_TYPES:
                if per_type[kind] > 0:
                    detail = self._detail(kind, sets, details, r, c, shared_bins, org)
                    self.edges_.append(Link(a, b, kind, round(per_type[kind], 6), detail))
        if self.community == "louvain" and self.graph_.number_of_edges():
            comms = nx.community.louvain_communities(
                self.graph_, weight="weight", resolution=self.resolution, seed=self.seed
            )
        else:
            comms = list(nx.connected_components(self.graph_))
        self.groups_, self.group_members_ = {}, {}
        for comm in comms:
            comm = self._held_together(comm)
            if len(comm) < self.min_group_size:
                continue
            members = sorted(comm)
            gid = "G-" + hashlib.sha1("\n".join(members).encode()).hexdigest()[:10]
            self.group_members_[gid] = members
            self.groups_.update(dict.fromkeys(members, gid))
        self.group_members_ = dict(sorted(self.group_members_.items()))
        log.info(
            "linked %d accounts into %d groups (%d edges)",
            len(self.groups_),
            len(self.group_members_),
            self.graph_.number_of_edges(),
        )

    def _held_together(self, comm: set) -> set:
        """Drop members whose behaviour + payment weight to the rest is below ``min_member_weight``.

        One weak link (a benchmark that ran the same public judge template once) must not make
        an account part of a hydra; a real member is tied to the others by several or strong links.
        """
        comm = set(comm)
        while comm:
            weak = set()
            for node in comm:
                tie = sum(
                    sum(d.get(k, 0.0) for k in (*_BEHAVIOUR, "payment"))
                    for nb, d in self.graph_[node].items()
                    if nb in comm
                )
                if tie < self.min_member_weight:
                    weak.add(node)
            if not weak:
                break
            comm -= weak
        return comm

    def _prune_neighbors(self, rows, cols, w):
        """Keep an edge only if it is among the ``max_neighbors`` strongest of either endpoint."""
        if len(rows) == 0 or self.max_neighbors is None:
            return rows, cols, w
        ends = np.concatenate([rows, cols])
        ww = np.concatenate([w, w])
        eid = np.concatenate([np.arange(len(rows))] * 2)
        order = np.lexsort((eid, -ww, ends))
        ends_sorted = ends[order]
        starts = np.searchsorted(ends_sorted, ends_sorted, side="left")
        rank = np.arange(len(order)) - starts
        keep = np.zeros(len(rows), dtype=bool)
        keep[eid[order][rank < self.max_neighbors]] = True
        return rows[keep], cols[keep], w[keep]

    @staticmethod
    def _detail(kind, sets, details, r, c, shared_bins, org) -> str:
        if kind == "timing":
            return f"active in the same short time bins ({shared_bins.get((r, c), 0)} shared)"
        _, names, n_k = details[kind]
        shared = sorted(sets[kind].get(r, set()) & sets[kind].get(c, set()), key=lambda k: (n_k[k], k))
        if not shared:
            return f"shared {kind}"
        ex = shared[0]
        label = {"template": "rare template", "near_duplicate": "near-duplicate prompt family"}.get(
            kind, kind
        )
        if len(shared) > 1:
            label = label[:-1] + "ies" if label.endswith("family") else label + "s"
        text = f"{len(shared)} shared {label}"
        if kind != "near_duplicate":
            text += f", e.g. {names[ex]}"
        text += f" (used by {int(n_k[ex])} accounts)"
        if kind == "payment":
            same = org[r] >= 0 and org[r] == org[c]
            text += " in the same org" if same else " across orgs"
        return text

    # ------------------------------------------------------------------ queries
    def links_for(self, account_id: str) -> list[Link]:
        """The links that touch ``account_id`` (strongest first)."""
        if not hasattr(self, "edges_"):
            raise NotFittedError("AccountLinker is not fitted: call fit(frame) first")
        out = [e for e in self.edges_ if account_id in (e.a, e.b)]
        return sorted(out, key=lambda e: -e.weight)
