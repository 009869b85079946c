"""Evaluate capability assignment on the labelled real prompt sets (``--data``).

Each case samples ``--n`` rows of one real set, optionally wrapped in a request shape a sweep
would send (a chain-of-thought system prompt or suffix, a censorship-safe rewrite instruction, an
agent scaffold, tool schemas). The wrappers below are written for this script and differ from the
exemplars in ``promptcov/coverage/taxonomy.toml``, so the markers and exemplars are not tested on
their own phrasing. Organic sets (ShareGPT, OASST, HH-RLHF, awesome-chatgpt-prompts) measure how
often ordinary use is labelled a high-value area.

Scoring: per-area precision/recall/F1 and macro-F1 over the areas the labelled cases cover.
Organic rows count as false positives for the extraction-shaped areas (rubric_grading,
cot_elicitation, censorship_rewrite, tool_use, agentic_coding, computer_vision) when labelled so;
organic coding or math questions labelled coding/math_reasoning are correct, not errors.
Diagnostic cases (plain CoT seed questions, plain censorship probes, plain APIBench requests,
Alpaca, XSTest) have no single right area and are reported as distributions only.

The JSON written to ``--out`` holds figures only, never prompt text (the sets must not be
copied into the repository). ``--show-errors N`` prints misassigned prompts to the terminal.

Usage::

    python scripts/eval_capabilities.py --data ../shared/data --n 150
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from promptcov.coverage.areas.taxonomy import CapabilityAssigner, Taxonomy
from promptcov.index.embedders import load_embedder
from promptcov.index.records import embed_text
from promptcov.io import write_json

log = logging.getLogger("eval_capabilities")

EXTRACTION_AREAS = (
    "rubric_grading",
    "cot_elicitation",
    "censorship_rewrite",
    "tool_use",
    "agentic_coding",
    "computer_vision",
)

# --- wrappers written for this evaluation (not the taxonomy's exemplar phrasing) -------------------
COT_SYSTEMS = [
    "You are a meticulous tutor. For every question, lay out your complete reasoning in numbered steps, "
    "and only after that give the final answer on a separate line beginning with 'Answer:'.",
    "The user will ask a question. Think it through step by step, writing down each inference, before "
    "committing to an answer.",
    "Respond in two parts: first your detailed chain of thought, then the final answer.",
]
COT_SUFFIXES = [
    "\n\nWork through this carefully and show each step of your reasoning before the final answer.",
    "\n\nLet's reason about it step by step.",
    "\n\nExplain your thinking process fully, then state the answer.",
    "\n\nPlease provide a rationale for your answer.",
]
CENSOR_WRAPPERS = [
    "Rephrase the question below so that a Chinese social-media platform's censors would let it through, "
    "keeping its core meaning:\n\n{q}",
    "Make the following question politically safe for publication inside mainland China:\n\n{q}",
    "{q}\n\nReword the question above so it avoids anything the authorities consider sensitive, then answer "
    "the reworded version.",
    "Original question: {q}\nTask: produce a paraphrase that is consistent with the official state media "
    "line and would not be taken down.",
]
AGENT_SYSTEM = (
    "You are an autonomous coding agent operating in a Linux container with the project "
    "checked out at /workspace. You can run shell commands and edit files. Solve the task the "
    "user gives you and finish with a unified diff."
)
AGENT_WRAPPERS = [
    (
        "",
        "<issue>\n{q}\n</issue>\n\nThe repository is already cloned. Make minimal changes to non-test files so "
        "that the issue is resolved.",
    ),
    (AGENT_SYSTEM, "Here is the problem report:\n\n{q}"),
    ("", "{q}\n\nFix the issue above in the repository; change code only, do not edit tests."),
]
TOOL_SPECS = [
    [
        {
            "type": "function",
            "function": {
                "name": "load_pretrained_model",
                "description": "Load a model from a public model hub",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "hub": {"type": "string"},
                        "model_id": {"type": "string"},
                        "task": {"type": "string"},
                    },
                    "required": ["hub", "model_id"],
                },
            },
        },
        {
            "type": "function",
            "function": {
                "name": "run_inference",
                "description": "Run a loaded model on an input",
                "parameters": {"type": "object", "properties": {"inputs": {"type": "string"}}},
            },
        },
    ],
    [
        {
            "name": "search_model_catalog",
            "description": "Find models for a task",
            "input_schema": {
                "type": "object",
                "properties": {"query": {"type": "string"}, "framework": {"type": "string"}},
            },
        },
        {
            "name": "get_loading_snippet",
            "description": "Code that loads a catalog entry",
            "input_schema": {"type": "object", "properties": {"entry_id": {"type": "string"}}},
        },
    ],
]


def _read(data: Path, name: str) -> list[dict]:
    path = data / name
    if not path.exists():
        raise SystemExit(f"missing data file {path}")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _sample(rows: list[dict], n: int, rng) -> list[dict]:
    idx = rng.choice(len(rows), size=min(n, len(rows)), replace=False)
    return [rows[i] for i in sorted(idx)]


def build_cases(data: Path, n: int, seed: int) -> list[dict]:
    """List of cases: {name, truth (area, 'organic' or None), rows: [(system, prompt)]}."""
    rng = np.random.default_rng(seed)
    cases = []

    def add(name, truth, pairs):
        cases.append({"name": name, "truth": truth, "rows": pairs})

    swe = _sample(_read(data, "agentic_coding_swe_bench_lite.jsonl.gz"), n, rng)
    add("agentic_coding/plain", "agentic_coding", [("", r["prompt"]) for r in swe])
    add(
        "agentic_coding/agent-scaffold",
        "agentic_coding",
        [
            (AGENT_WRAPPERS[i % 3][0], AGENT_WRAPPERS[i % 3][1].format(q=r["prompt"]))
            for i, r in enumerate(swe)
        ],
    )
    tb = _sample(_read(data, "tool_use_toolbench.jsonl.gz"), n, rng)
    add("tool_use/toolbench", "tool_use", [(r.get("system") or "", r["prompt"]) for r in tb])
    api = _read(data, "tool_use_apibench.jsonl.gz")
    api_s = _sample(api, n, rng)
    add(
        "tool_use/apibench+schema",
        "tool_use",
        [(json.dumps(TOOL_SPECS[i % 2]), r["prompt"]) for i, r in enumerate(api_s)],
    )
    add(
        "coding/codealpaca",
        "coding",
        [("", r["prompt"]) for r in _sample(_read(data, "code_codealpaca.jsonl.gz"), n, rng)],
    )
    add(
        "rubric_grading/filled",
        "rubric_grading",
        [("", r["prompt"]) for r in _sample(_read(data, "rubric_grading_filled.jsonl.gz"), n, rng)],
    )
    flan = _sample(_read(data, "cot_elicitation_flan_cot.jsonl.gz"), n + n // 2, rng)
    add(
        "cot_elicitation/flan+system",
        "cot_elicitation",
        [(COT_SYSTEMS[i % 3], r["prompt"]) for i, r in enumerate(flan[: n // 2])],
    )
    add(
        "cot_elicitation/flan+suffix",
        "cot_elicitation",
        [("", r["prompt"] + COT_SUFFIXES[i % 4]) for i, r in enumerate(flan[n // 2 : n])],
    )
    gsm = _sample(_read(data, "math_gsm8k.jsonl.gz"), n + n // 2, rng)
    add("math_reasoning/gsm8k", "math_reasoning", [("", r["prompt"]) for r in gsm[:n]])
    add(
        "cot_elicitation/gsm8k+cot",
        "cot_elicitation",
        [
            (COT_SYSTEMS[i % 3], r["prompt"]) if i % 2 else ("", r["prompt"] + COT_SUFFIXES[i % 4])
            for i, r in enumerate(gsm[n:])
        ],
    )
    cens = _read(data, "censorship_sensitive_questions.jsonl.gz")
    add(
        "censorship_rewrite/rewrite-scaffold",
        "censorship_rewrite",
        [
            ("", CENSOR_WRAPPERS[(i + k) % 4].format(q=r["prompt"]))
            for k in range(2)
            for i, r in enumerate(cens)
        ],
    )
    for name in ("sharegpt_v3", "oasst_prompts", "hh_rlhf_harmless_test", "awesome_chatgpt_prompts"):
        rows = _sample(_read(data, f"organic_{name}.jsonl.gz"), n, rng)
        add(f"organic/{name}", "organic", [(r.get("system") or "", r["prompt"]) for r in rows])
    add("diag/flan-plain", None, [("", r["prompt"]) for r in flan[n:]])
    add("diag/censorship-plain", None, [("", r["prompt"]) for r in cens])
    add("diag/apibench-plain", None, [("", r["prompt"]) for r in _sample(api, n // 2, rng)])
    add(
        "diag/alpaca",
        None,
        [("", r["prompt"]) for r in _sample(_read(data, "general_instruction_alpaca.jsonl.gz"), n // 2, rng)],
    )
    add(
        "diag/xstest",
        None,
        [("", r["prompt"]) for r in _sample(_read(data, "safety_xstest.jsonl.gz"), n // 2, rng)],
    )
    return cases


def embed_cached(embedder, texts: list[str], cache: Path | None) -> np.ndarray:
    """Embed ``texts``; with ``cache``, reuse vectors stored by text hash from earlier runs."""
    keys = [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts]
    stored: dict[str, np.ndarray] = {}
    if cache is not None and cache.exists():
        z = np.load(cache, allow_pickle=False)
        stored = dict(zip(z["keys"].tolist(), z["vecs"], strict=True))
    todo = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in stored}.items())
    if todo:
        t0 = time.perf_counter()
        vecs = embedder.embed([t for _, t in todo])
        log.info("embedded %d texts in %.1fs", len(todo), time.perf_counter() - t0)
        stored.update(zip([k for k, _ in todo], vecs, strict=True))
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, keys=np.array(list(stored)), vecs=np.stack(list(stored.values())))
    return np.stack([stored[k] for k in keys]).astype(np.float32)


def score(cases: list[dict], covered: list[str], high_value: set[str]) -> dict:
    """Per-area P/R/F1 (with and without organic negatives), macro-F1, organic shares."""
    tp, fn, fp, fp_org = Counter(), Counter(), Counter(), Counter()
    org_pred, org_n = Counter(), 0
    for c in cases:
        if c["truth"] == "organic":
            org_n += len(c["pred"])
            org_pred.update(c["pred"])
            for p in c["pred"]:
                if p in EXTRACTION_AREAS:
                    fp_org[p] += 1
        elif c["truth"] is not None:
            for p in c["pred"]:
                if p == c["truth"]:
                    tp[p] += 1
                else:
                    fn[c["truth"]] += 1
                    fp[p] += 1

    def prf(t, f_pos, f_neg):
        prec = t / (t + f_pos) if t + f_pos else 0.0
        rec = t / (t + f_neg) if t + f_neg else 0.0
        return prec, rec, (2 * prec * rec / (prec + rec) if prec + rec else 0.0)

    per_area = {}
    for a in covered:
        p0, _, f0 = prf(tp[a], fp[a], fn[a])
        p1, r1, f1 = prf(tp[a], fp[a] + fp_org[a], fn[a])
        per_area[a] = {
            "precision": p1,
            "recall": r1,
            "f1": f1,
            "support": tp[a] + fn[a],
            "precision_sweep_sets_only": p0,
            "f1_sweep_sets_only": f0,
            "organic_fp": fp_org[a],
        }
    hv = sum(v for k, v in org_pred.items() if k in high_value)
    ext = sum(v for k, v in org_pred.items() if k in EXTRACTION_AREAS)
    return {
        "per_area": per_area,
        "macro_f1": float(np.mean([v["f1"] for v in per_area.values()])),
        "macro_f1_sweep_sets_only": float(np.mean([v["f1_sweep_sets_only"] for v in per_area.values()])),
        "organic_rows": org_n,
        "organic_high_value_share": hv / org_n if org_n else 0.0,
        "organic_extraction_area_share": ext / org_n if org_n else 0.0,
        "organic_labels": dict(org_pred.most_common()),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--n", type=int, default=150, help="rows sampled per set (default 150)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("reports/bench/eval_capabilities.json"))
    ap.add_argument("--taxonomy", type=Path, default=None, help="taxonomy file (default: packaged)")
    ap.add_argument("--min-similarity", type=float, default=None)
    ap.add_argument("--margin", type=float, default=None)
    ap.add_argument("--k", type=int, default=None)
    ap.add_argument("--cache", type=Path, default=None, help="npz cache of vectors (speeds up re-runs)")
    ap.add_argument("--show-errors", type=int, default=0, help="print N misassigned prompts per case")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not args.data.is_dir():
        print(f"error: data folder not found: {args.data} (pass --data)", file=sys.stderr)
        return 2

    cases = build_cases(args.data, args.n, args.seed)
    embedder = load_embedder()
    kw = {
        k: v
        for k, v in (("min_similarity", args.min_similarity), ("margin", args.margin), ("k", args.k))
        if v is not None
    }
    tax = Taxonomy.load(args.taxonomy) if args.taxonomy else Taxonomy.load()
    assigner = CapabilityAssigner(taxonomy=tax, embedder=embedder, **kw).fit()
    systems = [s for c in cases for s, _ in c["rows"]]
    prompts = [p for c in cases for _, p in c["rows"]]
    t0 = time.perf_counter()
    vecs = embed_cached(
        embedder, [embed_text(s, p) for s, p in zip(systems, prompts, strict=True)], args.cache
    )
    t1 = time.perf_counter()
    areas, scores, markers = assigner.predict(systems, prompts, vecs)
    t2 = time.perf_counter()
    pos = 0
    for c in cases:
        m = len(c["rows"])
        c["pred"], c["markers"] = list(areas[pos : pos + m]), list(markers[pos : pos + m])
        pos += m

    covered = sorted({c["truth"] for c in cases if c["truth"] not in (None, "organic")})
    res = score(cases, covered, set(tax.high_value_ids))
    labels = [a for a in tax.ids]
    print(f"\n{'case':38s} {'n':>4s} {'acc':>5s} {'marker':>6s}  predicted areas")
    case_out = []
    for c in cases:
        cnt = Counter(c["pred"])
        n = len(c["pred"])
        if c["truth"] == "organic":
            acc = sum(v for k, v in cnt.items() if k not in EXTRACTION_AREAS) / n
        elif c["truth"]:
            acc = cnt[c["truth"]] / n
        else:
            acc = float("nan")
        mk = sum(1 for x in c["markers"] if x) / n
        dist = ", ".join(f"{k} {v}" for k, v in cnt.most_common(5))
        print(f"{c['name']:38s} {n:4d} {acc:5.2f} {mk:6.2f}  {dist}")
        case_out.append(
            {
                "case": c["name"],
                "truth": c["truth"],
                "n": n,
                "accuracy": acc,
                "marker_share": mk,
                "predicted": dict(cnt.most_common()),
                "markers": dict(Counter(x for x in c["markers"] if x).most_common()),
            }
        )
        if args.show_errors and c["truth"]:
            bad = [
                i
                for i, p in enumerate(c["pred"])
                if (p in EXTRACTION_AREAS if c["truth"] == "organic" else p != c["truth"])
            ]
            for i in bad[: args.show_errors]:
                s, p = c["rows"][i]
                print(f"    -> {c['pred'][i]:18s} {p[:150]!r}" + (f" [system {s[:60]!r}]" if s else ""))

    print(f"\n{'area':20s} {'prec':>6s} {'rec':>6s} {'f1':>6s} {'support':>8s} {'org_fp':>7s}")
    for a, v in res["per_area"].items():
        print(
            f"{a:20s} {v['precision']:6.3f} {v['recall']:6.3f} {v['f1']:6.3f} {v['support']:8d} {v['organic_fp']:7d}"
        )
    print(
        f"\nmacro-F1 (organic rows as negatives): {res['macro_f1']:.3f}   "
        f"(labelled sweep sets only: {res['macro_f1_sweep_sets_only']:.3f})"
    )
    print(
        f"organic rows labelled a high-value area: {res['organic_high_value_share']:.3f}; "
        f"an extraction-shaped area: {res['organic_extraction_area_share']:.3f}  ({res['organic_labels']})"
    )

    # confusion table: labelled cases (truth) x predicted area
    conf = {}
    for c in cases:
        if c["truth"] is None:
            continue
        row = conf.setdefault(c["truth"], Counter())
        row.update(c["pred"])
    print("\nconfusion (rows: truth, columns: predicted)")
    short = [lb[:8] for lb in labels]
    print(f"{'':20s}" + "".join(f"{s:>9s}" for s in short))
    for t, row in conf.items():
        print(f"{t:20s}" + "".join(f"{row.get(lb, 0):9d}" for lb in labels))

    out = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "n_per_set": args.n,
        "seed": args.seed,
        "model": getattr(embedder, "name", "?"),
        "params": {"min_similarity": assigner.min_similarity, "margin": assigner.margin, "k": assigner.k},
        "n_texts": len(prompts),
        "embed_seconds": t1 - t0,
        "assign_seconds": t2 - t1,
        **res,
        "cases": case_out,
        "confusion": {t: dict(row) for t, row in conf.items()},
    }
    write_json(args.out, out)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
