"""Development and evaluation halves of the simulator's material, split so that neither sees the other.

The scenario families (:mod:`promptcov.simulate.families`) draw their sweep material from one
*half*: ``"dev"`` (what the detector may be developed and tuned on) or ``"eval"`` (held out until
every weight is frozen). The halves share no text:

* **Tasks and organic prompts** -- every real prompt set (``--data``) and every corpus task file
  -- are split record by record by a stable hash of the prompt text (:func:`half_of`): the same
  record always falls in the same half, whatever the seed, the sample or the machine.
* **Scaffolds** are composed from *intents* (``promptcov/data/corpus/families/intents.jsonl``:
  a role, an instruction and a terse form per area, written for this project) rendered in
  seven styles (instruction prefix, system-prompt role, XML, JSON, markdown, terse API-style,
  conversational). Each style has two wordings, one per half, and the intents of an area are
  dealt to the halves by hash order (balanced), so an evaluation scaffold shares neither its
  instruction nor its wrapper text with any development scaffold.
* The project's original scaffolds (``scaffolds.jsonl``), on which the detector was built, are
  development material only.

Hard-negative material (product system prompts, the coding tool, batch templates) is shared by
both halves: it is benign traffic, not what a detector learns a sweep from.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from pathlib import Path

from promptcov.errors import InputError
from promptcov.simulate.corpus import Prompt, PromptPools, Scaffold, default_corpus_dir

__all__ = [
    "SPLITS",
    "STYLES",
    "half_of",
    "split_pools",
    "family_dir",
    "load_intents",
    "family_scaffolds",
    "computer_use_tasks",
]

log = logging.getLogger(__name__)

SPLITS = ("dev", "eval")
#: The styles a scaffold is written in.
STYLES = ("prefix", "system_role", "xml", "json", "markdown", "terse", "conversational")

# (system, template) per style and half; {role}, {ask} and {terse} are replaced before the
# result becomes a Scaffold template (where {task} and the intent's slots are then filled).
_WRAP: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "prefix": (("", "{ask}\n\n{task}"), ("", "{role} {ask}\n---\n{task}")),
    "system_role": (("{role}", "{task}\n\n{ask}"), ("{role}\n\nStanding instruction:", "{ask}\n\nInput follows.\n{task}")),
    "xml": (
        ("", "<instructions>\n{ask}\n</instructions>\n<task>\n{task}\n</task>"),
        ("", "<request>\n  <persona>{role}</persona>\n  <directive>{ask}</directive>\n  <input>{task}</input>\n</request>"),
    ),
    "json": (
        ("", '{{"instruction": "{ask}", "input": "{task}"}}'),
        ("", '{{"spec": {{"persona": "{role}", "goal": "{ask}"}}, "payload": "{task}", "version": 3}}'),
    ),
    "markdown": (
        ("", "### Instruction\n{ask}\n\n### Input\n{task}"),
        ("", "# Job\n\n**Persona:** {role}\n\n**Goal:** {ask}\n\n---\n\n{task}\n\n---"),
    ),
    "terse": (("", "{terse}\n{task}"), ("", "{terse} | in: {task} | eos")),
    "conversational": (
        ("", "Hi! {ask} Here's what I'm working with:\n\n{task}\n\nThanks a lot."),
        ("", "ok so I need a hand with something. {ask}\n\n{task}\n\nlmk if anything's unclear, cheers"),
    ),
}  # fmt: skip


def half_of(text: str) -> str:
    """The half (``"dev"`` or ``"eval"``) a record belongs to: a stable hash of its text."""
    digest = hashlib.sha1(text.strip().encode("utf-8")).digest()
    return SPLITS[digest[0] & 1]


def _check(split: str) -> None:
    if split not in SPLITS:
        raise InputError(f"split must be 'dev' or 'eval', got {split!r}")


def split_pools(pools: PromptPools, split: str) -> PromptPools:
    """A copy of ``pools`` keeping only the tasks, organic and popular prompts of ``split``."""
    _check(split)

    def keep(items: list[Prompt]) -> list[Prompt]:
        return [p for p in items if half_of(p.prompt) == split]

    tasks = {area: kept for area, items in pools.tasks.items() if (kept := keep(items))}
    organic = keep(pools.organic) or list(pools.organic)
    return replace(pools, organic=organic, popular=keep(pools.popular), tasks=tasks)


def family_dir(corpus_dir: Path | None = None) -> Path:
    """Where the family material lives: ``<corpus>/families``."""
    return Path(corpus_dir or default_corpus_dir()) / "families"


def load_intents(corpus_dir: Path | None = None) -> list[dict]:
    """The scaffold intents (``intents.jsonl``), each with its half in ``"half"``."""
    path = family_dir(corpus_dir) / "intents.jsonl"
    if not path.is_file():
        raise InputError(f"{path}: missing; the scenario families need their scaffold intents")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_area: dict[str, list[dict]] = {}
    for r in rows:
        by_area.setdefault(str(r["area"]), []).append(r)
    for items in by_area.values():  # balanced deal by hash order: dev, eval, dev, eval, ...
        items.sort(key=lambda r: hashlib.sha1(str(r["id"]).encode()).hexdigest())
        for i, r in enumerate(items):
            r["half"] = SPLITS[i % 2]
    return rows


def _esc(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def family_scaffolds(split: str, corpus_dir: Path | None = None) -> list[Scaffold]:
    """Every scaffold of ``split``: each intent of that half in each style's wording of that half.

    Scaffold ids are ``<intent id>/<style>``; ``Scaffold.system`` is plain text.
    """
    _check(split)
    h = SPLITS.index(split)
    out = []
    for intent in load_intents(corpus_dir):
        if intent["half"] != split:
            continue
        slots = tuple((str(k), tuple(str(v) for v in vals)) for k, vals in sorted(intent["slots"].items()))
        for style in STYLES:
            system, template = _WRAP[style][h]
            role, ask = str(intent["role"]), str(intent["ask"])
            if style == "json":  # the instruction sits inside a JSON string
                ask = ask.replace('"', "'").replace("\n", "\\n")
                role = role.replace('"', "'")
            tmpl = (template.replace("{role}", _esc(role)).replace("{ask}", ask)
                    .replace("{terse}", str(intent["terse"])))  # fmt: skip
            out.append(Scaffold(f"{intent['id']}/{style}", str(intent["area"]), tmpl,
                                system.replace("{role}", role), slots))  # fmt: skip
    return out


def computer_use_tasks(split: str, corpus_dir: Path | None = None) -> list[Prompt]:
    """The computer-use tasks of ``split`` (``families/tasks_computer_use.jsonl``)."""
    _check(split)
    path = family_dir(corpus_dir) / "tasks_computer_use.jsonl"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            text = str(json.loads(line)["task"])
            if half_of(text) == split:
                out.append(Prompt(text, "computer_use"))
    return out
