"""kill -9 at random points of ingest, embed, map and score; a rerun loses and duplicates nothing.

``ingest`` and ``embed`` run as ``python -m promptcov.cli`` subprocesses. ``map`` and ``score``
run the same ``promptcov.cli.main(argv)`` in children forked from one warmed-up process: a fresh
interpreter spends 20-80 s compiling UMAP's numba code before the map job writes anything, so
killing fresh processes would mostly test the compiler. Each child is killed with SIGKILL.

``PROMPTCOV_KILL_POINTS`` (default 3) sets the kill points per job; the summary line of each test
(``pytest -s``) gives the figures for the README.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from promptcov.index.faiss_index import VectorIndex
from promptcov.index.store import Store
from promptcov.index.verify import verify_store

ROOT = Path(__file__).resolve().parents[2]
KILLS = int(os.environ.get("PROMPTCOV_KILL_POINTS", "3"))
TOPICS = ["sorting algorithms", "tax law", "sonnets", "acid-base titration", "sourdough", "offside rule",
          "python decorators", "SQL joins", "tide tables", "chess openings"]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def _write_logs(folder: Path, n_files=2, per_file=700, bad_every=97) -> int:
    """Small gateway logs with a templated sweep among organic traffic; returns the good records."""
    rng = np.random.default_rng(7)
    good = 0
    for f in range(n_files):
        with open(folder / f"day{f}.jsonl", "w", encoding="utf-8") as fh:
            for i in range(per_file):
                n = f * per_file + i
                if i % bad_every == 5:
                    fh.write('{"request_id": "broken' + str(n) + '", \n')
                    continue
                acc = f"acct{rng.integers(60)}"
                topic = TOPICS[rng.integers(len(TOPICS))]
                if acc in ("acct1", "acct2", "acct3"):
                    prompt = f"You are an expert grader. Task {n}: explain {topic} step by step, then score it."
                else:
                    prompt = f"Quick question about {topic}: case {rng.integers(400)}, detail {n % 23}?"
                fh.write(json.dumps({"request_id": f"r{n}", "account_id": acc, "timestamp": 1763251200 + 37 * n,
                                     "prompt": prompt}) + "\n")
                good += 1
    return good


def _config(folder: Path, shard_size: int = 32) -> Path:
    cfg = folder / "promptcov.toml"
    cfg.write_text(f"[ingest]\nbatch_size = 50\n[embed]\nshard_size = {shard_size}\n"
                   "[map]\nsample_size = 600\nprojection_points = 200\n")
    return cfg


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "promptcov.cli", *args]


def _run_killed(argv: list[str], delay: float) -> bool:
    """Start the CLI, SIGKILL it after ``delay`` seconds; True when it was killed mid-run."""
    p = subprocess.Popen(argv, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        p.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGKILL)
        p.wait()
        return True


def _timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(argv, env=_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return time.perf_counter() - t0


def _kill_points(seed: int, duration: float, start: float = 0.0) -> list[float]:
    """Seeded random delays in ``[start, duration)``, shortest first (each run resumes the last)."""
    rng = np.random.default_rng(seed)
    return sorted(rng.uniform(start, duration, KILLS))


def _check_requests(store: Store, good: int, bad: int) -> dict:
    con = store.con
    n, distinct = con.execute("SELECT count(*), count(DISTINCT request_id) FROM requests").fetchall()[0]
    counted = con.execute("SELECT sum(n_requests) FROM texts").fetchall()[0][0]
    orphans = con.execute("SELECT count(*) FROM texts t ANTI JOIN requests r USING (text_id)").fetchall()[0][0]
    quarantined = list(store.quarantined())
    q_keys = {(q["source"], q["line"]) for q in quarantined}
    assert n == distinct == counted == good, (n, distinct, counted, good)
    assert orphans == 0
    assert len(quarantined) == len(q_keys) == bad
    return {"lost": good - distinct, "duplicates": n - distinct}


def _check_vectors(store: Store) -> int:
    ids = np.concatenate([i for _, i, _ in store.iter_shards()])
    assert len(ids) == len(np.unique(ids)) == store.count("texts") == store.count("embedded")
    assert VectorIndex.load(store.index_dir).ntotal == store.count("texts")
    assert verify_store(store).healthy
    return len(ids) - len(np.unique(ids))


@pytest.fixture
def logs(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    good = _write_logs(folder)
    return sorted(folder.glob("*.jsonl")), good


def test_kill_ingest_and_embed_then_rerun(tmp_path, logs):
    paths, good = logs
    bad = 2 * len([i for i in range(700) if i % 97 == 5])
    cfg = _config(tmp_path)
    scratch, store = tmp_path / "scratch", tmp_path / "store"
    t_ingest = _timed(_cli("ingest", *map(str, paths), "--store", str(scratch), "--config", str(cfg), "-q"))
    t_embed = _timed(_cli("embed", "--store", str(scratch), "--config", str(cfg), "--model", "hashing", "-q"))
    killed = {"ingest": 0, "embed": 0}
    for d in _kill_points(1, t_ingest, 0.3):
        killed["ingest"] += _run_killed(_cli("ingest", *map(str, paths), "--store", str(store), "--config",
                                             str(cfg), "-q"), d)
    assert _timed(_cli("ingest", *map(str, paths), "--store", str(store), "--config", str(cfg), "-q"))
    for d in _kill_points(2, t_embed, 0.3):
        killed["embed"] += _run_killed(_cli("embed", "--store", str(store), "--config", str(cfg), "--model",
                                            "hashing", "-q"), d)
    _timed(_cli("embed", "--store", str(store), "--config", str(cfg), "--model", "hashing", "-q"))
    with Store(store, create=False) as s:
        figures = _check_requests(s, good, bad)
        dup_vectors = _check_vectors(s)
    print(f"\nkill -9: ingest {KILLS} kill points ({killed['ingest']} mid-run), embed {KILLS} ({killed['embed']} "
          f"mid-run); {good} good records: {figures['lost']} lost, {figures['duplicates']} duplicated; "
          f"{dup_vectors} duplicate vectors")
    assert killed["ingest"] + killed["embed"] > 0


ZYGOTE = r"""
import json, os, sys
from promptcov.cli import main
for argv in json.loads(sys.argv[1]):          # warm-up runs: imports and numba compilation, once
    assert main(argv) == 0, argv
