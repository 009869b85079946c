"""The ingest job: request logs -> normalised records -> the store, in bounded batches.

Every record is either stored, skipped as a duplicate (its ``request_id`` is already stored) or
quarantined with its file, line and reason. Nothing is dropped silently, memory stays bounded by
``batch_size`` however large the log, and re-reading a file adds nothing.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from promptcov.errors import InputError
from promptcov.index.readers import read_records
from promptcov.index.records import BadRecord, normalize_record, text_id
from promptcov.index.store import Store

__all__ = ["IngestSummary", "ingest_files"]

log = logging.getLogger(__name__)


@dataclass
class IngestSummary:
    """Counts of one ingest job; ``read == stored + duplicates + quarantined``."""

    files: int = 0
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    reasons: Counter = field(default_factory=Counter)
    quarantine_files: list[str] = field(default_factory=list)

    def line(self) -> str:
        top = ", ".join(f"{n} {r}" for r, n in self.reasons.most_common(3))
        q = f"; quarantined: {top}" if top else ""
        return (f"ingest: {self.files} file(s), {self.read} read, {self.stored} stored, "
                f"{self.duplicates} duplicates skipped, {self.quarantined} quarantined{q}")


def _quarantine_name(path: Path, part: int) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", path.name)[:60]
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
    return f"{stem}-{digest}-{part:04d}"


def _short_reason(reason: str) -> str:
    """Group reasons for the summary: drop the quoted values and details after ':' or '('."""
    return re.sub(r"\s*('[^']*'|\"[^\"]*\")", "", re.sub(r"[:(].*$", "", reason)).strip()


def ingest_files(store: Store, paths: Iterable[str | Path], batch_size: int = 5000,
                 progress: Callable[[int], None] | None = None) -> IngestSummary:
    """Read each log file into ``store``; returns the job's :class:`IngestSummary`.

    ``progress(n)`` is called with the number of records read since the last call.
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("no log files given")
    for p in paths:
        if not p.exists():
            raise InputError(f"{p}: no such file or directory")
    summary = IngestSummary()
    for path in paths:
        _ingest_one(store, path, batch_size, progress, summary)
    return summary


def _ingest_one(store: Store, path: Path, batch_size: int, progress, summary: IngestSummary) -> None:
    f_read = f_stored = f_dup = f_bad = 0
    batch: list[dict] = []
    bad: list[dict] = []
    part = 0

    def flush():
        nonlocal batch, bad, part, f_stored, f_dup
        if batch:
            stored, dup = store.add_requests(batch)
            f_stored += stored
            f_dup += dup
        if bad:
            q = store.write_quarantine(_quarantine_name(path, part), bad)
            summary.quarantine_files.append(str(q))
        if progress is not None:
            progress(len(batch) + len(bad))
        batch, bad = [], []
        part += 1

    records = read_records(path, batch_size=batch_size)
    while True:
        try:
            line, raw = next(records)
        except StopIteration:
            break
        except (OSError, EOFError, UnicodeError) as exc:  # truncated gzip, I/O error mid-file
            f_read += 1
            f_bad += 1
            reason = f"unreadable rest of file: {exc}"
            bad.append({"source": str(path), "line": None, "reason": reason, "raw": None})
            summary.reasons[_short_reason(reason)] += 1
            log.warning("%s: %s", path, reason)
            break
        f_read += 1
        try:
            if isinstance(raw, BadRecord):
                raise raw
            rec = normalize_record(raw, source=str(path), line=line)
        except BadRecord as exc:
            f_bad += 1
            summary.reasons[_short_reason(exc.reason)] += 1
            bad.append({"source": str(path), "line": line, "reason": exc.reason,
                        "raw": raw.raw if isinstance(raw, BadRecord) else raw})
        else:
            rec["text_id"] = text_id(rec["system"], rec["prompt"])
            batch.append(rec)
        if len(batch) + len(bad) >= batch_size:
            flush()
    flush()
    store.con.execute("INSERT INTO files VALUES (?, ?, ?, ?, ?, ?)",
                      [str(path), datetime.now(timezone.utc).replace(tzinfo=None), f_read, f_stored, f_dup, f_bad]).fetchall()
    log.info("%s: %d read, %d stored, %d duplicates, %d quarantined", path, f_read, f_stored, f_dup, f_bad)
    summary.files += 1
    summary.read += f_read
    summary.stored += f_stored
    summary.duplicates += f_dup
    summary.quarantined += f_bad
