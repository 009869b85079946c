"""Capability taxonomy and the assignment of each prompt to one capability area.

A distillation campaign concentrates its volume in a few valuable capability areas (reasoning
traces, reward-model grades, tool calls, agent trajectories, censorship-safe rewrites...), while
organic traffic spreads over a long tail of everyday topics. Naming the area of every prompt is
what lets the coverage metrics ask "how much of this account's traffic sits in high-value areas,
and how systematically does it cover them?".

The taxonomy is a TOML file (``taxonomy.toml`` next to this module; format described at its top).
Each area has a description, exemplar prompts and optional marker rules
(:mod:`promptcov.coverage.areas.markers`). :class:`CapabilityAssigner` combines two kinds of evidence:

1. **Markers decide.** When a decisive marker fires, its area wins (highest ``priority`` first:
   rubric_grading > censorship_rewrite > tool_use > computer_vision > agentic_coding >
   cot_elicitation > data_analysis). Markers see the full text, so a reasoning demand in a
   system prompt or at the end of a long prompt counts even though the embedding never saw it.
   A CoT demand on a math question is ``cot_elicitation``: what is extracted is the reasoning.
2. **Otherwise the embedding decides**: the similarity of a request to an area is the mean cosine
   of its ``k`` nearest exemplars of that area (plus the ``boost`` of soft markers that fired).
   The best area wins among those at or above their threshold: the assigner's ``min_similarity``,
   or an area's own ``min_similarity`` in the TOML. Areas defined by a request *shape*
   (rubric_grading, cot_elicitation, censorship_rewrite, tool_use, computer_vision) set a high
   one: without their marker, only a near-copy of an exemplar is evidence, because an organic
   question that merely *talks about* grading, reasoning or images is not a grading, CoT or
   vision request. When no area passes, the request is ``other`` (it fits nothing and is not
   forced into an area). Finally a high-value area must beat the best ordinary area
   (general_chat, creative_writing...) by ``margin``, otherwise the ordinary area wins:
   ambiguous organic requests should not inflate high-value coverage.

>>> from promptcov.index.embedders import HashingEmbedder
>>> a = CapabilityAssigner(embedder=HashingEmbedder(dim=256)).fit()
>>> areas, scores, markers = a.predict([""], ["What is 17 * 3? Let's think step by step."])
>>> areas[0], markers[0]
('cot_elicitation', 'cot_elicitation:step_by_step_reasoning')
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from promptcov.coverage.areas.markers import Marker, first_decisive
from promptcov.errors import InputError, NotFittedError

__all__ = [
    "DEFAULT_TAXONOMY",
    "OTHER",
    "Area",
    "Taxonomy",
    "CapabilityAssigner",
    "cot_marker",
    "default_taxonomy",
]

log = logging.getLogger(__name__)

#: The taxonomy file that ships inside the package.
DEFAULT_TAXONOMY = Path(__file__).with_name("taxonomy.toml")
#: The fallback area: assigned when nothing fits; it has no exemplars and no markers.
OTHER = "other"

_TOP_KEYS = {"version", "areas"}
_AREA_KEYS = {"description", "high_value", "priority", "min_similarity", "exemplars", "markers"}
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
        if "min_similarity" in raw:
            v = raw["min_similarity"]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not -1.0 <= v <= 1.0:
                raise InputError(
                    f"taxonomy file {src}: areas.{aid}.min_similarity must be a number in [-1, 1]"
                )
            spec["min_similarity"] = float(v)
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


class CapabilityAssigner:
    """Assigns each request a capability area, a confidence score and the marker that fired.

    Parameters
    ----------
    taxonomy : Taxonomy or None
        Default: the packaged taxonomy.
    embedder : Embedder or None
        Embeds the exemplars; must be the model that embedded the request vectors. Default: the
        real model (:func:`promptcov.index.embedders.load_embedder`).
    min_similarity : float
        Default threshold of an area's similarity (mean top-``k`` exemplar cosine) for areas
        without their own; a request that passes no area is ``other``. Calibrated for
        all-MiniLM-L6-v2, where short prompts score 0.15-0.3 against unrelated exemplars and
        0.3-0.6 against their own area's.
    margin : float
        A high-value area must beat the best ordinary area by this much to be chosen.
    k : int
        Exemplars per area averaged for the area similarity (fewer when an area has fewer).
    batch_size : int
        Requests scored per matrix product (bounds memory on long logs).
    """

    def __init__(
        self,
        taxonomy: Taxonomy | None = None,
        embedder=None,
        min_similarity: float = 0.2,
        margin: float = 0.03,
        k: int = 3,
        batch_size: int = 65536,
    ):
        self.taxonomy = taxonomy
        self.embedder = embedder
        self.min_similarity = min_similarity
        self.margin = margin
        self.k = k
        self.batch_size = batch_size

    def fit(self, X=None, y=None) -> CapabilityAssigner:
        """Embed the exemplars. ``X``/``y`` are ignored (scikit-learn signature)."""
        from promptcov.index.embedders import load_embedder
        from promptcov.index.records import embed_text

        if int(self.k) < 1:
            raise InputError(f"k must be >= 1, got {self.k}")
        self.taxonomy_ = self.taxonomy if self.taxonomy is not None else default_taxonomy()
        self.embedder_ = self.embedder if self.embedder is not None else load_embedder()
        self.area_ids_ = [a.id for a in self.taxonomy_.areas if a.exemplars]
        texts, owner = [], []
        for j, aid in enumerate(self.area_ids_):
            for ex in self.taxonomy_.area(aid).exemplars:
                texts.append(embed_text("", ex))
                owner.append(j)
        vecs = np.ascontiguousarray(self.embedder_.embed(texts), dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape[0] != len(texts):
            raise InputError(f"embedder returned shape {vecs.shape} for {len(texts)} exemplars")
        self.exemplar_vectors_ = vecs
        self.exemplar_area_ = np.asarray(owner, dtype=np.int64)
        self.high_value_mask_ = np.array([self.taxonomy_.area(a).high_value for a in self.area_ids_])
        own = [self.taxonomy_.area(a).min_similarity for a in self.area_ids_]
        self.thresholds_ = np.array([float(self.min_similarity) if t is None else t for t in own])
        self.decisive_markers_ = self.taxonomy_.markers(decisive=True)
        self.soft_markers_ = self.taxonomy_.markers(decisive=False)
        log.info(
            "capability assigner fitted: %d areas, %d exemplars, %d markers",
            len(self.area_ids_),
            len(texts),
            len(self.decisive_markers_) + len(self.soft_markers_),
        )
        return self

    def _check(self):
        if not hasattr(self, "exemplar_vectors_"):
            raise NotFittedError("CapabilityAssigner is not fitted: call fit() first")

    def area_similarities(self, vectors: np.ndarray) -> np.ndarray:
        """(n, n_areas) mean cosine of each request to its ``k`` nearest exemplars of each area
        (columns follow ``area_ids_``)."""
        self._check()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        d = self.exemplar_vectors_.shape[1]
        if vectors.ndim != 2 or vectors.shape[1] != d:
            raise InputError(
                f"vectors have shape {vectors.shape}, but the exemplars were embedded with "
                f"dimension {d} by {getattr(self.embedder_, 'name', 'the embedder')}: embed the "
                "requests with the same model"
            )
        out = np.empty((vectors.shape[0], len(self.area_ids_)), dtype=np.float32)
        step = max(1, int(self.batch_size))
        for lo in range(0, vectors.shape[0], step):
            sims = vectors[lo : lo + step] @ self.exemplar_vectors_.T
            for j in range(len(self.area_ids_)):
                s = sims[:, self.exemplar_area_ == j]
                kk = min(int(self.k), s.shape[1])
                top = np.partition(s, s.shape[1] - kk, axis=1)[:, s.shape[1] - kk :]
                out[lo : lo + step, j] = top.mean(axis=1)
        return out

    def predict(
        self, systems: Sequence[str | None], prompts: Sequence[str], vectors: np.ndarray | None = None
    ):
        """Areas, scores and markers for aligned ``systems``/``prompts``/``vectors``.

        ``vectors`` are the request embeddings (of ``embed_text(system, prompt)``); when ``None``
        they are computed with the fitted embedder. Returns ``(areas, scores, markers)``: object
        array of area ids; float array (1.0 when a decisive marker decided, else the chosen area's
        similarity; for ``other`` the best similarity seen); object array of ``"area:rule"`` or
        ``None``.
        """
        self._check()
        n = len(prompts)
        if len(systems) != n:
            raise InputError(f"systems has {len(systems)} entries but prompts has {n}")
        if vectors is None:
            from promptcov.index.records import embed_text

            vectors = self.embedder_.embed(
                [embed_text(s or "", p or "") for s, p in zip(systems, prompts, strict=True)]
            )
        if len(vectors) != n:
            raise InputError(f"vectors has {len(vectors)} rows but prompts has {n}")
        sims = self.area_similarities(vectors) if n else np.zeros((0, len(self.area_ids_)), np.float32)
        col = {a: j for j, a in enumerate(self.area_ids_)}
        areas = np.empty(n, dtype=object)
        scores = np.zeros(n, dtype=np.float64)
        markers = np.empty(n, dtype=object)
        low_cols = np.flatnonzero(~self.high_value_mask_)
        for i in range(n):
            hit, soft = first_decisive(self.decisive_markers_, systems[i], prompts[i], self.soft_markers_)
            if hit is not None:
                areas[i], scores[i], markers[i] = hit.area, 1.0, hit.full_name
                continue
            row = sims[i].astype(np.float64)
            for m in soft:
                if m.area in col:
                    row[col[m.area]] += float(m.boost)
            ok = row >= self.thresholds_
            if not ok.any():
                areas[i], scores[i] = OTHER, float(row.max())
            else:
                masked = np.where(ok, row, -np.inf)
                best = int(np.argmax(masked))
                low_ok = low_cols[ok[low_cols]]
                if self.high_value_mask_[best] and low_ok.size:
                    low = int(low_ok[np.argmax(row[low_ok])])
                    if row[best] - row[low] < self.margin:
                        best = low
                areas[i], scores[i] = self.area_ids_[best], float(row[best])
            fired = [m.full_name for m in soft if m.area == areas[i]]
            markers[i] = fired[0] if fired else None
        return areas, scores, markers
