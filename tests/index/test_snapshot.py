import json

import pytest

from promptcov.errors import InputError
from promptcov.index.embed import embed_pending
from promptcov.index.embedders import HashingEmbedder
from promptcov.index.ingest import ingest_files
from promptcov.index.search import Searcher
from promptcov.index.snapshot import Snapshot, current_generation, publish
from promptcov.index.store import Store


def _log(write_jsonl, name, prompts, start=0):
    return write_jsonl(name, [json.dumps({"request_id": f"r{start + i}", "account_id": f"a{i % 3}",
                                          "timestamp": 1763284364 + start + i, "prompt": p})
                              for i, p in enumerate(prompts)])


@pytest.fixture
def store(tmp_path, write_jsonl):
    s = Store(tmp_path / "store")
    ingest_files(s, [_log(write_jsonl, "a.jsonl", ["alpha beta gamma", "alpha beta gamma", "delta epsilon"])])
    embed_pending(s, HashingEmbedder())
    yield s
    s.close()


def test_publish_writes_a_whole_generation_and_flips_current(store):
    assert current_generation(store.path) is None
    gen = publish(store)
    assert current_generation(store.path) == gen.name == "g000001"
    snap = Snapshot.open(store.path)
    assert snap.counts == {"requests": 3, "texts": 2, "embedded": 2}
    assert snap.manifest["model"] == "hashing-test-embedder"
    hits = snap.hits([int(store.con.execute("SELECT text_id FROM requests WHERE request_id='r0'").fetchall()[0][0])])
    (req, acc, _ts, prompt, n, accounts, cluster, cap), = hits.values()
    assert (req, acc, prompt, n, accounts, cluster, cap) == ("r0", "a0", "alpha beta gamma", 2, ["a0", "a1"], None, None)
    assert snap.text_of_request("nope") is None and snap.account("a0") is None
    assert not any(p.name.startswith(".tmp") for p in (store.path / "published").iterdir())


def test_prune_keeps_the_previous_generation(store):
    names = [publish(store).name for _ in range(4)]
    kept = sorted(p.name for p in (store.path / "published").iterdir() if p.name.startswith("g"))
    assert kept == names[-2:] and current_generation(store.path) == names[-1]


def test_new_vectors_appear_once_published_and_old_readers_keep_working(store, write_jsonl):
    publish(store)
    s = Searcher.open(store.path, embedder=HashingEmbedder())
    old_gen = s.snapshot.generation
    ingest_files(store, [_log(write_jsonl, "b.jsonl", ["zeta eta theta"], start=10)])
    embed_pending(store, HashingEmbedder())
    assert s.search_text("zeta eta theta", k=1)[0]["prompt"] != "zeta eta theta"  # not published yet
    publish(store)
    assert s.search_text("alpha beta gamma", k=1)[0]["request_id"] == "r0"  # still on the old generation
    assert s.refresh() and s.snapshot.generation != old_gen and not s.refresh()
    assert s.search_text("zeta eta theta", k=1)[0]["request_id"] == "r10"
    assert s.search_request("r10", k=1)[0]["similarity"] >= 0.999


def test_a_reader_publishes_a_store_no_job_published(store):
    store.close()
    with Store(store.path, read_only=True) as ro:  # works from a read-only connection
        assert current_generation(ro.path) is None
    s = Searcher.open(store.path, embedder=HashingEmbedder())
    assert current_generation(store.path) == "g000001"
    assert s.search_request("r2", k=1)[0]["prompt"] == "delta epsilon"


def test_open_without_a_store_or_vectors_is_one_clear_error(tmp_path, write_jsonl):
    with pytest.raises(InputError, match="no promptcov store"):
        Searcher.open(tmp_path / "none")
    with Store(tmp_path / "s") as s:
        ingest_files(s, [_log(write_jsonl, "a.jsonl", ["x y"])])
    with pytest.raises(InputError, match="no vectors"):
        Searcher.open(tmp_path / "s")


def test_published_vectors_survive_the_store_replacing_its_files(store):
    gen = publish(store)
    shard = sorted((gen / "vectors").iterdir())[0]
    before = shard.read_bytes()
    store.shard_paths()[0].unlink()  # the job may replace or remove its own file: the link keeps the data
    assert shard.read_bytes() == before
