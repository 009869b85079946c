"""A small published store (hashing embedder) and a TestClient over the service."""

from __future__ import annotations

import json

import pytest

from promptcov.index.embed import embed_pending
from promptcov.index.embedders import HashingEmbedder
from promptcov.index.ingest import ingest_files
from promptcov.index.snapshot import publish
from promptcov.index.store import Store
from tests.index.search_records import RECORDS

TOKEN = "test-token-0123456789abcdef"



def _scores(store: Store) -> None:
    """Accounts and groups rows as the score job writes them (the score job has its own tests)."""
    ev = json.dumps({"examples": ["Grade this answer ..."], "metrics": {"template_share": 0.9}})
    store.con.execute("""CREATE TABLE accounts AS SELECT * FROM (VALUES
        ('sweep-1', 1, 0.93, true, 'g1', 'rubric_grading', 'one template, many slots', ?, NULL,
         TIMESTAMP '2025-11-16 00:00:00', TIMESTAMP '2025-11-17 00:00:00'),
        ('user-1', 1, 0.05, false, '', 'general_chat', 'organic', '{}', NULL,
         TIMESTAMP '2025-11-16 00:00:00', TIMESTAMP '2025-11-17 00:00:00'))
        AS t(account_id, n_requests, score, flagged, group_id, top_capability, reasons, evidence, benign_kind,
             window_start, window_end)""", [ev]).fetchall()
    store.con.execute("""CREATE TABLE groups AS SELECT * FROM (VALUES
        ('g1', 3, 3, 0.95, true, 'rubric_grading', 'shared template', '["sweep-1","sweep-2","sweep-3"]',
         '{"links": 3}', '2025-11-16', '2025-11-16'))
        AS t(group_id, n_accounts, n_requests, score, flagged, capabilities, reasons, members, evidence,
             first_seen, last_seen)""").fetchall()


def build_store(folder) -> object:
    """A store of :data:`RECORDS`, embedded with the hashing embedder, scored and published."""
    log = folder / "l.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
    path = folder / "store"
    with Store(path) as store:
        ingest_files(store, [log])
        embed_pending(store, HashingEmbedder())
        _scores(store)
        publish(store)
    return path


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("svc"))


@pytest.fixture
def client(store_path):
    from fastapi.testclient import TestClient

    from promptcov.index.search import Searcher
    from promptcov.service import create_app

    searcher = Searcher.open(store_path, embedder=HashingEmbedder())
    with TestClient(create_app(searcher, TOKEN)) as c:
        yield c


@pytest.fixture
def auth():
    return {"Authorization": f"Bearer {TOKEN}"}
