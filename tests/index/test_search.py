import json

import pytest

from promptcov.errors import InputError
from promptcov.index.embed import embed_pending
from promptcov.index.embedders import HashingEmbedder
from promptcov.index.ingest import ingest_files
from promptcov.index.search import Searcher
from promptcov.index.store import Store
from tests.index.search_records import RECORDS


@pytest.fixture
def searcher(tmp_path, write_jsonl):
    store = Store(tmp_path / "store")
    ingest_files(store, [write_jsonl("l.jsonl", [json.dumps(r) for r in RECORDS])])
    emb = HashingEmbedder()
    embed_pending(store, emb)
    return Searcher(store, emb)


def test_hit_shape_and_accounts(searcher):
    hits = searcher.search_text("Grade this answer on a scale of 1 to 10 using the rubric: photosynthesis", k=3)
    assert set(hits[0]) >= {"request_id", "account_id", "timestamp", "prompt", "similarity", "cluster_id",
                            "capability"}
    assert hits[0]["similarity"] >= 0.99 and hits[0]["request_id"] == "s1"
    assert hits[0]["accounts"] == ["sweep-1", "sweep-2"] and hits[0]["n_requests"] == 2
    assert hits[0]["cluster_id"] is None and hits[0]["capability"] is None  # no map yet
    assert hits[0]["timestamp"].endswith("Z")
    near = Searcher.accounts_near(hits, 0.5)
    assert [a for a, _ in near][:3] == ["sweep-1", "sweep-2", "sweep-3"]


def test_search_by_request_id(searcher):
    hits = searcher.search_request("s3", k=2)
    assert hits[0]["request_id"] == "s3" and hits[1]["account_id"] == "sweep-1"
    with pytest.raises(InputError, match="not in store"):
        searcher.search_request("nope")


def test_empty_query_is_input_error(searcher):
    with pytest.raises(InputError):
        searcher.search_text("  ")
