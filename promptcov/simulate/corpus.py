"""Prompt pools for the simulator: real public prompt sets, or the committed sample corpus.

The simulator needs text of several kinds, and this module gathers it into one
:class:`PromptPools` object:

* **organic** prompts (ordinary users: long tail of topics, some with follow-up turns) and
  **popular** public prompts that many unrelated users paste;
* campaign **tasks** per capability area (the base items a sweep wraps in a scaffold) and the
  sweep **scaffolds** themselves (``{task}`` templates with optional ``{slot}`` values);
* hard-negative material: product system prompts, a coding tool's system prompt and requests,
  nightly batch templates and the short texts they are applied to.

Two sources. With ``data_dir`` (e.g. ``../shared/data``) the real gzipped JSONL sets are read
by their ``category`` field, streamed and reservoir-sampled with the seed (so memory is capped).
Without it, the committed sample corpus in ``promptcov/data/corpus/`` is read (format in
``docs/DESIGN.md``). Scaffolds and hard-negative material always come from the corpus folder,
because the public sets have none; in data mode the corpus also fills capability areas the sets
lack (data analysis, computer vision). Missing optional files give empty pools, not errors; the
scenario skips what it cannot build and says so in the log.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from promptcov.errors import InputError

__all__ = ["Prompt", "Scaffold", "ProductSystem", "PromptPools", "load_pools", "default_corpus_dir"]

log = logging.getLogger(__name__)

_SLOT_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

#: Data-set ``category`` -> capability area of the campaign task pool it feeds.
_TASK_CATEGORIES = {
    "cot_elicitation": "cot_elicitation",
    "rubric_grading": "rubric_grading",
    "censorship_probe": "censorship_rewrite",
    "censorship_rewrite": "censorship_rewrite",
    "agentic_coding": "agentic_coding",
    "tool_use": "tool_use",
    "code": "coding",
    "coding": "coding",
    "math_reasoning": "math_reasoning",
    "general_instruction": "general_instruction",
    "data_analysis": "data_analysis",
    "computer_vision": "computer_vision",
}
#: Categories whose sets are split: a share goes to organic users of that kind.
_SHARED_CATEGORIES = {
    "code": "coding",
    "math_reasoning": "math_reasoning",
    "general_instruction": "general_chat",
}
_ORGANIC_SHARE = 0.4


@dataclass(frozen=True)
class Prompt:
    """One prompt of a pool. ``complete`` marks a task that is already a full request (a filled
    judge prompt) and is mostly sent as it is rather than wrapped in a scaffold."""

    prompt: str
    category: str = "general_chat"
    system: str = ""
    followups: tuple[str, ...] = ()
    complete: bool = False
    slots: tuple[tuple[str, str], ...] = ()


class _KeepMissing(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass(frozen=True)
class Scaffold:
    """A sweep template: ``template`` holds ``{task}`` and optionally other ``{slot}`` names whose
    values are listed in ``slots``. Filling varies the slots, which is what makes a sweep a
    structured map of the input space rather than a list of unrelated prompts."""

    id: str
    area: str
    template: str
    system: str = ""
    slots: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def uses(self, name: str) -> bool:
        return "{" + name + "}" in self.template

    def fill(self, task: str, rng: np.random.Generator, extra: dict[str, str] | None = None) -> str:
        """The template (``str.format`` syntax, ``{{`` for a literal brace) with ``{task}`` and each
        slot filled: a value the task brings in ``extra`` (e.g. its own tool list) wins over a
        random choice among the scaffold's ``slots``. Unknown slots stay as they are."""
        values = _KeepMissing({name: opts[int(rng.integers(len(opts)))] for name, opts in self.slots if opts})
        values.update(extra or {})
        values["task"] = task
        try:
            text = self.template.format_map(values)
        except (ValueError, IndexError, AttributeError, KeyError):
            text = _SLOT_RE.sub(lambda m: values[m.group(1)], self.template)
        return text if self.uses("task") else f"{text}\n\n{task}"


@dataclass(frozen=True)
class ProductSystem:
    """The fixed system prompt of a product built on the API."""

    id: str
    system: str
    topic: str = ""


@dataclass
class PromptPools:
    """Everything the scenario draws text from (see the module docstring)."""

    organic: list[Prompt] = field(default_factory=list)
    popular: list[Prompt] = field(default_factory=list)
    tasks: dict[str, list[Prompt]] = field(default_factory=dict)
    scaffolds: list[Scaffold] = field(default_factory=list)
    product_systems: list[ProductSystem] = field(default_factory=list)
    coding_systems: list[str] = field(default_factory=list)
    coding_requests: list[Prompt] = field(default_factory=list)
    batch_jobs: list[tuple[str, str, str]] = field(default_factory=list)
    batch_texts: list[str] = field(default_factory=list)
    batch_text_kinds: list[str] = field(default_factory=list)
    followups: list[str] = field(default_factory=list)
    source: str = "corpus"

    def scaffolds_for(self, area: str) -> list[Scaffold]:
        return [s for s in self.scaffolds if s.area == area]

    def texts_for(self, kind: str, min_count: int = 20) -> list[str]:
        """Batch texts of ``kind`` (e.g. ``review``), or all of them when too few match."""
        picked = [t for t, k in zip(self.batch_texts, self.batch_text_kinds, strict=False) if k == kind]
        return picked if len(picked) >= min_count else list(self.batch_texts)

    def summary(self) -> dict[str, int]:
        """Pool sizes, for scenario.json and logging."""
        out = {
            "organic": len(self.organic),
            "popular": len(self.popular),
            "scaffolds": len(self.scaffolds),
            "product_systems": len(self.product_systems),
            "coding_requests": len(self.coding_requests),
            "batch_jobs": len(self.batch_jobs),
            "batch_texts": len(self.batch_texts),
            "followups": len(self.followups),
        }
        out.update({f"tasks_{k}": len(v) for k, v in sorted(self.tasks.items())})
        return out


def default_corpus_dir() -> Path:
    """The committed sample corpus, ``promptcov/data/corpus/``."""
    import promptcov

    return Path(promptcov.__file__).parent / "data" / "corpus"


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        log.info("corpus file %s is missing; its pool stays empty", path)
        return []
    out = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"{path}:{lineno}: not valid JSON ({exc.msg}); fix or remove the line"
                ) from exc
            if isinstance(obj, dict):
                out.append(obj)
    return out


def _prompt(obj: dict, category: str | None = None, complete: bool = False) -> Prompt | None:
    """A pool item from a corpus or data record (``prompt`` or ``task`` text; ``meta`` strings
    become slot values a scaffold may use, such as a task's own tool list)."""
    text = obj.get("prompt", obj.get("task"))
    if not isinstance(text, str) or not text.strip():
        return None
    fups = obj.get("followups") or ()
    meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
    slots = {str(k): v for k, v in meta.items() if isinstance(v, str) and v}
    system = str(obj.get("system") or "")
    if system and "tools" not in slots and (category or obj.get("category")) == "tool_use":
        slots["tools"] = system
    return Prompt(
        prompt=text,
        category=str(category or obj.get("category") or obj.get("area") or "general_chat"),
        system=system,
        followups=tuple(f for f in fups if isinstance(f, str) and f.strip()),
        complete=complete,
        slots=tuple(sorted(slots.items())),
    )


def _stream_sample(path: Path, cap: int, rng: np.random.Generator) -> list[dict]:
    """Reservoir-sample at most ``cap`` records of a gzipped JSONL file, in file order."""
    keep: list[tuple[int, dict]] = []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s:%d: skipping a line that is not JSON", path, i + 1)
                continue
            if (
                not isinstance(obj, dict)
                or not isinstance(obj.get("prompt"), str)
                or not obj["prompt"].strip()
            ):
                continue
            if len(keep) < cap:
                keep.append((i, obj))
            else:
                j = int(rng.integers(i + 1))
                if j < cap:
                    keep[j] = (i, obj)
    keep.sort(key=lambda t: t[0])
    return [obj for _, obj in keep]


def _guess_area(text: str) -> str:
    """A coarse topic for a real organic prompt, so that organic users can have favourite topics."""
    low = text.lower()
    if "```" in text or re.search(
        r"\b(python|javascript|sql|function|code|bug|compile|regex|java|html)\b", low
    ):
        return "coding"
    if re.search(r"\b(poem|story|essay|lyrics|song|blog post|rewrite|article)\b", low):
        return "creative_writing"
    if re.search(r"\d", low) and re.search(r"\b(how many|how much|calculate|solve|equation|percent)\b", low):
        return "math_reasoning"
    if re.search(r"\b(data|dataset|excel|csv|chart|statistics|table)\b", low):
        return "data_analysis"
    return "general_chat"


def _load_corpus(corpus_dir: Path, pools: PromptPools, data_mode: bool) -> None:
    organic = [p for o in _read_jsonl(corpus_dir / "organic.jsonl") if (p := _prompt(o))]
    pools.followups.extend(f for p in organic for f in p.followups)
    for o in _read_jsonl(corpus_dir / "scaffolds.jsonl"):
        tmpl, sid, area = o.get("template"), o.get("id"), o.get("area")
        if not isinstance(tmpl, str) or not tmpl.strip() or not area:
            continue
        slots = o.get("slots") or {}
        slot_items = tuple(
            (str(k), tuple(str(v) for v in vals))
            for k, vals in sorted(slots.items())
            if isinstance(vals, list) and vals
        )
        pools.scaffolds.append(
            Scaffold(
                str(sid or f"scaffold-{len(pools.scaffolds)}"),
                str(area),
                tmpl,
                str(o.get("system") or ""),
                slot_items,
            )
        )
    for o in _read_jsonl(corpus_dir / "product_systems.jsonl"):
        if isinstance(o.get("system"), str) and o["system"].strip():
            pools.product_systems.append(
                ProductSystem(str(o.get("id") or ""), o["system"], str(o.get("topic") or ""))
            )
    for o in _read_jsonl(corpus_dir / "coding_tool.jsonl"):
        if isinstance(o.get("prompt"), str):
            if p := _prompt(o, category="coding"):
                pools.coding_requests.append(Prompt(p.prompt, "coding", "", p.followups))
        elif isinstance(o.get("system"), str) and o["system"].strip():
            pools.coding_systems.append(o["system"])
    for o in _read_jsonl(corpus_dir / "batch_jobs.jsonl"):
        if isinstance(o.get("template"), str) and "{text}" in o["template"]:
            job_id = str(o.get("id") or f"batch-{len(pools.batch_jobs)}")
            pools.batch_jobs.append((job_id, o["template"], str(o.get("text_kind") or "")))
    task_files = sorted(corpus_dir.glob("tasks_*.jsonl")) if corpus_dir.is_dir() else []
    for path in task_files:
        area = path.stem[len("tasks_") :]
        if data_mode and area in pools.tasks:
            continue  # the real set wins over the sample
        items = [p for o in _read_jsonl(path) if (p := _prompt(o, category=area))]
        if items:
            pools.tasks[area] = items
    if not data_mode:
        pools.organic.extend(organic)
        pools.popular.extend(p for o in _read_jsonl(corpus_dir / "popular.jsonl") if (p := _prompt(o)))
        for o in _read_jsonl(corpus_dir / "batch_texts.jsonl"):
            if isinstance(o.get("text"), str) and o["text"].strip():
                pools.batch_texts.append(o["text"])
                pools.batch_text_kinds.append(str(o.get("kind") or ""))


def _load_data(data_dir: Path, pools: PromptPools, rng: np.random.Generator, cap: int) -> None:
    files = sorted(data_dir.glob("*.jsonl.gz"))
    if not files:
        raise InputError(f"{data_dir}: no *.jsonl.gz prompt sets found; pass the folder that holds them")
    for path in files:
        records = _stream_sample(path, cap, rng)
        if not records:
            continue
        cat = str(records[0].get("category") or "")
        if cat == "organic":
            target = pools.popular if "awesome" in path.name else pools.organic
            for o in records:
                if p := _prompt(o, category=_guess_area(o["prompt"])):
                    target.append(p)
            if target is pools.organic:
                pools.batch_texts.extend(o["prompt"] for o in records if 40 <= len(o["prompt"]) <= 320)
        elif cat == "rubric_grading" and "template" in path.name:
            continue  # unfilled judge templates are reference, not traffic
        elif cat in _TASK_CATEGORIES:
            area = _TASK_CATEGORIES[cat]
            order = rng.permutation(len(records))
            n_org = int(round(_ORGANIC_SHARE * len(records))) if cat in _SHARED_CATEGORIES else 0
            for rank, idx in enumerate(order):
                o = records[int(idx)]
                if rank < n_org:
                    if p := _prompt(o, category=_SHARED_CATEGORIES[cat]):
                        pools.organic.append(p)
                elif p := _prompt(o, category=area, complete=(cat == "rubric_grading")):
                    pools.tasks.setdefault(area, []).append(p)
            if cat == "general_instruction":  # instruction inputs are short real texts
                for o in records:
                    head, sep, tail = o["prompt"].partition("\n\n")
                    if sep and 40 <= len(tail) <= 320:
                        pools.batch_texts.append(tail)
        else:
            log.info("%s: category %r is not used by the simulator", path.name, cat)


def load_pools(
    data_dir: Path | None, seed: int = 0, corpus_dir: Path | None = None, cap: int = 6000
) -> PromptPools:
    """Load the prompt pools from ``data_dir`` (real sets) or the sample corpus.

    ``corpus_dir`` overrides the committed corpus location (tests pass a tiny one). ``cap`` bounds
    the records kept per data file. Raises :class:`InputError` when no organic prompts or no
    scaffolds can be found, since no scenario can be built without them.
    """
    rng = np.random.default_rng([seed, 7411])
    corpus_dir = Path(corpus_dir) if corpus_dir is not None else default_corpus_dir()
    pools = PromptPools(source="data" if data_dir is not None else "corpus")
    if data_dir is not None:
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            raise InputError(f"--data {data_dir}: no such folder")
        _load_data(data_dir, pools, rng, cap)
    _load_corpus(corpus_dir, pools, data_mode=data_dir is not None)
    if not pools.organic:
        raise InputError(f"no organic prompts found in {data_dir or corpus_dir}; the simulator needs some")
    if not pools.scaffolds:
        raise InputError(
            f"{corpus_dir / 'scaffolds.jsonl'}: no sweep scaffolds found; the simulator needs them"
        )
    if not pools.batch_texts:
        pools.batch_texts = [p.prompt for p in pools.organic if 40 <= len(p.prompt) <= 320]
    if len(pools.batch_text_kinds) != len(pools.batch_texts):
        pools.batch_text_kinds = [""] * len(pools.batch_texts)
    log.info("prompt pools (%s): %s", pools.source, pools.summary())
    return pools
