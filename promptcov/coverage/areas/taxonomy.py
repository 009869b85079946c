"""Capability taxonomy and the assignment of each prompt to one capability area.

A distillation campaign concentrates its volume in a few valuable capability areas (reasoning
traces, reward-model grades, tool calls, agent trajectories, censorship-safe rewrites...), while
organic traffic spreads over a long tail of everyday topics. Naming the area of every prompt is
what lets the coverage metrics ask "how much of this account's traffic sits in high-value areas,
and how systematically does it cover them?".

The taxonomy is a TOML file (``taxonomy.toml`` next to this module; format described at its top).
Each area has a description, exemplar prompts, optional marker rules
(:mod:`promptcov.coverage.areas.markers`) and its weight in the accounts' ``high_value_share``
(:meth:`Taxonomy.high_value_weights`). The assigner that uses it lives in
:mod:`promptcov.coverage.areas.assigner`; the TOML stays the user's extension point: a deployment's
file adds areas (their exemplars join the assigner's training data) or overrides weights.

>>> tax = default_taxonomy()
>>> "computer_use" in tax.ids, tax.high_value_weights()["math_reasoning"]
(True, 0.5)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from promptcov.coverage.areas.markers import Marker, first_decisive
from promptcov.errors import InputError

__all__ = [
    "DEFAULT_TAXONOMY",
    "OTHER",
    "Area",
    "Taxonomy",
    "cot_marker",
    "default_taxonomy",
]

log = logging.getLogger(__name__)

#: The taxonomy file that ships inside the package.
DEFAULT_TAXONOMY = Path(__file__).with_name("taxonomy.toml")
#: The fallback area: assigned when nothing fits; it has no exemplars and no markers.
OTHER = "other"

_TOP_KEYS = {"version", "areas"}
_AREA_KEYS = {
    "description", "high_value", "high_value_weight", "priority", "min_similarity", "min_probability", "exemplars",
    "markers"
}
_MARKER_KEYS = {"name", "pattern", "scope", "requires", "excludes", "boost"}
_ID = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Area:
    """One capability area: ``markers`` are :class:`~promptcov.coverage.areas.markers.Marker` rules."""

    id: str
    description: str
    exemplars: tuple[str, ...] = ()
    markers: tuple[Marker, ...] = ()
    high_value: bool = False
    priority: int = 0
    min_similarity: float | None = None
    high_value_weight: float | None = None
    min_probability: float | None = None

    @property
    def weight(self) -> float:
        """Weight in ``high_value_share``: the TOML's, else 1.0 for a high-value area and 0.0 otherwise."""
        if self.high_value_weight is not None:
            return float(self.high_value_weight)
        return 1.0 if self.high_value else 0.0


