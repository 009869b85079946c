"""The report job: the store's tables -> ``DIR/<week>.html``, ``.md`` and ``.json``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from promptcov.config import Config
from promptcov.errors import InputError
from promptcov.index.store import Store
from promptcov.pipeline.progress import Progress, ensure_progress

__all__ = ["ReportSummary", "run_report"]


@dataclass
class ReportSummary:
    """The week reported, the files written and the report's data (as written to the JSON file)."""

    week: str = ""
    paths: dict[str, Path] = field(default_factory=dict)
    data: dict = field(default_factory=dict)

    def line(self) -> str:
        return f"report {self.week}: {self.paths.get('html')} (also .md and .json)"


def run_report(store: Store, config: Config, progress: Progress | None = None, *, out_dir: Path,
               week: str | None = None, redact: bool | None = None) -> ReportSummary:
    """Build the weekly report for ``week`` (default: the last full ISO week) and write it."""
    from promptcov.reports.data import build_report_data
    from promptcov.reports.writer import write_report

    progress = ensure_progress(progress)
    cfg = config.report
    if store.count("requests") == 0:
        raise InputError(f"store {store.path} holds no requests; run `promptcov run LOG...` first")
    progress.update("report", 0, 1)
    from promptcov.coverage.areas.taxonomy import Taxonomy

    taxonomy = Taxonomy.load(extra=[config.map.taxonomy] if config.map.taxonomy else [])
    data = build_report_data(store.con, week=week, n_weeks=cfg.n_weeks,
                             redact=cfg.redact if redact is None else redact, taxonomy=taxonomy)
    paths = write_report(data, out_dir)
    progress.update("report", 1, 1)
    return ReportSummary(week=str(data.get("week")), paths=paths, data=data)
