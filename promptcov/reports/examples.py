"""Pick the example prompts a group card shows: distinct, and spread over its templates and areas.

A sweep fills one template with its slots varied, often across several templates and areas at
once. Three copies of the same prompt (the same text sent with different system prompts is
stored as different texts) tell a reviewer nothing; one example per template and area shows
what the group is mapping. :func:`pick_examples` therefore

1. groups the candidates into buckets, one per (template, area) pair, largest bucket first;
2. takes one prompt from each bucket in turn (round robin), most-sent prompt first;
3. skips a prompt whose normalised text (Unicode NFKC, case-folded, whitespace collapsed,
   trailing punctuation dropped) was already picked.

>>> pick_examples([], [("T1", "coding", "Fix bug 1", 5), ("T1", "coding", "fix  bug 1.", 4),
...                    ("T2", "tool_use", "Call tool 7", 3)], k=3)
['Fix bug 1', 'Call tool 7']
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Sequence

__all__ = ["pick_examples", "normalise_text", "N_EXAMPLES"]

#: example prompts shown per group
N_EXAMPLES = 3
_TRAILING = " \t.,;:!?…"


def normalise_text(text: str) -> str:
    """The form two prompts are compared in: NFKC, case-folded, whitespace collapsed, no trailing punctuation."""
    flat = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return flat.rstrip(_TRAILING)


def pick_examples(
    evidence: Sequence[str],
    candidates: Iterable[tuple[str | None, str | None, str, int]],
    k: int = N_EXAMPLES,
    show: Callable[[str], str] = str,
) -> list[str]:
    """Up to ``k`` distinct example prompts, as ``show`` renders them (e.g. redacted and clipped).

    ``candidates`` are ``(template_id, area, prompt, requests)`` rows of the group's traffic;
    ``evidence`` are the examples the score run recorded. An evidence example found among the
    candidates joins its bucket (ahead of the others there); one that is not forms a bucket of
    its own, placed first. Distinctness is judged on the *shown* text, so two prompts that differ
    only in a redacted key or past the clipping limit count as one.
    """
    buckets: dict[tuple[str, str], list[tuple[int, str]]] = {}
    where: dict[str, tuple[str, str]] = {}
    for tpl, area, prompt, n in candidates:
        key = (tpl or "", area or "")
        buckets.setdefault(key, []).append((int(n), prompt))
        where.setdefault(prompt, key)
    order = sorted(buckets, key=lambda b: (-sum(n for n, _ in buckets[b]), b))
    queues = {b: [p for _, p in sorted(buckets[b], key=lambda x: (-x[0], x[1]))] for b in order}
    orphan = [e for e in evidence if isinstance(e, str) and e not in where]
    for e in reversed([e for e in evidence if isinstance(e, str) and e in where]):
        queues[where[e]].insert(0, e)
    lanes = ([orphan] if orphan else []) + [queues[b] for b in order]
    out: list[str] = []
    seen: set[str] = set()
    depth = 0
    while len(out) < k and any(depth < len(lane) for lane in lanes):
        for lane in lanes:
            if depth < len(lane) and len(out) < k:
                shown = show(lane[depth])
                key = normalise_text(shown)
                if key and key not in seen:
                    seen.add(key)
                    out.append(shown)
        depth += 1
    return out
