"""Build one simulated multi-week log with ground truth: :func:`simulate`.

Writes under ``out_dir``:

* ``logs/requests-<day or week>.jsonl[.gz]`` -- the request log in the contract's format;
* ``labels.csv`` -- ``account_id,label,kind,campaign`` for every account in the log, with
  ``label`` one of ``organic``, ``hard_negative``, ``benign_benchmark``, ``campaign``;
* ``scenario.json`` -- the config, the span and release time of the new model, pool sizes,
  counts per label/kind/campaign and the proxy pools (for evaluation and debugging).

>>> from promptcov.simulate import SimConfig, simulate          # doctest: +SKIP
>>> res = simulate(SimConfig(scale=0.15, seed=1), Path("sim"))  # doctest: +SKIP
>>> res.n_requests, res.labels_path                              # doctest: +SKIP
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from promptcov.errors import InputError
from promptcov.io import atomic_write, write_json
from promptcov.simulate import campaigns, hardneg, organic
from promptcov.simulate.config import SimConfig
from promptcov.simulate.corpus import load_pools
from promptcov.simulate.identity import PROXY_ASNS, Account
from promptcov.simulate.traffic import Context

__all__ = ["SimResult", "simulate", "LABELS"]

log = logging.getLogger(__name__)

#: The ground-truth labels, in the order reports list them.
LABELS = ("organic", "hard_negative", "benign_benchmark", "campaign")


@dataclass
class SimResult:
    """What :func:`simulate` wrote: log files, labels, and counts (also in ``scenario.json``)."""

    log_paths: list[Path]
    labels_path: Path
    n_requests: int
    n_accounts: int
    counts: dict = field(default_factory=dict)
    scenario_path: Path | None = None


def _hydra_pool(ctx: Context) -> list[tuple[str, int]]:
    """The rotating proxy pool of ``broad_agentic``: mostly a proxy provider, some residential exits."""
    n = max(8, ctx.cfg.n("broad_agentic_accounts") // 3)
    pool = [ctx.ids.datacenter(PROXY_ASNS[:1]) for _ in range(int(round(0.7 * n)))]
    pool += [ctx.ids.residential(p_v6=0.0) for _ in range(n - len(pool))]
    return pool


def _counts(accounts: list[Account], per_account: Counter[str]) -> dict:
    out: dict = {"accounts": {}, "requests": {}, "kinds": {}, "campaigns": {}}
    for a in accounts:
        n = per_account.get(a.account_id, 0)
        out["accounts"][a.label] = out["accounts"].get(a.label, 0) + 1
        out["requests"][a.label] = out["requests"].get(a.label, 0) + n
        k = out["kinds"].setdefault(a.kind, {"accounts": 0, "requests": 0})
        k["accounts"] += 1
        k["requests"] += n
        if a.campaign:
            c = out["campaigns"].setdefault(a.campaign, {"accounts": 0, "requests": 0, "max_per_account": 0})
            c["accounts"] += 1
            c["requests"] += n
            c["max_per_account"] = max(c["max_per_account"], n)
    return out


def simulate(
    config: SimConfig,
    out_dir: Path,
    data_dir: Path | None = None,
    corpus_dir: Path | None = None,
) -> SimResult:
    """Write a simulated log with ground-truth labels under ``out_dir`` (see the module docstring).

    ``data_dir`` reads the real public prompt sets (e.g. ``../shared/data``); without it the
    committed sample corpus is used. ``corpus_dir`` overrides where that corpus (and the sweep
    scaffolds and hard-negative material, always taken from it) lives. The same config and
    inputs give byte-identical files.
    """
    if not isinstance(config, SimConfig):
        raise InputError("config must be a SimConfig")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pools = load_pools(data_dir, seed=config.seed, corpus_dir=corpus_dir)
    if pools.source == "corpus" and config.scale * config.volume > 0.3:
        log.warning(
            "the sample corpus is small: at scale %.2g sweeps repeat each task many times; "
            "pass the real prompt sets (data_dir / --data) for large runs",
            config.scale,
        )
    ctx = Context.create(config, pools, out_dir)
    writer = ctx.writer
    hydra = _hydra_pool(ctx)
    ctx.proxy_pools["broad_agentic"] = hydra
    steps = (
        ("organic", lambda: organic.organic_accounts(ctx)),
        ("proxy customers", lambda: organic.proxy_customers(ctx, hydra)),
        ("teams", lambda: organic.teams(ctx)),
        ("power users", lambda: organic.power_users(ctx)),
        ("products", lambda: hardneg.products(ctx)),
        ("coding tool", lambda: hardneg.coding_tools(ctx)),
        ("batch job", lambda: hardneg.batch_jobs(ctx)),
        ("benchmark", lambda: hardneg.benchmarks(ctx)),
        ("reason_rubric", lambda: campaigns.reason_rubric(ctx)),
        ("broad_agentic", lambda: campaigns.broad_agentic(ctx, hydra)),
        ("agentic_tools", lambda: campaigns.agentic_tools(ctx)),
    )
    accounts = ctx.run_steps(steps, log)
    log_paths, bad = writer.finish(config.bad_records)
    present = [a for a in accounts if writer.per_account.get(a.account_id, 0) > 0]
    present.sort(key=lambda a: a.account_id)
    labels_path = out_dir / "labels.csv"
    with atomic_write(labels_path, "w") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["account_id", "label", "kind", "campaign"])
        for a in present:
            w.writerow([a.account_id, a.label, a.kind, a.campaign])
    n_requests = sum(writer.per_account.values())
    counts = _counts(present, writer.per_account)
    counts["bad_records"] = dict(sorted(bad.items()))
    counts["total_requests"] = n_requests
    counts["messages_shape"] = writer.n_messages
    counts["model_new_requests"] = writer.n_new_model
    scenario_path = out_dir / "scenario.json"
    write_json(
        scenario_path,
        {
            "config": config.to_dict(),
            "start": config.start_dt.isoformat(),
            "end": config.end_dt.isoformat(),
            "model_new_release": config.release_dt.isoformat(),
            "pools": {"source": pools.source, **pools.summary()},
            "counts": counts,
            "proxy_pools": {k: sorted(ip for ip, _ in v) for k, v in sorted(ctx.proxy_pools.items())},
            "log_files": [p.name for p in log_paths],
        },
    )
    log.info("wrote %d requests from %d accounts to %s", n_requests, len(present), out_dir)
    return SimResult(log_paths, labels_path, n_requests, len(present), counts, scenario_path)
