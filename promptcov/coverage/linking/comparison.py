"""One window's comparison of candidate account pairs: each family's level, streamed in blocks.

:class:`Comparison` turns the evidence the linker gathered once per window (near-duplicate and
identifier matrices, synchrony links) and the set of live templates into the six families of
:mod:`~promptcov.coverage.linking.fellegi_sunter` for any list of pairs (:meth:`Comparison.levels`,
:meth:`Comparison.families`), and compares every candidate pair of the window block by block
(:meth:`Comparison.run`, through :mod:`~promptcov.coverage.linking.pairs`).

Most candidate pairs of a large window share one common key and nothing else: no driving family
(template, near-duplicate, timing, payment) ties them. Such a pair can never become an edge, and
all it contributes to the Fellegi-Sunter estimate is its combination of levels, so :meth:`run`
keeps the pairs some driving family ties one by one and folds the rest into one weighted row per
combination of levels. The estimate is the same as with every pair listed (up to rounding), and
memory is that of the tied pairs plus one block.
"""

from __future__ import annotations

import numpy as np

from promptcov.coverage.linking import evidence as ev
from promptcov.coverage.linking.fellegi_sunter import Family
from promptcov.coverage.linking.pairs import Sources, candidate_blocks, triu_entries

__all__ = ["FAMILIES", "DRIVING", "NETWORK_LEVELS", "Comparison"]

#: The families, in the order the linker reports them.
FAMILIES = ("template", "near_duplicate", "timing", "payment", "network", "client")
#: Families whose agreement can make an edge (behaviour and payment).
DRIVING = ("template", "near_duplicate", "timing", "payment")
#: Network levels, weakest first: the strongest shared one wins.
NETWORK_LEVELS = ("none", "asn", "prefix", "ip")
_BASE = 8  # level + 1 < 8 for every family: one digit per family in a pattern code
_TF_NAMES = ("template_key", "payment", "network", "client")


