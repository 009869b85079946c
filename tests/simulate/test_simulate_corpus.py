"""Prompt pools: the sample-corpus format, missing files, scaffold filling, the real data sets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from promptcov.errors import InputError
from promptcov.simulate import Scaffold, SimConfig, load_pools, simulate
from tests.simulate._simcorpus import build_corpus


def test_tiny_corpus_loads_every_pool(tiny_corpus):
    pools = load_pools(None, seed=0, corpus_dir=tiny_corpus)
    assert pools.source == "corpus"
    assert len(pools.organic) == 58 and len(pools.popular) == 5
    assert any(p.followups for p in pools.organic)
    assert set(pools.tasks) >= {"cot_elicitation", "tool_use", "agentic_coding", "rubric_grading"}
    assert dict(pools.tasks["tool_use"][0].slots)["tools"] == '[{"name": "lookup"}]'
    assert len(pools.scaffolds_for("tool_use")) == 3
    assert pools.coding_systems and len(pools.coding_requests) == 6
    assert pools.batch_jobs[0][2] == "review" and len(pools.texts_for("review")) == 40
    assert pools.summary()["tasks_coding"] == 12


def test_missing_optional_files_leave_pools_empty_and_the_run_goes_on(tmp_path):
    root = build_corpus(tmp_path / "c")
    for name in ("popular.jsonl", "product_systems.jsonl", "coding_tool.jsonl", "batch_jobs.jsonl"):
        (root / name).unlink()
    pools = load_pools(None, corpus_dir=root)
    assert pools.popular == [] and pools.product_systems == [] and pools.batch_jobs == []
    assert pools.batch_texts  # the batch texts file is still there
    res = simulate(SimConfig(scale=0.05, weeks=1, volume=0.3), tmp_path / "out", corpus_dir=root)
    kinds = res.counts["kinds"]
    assert "product" not in kinds and "batch_job" not in kinds and "coding_tool" not in kinds
    assert kinds["organic"]["requests"] > 0 and res.counts["campaigns"]["agentic_tools"]["requests"] > 0


def test_no_scaffolds_or_no_organic_prompts_is_an_input_error(tmp_path):
    root = build_corpus(tmp_path / "c")
    (root / "scaffolds.jsonl").unlink()
    with pytest.raises(InputError, match="scaffolds"):
        load_pools(None, corpus_dir=root)
    root = build_corpus(tmp_path / "d")
    (root / "organic.jsonl").write_text("")
    with pytest.raises(InputError, match="organic"):
        load_pools(None, corpus_dir=root)
    (root / "organic.jsonl").write_text("{not json\n")
    with pytest.raises(InputError, match="organic.jsonl:1"):
        load_pools(None, corpus_dir=root)
    with pytest.raises(InputError, match="no such folder"):
        load_pools(tmp_path / "absent", corpus_dir=build_corpus(tmp_path / "e"))


def test_scaffold_fill_varies_slots_and_keeps_literal_braces():
    sc = Scaffold("s", "tool_use", 'Use {tools} as {fmt}; return {{"a": 1}} for {task} {unknown}',
                  slots=(("fmt", ("JSON", "YAML")),))  # fmt: skip
    rng = np.random.default_rng(0)
    outs = {sc.fill("T", rng, {"tools": "[t]"}) for _ in range(20)}
    assert outs == {
        'Use [t] as JSON; return {"a": 1} for T {unknown}',
        'Use [t] as YAML; return {"a": 1} for T {unknown}',
    }
    bare = Scaffold("b", "x", "Answer carefully.")
    assert bare.fill("Q?", rng) == "Answer carefully.\n\nQ?"


def test_real_data_sets_feed_the_pools_and_a_small_run(shared_data, tmp_path, tiny_corpus):
    pools = load_pools(shared_data, seed=0, corpus_dir=tiny_corpus, cap=400)
    assert pools.source == "data"
    for area in (
        "cot_elicitation",
        "rubric_grading",
        "censorship_rewrite",
        "agentic_coding",
        "tool_use",
        "coding",
    ):
        assert pools.tasks.get(area), area
    assert any(p.complete for p in pools.tasks["rubric_grading"])
    assert len(pools.popular) > 50 and len(pools.organic) > 500
    organic = {p.prompt for p in pools.organic}
    assert not organic & {p.prompt for p in pools.tasks["coding"]}  # organic and campaign halves are disjoint
    res = simulate(SimConfig(scale=0.05, weeks=1, volume=0.3), tmp_path / "out", data_dir=shared_data,
                   corpus_dir=tiny_corpus)  # fmt: skip
    scenario = json.loads(res.scenario_path.read_text())
    assert scenario["pools"]["source"] == "data" and res.n_requests > 200
