"""Build the labelled capability-area corpus: ``promptcov/data/areas/<area>.jsonl``.

Each row: ``{"area", "family", "system", "prompt"}``. Tasks and wrappers are hand-written for
promptcov (``scripts/area_corpus_text.py``). ``family`` names the request style: four scaffold
styles (``xml``, ``json``, ``markdown``, ``plain``) that wrap tasks of every area the way a sweep
would, and ``organic`` (a person asking in their own words). Styles are shared by all areas, so a
style alone never tells the area; ``scripts/eval_capabilities.py`` holds each family out in turn.

Deterministic (seeded). Usage::

    python scripts/build_area_corpus.py [--out promptcov/data/areas]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import area_corpus_text as T  # noqa: E402

from promptcov.io import atomic_write  # noqa: E402

STYLES = ("xml", "json", "markdown", "plain")
REPOS = ["billing-service", "datakit", "pyshapes", "webhooks", "tinyorm", "geo-utils", "mailer", "cli-tools"]


def _tools(style: str, tools) -> str:
    if style == "json":
        return json.dumps([{"type": "function", "function": {"name": n, "description": d, "parameters": {
            "type": "object", "properties": {k: {"type": v} for k, v in ps.items()},
            "required": list(ps)[:1]}}} for n, d, ps in tools], indent=1)
    if style == "xml":
        return "<tools>\n" + "\n".join(
            f'  <tool name="{n}" description="{d}">' + "".join(f'<param name="{k}" type="{v}"/>' for k, v in ps.items())
            + "</tool>" for n, d, ps in tools) + "\n</tools>"
    if style == "markdown":
        return "\n".join(f"- `{n}({', '.join(f'{k}: {v}' for k, v in ps.items())})`: {d}" for n, d, ps in tools)
    return "; ".join(f"{n} ({', '.join(ps)}) - {d.lower()}" for n, d, ps in tools)


def agentic(rng) -> list[tuple]:
    out = []
    bash = [("bash", "Run a shell command in the repository", {"command": "string"}),
            ("str_edit", "Replace text in a file", {"path": "string", "old": "string", "new": "string"}),
            ("view", "Show a file or directory", {"path": "string"})]
    for i, t in enumerate(T.AGENT_TASKS):
        repo = REPOS[i % len(REPOS)]
        out.append(("xml", f"<role>You are an autonomous software engineer in a sandboxed checkout of {repo} at /testbed.</role>\n{_tools('xml', bash)}",
                    f"<task>\n{t}\n</task>\n<instructions>Explore the code, reproduce the problem with a small script, fix the "
                    "source (not the tests), re-run the script and the test suite, then submit.</instructions>"))
        out.append(("json", "You operate on a git repository through tools. Reply with exactly one tool call as JSON "
                    '{"name": ..., "arguments": {...}} per turn.\n' + _tools("json", bash),
                    f"Repository: acme/{repo} (branch main)\nIssue #{100 + 7 * i}: {t}\nResolve the issue and make sure `pytest -q` passes."))
        out.append(("markdown", "", f"## Task\n{t}\n\n## Workspace\n`/workspace/{repo}` - tests live in `tests/`, sources in `src/{repo.replace('-', '_')}/`.\n\n"
                    "## Rules\n- Run the tests after every change\n- Keep iterating until they are green\n- Finish with the full `git diff`"))
        plain = [f"You're a coding agent with terminal access in the {repo} repo. {t} Make the change, run the test suite, keep going until it passes, and summarise what you changed.",
                 f"{t}\n\nYou have a shell in the project directory (~/src/{repo}). Think step by step: find the relevant files, patch them, run the tests and iterate until everything passes.",
                 f"Eres un agente de programación con acceso a la terminal en el repositorio {repo}. {t} Modifica el código, ejecuta los tests y repite hasta que pasen."]
        out.append(("plain", "", plain[i % 3]))
    return out


def coding(rng) -> list[tuple]:
    out = [("organic", "", t) for t in T.CODING_TASKS]
    for i, t in enumerate(T.CODING_TASKS):
        s = STYLES[i % 4]
        w = {"xml": ("", f"<instruction>{t}</instruction>\n<format>Return a single code block and a two-line explanation.</format>"),
             "json": ("", json.dumps({"task": t, "language": "auto", "output": "code"})),
             "markdown": ("You are a senior developer answering programming questions.", f"### Problem\n{t}\n\n### Constraints\n- idiomatic code\n- comment tricky lines"),
             "plain": ("You are a helpful programming assistant.", t)}[s]
        out.append((s, *w))
        s2 = STYLES[(i + 2) % 4]
        w2 = {"xml": ("", f"<query>{t}</query>"), "json": ("Answer in JSON with keys 'code' and 'explanation'.", t),
              "markdown": ("", f"**Coding question**\n\n{t}"), "plain": ("", f"Programming task: {t} Keep it short.")}[s2]
        out.append((s2, *w2))
    return out


def tool_use(rng) -> list[tuple]:
    out = []
    for i, t in enumerate(T.TOOL_TASKS):
        ts = T.TOOLSETS[i % len(T.TOOLSETS)]
        out.append(("xml", f"You can call the tools below. Wrap each call in <call>...</call>.\n{_tools('xml', ts)}", t))
        out.append(("json", _tools("json", ts), f"{t}\nRespond with the function call(s) needed, as JSON."))
        out.append(("markdown", "", f"Available functions:\n{_tools('markdown', ts)}\n\nUser request: {t}\nPick the right function and fill in its arguments."))
        out.append(("plain", f"You are an assistant with access to these APIs: {_tools('plain', ts)}. Use them when needed.",
                    t if i % 2 else f"{t} Use the APIs; think about which one fits and give the call with its parameters."))
    return out


def computer_use(rng) -> list[tuple]:
    out = []
    for i, t in enumerate(T.CU_TASKS):
        sc = T.CU_SCREENS[i % len(T.CU_SCREENS)]
        sp = T.CU_ACTION_SPACES[i % len(T.CU_ACTION_SPACES)]
        sp2 = T.CU_ACTION_SPACES[(i + 2) % len(T.CU_ACTION_SPACES)]
        out.append(("xml", "", f"<goal>{t}</goal>\n<screen>\n{sc}\n</screen>\n<action_space>{sp}</action_space>\nReturn the next action."))
        out.append(("json", f"You are a GUI agent. {sp2}", json.dumps({"goal": t, "observation": {"screenshot": "[image]", "ui": sc},
                    "previous_actions": ["click(412, 96)", "type('settings')"][: i % 3]}, ensure_ascii=False)))
        out.append(("markdown", "You operate a computer by mouse and keyboard.", f"## Objective\n{t}\n\n## Current screen\n{sc}\n\n## Allowed actions\n{sp}"))
        out.append(("plain", "", f"You are controlling a computer. Task: {t} Here is what's on screen: {sc} {sp2} What is your next action?"))
    return out


def rubric(rng) -> list[tuple]:
    out = []
    for i, (q, a) in enumerate(T.GRADING_ITEMS):
        c = T.RUBRIC_CRITERIA[i % len(T.RUBRIC_CRITERIA)]
        q2, a2 = T.GRADING_ITEMS[(i + 5) % len(T.GRADING_ITEMS)]
        out.append(("xml", "You are an impartial evaluator.", f"<question>{q}</question>\n<response>{a}</response>\n<criterion>{c}</criterion>\n"
                    + ("Think step by step about the response, then give a score from 1 to 5 inside <score></score>." if i % 2 else
                       "Give a score from 1 to 5 inside <score></score> and explain briefly.")))
        out.append(("json", "Return JSON: {\"score\": int 1-10, \"reason\": str}.", json.dumps({"instruction": q, "response": a, "criteria": c})))
        out.append(("markdown", "", f"### Instruction\n{q}\n\n### Response to evaluate\n{a}\n\n### Score rubric\n{c}\nScore 1: fails completely\nScore 3: partially\n"
                    "Score 5: fully\n\n### Feedback\nWrite feedback, then 'SCORE: n'."))
        out.append(("plain", "", f"Rate this answer from 1 to 10 for {c.lower().rstrip('?')}.\nQuestion: {q}\nAnswer: {a}\n" + ("Explain your reasoning step by step, then give the number." if i % 3 == 1 else "Give the number first.")))
        out.append((STYLES[i % 4], "Act as a judge comparing two assistants.", f"User question: {q}\n\nAssistant A: {a}\n\nAssistant B: {a2}\n\n"
                    "Which answer is better? " + ("Reason step by step about both, then output [[A]], [[B]] or [[tie]]." if i % 2 else
                    "Output [[A]], [[B]] or [[tie]] after your explanation.")))
        out.append((STYLES[(i + 1) % 4], "", f"Here is a student's reply to '{q}':\n\"{a}\"\nGrade it out of 10 using these criteria: correctness, completeness, clarity."
                    + (" Show your reasoning for each criterion before the grade." if i % 2 else "")))
    return out


def cot(rng) -> list[tuple]:
    out = []
    for i, q in enumerate(T.COT_QUESTIONS):
        d = T.COT_DEMANDS[i % len(T.COT_DEMANDS)]
        d2 = T.COT_DEMANDS[(i + 3) % len(T.COT_DEMANDS)]
        out.append(("xml", "", f"<question>{q}</question>\n<instructions>{d}</instructions>"))
        out.append(("json", json.dumps({"mode": "reasoning", "instruction": d2}), q))
        out.append(("markdown", "", f"**Question:** {q}\n\n**Instructions:** {d2}\n\n**Reasoning:**"))
        out.append(("plain", d if i % 2 else "", q if i % 2 else f"{q} {d2}"))
    for i, q in enumerate(T.MATH_TASKS[:20]):
        out.append((STYLES[i % 4], "", f"{q}\n{T.COT_DEMANDS[(i + 5) % len(T.COT_DEMANDS)]}"))
    return out


def censorship(rng) -> list[tuple]:
    out = []
    for i, item in enumerate(T.SENSITIVE_ITEMS):
        for k, s in enumerate(STYLES):
            ins = T.CENSOR_INSTRUCTIONS[(i + k) % len(T.CENSOR_INSTRUCTIONS)]
            w = {"xml": ("", f"<text>{item}</text>\n<task>{ins}.</task>"),
                 "json": ("You rewrite content for publication.", json.dumps({"text": item, "instruction": ins})),
                 "markdown": ("", f"## Source text\n{item}\n\n## Instruction\n{ins}."),
                 "plain": ("", f"{ins}: \"{item}\"" if i % 2 else f"{item}\n\n{ins}.")}[s]
            out.append((s, *w))
    return out


def vision(rng) -> list[tuple]:
    out = []
    for i, t in enumerate(T.VISION_TASKS):
        p = T.IMAGE_PARTS[i % len(T.IMAGE_PARTS)]
        out.append(("xml", "", f"<image>{p}</image>\n<question>{t}</question>"))
        out.append(("json", "", json.dumps([{"type": "image_url", "image_url": {"url": p}}, {"type": "text", "text": t}])))
        out.append(("markdown", "You are a vision assistant.", f"![input]({p})\n\n**Q:** {t}"))
        out.append(("plain", "", f"[image] {t.lower()}" if i % 2 else f"{t} (photo attached)"))
        out.append(("organic", "", f"[image]\n{t}"))
    return out


def _table(rng, fmt: str) -> str:
    cols = rng.choice([["month", "revenue", "cost"], ["region", "sales", "units"], ["product", "price", "rating"],
                       ["city", "population", "area_km2"], ["student", "math", "reading"]])
    names = {"month": ["Jan", "Feb", "Mar", "Apr", "May", "Jun"], "region": ["North", "South", "East", "West", "Central"],
             "product": ["kettle", "toaster", "blender", "mixer", "grill"], "city": ["Aarhus", "Brno", "Cork", "Dijon", "Essen"],
             "student": ["Ana", "Ben", "Chen", "Dara", "Eli"]}[cols[0]]
    rows = [[n, str(rng.randint(10, 990)), str(round(rng.uniform(1, 99), 1))] for n in names]
    if fmt == "csv":
        return "\n".join([",".join(cols)] + [",".join(r) for r in rows])
    if fmt == "tsv":
        return "\n".join(["\t".join(cols)] + ["\t".join(r) for r in rows])
    if fmt == "json":
        return json.dumps([dict(zip(cols, r, strict=False)) for r in rows])
    return "\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)] + ["| " + " | ".join(r) + " |" for r in rows])


def data_analysis(rng) -> list[tuple]:
    out = []
    fmts = {"xml": "csv", "json": "json", "markdown": "md", "plain": "tsv", "organic": "md"}
    for k in range(30):
        for s in (*STYLES, "organic") if k % 2 else STYLES:
            a = T.ANALYSIS_ASKS[(k + len(out)) % len(T.ANALYSIS_ASKS)]
            tb = _table(rng, fmts[s] if k % 3 else "csv")
            w = {"xml": ("", f"<data>\n{tb}\n</data>\n<question>{a}</question>"),
                 "json": ("You are a data analyst.", json.dumps({"data": tb, "question": a})),
                 "markdown": ("", f"### Data\n{tb}\n\n### Question\n{a}"),
                 "plain": ("", f"{a}\n\n{tb}"),
                 "organic": ("", f"here's my numbers from work, can you help?\n{tb}\n{a.lower()}")}[s]
            out.append((s, *w))
    return out


def math(rng) -> list[tuple]:
    out = [("organic", "", t) for t in T.MATH_TASKS]
    for i, t in enumerate(T.MATH_TASKS):
        for s in (STYLES[i % 4], STYLES[(i + 1) % 4], STYLES[(i + 3) % 4]):
            w = {"xml": ("", f"<problem>{t}</problem>\n<answer_format>final answer only</answer_format>"),
                 "json": ("", json.dumps({"problem": t, "answer_type": "number"})),
                 "markdown": ("You solve maths problems.", f"**Problem.** {t}\n\n**Answer:**"),
                 "plain": ("Give only the final answer.", t)}[s]
            out.append((s, *w))
    return out


def creative(rng) -> list[tuple]:
    out = [("organic", "", t) for t in T.CREATIVE]
    for i, t in enumerate(T.CREATIVE):
        s = STYLES[i % 4]
        w = {"xml": ("", f"<instruction>{t}</instruction>"), "json": ("", json.dumps({"instruction": t, "input": ""})),
             "markdown": ("You are a creative writer.", f"### Instruction:\n{t}\n\n### Response:"),
             "plain": ("You are a helpful assistant.", t)}[s]
        out.append((s, *w))
        out.append((STYLES[(i + 2) % 4], "", f"{t} Keep it under 200 words."))
    return out


def general(rng) -> list[tuple]:
    out = [("organic", "", t) for t in T.GENERAL + T.GENERAL_HARD]
    for i, t in enumerate(T.GENERAL):
        s = STYLES[i % 4]
        w = {"xml": ("", f"<instruction>{t}</instruction>"), "json": ("", json.dumps({"instruction": t, "input": ""})),
             "markdown": ("", f"### Instruction:\n{t}\n\n### Response:"),
             "plain": ("You are a friendly assistant. Answer concisely.", t)}[s]
        out.append((s, *w))
    return out


BUILDERS = {"agentic_coding": agentic, "coding": coding, "tool_use": tool_use, "computer_use": computer_use,
            "rubric_grading": rubric, "cot_elicitation": cot, "censorship_rewrite": censorship,
            "computer_vision": vision, "data_analysis": data_analysis, "math_reasoning": math,
            "creative_writing": creative, "general_chat": general}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "promptcov" / "data" / "areas")
    args = ap.parse_args(argv)
    for area, build in BUILDERS.items():
        rows = build(random.Random(f"areas-{area}"))
        seen, n = set(), 0
        with atomic_write(args.out / f"{area}.jsonl") as fh:
            for fam, system, prompt in rows:
                if (system, prompt) in seen:
                    continue
                seen.add((system, prompt))
                fh.write(json.dumps({"area": area, "family": fam, "system": system, "prompt": prompt}, ensure_ascii=False) + "\n")
                n += 1
        print(f"{area:20s} {n:4d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
