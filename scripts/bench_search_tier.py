"""The compressed-tier half of ``scripts/bench_search.py --n N`` (see its docstring)."""

from __future__ import annotations

import gc
import json
import os
import platform
import shutil
import tempfile
import threading
import time
from datetime import datetime, timezone

import faiss
import numpy as np

from promptcov.index.embed import sync_index
from promptcov.index.faiss_index import VectorIndex
from promptcov.index.store import Store

__all__ = ["bench_compressed"]


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def rss_parts_mb() -> dict:
    """RssAnon (the process's own memory) and RssFile (mapped file pages, e.g. the mmap'd index)."""
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("RssAnon:", "RssFile:")):
                key, kb = line.split()[:2]
                out[key.rstrip(":").lower() + "_mb"] = int(kb) / 1024
    return out


class PeakRSS:
    """Peak RSS of this process while inside the block, sampled every 50 ms."""

    def __enter__(self):
        self.peak, self._stop = rss_mb(), threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss_mb())


def _chunk(c: int, size: int, centers: np.ndarray, seed: int, spread: float = 0.35) -> np.ndarray:
    """Chunk ``c`` of the synthetic set: the same vectors for the same (seed, c), generated on demand."""
    rng = np.random.default_rng((seed, c))
    lab = rng.integers(0, len(centers), size)
    x = centers[lab] + spread * rng.standard_normal((size, centers.shape[1])).astype(np.float32)
    faiss.normalize_L2(x)
    return x


def _merge_top(top_s, top_i, sims, ids, k):
    s = np.concatenate([top_s, sims], axis=1)
    i = np.concatenate([top_i, np.broadcast_to(ids, sims.shape)], axis=1)
    part = np.argpartition(-s, k - 1, axis=1)[:, :k]
    return np.take_along_axis(s, part, 1), np.take_along_axis(i, part, 1)


def _write_store(store: Store | None, args, centers: np.ndarray, qp: np.ndarray) -> tuple[np.ndarray, float]:
    """Generate and store the vectors chunk by chunk as shards, streaming the exact top-10 of the
    queries ``qp`` over each chunk; returns (exact top-10 ids, seconds). ``store`` None: truth only."""
    n, k = args.n, 10
    top_s = np.full((len(qp), k), -np.inf, np.float32)
    top_i = np.full((len(qp), k), -1, np.int64)
    t0, shard = time.perf_counter(), 0
    for c, start in enumerate(range(0, n, args.chunk)):
        size = min(args.chunk, n - start)
        x = _chunk(c, size, centers, args.seed)
        ids = np.arange(start, start + size, dtype=np.int64) * 3 + 11
        for s0 in range(0, size if store is not None else 0, args.shard_size):
            store.write_shard(shard, ids[s0:s0 + args.shard_size], x[s0:s0 + args.shard_size])
            shard += 1
        top_s, top_i = _merge_top(top_s, top_i, qp @ x.T, ids, k)
    order = np.argsort(-top_s, axis=1)
    return np.take_along_axis(top_i, order, 1), time.perf_counter() - t0


def bench_compressed(args) -> int:
    """Build the compressed tier over ``args.n`` synthetic vectors through a real store; print and write JSON."""
    rng = np.random.default_rng(args.seed)
    dim, n = args.dim, args.n
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    centers = rng.standard_normal((max(100, n // 2000), dim)).astype(np.float32)
    qrows = np.sort(rng.choice(n, args.queries, replace=False))
    # the queries: perturbed copies of stored vectors, built first by regenerating only their chunks
    qp = np.zeros((len(qrows), dim), np.float32)
    for c in np.unique(qrows // args.chunk):
        size = min(args.chunk, n - c * args.chunk)
        x = _chunk(int(c), size, centers, args.seed)
        mine = qrows // args.chunk == c
        qp[mine] = x[qrows[mine] - c * args.chunk]
    qp += 0.05 * rng.standard_normal(qp.shape).astype(np.float32)
    faiss.normalize_L2(qp)
    work = args.workdir or tempfile.mkdtemp(prefix="bench_search_", dir="/tmp")
    root = os.path.join(str(work), "store")
    built: dict = {}
    try:
        if args.reuse:  # search phase only, on the store a previous run left in --workdir
            truth, gen_s = _write_store(None, args, centers, qp)
            print(f"regenerated {n} vectors for the exact top-10 in {gen_s:.0f}s", flush=True)
            m = json.loads(open(os.path.join(root, "index", "manifest.json")).read())
            factory, ntotal = m["factory"], m["count"]
            built = {"reused_store": True}
        else:
            factory, ntotal, gen_s, truth, built = _build(root, args, centers, qp)
        faiss.omp_set_num_threads(args.search_threads)  # single queries, as `promptcov serve` runs them
        rows = _search_rows(os.path.join(root, "index"), dim, qp, truth, args)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    out = {"benchmark": "search-compressed", "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": f"{platform.machine()} cores={os.cpu_count()} build_threads={args.threads or 'omp default'} "
                      f"search_threads={faiss.omp_get_max_threads()}",
           "load_avg": os.getloadavg(), "data": "synthetic clustered (development figure)",
           "n": n, "dim": dim, "queries": len(qp), "factory": factory, "ntotal": ntotal,
           "generate_store_truth_s": gen_s, **built,
           "raw_float32_gb": n * dim * 4 / 1e9, **rows.pop("serving"), "rows": rows["rows"]}
    _print(out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=2))
    tmp.replace(args.out)
    return 0


def _build(root: str, args, centers: np.ndarray, qp: np.ndarray) -> tuple:
    """Write the store and build its compressed index: (factory, ntotal, generate s, truth, build figures)."""
    store = Store(root)
    store.bind_model("bench", args.dim)
    truth, gen_s = _write_store(store, args, centers, qp)
    print(f"generated, stored and scanned {args.n} vectors in {gen_s:.0f}s (rss {rss_mb():.0f} MB)", flush=True)
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        ix = sync_index(store, "bench", args.dim, compressed_factory=args.compressed_factory, compressed_threshold=1,
                        nprobe=max(args.nprobe), compressed_nprobe=max(args.nprobe), rerank_k=max(args.rerank_k))
        build_s = time.perf_counter() - t0
    factory, ntotal = ix.factory, ix.ntotal
    store.close()
    del ix, store
    gc.collect()
    return factory, ntotal, gen_s, truth, {"build_s": build_s, "build_peak_rss_mb": mem.peak}


def _time_queries(ix, queries, truth, rerank_k: int) -> dict:
    """p50/p99 latency (ms) of single queries and their recall@10 against the exact ``truth``."""
    times, got = [], []
    for q in queries:
        t = time.perf_counter()
        _, i = ix.search(q, 10, rerank_k=rerank_k)
        times.append((time.perf_counter() - t) * 1000)
        got.append(i[0])
    rec = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, got, strict=True)]))
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)), "recall@10": rec}


