"""Taxonomy loading/merging, marker rules and capability assignment."""

from __future__ import annotations

import gzip
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from promptcov.coverage.areas.assigner import CapabilityAssigner
from promptcov.coverage.areas.markers import Marker, clip_text, fired_markers, marker_area
from promptcov.coverage.areas.taxonomy import (
    OTHER,
    Taxonomy,
    cot_marker,
    default_taxonomy,
)
from promptcov.errors import InputError, NotFittedError
from promptcov.index.embedders import HashingEmbedder
from promptcov.index.system_vectors import embed_combined

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
CONTRACT = [
    "agentic_coding", "tool_use", "computer_use", "coding", "rubric_grading", "cot_elicitation", "censorship_rewrite",
    "computer_vision", "data_analysis", "math_reasoning", "creative_writing", "general_chat", "other",
]  # fmt: skip


def _write(tmp_path: Path, name: str, body: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(body), encoding="utf-8")
    return p


# --- the packaged taxonomy -----------------------------------------------------------------------


def test_default_taxonomy_has_the_contract_areas():
    tax = Taxonomy.load()
    assert set(CONTRACT) <= set(tax.ids)
    assert tax.area(OTHER).exemplars == () and tax.area(OTHER).markers == ()
    for a in tax.areas:
        if a.id != OTHER:
            assert 8 <= len(a.exemplars) <= 25, a.id
            assert a.description
    assert {"rubric_grading", "cot_elicitation", "censorship_rewrite", "tool_use"} <= set(tax.high_value_ids)
    assert "general_chat" not in tax.high_value_ids and "creative_writing" not in tax.high_value_ids
    # precedence: a rubric beats a reasoning demand, which beats nothing (math has no markers)
    order = [m.area for m in tax.markers()]
    assert order.index("rubric_grading") < order.index("cot_elicitation")
    assert order.index("censorship_rewrite") < order.index("cot_elicitation")


@pytest.mark.skipif(not DATA.is_dir(), reason=f"real prompt sets not present at {DATA}")
def test_exemplars_are_not_copied_from_the_real_sets():
    norm = " ".join
    real = set()
    for f in DATA.glob("*.jsonl.gz"):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            real.update(norm(json.loads(line)["prompt"].lower().split()) for line in fh if line.strip())
    for a in Taxonomy.load().areas:
        for ex in a.exemplars:
            assert norm(ex.lower().split()) not in real, (a.id, ex[:60])


# --- loading, merging, errors ----------------------------------------------------------------------


def test_extra_file_adds_areas_exemplars_and_replaces_markers(tmp_path):
    extra = _write(
        tmp_path,
        "extra.toml",
        """
        [areas.legal_drafting]
        description = "Drafting contracts and clauses."
        high_value = true
        priority = 50
        exemplars = ["Draft a non-disclosure clause for a software licence."]

        [[areas.legal_drafting.markers]]
        name = "clause_request"
        pattern = '''\\bdraft\\b.{0,30}\\bclause\\b'''

        [areas.cot_elicitation]
        exemplars = ["Narrate every deduction you make before the verdict."]

        [[areas.cot_elicitation.markers]]
        name = "reasoning_tags"
        pattern = '''<deliberation>'''

        [areas.creative_writing]
        high_value = true
        """,
    )
    base = Taxonomy.load()
    tax = Taxonomy.load(extra=[extra])
    assert tax.ids[: len(base.ids)] == base.ids and tax.ids[-1] == "legal_drafting"
    assert tax.area("legal_drafting").high_value
    assert tax.area("creative_writing").high_value
    cot = tax.area("cot_elicitation")
    assert len(cot.exemplars) == len(base.area("cot_elicitation").exemplars) + 1
    tags = [m for m in cot.markers if m.name == "reasoning_tags"]
    assert len(tags) == 1 and tags[0].pattern == "<deliberation>"
    assert [m.full_name for m in tax.match("", "Please draft a termination clause")] == [
        "legal_drafting:clause_request"
    ]
    assert str(extra) in tax.sources


@pytest.mark.parametrize(
    "body, needle",
    [
        ("[areas.coding]\nexemplar = ['x']\n", "areas.coding.'exemplar'"),
        ("[areas.coding]\n[[areas.coding.markers]]\nname='a'\npattern='b'\nscopes='any'\n", "'scopes'"),
        ("colour = 1\n", "'colour'"),
    ],
)
def test_unknown_keys_are_errors_naming_file_and_key(tmp_path, body, needle):
    p = _write(tmp_path, "bad.toml", body)
    with pytest.raises(InputError) as exc:
        Taxonomy.load(extra=[p])
    assert str(p) in str(exc.value) and needle in str(exc.value)


