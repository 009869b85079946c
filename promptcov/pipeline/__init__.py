"""Jobs over a store: map, score, report and the demo (ingest and embed live in ``promptcov.index``).

The library's orchestration floor: each job reads the store, feeds arrays to the pure modules of
``promptcov.coverage`` / ``promptcov.reports`` and writes tables back. No printing here.
"""

from promptcov.pipeline.map_job import MapSummary, run_map
from promptcov.pipeline.report_job import run_report
from promptcov.pipeline.score_job import ScoreSummary, run_score

__all__ = ["MapSummary", "run_map", "ScoreSummary", "run_score", "run_report"]
