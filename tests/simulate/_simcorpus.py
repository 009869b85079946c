"""A tiny sample corpus for the simulator tests, in the DESIGN.md format (all text made up here)."""

from __future__ import annotations

import json
from pathlib import Path

AREAS = (
    "cot_elicitation",
    "rubric_grading",
    "censorship_rewrite",
    "math_reasoning",
    "agentic_coding",
    "tool_use",
    "coding",
    "data_analysis",
    "computer_vision",
)
_TOPICS = ("sourdough bread", "a job interview", "my tomato plants", "a trip to Kyoto", "learning the cello",
           "a birthday party", "renting an apartment", "marathon training", "a cover letter", "saving money")  # fmt: skip
_ASKS = ("Give me tips for {}.", "What should I know about {}?", "Write a short poem about {}.",
         "Help me plan {} step by step.", "What are common mistakes with {}?")  # fmt: skip
_CATS = ("general_chat", "creative_writing", "general_chat", "general_chat", "general_chat")


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def build_corpus(root: Path) -> Path:
    """Write a small corpus folder; every text is made up for the test."""
    root.mkdir(parents=True, exist_ok=True)
    organic = []
    for i, topic in enumerate(_TOPICS):
        for j, ask in enumerate(_ASKS):
            row = {"prompt": ask.format(topic), "category": _CATS[j]}
            if (i + j) % 3 == 0:
                row["followups"] = [f"Thanks. And what about {topic} in winter?", "Make it shorter."]
            organic.append(row)
    organic += [
        {"prompt": f"Fix the bug in my function number {i}: it returns None.", "category": "coding"}
        for i in range(8)
    ]
    _write(root / "organic.jsonl", organic)
    _write(root / "popular.jsonl", [{"prompt": f"I want you to act as a {r}. Stay in character."} for r in
                                   ("travel guide", "chef", "poet", "debate coach", "tour planner")])  # fmt: skip
    for area in AREAS:
        rows = [
            {"task": f"{area} task number {i}: solve case {i * 7 % 13} with care.", "area": area}
            for i in range(12)
        ]
        if area == "tool_use":
            for r in rows:
                r["meta"] = {"tools": '[{"name": "lookup"}]'}
        _write(root / f"tasks_{area}.jsonl", rows)
    scaffolds = []
    for area in AREAS:
        scaffolds.append({"id": f"{area}_a", "area": area, "template": "{task}\n\nShow every step. Answer as {fmt}.",
                          "slots": {"fmt": ["JSON", "plain text", "a list"]}})  # fmt: skip
        scaffolds.append({"id": f"{area}_b", "area": area, "system": f"You produce {area} training data.",
                          "template": 'Return {{"answer": ...}} for:\n{task}'})  # fmt: skip
    scaffolds.append({"id": "tools_c", "area": "tool_use", "template": "Tools: {tools}\nRequest: {task}"})
    _write(root / "scaffolds.jsonl", scaffolds)
    _write(root / "product_systems.jsonl", [
        {"id": "bank", "system": "You are the help assistant of a small bank app.", "topic": "banking"},
        {"id": "recipes", "system": "You are a friendly recipe assistant.", "topic": "cooking"},
    ])  # fmt: skip
    _write(root / "coding_tool.jsonl", [{"system": "You are an IDE assistant. Answer with code."}] + [
        {"prompt": f"In utils.py line {i}: why does this loop never end?", "followups": ["Now add a test."]}
        for i in range(6)
    ])  # fmt: skip
    _write(root / "batch_jobs.jsonl", [{"id": "sent", "text_kind": "review",
                                        "template": "Classify the sentiment of this review in one word.\n\n{text}"}])  # fmt: skip
    _write(root / "batch_texts.jsonl", [{"text": f"Review {i}: the kettle {'works' if i % 2 else 'leaks'} after {i} weeks.",
                                         "kind": "review"} for i in range(40)])  # fmt: skip
    return root
