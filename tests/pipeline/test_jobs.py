"""The map and score jobs over a real store, with the deterministic test embedder."""

from __future__ import annotations

import csv
import json

import pyarrow.parquet as pq
import pytest

from promptcov.cli import main
from promptcov.config import Config
from promptcov.errors import InputError
from promptcov.index.embed import embed_pending
from promptcov.index.embedders import HashingEmbedder
from promptcov.index.ingest import ingest_files
from promptcov.index.store import Store
from promptcov.pipeline import run_map, run_score
from promptcov.simulate import SimConfig, simulate

ACCOUNT_COLS = ["account_id", "n_requests", "score", "flagged", "group_id", "top_capability", "reasons"]
GROUP_COLS = ["group_id", "n_accounts", "n_requests", "score", "flagged", "capabilities", "reasons"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    return simulate(SimConfig(scale=0.05, seed=3, volume=0.5), out)


def _store(path, logs, emb):
    store = Store(path)
    ingest_files(store, logs)
    embed_pending(store, emb)
    return store


@pytest.fixture(scope="module")
def mapped(tmp_path_factory, sim):
    emb = HashingEmbedder(dim=64)
    store = _store(tmp_path_factory.mktemp("store") / "s", sim.log_paths, emb)
    cfg = Config().override("map", sample_size=400, projection_points=200)
    summary = run_map(store, cfg, embedder=emb)
    return store, emb, cfg, summary


def test_map_writes_tables_and_every_text_is_assigned(mapped):
    store, _, _, summary = mapped
    assert store.count("text_map") == store.count("texts")
    assert summary.clusters > 3 and summary.sample == 400
    areas = {r[0] for r in store.con.execute("SELECT DISTINCT capability FROM text_map").fetchall()}
    assert areas <= set(__import__("promptcov.coverage.areas.taxonomy", fromlist=["x"]).default_taxonomy().ids)
    row = store.con.execute("SELECT sum(size), min(top5_share), max(top5_share) FROM clusters").fetchall()[0]
    assert row[0] > 0 and 0 < row[1] <= row[2] <= 1
    assert store.count("map_points") == 200
    assert store.count("templates") > 0


TEXT_MAP = "SELECT text_id, cluster_id, capability, template_id FROM text_map ORDER BY text_id"


@pytest.fixture(scope="module")
def second_store(tmp_path_factory, mapped, sim):
    """A second store of the same logs, mapped once with the same config (``text_map`` kept), then
    re-mapped: the first map is compared with ``mapped``, the re-map with the first map."""
    _, emb, cfg, _ = mapped
    again = _store(tmp_path_factory.mktemp("store2") / "s2", sim.log_paths, emb)
    s1 = run_map(again, cfg, embedder=emb)
    first = again.con.execute(TEXT_MAP).fetchall()
    s2 = run_map(again, cfg, embedder=emb)  # same data re-mapped: same regions keep their ids
    after = again.con.execute(TEXT_MAP).fetchall()
    again.close()
    return s1, first, s2, after


def test_same_seed_same_map(mapped, second_store):
    store, _, _, _ = mapped
    s1, first, _, _ = second_store
    assert s1.version == 1
    assert store.con.execute(TEXT_MAP).fetchall() == first


def test_remap_keeps_cluster_ids_and_marks_none_new(second_store):
    _, first, s2, after = second_store
    before = {t: c for t, c, _, _ in first}
    after = {t: c for t, c, _, _ in after}
    same = sum(before[t] == after[t] for t in before) / len(before)
    assert s2.version == 2 and same > 0.95 and s2.new_clusters == 0


def test_score_tables_follow_the_contract(mapped, tmp_path):
    store, _, _, _ = mapped
    summary = run_score(store, Config(), out=tmp_path / "acc.csv")
    assert summary.accounts == store.count("accounts") > 0
    with open(tmp_path / "acc.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ACCOUNT_COLS
    assert all(0.0 <= float(r["score"]) <= 1.0 for r in rows)
    with open(tmp_path / "acc_groups.csv", newline="") as fh:
        assert csv.DictReader(fh).fieldnames == GROUP_COLS
    run_score(store, Config(), out=tmp_path / "acc.parquet")
    assert pq.read_table(tmp_path / "acc.parquet").column_names == ACCOUNT_COLS
    assert pq.read_table(tmp_path / "acc_groups.parquet").column_names == GROUP_COLS
    run_score(store, Config(), out=tmp_path / "acc.json")
    data = json.loads((tmp_path / "acc.json").read_text())
    assert isinstance(data, list) and list(data[0]) == ACCOUNT_COLS
    assert isinstance(data[0]["flagged"], bool) and isinstance(data[0]["group_id"], str)
    ev = store.con.execute("SELECT evidence FROM accounts LIMIT 1").fetchall()[0][0]
    assert "metrics" in json.loads(ev)
    assert store.count("account_metrics") == summary.accounts


def test_score_window_and_bad_flags(mapped, tmp_path):
    store, _, _, _ = mapped
    from promptcov.pipeline.score_job import parse_day

    s = run_score(store, Config(), since=parse_day("2026-11-16", "--since"), until=parse_day("2026-11-23", "--until"))
    n = store.con.execute("SELECT sum(n_requests) FROM accounts").fetchall()[0][0]
    in_window = store.con.execute("SELECT count(*) FROM requests WHERE ts >= '2026-11-16' AND ts < '2026-11-23'"
                                  ).fetchall()[0][0]
    assert n == in_window and s.window == ("2026-11-16", "2026-11-23")
    with pytest.raises(InputError, match="not before"):
        run_score(store, Config(), since=parse_day("2026-11-20", "--since"), until=parse_day("2026-11-10", "--until"))
    with pytest.raises(InputError, match="expected an ISO date"):
        parse_day("last tuesday", "--since")
    with pytest.raises(InputError, match="suffix"):
        run_score(store, Config(), out=tmp_path / "x.xlsx")


def test_cli_score_exit_codes(mapped, tmp_path):
    store, _, _, _ = mapped
    store.close()
    assert main(["score", "--store", str(store.path), "--since", "nope", "-q"]) == 2
    assert main(["score", "--store", str(store.path), "--out", str(tmp_path / "a.json"), "-q"]) == 0
    assert main(["report", "--store", str(store.path), "--out", str(tmp_path / "rep"), "-q"]) == 0
    assert (tmp_path / "rep" / "2026-W47.html").exists()
    assert main(["report", "--store", str(store.path), "--week", "2026-13", "-q"]) == 2


def test_frame_keeps_nulls_as_none(mapped):
    """Regression: NULL template ids/markers came back as numpy's '?' filler, so every account
    looked fully templated."""
    from promptcov.pipeline.score_job import load_frame

    store, _, _, _ = mapped
    frame = load_frame(store, None, None)
    n_null = store.con.execute("SELECT count(*) FROM requests r JOIN text_map m USING (text_id) "
                               "WHERE m.template_id IS NULL").fetchall()[0][0]
    assert n_null > 0
    assert sum(t is None for t in frame.template_id) == n_null
    assert all(t is None or t.startswith(("T-", "S-")) for t in frame.template_id)
    assert "?" not in set(frame.marker) and "?" not in set(frame.model)


def test_embed_job_passes_every_index_setting(tmp_path, monkeypatch, sim):
    """[index] compressed_nprobe (and the other tier keys) reach the embedding step."""
    import promptcov.pipeline.embed_job as embed_job
    from promptcov.index.embed import EmbedSummary
    from promptcov.pipeline import run_embed

    seen = {}

    def fake(store, embedder, **kw):
        seen.update(kw)
        return EmbedSummary()

    monkeypatch.setattr(embed_job, "embed_pending", fake)
    cfg = Config().override("index", compressed_nprobe=7, rerank_k=33, compressed_threshold=12345)
    with Store(tmp_path / "store") as store:
        ingest_files(store, sim.log_paths[:1])
        run_embed(store, cfg, embedder=HashingEmbedder(dim=32))
    assert seen["compressed_nprobe"] == 7 and seen["rerank_k"] == 33 and seen["compressed_threshold"] == 12345
