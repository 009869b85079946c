"""Benchmark the prompt-space map: fit on a sample, assign up to a million rows, compare assignments.

The vectors are synthetic and clustered like prompt embeddings: 20 broad "areas", 200 regions
inside them (Zipf-sized, tight like a sweep's template or loose like an organic topic), a diffuse
background around the areas and 5% uniform noise, in 384-d. Rows are generated batch by batch from
a seed (row i is the same whatever N), so no run holds N x 384 floats: the map draws its sample
through a lazy row source and predict streams it. Each N runs in a fresh process so that its peak
resident memory (``ru_maxrss``) is its own.

With ``--data DIR`` a seeded sample of real prompts (``--real``, default 2,000; the real model
embeds ~50/s here) from the public sets is embedded and mapped on its own, and the two assignment
methods are compared on it too, adding the purity of the clusters in the sets' ``category``.
Only numbers are written to ``--out``; cluster keywords are printed, never stored.

    python scripts/bench_map.py                       # N = 100k, 250k, 500k, 1M
    python scripts/bench_map.py --sizes 20000 --sample-size 2000 --data ../shared/data --real 500
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DIM, AREAS, BATCH = 384, 20, 65536


class SyntheticRows:
    """A lazy (N, 384) float32 row source: ``shape``, ``rows[i:j]`` and ``rows[index_array]``."""

    def __init__(self, n: int, n_clusters: int = 200, seed: int = 0):
        rng = np.random.default_rng([seed, 10**6])
        areas = _unit(rng.standard_normal((AREAS, DIM)))
        self.centres = _unit(areas[rng.integers(0, AREAS, n_clusters)] + 0.9 * _noise(rng, n_clusters))
        self.areas = areas
        self.spread = rng.uniform(0.55, 1.25, n_clusters)  # cosine to the centre ~0.85 (sweep) .. ~0.6
        w = 1.0 / np.arange(1, n_clusters + 1) ** 0.8
        # mixture: 85% regions, 10% diffuse background around the areas, 5% uniform noise
        self.p = np.concatenate([0.85 * w / w.sum(), [0.10, 0.05]])
        self.n, self.seed, self.k = n, seed, n_clusters
        self.shape = (n, DIM)
        self.gen_seconds = 0.0
        self._truth: dict[int, np.ndarray] = {}

    def batch(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``[j * BATCH, (j + 1) * BATCH)`` of the synthetic part and their true region (-1 noise)."""
        t = time.perf_counter()
        size = min(BATCH, self.n - j * BATCH)
        rng = np.random.default_rng([self.seed, j])
        comp = rng.choice(len(self.p), size=size, p=self.p)
        truth = np.where(comp < self.k, comp, -1)
        x = _noise(rng, size)
        region = comp < self.k
        x[region] = self.centres[comp[region]] + x[region] * self.spread[comp[region], None].astype(
            np.float32
        )
        back = comp == self.k
        x[back] = self.areas[rng.integers(0, AREAS, int(back.sum()))] + 2.2 * x[back]
        x = _unit(x)
        self._truth[j] = truth.astype(np.int16)
        self.gen_seconds += time.perf_counter() - t
        return x, truth

    def __getitem__(self, key):
        if isinstance(key, slice):
            start, stop, _ = key.indices(self.shape[0])
            key = np.arange(start, stop)
        key = np.asarray(key, dtype=np.int64)
        out = np.empty((len(key), DIM), dtype=np.float32)
        blocks = key // BATCH
        for j in np.unique(blocks):
            rows = np.flatnonzero(blocks == j)
            out[rows] = self.batch(int(j))[0][key[rows] - j * BATCH]
        return out

    def truth(self) -> np.ndarray:
        parts = [self._truth.get(j, None) for j in range((self.n + BATCH - 1) // BATCH)]
        parts = [p if p is not None else self.batch(j)[1] for j, p in enumerate(parts)]
        return np.concatenate(parts)


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal((n, DIM), dtype=np.float32) / np.float32(np.sqrt(DIM))


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_one(args: argparse.Namespace) -> dict:
    """One N in this process: fit, stream predict, scores; optionally the assignment comparison."""
    from sklearn.metrics import adjusted_rand_score

    from promptcov.coverage.map.prompt_map import PromptMap

    rows = SyntheticRows(args.worker_n, seed=args.seed)
    t0 = time.perf_counter()  # numba compiles UMAP's code once per process: keep it out of the fit time
    PromptMap(seed=args.seed).fit(SyntheticRows(600, seed=args.seed + 1)[np.arange(600)])
    warmup_s = time.perf_counter() - t0
    m = PromptMap(sample_size=args.sample_size, seed=args.seed)
    t0 = time.perf_counter()
    m.fit(rows)
    fit_s = time.perf_counter() - t0
    peak_fit = _peak_mb()
    gen_before = rows.gen_seconds
    t0 = time.perf_counter()
    labels = m.predict(rows, batch_size=BATCH)
    predict_s = time.perf_counter() - t0
    gen_s = rows.gen_seconds - gen_before
    truth = rows.truth()
    res = {
        "n": args.worker_n,
        "sample": len(m.sample_index_),
        "clusters": len(m.cluster_ids_),
        "min_cluster_size": m.resolved_min_cluster_size_,
        "fit_s": fit_s,
        "jit_warmup_s": warmup_s,
        "fit_parts_s": m.fit_seconds_,
        "predict_s": predict_s,
        "predict_generate_s": gen_s,
        "predict_assign_s": predict_s - gen_s,
        "assign_rows_per_s": len(labels) / max(predict_s - gen_s, 1e-9),
        "noise_share": float(np.mean(labels < 0)),
        "sample_noise_share": float(np.mean(m.labels_ < 0)),
        "ari_vs_truth": float(adjusted_rand_score(truth, labels)),
        "peak_rss_mb_after_fit": peak_fit,
        "peak_rss_mb": _peak_mb(),
    }
    if args.compare_rows:
        res["compare"] = compare(m, rows, args)
        res["peak_rss_mb_with_compare"] = _peak_mb()
    return res


def purity(labels: np.ndarray, cats: np.ndarray) -> float:
    """Share of clustered rows whose category is their cluster's majority category."""
    good = total = 0
    for c in np.unique(labels[labels >= 0]):
        counts = np.unique(cats[labels == c], return_counts=True)[1]
        good, total = good + counts.max(), total + counts.sum()
    return float(good / max(total, 1))


def run_real(args: argparse.Namespace) -> dict:
    """Map the real prompts on their own; compare the assignments; keywords go to stdout only."""
    from promptcov.coverage.map.naming import cluster_keywords
    from promptcov.coverage.map.prompt_map import PromptMap

    v = np.load(args.real_vectors)
    meta = json.loads(Path(args.real_meta).read_text())
    cats = np.array(meta["category"])
    t0 = time.perf_counter()
    m = PromptMap(sample_size=len(v), seed=args.seed).fit(v)
    fit_s = time.perf_counter() - t0
    kw = cluster_keywords(meta["prompt"], m.labels_, top_n=5)
    for c in sorted((c for c in kw if c >= 0), key=lambda c: -np.sum(m.labels_ == c))[:10]:
        names, counts = np.unique(cats[m.labels_ == c], return_counts=True)
        mix = ", ".join(f"{a}:{b}" for a, b in zip(names.tolist(), counts.tolist(), strict=True))
        print(f"  real cluster {c:3d} n={counts.sum():4d} [{mix}]: {', '.join(kw[c])}")
    return {
        "n": len(v),
        "clusters": len(m.cluster_ids_),
        "min_cluster_size": m.resolved_min_cluster_size_,
        "noise_share": float(np.mean(m.labels_ < 0)),
        "category_purity": purity(m.labels_, cats),
        "fit_s": fit_s,
        "compare": compare(m, v, args, cats),
    }


def compare(m, rows, args: argparse.Namespace, cats: np.ndarray | None = None) -> dict:
    """Centroid vs HDBSCAN assignment, scored against the labels HDBSCAN gave the fitted sample.

    A second map (same seed, ``assign="hdbscan"``) is fitted on 80% of the first map's sample; the
    other 20% are held out. Both assignments of the second map (its centroids, or umap.transform +
    approximate_predict) label the held-out rows, and are scored by the adjusted Rand index against
    the first map's HDBSCAN labels (noise counted as a label), by noise share and by speed. The same
    is done on the second map's own sample points. With ``cats`` (real prompts' categories), the
    category purity of the held-out assignment is added.
    """
    from sklearn.metrics import adjusted_rand_score

    from promptcov.coverage.map.prompt_map import PromptMap

    x = rows[m.sample_index_]
    ref = m.labels_
    hm = PromptMap(sample_size=int(0.8 * len(x)), assign="hdbscan", seed=args.seed).fit(x)
    cm = copy.copy(hm)
    cm.assign = "centroid"  # same fitted clusters; only the assignment differs
    held = np.setdiff1d(np.arange(len(x)), hm.sample_index_)[: args.compare_rows]
    own = hm.sample_index_[: args.compare_rows]
    out = {"held_out_rows": len(held), "own_sample_rows": len(own), "clusters": len(hm.cluster_ids_)}
    hm.predict(x[:50])  # compile UMAP's transform before timing it
    for name, mm in (("centroid", cm), ("hdbscan", hm)):
        t0 = time.perf_counter()
        pred = mm.predict(x[held])
        sec = time.perf_counter() - t0
        both = (ref[held] >= 0) & (pred >= 0)
        own_pred = mm.predict(x[own])
        own_member = mm.labels_[: len(own)] >= 0
        out[name] = {
            "ari_held_out": float(adjusted_rand_score(ref[held], pred)),
            "ari_held_out_clustered": float(adjusted_rand_score(ref[held][both], pred[both])),
            "noise_share_held_out": float(np.mean(pred < 0)),
            "reference_noise_share": float(np.mean(ref[held] < 0)),
            "own_sample_agreement": float(
                np.mean(own_pred[own_member] == mm.labels_[: len(own)][own_member])
            ),
            "own_sample_noise_kept": float(np.mean(own_pred[~own_member] < 0))
            if (~own_member).any()
            else None,
            "rows_per_s": len(held) / sec,
        }
        if cats is not None:
            out[name]["category_purity_held_out"] = purity(pred, cats[m.sample_index_][held])
    return out


def load_real(data: Path, n: int, seed: int, tmp: Path) -> tuple[str, str]:
    """Embed ``n`` real prompts (a seeded sample across the public sets); returns (vectors.npy, meta.json)."""
    from promptcov.index.embedders import load_embedder

    rng = np.random.default_rng(seed)
    prompts, cats = [], []
    files = sorted(data.glob("*.jsonl.gz"))
    for f in files:
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            recs = [json.loads(line) for line in fh]
        take = rng.choice(len(recs), size=min(len(recs), max(1, n // len(files))), replace=False)
        prompts += [recs[i]["prompt"][:2000] for i in take]
        cats += [recs[i]["category"] for i in take]
    t0 = time.perf_counter()
    vecs = load_embedder().embed(prompts)
    print(f"embedded {len(prompts)} real prompts in {time.perf_counter() - t0:.0f}s", flush=True)
    np.save(tmp / "real.npy", vecs)
    (tmp / "real.json").write_text(json.dumps({"prompt": prompts, "category": cats}))
    return str(tmp / "real.npy"), str(tmp / "real.json")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,250000,500000,1000000")
    ap.add_argument("--sample-size", type=int, default=20000)
    ap.add_argument("--compare-rows", type=int, default=4000, help="held-out rows per method (0: skip)")
    ap.add_argument("--data", type=Path, help="folder of the public prompt sets (../shared/data)")
    ap.add_argument("--real", type=int, default=2000, help="real prompts to embed with --data")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("reports/bench/bench_map.json"))
    ap.add_argument("--worker-n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--real-vectors", help=argparse.SUPPRESS)
    ap.add_argument("--real-meta", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker_n or args.real_vectors:
        res = run_one(args) if args.worker_n else run_real(args)
        print("RESULT " + json.dumps(res), flush=True)
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    results, real = [], None
    t_all = time.perf_counter()
    base = [sys.executable, __file__, "--sample-size", str(args.sample_size), "--seed", str(args.seed)]
    for i, n in enumerate(sizes):
        res = _worker(
            base + ["--worker-n", str(n), "--compare-rows", str(args.compare_rows if i == 0 else 0)]
        )
        results.append(res)
        print(
            f"N={n:>9,}  fit {res['fit_s']:6.1f}s  predict {res['predict_s']:6.1f}s "
            f"(assign {res['predict_assign_s']:5.1f}s)  peak {res['peak_rss_mb']:6.0f} MB  "
            f"clusters {res['clusters']}  noise {res['noise_share']:.2f}  ARI {res['ari_vs_truth']:.3f}",
            flush=True,
        )
    if args.data:
        with tempfile.TemporaryDirectory() as tmp:
            vec, meta = load_real(args.data, args.real, args.seed, Path(tmp))
            real = _worker(base + ["--real-vectors", vec, "--real-meta", meta, "--compare-rows", "100000"])
    report = {
        "machine": f"{platform.node()} {platform.machine()} {platform.processor()} cpus={_cpus()}",
        "date": time.strftime("%Y-%m-%d"),
        "sample_size": args.sample_size,
        "total_s": time.perf_counter() - t_all,
        "synthetic": results,
        "real": real,
    }
    print_table(results, real)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"total {report['total_s']:.0f}s; wrote {args.out}")
    return 0


def _worker(cmd: list[str]) -> dict:
    """Run one measurement in a fresh process (its own peak RSS); echo its stdout; return its result."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or "RESULT " not in proc.stdout:
        raise SystemExit(f"worker failed ({proc.returncode}): {' '.join(cmd[2:])}\n{proc.stderr[-3000:]}")
    head, tail = proc.stdout.split("RESULT ", 1)
    print(head, end="")
    res = json.loads(tail)
    res["process_wall_s"] = time.perf_counter() - t0
    return res


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def print_table(results: list[dict], real: dict | None) -> None:
    print(
        "\n| N | fit s (UMAP / HDBSCAN) | predict s (generate / assign) | peak RSS MB | clusters | noise | ARI |"
    )
    print("|---:|---|---|---:|---:|---:|---:|")
    for r in results:
        p = r["fit_parts_s"]
        print(
            f"| {r['n']:,} | {r['fit_s']:.1f} ({p['reduce']:.1f} / {p['cluster']:.1f}) | {r['predict_s']:.1f} "
            f"({r['predict_generate_s']:.1f} / {r['predict_assign_s']:.1f}) | {r['peak_rss_mb']:.0f} | "
            f"{r['clusters']} | {r['noise_share']:.3f} | {r['ari_vs_truth']:.3f} |"
        )
    if real:
        print(
            f"\nreal prompts: n={real['n']}, {real['clusters']} clusters, noise {real['noise_share']:.3f}, "
            f"category purity {real['category_purity']:.3f}, fit {real['fit_s']:.1f}s"
        )
    for title, r in [("synthetic", r) for r in results] + [("real", real)]:
        if r and "compare" in r:
            c = r["compare"]
            print(
                f"\nassignment comparison, {title} ({c['held_out_rows']} held-out rows, {c['clusters']} clusters)"
            )
            print(
                "| method | ARI held-out | ARI clustered rows | noise held-out (ref) | own-sample agree | rows/s |"
            )
            print("|---|---:|---:|---:|---:|---:|")
            for name in ("centroid", "hdbscan"):
                s = c[name]
                print(
                    f"| {name} | {s['ari_held_out']:.3f} | {s['ari_held_out_clustered']:.3f} | "
                    f"{s['noise_share_held_out']:.3f} ({s['reference_noise_share']:.3f}) | "
                    f"{s['own_sample_agreement']:.3f} | {s['rows_per_s']:,.0f} |"
                )


if __name__ == "__main__":
    raise SystemExit(main())