@pytest.mark.parametrize(
    "body, needle",
    [
        ("[areas.coding\n", "not valid TOML"),
        ("[areas.coding]\n[[areas.coding.markers]]\nname='x'\npattern='(unclosed'\n", "not a valid regex"),
        ("[areas.new_area]\nexemplars = ['x']\n", "needs a 'description'"),
        ("[areas.other]\nexemplars = ['hello']\n", "fallback area"),
        ("version = 2\n", "version"),
        ("[areas.Bad-Id]\ndescription = 'x'\n", "area id"),
        ("[areas.coding]\nexemplars = 'one'\n", "list of non-empty strings"),
        ("[areas.coding]\nhigh_value = 'yes'\n", "true or false"),
        ("[areas.coding]\n[[areas.coding.markers]]\nname='x'\npattern='y'\nscope='body'\n", "scope"),
        ("[areas.empty_area]\ndescription = 'nothing to match'\n", "can never be assigned"),
    ],
)
def test_malformed_files_raise_input_error(tmp_path, body, needle):
    p = _write(tmp_path, "bad.toml", body)
    with pytest.raises(InputError, match=None) as exc:
        Taxonomy.load(extra=[p])
    assert needle in str(exc.value)


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        Taxonomy.load(tmp_path / "nope.toml")


def test_area_lookup_error_lists_known_ids():
    with pytest.raises(InputError, match="coding"):
        default_taxonomy().area("cooking")


# --- marker rules: each one fires on the request shape it names and not on look-alikes ------------