class Taxonomy:
    """The list of capability areas, loaded from TOML (see :meth:`load`)."""

    def __init__(self, areas: Sequence[Area], sources: Sequence[str] = ()):
        self.areas = list(areas)
        self.sources = list(sources)
        ids = [a.id for a in self.areas]
        if len(set(ids)) != len(ids):
            raise InputError(f"taxonomy has duplicate area ids: {ids}")
        by_id = {a.id: a for a in self.areas}
        if OTHER not in by_id:
            raise InputError(f"taxonomy must have the fallback area {OTHER!r}")
        if by_id[OTHER].exemplars or by_id[OTHER].markers:
            raise InputError(f"the fallback area {OTHER!r} must have no exemplars and no markers")
        for a in self.areas:
            if a.id != OTHER and not a.exemplars and not a.markers:
                raise InputError(
                    f"taxonomy area {a.id!r} has neither exemplars nor markers: it can never be assigned"
                )
        if not any(a.exemplars for a in self.areas):
            raise InputError("taxonomy has no exemplars at all")
        self._by_id = by_id

    @property
    def ids(self) -> list[str]:
        return [a.id for a in self.areas]

    @property
    def high_value_ids(self) -> list[str]:
        return [a.id for a in self.areas if a.high_value]

    def high_value_weights(self) -> dict[str, float]:
        """Area id -> weight of a request there in ``high_value_share`` (areas of weight 0 left out)."""
        return {a.id: a.weight for a in self.areas if a.weight > 0}

    def area(self, area_id: str) -> Area:
        try:
            return self._by_id[area_id]
        except KeyError:
            raise InputError(f"unknown capability area {area_id!r}; known: {', '.join(self.ids)}") from None

    def markers(self, decisive: bool | None = None) -> list[Marker]:
        """All markers in precedence order (area priority, highest first; then file order)."""
        order = sorted(range(len(self.areas)), key=lambda i: (-self.areas[i].priority, i))
        out = [m for i in order for m in self.areas[i].markers]
        if decisive is None:
            return out
        return [m for m in out if m.decisive == decisive]

    def match(self, system: str | None, prompt: str | None) -> list[Marker]:
        """Every marker that fires on one request, in precedence order."""
        from promptcov.coverage.areas.markers import fired_markers

        return fired_markers(self.markers(), system, prompt)

    @classmethod
    def load(cls, path: str | Path | None = None, extra: Sequence[str | Path] | None = ()) -> Taxonomy:
        """Load the taxonomy at ``path`` (default: the packaged one) and merge ``extra`` files.

        An extra file uses the same layout. It may add new areas (``description`` required) or, for
        an existing area, append exemplars, add markers (a marker with the same name replaces the
        old one) and override ``description``/``high_value``/``priority``. Unknown keys, wrong
        types, bad regexes and malformed TOML raise :class:`~promptcov.errors.InputError` naming
        the file and the key.
        """
        base = Path(path) if path is not None else DEFAULT_TAXONOMY
        merged: dict[str, dict] = {}
        sources = []
        for i, p in enumerate([base, *[Path(e) for e in (extra or ())]]):
            _merge(merged, _read(p), str(p), first=(i == 0))
            sources.append(str(p))
        areas = []
        for aid, spec in merged.items():
            if "description" not in spec:
                raise InputError(f"{spec['_source']}: area {aid!r} needs a 'description'")
            areas.append(
                Area(
                    id=aid,
                    description=spec["description"],
                    exemplars=tuple(spec["exemplars"]),
                    markers=tuple(spec["markers"].values()),
                    high_value=spec["high_value"],
                    priority=spec["priority"],
                    min_similarity=spec["min_similarity"],
                    high_value_weight=spec["high_value_weight"],
                    min_probability=spec["min_probability"],
                )
            )
        tax = cls(areas, sources)
        log.debug("taxonomy loaded from %s: %d areas", sources, len(areas))
        return tax


