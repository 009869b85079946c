"""The job layer: every job is ``run_<job>(store, config, progress) -> Summary``.

Jobs read and write the store and hand arrays to :mod:`promptcov.index`, :mod:`promptcov.coverage`,
:mod:`promptcov.reports` and :mod:`promptcov.simulate`. They never print: long work is reported
through a :class:`~promptcov.pipeline.progress.Progress` and results come back as summaries,
which the command line (``promptcov.commands``) prints. Imports run one way:
``cli -> commands -> pipeline -> {index, coverage, reports, simulate}``.
"""

from promptcov.pipeline.demo import DemoSummary, run_demo
from promptcov.pipeline.embed_job import EmbedSummary, run_embed
from promptcov.pipeline.ingest_job import IngestSummary, run_ingest
from promptcov.pipeline.map_job import MapSummary, run_map
from promptcov.pipeline.progress import NullProgress, Progress, Summary
from promptcov.pipeline.report_job import ReportSummary, run_report
from promptcov.pipeline.run_job import RunSummary, run_run
from promptcov.pipeline.score_job import ScoreSummary, run_score

__all__ = ["run_ingest", "run_embed", "run_map", "run_score", "run_report", "run_run", "run_demo",
           "IngestSummary", "EmbedSummary", "MapSummary", "ScoreSummary", "ReportSummary", "RunSummary",
           "DemoSummary", "Progress", "Summary", "NullProgress"]
