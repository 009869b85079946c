"""The map job on a store that grows: several ingest and embed runs, small shards (issue: the weekly
job crashed with ``ArrowInvalid: Schema ... marker: null vs marker: string``)."""

from __future__ import annotations

import json

from promptcov.config import Config
from promptcov.index.embed import embed_pending
from promptcov.index.embedders import HashingEmbedder
from promptcov.index.ingest import ingest_files
from promptcov.index.store import Store
from promptcov.pipeline import run_map

CHAT = ["how do I keep basil alive indoors", "best way to learn the guitar as an adult",
        "what should I cook for six people on a budget", "why is the sky blue in the evening",
        "tips for a first marathon", "explain compound interest simply", "ideas for a rainy saturday",
        "how to write a polite complaint letter"]


def _log(path, prompts, account, day):
    with open(path, "w", encoding="utf-8") as fh:
        for i, p in enumerate(prompts):
            fh.write(json.dumps({"request_id": f"{account}-{i}", "account_id": account,
                                 "timestamp": f"2026-11-{day:02d}T{10 + i % 10:02d}:00:00Z", "prompt": p}) + "\n")
    return path


def test_map_after_incremental_embed_runs_with_small_shards(tmp_path):
    emb = HashingEmbedder(dim=32)
    store = Store(tmp_path / "s")
    chat = [f"{p} (variant {k})" for k in range(5) for p in CHAT]
    ingest_files(store, [_log(tmp_path / "a.jsonl", chat, "acct-chat", 10)])
    embed_pending(store, emb, shard_size=4)  # shards of plain chat: no marker fires in them
    cot = [f"Q: what is {a} times {b}?\nA: Let's think step by step, writing down every intermediate step."
           for a in range(3, 9) for b in range(11, 15)]
    ingest_files(store, [_log(tmp_path / "b.jsonl", cot, "acct-sweep", 12)])
    embed_pending(store, emb, shard_size=4)  # later shards: CoT markers fire
    assert len(store.shard_paths()) > 10
    cfg = Config().override("map", sample_size=200, projection_points=50, min_cluster_size=5)
    summary = run_map(store, cfg, embedder=emb)
    assert store.count("text_map") == store.count("texts") == summary.n_texts
    markers = [r[0] for r in store.con.execute("SELECT DISTINCT marker FROM text_map").fetchall()]
    assert None in markers and any(m and m.startswith("cot_elicitation") for m in markers)
