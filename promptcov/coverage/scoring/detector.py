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
from types import SimpleNamespace

import numpy as np

from promptcov.coverage.frame import RequestFrame
from promptcov.coverage.metrics.accounts import (
    LABEL_METRICS,
    NUMERIC_METRICS,
    compute_account_metrics,
    compute_pooled_metrics,
    window_cells,
)
from promptcov.coverage.metrics.groups import group_edges, link_fields, link_strength, sweep_component_mask
from promptcov.coverage.scoring.score import (
    ScoreWeights,
    benchmark_like,
    calibrate_threshold,
    group_evidence,
    null_fit,
    reasons_for,
    score_metrics,
    timing_class,
)
from promptcov.errors import InputError, NotFittedError

__all__ = ["SweepDetector"]

_METRIC_PARAMS = (
    "max_sample",
    "lookback",
    "dup_cos",
    "related_cos",
    "high_value",
    "seed",
    "min_timing_requests",
)
_GROUP_EXTRA = (
    "n_members",
    "sync_share",
    "link_strength",
    "pooled_score",
    "component_share",
    "component_score",
)

log = logging.getLogger(__name__)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(ts)))


class SweepDetector:
    """Score every account (and every linked group) of a window for systematic extraction sweeps.

    Accounts are scored on their own traffic (:func:`~promptcov.coverage.scoring.score.score_metrics`)
    and flagged at the threshold calibrated on the window. A group (from the linker) is scored
    on its members' pooled traffic plus coordination evidence, and on the pooled *sweep
    component* of that traffic (rare-template and CoT rows: a proxy network hides a campaign
    among ordinary customers); its score is the larger of the two, against the same threshold.
    Members of a flagged group are flagged ("member of flagged group G-..."), except a member
    whose only links into the group are a shared ASN. An unlinked, structured run inside
    ``benchmark_max_hours`` is labelled ``benign_kind="benchmark"`` and never flagged.

    Parameters
    ----------
    target_fpr, threshold_floor, threshold_ceiling, min_calibration_requests
        Threshold calibration (:func:`~promptcov.coverage.scoring.score.calibrate_threshold`).
    weights : ScoreWeights, optional
        The score's fixed weights (default :class:`~promptcov.coverage.scoring.score.ScoreWeights`).
    high_value : dict, optional
        Area -> weight of the areas campaigns target (default ``HIGH_VALUE_WEIGHTS``).
    n_cells, per_account_cap
        Fine cells for the coverage metric (``None`` = automatic).
    max_sample, lookback, dup_cos, related_cos, min_timing_requests
        Distance and timing metric settings (see :mod:`promptcov.coverage.metrics.accounts`).
    benchmark_max_hours : float
        A structured, unlinked run inside this span is labelled ``benign_kind="benchmark"``.
    n_examples, example_chars
        Example prompts kept as evidence and their length.
    seed : int
        Seeds the k-means cells and the per-account subsampling.

    Attributes (after ``fit``)
    --------------------------
    accounts_ : list of dict, one per account (contract columns + evidence, benign_kind)
    groups_ : list of dict, one per group
    metrics_ : dict name -> array aligned with ``account_ids_``
    group_metrics_ : dict name -> array aligned with ``group_ids_``
    threshold_ : float, the calibrated flag threshold
    calibration_ : str, how the threshold was set (for the report)
    """

    def __init__(
        self,
        *,
        target_fpr: float = 0.01,
        threshold_floor: float = 0.5,
        threshold_ceiling: float = 0.95,
        min_calibration_requests: int = 20,
        weights: ScoreWeights | None = None,
        high_value: dict[str, float] | None = None,
        n_cells: int | None = None,
        per_account_cap: int = 20,
        max_sample: int = 500,
        lookback: int = 100,
        dup_cos: float = 0.9,
        related_cos: float = 0.35,
        min_timing_requests: int = 48,
        benchmark_max_hours: float = 24.0,
        n_examples: int = 3,
        example_chars: int = 200,
        seed: int = 0,
    ):
        self.target_fpr = target_fpr
        self.threshold_floor = threshold_floor
        self.threshold_ceiling = threshold_ceiling
        self.min_calibration_requests = min_calibration_requests
        self.weights = weights
        self.high_value = high_value
        self.n_cells = n_cells
        self.per_account_cap = per_account_cap
        self.max_sample = max_sample
        self.lookback = lookback
        self.dup_cos = dup_cos
        self.related_cos = related_cos
        self.min_timing_requests = min_timing_requests
        self.benchmark_max_hours = benchmark_max_hours
        self.n_examples = n_examples
        self.example_chars = example_chars
        self.seed = seed

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        frame: RequestFrame,
        groups: dict | None = None,
        group_members: dict | None = None,
        links: list | None = None,
        pivots: dict | None = None,
    ) -> SweepDetector:
        """Compute metrics, scores, the threshold, flags, reasons and evidence for ``frame``."""
        if not isinstance(frame, RequestFrame):
            raise InputError(f"SweepDetector.fit needs a RequestFrame, got {type(frame).__name__}")
        groups, members = self._resolve_groups(groups, group_members)
        edges = [link_fields(x) for x in (links or [])]
        pivots = dict(pivots or {})
        self.weights_ = self.weights if self.weights is not None else ScoreWeights()
        kw = {k: getattr(self, k) for k in _METRIC_PARAMS}
        cells, population = window_cells(frame, self.n_cells, self.per_account_cap, self.seed)
        ids, m = compute_account_metrics(frame, cells=cells, population=population, **kw)
        m["timing_class"] = timing_class(m)
        score, contrib = score_metrics(m, self.weights_)
        cal = (self.target_fpr, self.min_calibration_requests, self.threshold_floor, self.threshold_ceiling)
        self.threshold_ = calibrate_threshold(score, m["n_requests"], *cal)
        center, scale, n_used = null_fit(score, m["n_requests"], self.min_calibration_requests)
        self.calibration_ = (
            f"robust null of {n_used} accounts with >= {self.min_calibration_requests} requests (from its "
            f"lower quartiles: centre logit {center:.2f}, scale {scale:.2f}); {1 - self.target_fpr:.1%} quantile clipped to "
            f"[{self.threshold_floor}, {self.threshold_ceiling}]: threshold {self.threshold_:.3f}"
        )
        linked_ids = {a for e in edges for a in e[:2]} | set(groups)
        linked = np.array([a in linked_ids for a in ids], dtype=bool)
        bench = benchmark_like(m, linked, self.benchmark_max_hours)
        self.account_ids_, self.metrics_, self.scores_, self.contributions_ = ids, m, score, contrib

        edges_in = group_edges(edges, groups)
        gids, gm, gscore, gcontrib = self._score_groups(frame, members, edges_in, cells, population, kw)
        self.group_ids_, self.group_metrics_, self.group_scores_ = gids, gm, gscore

        by_account = defaultdict(list)
        for a, b, kind, weight, _ in edges:
            by_account[a].append([b, kind, round(weight, 4)])
            by_account[b].append([a, kind, round(weight, 4)])
        ctx = SimpleNamespace(
            frame=frame,
            slices=dict(frame.accounts()),
            groups=groups,
            edges_in=edges_in,
            pivots=pivots,
            by_account=by_account,
            group_score=dict(zip(gids, gscore, strict=True)),
            bench=bench,
        )
        self._prepare_rows(frame)
        self._acols, self._gcols = self._columns(m), self._columns(gm)
        self.accounts_ = [self._account_row(ctx, i, acct) for i, acct in enumerate(ids)]
        self.groups_ = [self._group_row(ctx, j, g, members[g], gcontrib) for j, g in enumerate(gids)]
        log.info("scored %d accounts, %d groups; threshold %.3f", len(ids), len(gids), self.threshold_)
        return self

    def _score_groups(self, frame, members, edges_in, cells, population, kw) -> tuple:
        """Pooled group scores: the larger of all traffic and its sweep component."""
        self._ccols = {}
        gids, gm = compute_pooled_metrics(frame, members, cells=cells, population=population, **kw)
        if not len(gids):
            return gids, gm, np.zeros(0), {}
        gm["timing_class"] = timing_class(gm)
        gm["link_strength"] = np.array([link_strength(edges_in[g]) for g in gids])
        evidence = group_evidence(gm["n_members"], gm["link_strength"], gm["sync_share"])
        gscore, gcontrib = score_metrics(gm, self.weights_, evidence)
        gm["pooled_score"] = gscore
        mask = sweep_component_mask(frame.template_id, frame.template_popular, frame.capability, frame.marker)
        cids, cm = compute_pooled_metrics(
            frame.subset(mask), members, cells=cells[mask], population=population, **kw
        )
        where = {g: j for j, g in enumerate(gids)}
        pick = np.array([where[c] for c in cids], dtype=np.int64)
        gm["component_share"] = np.zeros(len(gids))
        gm["component_score"] = np.zeros(len(gids))
        if len(cids):
            cm["timing_class"] = timing_class(cm)
            cscore, ccontrib = score_metrics(cm, self.weights_, evidence[pick])
            gm["component_share"][pick] = cm["n_requests"] / gm["n_requests"][pick]
            gm["component_score"][pick] = cscore
            self._ccols = {g: (cm, ccontrib, k) for k, g in enumerate(cids)}
        return gids, gm, np.maximum(gscore, gm["component_score"]), gcontrib

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
        self._cap_names, self._cap_code = np.unique(frame.capability.astype(str), return_inverse=True)
        has = np.array([t is not None for t in frame.template_id], dtype=bool)
        self._rare = has & ~np.asarray(frame.template_popular, dtype=bool)

    def _examples_and_shares(self, frame: RequestFrame, rows: np.ndarray) -> dict:
        counts = np.bincount(self._cap_code[rows], minlength=len(self._cap_names))
        order = np.argsort(-counts, kind="stable")[:6]
        capabilities = [
            [str(self._cap_names[k]), round(float(counts[k] / len(rows)), 4)] for k in order if counts[k]
        ]
        rare = self._rare[rows]
        templates = []
        if rare.any():
            templates = [[str(t), int(c)] for t, c in Counter(frame.template_id[rows[rare]]).most_common(5)]
            pick = rows[rare][frame.template_id[rows[rare]] == templates[0][0]]
        else:
            pick = rows[self._cap_code[rows] == order[0]]
        examples, seen = [], set()
        for tid in frame.text_id[pick[: 8 * self.n_examples]]:
            if len(examples) >= self.n_examples:
                break
            text = frame.prompts.get(int(tid))
            if text is None or tid in seen:
                continue
            seen.add(tid)
            examples.append(text if len(text) <= self.example_chars else text[: self.example_chars - 1] + "…")
        return {"examples": examples, "templates": templates, "capabilities": capabilities}

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
        score = float(self.scores_[i])
        reasons = reasons_for(m, contrib, shrink_n=self.weights_.shrink_n)
        bench = bool(ctx.bench[i])
        flagged = bool(score >= self.threshold_) and not bench
        gid = ctx.groups.get(acct, "")
        gscore_g = float(ctx.group_score.get(gid, 0.0))
        if gid and gscore_g >= self.threshold_:
            own = [e for e in ctx.edges_in[gid] if acct in (e[0], e[1])]
            strong = not own or any(e[2] != "asn" for e in own)
            if strong:
                flagged = True
                reasons = f"member of flagged group {gid} (group score {gscore_g:.2f}); {reasons}"
            else:
                reasons = f"in flagged group {gid} by a shared ASN only (not flagged through it); {reasons}"
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
        extra.update({"linked": linked, "pivots": piv})
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
            contrib = {name: float(v[k]) for name, v in ccontrib.items()}
            lead = (
                f"sweep component: {m['component_share']:.0%} of the group's traffic "
                f"({reason_m['n_requests']:.0f} requests) is templated or CoT-eliciting; "
            )
        frame, edges, score = ctx.frame, ctx.edges_in[gid], float(ctx.group_score[gid])
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
