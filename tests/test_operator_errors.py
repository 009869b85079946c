"""Operator errors: a mistyped --store, bad config values, an IVF factory on a new store, a busy
store, file modes. Each is one clear line with the contract's exit code, and creates nothing."""

import json
import os
import stat
import subprocess
import sys

import pytest

from promptcov.cli import main
from promptcov.index.embed import embed_pending
from promptcov.index.embedders import HashingEmbedder
from promptcov.index.faiss_index import VectorIndex, min_train_size
from promptcov.index.ingest import ingest_files
from promptcov.index.store import Store


def _log(write_jsonl, name="log.jsonl", n=60, start=0):
    return write_jsonl(name, [json.dumps({
        "request_id": f"r{i}", "account_id": f"a{i % 7}", "timestamp": 1763284364 + 60 * i,
        "prompt": f"prompt {i}: how do I {['sort', 'parse', 'hash', 'zip'][i % 4]} item {i * 13 % 97}?"})
        for i in range(start, start + n)])


@pytest.fixture
def store_path(tmp_path, write_jsonl):
    path = tmp_path / "store"
    assert main(["ingest", str(_log(write_jsonl)), "--store", str(path), "-q"]) == 0
    assert main(["embed", "--store", str(path), "--model", "hashing", "-q"]) == 0
    return path


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("argv", [
    ["map"], ["score"], ["report"], ["search", "hello"], ["verify"], ["verify", "--repair"], ["embed"]])
