"""Figures of ``eval_detection.py``: per-method rows, per-campaign rows, mean and worst over seeds."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

__all__ = ["tpr_at_fpr", "method_row", "campaign_rows", "summarise", "print_summary", "LOWER_IS_BETTER"]

#: Figures where a higher value is worse (the worst case over seeds is the maximum).
LOWER_IS_BETTER = {"flagged_negatives", "flagged_hard_negatives", "non_campaign_in_group", "groups",
                   "false_pivots"}  # fmt: skip


def tpr_at_fpr(y: np.ndarray, s: np.ndarray, fpr_max: float = 0.01) -> float:
    """The highest true-positive rate at a false-positive rate of at most ``fpr_max``."""
    fpr, tpr, _ = roc_curve(y, s)
    ok = fpr <= fpr_max
    return float(tpr[ok].max()) if ok.any() else 0.0


def _ranking(y: np.ndarray, s: np.ndarray, prefix: str = "") -> dict:
    if len(np.unique(y)) < 2:
        return {f"{prefix}auroc": None, f"{prefix}ap": None, f"{prefix}tpr@1%fpr": None}
    return {f"{prefix}auroc": float(roc_auc_score(y, s)), f"{prefix}ap": float(average_precision_score(y, s)),
            f"{prefix}tpr@1%fpr": tpr_at_fpr(y, s)}  # fmt: skip


def method_row(name: str, y, s, flags, kinds: list[str], heavy) -> dict:
    """Ranking and flag figures of one method on one seed (``heavy`` masks accounts with >= 20 requests)."""
    y, s, flags, heavy = np.asarray(y), np.asarray(s, dtype=float), np.asarray(flags, bool), np.asarray(heavy, bool)
    tp = int(np.sum(flags & (y == 1)))
    neg_kinds = Counter(k for k, f, t in zip(kinds, flags, y, strict=True) if f and t == 0)
    return {"method": name, **_ranking(y, s), **_ranking(y[heavy], s[heavy], "heavy_"),
            "flag_precision": tp / max(int(flags.sum()), 1), "flag_recall": tp / max(int(y.sum()), 1),
            "flagged_negatives": int(np.sum(flags & (y == 0))),
            "flagged_hard_negatives": sum(v for k, v in neg_kinds.items() if k != "organic"),
            "flagged_negative_kinds": dict(sorted(neg_kinds.items()))}  # fmt: skip


def _says_pivot(text: str | None) -> bool:
    """Whether an account's or group's reasons + evidence text reports a pivot."""
    low = (text or "").lower()
    return "pivot:" in low or bool(re.search(r'"pivots": \[\s*"', low))


def campaign_rows(acc: list[tuple], labels: dict, truth: dict, groups: dict[str, str]) -> dict:
    """Per campaign: recall, grouping and pivot figures.

    ``acc`` rows: (id, score, flagged, group, n_requests, reasons + evidence text); ``groups``: group id ->
    reasons + evidence text. A campaign's pivot counts as reported when its largest group, or at least
    half of its accounts, carry a pivot (a ``pivot:`` reason or a non-empty ``"pivots"`` evidence list).
    """
    out = {}
    by_group: dict[str, list[str]] = {}
    for a in acc:
        if a[3]:
            by_group.setdefault(a[3], []).append(a[0])
    for name, t in sorted(truth.items()):
        members = [a for a in acc if labels[a[0]]["campaign"] == name]
        if not members:
            continue
        gcount = Counter(a[3] for a in members if a[3])
        top, top_n = gcount.most_common(1)[0] if gcount else ("", 0)
        inside = [labels[x] for x in by_group.get(top, [])]
        flagged = [a for a in members if a[2]]
        said = sum(_says_pivot(a[5]) for a in members)
        reported = said >= 0.5 * len(members) or _says_pivot(groups.get(top, ""))
        out[name] = {
            "accounts": len(members), "recall": len(flagged) / len(members),
            "largest_group_share": top_n / len(members), "groups": len(gcount),
            "non_campaign_in_group": sum(x["label"] != "campaign" for x in inside),
            "organic_in_group": sum(x["label"] == "organic" for x in inside),
            "other_campaigns_in_group": sum(x["label"] == "campaign" and x["campaign"] != name for x in inside),
            "pivots": bool(t.get("pivots")), "pivot_reported": reported,
            "traits": {k: t.get(k) for k in ("hydra", "median_requests", "n_payment_ids", "proxy_share",
                                             "round_the_clock", "followup_share", "cover_share", "areas",
                                             "scaffolds_per_area", "pivot_model", "pivot_area", "requests")},
        }  # fmt: skip
    return out


def _agg(values: list, key: str) -> dict:
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return {"mean": None, "worst": None, "n": 0}
    worst = max(vals) if key in LOWER_IS_BETTER else min(vals)
    return {"mean": float(np.mean(vals)), "worst": worst, "n": len(vals)}


def summarise(per_seed: list[dict]) -> dict:
    """Mean and worst case over seeds of every method figure; campaign figures by family."""
    methods: dict[str, dict] = {}
    for r in per_seed:
        for row in r["methods"]:
            m = methods.setdefault(row["method"], {})
            for k, v in row.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) or v is None:
                    m.setdefault(k, []).append(v)
    summary = {"methods": {name: {k: _agg(v, k) for k, v in figs.items()} for name, figs in methods.items()}}
    kinds: dict[str, Counter] = {}
    for r in per_seed:
        for row in r["methods"]:
            kinds.setdefault(row["method"], Counter()).update(row.get("flagged_negative_kinds", {}))
    summary["flagged_negative_kinds"] = {name: dict(sorted(c.items())) for name, c in kinds.items()}
    camps = [c for r in per_seed for c in r["campaigns"].values()]
    fams = {"all": camps, ">=20 accounts": [c for c in camps if c["accounts"] >= 20],
            "hydra": [c for c in camps if c["traits"]["hydra"] is True],
            "heavy": [c for c in camps if c["traits"]["hydra"] is False],
            "proxied (share >= 0.5)": [c for c in camps if (c["traits"]["proxy_share"] or 0) >= 0.5],
            "with cover traffic": [c for c in camps if (c["traits"]["cover_share"] or 0) > 0]}  # fmt: skip
    summary["campaigns"] = {
        fam: {"campaigns": len(cs), **{k: _agg([c[k] for c in cs], k) for k in
              ("recall", "largest_group_share", "groups", "non_campaign_in_group")}}
        for fam, cs in fams.items() if cs
    }  # fmt: skip
    piv = [c for c in camps if c["pivots"]]
    still = [c for c in camps if not c["pivots"]]
    summary["pivots"] = {"pivoting_campaigns": len(piv), "reported": sum(c["pivot_reported"] for c in piv),
                         "non_pivoting_campaigns": len(still),
                         "false_pivots": sum(c["pivot_reported"] for c in still)}  # fmt: skip
    summary["seconds_per_seed"] = _agg([r["seconds"] for r in per_seed], "seconds")
    hits = sum(r["cache_hits"] for r in per_seed)
    summary["cache_hit_rate"] = hits / max(hits + sum(r["cache_misses"] for r in per_seed), 1)
    return summary


def _f(v) -> str:
    return "   -  " if v is None else f"{v:6.3f}" if isinstance(v, float) and abs(v) < 100 else f"{v:6.0f}"


def print_summary(summary: dict, per_seed: list[dict]) -> None:
    """Print the tables: methods (mean / worst over seeds), campaign families, pivots, per seed."""
    cols = ("auroc", "ap", "tpr@1%fpr", "heavy_auroc", "heavy_tpr@1%fpr", "flag_precision", "flag_recall",
            "flagged_hard_negatives")  # fmt: skip
    print(f"\n{len(per_seed)} seeds ({per_seed[0]['split'] if per_seed else '-'}); each cell: mean / worst\n")
    print(f"{'method':<34} " + " ".join(f"{c[:15]:>15}" for c in cols))
    for name, figs in summary["methods"].items():
        cells = [f"{_f(figs[c]['mean'])} /{_f(figs[c]['worst'])}" if c in figs else f"{'-':>15}" for c in cols]
        print(f"{name:<34} " + " ".join(f"{x:>15}" for x in cells))
    print(f"\n{'campaign family':<24} {'n':>4} " + " ".join(f"{c[:21]:>17}" for c in
          ("recall", "largest_group_share", "groups", "non_campaign_in_group")))  # fmt: skip
    for fam, figs in summary["campaigns"].items():
        cells = [f"{_f(figs[c]['mean'])} /{_f(figs[c]['worst'])}" for c in
                 ("recall", "largest_group_share", "groups", "non_campaign_in_group")]  # fmt: skip
        print(f"{fam:<24} {figs['campaigns']:>4} " + " ".join(f"{x:>17}" for x in cells))
    print("\nflagged negatives by kind, all seeds together:")
    for name, kinds in summary.get("flagged_negative_kinds", {}).items():
        print(f"  {name:<34} {kinds or 'none'}")
    p = summary["pivots"]
    print(f"\npivots reported: {p['reported']} of {p['pivoting_campaigns']} pivoting campaigns; "
          f"{p['false_pivots']} of {p['non_pivoting_campaigns']} non-pivoting campaigns")  # fmt: skip
    print("\nper seed: seed, requests, accounts (campaign), seconds, cache hit rate, promptcov AUROC / TPR@1%")
    for r in per_seed:
        pc = r["methods"][0]
        print(f"  {r['seed']:>4} {r['requests']:>7} {r['accounts']:>5} ({r['campaign_accounts']:>4}) "
              f"{r['seconds']:>6.0f}s {_f(r['cache_hit_rate'])}  {_f(pc['auroc'])} / {_f(pc['tpr@1%fpr'])}")
        for name, c in r["campaigns"].items():
            t = c["traits"]
            print(f"        {name}: {c['accounts']} accts, recall {c['recall']:.2f}, largest group "
                  f"{c['largest_group_share']:.2f} of {c['groups']} groups, +{c['non_campaign_in_group']} others; "
                  f"{({True: 'hydra', False: 'heavy'}).get(t['hydra'], '-')}, {t['n_payment_ids']} cards, proxy {_f(t['proxy_share'])}, "
                  f"cover {_f(t['cover_share'])}, pivot {c['pivots']}->{c['pivot_reported']}")  # fmt: skip
