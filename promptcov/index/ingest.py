"""The ingest job: request logs -> normalised records -> the store, in bounded batches.

Every record is either stored, skipped as a duplicate (its ``request_id`` is already stored with
the same content) or quarantined with its file, line and reason (a broken container, a record
that breaks the log format, a lone surrogate, a number out of range, nesting too deep, or a
``request_id`` already stored with different content: a conflict). Nothing is dropped
silently, no bad record costs the good ones around it, memory stays bounded by ``batch_size``
however large the log, and re-reading a file adds nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from promptcov.errors import InputError
from promptcov.index.fields import FieldMap
from promptcov.index.readers import ReadStats, coerce_csv_fields, container_of, iter_records
from promptcov.index.records import BadRecord, content_hash, normalize_record, text_id
from promptcov.index.store import Store

__all__ = ["IngestSummary", "ingest_files"]

log = logging.getLogger(__name__)


@dataclass
class IngestSummary:
    """Counts of one ingest job; ``read == stored + duplicates + quarantined``.

    ``replaced`` counts the records read whose invalid UTF-8 bytes were replaced by U+FFFD (they
    are stored, or quarantined for another reason); ``skipped_files`` lists the files of a Parquet
    folder that are not Parquet and were not read.
    """

    files: int = 0
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    replaced: int = 0
    reasons: Counter = field(default_factory=Counter)
    quarantine_files: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)

    def line(self) -> str:
        top = ", ".join(f"{n} {r}" for r, n in self.reasons.most_common(3))
        q = f"; quarantined: {top}" if top else ""
        rep = f"; {self.replaced} with invalid UTF-8 (replaced by U+FFFD)" if self.replaced else ""
        skip = f"; {len(self.skipped_files)} non-Parquet file(s) skipped" if self.skipped_files else ""
        return (f"ingest: {self.files} file(s), {self.read} read, {self.stored} stored, "
                f"{self.duplicates} duplicates skipped, {self.quarantined} quarantined{q}{rep}{skip}")


def _quarantine_name(path: Path, part: int) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", path.name)[:60]
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
    return f"{stem}-{digest}-{part:04d}"


def _short_reason(reason: str) -> str:
    """Group reasons for the summary: drop the quoted values and details after ':' or '('."""
    return re.sub(r"\s*('[^']*'|\"[^\"]*\")", "", re.sub(r"[:(].*$", "", reason)).strip()


def _safe_raw(raw: Any) -> Any:
    """``raw`` as the quarantine file can hold it: lone surrogates escaped, never an exception."""
    try:
        json.dumps(raw, ensure_ascii=False, default=str).encode("utf-8")
        return raw
    except UnicodeEncodeError:
        return json.dumps(raw, ensure_ascii=True, default=str)
    except (RecursionError, ValueError, TypeError):
        return f"<{type(raw).__name__} that cannot be written as JSON>"


def ingest_files(store: Store, paths: Iterable[str | Path], batch_size: int = 5000,
                 progress: Callable[[int], None] | None = None, *, field_map: FieldMap | None = None,
                 max_record_lines: int = 1000) -> IngestSummary:
    """Read each log file into ``store``; returns the job's :class:`IngestSummary`.

    ``progress(n)`` is called with the number of records read since the last call.
    ``field_map`` (see :mod:`promptcov.index.fields`) renames source fields to the contract's
    before validation; ``max_record_lines`` bounds one CSV record (an unterminated quote).
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("no log files given")
    for p in paths:
        if not p.exists():
            raise InputError(f"{p}: no such file or directory")
        container_of(p)  # an unknown container fails before anything is read
    summary = IngestSummary()
    for path in paths:
        _ingest_one(store, path, batch_size, progress, summary, field_map, max_record_lines)
    return summary


def _prepare(item, field_map: FieldMap | None, file_time: str | None, is_csv: bool) -> dict:
    """The store row of one read item; raises BadRecord."""
    raw = item.raw
    if isinstance(raw, BadRecord):
        raise raw
    content = None
    if field_map is not None:
        mapped, used = field_map.apply(raw, file_time)
        if is_csv and isinstance(mapped, dict):
            coerce_csv_fields(mapped)
        content = content_hash({"record": raw, **used} if used else raw)
        raw = mapped
    rec = normalize_record(raw, source=item.source, line=item.line, content=content)
    rec["text_id"] = text_id(rec["system"], rec["prompt"])
    return rec
def _ingest_one(store: Store, path: Path, batch_size: int, progress, summary: IngestSummary,
                field_map: FieldMap | None, max_record_lines: int) -> None:
    f_read = f_stored = f_dup = f_bad = 0
    batch: list[dict] = []
    raws: list[Any] = []
    bad: list[dict] = []
    part = 0

    def quarantine(source, line, reason, raw):
        nonlocal f_bad
        f_bad += 1
        summary.reasons[_short_reason(reason)] += 1
        bad.append({"source": source, "line": line, "reason": reason, "raw": _safe_raw(raw)})

    def flush():
        nonlocal batch, raws, bad, part, f_stored, f_dup
        n = len(batch) + len(bad)
        if batch:
            stored, dup, rejected = store.add_requests(batch)
            f_stored += stored
            f_dup += dup
            for i, reason in rejected:
                quarantine(batch[i]["source"], batch[i]["line"], reason, raws[i])
        if bad:
            q = store.write_quarantine(_quarantine_name(path, part), bad)
            summary.quarantine_files.append(str(q))
        if progress is not None:
            progress(n)
        batch, raws, bad = [], [], []
        part += 1

    stats = ReadStats()
    is_csv = container_of(path) == "csv"
    file_time = field_map.file_time(path) if field_map is not None else None
    items = iter_records(path, batch_size=batch_size, stats=stats, max_record_lines=max_record_lines)
    while True:
        try:
            item = next(items)
        except StopIteration:
            break
        except (OSError, EOFError, UnicodeError, zlib.error) as exc:  # truncated gzip, I/O error mid-file
            f_read += 1
            reason = f"unreadable rest of file: {exc}"
            quarantine(str(path), None, reason, None)
            log.warning("%s: %s", path, reason)
            break
        f_read += 1
        summary.replaced += item.replaced
        try:
            rec = _prepare(item, field_map, file_time, is_csv)
        except BadRecord as exc:
            quarantine(item.source, item.line, exc.reason, exc.raw if isinstance(item.raw, BadRecord) else item.raw)
        except RecursionError:
            quarantine(item.source, item.line, "record is nested too deeply", item.raw)
        except Exception as exc:  # noqa: BLE001 - one record must never cost the batch; the reason says why
            log.warning("%s:%s: unexpected error on this record", item.source, item.line, exc_info=True)
            quarantine(item.source, item.line, f"cannot be processed: {type(exc).__name__}: {exc}"[:300],
                       item.raw)
        else:
            batch.append(rec)
            raws.append(item.raw)
        if len(batch) + len(bad) >= batch_size:
            flush()
    flush()
    store.con.execute("INSERT INTO files VALUES (?, ?, ?, ?, ?, ?)",
                      [str(path), datetime.now(timezone.utc).replace(tzinfo=None), f_read, f_stored, f_dup,
                       f_bad]).fetchall()
    log.info("%s: %d read, %d stored, %d duplicates, %d quarantined", path, f_read, f_stored, f_dup, f_bad)
    summary.skipped_files.extend(stats.skipped_files)
    summary.files += 1
    summary.read += f_read
    summary.stored += f_stored
    summary.duplicates += f_dup
    summary.quarantined += f_bad
