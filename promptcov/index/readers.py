"""Streaming readers for the log containers: JSONL (plain/gzip), CSV (plain/gzip), Parquet.

:func:`iter_records` yields one :class:`Item` per record: its source file, line (or row)
number, the raw record (a dict) or a :class:`BadRecord` when the container itself is broken
there, and whether invalid UTF-8 bytes in it were replaced by U+FFFD. Nothing is read whole:
JSONL/CSV stream line by line (a line longer than ``max_line_bytes`` is skipped, not loaded),
Parquet by record batch, file by file.

How broken input is handled, so that no bad record costs the good ones around it:

- JSONL: invalid JSON, JSON nested more than :data:`MAX_DEPTH` levels (``RecursionError`` in
  ``json``), or a number with too many digits -> that line only.
- CSV: a UTF-8 byte-order mark is dropped. A quoted field that is not closed (an unterminated
  quote) would swallow the lines after it into one record; a record that spans several lines
  and then fails to parse (``csv.Error``, end of file inside quotes, more than
  ``max_record_lines`` lines, or a field count unlike the header's) is quarantined as its
  *first* line only, and reading resumes at the next line.
- Parquet: each file is read with its own schema (a folder's result does not depend on file
  order); files of a folder that are not ``.parquet`` are skipped and listed in
  :class:`ReadStats`; a cell Arrow cannot convert quarantines its row, not the batch; an
  unreadable file is one quarantined entry.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from promptcov.errors import InputError
from promptcov.index.records import BadRecord

__all__ = ["read_records", "iter_records", "container_of", "coerce_csv_fields", "parse_json_text", "Item", "ReadStats",
           "SUFFIXES", "MAX_DEPTH"]

log = logging.getLogger(__name__)

SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".parquet", ".csv", ".csv.gz")
MAX_DEPTH = 100  # JSON nesting levels accepted in one record (chat records use about 5)
_INT_FIELDS = ("turn_index",)
_BOM = b"\xef\xbb\xbf"


class Item(NamedTuple):
    """One record as read: ``raw`` is a dict, or a :class:`BadRecord` for a broken container."""

    source: str
    line: int | None
    raw: Any
    replaced: bool = False  # invalid UTF-8 bytes were replaced by U+FFFD


@dataclass
class ReadStats:
    """What the readers skipped without a record to quarantine."""

    skipped_files: list[str] = field(default_factory=list)


def container_of(path: Path) -> str:
    """``"jsonl"``, ``"csv"`` or ``"parquet"`` from the file suffix; InputError otherwise."""
    name = path.name.lower()
    if path.is_dir():
        if any(p.is_file() and p.name.lower().endswith(".parquet") for p in path.rglob("*")):
            return "parquet"
        raise InputError(f"{path}: a directory is read only when it holds .parquet files")
    if name.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
        return "jsonl"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith(".parquet"):
        return "parquet"
    raise InputError(f"{path}: unknown log container; expected one of {', '.join(SUFFIXES)}")


def _open_binary(path: Path):
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _lines(fh, max_bytes: int) -> Iterator[tuple[int, str | None, bool]]:
    """``(line number, text or None when too long, replaced)`` for each physical line."""
    lineno = 0
    while True:
        b = fh.readline(max_bytes + 1)
        if not b:
            return
        lineno += 1
        if len(b) > max_bytes and not b.endswith(b"\n"):
            while True:  # skip the rest of the over-long line without holding it
                more = fh.readline(max_bytes)
                if not more or more.endswith(b"\n"):
                    break
            yield lineno, None, False
            continue
        if lineno == 1 and b.startswith(_BOM):
            b = b[len(_BOM):]
        try:
            yield lineno, b.decode("utf-8"), False
        except UnicodeDecodeError:
            yield lineno, b.decode("utf-8", "replace"), True


def _too_deep(obj: Any, limit: int) -> bool:
    stack = [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, (dict, list)):
            if d > limit:
                return True
            stack.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))
    return False


def parse_json_text(text: str) -> Any:
    """``json.loads`` that returns a :class:`BadRecord` instead of raising (any input)."""
    raw = text.rstrip("\r\n")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return BadRecord(f"invalid JSON: {exc.msg} at column {exc.colno}", raw=raw)
    except RecursionError:
        return BadRecord(f"invalid JSON: nested more than {MAX_DEPTH} levels deep", raw=raw)
    except ValueError as exc:  # an integer with more digits than Python converts
        return BadRecord(f"invalid JSON: {str(exc)[:120]}", raw=raw)
    if text.count("[") + text.count("{") > MAX_DEPTH and _too_deep(obj, MAX_DEPTH):
        return BadRecord(f"invalid JSON: nested more than {MAX_DEPTH} levels deep", raw=raw)
    return obj


def _read_jsonl(path: Path, max_line_bytes: int) -> Iterator[Item]:
    src = str(path)
    with _open_binary(path) as fh:
        for lineno, text, replaced in _lines(fh, max_line_bytes):
            if text is None:
                yield Item(src, lineno, BadRecord(f"line longer than {max_line_bytes} bytes"), False)
            elif text.strip():
                yield Item(src, lineno, parse_json_text(text), replaced)


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
        parsed = parse_json_text(value)
        return value if isinstance(parsed, BadRecord) else parsed
    return value


def coerce_csv_fields(record: dict) -> dict:
    """Give the contract's fields of a CSV record their types (numbers, JSON messages) in place.

    Used after a field map renamed CSV columns to the contract's names.
    """
    for name in ("timestamp", "messages", *_INT_FIELDS):
        if isinstance(record.get(name), str):
            record[name] = _csv_value(name, record[name])
    return record


class _TooLong(Exception):
    pass


class _Feed:
    """The line iterator under ``csv.reader``: remembers the lines of the current record and can
    give all but the first back, so that reading resumes at the line after a broken one."""

    def __init__(self, lines: Iterator[tuple[int, str | None, bool]], max_record_lines: int):
        self._src = lines
        self._back: deque = deque()
        self.taken: list[tuple[int, str, bool]] = []
        self.limit = max_record_lines

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if len(self.taken) >= self.limit:
            raise _TooLong
        item = self._back.popleft() if self._back else next(self._src)
        if item[1] is None:  # an over-long physical line reads as an empty line
            item = (item[0], "\n", item[2])
        self.taken.append(item)
        return item[1]

    def resume_after_first(self) -> tuple[int, str, bool]:
        """Give back every line of the current record but the first; return the first."""
        first, rest = self.taken[0], self.taken[1:]
        self._back.extendleft(reversed(rest))
        return first


def _read_csv(path: Path, max_line_bytes: int, max_record_lines: int) -> Iterator[Item]:
    src = str(path)
    with _open_binary(path) as fh:
        feed = _Feed(_lines(fh, max_line_bytes), max_record_lines)
        reader = csv.reader(feed, strict=True)
        header: list[str] | None = None
        while True:
            feed.taken = []
            try:
                row = next(reader)
            except StopIteration:
                return
            except (csv.Error, _TooLong) as exc:
                if not feed.taken:
                    return
                n = len(feed.taken)
                first = feed.resume_after_first()
                why = ("end of file inside quotes" if "unexpected end" in str(exc)
                       else f"more than {max_record_lines} lines" if isinstance(exc, _TooLong) else str(exc))
                reason = (f"invalid CSV: a quoted field opened on this line is not closed ({why}, {n} lines "
                          f"read); reading resumed at the next line" if n > 1 else f"invalid CSV: {exc}")
                yield Item(src, first[0], BadRecord(reason, raw=first[1].rstrip("\r\n")), first[2])
                reader = csv.reader(feed, strict=True)
                continue
            taken = feed.taken
            if not row:
                continue
            if header is None:
                header = [h.strip() for h in row]
                continue
            if len(row) != len(header):
                more = "more" if len(row) > len(header) else "fewer"
                if len(taken) > 1:  # most likely a stray quote that ran into the next lines
                    first = feed.resume_after_first()
                    reason = (f"invalid CSV: a quoted field opened on this line runs over {len(taken)} lines "
                              f"into a row with {more} fields than the header; reading resumed at the next line")
                    yield Item(src, first[0], BadRecord(reason, raw=first[1].rstrip("\r\n")), first[2])
                    reader = csv.reader(feed, strict=True)
                else:
                    yield Item(src, taken[0][0], BadRecord(f"invalid CSV: row has {more} fields than the header",
                                                           raw=str(row)), taken[0][2])
                continue
            yield Item(src, taken[0][0], {k: _csv_value(k, v) for k, v in zip(header, row, strict=True)},
                       any(t[2] for t in taken))


def _batch_rows(batch) -> list[Any]:
    """Rows of one Arrow record batch as dicts (``None`` cells dropped); a cell that Arrow cannot
    convert to Python makes its row a :class:`BadRecord`, not the whole batch."""
    try:
        return [{k: v for k, v in rec.items() if v is not None} for rec in batch.to_pylist()]
    except Exception:  # noqa: BLE001 - Arrow raises several types (ArrowInvalid, ValueError, OverflowError)
        pass
    rows: list[Any] = [{} for _ in range(batch.num_rows)]
    for name, col in zip(batch.schema.names, batch.columns, strict=True):
        try:
            values = col.to_pylist()
        except Exception:  # noqa: BLE001 - fall back to cell by cell
            values = []
            for i in range(len(col)):
                try:
                    values.append(col[i].as_py())
                except Exception as exc:  # noqa: BLE001
                    values.append(BadRecord(f"column {name!r} cannot be read: {str(exc)[:160]}"))
        for i, v in enumerate(values):
            if isinstance(rows[i], BadRecord):
                continue
            if isinstance(v, BadRecord):
                rows[i] = v
            elif v is not None:
                rows[i][name] = v
    return rows


def _parquet_files(path: Path, stats: ReadStats | None) -> list[Path]:
    if not path.is_dir():
        return [path]
    files = []
    for p in sorted(path.rglob("*")):
        if not p.is_file():
            continue
        if p.name.lower().endswith(".parquet"):
            files.append(p)
        else:
            log.info("%s: not a .parquet file; skipped", p)
            if stats is not None:
                stats.skipped_files.append(str(p))
    return files


def _read_parquet_file(path: Path, batch_size: int) -> Iterator[Item]:
    import pyarrow.parquet as pq

    src = str(path)
    row = 0
    try:
        pf = pq.ParquetFile(src)
        batches = pf.iter_batches(batch_size=batch_size)
        for batch in batches:
            for rec in _batch_rows(batch):
                row += 1
                yield Item(src, row, rec, False)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for damaged files
        where = f"after row {row}" if row else "at its start"
        yield Item(src, None, BadRecord(f"unreadable Parquet file ({where}): {str(exc)[:200]}"), False)


def iter_records(path: str | Path, batch_size: int = 10_000, stats: ReadStats | None = None,
                 max_record_lines: int = 1000, max_line_bytes: int = 64 << 20) -> Iterator[Item]:
    """Yield an :class:`Item` for every record of one log file (or Parquet folder).

    ``stats`` collects what was skipped without a record (non-Parquet files in a folder).
    ``max_record_lines`` bounds one CSV record (see the module docstring), ``max_line_bytes``
    one JSONL/CSV line.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    kind = container_of(path)
    if kind == "jsonl":
        yield from _read_jsonl(path, max_line_bytes)
    elif kind == "csv":
        yield from _read_csv(path, max_line_bytes, max(2, max_record_lines))
    else:
        for f in _parquet_files(path, stats):
            yield from _read_parquet_file(f, batch_size)


def read_records(path: str | Path, batch_size: int = 10_000) -> Iterator[tuple[int | None, Any]]:
    """Yield ``(line_or_row, raw_record_or_BadRecord)`` for every record of one log file."""
    for item in iter_records(path, batch_size=batch_size):
        yield item.line, item.raw