def test_mistyped_store_fails_and_creates_nothing(tmp_path, capsys, argv):
    typo = tmp_path / "promptcov-stroe"
    assert main(argv + ["--store", str(typo), "-q"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "no promptcov store here" in line and str(typo) in line
    assert not typo.exists()


def test_only_ingest_run_and_demo_create_a_store(tmp_path, write_jsonl):
    with pytest.raises(Exception, match="no promptcov store here"):
        Store(tmp_path / "nope", create=False)
    assert not (tmp_path / "nope").exists()
    assert main(["ingest", str(_log(write_jsonl)), "--store", str(tmp_path / "new"), "-q"]) == 0
    assert (tmp_path / "new" / "catalog.duckdb").exists()


@pytest.mark.parametrize("toml, where", [
    ("[embed]\nshard_size = 0", "[embed] shard_size = 0: must be >= 1"),
    ("[score.detector]\ntarget_fpr = 5", "[score.detector]: target_fpr must be in (0, 0.5), got 5.0"),
    ("[score.detector]\ntarget_fpr = 0.0", "[score.detector]: target_fpr must be in (0, 0.5), got 0.0"),
    ("[ingest]\nbatch_size = -5", "[ingest] batch_size = -5: must be >= 1"),
    ("[embed]\nbatch_size = -1", "[embed] batch_size = -1: must be >= 1"),
    ("[index]\nnprobe = 0", "[index] nprobe = 0: must be >= 1"),
    ("[map]\nsample_size = 9", "[map] sample_size = 9: must be >= 10"),
    ("[map]\nassign = 'kmeans'", "[map] assign = 'kmeans': must be one of 'centroid', 'hdbscan'"),
    ("[map]\nseed = -1", "[map] seed = -1: must be >= 0"),
    ("[report]\nn_weeks = 0", "[report] n_weeks = 0: must be >= 1"),
    ("[score.detector]\ntarget_fpr = nan", "[score.detector]: target_fpr must be in (0, 0.5), got nan"),
    ("[score.linking]\nresolution = 3", "[score.linking]: resolution must be in (0, 1), got 3"),
])
def test_bad_config_values_are_one_line_at_load(tmp_path, store_path, capsys, toml, where):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml + "\n")
    assert main(["map", "--store", str(store_path), "--config", str(cfg), "-q"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"config file {cfg}: {where}" in line


def test_bad_flag_value_is_one_line(store_path, capsys):
    assert main(["map", "--store", str(store_path), "--sample-size", "3", "-q"]) == 2
    assert "command line: [map] sample_size = 3: must be >= 10" in _one_line(capsys.readouterr().err)


def test_configured_ivf_factory_starts_a_new_store_exact_until_it_can_train(tmp_path, write_jsonl):
    """Was: "need at least one array to concatenate" on the first embed."""
    factory = "IDMap2,IVF2,Flat"
    assert min_train_size(factory, 64) == 78
    store = Store(tmp_path / "s")
    ingest_files(store, [_log(write_jsonl, "a.jsonl", n=60)])
    emb = HashingEmbedder(name="hashing")
    first = embed_pending(store, emb, shard_size=16, factory=factory, nprobe=2)
    assert first.index_factory == "IDMap2,Flat" and first.index_count == 60
    ingest_files(store, [_log(write_jsonl, "b.jsonl", n=40, start=60)])
    second = embed_pending(store, emb, shard_size=16, factory=factory, nprobe=2)
    assert second.index_factory == factory and second.index_count == 100
    ix = VectorIndex.load(store.index_dir)
    _, vecs = store.get_vectors([int(store.con.execute("SELECT min(text_id) FROM texts").fetchall()[0][0])])
    assert ix.search(vecs, k=1)[0][0, 0] > 0.99


def test_configured_ivf_factory_through_the_cli(tmp_path, write_jsonl, capsys):
    cfg = tmp_path / "ivf.toml"
    cfg.write_text('[index]\nfactory = "IDMap2,IVF64,Flat"\n')
    path = str(tmp_path / "s")
    assert main(["ingest", str(_log(write_jsonl)), "--store", path, "-q"]) == 0
    assert main(["embed", "--store", path, "--model", "hashing", "--config", str(cfg)]) == 0
    assert "index IDMap2,Flat holds 60" in capsys.readouterr().out
    assert main(["search", "how do I sort", "--store", path, "--json", "-k", "2"]) == 0


def test_busy_store_is_a_job_failure_exit_1(store_path, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "time.sleep(60)", str(store_path / "catalog.duckdb")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["score", "--store", str(store_path), "-q"]) == 1
        line = _one_line(capsys.readouterr().err)
        assert "job failed: cannot open" in line and "another promptcov job using this store?" in line
    finally:
        holder.kill()
        holder.wait()


def test_index_file_gets_the_usual_umask_mode(tmp_path, write_jsonl):
    old = os.umask(0o022)
    try:
        path = tmp_path / "s"
        assert main(["ingest", str(_log(write_jsonl)), "--store", str(path), "-q"]) == 0
        assert main(["embed", "--store", str(path), "--model", "hashing", "-q"]) == 0
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in
             [path / "store.json", path / "index" / "index.faiss", path / "index" / "manifest.json",
              *path.glob("vectors/*.npz")]}
    assert set(modes.values()) == {0o644}, {k: oct(v) for k, v in modes.items()}


def test_damaged_index_search_says_one_line(store_path, capsys):
    ix = store_path / "index" / "index.faiss"
    ix.write_bytes(ix.read_bytes()[:100])
    assert main(["search", "how do I sort", "--store", str(store_path)]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "index damaged" in line and "promptcov verify --repair" in line and "promptcov embed" in line
    assert main(["embed", "--store", str(store_path), "--model", "hashing", "-q"]) == 0
    assert main(["search", "how do I sort", "--store", str(store_path), "--json"]) == 0


def test_deleted_shard_search_then_embed_no_loop(store_path, capsys):
    shard = sorted((store_path / "vectors").glob("shard-*.npz"))[0]
    shard.unlink()
    # search reads the last published snapshot (which holds its own links to the shards), so it still
    # answers; the store itself is damaged and embed must notice and re-embed instead of saying "0 new"
    assert main(["search", "--request-id", "r0", "--store", str(store_path), "--json"]) == 0
    capsys.readouterr()
    assert main(["embed", "--store", str(store_path), "--model", "hashing"]) == 0
    assert "60 new text(s) embedded" in capsys.readouterr().out
    assert main(["search", "--request-id", "r0", "--store", str(store_path), "--json"]) == 0
