"""Benchmark: time and peak memory of the score job's three steps at 10^5, 10^6 and 10^7 requests.

Synthetic window (development data, not tuned on anything): benign accounts with their own
templates, IPs and payment ids spread over a week, plus sweep groups (accounts sharing one
template, a few payment ids, one /24, bursty timing). A few thousand distinct 384-d vectors are
reused by every request (``vec_row``), the way distinct texts are deduplicated in the store.

Times ``AccountLinker().fit(frame)``, ``detect_pivots(frame, linker.groups_)`` and
``SweepDetector().fit(...)`` exactly as ``pipeline.score_job.run_score`` calls them, with the
peak RSS sampled by a thread (and ``ru_maxrss``). Prints a table and writes JSON, with the
number of links the linker reports and how many benign (non-sweep) accounts it put into groups:
the link count drives the cost of building links, Leiden and the detector.

    OMP_NUM_THREADS=1 python scripts/bench_score.py --sizes 100000 1000000 --out reports/bench/bench_score.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from promptcov.coverage.frame import RequestFrame
from promptcov.coverage.linking.linker import AccountLinker
from promptcov.coverage.scoring.detector import SweepDetector
from promptcov.coverage.scoring.pivots import detect_pivots
from promptcov.coverage.templates.detector import template_popularity

CAPABILITIES = ["coding", "math", "reasoning", "writing", "translation", "extraction", "chat", "other"]


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRSS:
    """Samples this process's RSS every ``every`` seconds while inside the ``with`` block."""

    def __init__(self, every: float = 0.05):
        self.every, self.peak, self._stop = every, 0.0, threading.Event()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb())
            self._stop.wait(self.every)

    def __enter__(self):
        self.peak = rss_mb()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss_mb())