print("ready", flush=True)
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        msg = json.loads(line)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        os.dup2(os.open(msg["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
        os._exit(main(msg["argv"]))
    print(pid, flush=True)
    _, status = os.waitpid(pid, 0)
    print(json.dumps([os.WIFSIGNALED(status) and os.WTERMSIG(status), os.WIFEXITED(status) and os.WEXITSTATUS(status)]),
          flush=True)
"""


class Zygote:
    """A warmed-up process that forks a child per CLI run; the test SIGKILLs children."""

    def __init__(self, warm: list[list[str]], err: Path):
        self.err = err
        # numba's OpenMP layer refuses fork(); its own workqueue layer is fork-safe
        env = {**_env(), "NUMBA_THREADING_LAYER": "workqueue"}
        self.p = subprocess.Popen([sys.executable, "-c", ZYGOTE, json.dumps(warm)], env=env, text=True,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.p.stdout.readline().strip() == "ready"

    def run(self, argv: list[str], kill_after: float | None = None) -> tuple[int, int, float]:
        """``(signal, exit status, seconds)`` of one forked run, killed after ``kill_after`` seconds."""
        t0 = time.perf_counter()
        self.p.stdin.write(json.dumps({"argv": argv, "err": str(self.err)}) + "\n")
        self.p.stdin.flush()
        pid = int(self.p.stdout.readline())
        if kill_after is not None:
            time.sleep(max(0.0, kill_after - (time.perf_counter() - t0)))
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        sig, status = json.loads(self.p.stdout.readline())
        if (sig and (sig != signal.SIGKILL or kill_after is None)) or (not sig and status):
            raise AssertionError(f"{argv[0]}: signal {sig}, exit {status}: {self.err.read_text()}")
        return int(sig or 0), int(status or 0), time.perf_counter() - t0

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=30)


def _tables(store: Path) -> dict:
    with Store(store, read_only=True) as s:
        q = {t: s.count(t) for t in ("requests", "texts", "text_map", "clusters", "templates", "map_points",
                                     "accounts", "groups", "account_metrics")}
        q["accounts_in_requests"] = s.con.execute("SELECT count(DISTINCT account_id) FROM requests").fetchall()[0][0]
        q["distinct_text_map"] = s.con.execute("SELECT count(DISTINCT text_id) FROM text_map").fetchall()[0][0]
        q["distinct_accounts"] = s.con.execute("SELECT count(DISTINCT account_id) FROM accounts").fetchall()[0][0]
        q["map_version"] = json.loads((s.map_dir / "promptcov_map.json").read_text())["version"]
        q["requests_scored"] = s.con.execute("SELECT sum(n_requests) FROM accounts").fetchall()[0][0]
        return q


def test_kill_map_and_score_then_rerun(tmp_path, logs):
    paths, good = logs
    cfg = _config(tmp_path, shard_size=4096)  # one shard: f73c687's map job fails on several (issue 9 item 1)
    store = tmp_path / "store"
    for argv in (["ingest", *map(str, paths)], ["embed", "--model", "hashing"]):
        _timed(_cli(*argv, "--store", str(store), "--config", str(cfg), "-q"))
    warm = tmp_path / "warm"
    shutil.copytree(store, warm)
    common = ["--config", str(cfg), "-q"]
    z = Zygote([["map", "--store", str(warm), *common], ["score", "--store", str(warm), *common]],
               tmp_path / "child.err")
    try:
        _, rc, t_map = z.run(["map", "--store", str(warm), *common])
        assert rc == 0
        _, rc, t_score = z.run(["score", "--store", str(warm), *common])
        assert rc == 0
        killed = {"map": 0, "score": 0}
        for d in _kill_points(3, t_map):
            killed["map"] += z.run(["map", "--store", str(store), *common], kill_after=d)[0] == signal.SIGKILL
        assert z.run(["map", "--store", str(store), *common])[1] == 0
        for d in _kill_points(4, t_score):
            killed["score"] += z.run(["score", "--store", str(store), *common], kill_after=d)[0] == signal.SIGKILL
        assert z.run(["score", "--store", str(store), *common])[1] == 0
    finally:
        z.close()
    got, want = _tables(store), _tables(warm)
    assert got["requests"] == good and got["text_map"] == got["distinct_text_map"] == got["texts"]
    assert got["accounts"] == got["distinct_accounts"] == got["accounts_in_requests"]
    assert got["requests_scored"] == good
    for t in ("text_map", "templates", "accounts", "groups", "account_metrics"):
        assert got[t] == want[t], (t, got[t], want[t])  # the same tables as an uninterrupted run
    with Store(store, create=False) as s:
        assert _check_vectors(s) == 0
    print(f"\nkill -9: map {KILLS} kill points ({killed['map']} mid-run, run {t_map:.1f}s), score {KILLS} "
          f"({killed['score']} mid-run, run {t_score:.1f}s); {good} requests: 0 lost, 0 duplicated; "
          f"text_map {got['text_map']} rows for {got['texts']} texts, accounts {got['accounts']}")
    assert killed["map"] + killed["score"] > 0