class Comparison:
    """Compare the candidate pairs of a window with templates ``live`` (bool per template code + 1).

    ``fx`` is the linker's per-window evidence (see ``AccountLinker._fixed_evidence``).
    """

    def __init__(self, params, accts, fx: dict, tkey: np.ndarray, live_ext: np.ndarray,
                 rare_ext: np.ndarray | None = None):
        self.p, self.accts, self.fx = params, accts, fx
        acc, p = accts.code, params
        tfac = ev.overlap_factor(acc, tkey, accts.n_req, live_ext, p.max_key_accounts)
        null_f = ev.overlap_factor(fx["shuffled"], fx["null_tkey"], accts.n_req, live_ext, p.max_key_accounts)
        self.null_t = ev.null_level_counts(triu_entries(null_f, p.pair_block), p.overlap_levels, accts.n_pairs)
        # the rarity bits of a shared template come only from ``rare`` ones (default: the live ones): a
        # re-admitted popular-looking template is a signature through its users' overlap, not rare
        rare_ext = live_ext if rare_ext is None else rare_ext
        tkey_rare = np.where((tkey >= 0) & rare_ext[np.maximum(tkey, 0)], tkey, -1)
        self.tmat, _ = ev.tf_bits_matrix(acc, tkey_rare, accts.n)
        # the per-account preparation of each pair lookup, once per window (not once per block or template)
        self.tjoin = ev.PairJoin(self.tmat)
        self.joins = {k: ev.PairJoin(fx["ids"][k][0]) for k in ("payment", *NETWORK_LEVELS[1:], "user_agent")}
        self.lasting = fx["span_h"] >= p.key_min_span_hours
        # the distinct bits each identifier family can take: a folded row keeps its value's index
        self.tf_values = {k: np.unique(fx["ids"][k][0].data) for k in (*NETWORK_LEVELS[1:], "user_agent")}
        self.src = Sources([tfac, fx["near_factor"], *fx["binary"]], [fx["timing"]], accts.n)
        n_ok = float(fx["timing_ok"].sum())
        # a synchrony link passes a binomial test at alpha / (pairs compared): that is its null rate
        n_cmp = max(n_ok * (n_ok - 1) / 2, 1.0)
        self.t_null = np.array([1.0 - p.timing_alpha / n_cmp, p.timing_alpha / (2 * n_cmp),
                                p.timing_alpha / (2 * n_cmp)])

    # ------------------------------------------------------------------ one list of pairs
    def levels(self, rows: np.ndarray, cols: np.ndarray, vals: list[np.ndarray]):
        """``(levels, tf bits, parts)`` of pairs ``rows < cols`` given the sources' values ``vals``."""
        p, fx = self.p, self.fx
        t_v, n_v, tim_v = vals[0], vals[1], vals[-1]
        lv, tf = {}, {}
        lv["template"] = ev.level_of(t_v, p.overlap_levels)
        kb = np.full(len(rows), np.nan)
        sel = np.flatnonzero(lv["template"] > 0)  # the rarest shared signature counts only at agreement
        if len(sel):
            r, c = rows[sel], cols[sel]
            bits = self.tjoin.max_bits(r, c)
            # a one-off run inside a day (an evaluator running a judge template) shares a template with
            # whoever uses it; that co-use says little about one operator, unless the two share a whole
            # set of rare scaffolds (a burner account of a hydra fills several of its templates)
            both = self.lasting[r] & self.lasting[c]
            n_shared = np.zeros(len(sel))
            if not both.all():
                n_shared[~both] = self.tjoin.shared_count(r[~both], c[~both])
            # (and only where the shared templates are a real part of the pair's traffic: level >= 2)
            n_shared = np.where(t_v[sel] >= p.overlap_levels[1], n_shared, 0.0)
            bits = ev.rarity_bits_kept(bits, both, n_shared, p.key_min_shared)
            kb[sel] = np.where(bits > 0, bits, np.nan)
        tf["template_key"] = kb
        lv["near_duplicate"] = ev.level_of(n_v, p.overlap_levels)
        t_ok = fx["timing_ok"][rows] & fx["timing_ok"][cols]
        lv["timing"] = np.where(t_ok, ev.level_of(tim_v, p.timing_levels), -1)
        parts = {"template": t_v, "near_duplicate": n_v, "timing": tim_v}
        ids = fx["ids"]
        mat, _, has, _ = ids["payment"]
        bits = self.joins["payment"].max_bits(rows, cols)
        org = fx["org"]
        same_org = (org[rows] >= 0) & (org[rows] == org[cols])
        # a card shared inside one org is a team's company card: not comparable, neither for nor against
        lv["payment"] = np.where(has[rows] & has[cols] & ~((bits > 0) & same_org), (bits > 0).astype(np.int64), -1)
        tf["payment"] = np.where(bits > 0, bits, np.nan)
        parts["payment"], parts["same_org"] = bits, same_org
        has = ids["ip"][2] | ids["asn"][2]
        level = np.zeros(len(rows), dtype=np.int64)
        net_tf = np.full(len(rows), np.nan)
        for k, name in enumerate(NETWORK_LEVELS[1:], start=1):  # asn < prefix < ip: the strongest shared wins
            bits = self.joins[name].max_bits(rows, cols)
            parts[name] = bits
            hit = bits > 0
            level[hit], net_tf[hit] = k, bits[hit]
        lv["network"] = np.where(has[rows] & has[cols], level, -1)
        tf["network"] = net_tf
        mat, _, has, _ = ids["user_agent"]
        ua = self.joins["user_agent"].max_bits(rows, cols)
        parts["user_agent"] = ua
        lv["client"] = np.where(has[rows] & has[cols], (ua > 0).astype(np.int64), -1)
        tf["client"] = np.where(ua > 0, ua, np.nan)
        return lv, tf, parts

    def families(self, lv: dict, tf: dict) -> list[Family]:
        """The six :class:`~promptcov.coverage.linking.fellegi_sunter.Family` objects of some pairs."""
        p, n_lv = self.p, len(self.p.overlap_levels) + 1
        return [
            Family("template", lv["template"], n_lv, p.max_bits_template, null_u=self.null_t,
                   key_bits=tf["template_key"]),
            Family("near_duplicate", lv["near_duplicate"], n_lv, p.max_bits_near_duplicate,
                   null_u=self.fx["near_null"]),
            Family("timing", lv["timing"], 3, p.max_bits_timing, null_u=self.t_null),
            Family("payment", lv["payment"], 2, p.max_bits_payment, tf_bits=tf["payment"],
                   fixed_m=np.array([0.5, 0.5])),
            Family("network", lv["network"], 4, p.max_bits_network, tf_bits=tf["network"], drives=False),
            Family("client", lv["client"], 2, p.max_bits_client, tf_bits=tf["client"], drives=False),
        ]

    # ------------------------------------------------------------------ the whole window
    def run(self):
        """Compare every candidate pair: ``(families, rows, cols, parts, weights)``.

        ``rows``/``cols``/``parts`` list the pairs some driving family ties, in (row, col) order;
        the families (and ``weights``) have those rows first, then one weighted row per
        combination of levels (and identifier bits) of the other candidate pairs.
        """
        keep: list[tuple] = []
        patterns, counts = [], []
        for rows, cols, vals in candidate_blocks(self.src, self.p.pair_block):
            lv, tf, parts = self.levels(rows, cols, vals)
            tied = np.zeros(len(rows), dtype=bool)
            for name in DRIVING:
                tied |= lv[name] > 0
            sel = np.flatnonzero(tied)
            keep.append((rows[sel], cols[sel], {k: v[sel] for k, v in lv.items()}, {k: v[sel] for k, v in tf.items()},
                         {k: v[sel] for k, v in parts.items()}))
            u, c = np.unique(self._pattern(lv, tf, ~tied), return_counts=True)
            patterns.append(u)
            counts.append(c)
        rows = np.concatenate([k[0] for k in keep]) if keep else np.zeros(0, np.int64)
        cols = np.concatenate([k[1] for k in keep]) if keep else np.zeros(0, np.int64)
        lv = {n: np.concatenate([k[2][n] for k in keep]) if keep else np.zeros(0, np.int64) for n in FAMILIES}
        tf = {n: np.concatenate([k[3][n] for k in keep]) if keep else np.zeros(0) for n in _TF_NAMES}
        part_names = keep[0][4].keys() if keep else ()
        parts = {n: np.concatenate([k[4][n] for k in keep]) for n in part_names}
        pat, cnt = np.zeros(0, np.int64), np.zeros(0)
        if patterns:
            pat, inv = np.unique(np.concatenate(patterns), return_inverse=True)
            cnt = np.bincount(inv.ravel(), weights=np.concatenate(counts), minlength=len(pat))
        p_lv, p_tf = self._unpattern(pat)
        lv = {n: np.concatenate([lv[n], p_lv[n]]).astype(np.int64) for n in FAMILIES}
        tf = {n: np.concatenate([tf[n], p_tf[n]]) for n in _TF_NAMES}
        weights = np.concatenate([np.ones(len(rows)), cnt])
        return self.families(lv, tf), rows, cols, parts, weights

    def _pattern(self, lv: dict, tf: dict, rest: np.ndarray) -> np.ndarray:
        """One integer per pair of ``rest``: its six levels and which network and client bits it has."""
        code = np.zeros(int(rest.sum()), dtype=np.int64)
        for i, name in enumerate(FAMILIES):
            code += (lv[name][rest] + 1) * _BASE ** i
        net_lv, net_tf = lv["network"][rest], tf["network"][rest]
        net = np.zeros(len(code), dtype=np.int64)
        for k, name in enumerate(NETWORK_LEVELS[1:], start=1):
            at = net_lv == k
            net[at] = np.searchsorted(self.tf_values[name], net_tf[at]) + 1
        cli = np.zeros(len(code), dtype=np.int64)
        at = lv["client"][rest] > 0
        cli[at] = np.searchsorted(self.tf_values["user_agent"], tf["client"][rest][at]) + 1
        return code + _BASE ** len(FAMILIES) * (net * (len(self.tf_values["user_agent"]) + 1) + cli)

    def _unpattern(self, pat: np.ndarray) -> tuple[dict, dict]:
        """Levels and bits of folded rows from their :meth:`_pattern` codes."""
        lv = {name: (pat // _BASE ** i) % _BASE - 1 for i, name in enumerate(FAMILIES)}
        rest = pat // _BASE ** len(FAMILIES)
        net, cli = rest // (len(self.tf_values["user_agent"]) + 1), rest % (len(self.tf_values["user_agent"]) + 1)
        tf = {n: np.full(len(pat), np.nan) for n in _TF_NAMES}
        for k, name in enumerate(NETWORK_LEVELS[1:], start=1):
            at = (lv["network"] == k) & (net > 0)
            tf["network"][at] = self.tf_values[name][net[at] - 1]
        at = (lv["client"] > 0) & (cli > 0)
        tf["client"][at] = self.tf_values["user_agent"][cli[at] - 1]
        return lv, tf

    # ------------------------------------------------------------------ popular-looking templates
    def coherent(self, popular: np.ndarray, tkey: np.ndarray, model, families: list[Family],
                 weights: np.ndarray, exclude: tuple[str, ...] = ("template", "near_duplicate")) -> np.ndarray:
        """Popular-looking templates whose users are otherwise tied together: campaign signatures.

        Two tests, either suffices: the users' mean pairwise posterior of one operator (on the
        evidence other than templates and near-duplicates; pairs that are no candidate count at the
        prior) reaches ``min_coherence`` (one tight hydra), or most users (``min_tied_share``) are
        tied to another user and those ties are far beyond chance (Poisson tail at ``alpha``
        against the window's own rate of tied pairs: a campaign on many cards, each card shared by
        a few of its accounts). The users of a public prompt are strangers to each other.

        ``exclude`` names the families that do not count as ties: by default the template and
        near-duplicate evidence. The linker asks twice: first on operator evidence alone, then
        counting the templates kept so far (``exclude=("near_duplicate",)``), because a campaign
        that fills each of its scaffolds from about half of its accounts ties the users of one
        scaffold through the others, not through their cards.
        """
        from scipy import stats

        p, acc = self.p, self.accts.code
        other = [f for f in families if f.name not in exclude]
        post = model.posterior(sum(model.level_bits(f) for f in other))
        base = float(weights[post >= p.min_posterior].sum()) / max(self.accts.n_pairs, 1.0)
        candidates = np.flatnonzero(popular)
        back = np.zeros(len(popular), dtype=bool)
        by_t = np.argsort(tkey, kind="stable")  # each template's rows as one slice, not a scan per template
        lo = np.searchsorted(tkey[by_t], candidates, side="left")
        hi = np.searchsorted(tkey[by_t], candidates, side="right")
        for k, a, b in zip(candidates.tolist(), lo.tolist(), hi.tolist(), strict=True):
            users = np.unique(acc[by_t[a:b]])
            if len(users) < p.min_popular_accounts:
                back[k] = True  # too few users to call it popular
                continue
            if len(users) > p.max_key_accounts:
                continue
            n_pairs = len(users) * (len(users) - 1) / 2
            inside, n_cand, n_tied = 0.0, 0, 0
            has_tie = np.zeros(len(users), dtype=bool)
            for r, c, vals in candidate_blocks(self.src.subset(users), p.pair_block):
                lv, tf, _ = self.levels(users[r], users[c], vals)
                fams = [f for f in self.families(lv, tf) if f.name not in exclude]
                post_k = model.posterior(sum(model.level_bits(f) for f in fams))
                inside += float(post_k.sum())
                n_cand += len(r)
                strong = post_k >= p.min_posterior
                n_tied += int(strong.sum())
                has_tie[r[strong]] = True
                has_tie[c[strong]] = True
            mean = (inside + (n_pairs - n_cand) * model.lam) / n_pairs
            chance = stats.poisson.sf(n_tied - 1, max(base * n_pairs, 1e-12)) if n_tied else 1.0
            beyond = has_tie.mean() >= p.min_tied_share and chance * max(len(candidates), 1) < p.timing_alpha
            back[k] = mean >= p.min_coherence or beyond
        return back