TOOLS_JSON = json.dumps([{"name": "get_weather", "description": "weather", "parameters": {"type": "object"}}])
CASES = [
    # (marker, system, prompt, fires)
    ("cot_elicitation:step_by_step_reasoning", "", "Is 221 prime? Let's think step by step.", True),
    ("cot_elicitation:step_by_step_reasoning", "", "Reason it out one step at a time, please.", True),
    ("cot_elicitation:step_by_step_reasoning", "", "Explain step by step how to install Python.", False),
    ("cot_elicitation:step_by_step_reasoning", "", "I'm working on a project; give step-by-step setup.", False),
    ("cot_elicitation:show_reasoning", "Always write out your full internal reasoning.", "Capital of Peru?", True),
    ("cot_elicitation:show_reasoning", "", "Solve it and show your work.", True),
    ("cot_elicitation:show_reasoning", "", "Explain the reasoning behind the Fed's rate decision.", False),
    ("cot_elicitation:show_reasoning", "", "What is chain-of-thought prompting?", False),
    ("cot_elicitation:reasoning_tags", "", "Answer inside <answer> after thinking in <think> </think>.", True),
    ("cot_elicitation:reasoning_tags", "", "How do I style a <div> element?", False),
    ("cot_elicitation:reason_before_answer", "", "Before answering, reason about each option.", True),
    ("cot_elicitation:reason_before_answer", "", "Give a brief rationale, then the final answer.", True),
    ("cot_elicitation:reason_before_answer", "", "Before giving a toast, what should I say first?", False),
    ("rubric_grading:grade_response_on_scale", "", "Evaluate the response below on a scale of 1 to 10.", True),
    ("rubric_grading:grade_response_on_scale", "", "Rate the assistant's answer 1-5 for helpfulness.", True),
    ("rubric_grading:grade_response_on_scale", "", "Write a function that maps a numeric score to a letter grade.", False),
    ("rubric_grading:score_rubric", "", "Use the score rubric to grade the response.\nRubric: ...", True),
    ("rubric_grading:score_rubric", "", "What is a rubric in teaching?", False),
    ("rubric_grading:pairwise_preference", "", "Decide which response is more helpful: A or B.", True),
    ("rubric_grading:pairwise_preference", "", "Which laptop is better for gaming?", False),
    ("rubric_grading:judge_format", "You are an impartial judge.", "Question: ... Answer: ...", True),
    ("rubric_grading:judge_format", "", "Output [[A]] if assistant A is better.", True),
    ("rubric_grading:judge_format", "", "How does a judge decide a sentence?", False),
    ("censorship_rewrite:censor_safe_rewrite", "", "Rewrite this so that censors would accept it: ...", True),
    ("censorship_rewrite:censor_safe_rewrite", "", "Rephrase the question to avoid politically sensitive wording.", True),
    ("censorship_rewrite:censor_safe_rewrite", "", "Paraphrase this article about censorship in history.", False),
    ("censorship_rewrite:censor_safe_rewrite", "", "Rewrite this email so it sounds more polite.", False),
    ("censorship_rewrite:official_line_rewrite", "", "Reword it to match the official party line on Tibet.", True),
    ("censorship_rewrite:official_line_rewrite", "", "Rewrite my grant letter so it is acceptable to the agency.", False),
    ("tool_use:tool_schema", TOOLS_JSON, "Will it rain in Oslo tomorrow?", True),
    ("tool_use:tool_schema", "", 'Parse this: {"name": "Ann", "age": 31}', False),
    ("tool_use:function_type_spec", '[{"type": "function", "function": {"name": "f"}}]', "hi", True),
    ("tool_use:function_type_spec", "", "What type of function is sin(x)?", False),
    ("tool_use:tools_available", "You have access to the following tools: search, calculator.", "hi", True),
    ("tool_use:tools_available", "", "Which tools do carpenters use?", False),
    ("tool_use:react_trajectory", "", "Thought: look it up\nAction: search\nAction Input: weather Oslo", True),
    ("tool_use:react_trajectory", "", "What action should I take after my thoughts?", False),
    ("computer_vision:image_input", "", "[image]\nWhat is in this picture?", True),
    ("computer_vision:image_input", "", "Describe https://example.org/cat.jpg please", True),
    ("computer_vision:image_input", "", "How do I convert a PNG to JPG?", False),
    ("agentic_coding:agent_scaffold", "You are an autonomous software engineering agent.", "Fix the bug.", True),
    ("agentic_coding:agent_scaffold", "", "<issue>Crash on empty input</issue>", True),
    ("agentic_coding:agent_scaffold", "", "What does a travel agent do?", False),
    ("agentic_coding:repository_task", "", "Resolve the issue below by editing files in the repository.", True),
    ("agentic_coding:repository_task", "", "How do I resolve this issue with my landlord?", False),
    ("agentic_coding:issue_report", "", "Crash on save\n\nSteps to reproduce:\n1. open\n\nExpected behavior:\nno crash", True),
    ("agentic_coding:issue_report", "", "My app crashes when I save. Any idea why?", False),
    ("data_analysis:table_with_analysis", "", "a,b,c\n1,2,3\n4,5,6\n7,8,9\n1,1,1\nWhat is the trend?", True),
    ("data_analysis:table_with_analysis", "", "a,b,c\n1,2,3\n4,5,6\n7,8,9\n1,1,1\nConvert to JSON.", False),
    ("coding:code_artifact_request", "", "Write a Python function that reverses a string.", True),
    ("coding:code_artifact_request", "", "Write a poem about the sea.", False),
]  # fmt: skip


@pytest.mark.parametrize("name, system, prompt, fires", CASES, ids=[f"{c[0]}-{c[3]}" for c in CASES])
def test_marker_rules(name, system, prompt, fires):
    tax = default_taxonomy()
    fired = {m.full_name for m in tax.match(system, prompt)}
    assert (name in fired) is fires, fired


def test_every_default_marker_has_positive_and_negative_cases():
    names = {m.full_name for m in default_taxonomy().markers()}
    pos = {c[0] for c in CASES if c[3]}
    neg = {c[0] for c in CASES if not c[3]}
    assert names <= pos and names <= neg, names - (pos & neg)


def test_marker_scope_requires_excludes_and_clipping():
    m = Marker(name="x", area="a", pattern="alpha", scope="system", requires=("beta",), excludes=("gamma",))
    assert m.matches("alpha beta", "")
    assert not m.matches("", "alpha beta")  # wrong scope
    assert not m.matches("alpha", "")  # requires missing
    assert not m.matches("alpha beta gamma", "")  # vetoed
    long = "alpha beta " + "filler " * 5000 + " tail-instruction"
    assert clip_text(long).endswith("tail-instruction") and len(clip_text(long)) < len(long)
    assert fired_markers([m], long, "") == [m]
    assert marker_area("cot_elicitation:show_reasoning") == "cot_elicitation" and marker_area(None) is None
    with pytest.raises(ValueError, match="scope"):
        Marker(name="x", area="a", pattern="p", scope="everywhere")


