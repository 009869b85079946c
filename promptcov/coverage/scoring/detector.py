"""SweepDetector: per-account and per-group sweep scores, flags, reasons and evidence.

Orchestration only: the metrics live in :mod:`promptcov.coverage.metrics.accounts` and the scoring,
calibration and wording in :mod:`promptcov.coverage.scoring.score`.

Example::

    det = SweepDetector(target_fpr=0.01).fit(frame, groups=linker.groups_,
                                             group_members=linker.group_members_,
                                             links=linker.edges_, pivots=pivots)
    [row["account_id"] for row in det.accounts_ if row["flagged"]]
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from dataclasses import replace
from types import SimpleNamespace

import numpy as np

from promptcov.coverage.frame import RequestFrame, factorize_str
from promptcov.coverage.linking.linker import BEHAVIOUR, group_edges, link_fields
from promptcov.coverage.metrics.accounts import (
    LABEL_METRICS,
    NUMERIC_METRICS,
    compute_account_metrics,
    window_cells,
)
from promptcov.coverage.scoring.benign import benchmark_like
from promptcov.coverage.scoring.calibration import calibrate_threshold, null_fit
from promptcov.coverage.scoring.component import rare_template_rows
from promptcov.coverage.scoring.groups import score_groups
from promptcov.coverage.scoring.params import DetectorParams, ScoreWeights
from promptcov.coverage.scoring.reasons import reasons_for
from promptcov.coverage.scoring.score import score_metrics, timing_class
from promptcov.errors import InputError, NotFittedError

__all__ = ["SweepDetector"]

_METRIC_PARAMS = ("max_sample", "lookback", "dup_cos", "related_cos", "seed", "min_timing_requests")
_GROUP_EXTRA = ("n_members", "alike_members", "sync_share", "cohesion", "pooled_score", "component_share", "component_score")
_STRONG = (*BEHAVIOUR, "payment")
_OPERATOR = ("payment", "ip", "timing")  # ties that say "same operator", not "same content"

log = logging.getLogger(__name__)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(ts)))


class SweepDetector:
    """Score every account (and every linked group) of a window for systematic extraction sweeps.

    Each account gets its *own* score from its traffic
    (:func:`~promptcov.coverage.scoring.score.score_metrics`). A group (from the linker) is scored
    on its members' pooled traffic plus coordination evidence, and on the pooled *sweep component*
    of that traffic (rare-template and CoT rows: a proxy network hides a campaign among ordinary
    customers); its score is the larger of the two. An account's published score is the larger of
    its own score and its group's score times its tie to the group (``membership``: the
    probability that at least one of its behaviour or payment links to fellow members is real);
    ``flagged`` is that score at or above the threshold calibrated on the window (a robust null of
    the *own* scores of the accounts outside any linked group: the organic population, which a large
    campaign's inherited scores must not redefine), so sorting by score puts flagged accounts first. An unlinked, structured one-off run is labelled
    ``benign_kind="benchmark"`` and never flagged.

    Parameters
    ----------
    params : DetectorParams, optional
        Calibration, metric, benchmark and evidence settings (any field may also be passed as a
        keyword, e.g. ``SweepDetector(target_fpr=0.005)``).
    weights : ScoreWeights, optional
        The score's fixed weights.
    high_value : dict, optional
        Area -> weight of the areas campaigns target (default: the taxonomy's).

    Attributes (after ``fit``)
    --------------------------
    accounts_ : list of dict, one per account (contract columns + evidence, benign_kind)
    groups_ : list of dict, one per group
    metrics_ : dict name -> array aligned with ``account_ids_``
    own_scores_, scores_ : each account's own and published (group-aware) score
    group_metrics_, group_scores_ : the same for ``group_ids_``
    threshold_ : float, the calibrated flag threshold; calibration_ : how it was set
    """

    def __init__(self, params: DetectorParams | None = None, *, weights: ScoreWeights | None = None,
                 high_value: dict[str, float] | None = None, **overrides):
        self.params = params
        self.weights = weights
        self.high_value = high_value
        self.overrides = overrides

    def _resolve_params(self) -> DetectorParams:
        from dataclasses import fields

        known = {f.name for f in fields(DetectorParams)}
        bad = sorted(set(self.overrides) - known)
        if bad:
            raise InputError(f"unknown detector setting(s): {', '.join(bad)}")
        try:
            return replace(self.params or DetectorParams(), **self.overrides)
        except ValueError as exc:
            raise InputError(f"detector settings: {exc}") from exc

    # ------------------------------------------------------------------ fit
    def fit(self, frame: RequestFrame, groups: dict | None = None, group_members: dict | None = None,
            links: list | None = None, pivots: dict | None = None, membership: dict | None = None,
            cohesion: dict | None = None) -> SweepDetector:
        """Compute metrics, scores, the threshold, flags, reasons and evidence for ``frame``.

        ``groups``/``group_members``/``links``/``membership``/``cohesion`` come from a fitted
        :class:`~promptcov.coverage.linking.linker.AccountLinker` (``groups_``,
        ``group_members_``, ``edges_``, ``membership_``, ``cohesion_``); without ``membership`` a
        member's tie is computed from its behaviour and payment links (weight = probability).
        """
        if not isinstance(frame, RequestFrame):
            raise InputError(f"SweepDetector.fit needs a RequestFrame, got {type(frame).__name__}")
        p = self.params_ = self._resolve_params()
        groups, members = self._resolve_groups(groups, group_members)
        edges = [link_fields(x) for x in (links or [])]
        pivots = dict(pivots or {})
        self.weights_ = self.weights if self.weights is not None else ScoreWeights()
        kw = {k: getattr(p, k) for k in _METRIC_PARAMS}
        kw["high_value"] = self.high_value
        cells, population = window_cells(frame, p.n_cells, p.per_account_cap, p.seed)
        ids, m = compute_account_metrics(frame, cells=cells, population=population, **kw)
        m["timing_class"] = timing_class(m, self.weights_)
        own, contrib = score_metrics(m, self.weights_)
        edges_in = group_edges(edges, groups)
        membership = self._membership(groups, edges_in, membership)
        cohesion = cohesion if cohesion is not None else {
            g: float(np.mean([e[3] for e in es if e[2] in _STRONG] or [0.0])) for g, es in edges_in.items()}
        gids, gm, gscore, gcontrib, self._ccols = score_groups(
            frame, members, cohesion, cells, population, kw, self.weights_, p.owned_template_share)
        gscore_of = dict(zip(gids, gscore, strict=True))
        tie = np.array([membership.get(a, 0.0) for a in ids])
        tie = np.where(tie >= p.min_member_weight, tie, 0.0)  # a weak tie inherits nothing
        # an account running one template and tied to its group by nothing but that template (a
        # scheduled evaluator, a benchmark run on a public judge or agent scaffold) shares the template
        # with whoever uses it: it stays in the group's evidence but does not inherit the group's score
        kinds = defaultdict(set)
        for es in edges_in.values():
            for a, b, kind, _, _ in es:
                kinds[a].add(kind)
                kinds[b].add(kind)
        template_only = np.array([kinds.get(a, set()) & set(_STRONG) <= {"template"} for a in ids])
        # (a run: benchmark_min_requests or more; a burner account's handful of requests is no job)
        run = np.nan_to_num(m["n_requests"]) >= p.benchmark_min_requests
        one_job = (np.nan_to_num(m["n_templates"]) <= 1) & ((template_only & run) | (m["timing_class"] == "scheduled"))
        tie = np.where(one_job, 0.0, tie)
        inherited = tie * np.array([gscore_of.get(groups.get(a, ""), 0.0) for a in ids])
        # a one-off run tied to others by content alone (the same public tasks or judge template) is
        # still a benchmark run; payment, address or synchrony ties make it part of an operation
        linked_ids = {a for e in edges if e[2] in _OPERATOR for a in e[:2]}
        linked = np.array([a in linked_ids for a in ids], dtype=bool)
        bench = benchmark_like(m, linked, p.benchmark_max_hours, p.benchmark_min_structure, p.benchmark_min_requests)
        score = np.where(bench, own, np.maximum(own, inherited))
        # the null is the organic population: the accounts' own traffic, outside any linked group
        # (a large campaign's members would otherwise become the "normal" the threshold is set from)
        pool = np.array([a not in groups for a in ids], dtype=bool)
        cal = (p.target_fpr, p.min_calibration_requests, p.threshold_floor, p.threshold_ceiling)
        self.threshold_ = calibrate_threshold(own[pool], m["n_requests"][pool], *cal)
        center, scale, n_used = null_fit(own[pool], m["n_requests"][pool], p.min_calibration_requests)
        self.calibration_ = (
            f"robust null of the own scores of {n_used} ungrouped accounts with >= "
            f"{p.min_calibration_requests} requests (from its lower quartiles: centre logit {center:.2f}, scale "
            f"{scale:.2f}); {1 - p.target_fpr:.1%} quantile clipped to [{p.threshold_floor}, "
            f"{p.threshold_ceiling}]: threshold {self.threshold_:.3f}"
        )
        self.account_ids_, self.metrics_, self.contributions_ = ids, m, contrib
        self.own_scores_, self.scores_, self.inherited_ = own, score, inherited
        self.group_ids_, self.group_metrics_, self.group_scores_ = gids, gm, gscore
        by_account = defaultdict(list)
        for a, b, kind, weight, _ in edges:
            by_account[a].append([b, kind, round(weight, 4)])
            by_account[b].append([a, kind, round(weight, 4)])
        ctx = SimpleNamespace(frame=frame, slices=dict(frame.accounts()), groups=groups, edges_in=edges_in,
                              pivots=pivots, by_account=by_account, group_score=gscore_of, bench=bench,
                              membership=membership)
        self._prepare_rows(frame)
        self._acols, self._gcols = self._columns(m), self._columns(gm)
        self.accounts_ = [self._account_row(ctx, i, acct) for i, acct in enumerate(ids)]
        self.groups_ = [self._group_row(ctx, j, g, members[g], gcontrib) for j, g in enumerate(gids)]
        log.info("scored %d accounts, %d groups; threshold %.3f", len(ids), len(gids), self.threshold_)
        return self

    @staticmethod
    def _membership(groups: dict, edges_in: dict, given: dict | None) -> dict[str, float]:
        """Each member's tie to its group: given, or ``1 - prod(1 - weight)`` of its strong links."""
        if given is not None:
            return {str(a): float(v) for a, v in given.items()}
        miss: dict[str, float] = {}
        for es in edges_in.values():
            for a, b, kind, weight, _ in es:
                if kind in _STRONG:
                    w = min(max(weight, 0.0), 1.0)
                    miss[a] = miss.get(a, 1.0) * (1.0 - w)
                    miss[b] = miss.get(b, 1.0) * (1.0 - w)
        out = {a: 1.0 - v for a, v in miss.items()}
        for a, g in groups.items():  # a group given without any links: membership is the grouping itself
            if g not in edges_in:
                out.setdefault(a, 1.0)
        return out

    @staticmethod
    def _resolve_groups(groups, group_members) -> tuple[dict[str, str], dict[str, list[str]]]:
        if groups is not None and not isinstance(groups, dict):
            raise InputError("groups must be a dict account_id -> group_id")
        if group_members is not None and not isinstance(group_members, dict):
            raise InputError("group_members must be a dict group_id -> list of account ids")
        groups = {str(a): str(g) for a, g in (groups or {}).items()}
        members: dict[str, list[str]] = defaultdict(list)
        if group_members is not None:
            for g, accts in group_members.items():
                members[str(g)] = [str(a) for a in accts]
                for a in accts:
                    groups.setdefault(str(a), str(g))
        else:
            for a, g in groups.items():
                members[g].append(a)
        return groups, dict(members)

    # ------------------------------------------------------------------ rows
    @staticmethod
    def _columns(metrics: dict) -> dict[str, list]:
        """Metric name -> list of JSON-ready values (rounded, NaN -> None), computed once."""
        cols = {}
        for k in (*NUMERIC_METRICS, *_GROUP_EXTRA):
            if k in metrics:
                values = np.round(np.asarray(metrics[k], dtype=np.float64), 4).tolist()
                cols[k] = [None if v != v or v in (np.inf, -np.inf) else v for v in values]
        for k in (*LABEL_METRICS, "timing_class"):
            if k in metrics:
                cols[k] = [str(v) for v in metrics[k]]
        return cols

    @staticmethod
    def _row(cols: dict[str, list], i: int) -> dict:
        return {k: v[i] for k, v in cols.items()}

    def _prepare_rows(self, frame: RequestFrame) -> None:
        self._cap_names, self._cap_code = factorize_str(frame.capability)
        self._rare = rare_template_rows(frame.template_id, frame.template_popular)

    def _examples_and_shares(self, frame: RequestFrame, rows: np.ndarray) -> dict:
        """Area shares, top rare templates and distinct example prompts spread over them."""
        counts = np.bincount(self._cap_code[rows], minlength=len(self._cap_names))
        order = np.argsort(-counts, kind="stable")[:6]
        capabilities = [
            [str(self._cap_names[k]), round(float(counts[k] / len(rows)), 4)] for k in order if counts[k]
        ]
        rare = self._rare[rows]
        templates = []
        if rare.any():
            templates = [[str(t), int(c)] for t, c in Counter(frame.template_id[rows[rare]]).most_common(5)]
            pools = [rows[rare][frame.template_id[rows[rare]] == t] for t, _ in templates]
        else:
            pools = [rows[self._cap_code[rows] == k] for k in order if counts[k]]
        return {"examples": self._examples(frame, pools), "templates": templates, "capabilities": capabilities}

    def _examples(self, frame: RequestFrame, pools: list[np.ndarray]) -> list[str]:
        """Up to ``n_examples`` distinct prompts, taken round-robin from ``pools`` (templates or areas)."""
        p = self.params_
        examples, seen = [], set()
        cursors = [0] * len(pools)
        while len(examples) < p.n_examples and any(c < min(len(q), 8 * p.n_examples) for c, q in
                                                   zip(cursors, pools, strict=True)):
            for j, pool in enumerate(pools):
                if len(examples) >= p.n_examples:
                    break
                while cursors[j] < min(len(pool), 8 * p.n_examples):
                    text = frame.prompts.get(int(frame.text_id[pool[cursors[j]]]))
                    cursors[j] += 1
                    key = " ".join((text or "").split()).lower()
                    if text is not None and key not in seen:
                        seen.add(key)
                        examples.append(text if len(text) <= p.example_chars else text[: p.example_chars - 1] + "…")
                        break
        return examples

    def _evidence(self, metrics_row: dict, contrib_row: dict, extra: dict) -> dict:
        drivers = sorted(
            ((k, round(float(v), 3)) for k, v in contrib_row.items() if abs(v) >= 0.01),
            key=lambda kv: -abs(kv[1]),
        )
        ev = {"metrics": dict(metrics_row), "drivers": [list(d) for d in drivers]}
        ev.update(extra)
        return ev

    def _account_row(self, ctx: SimpleNamespace, i: int, acct: str) -> dict:
        m = self._row(self._acols, i)
        contrib = {k: float(v[i]) for k, v in self.contributions_.items()}
        own, score = float(self.own_scores_[i]), float(self.scores_[i])
        reasons = reasons_for(m, contrib, shrink_n=self.weights_.shrink_n)
        bench = bool(ctx.bench[i])
        flagged = bool(score >= self.threshold_) and not bench
        gid = ctx.groups.get(acct, "")
        tie = float(ctx.membership.get(acct, 0.0))
        if gid:
            g_score = float(ctx.group_score.get(gid, 0.0))
            state = "flagged group" if g_score >= self.threshold_ else "group"
            if self.inherited_[i] > own and not bench:
                reasons = (f"member of {state} {gid} (group score {g_score:.2f}, tie {tie:.2f}; own traffic "
                           f"{own:.2f}): {reasons}")
            elif g_score >= self.threshold_ and tie < self.params_.min_member_weight:
                reasons = f"in flagged group {gid} by a weak tie ({tie:.2f}: not flagged through it); {reasons}"
        benign = None
        if bench:
            benign = "benchmark"
            k = int(m.get("n_templates") or 0)
            reasons = (
                f"one-off benchmark-like run: {m['n_requests']:.0f} requests, {k} template{'s' if k != 1 else ''}"
                f" within {m['span_hours']:.1f} h, not linked to other accounts (score {score:.2f}, not flagged)"
                f"; {reasons}"
            )
        piv = list(ctx.pivots.get(acct, []))
        if piv and flagged:
            reasons = f"{reasons}; pivot: {piv[0]}"
        sl = ctx.slices[acct]
        extra = self._examples_and_shares(ctx.frame, np.arange(sl.start, sl.stop))
        linked = sorted(ctx.by_account.get(acct, []), key=lambda x: -x[2])[:10]
        extra.update({"linked": linked, "pivots": piv, "own_score": round(own, 4), "group_tie": round(tie, 4)})
        return {
            "account_id": acct,
            "n_requests": int(m["n_requests"]),
            "score": round(score, 4),
            "flagged": flagged,
            "group_id": gid,
            "top_capability": str(m.get("top_capability", "")),
            "reasons": reasons,
            "evidence": self._evidence(m, contrib, extra),
            "benign_kind": benign,
        }

    def _group_row(self, ctx: SimpleNamespace, j: int, gid: str, members: list[str], gcontrib: dict) -> dict:
        m = self._row(self._gcols, j)
        reason_m, contrib, lead = m, {k: float(v[j]) for k, v in gcontrib.items()}, ""
        if gid in self._ccols and m["component_score"] > m["pooled_score"]:
            cm, ccontrib, k = self._ccols[gid]
            reason_m = self._row(self._columns({n: v[k : k + 1] for n, v in cm.items()}), 0)
            reason_m["alike_members"] = m.get("alike_members")
            contrib = {name: float(v[k]) for name, v in ccontrib.items()}
            lead = (
                f"sweep component: {m['component_share']:.0%} of the group's traffic "
                f"({reason_m['n_requests']:.0f} requests) is templated or CoT-eliciting; "
            )
        frame, edges, score = ctx.frame, ctx.edges_in.get(gid, []), float(ctx.group_score[gid])
        flagged = score >= self.threshold_
        present = [a for a in members if a in ctx.slices]
        rows = np.concatenate([np.arange(ctx.slices[a].start, ctx.slices[a].stop) for a in present])
        extra = self._examples_and_shares(frame, rows)
        kinds = Counter(e[2] for e in edges)
        reasons = lead + reasons_for(reason_m, contrib, shrink_n=self.weights_.shrink_n)
        if kinds:
            reasons += "; links: " + ", ".join(f"{k} x{c}" for k, c in kinds.most_common())
        piv = list(ctx.pivots.get(gid, []))
        if piv and flagged:
            reasons += f"; pivot: {piv[0]}"
        days, counts = np.unique(np.floor(frame.ts[rows] / 86400.0).astype(np.int64), return_counts=True)
        extra.update(
            {
                "linked": [[a, b, kind, round(w, 4)] for a, b, kind, w, _ in edges][:50],
                "pivots": piv,
                "link_types": dict(kinds),
                "timeline": [[_iso(d * 86400.0)[:10], int(c)] for d, c in zip(days, counts, strict=True)],
            }
        )
        caps = [a for a, share in extra["capabilities"] if share >= 0.05][:5]
        return {
            "group_id": gid,
            "n_accounts": len(present),
            "n_requests": int(len(rows)),
            "score": round(float(score), 4),
            "flagged": bool(flagged),
            "capabilities": ",".join(caps),
            "reasons": reasons,
            "members": list(members),
            "evidence": self._evidence(m, contrib, extra),
            "first_seen": _iso(frame.ts[rows].min()),
            "last_seen": _iso(frame.ts[rows].max()),
        }

    # ------------------------------------------------------------------ helpers
    def _check_fitted(self) -> None:
        if not hasattr(self, "accounts_"):
            raise NotFittedError("SweepDetector is not fitted: call fit(frame, ...) first")

    def flagged_accounts(self) -> list[str]:
        """Ids of the flagged accounts, highest score first."""
        self._check_fitted()
        rows = sorted((r for r in self.accounts_ if r["flagged"]), key=lambda r: -r["score"])
        return [r["account_id"] for r in rows]
