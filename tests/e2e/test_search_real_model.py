"""End to end with the real default model: ingest -> embed -> search (marked e2e, runs in CI)."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from promptcov.index.embed import embed_pending
from promptcov.index.ingest import ingest_files
from promptcov.index.search import Searcher
from promptcov.index.store import Store

pytestmark = pytest.mark.e2e

CORPUS = Path(__file__).resolve().parents[2] / "promptcov" / "data" / "corpus"


@pytest.fixture(scope="module")
def model(real_embedder):
    return real_embedder


def _build(tmp: Path, prompts: list[str], model) -> Searcher:
    log = tmp / "log.jsonl"
    with open(log, "w", encoding="utf-8") as fh:
        for i, p in enumerate(prompts):
            fh.write(json.dumps({"request_id": f"r{i}", "account_id": f"a{i % 13}", "timestamp": 1763284364 + i,
                                 "prompt": p}) + "\n")
    store = Store(tmp / "store")
    ingest_files(store, [log])
    embed_pending(store, model)
    return Searcher(store, model)


def test_sample_corpus_self_and_paraphrase(tmp_path, model):
    organic = [json.loads(x)["prompt"] for x in (CORPUS / "organic.jsonl").read_text().splitlines()]
    pairs = [json.loads(x) for x in (CORPUS / "paraphrases.jsonl").read_text().splitlines()][:30]
    sources = {p["source"] for p in pairs}
    rest = [p for p in organic if p not in sources]
    prompts = sorted(sources) + random.Random(0).sample(rest, 170)
    s = _build(tmp_path, prompts, model)
    for p in random.Random(1).sample(prompts, 20):
        hits = s.search_text(p, k=3)
        assert hits[0]["prompt"] == p and hits[0]["similarity"] >= 0.99
    found = 0
    for pair in pairs:
        top5 = [h["prompt"] for h in s.search_text(pair["paraphrase"], k=5)]
        found += pair["source"] in top5
    assert found >= 0.9 * len(pairs), f"paraphrase found its source in the top 5 for {found}/{len(pairs)}"


def _typos(text: str, rng: random.Random) -> str:
    words = text.split()
    out = [w for w in words if rng.random() > 0.1] or words
    return " ".join(out).lower()


def test_real_prompts_self_and_perturbed(tmp_path, model, shared_data):
    rng = random.Random(0)
    prompts: list[str] = []
    for name in ("organic_oasst_prompts", "organic_hh_rlhf_harmless_test", "math_gsm8k", "code_codealpaca",
                 "tool_use_apibench", "cot_elicitation_flan_cot"):
        with gzip.open(shared_data / f"{name}.jsonl.gz", "rt", encoding="utf-8") as fh:
            rows = [json.loads(line)["prompt"] for line in fh]
        prompts += rng.sample(rows, 50)
    prompts = sorted(set(prompts))
    s = _build(tmp_path, prompts, model)
    for p in rng.sample(prompts, 25):
        hits = s.search_text(p, k=3)
        assert hits[0]["prompt"] == p and hits[0]["similarity"] >= 0.99
    long_enough = [p for p in prompts if len(p.split()) >= 8]
    queries = rng.sample(long_enough, 25)
    found = sum(q in [h["prompt"] for h in s.search_text(_typos(q, rng), k=5)] for q in queries)
    assert found >= 23, f"a perturbed copy found its source in the top 5 for {found}/25"