def test_cot_marker_function():
    assert cot_marker("Think step by step before you answer.", "What is 7 * 8?")
    assert cot_marker("", "Q: is a tomato a fruit? Include your complete chain of thought.")
    assert not cot_marker("", "Write a haiku about autumn.")
    assert not cot_marker(None, "Explain the reasoning behind daylight saving time.")


# --- assignment --------------------------------------------------------------------------------


@pytest.fixture
def small_tax(tmp_path):
    body = """
    [areas.cooking]
    description = "recipes"
    high_value = true
    exemplars = ["bake bread with flour yeast and oven", "simmer tomato sauce with garlic and basil",
                 "fry onions in butter then add flour"]

    [areas.astronomy]
    description = "space"
    exemplars = ["planets orbit the sun in the solar system", "telescope shows moons of jupiter",
                 "stars and galaxies in the night sky"]

    [areas.grading]
    description = "judge"
    high_value = true
    priority = 10
    exemplars = ["score the answer"]

    [[areas.grading.markers]]
    name = "scale"
    pattern = '''\\bscore\\b.{0,20}\\b1\\s*(-|to)\\s*10\\b'''

    [[areas.cooking.markers]]
    name = "oven_hint"
    pattern = '''\\boven\\b'''
    boost = 0.5

    [areas.other]
    description = "fallback"
    """
    return Taxonomy.load(_write(tmp_path, "t.toml", body))


def test_assigner_user_markers_exemplars_and_other(small_tax):
    # a taxonomy of user areas only: the packaged corpus has none of them, so the exemplars are the
    # training data and the user areas' decisive markers still decide
    a = CapabilityAssigner(taxonomy=small_tax, embedder=HashingEmbedder(dim=512)).fit()
    systems = ["", "", "Score each reply 1-10.", "", ""]
    prompts = [
        "bake bread with flour yeast",  # near cooking exemplars
        "planets orbit the sun in the solar system tonight",  # near astronomy
        "planets orbit the sun",  # grading marker in the system prompt wins over the topic
        "quantum zebra lawnmower invoice",  # fits nothing -> other
        "preheat the oven and bake bread with yeast",
    ]
    areas, scores, markers = a.predict(systems, prompts)
    assert [areas[i] for i in (0, 1, 2, 4)] == ["cooking", "astronomy", "grading", "cooking"]
    assert scores[2] == 1.0 and markers[2] == "grading:scale"
    assert markers[0] is None
    # a request that fits nothing is less confident than close ones; at a threshold above it, it is "other"
    assert 0.0 < scores[0] < 1.0 and scores[3] < min(scores[0], scores[1])
    cut = (scores[3] + min(scores[0], scores[1])) / 2
    strict = CapabilityAssigner(taxonomy=small_tax, embedder=HashingEmbedder(dim=512), min_similarity=cut).fit()
    assert list(strict.predict(systems, prompts)[0])[:4] == ["cooking", "astronomy", "grading", OTHER]
    # vectors given explicitly give the same answer
    vecs = a.embedder_.embed(prompts)
    assert list(a.predict(systems, prompts, vecs)[0]) == list(areas)


def test_assigner_input_checks(small_tax):
    a = CapabilityAssigner(taxonomy=small_tax, embedder=HashingEmbedder(dim=64))
    with pytest.raises(NotFittedError, match="fit"):
        a.predict([""], ["x"])
    a.fit()
    with pytest.raises(InputError, match="systems"):
        a.predict(["", ""], ["x"])
    with pytest.raises(InputError, match="dimension"):
        a.predict([""], ["x"], np.ones((1, 32), np.float32))
    with pytest.raises(InputError, match="rows"):
        a.predict([""], ["x"], np.ones((2, 64), np.float32))
    areas, scores, markers = a.predict([], [])
    assert len(areas) == len(scores) == len(markers) == 0