def _search_rows(index_dir: str, dim: int, qp: np.ndarray, truth: np.ndarray, args) -> dict:
    """Load the index memory-mapped in this process and time single queries per (nprobe, rerank_k)."""
    base = rss_mb()
    t0 = time.perf_counter()
    ix = VectorIndex.load(index_dir, model="bench", dim=dim)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ix.search(qp[:1], 10)  # first search builds the id -> (shard, row) lookup
    first_s = time.perf_counter() - t0
    rows = []
    for nprobe in args.nprobe:
        for rk in args.rerank_k:
            ix.nprobe = nprobe
            rows.append({"nprobe": nprobe, "rerank_k": rk, "cache": "warm", **_time_queries(ix, qp, truth, rk)})
    size = os.path.getsize(os.path.join(index_dir, "index.faiss"))
    parts = rss_parts_mb()
    serving = {"index_bytes": size, "mmap": ix.mmap_path is not None, "load_s": load_s,
               "first_search_s": first_s, "lookup_mb": ix.rows.nbytes / 2**20 if ix.rows else 0.0,
               "serving_rss_mb": rss_mb(), "serving_rss_delta_mb": rss_mb() - base,
               **{"serving_" + k: v for k, v in parts.items()}}
    del ix
    gc.collect()
    if args.cold:
        rows += _cold_rows(index_dir, dim, qp, truth, args)
    return {"serving": serving, "rows": rows}


def _evict(root: str) -> int:
    """Drop every file under ``root`` from the page cache (``POSIX_FADV_DONTNEED``); returns bytes."""
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                total += os.fstat(fd).st_size
            finally:
                os.close(fd)
    return total


def _cold_rows(index_dir: str, dim: int, qp: np.ndarray, truth: np.ndarray, args) -> list[dict]:
    """The same queries after the whole store (index and shards) was dropped from the page cache and the
    index loaded afresh: each (nprobe, rerank_k) with rerank > 0 once, caches evicted before each pass."""
    out = []
    for nprobe in args.nprobe:
        for rk in [r for r in args.rerank_k if r > 0][:1] + [0]:
            ix = VectorIndex.load(index_dir, model="bench", dim=dim)
            ix.search(qp[:1], 10)  # builds the id lookup (reads every shard's ids)
            ix.nprobe = nprobe
            del ix.index
            gc.collect()
            evicted = _evict(os.path.dirname(index_dir))
            ix.index = VectorIndex.load(index_dir, model="bench", dim=dim).index  # fresh mmap, cold pages
            out.append({"nprobe": nprobe, "rerank_k": rk, "cache": "cold", "evicted_gb": evicted / 1e9,
                        **_time_queries(ix, qp, truth, rk)})
            del ix
            gc.collect()
    return out


def _print(out: dict) -> None:
    print(f"n={out['n']} factory={out['factory']} build {out.get('build_s', float('nan')):.0f}s "
          f"(peak RSS {out.get('build_peak_rss_mb', float('nan')):.0f} MB)"
          f"; index {out['index_bytes'] / 2**20:.0f} MB on disk (raw float32 {out['raw_float32_gb']:.2f} GB), "
          f"mmap={out['mmap']}; load {out['load_s'] * 1000:.0f} ms, first search {out['first_search_s']:.1f}s "
          f"(lookup {out['lookup_mb']:.0f} MB); serving RSS {out['serving_rss_mb']:.0f} MB "
          f"(+{out['serving_rss_delta_mb']:.0f} MB for the index; anon {out.get('serving_rssanon_mb', 0):.0f} MB, "
          f"file {out.get('serving_rssfile_mb', 0):.0f} MB)")
    print(f"{'nprobe':>6} {'rerank_k':>8} {'cache':>5} {'p50 ms':>8} {'p99 ms':>8} {'recall@10':>9}")
    for r in out["rows"]:
        print(f"{r['nprobe']:>6} {r['rerank_k']:>8} {r.get('cache', '-'):>5} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
              f"{r['recall@10']:>9.3f}")
