"""Streaming readers for the log containers: JSONL (plain/gzip), CSV (plain/gzip), Parquet.

Each reader yields ``(line, raw)`` pairs where ``raw`` is a dict, or a :class:`BadRecord`
when the container itself is broken at that line (invalid JSON, a short CSV row...). Nothing is
read whole: JSONL/CSV stream line by line, Parquet by record batch.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from promptcov.errors import InputError
from promptcov.index.records import BadRecord

__all__ = ["read_records", "container_of", "SUFFIXES"]

log = logging.getLogger(__name__)

SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".parquet", ".csv", ".csv.gz")
_INT_FIELDS = ("turn_index",)


def container_of(path: Path) -> str:
    """``"jsonl"``, ``"csv"`` or ``"parquet"`` from the file suffix; InputError otherwise."""
    name = path.name.lower()
    if path.is_dir():
        if any(p.suffix == ".parquet" for p in path.iterdir()):
            return "parquet"
        raise InputError(f"{path}: a directory is read only when it holds .parquet files")
    if name.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
        return "jsonl"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith(".parquet"):
        return "parquet"
    raise InputError(f"{path}: unknown log container; expected one of {', '.join(SUFFIXES)}")


def _open_text(path: Path):
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace", newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")


def _read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                yield lineno, BadRecord(f"invalid JSON: {exc.msg} at column {exc.colno}", raw=line.rstrip("\r\n"))


def _csv_value(name: str, value: str | None) -> Any:
    if value is None:
        return None
    if value == "":
        return "" if name == "prompt" else None  # an empty prompt cell is an empty prompt
    if name == "timestamp":
        try:
            return float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            return value
    if name in _INT_FIELDS:
        try:
            return int(value)
        except ValueError:
            return value  # normalize_record reports the wrong type
    if name == "messages":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _read_csv(path: Path) -> Iterator[tuple[int, Any]]:
    with _open_text(path) as fh:
        reader = csv.DictReader(fh, strict=True)
        line = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield reader.line_num, BadRecord(f"invalid CSV: {exc}")
                line = reader.line_num
                continue
            line = reader.line_num
            if None in row:  # more fields than the header
                yield line, BadRecord("invalid CSV: row has more fields than the header", raw=str(row))
                continue
            if any(v is None for v in row.values()):
                yield line, BadRecord("invalid CSV: row has fewer fields than the header", raw=str(row))
                continue
            yield line, {k: _csv_value(k, v) for k, v in row.items()}


def _read_parquet(path: Path, batch_size: int) -> Iterator[tuple[int, Any]]:
    import pyarrow.dataset as ds

    try:
        dataset = ds.dataset(str(path), format="parquet")
    except Exception as exc:  # pyarrow raises several types for broken files
        raise InputError(f"{path}: cannot read Parquet: {exc}") from exc
    row = 0
    for batch in dataset.to_batches(batch_size=batch_size):
        for rec in batch.to_pylist():
            row += 1
            yield row, {k: v for k, v in rec.items() if v is not None}


def read_records(path: str | Path, batch_size: int = 10_000) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_or_row, raw_record_or_BadRecord)`` for every record of one log file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    kind = container_of(path)
    if kind == "jsonl":
        yield from _read_jsonl(path)
    elif kind == "csv":
        yield from _read_csv(path)
    else:
        yield from _read_parquet(path, batch_size)