def synth_frame(n: int, seed: int = 0, n_vectors: int = 4000, dim: int = 384,
                reqs_per_account: int = 40, sweep_share: float = 0.2) -> tuple[RequestFrame, dict]:
    """A synthetic window of ``n`` requests: benign accounts plus sweep groups of 25 accounts."""
    rng = np.random.default_rng(seed)
    n_acc = max(10, n // reqs_per_account)
    n_sweep_acc = int(n_acc * sweep_share) // 25 * 25
    n_groups = n_sweep_acc // 25
    acc = rng.integers(0, n_acc, n)                         # account of each request
    sweep_acc = acc < n_sweep_acc                           # accounts 0..n_sweep_acc-1 are in groups
    group = np.where(sweep_acc, acc // 25, -1)
    t0 = 1.7e9
    ts = t0 + rng.uniform(0, 7 * 86400, n)
    # sweep groups: bursts in a 6-hour window per group
    burst = t0 + rng.uniform(0, 6 * 86400, max(n_groups, 1))
    ts[sweep_acc] = burst[group[sweep_acc]] + rng.exponential(2 * 3600, sweep_acc.sum())
    n_templates = max(50, n_acc // 4)
    tmpl = rng.integers(0, n_templates, n)
    tmpl[sweep_acc] = n_templates + group[sweep_acc]        # one template per group
    t_names = [f"t{k}" for k in range(n_templates + max(n_groups, 1))] + ["t-popular"]
    tmpl[rng.random(n) < 0.05] = len(t_names) - 1
    n_texts = max(1000, n // 5)
    text_id = rng.integers(0, n_texts, n).astype(np.int64)
    centers = rng.standard_normal((64, dim)).astype(np.float32)
    vectors = centers[rng.integers(0, 64, n_vectors)] + 0.4 * rng.standard_normal((n_vectors, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    # rows sorted by (account, ts) here, as the frame keeps them ("acct-%07d" sorts as the number)
    order = np.lexsort((ts, acc))
    acc, ts, tmpl, text_id, sweep_acc, group = (a[order] for a in (acc, ts, tmpl, text_id, sweep_acc, group))
    del order
    vec_row = text_id % n_vectors
    cluster_id = vec_row % 200
    acc_names = [f"acct-{i:07d}" for i in range(n_acc)]
    ips = [f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" for i in range(n_acc)]
    gip = [f"172.16.{g % 256}.{k}" for g in range(max(n_groups, 1)) for k in range(1, 26)]  # a group's /24
    pays = [f"pay-{i}" for i in range(n_acc)] + [f"pay-g{g}-{k}" for g in range(max(n_groups, 1)) for k in range(3)]
    # string columns as codes into small vocabularies (Arrow dictionary arrays): no Python object per row
    cols = {"account_id": _dict(acc, acc_names), "ts": ts, "text_id": text_id, "vec_row": vec_row,
            "cluster_id": cluster_id, "capability": _dict(cluster_id % len(CAPABILITIES), CAPABILITIES),
            "template_id": _dict(tmpl, t_names), "ip": _dict(np.where(sweep_acc, n_acc + acc, acc), ips + gip),
            "payment_id": _dict(np.where(sweep_acc, n_acc + np.maximum(group, 0) * 3 + acc % 3, acc), pays),
            "asn": _dict(acc % 50, [f"AS{64500 + a}" for a in range(50)]),
            "user_agent": _dict(sweep_acc, ["Mozilla/5.0", "python-httpx/0.27"]),
            "model": _dict(np.zeros(n, np.int32), ["model-x"])}
    # popularity as the map job computes it (promptcov.pipeline.map_job): the benign accounts' templates,
    # each used once or twice by ~6% of the accounts, are public-prompt-like; the groups' are not
    names = np.array(t_names, dtype=object)
    pop = template_popularity(names[tmpl], np.array(acc_names, dtype=object)[acc])
    cols["template_popular"] = np.array([pop.get(t, (0, False))[1] for t in t_names], dtype=bool)[tmpl]
    frame = RequestFrame.from_columns(cols, vectors=vectors, sort=False)
    return frame, {"accounts": n_acc, "sweep_accounts": n_sweep_acc, "groups": n_groups,
                   "distinct_vectors": n_vectors, "distinct_texts": n_texts}


@contextmanager
def _step(row: dict, name: str):
    """Time one step into ``row[name + "_s"]`` and its peak RSS into ``row[name + "_peak_mb"]``."""
    t = time.perf_counter()
    with PeakRSS() as mem:
        yield
    row[name + "_s"] = time.perf_counter() - t
    row[name + "_peak_mb"] = mem.peak


def _dict(codes: np.ndarray, values: list) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(np.asarray(codes, dtype=np.int32)), pa.array(values))


def bench_one(n: int, seed: int, link_options: dict | None = None) -> dict:
    row: dict = {"n_requests": n, "link_options": dict(link_options or {})}
    with PeakRSS() as mem:
        with _step(row, "build_frame"):
            frame, info = synth_frame(n, seed)
        row.update(info)
        row["rss_after_frame_mb"] = rss_mb()
        with _step(row, "link"):
            linker = AccountLinker(**(link_options or {})).fit(frame)
        with _step(row, "pivots"):
            pivots = detect_pivots(frame, linker.groups_)
        with _step(row, "detect"):
            det = SweepDetector().fit(frame, groups=linker.groups_, group_members=linker.group_members_,
                                      links=linker.edges_, pivots=pivots, membership=linker.membership_,
                                      cohesion=linker.cohesion_)
    row["score_s"] = row["link_s"] + row["pivots_s"] + row["detect_s"]
    row["peak_rss_mb"] = mem.peak
    row["linked_groups"] = len(linker.group_members_)
    row["links"] = len(linker.edges_)
    sizes = [len(m) for m in linker.group_members_.values()]
    row["largest_group"] = max(sizes, default=0)
    # accounts acct-0000000 .. sweep_accounts-1 are the sweep groups' (see synth_frame)
    grouped = np.array([int(a.split("-")[1]) for a in linker.groups_], dtype=np.int64)
    row["benign_accounts_grouped"] = int((grouped >= info["sweep_accounts"]).sum())
    row["sweep_accounts_grouped"] = int((grouped < info["sweep_accounts"]).sum())
    row["flagged_accounts"] = int(sum(bool(r.get("flagged")) for r in det.accounts_))
    steps = {"link": row["link_s"], "pivots": row["pivots_s"], "detect": row["detect_s"]}
    row["dominant_step"] = max(steps, key=steps.get)
    del frame, linker, det, pivots
    gc.collect()
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--link-option", action="append", default=[], metavar="NAME=VALUE",
                    help="a [score.linking] setting for this run (e.g. timing_min_requests=1000000000: no synchrony)")
    ap.add_argument("--out", type=Path, default=Path("reports/bench/bench_score.json"))
    args = ap.parse_args(argv)
    rows = []
    hdr = (f"{'requests':>10} {'accounts':>9} {'frame s':>8} {'link s':>8} {'pivots s':>9} {'detect s':>9} "
           f"{'score s':>8} {'peak MB':>8} {'frame/link/pivots/detect peak MB':>33} {'groups':>7} {'links':>9} "
           f"{'benign grouped':>15} {'flagged':>8} dominant")
    print(hdr)
    for n in args.sizes:
        r = bench_one(n, args.seed, dict(_option(o) for o in args.link_option))
        rows.append(r)
        print(f"{n:>10} {r['accounts']:>9} {r['build_frame_s']:>8.1f} {r['link_s']:>8.1f} {r['pivots_s']:>9.1f} "
              f"{r['detect_s']:>9.1f} {r['score_s']:>8.1f} {r['peak_rss_mb']:>8.0f} {_peaks(r):>33} {r['linked_groups']:>7} "
              f"{r['links']:>9} {r['benign_accounts_grouped']:>15} {r['flagged_accounts']:>8} {r['dominant_step']}",
              flush=True)
        _write(args.out, rows)
    print(f"ru_maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; wrote {args.out}")
    return 0


def _option(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    return name.strip(), float(value) if "." in value or "e" in value else int(value)


def _peaks(r: dict) -> str:
    return "/".join(f"{r[k + '_peak_mb']:.0f}" for k in ("build_frame", "link", "pivots", "detect"))


def _write(out: Path, rows: list) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.platform(),
            "cpus": os.cpu_count(), "load_avg": os.getloadavg(),
            "omp_threads": os.environ.get("OMP_NUM_THREADS"), "data": "synthetic (development figure)"}
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2, default=float))
    os.replace(tmp, out)


if __name__ == "__main__":
    raise SystemExit(main())
