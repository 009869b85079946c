"""The ingest job: request logs into the store (see :mod:`promptcov.index.ingest`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from promptcov.config import Config
from promptcov.index.fields import build_field_map
from promptcov.index.ingest import IngestSummary, ingest_files
from promptcov.index.snapshot import publish
from promptcov.index.store import Store
from promptcov.pipeline.progress import Progress, ensure_progress

__all__ = ["run_ingest", "IngestSummary"]


def run_ingest(store: Store, config: Config, progress: Progress | None = None, *,
               paths: Sequence[str | Path]) -> IngestSummary:
    """Read every log in ``paths`` into ``store``; bad records are quarantined (see the summary)."""
    progress = ensure_progress(progress)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        progress.update("ingest", done, None)

    i = config.ingest
    field_map = build_field_map(i.format, i.fields, i.account_id, i.timestamp)
    summary = ingest_files(store, paths, batch_size=i.batch_size, progress=tick, field_map=field_map,
                           max_record_lines=i.csv_max_record_lines)
    publish(store)
    return summary
