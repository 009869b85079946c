"""Search by the prompt a user holds: stored vectors are the prompts' own (issue: an exact prompt sent
with a system prompt found itself at 0.81, not >= 0.99)."""

from __future__ import annotations

import json

from promptcov.index.embed import embed_pending
from promptcov.index.embedders import HashingEmbedder
from promptcov.index.ingest import ingest_files
from promptcov.index.search import Searcher
from promptcov.index.store import Store

PRODUCT = "You are StudyBuddy, a friendly tutor for high-school students. Always answer kindly and briefly."
JUDGE = "You are a strict grader. Score the answer from 1 to 10 and justify the score in one line."
PROMPTS = ["explain photosynthesis for a ninth grader", "how do vaccines train the immune system",
           "what caused the fall of the western roman empire", "solve 3x + 7 = 22 and check the answer",
           "why do we have leap years", "summarise the plot of macbeth in three sentences"]


def _store(tmp_path):
    rows = []
    for i, p in enumerate(PROMPTS):
        rows.append({"request_id": f"p{i}", "account_id": "acct-product", "timestamp": f"2026-11-16T10:{i:02d}:00Z",
                     "prompt": p, "system": PRODUCT})
        rows.append({"request_id": f"j{i}", "account_id": "acct-judge", "timestamp": f"2026-11-16T11:{i:02d}:00Z",
                     "prompt": p + " (graded)", "system": JUDGE})
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    store = Store(tmp_path / "s")
    emb = HashingEmbedder(dim=64)
    ingest_files(store, [log])
    embed_pending(store, emb)
    return store, emb


def test_exact_prompt_sent_with_a_system_prompt_finds_itself(tmp_path):
    store, emb = _store(tmp_path)
    s = Searcher(store, emb)
    for p in PROMPTS:
        hit = s.search_text(p, k=3)[0]
        assert hit["prompt"] == p and hit["similarity"] >= 0.99


def test_system_option_reranks_by_the_system_prompt(tmp_path):
    store, emb = _store(tmp_path)
    s = Searcher(store, emb)
    plain = s.search_text(PROMPTS[0], k=2)
    judged = s.search_text(PROMPTS[0], k=2, system=JUDGE)
    assert plain[0]["account_id"] == "acct-product"
    assert judged[0]["account_id"] == "acct-judge"
    assert judged[0]["similarity"] <= 1.0
