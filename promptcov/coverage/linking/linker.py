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
from dataclasses import dataclass, fields

import networkx as nx
import numpy as np
import scipy.sparse as sp

from promptcov.coverage.frame import RequestFrame
from promptcov.coverage.linking import evidence as ev
from promptcov.coverage.linking.communities import held_together, leiden_groups
from promptcov.coverage.linking.cooccurrence import (
    codes,
    near_duplicate_families,
    pick,
    timing_links,
)
from promptcov.coverage.linking.fellegi_sunter import Family, FSModel, fit_fs
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
_NETWORK = ("none", "asn", "prefix", "ip")


@dataclass(frozen=True)
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
        accts = ev.Accounts(frame.account_id)
        self._ids = accts.ids
        tkey, tnames = codes(frame.template_id)
        popular = self._popular_templates(frame, tkey, len(tnames))
        fixed = self._fixed_evidence(frame, accts, tkey)
        live = ~popular
        families, rows, cols, parts = self._compare(accts, tkey, live, fixed)
        model = fit_fs(families, accts.n_pairs, p.em_iterations, p.em_prior, lam_floor=p.prior_siblings / max(accts.n, 1))
        self.readmitted_templates_ = []
        if popular.any() and len(rows):
            back = self._coherent(popular, tkey, accts, rows, cols, families, model)
            if back.any():
                live = live | back
                self.readmitted_templates_ = sorted(str(tnames[k]) for k in np.flatnonzero(back))
                families, rows, cols, parts = self._compare(accts, tkey, live, fixed, rare=~popular)
                model = fit_fs(families, accts.n_pairs, p.em_iterations, p.em_prior, lam_floor=p.prior_siblings / max(accts.n, 1))
        self.model_: FSModel = model
        bits = model.bits(families)
        total = sum(bits.values()) if bits else np.zeros(0)
        post = model.posterior(total) if len(rows) else np.zeros(0)
        self._build(rows, cols, families, bits, total, post, parts)
        log.info("linked %d accounts into %d groups (%d edges, lambda %.2g) in %.1fs", len(self.groups_),
                 len(self.group_members_), self.graph_.number_of_edges(), model.lam, time.perf_counter() - t0)
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
        near = ev.overlap_matrix(acc, nkey, accts.n_req, all_live, p.max_key_accounts)
        # the null of the behaviour families: the same requests dealt to accounts at random (account
        # sizes kept), which keeps how common each key is and destroys any coordination
        shuffled = np.random.default_rng(p.seed).permutation(acc)
        near_null = ev.null_levels(ev.overlap_matrix(shuffled, nkey, accts.n_req, all_live, p.max_key_accounts),
                                   p.overlap_levels, accts.n_pairs)
        timing, shared_bins, t_ok = ev.timing_levels(acc, frame.ts, n, p)
        org_key, _ = codes(frame.org_id)
        org = np.full(n, -1, dtype=np.int64)
        org[acc[org_key >= 0]] = org_key[org_key >= 0]
        ids = {}
        ips = np.asarray(frame.ip, dtype=object)
        have = np.array([x is not None and x != "" for x in ips], dtype=bool)
        prefixes = np.full(len(ips), None, dtype=object)
        if have.any():  # parse each distinct address once, not once per request
            uniq, inv = np.unique(ips[have].astype(str), return_inverse=True)
            prefixes[have] = np.array([ev.prefix_of(x) for x in uniq], dtype=object)[inv.ravel()]
        for name, values in (("payment", frame.payment_id), ("ip", frame.ip), ("prefix", prefixes),
                             ("asn", frame.asn), ("user_agent", frame.user_agent)):
            mat, holders, has, key = ev.account_values(acc, np.asarray(values, dtype=object), n)
            ids[name] = (mat, holders, has, key)
        span = np.zeros(n)
        if len(acc):
            lo, hi = np.full(n, np.inf), np.full(n, -np.inf)
            np.minimum.at(lo, acc, frame.ts)
            np.maximum.at(hi, acc, frame.ts)
            span = (hi - lo) / 3600.0
        return {"near": near, "near_null": near_null, "shuffled": shuffled, "timing": timing, "span_h": span,
                "shared_bins": shared_bins, "timing_ok": t_ok, "org": org, "ids": ids}

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

    def _compare(self, accts: ev.Accounts, tkey: np.ndarray, live: np.ndarray, fx: dict, rare=None):
        """Candidate pairs and each family's comparison levels for them.

        ``live`` templates count toward the template overlap; the rarity bits of a shared template
        come only from ``rare`` ones (default: the live ones). A re-admitted popular-looking
        template is a signature through its users' overlap, but it is not rare: a stranger who
        also uses it (an evaluator on the same public judge prompt) gets no rarity bits from it.
        """
        p, acc = self.params_, accts.code
        live_ext = np.r_[live, False]
        tmpl = ev.overlap_matrix(acc, tkey, accts.n_req, live_ext, p.max_key_accounts).tocsr()
        near, timing = fx["near"].tocsr(), fx["timing"]
        shuffled = fx["shuffled"]
        null_t = ev.null_levels(ev.overlap_matrix(shuffled, tkey, accts.n_req, live_ext, p.max_key_accounts),
                                p.overlap_levels, accts.n_pairs)
        cand = [tmpl, near, timing]
        for name in ("payment", "ip", "prefix"):
            mat, holders, _, _ = fx["ids"][name]
            binary = mat.copy()
            binary.data = ((holders[binary.indices] >= 2) & (holders[binary.indices] <= p.max_key_accounts)
                           ).astype(np.float64) if binary.nnz else binary.data
            binary.eliminate_zeros()
            cand.append(sp.triu(binary @ binary.T, k=1).tocsr())
        union = sum((c != 0).astype(np.int8) for c in cand).tocoo()
        rows, cols = union.row.astype(np.int64), union.col.astype(np.int64)
        order = np.lexsort((cols, rows))
        rows, cols = rows[order], cols[order]
        parts = {"template": pick(tmpl, rows, cols), "near_duplicate": pick(near, rows, cols),
                 "timing": pick(timing, rows, cols)}
        n_lv = len(p.overlap_levels) + 1
        rare_ext = live_ext if rare is None else np.r_[rare & live, False]
        tkey_live = np.where((tkey >= 0) & rare_ext[np.maximum(tkey, 0)], tkey, -1)
        tmat, _ = ev.tf_bits_matrix(acc, tkey_live, accts.n)
        key_bits = ev.pair_max_bits(tmat, rows, cols)
        # a one-off run inside a day (an evaluator running a judge template) shares a template with
        # whoever uses it; that co-use says little about one operator, unless the two share a whole
        # set of rare scaffolds (a burner account of a hydra fills several of its templates)
        lasting = fx["span_h"] >= p.key_min_span_hours
        short = ~(lasting[rows] & lasting[cols])
        n_shared = np.zeros(len(rows))
        if short.any():
            held = (tmat > 0).astype(np.float64)
            n_shared[short] = pick((held @ held.T).tocsr(), rows[short], cols[short])
        # (and only where the shared templates are a real part of the pair's traffic: level >= 2)
        n_shared = np.where(parts["template"] >= p.overlap_levels[1], n_shared, 0.0)
        key_bits = ev.rarity_bits_kept(key_bits, ~short, n_shared, p.key_min_shared)
        fams = [Family("template", ev.level_of(parts["template"], p.overlap_levels), n_lv, p.max_bits_template,
                       null_u=null_t, key_bits=np.where(key_bits > 0, key_bits, np.nan)),
                Family("near_duplicate", ev.level_of(parts["near_duplicate"], p.overlap_levels), n_lv,
                       p.max_bits_near_duplicate, null_u=fx["near_null"])]
        t_ok = fx["timing_ok"][rows] & fx["timing_ok"][cols]
        # a synchrony link passes a binomial test at alpha / (pairs compared): that is its null rate
        n_cmp = max(float(fx["timing_ok"].sum()) * (float(fx["timing_ok"].sum()) - 1) / 2, 1.0)
        t_null = np.array([1.0 - p.timing_alpha / n_cmp, p.timing_alpha / (2 * n_cmp), p.timing_alpha / (2 * n_cmp)])
        fams.append(Family("timing", np.where(t_ok, ev.level_of(parts["timing"], p.timing_levels), -1), 3,
                           p.max_bits_timing, null_u=t_null))
        fams.append(self._payment(fx, rows, cols, parts))
        fams.append(self._network(fx, rows, cols, parts))
        mat, _, has, _ = fx["ids"]["user_agent"]
        ua = ev.pair_max_bits(mat, rows, cols)
        parts["user_agent"] = ua
        fams.append(Family("client", np.where(has[rows] & has[cols], (ua > 0).astype(np.int64), -1), 2,
                           p.max_bits_client, tf_bits=np.where(ua > 0, ua, np.nan), drives=False))
        return fams, rows, cols, parts

    def _payment(self, fx, rows, cols, parts) -> Family:
        mat, _, has, _ = fx["ids"]["payment"]
        bits = ev.pair_max_bits(mat, rows, cols)
        org = fx["org"]
        same_org = (org[rows] >= 0) & (org[rows] == org[cols])
        # a card shared inside one org is a team's company card: not comparable, neither for nor against
        level = np.where(has[rows] & has[cols] & ~((bits > 0) & same_org), (bits > 0).astype(np.int64), -1)
        parts["payment"], parts["same_org"] = bits, same_org
        return Family("payment", level, 2, self.params_.max_bits_payment, tf_bits=np.where(bits > 0, bits, np.nan),
                      fixed_m=np.array([0.5, 0.5]))

    def _network(self, fx, rows, cols, parts) -> Family:
        has = fx["ids"]["ip"][2] | fx["ids"]["asn"][2]
        level = np.zeros(len(rows), dtype=np.int64)
        tf = np.full(len(rows), np.nan)
        for lv, name in enumerate(_NETWORK[1:], start=1):  # asn < prefix < ip: the strongest shared wins
            bits = ev.pair_max_bits(fx["ids"][name][0], rows, cols)
            parts[name] = bits
            hit = bits > 0
            level[hit], tf[hit] = lv, bits[hit]
        level = np.where(has[rows] & has[cols], level, -1)
        return Family("network", level, 4, self.params_.max_bits_network, tf_bits=tf, drives=False)

    def _coherent(self, popular, tkey, accts, rows, cols, families, model) -> np.ndarray:
        """Popular-looking templates whose users are otherwise tied together: campaign signatures.

        Two tests, either suffices: the users' mean pairwise posterior of one operator (on the
        evidence other than templates and near-duplicates) reaches ``min_coherence`` (one tight
        hydra), or most users (``min_tied_share``) are tied to another user and those ties are
        far beyond chance (Poisson tail at ``alpha`` against the window's own rate of tied pairs:
        a campaign on many cards, each card shared by a few of its accounts). The users of a
        public prompt are strangers to each other.
        """
        from scipy import stats

        p = self.params_
        other = [f for f in families if f.name not in ("template", "near_duplicate")]
        post = model.posterior(sum(model.level_bits(f) for f in other))
        tied = post >= p.min_posterior
        pair_post = sp.csr_matrix((post, (rows, cols)), shape=(accts.n, accts.n))
        pair_post = pair_post + pair_post.T
        base = float(tied.sum()) / max(accts.n_pairs, 1.0)
        candidates = np.flatnonzero(popular)
        back = np.zeros(len(popular), dtype=bool)
        for k in candidates:
            users = np.unique(accts.code[tkey == k])
            if len(users) < p.min_popular_accounts:
                back[k] = True  # too few users to call it popular
                continue
            if len(users) > p.max_key_accounts:
                continue
            n_pairs = len(users) * (len(users) - 1) / 2
            inside = sp.triu(pair_post[users][:, users], k=1).tocsr()
            mean = (inside.sum() + (n_pairs - inside.nnz) * model.lam) / n_pairs
            strong = inside.multiply(inside >= p.min_posterior).tocsr()
            n_tied = strong.nnz
            has_tie = np.zeros(len(users), dtype=bool)
            coo = strong.tocoo()
            has_tie[coo.row] = has_tie[coo.col] = True
            chance = stats.poisson.sf(n_tied - 1, max(base * n_pairs, 1e-12)) if n_tied else 1.0
            beyond = has_tie.mean() >= p.min_tied_share and chance * max(len(candidates), 1) < p.timing_alpha
            back[k] = mean >= p.min_coherence or beyond
        return back

    # ------------------------------------------------------------------ groups
    def _build(self, rows, cols, families, bits, total, post, parts) -> None:
        p, ids = self.params_, self._ids
        strong = np.zeros(len(rows), dtype=bool)
        for f in families:
            if f.name in (*BEHAVIOUR, "payment"):
                strong |= (f.levels > 0) & (bits[f.name] > 0)
        edge = (post >= p.min_posterior) & strong
        er, ec, ep, eb = rows[edge], cols[edge], post[edge], total[edge]
        fam_bits = {k: v[edge] for k, v in bits.items()}
        levels = {f.name: f.levels[edge] for f in families}
        eparts = {k: v[edge] for k, v in parts.items()}
        self.graph_ = nx.Graph()
        self.edges_ = []
        for i, (r, c) in enumerate(zip(er.tolist(), ec.tolist(), strict=True)):
            a, b = str(ids[r]), str(ids[c])
            self.graph_.add_edge(a, b, weight=float(ep[i]), bits=float(eb[i]))
            for fam, fb in fam_bits.items():
                if fb[i] > 0 and levels[fam][i] > 0:
                    kind, detail = self._detail(fam, i, eparts)
                    self.edges_.append(Link(a, b, kind, round(float(ep[i]), 6), f"+{fb[i]:.1f} bits: {detail}",
                                            round(float(fb[i]), 3)))
        self.groups_, self.group_members_, self.membership_, self.cohesion_ = {}, {}, {}, {}
        for comm in leiden_groups(len(ids), er, ec, ep, p.resolution, p.seed):
            comm = held_together(comm, er, ec, eb, p.min_member_bits)
            if len(comm) < p.min_group_size:
                continue
            members = sorted(str(ids[i]) for i in comm)
            gid = "G-" + hashlib.sha1("\n".join(members).encode()).hexdigest()[:10]
            self.group_members_[gid] = members
            inside = np.isin(er, comm) & np.isin(ec, comm)
            self.cohesion_[gid] = float(ep[inside].mean()) if inside.any() else 0.0
            miss = np.ones(len(ids))
            np.multiply.at(miss, er[inside], 1.0 - ep[inside])
            np.multiply.at(miss, ec[inside], 1.0 - ep[inside])
            for i in comm:
                self.groups_[str(ids[i])] = gid
                self.membership_[str(ids[i])] = float(1.0 - miss[i])
        self.group_members_ = dict(sorted(self.group_members_.items()))

    def _empty(self) -> None:
        self.model_ = FSModel(lam=0.0, m={}, u={}, n_pairs=0.0, iterations=0)
        self.readmitted_templates_, self.edges_, self.graph_ = [], [], nx.Graph()
        self.groups_, self.group_members_, self.membership_, self.cohesion_ = {}, {}, {}, {}

    @staticmethod
    def _detail(fam: str, i: int, parts: dict) -> tuple[str, str]:
        if fam == "template":
            return "template", f"rare-template overlap {parts['template'][i]:.2f}"
        if fam == "near_duplicate":
            return "near_duplicate", f"near-duplicate prompt overlap {parts['near_duplicate'][i]:.2f}"
        if fam == "timing":
            return "timing", f"active in the same short time bins (synchrony {parts['timing'][i]:.2f})"
        if fam == "payment":
            return "payment", "shared payment fingerprint across orgs"
        if fam == "client":
            return "user_agent", "shared client user agent"
        for kind, label in (("ip", "shared address"), ("prefix", "shared /24 network"), ("asn", "shared ASN")):
            if parts[kind][i] > 0:
                return kind, label
        return "network", "shared network"

    # ------------------------------------------------------------------ queries
    def links_for(self, account_id: str) -> list[Link]:
        """The links that touch ``account_id`` (strongest first)."""
        if not hasattr(self, "edges_"):
            raise NotFittedError("AccountLinker is not fitted: call fit(frame) first")
        out = [e for e in self.edges_ if account_id in (e.a, e.b)]
        return sorted(out, key=lambda e: (-e.weight, -e.bits))


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