def _read(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise InputError(f"taxonomy file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"taxonomy file {path} is not valid TOML: {exc}") from None


def _unknown(keys, allowed, src: str, where: str) -> None:
    bad = sorted(set(keys) - allowed)
    if bad:
        raise InputError(
            f"taxonomy file {src}: unknown key {where}{bad[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def _str_list(value, src: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InputError(f"taxonomy file {src}: {where} must be a list of non-empty strings")
    return list(value)


def _marker(aid: str, raw, src: str, i: int) -> Marker:
    where = f"areas.{aid}.markers[{i}]"
    if not isinstance(raw, dict):
        raise InputError(f"taxonomy file {src}: {where} must be a table")
    _unknown(raw, _MARKER_KEYS, src, f"{where}.")
    for key in ("name", "pattern"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise InputError(f"taxonomy file {src}: {where}.{key} must be a non-empty string")
    boost = raw.get("boost")
    if boost is not None and (isinstance(boost, bool) or not isinstance(boost, (int, float))):
        raise InputError(f"taxonomy file {src}: {where}.boost must be a number")
    try:
        return Marker(
            name=raw["name"],
            area=aid,
            pattern=raw["pattern"],
            scope=raw.get("scope", "any"),
            requires=tuple(_str_list(raw.get("requires", []), src, f"{where}.requires")),
            excludes=tuple(_str_list(raw.get("excludes", []), src, f"{where}.excludes")),
            boost=None if boost is None else float(boost),
        )
    except ValueError as exc:
        raise InputError(f"taxonomy file {src}: {where}: {exc}") from None


def _merge(merged: dict[str, dict], data: dict, src: str, first: bool) -> None:
    _unknown(data, _TOP_KEYS, src, "")
    if "version" in data and data["version"] != 1:
        raise InputError(f"taxonomy file {src}: version {data['version']!r} is not supported (expected 1)")
    areas = data.get("areas", {})
    if not isinstance(areas, dict) or (first and not areas):
        raise InputError(f"taxonomy file {src}: 'areas' must be a table of areas ([areas.<id>])")
    for aid, raw in areas.items():
        if not _ID.match(aid):
            raise InputError(f"taxonomy file {src}: area id {aid!r} must match {_ID.pattern}")
        if not isinstance(raw, dict):
            raise InputError(f"taxonomy file {src}: areas.{aid} must be a table")
        _unknown(raw, _AREA_KEYS, src, f"areas.{aid}.")
        spec = merged.setdefault(
            aid,
            {
                "exemplars": [],
                "markers": {},
                "high_value": False,
                "priority": 0,
                "min_similarity": None,
                "high_value_weight": None,
                "min_probability": None,
                "_source": src,
            },
        )
        if "description" in raw:
            if not isinstance(raw["description"], str) or not raw["description"].strip():
                raise InputError(f"taxonomy file {src}: areas.{aid}.description must be a non-empty string")
            spec["description"] = raw["description"].strip()
        if "high_value" in raw:
            if not isinstance(raw["high_value"], bool):
                raise InputError(f"taxonomy file {src}: areas.{aid}.high_value must be true or false")
            spec["high_value"] = raw["high_value"]
        if "priority" in raw:
            if isinstance(raw["priority"], bool) or not isinstance(raw["priority"], int):
                raise InputError(f"taxonomy file {src}: areas.{aid}.priority must be an integer")
            spec["priority"] = raw["priority"]
        for key, lo, hi in (("min_similarity", -1.0, 1.0), ("min_probability", 0.0, 1.0),
                            ("high_value_weight", 0.0, 100.0)):
            if key in raw:
                v = raw[key]
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                    raise InputError(
                        f"taxonomy file {src}: areas.{aid}.{key} must be a number in [{lo:g}, {hi:g}]"
                    )
                spec[key] = float(v)
        for ex in _str_list(raw.get("exemplars", []), src, f"areas.{aid}.exemplars"):
            if ex not in spec["exemplars"]:
                spec["exemplars"].append(ex)
        markers = raw.get("markers", [])
        if not isinstance(markers, list):
            raise InputError(f"taxonomy file {src}: areas.{aid}.markers must be an array of tables")
        for i, m in enumerate(markers):
            mk = _marker(aid, m, src, i)
            spec["markers"][mk.name] = mk


@lru_cache(maxsize=1)
def default_taxonomy() -> Taxonomy:
    """The packaged taxonomy, loaded once per process."""
    return Taxonomy.load()


def cot_marker(system: str | None, prompt: str | None, taxonomy: Taxonomy | None = None) -> bool:
    """True when the request demands the model's reasoning trace (any ``cot_elicitation`` marker).

    Independent of the area finally assigned: a rubric prompt that also asks for step-by-step
    reasoning is ``rubric_grading`` but still carries a CoT demand, which the metrics may count.
    """
    tax = taxonomy or default_taxonomy()
    markers = (
        [replace(m, boost=None) for m in tax.area("cot_elicitation").markers] if taxonomy else _cot_default()
    )
    hit, _ = first_decisive(markers, system, prompt)
    return hit is not None


@lru_cache(maxsize=1)
def _cot_default() -> tuple[Marker, ...]:
    return tuple(replace(m, boost=None) for m in default_taxonomy().area("cot_elicitation").markers)
