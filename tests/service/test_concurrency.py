"""Lookups keep working while a job holds the store's catalog, and see its work once published."""

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient

from promptcov.cli import main
from promptcov.index.embedders import HashingEmbedder
from promptcov.index.search import Searcher
from promptcov.service import create_app
from tests.service.conftest import TOKEN, build_store

ROOT = Path(__file__).resolve().parents[2]

# The job: hold the write connection, then ingest + embed + publish a new prompt while holding it.
JOB = r"""
import json, sys, time
from pathlib import Path
from promptcov.index.embed import embed_pending
from promptcov.cli import main
from promptcov.index.embedders import HashingEmbedder
from promptcov.index.ingest import ingest_files
from promptcov.index.snapshot import publish
from promptcov.index.store import Store

store_path, sig = Path(sys.argv[1]), Path(sys.argv[2])
def wait(name):
    t = time.time()
    while not (sig / name).exists():
        if time.time() - t > 60:
            sys.exit(3)
        time.sleep(0.02)
store = Store(store_path)
store.con.execute("SELECT count(*) FROM requests").fetchall()   # the catalog is now locked
(sig / "locked").touch()
wait("go")
log = sig / "new.jsonl"
log.write_text(json.dumps({"request_id": "n1", "account_id": "late-1", "timestamp": 1763290000,
                           "prompt": "translate this sonnet into klingon verse"}) + "\n")
ingest_files(store, [log])
embed_pending(store, HashingEmbedder())
publish(store)
(sig / "published").touch()
wait("stop")
store.close()
"""


def _wait(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    t = time.time()
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"job exited early: {proc.communicate()}")
        if time.time() - t > timeout:
            raise AssertionError(f"timed out waiting for {path.name}")
        time.sleep(0.02)


def test_search_while_a_job_holds_the_store(tmp_path):
    store_path = build_store(tmp_path)
    sig = tmp_path / "sig"
    sig.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", JOB, str(store_path), str(sig)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait(sig / "locked", proc)
        with pytest.raises(duckdb.IOException):  # the catalog really is held: no other process can read it
            duckdb.connect(str(store_path / "catalog.duckdb"), read_only=True)
        searcher = Searcher.open(store_path, embedder=HashingEmbedder())
        auth = {"Authorization": f"Bearer {TOKEN}"}
        with TestClient(create_app(searcher, TOKEN)) as client:
            r = client.post("/search", json={"text": "grade this answer using the rubric", "k": 2}, headers=auth)
            assert r.status_code == 200 and r.json()[0]["account_id"].startswith("sweep-")
            assert main(["search", "grade this answer using the rubric", "--store", str(store_path), "--json",
                         "-k", "1"]) == 0  # the CLI too
            before = client.get("/healthz").json()
            assert client.get("/search", params={"request_id": "n1"}, headers=auth).status_code == 404
            (sig / "go").touch()
            _wait(sig / "published", proc)
            after = client.get("/healthz").json()
            assert after["generation"] != before["generation"]
            assert after["counts"]["requests"] == before["counts"]["requests"] + 1
            hits = client.post("/search", json={"text": "translate this sonnet into klingon verse", "k": 1},
                               headers=auth).json()
            assert hits[0]["request_id"] == "n1" and hits[0]["similarity"] >= 0.99
            assert client.get("/search", params={"request_id": "n1"}, headers=auth).status_code == 200
    finally:
        (sig / "stop").touch()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
