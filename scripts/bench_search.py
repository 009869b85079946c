"""Benchmark: FAISS search latency and recall@10 of promptcov's index factories.

Clustered synthetic unit vectors (384-d, like all-MiniLM-L6-v2) at 100k and 1M: queries are
perturbed copies of stored vectors, the way an analyst searches for "prompts like this one".
For each size: the exact ``IDMap2,Flat`` index (ground truth and its latency) side by side with
the large-store factory (default ``IDMap2,IVF4096,Flat`` at several ``nprobe``), through
promptcov's own :class:`VectorIndex`. Prints a table and writes JSON.

    python scripts/bench_search.py --sizes 100000 1000000 --out reports/bench/bench_search.json

``--n N`` benchmarks the compressed tier instead, end to end through a real store: ``N``
synthetic clustered vectors are generated in chunks (never the whole matrix in memory) and
written as the store's float32 shards, the exact top-10 of ~200 queries is computed while
streaming the chunks, then ``sync_index`` builds the IVF-PQ index (training on a sample, adding
shard by shard), and the saved index is loaded memory-mapped and searched one query at a time
with exact re-ranking from the shards. Reports build time, peak RSS, index size on disk, the
serving process's RSS, p50/p99 latency and recall@10 per (nprobe, rerank_k).

    OMP_NUM_THREADS=1 python scripts/bench_search.py --n 1000000 --out reports/bench/bench_search_compressed.json

The build uses ``--threads`` FAISS threads (0: OpenMP's default), the timed single queries
``--search-threads`` (1, like the service). ``--reuse --workdir DIR`` times the search phase again
on the store and index a previous run left in ``DIR`` (the exact top-10 is recomputed by
regenerating the same seeded vectors).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from datetime import datetime, timezone
from pathlib import Path

import faiss
import numpy as np

from promptcov.index.embed import COMPRESSED_FACTORY
from promptcov.index.faiss_index import VectorIndex

try:
    from bench_search_tier import bench_compressed  # scripts/ on sys.path when run as a script
except ImportError:  # pragma: no cover - imported as scripts.bench_search
    from scripts.bench_search_tier import bench_compressed


def clustered(n: int, dim: int, n_clusters: int, rng, spread: float = 0.35) -> np.ndarray:
    centers = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, 100_000):
        e = min(n, s + 100_000)
        lab = rng.integers(0, n_clusters, e - s)
        out[s:e] = centers[lab] + spread * rng.standard_normal((e - s, dim)).astype(np.float32)
    faiss.normalize_L2(out)
    return out


def latencies(ix: VectorIndex, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    times, ids = [], []
    for row in q:  # one query at a time: what `promptcov search` does
        t = time.perf_counter()
        _, i = ix.search(row, k)
        times.append((time.perf_counter() - t) * 1000)
        ids.append(i[0])
    return np.array(times), np.array(ids)


def recall_at(truth: np.ndarray, got: np.ndarray, k: int) -> float:
    return float(np.mean([len(set(t[:k]) & set(g[:k])) / k for t, g in zip(truth, got, strict=True)]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--factory", default="IDMap2,IVF4096,Flat")
    ap.add_argument("--nprobe", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--threads", type=int, default=0, help="FAISS threads (0: all cores)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("reports/bench/bench_search.json"))
    ap.add_argument("--n", type=int, default=None, help="benchmark the compressed tier at N vectors instead")
    ap.add_argument("--compressed-factory", default=COMPRESSED_FACTORY)
    ap.add_argument("--rerank-k", type=int, nargs="+", default=[0, 50, 100])
    ap.add_argument("--chunk", type=int, default=100_000, help="vectors generated at a time")
    ap.add_argument("--shard-size", type=int, default=2048, help="vectors per store shard (embed's default)")
    ap.add_argument("--cold", action="store_true",
                    help="also time each nprobe with the store dropped from the page cache (fadvise DONTNEED)")
    ap.add_argument("--search-threads", type=int, default=1,
                    help="FAISS threads while timing single queries (1, as `promptcov serve` sets)")
    ap.add_argument("--reuse", action="store_true",
                    help="search phase only, on the store and index a previous --n run left in --workdir")
    ap.add_argument("--workdir", type=Path, default=None, help="where the bench store goes (default: a temp dir)")
    args = ap.parse_args(argv)
    if args.n is not None:
        return bench_compressed(args)
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    rows = []
    for n in args.sizes:
        x = clustered(n, args.dim, max(100, n // 2000), rng)
        ids = np.arange(n, dtype=np.int64) * 3 + 11
        qi = rng.choice(n, args.queries, replace=False)
        q = x[qi] + 0.05 * rng.standard_normal((args.queries, args.dim)).astype(np.float32)
        faiss.normalize_L2(q)
        flat = VectorIndex(args.dim, "bench", "IDMap2,Flat")
        flat.add(ids, x)
        t_flat, truth = latencies(flat, q, 10)
        rows.append({"n": n, "factory": "IDMap2,Flat", "nprobe": None, "build_s": 0.0,
                     "p50_ms": float(np.percentile(t_flat, 50)), "p99_ms": float(np.percentile(t_flat, 99)),
                     "recall@10": 1.0})
        del flat
        t0 = time.perf_counter()
        ivf = VectorIndex(args.dim, "bench", args.factory)
        ivf.train(x[rng.choice(n, min(n, 50 * 4096), replace=False)])
        ivf.add(ids, x)
        build = time.perf_counter() - t0
        for nprobe in args.nprobe:
            ivf.nprobe = nprobe
            t_ivf, got = latencies(ivf, q, 10)
            rows.append({"n": n, "factory": args.factory, "nprobe": nprobe, "build_s": build,
                         "p50_ms": float(np.percentile(t_ivf, 50)), "p99_ms": float(np.percentile(t_ivf, 99)),
                         "recall@10": recall_at(truth, got, 10)})
        del ivf, x
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'n':>9} {'factory':<22} {'nprobe':>6} {'build s':>8} {'p50 ms':>8} {'p99 ms':>8} {'recall@10':>9}")
    for r in rows:
        print(f"{r['n']:>9} {r['factory']:<22} {str(r['nprobe'] or '-'):>6} {r['build_s']:>8.1f} "
              f"{r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['recall@10']:>9.3f}")
    print(f"peak RSS {peak_mb:.0f} MB")
    result = {"benchmark": "search", "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": f"{platform.machine()} {platform.processor() or ''} cores={faiss.omp_get_max_threads()}",
              "dim": args.dim, "queries": args.queries, "rows": rows, "peak_rss_mb": peak_mb}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