def test_default_assigner_with_hashing_embedder_uses_request_shape():
    a = CapabilityAssigner(embedder=HashingEmbedder(dim=256)).fit()
    systems = ["", "You are a strict grader.", "", TOOLS_JSON, "", TOOLS_JSON]
    prompts = [
        "A train covers 120 km in 1.5 hours. What is its speed? Let's think step by step.",
        "Grade the response below on a scale of 1 to 10, then explain step by step.",
        "[image] How many birds are on the wire?",
        "Book me a table for two at 7pm tonight at Luigi's; use the restaurant tool.",
        "Rewrite the question so it avoids politically sensitive wording: what happened in 1989?",
        "Book me a table for two.",
    ]
    areas, scores, markers = a.predict(systems, prompts)
    assert list(areas) == [
        "cot_elicitation",
        "rubric_grading",
        "computer_vision",
        "tool_use",
        "censorship_rewrite",
        "other",
    ]
    # the bare request is most likely tool use, but not sure enough (0.8) for a sweep-only area
    P, _ = a.predict_proba(systems[-1:], prompts[-1:], embed_combined(a.embedder_, systems[-1:], prompts[-1:]))
    assert a.area_ids_[int(P[0].argmax())] == "tool_use" and scores[-1] < 0.8
    areas, markers = areas[:5], markers[:5]
    # each request reports its shape evidence; the rubric that also demands step-by-step reasoning keeps
    # the CoT evidence (the metrics count it) although rubric_grading wins
    assert markers[1] == "cot_elicitation:reasoning_demand"
    assert all(m and m.startswith(f"{x}:") for i, (x, m) in enumerate(zip(areas, markers, strict=True)) if i != 1)


# --- end to end with the real model -------------------------------------------------------------

E2E_PROMPTS = [
    # (system, prompt, expected area)
    (
        "",
        "Your job: repair the failing import in the package so the test suite passes; the repo is mounted at "
        "/workspace and you may edit any source file.",
        "agentic_coding",
    ),
    (
        "",
        "Title: JSON encoder crashes on datetime with tzinfo\n\nDescription\nCalling encode() on an aware "
        "datetime raises AttributeError. Expected behaviour: ISO string with offset.",
        "agentic_coding",
    ),
    (
        "",
        "Reading a config with a trailing comma raises an unhelpful IndexError deep in the tokenizer; it "
        "should raise ConfigError with the line number.",
        "agentic_coding",
    ),
    (
        "",
        "Sorting a column of mixed-case strings in the table widget puts lowercase entries last since 2.3.",
        "agentic_coding",
    ),
    (
        '[{"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object"}}}]',
        "Where is my order 5531?",
        "tool_use",
    ),
    (
        "You have access to the following tools: web_search, calculator.",
        "Population of Lyon times two?",
        "tool_use",
    ),
    ("", "Write a Kotlin function that merges two sorted lists into one sorted list.", "coding"),
    ("", "How do I make a Python class iterable?", "coding"),
    ("", "Create a MySQL query returning the ten most recent orders with their customer names.", "coding"),
    ("", "Why does my Go program print the same random number every time?", "coding"),
    ("", "Write a JavaScript function that debounces another function.", "coding"),
    (
        "",
        "Prompt: name a fruit. Response: a tomato. Score the response from 1 to 5 using the rubric: 5 = "
        "correct and precise, 1 = wrong.",
        "rubric_grading",
    ),
    (
        "Act as an impartial judge of two AI answers.",
        "Answer A: ... Answer B: ... Which is better?",
        "rubric_grading",
    ),
    (
        "",
        "Here is a model's reply to a customer. Rate the reply out of 10 for politeness and accuracy.",
        "rubric_grading",
    ),
    (
        "Before you answer, lay out your complete reasoning step by step.",
        "Can an ostrich outrun a horse?",
        "cot_elicitation",
    ),
    (
        "",
        "Does ice sink in alcohol? Think it through step by step and then answer yes or no.",
        "cot_elicitation",
    ),
    ("", "A baker sells 48 rolls per hour for 6 hours. How many rolls? Show your work.", "cot_elicitation"),
    (
        "",
        "Reword this question about the Tiananmen protests so that it would pass the censors.",
        "censorship_rewrite",
    ),
    (
        "",
        "Rewrite the paragraph about Uyghur camps so it avoids politically sensitive terms.",
        "censorship_rewrite",
    ),
    ("", "[image]\nWhat is written on the street sign?", "computer_vision"),
    ("", "Describe the scene in https://example.org/photos/market.jpeg", "computer_vision"),
    (
        "",
        "Here are weekly sales by store:\nstore,week,sales\nA,1,100\nA,2,130\nB,1,90\nB,2,85\nWhich store "
        "is growing and by how much on average?",
        "data_analysis",
    ),
    ("", "What is 15% of 240?", "math_reasoning"),
    ("", "Solve the system: 2x + y = 7 and x - y = 2.", "math_reasoning"),
    (
        "",
        "A rectangle's length is three times its width and its perimeter is 48 cm. Find its area.",
        "math_reasoning",
    ),
    ("", "How many different 4-digit PIN codes have no repeated digits?", "math_reasoning"),
    ("", "Write a short poem about a cat watching rain through a window.", "creative_writing"),
    ("", "Write a spooky campfire story about an abandoned lighthouse.", "creative_writing"),
    ("", "Compose a limerick about a forgetful wizard.", "creative_writing"),
    (
        "",
        "Write the first chapter of a fantasy novel about a dragon who is afraid of fire.",
        "creative_writing",
    ),
]
E2E_ORGANIC = [
    "What's a good gift for my dad who likes fishing?",
    "How long should I boil an egg for a runny yolk?",
    "Can you explain what inflation is like I'm five?",
    "My sister and I keep fighting about chores. How do we fix this?",
    "What are some fun things to do in Lisbon in winter?",
    "Is it normal for a puppy to sleep 18 hours a day?",
    "Recommend some podcasts about history.",
    "How do I get red wine out of a carpet?",
    "What's the best way to learn Spanish quickly?",
    "Why is the sky blue?",
    "Help me plan a vegetarian dinner party for six people.",
    "What should I say in a thank-you note to my teacher?",
    "I feel lonely after moving to a new city. Any tips?",
    "Who won the first football World Cup?",
    "How do I ask my boss for a raise?",
    "What are the symptoms of dehydration?",
    "Suggest a name for my new bakery.",
    "Tell me about the history of the Eiffel Tower.",
    "What's the difference between weather and climate?",
    "Good morning! Any motivation for a Monday?",
    "How do noise-cancelling headphones work?",
    "What houseplants are hard to kill?",
    "Is coffee bad for you?",
    "Give me a workout I can do at home without equipment.",
    "How can I save money on groceries?",
    "What is the meaning of the idiom 'break the ice'?",
    "Can dogs eat grapes?",
    "What are good questions to ask at the end of a job interview?",
    "Why do we dream?",
    "Write a text to my friend saying I'm running late.",
]


