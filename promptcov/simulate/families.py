"""Randomised scenario families: one simulated window per seed, from one material half.

:func:`simulate_family` draws the family of a seed (:func:`~promptcov.simulate.family_config.draw_family`:
2-4 campaigns of 10-300 accounts, 1-40 payment ids, proxy share 0-1, waking hours or round the
clock, follow-ups 0-0.4, cover traffic 0-0.5, 1-10 scaffolds per area in several styles, 1-5
target areas, pivots after the model release), and writes it with the organic population, the
project's hard negatives (products, coding tool, nightly batch job, power users, teams),
benchmark runners and ordinary customers on each campaign's proxy pool. Its material comes from
one half (:mod:`promptcov.simulate.material`): ``split="dev"`` for development seeds,
``split="eval"`` for evaluation seeds, which share no task or scaffold text.

Output, as :func:`promptcov.simulate.simulate`: ``logs/``, ``labels.csv`` and ``scenario.json``
(which also holds the family config and each campaign's ground truth, pivots included).

Seed convention (``scripts/eval_detection.py``): development seeds 0-9 with ``split="dev"``,
evaluation seeds 100-119 with ``split="eval"``.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from promptcov.errors import InputError
from promptcov.io import atomic_write, write_json
from promptcov.simulate import hardneg, organic
from promptcov.simulate.config import SimConfig
from promptcov.simulate.corpus import PromptPools, load_pools
from promptcov.simulate.family_campaigns import benchmark_runners, family_campaign, proxy_pool
from promptcov.simulate.family_config import FamilyConfig, draw_family
from promptcov.simulate.identity import Account
from promptcov.simulate.material import computer_use_tasks, family_scaffolds, split_pools
from promptcov.simulate.scenario import SimResult
from promptcov.simulate.traffic import Context

__all__ = ["DEV_SEEDS", "EVAL_SEEDS", "family_pools", "simulate_family"]

log = logging.getLogger(__name__)

#: The default seeds of each half (development and evaluation).
DEV_SEEDS = tuple(range(0, 10))
EVAL_SEEDS = tuple(range(100, 120))


def family_pools(split: str, data_dir: Path | None = None, seed: int = 0,
                 corpus_dir: Path | None = None) -> PromptPools:
    """The prompt pools of one half: split tasks and organic prompts, computer-use tasks, and the
    half's family scaffolds (plus the original scaffolds for ``dev``)."""
    pools = split_pools(load_pools(data_dir, seed=seed, corpus_dir=corpus_dir), split)
    cu = computer_use_tasks(split, corpus_dir)
    if cu:
        pools.tasks["computer_use"] = cu
    original = list(pools.scaffolds) if split == "dev" else []
    pools.scaffolds = family_scaffolds(split, corpus_dir) + original
    return pools


def _write_labels(path: Path, accounts: list[Account]) -> None:
    with atomic_write(path, "w") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["account_id", "label", "kind", "campaign"])
        for a in accounts:
            w.writerow([a.account_id, a.label, a.kind, a.campaign])


def _truth(fam: FamilyConfig, accounts: list[Account], per_account, pools: PromptPools) -> dict:
    out = {}
    for spec in fam.campaigns:
        members = [a for a in accounts if a.campaign == spec.name]
        out[spec.name] = {
            **spec.__dict__,
            "accounts_present": len(members),
            "requests": int(sum(per_account.get(a.account_id, 0) for a in members)),
            "pivots": spec.pivots,
            "pivot_area_present": bool(spec.pivot_area) and spec.pivot_area in pools.tasks,
            "areas_present": [a for a in spec.areas if a in pools.tasks],
        }
    return out


def simulate_family(seed: int, out_dir: Path, split: str = "dev", scale: float = 1.0,
                    data_dir: Path | None = None, corpus_dir: Path | None = None,
                    bad_records: int = 0) -> SimResult:
    """Write the scenario family of ``seed`` from the ``split`` half under ``out_dir``.

    ``scale`` shrinks every account count (campaigns keep at least 6 accounts); the same
    arguments give byte-identical files.
    """
    if split not in ("dev", "eval"):
        raise InputError(f"split must be 'dev' or 'eval', got {split!r}")
    fam = draw_family(seed, scale)
    cfg = SimConfig(seed=int(seed), scale=float(scale), organic_accounts=fam.organic_accounts,
                    power_users=fam.power_users, teams=fam.teams, products=fam.products,
                    bad_records=bad_records)  # fmt: skip
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pools = family_pools(split, data_dir, seed, corpus_dir)
    ctx = Context.create(cfg, pools, out_dir)
    writer = ctx.writer
    proxies = {spec.name: proxy_pool(ctx, spec) for spec in fam.campaigns}
    ctx.proxy_pools.update({k: v for k, v in proxies.items() if v})
    steps = [
        ("organic", lambda: organic.organic_accounts(ctx)),
        ("teams", lambda: organic.teams(ctx)),
        ("power users", lambda: organic.power_users(ctx)),
        ("products", lambda: hardneg.products(ctx)),
        ("coding tool", lambda: hardneg.coding_tools(ctx)),
        ("batch job", lambda: hardneg.batch_jobs(ctx)),
        ("benchmark", lambda: hardneg.benchmarks(ctx)),
        ("benchmark runners", lambda: benchmark_runners(ctx, fam.benchmark_runners)),
    ]
    for name, pool in proxies.items():
        if pool:
            steps.append((f"proxy customers of {name}", lambda pool=pool: organic.proxy_customers(ctx, pool)))
    for spec in fam.campaigns:
        steps.append((spec.name, lambda spec=spec: family_campaign(ctx, spec, proxies[spec.name])))
    accounts = ctx.run_steps(steps, log)
    log_paths, bad = writer.finish(cfg.bad_records)
    present = sorted((a for a in accounts if writer.per_account.get(a.account_id, 0) > 0),
                     key=lambda a: a.account_id)  # fmt: skip
    labels_path = out_dir / "labels.csv"
    _write_labels(labels_path, present)
    n_requests = int(sum(writer.per_account.values()))
    counts: dict = {"total_requests": n_requests, "accounts": {}, "requests": {}}
    for a in present:
        counts["accounts"][a.label] = counts["accounts"].get(a.label, 0) + 1
        counts["requests"][a.label] = counts["requests"].get(a.label, 0) + writer.per_account[a.account_id]
    counts["bad_records"] = dict(sorted(bad.items()))
    scenario_path = out_dir / "scenario.json"
    write_json(scenario_path, {
        "family": fam.to_dict(), "split": split, "config": cfg.to_dict(),
        "start": cfg.start_dt.isoformat(), "end": cfg.end_dt.isoformat(),
        "model_new": cfg.model_new, "model_new_release": cfg.release_dt.isoformat(),
        "pools": {"source": pools.source, **pools.summary()}, "counts": counts,
        "campaigns": _truth(fam, present, writer.per_account, pools),
        "proxy_pools": {k: sorted(ip for ip, _ in v) for k, v in sorted(ctx.proxy_pools.items())},
        "log_files": [p.name for p in log_paths],
    })  # fmt: skip
    log.info("family %d (%s): %d requests from %d accounts", seed, split, n_requests, len(present))
    return SimResult(log_paths, labels_path, n_requests, len(present), counts, scenario_path)
