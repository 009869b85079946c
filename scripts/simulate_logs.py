"""Write a simulated multi-week API request log with ground-truth labels.

    python scripts/simulate_logs.py --out sim --data ../shared/data --scale 1 --weeks 4 --seed 0

Without ``--data`` the committed sample corpus is used. Writes ``OUT/logs/*.jsonl.gz``,
``OUT/labels.csv`` and ``OUT/scenario.json`` (see ``promptcov.simulate``), then prints a table
of accounts and requests per label, kind and campaign.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from promptcov.errors import InputError
from promptcov.simulate import SimConfig, simulate


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--data", type=Path, default=None, help="folder of real prompt sets (default: sample corpus)"
    )
    p.add_argument(
        "--corpus", type=Path, default=None, help="sample corpus folder (default: the packaged one)"
    )
    p.add_argument("--scale", type=float, default=1.0, help="account-count multiplier (1 = ~30k requests)")
    p.add_argument("--volume", type=float, default=1.0, help="per-account request-volume multiplier")
    p.add_argument("--weeks", type=int, default=4)
    p.add_argument("--end", default=SimConfig.end, help="end of the span, ISO 8601 (default %(default)s)")
    p.add_argument(
        "--release", default=None, help="release time of the new model (default: 13 days before end)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bad-records", type=int, default=0, help="broken records to inject (quarantine demo)")
    p.add_argument("--split", choices=("day", "week"), default="day", help="one log file per day or per week")
    p.add_argument("--no-gzip", action="store_true", help="write plain .jsonl")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(message)s"
    )
    try:
        cfg = SimConfig(
            seed=args.seed,
            scale=args.scale,
            volume=args.volume,
            weeks=args.weeks,
            end=args.end,
            release=args.release,
            bad_records=args.bad_records,
            split=args.split,
            compress=not args.no_gzip,
        )
        t0 = time.perf_counter()
        res = simulate(cfg, args.out, data_dir=args.data, corpus_dir=args.corpus)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.quiet:
        return 0
    c = res.counts
    print(f"{'label / kind':<28}{'accounts':>10}{'requests':>10}")
    for label in sorted(c["accounts"]):
        print(f"{label:<28}{c['accounts'][label]:>10}{c['requests'][label]:>10}")
    print()
    for kind, v in sorted(c["kinds"].items()):
        print(f"  {kind:<26}{v['accounts']:>10}{v['requests']:>10}")
    print()
    for name, v in sorted(c["campaigns"].items()):
        print(
            f"  campaign {name:<17}{v['accounts']:>10}{v['requests']:>10}   max/account {v['max_per_account']}"
        )
    bad = sum(c["bad_records"].values())
    print(
        f"\n{res.n_requests} requests, {res.n_accounts} accounts, {bad} bad records, "
        f"{len(res.log_paths)} log files in {args.out / 'logs'} ({time.perf_counter() - t0:.1f}s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
