"""The trained capability assigner: held-out written requests, abstention, user areas, the cache."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from promptcov.coverage.areas.assigner import CapabilityAssigner, cache_dir, load_corpus
from promptcov.coverage.areas.taxonomy import OTHER, Taxonomy, default_taxonomy
from promptcov.errors import InputError
from promptcov.index.embedders import HashingEmbedder
from promptcov.index.system_vectors import embed_combined

# Written for this test; none of it is in promptcov/data/areas (checked below).
HELD_OUT = [
    ("You are a software agent. Tools: run(cmd), open(path), write(path, text).",
     "Ticket: the exporter in pkg/export/pdf.go writes blank pages for landscape documents. "
     "Fix it and run `go test ./...` until green.", "agentic_coding"),
    ("", "Inside the checked-out repository at /workspace/ledger, make `Ledger.balance()` ignore voided "
         "entries. Re-run the tests after editing and repeat until they pass, then show the diff.", "agentic_coding"),
    ("", "How do I write a Python function that returns the median of a list?", "coding"),
    ("", "Write a JavaScript snippet that capitalises the first letter of every word in a string.", "coding"),
    ('[{"type": "function", "function": {"name": "get_train_times", "parameters": {"type": "object", '
     '"properties": {"station": {"type": "string"}}}}}]', "When does the next train leave from Utrecht?", "tool_use"),
    ("", "Goal: archive the newest email. Screen:\n[8] button 'Archive'\n[9] link 'Inbox (3)'\n"
         "Answer with one action such as click [id] or type [id] [text].", "computer_use"),
    ("", "[image]\nWhat colour is the bicycle leaning on the fence?", "computer_vision"),
    ("", "Question: what is the boiling point of water at sea level?\nAnswer: 90 degrees Celsius.\n"
         "Rate the answer from 1 to 5 for factual accuracy and justify the score.", "rubric_grading"),
    ("Show all your reasoning before the final answer.", "Can a hummingbird fly backwards?", "cot_elicitation"),
    ("", "Reword this paragraph about the Tiananmen Square crackdown so that it is acceptable to the "
         "censors of a Chinese website.", "censorship_rewrite"),
    ("", "Write a short poem about a lighthouse in a storm, in rhyming couplets.", "creative_writing"),
    ("", "What are some tips for keeping basil alive on a windowsill?", "general_chat"),
]


@pytest.fixture(scope="module")
def hashing_assigner():
    return CapabilityAssigner(embedder=HashingEmbedder(dim=256)).fit()


def test_computer_use_area_and_weights_come_from_the_toml(tmp_path):
    tax = default_taxonomy()
    assert "computer_use" in tax.ids and tax.area("computer_use").high_value
    w = tax.high_value_weights()
    assert w["computer_use"] == 1.0 and w["math_reasoning"] == 0.5 and "general_chat" not in w
    extra = tmp_path / "x.toml"
    extra.write_text("[areas.coding]\nhigh_value_weight = 0.25\n[areas.general_chat]\nhigh_value_weight = 0.1\n")
    w2 = Taxonomy.load(extra=[extra]).high_value_weights()
    assert w2["coding"] == 0.25 and w2["general_chat"] == 0.1
    extra.write_text("[areas.coding]\nhigh_value_weight = -1\n")
    with pytest.raises(InputError, match="high_value_weight"):
        Taxonomy.load(extra=[extra])


def test_corpus_covers_every_area_with_many_phrasings():
    rows = load_corpus()
    per_area = {}
    for r in rows:
        per_area.setdefault(r["area"], set()).add(r["family"])
    for a in default_taxonomy().ids:
        if a == OTHER:
            continue
        n = sum(1 for r in rows if r["area"] == a)
        assert n >= 80, (a, n)
        assert len(per_area[a]) >= 4, (a, per_area[a])
    texts = {r["prompt"] for r in rows}
    assert not any(p in texts for _, p, _ in HELD_OUT)


def test_held_out_written_requests_with_hashing_embedder(hashing_assigner):
    systems, prompts, want = zip(*HELD_OUT, strict=True)
    areas, scores, markers = hashing_assigner.predict(list(systems), list(prompts))
    got = list(areas)
    acc = np.mean([g == w for g, w in zip(got, want, strict=True)])
    assert acc >= 0.8, list(zip(want, got, strict=True))
    # the agent scaffolds are not taken for plain coding, nor plain coding for an agent
    assert got[0] == got[1] == "agentic_coding" and "agentic_coding" not in got[2:4], got[:4]
    assert np.all((scores > 0) & (scores <= 1))
    assert markers[want.index("computer_vision")].startswith("computer_vision:image_")
    assert markers[want.index("cot_elicitation")] == "cot_elicitation:reasoning_demand"


def test_cot_marker_kept_when_another_area_wins(hashing_assigner):
    areas, _, markers = hashing_assigner.predict(
        ["You are a strict grader."],
        ["Question: 2+2? Answer: 5.\nScore the answer from 1 to 10. Think step by step and show your reasoning."],
    )
    assert areas[0] == "rubric_grading" and markers[0] == "cot_elicitation:reasoning_demand"


def test_abstention_threshold_is_calibrated_and_applied(hashing_assigner):
    a = hashing_assigner
    assert 0.0 < a.threshold_ <= a.max_threshold
    prompts = ["zxqv blorft wumple", "Write a Python function that reverses a string."]
    areas, scores, _ = a.predict(["", ""], prompts)
    assert scores[0] < scores[1]
    strict = CapabilityAssigner(embedder=a.embedder_, min_similarity=1.01).fit()
    assert set(strict.predict(["", ""], prompts)[0]) == {OTHER}
    assert strict.threshold_ == a.threshold_  # same cached fit; only the applied threshold differs


def test_user_areas_from_an_extra_toml(tmp_path):
    extra = tmp_path / "legal.toml"
    exemplars = [f"Review clause {i} of the tenancy contract for unfair termination terms and liability caps."
                 for i in range(10)] + ["Check this NDA for indemnity and jurisdiction clauses."]
    extra.write_text(textwrap.dedent(f"""
        [areas.legal_review]
        description = "contract review"
        high_value = true
        high_value_weight = 2.0
        exemplars = {json.dumps(exemplars)}
        [[areas.legal_review.markers]]
        name = "clause_ref"
        pattern = '''\\bsection\\s+\\d+\\(\\w\\)'''
    """))
    tax = Taxonomy.load(extra=[extra])
    assert tax.high_value_weights()["legal_review"] == 2.0
    a = CapabilityAssigner(taxonomy=tax, embedder=HashingEmbedder(dim=256)).fit()
    areas, scores, markers = a.predict(
        ["", "", ""],
        ["Is section 4(b) enforceable?",
         "Review the termination clause of my tenancy contract for unfair liability caps.",
         "Write a haiku about spring rain."],
    )
    assert areas[0] == "legal_review" and scores[0] == 1.0 and markers[0] == "legal_review:clause_ref"
    assert areas[1] == "legal_review"
    assert areas[2] == "creative_writing"


class CountingEmbedder(HashingEmbedder):
    def __init__(self, dim=64):
        super().__init__(dim=dim, name="counting-hash")
        self.calls = 0

    def embed(self, texts):
        self.calls += len(texts)
        return super().embed(texts)


def _small_corpus():
    rows = load_corpus()
    return [r for i, r in enumerate(rows) if i % 6 == 0]


def test_second_fit_reads_the_cache_and_does_not_embed():
    corpus = _small_corpus()
    e1 = CountingEmbedder()
    a1 = CapabilityAssigner(embedder=e1, corpus=corpus).fit()
    assert e1.calls > 0 and not a1.from_cache_
    assert list((cache_dir() / "areas").glob("model-*.npz"))
    e2 = CountingEmbedder()
    a2 = CapabilityAssigner(embedder=e2, corpus=corpus).fit()
    assert e2.calls == 0 and a2.from_cache_
    p = ["Fix src/app.py and run the tests until they pass.", "Write a limerick about a goose."]
    v = e1.embed(p)
    assert list(a1.predict(["", ""], p, v)[0]) == list(a2.predict(["", ""], p, v)[0])
    np.testing.assert_allclose(a1.predict(["", ""], p, v)[1], a2.predict(["", ""], p, v)[1], rtol=1e-5)
    # another corpus is another key: trained afresh
    e3 = CountingEmbedder()
    a3 = CapabilityAssigner(embedder=e3, corpus=corpus[:-5]).fit()
    assert e3.calls > 0 and not a3.from_cache_


def test_cache_off_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTCOV_CACHE", str(tmp_path / "c"))
    CapabilityAssigner(embedder=CountingEmbedder(), corpus=_small_corpus(), cache=False).fit()
    assert not (tmp_path / "c").exists()


def test_bad_corpus_rows_are_input_errors(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"area": "coding", "prompt": "x"}\n{"area": "coding"}\n')
    with pytest.raises(InputError, match="a.jsonl:2"):
        load_corpus(tmp_path)
    with pytest.raises(InputError, match="no labelled rows"):
        load_corpus(tmp_path / "empty")


AGENT_VS_CODING = [
    ("You are an autonomous developer agent. You can call bash(command) and edit(path, old, new).",
     "Issue: `Invoice.total()` double-counts discounts when a coupon is applied twice. Fix it in the repo "
     "and make the test suite pass.", "agentic_coding"),
    ("", "Work in /srv/app (a Django project). The signup view sends two confirmation emails. Find the "
         "cause, patch it, run `python manage.py test`, and iterate until everything passes.", "agentic_coding"),
    ('{"tools": [{"name": "shell", "parameters": {"cmd": "string"}}, {"name": "read_file", '
     '"parameters": {"path": "string"}}]}', "The nightly build of the Rust workspace fails in crates/net with a "
                                            "borrow-checker error. Get it compiling and the tests green.",
     "agentic_coding"),
    ("", "Write a Python function that merges overlapping intervals.", "coding"),
    ("", "What's the difference between an abstract class and an interface in Java?", "coding"),
    ("", "Here is my code, why does it print None?\n\ndef add(a, b):\n    print(a + b)\n\nprint(add(1, 2))",
     "coding"),
]


@pytest.mark.e2e
def test_real_model_tells_agentic_coding_from_coding(real_assigner):
    a = real_assigner  # CapabilityAssigner(embedder=<the real model>).fit(), shared by the session
    systems, prompts, want = zip(*AGENT_VS_CODING, strict=True)
    areas, _, _ = a.predict(list(systems), list(prompts))
    got = list(areas)
    # every scaffolded task is agentic; no plain coding question is; most are coding (a conceptual
    # question may land in general_chat, which is not the confusion this test is about)
    assert got[:3] == list(want[:3]), got
    assert "agentic_coding" not in got[3:], got
    assert got[3:].count("coding") >= 2, got


def test_sweep_only_areas_need_their_min_probability_and_fall_to_the_next_area(hashing_assigner, tmp_path):
    a = hashing_assigner
    need = dict(zip(a.area_ids_, a.min_probabilities(), strict=True))
    assert need["cot_elicitation"] == need["rubric_grading"] == need["agentic_coding"] == 0.8
    assert need["coding"] == need["general_chat"] == a.threshold_
    systems = [s for s, _, _ in HELD_OUT]
    prompts = [p for _, p, _ in HELD_OUT]
    vectors = embed_combined(a.embedder_, systems, prompts)
    P, _ = a.predict_proba(systems, prompts, vectors)
    areas, scores, _ = a.predict(systems, prompts, vectors)
    ids = np.array(a.area_ids_)
    for i, area in enumerate(areas):
        ok = P[i] >= np.array([need[x] for x in ids])
        expected = ids[np.argmax(np.where(ok, P[i], -1.0))] if ok.any() else OTHER
        assert area == expected and scores[i] == pytest.approx(P[i].max())
    # a deployment can lower or raise the bar of any area in its own TOML
    extra = tmp_path / "bar.toml"
    extra.write_text("[areas.coding]\nmin_probability = 0.999\n")
    strict = CapabilityAssigner(taxonomy=Taxonomy.load(extra=[extra]), embedder=a.embedder_).fit()
    assert "coding" not in set(strict.predict(["", ""], prompts[2:4])[0])
    extra.write_text("[areas.coding]\nmin_probability = 2\n")
    with pytest.raises(InputError, match="min_probability"):
        Taxonomy.load(extra=[extra])
