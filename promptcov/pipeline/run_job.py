"""The main job, ``promptcov run``: ingest, embed, map and score in one go."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from promptcov.config import Config
from promptcov.index.embedders import load_embedder
from promptcov.index.store import Store
from promptcov.pipeline.embed_job import run_embed
from promptcov.pipeline.ingest_job import run_ingest
from promptcov.pipeline.map_job import run_map
from promptcov.pipeline.progress import Progress, Summary, ensure_progress
from promptcov.pipeline.score_job import run_score

__all__ = ["RunSummary", "run_run"]


@dataclass
class RunSummary:
    """The summaries of the four steps, in order; ``quarantined`` bad input records."""

    steps: list[Summary] = field(default_factory=list)
    quarantined: int = 0

    def line(self) -> str:
        return "run: " + "; ".join(type(s).__name__.replace("Summary", "").lower() for s in self.steps) + " done"


def run_run(store: Store, config: Config, progress: Progress | None = None, *, paths: Sequence[str | Path],
            out: Path | None = None, engine: str = "local", ray_address: str | None = None) -> RunSummary:
    """Ingest ``paths``, embed what is new, re-map and score the whole store; each step's summary goes
    to ``progress.finished`` as it ends."""
    progress = ensure_progress(progress)
    summary = RunSummary()
    ingest = run_ingest(store, config, progress, paths=paths)
    summary.quarantined = ingest.quarantined
    e = config.embed
    embedder = load_embedder(e.model, max_seq_length=e.max_seq_length, batch_size=e.batch_size, device=e.device)
    for step in (lambda: ingest,
                 lambda: run_embed(store, config, progress, embedder=embedder, engine=engine, ray_address=ray_address),
                 lambda: run_map(store, config, progress, embedder=embedder),
                 lambda: run_score(store, config, progress, out=out)):
        s = step()
        summary.steps.append(s)
        progress.finished(s)
    return summary
