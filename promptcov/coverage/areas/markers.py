"""Marker rules: cheap, explicit regexes about the *shape* of a request.

An embedding of the first 128 tokens sees what a prompt is about. It does not see what a sweep
wraps around it: a system prompt that demands the full reasoning trace, a rubric with a score
scale at the end of a long judge prompt, JSON tool schemas, image parts, an instruction to make a
text acceptable to censors. Those wrappers are what a campaign harvests, and they are regular:
one scaffold, thousands of tasks. A marker is a named regex for one such wrapper, applied to the
full system and/or prompt text (head and tail of very long texts, where scaffolds sit).

A marker fires when its ``pattern`` matches somewhere in its scope, every regex in ``requires``
also matches somewhere in that scope, and no regex in ``excludes`` does. All regexes are
case-insensitive and multi-line (``^`` matches at each line start). A marker with ``boost`` is
soft: it adds ``boost`` to its area's similarity instead of deciding the area.

>>> m = Marker(name="step", area="cot_elicitation", pattern=r"\\bthink\\b.{0,20}step by step")
>>> m.matches("", "Is 91 prime? Let's think it through step by step.")
True
>>> m.full_name
'cot_elicitation:step'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "SCOPES",
    "Marker",
    "clip_text",
    "first_decisive",
    "fired_markers",
    "marker_area",
]

#: Where a marker looks: system and prompt ("any"), the user prompt only, or the system prompt only.
SCOPES = ("any", "prompt", "system")

_FLAGS = re.IGNORECASE | re.MULTILINE
#: Very long texts are matched on their head and tail only: scaffolds are prefixes and suffixes,
#: and this bounds the regex cost per text (about 20 patterns on at most 18k characters).
HEAD_CHARS = 12_000
TAIL_CHARS = 6_000


def clip_text(text: str | None) -> str:
    """The part of ``text`` markers look at: all of it, or its head and tail when very long."""
    if not text:
        return ""
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return text
    return text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:]


def _compile(pattern: str, what: str) -> re.Pattern:
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"{what} must be a non-empty regex string")
    try:
        return re.compile(pattern, _FLAGS)
    except re.error as exc:
        raise ValueError(f"{what} is not a valid regex: {exc}") from exc


@dataclass(frozen=True)
class Marker:
    """One named rule of an area. ``full_name`` (``"area:name"``) is what tables store."""

    name: str
    area: str
    pattern: str
    scope: str = "any"
    requires: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    boost: float | None = None
    _compiled: tuple = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.scope not in SCOPES:
            raise ValueError(f"marker {self.name!r}: scope must be one of {SCOPES}, got {self.scope!r}")
        if self.boost is not None and not (0.0 < float(self.boost) <= 1.0):
            raise ValueError(f"marker {self.name!r}: boost must be in (0, 1], got {self.boost!r}")
        main = _compile(self.pattern, f"marker {self.name!r} pattern")
        req = tuple(_compile(p, f"marker {self.name!r} requires") for p in self.requires)
        exc = tuple(_compile(p, f"marker {self.name!r} excludes") for p in self.excludes)
        object.__setattr__(self, "requires", tuple(self.requires))
        object.__setattr__(self, "excludes", tuple(self.excludes))
        object.__setattr__(self, "_compiled", (main, req, exc))

    @property
    def full_name(self) -> str:
        return f"{self.area}:{self.name}"

    @property
    def decisive(self) -> bool:
        """True when the marker decides the area (no ``boost``)."""
        return self.boost is None

    def _texts(self, system: str, prompt: str) -> tuple[str, ...]:
        if self.scope == "prompt":
            return (prompt,)
        if self.scope == "system":
            return (system,)
        return (prompt, system)

    def matches(self, system: str | None, prompt: str | None, clipped: bool = False) -> bool:
        """Does the rule fire on this request? Pass ``clipped=True`` when texts went through
        :func:`clip_text` already (the assigner clips once per request, not once per marker)."""
        if not clipped:
            system, prompt = clip_text(system), clip_text(prompt)
        texts = [t for t in self._texts(system or "", prompt or "") if t]
        if not texts:
            return False
        main, req, exc = self._compiled
        if not any(main.search(t) for t in texts):
            return False
        if not all(any(r.search(t) for t in texts) for r in req):
            return False
        return not any(x.search(t) for x in exc for t in texts)


def fired_markers(markers: Iterable[Marker], system: str | None, prompt: str | None) -> list[Marker]:
    """All markers of ``markers`` that fire on one request, in the given order."""
    s, p = clip_text(system), clip_text(prompt)
    return [m for m in markers if m.matches(s, p, clipped=True)]


def first_decisive(
    ordered: Sequence[Marker], system: str | None, prompt: str | None, soft: Sequence[Marker] = ()
) -> tuple[Marker | None, list[Marker]]:
    """The first decisive marker of ``ordered`` (precedence order) that fires, else the soft
    markers of ``soft`` that fire. Stops at the first decisive hit, so cheap on long logs."""
    s, p = clip_text(system), clip_text(prompt)
    for m in ordered:
        if m.matches(s, p, clipped=True):
            return m, []
    return None, [m for m in soft if m.matches(s, p, clipped=True)]


def marker_area(full_name: str | None) -> str | None:
    """The area id of a stored marker name (``"cot_elicitation:show_reasoning"`` -> ``"cot_elicitation"``)."""
    if not full_name:
        return None
    return str(full_name).split(":", 1)[0]
