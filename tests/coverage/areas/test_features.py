"""Request-shape features: each one fires on the structure it names and stays quiet on look-alikes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from promptcov.coverage.areas.features import (
    FEATURE_AREA,
    FEATURE_NAMES,
    request_features,
    shape_features,
    strongest_evidence,
)

TOOLS = json.dumps([{"name": "lookup_invoice", "description": "Find an invoice",
                     "input_schema": {"type": "object", "properties": {"id": {"type": "string"}},
                                      "required": ["id"]}}])

# (feature, system, prompt that shows it, system, prompt that must not)
CASES = [
    ("tool_schema", TOOLS, "Where is invoice 77?", "", "What is an invoice number used for?"),
    ("json_action", "", 'Reply as {"action": "search", "action_input": "..."}', "",
     "What action movies came out this year?"),
    ("agent_role", "You are an autonomous engineering agent with access to the following tools.", "Go.",
     "", "My friend works as a travel agent, is that a good job?"),
    ("repo_context", "", "The bug is in lib/parser/tokens.rs and src/main.rs; see git diff.", "",
     "How do I parse a date string?"),
    ("diff_or_trace", "", "diff --git a/x.py b/x.py\n@@ -1,3 +1,4 @@\n-import os\n+import sys", "",
     "What is the difference between two lists?"),
    ("shell", "", "$ pytest -x tests/\nthen cargo test", "", "Tell me about seashells."),
    ("iterate_loop", "", "Change the code, run the test suite, and keep going until all tests pass.", "",
     "I ran a marathon last week; how do I recover?"),
    ("ui_action", "", "Next action: click(412, 96) or type('hello')", "", "Why do people click on ads?"),
    ("coordinates", "", "The Save button is at (860, 610) on a 1920x1080 screen.", "",
     "Describe the colour of the sea."),
    ("screen_state", "", "Accessibility tree:\n[3] button 'Login'\n[4] textbox 'Email'", "",
     "How do I log in to my bank?"),
    ("image_part", "", "[image] what is this?", "", "What is an image file format?"),
    ("image_reference", "", "How many dogs are in this photo?", "", "How many dogs live in Germany?"),
    ("score_scale", "", "Score the answer from 1 to 10.", "", "What was the score of the 1998 final?"),
    ("response_to_grade", "", "[The Start of Assistant A's Answer] hi [The End of Assistant A's Answer]", "",
     "Answer me: what is a good assistant?"),
    ("reasoning_demand", "Show all your reasoning before the answer.", "Is 91 prime?", "",
     "Explain the reasoning behind daylight saving time."),
    ("reasoning_demand", "", "Is 221 prime? Let's think step by step.", "", "Explain step by step how to install Python."),
    ("reasoning_demand", "", "Work through it step by step, then answer.", "", "Give me step-by-step setup instructions."),
    ("safe_rewrite", "", "Rephrase this post about the Tiananmen protests so censors find it acceptable.", "",
     "Rephrase this email so it sounds friendlier."),
    ("table", "", "| month | sales |\n|---|---|\n| Jan | 3 |\n| Feb | 5 |", "", "Set the table for dinner."),
    ("code_block", "", "```python\ndef f(x):\n    return x + 1\n```", "", "Write me a poem about rivers."),
    ("math", "", "Solve for x: 3x + 7 = 25", "", "Tell me a story about a fox."),
    ("agent_shape", "You can run shell commands.", "Edit src/app.py and run the tests until they pass.",
     "", "Edit my essay about my app idea and show it to my teacher."),
    ("grading_shape", "", "Score the response from 1 to 10 against the rubric.", "",
     "What was the score of the match?"),
    ("image_task", "", "[image] Which bird is this?", "",
     "Screenshot attached [image]. Next action: click(120, 40) on the Save button."),
    ("tool_task", TOOLS, "Where is invoice 77?", "You are a coding agent with tools: bash(cmd).",
     "Fix src/app.py and run the tests until they pass."),
    # a reasoning demand on a bare question is CoT; the same demand around a score scale is not "bare"
    ("bare_reasoning", "", "Is 91 prime? Think step by step.", "",
     "Answer: 91 is prime. Score the answer from 1 to 10; think step by step."),
]


@pytest.mark.parametrize("feat, sys_pos, pos, sys_neg, neg", CASES, ids=[c[0] for c in CASES])
def test_feature_positive_and_negative(feat, sys_pos, pos, sys_neg, neg):
    j = FEATURE_NAMES.index(feat)
    assert request_features(sys_pos, pos)[j] >= 0.3, feat
    assert request_features(sys_neg, neg)[j] < 0.3, feat


def test_every_area_feature_is_tested():
    tested = {c[0] for c in CASES}
    missing = {f for f, a in FEATURE_AREA.items() if a is not None} - tested - {"issue_report", "rubric"}
    assert not missing


def test_features_are_bounded_and_batch_matches_single():
    systems = [c[1] for c in CASES] + [None, ""]
    prompts = [c[2] for c in CASES] + ["", "x" * 50_000]
    X = shape_features(systems, prompts)
    assert X.shape == (len(prompts), len(FEATURE_NAMES)) and X.dtype == np.float32
    assert float(X.min()) >= 0.0 and float(X.max()) <= 1.0
    np.testing.assert_array_equal(X[3], request_features(systems[3], prompts[3]))
    assert shape_features([], []).shape == (0, len(FEATURE_NAMES))
    with pytest.raises(ValueError, match="systems"):
        shape_features([""], [])


def test_strongest_evidence_names_area_and_feature():
    row = request_features("", "[image] Count the apples in this picture.")
    assert strongest_evidence(row).startswith("computer_vision:image_")
    assert strongest_evidence(row, "coding") is None
    assert strongest_evidence(request_features("", "hello there")) is None