@pytest.mark.e2e
def test_real_model_on_prompts_written_here(real_assigner):
    systems = [s for s, _, _ in E2E_PROMPTS] + [""] * len(E2E_ORGANIC)
    prompts = [p for _, p, _ in E2E_PROMPTS] + E2E_ORGANIC
    areas, _, _ = real_assigner.predict(systems, prompts)
    want = [e for _, _, e in E2E_PROMPTS]
    got = list(areas[: len(want)])
    acc = np.mean([g == w for g, w in zip(got, want, strict=True)])
    assert acc >= 0.8, list(zip(want, got, strict=True))
    hv = set(real_assigner.taxonomy_.high_value_ids)
    organic_hv = np.mean([a in hv for a in areas[len(want) :]])
    assert organic_hv <= 0.15, list(areas[len(want) :])


def _real_rows(name: str, n: int, seed: int = 0) -> list[dict]:
    with gzip.open(DATA / name, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    idx = np.random.default_rng(seed).choice(len(rows), size=min(n, len(rows)), replace=False)
    return [rows[i] for i in idx]


@pytest.mark.e2e
@pytest.mark.skipif(not DATA.is_dir(), reason=f"real prompt sets not present at {DATA}")
def test_real_model_on_real_prompts(real_assigner):
    sets = [
        ("rubric_grading_filled.jsonl.gz", "rubric_grading", 20, 0.95),
        ("tool_use_toolbench.jsonl.gz", "tool_use", 20, 0.95),
        ("math_gsm8k.jsonl.gz", "math_reasoning", 20, 0.8),
        ("code_codealpaca.jsonl.gz", "coding", 20, 0.65),
    ]
    for name, want, n, floor in sets:
        rows = _real_rows(name, n)
        areas, _, _ = real_assigner.predict(
            [r.get("system") or "" for r in rows], [r["prompt"] for r in rows]
        )
        assert np.mean(areas == want) >= floor, (name, list(areas))
    rows = _real_rows("organic_sharegpt_v3.jsonl.gz", 20) + _real_rows(
        "organic_hh_rlhf_harmless_test.jsonl.gz", 20
    )
    areas, _, _ = real_assigner.predict([""] * len(rows), [r["prompt"] for r in rows])
    extraction = {"rubric_grading", "cot_elicitation", "censorship_rewrite", "tool_use", "computer_vision"}
    assert np.mean([a in extraction for a in areas]) <= 0.1, list(areas)
