"""The report job: the store's tables -> ``DIR/<week>.html``, ``.md`` and ``.json``."""

from __future__ import annotations

from pathlib import Path

from promptcov.config import ReportConfig
from promptcov.errors import InputError
from promptcov.index.store import Store

__all__ = ["run_report"]


def run_report(store: Store, cfg: ReportConfig, out_dir: Path, week: str | None = None,
               redact: bool | None = None) -> tuple[dict, dict[str, Path]]:
    """Build the weekly report for ``week`` (default: the last full ISO week) and write it."""
    from promptcov.reports.data import build_report_data
    from promptcov.reports.writer import write_report

    if store.count("requests") == 0:
        raise InputError(f"store {store.path} holds no requests; run `promptcov run LOG...` first")
    data = build_report_data(store.con, week=week, n_weeks=cfg.n_weeks,
                             redact=cfg.redact if redact is None else redact)
    return data, write_report(data, out_dir)
