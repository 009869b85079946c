"""Weekly capability-targeting report: store tables -> one dict -> HTML, Markdown and JSON.

>>> from promptcov.reports import build_report_data, write_report   # doctest: +SKIP
>>> data = build_report_data(con, week="2026-W47")                  # doctest: +SKIP
>>> write_report(data, "reports/")                                  # doctest: +SKIP

The renderers live in :mod:`promptcov.reports.render_html` and
:mod:`promptcov.reports.render_md` (not re-exported here, so that the package attributes stay
the modules and not functions of the same name).
"""

from promptcov.reports.data import PRESSURE_SHARE, REPORT_SCHEMA, build_report_data
from promptcov.reports.redact import clip, esc_html, esc_md, neutralise_bidi, redact_pii, safe_text
from promptcov.reports.weeks import last_full_iso_week, parse_week, week_bounds
from promptcov.reports.writer import write_report

__all__ = [
    "build_report_data",
    "last_full_iso_week",
    "parse_week",
    "week_bounds",
    "write_report",
    "redact_pii",
    "neutralise_bidi",
    "safe_text",
    "clip",
    "esc_html",
    "esc_md",
    "REPORT_SCHEMA",
    "PRESSURE_SHARE",
]
