"""The sub-commands behind :mod:`promptcov.cli`: arguments -> config -> one job -> printed summary.

This is the command-line floor: the only place that prints, draws progress bars and turns flags
into config overrides. Each command calls one job of :mod:`promptcov.pipeline` (or the search API)
and prints what it returns; :data:`COMMANDS` maps sub-command names to them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from promptcov.config import Config, load_config
from promptcov.errors import InputError
from promptcov.index.store import Store, default_store_path
from promptcov.pipeline import (
    IngestSummary,
    run_demo,
    run_embed,
    run_ingest,
    run_map,
    run_report,
    run_run,
    run_score,
)

__all__ = ["UI", "COMMANDS", "print_json"]


class UI:
    """The command line's :class:`~promptcov.pipeline.progress.Progress`: tqdm bars on a terminal
    (one per stage) and summary lines on stdout; ``quiet`` silences both."""

    def __init__(self, quiet: bool = False, stream=None):
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self._bar = None
        self._stage = None

    def update(self, stage: str, done: int, total: int | None = None) -> None:
        if self.quiet or not self.stream.isatty():
            return
        if stage != self._stage:
            self.close()
            from tqdm import tqdm

            self._bar = tqdm(desc=stage, total=total, file=self.stream, dynamic_ncols=True, unit="it")
            self._stage = stage
        self._bar.total = total
        self._bar.n = done
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._bar, self._stage = None, None

    def finished(self, summary) -> None:
        self.close()
        self.summary(summary.line())
        if isinstance(summary, IngestSummary):
            if summary.skipped_files:
                more = f" and {len(summary.skipped_files) - 5} more" if len(summary.skipped_files) > 5 else ""
                self.summary(f"        skipped, not Parquet: {', '.join(summary.skipped_files[:5])}{more}")
            if summary.quarantined and getattr(self, "store_path", None):
                self.summary(f"        quarantined records (file, line, reason): {self.store_path / 'quarantine'}")

    def summary(self, line: str) -> None:
        if not self.quiet:
            print(line, file=sys.stdout, flush=True)


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")


def _store_path(args) -> Path:
    return args.store if args.store is not None else default_store_path()


def _config(args) -> Config:
    """The config file (``--config``, else ``promptcov.toml`` in the store) with the flags over it."""
    store_cfg = _store_path(args) / "promptcov.toml"
    path = args.config or (store_cfg if store_cfg.exists() else None)
    cfg = load_config(path)
    if hasattr(args, "model"):
        cfg = cfg.override("embed", model=args.model, max_seq_length=getattr(args, "max_seq_length", None),
                           batch_size=getattr(args, "batch_size", None), device=getattr(args, "device", None))
    if hasattr(args, "sample_size"):
        cfg = cfg.override("map", sample_size=args.sample_size, taxonomy=args.taxonomy, seed=args.seed)
    if getattr(args, "log_format", None):
        cfg = cfg.override("ingest", format=args.log_format)
    return cfg


def _open(args, ui: UI, create: bool = False) -> Store:
    """Open the ``--store``; only ``create=True`` (ingest, run, demo) may make a new one."""
    ui.store_path = _store_path(args)
    return Store(ui.store_path, create=create)


def _strict_exit(args, summary: IngestSummary, store: Store) -> int:
    if getattr(args, "strict", False) and summary.quarantined:
        print(f"promptcov: error: --strict: {summary.quarantined} bad record(s) quarantined in "
              f"{store.quarantine_dir}", file=sys.stderr)
        return 2
    return 0


def cmd_ingest(args, ui: UI) -> int:
    cfg = _config(args)
    with _open(args, ui, create=True) as store:
        summary = run_ingest(store, cfg, ui, paths=args.logs)
        ui.finished(summary)
        return _strict_exit(args, summary, store)


def cmd_embed(args, ui: UI) -> int:
    cfg = _config(args)
    with _open(args, ui) as store:
        ui.finished(run_embed(store, cfg, ui, engine=args.engine, ray_address=args.ray_address))
    return 0


def cmd_map(args, ui: UI) -> int:
    cfg = _config(args)
    with _open(args, ui) as store:
        ui.finished(run_map(store, cfg, ui))
    return 0


def _window(args):
    from promptcov.pipeline.score_job import parse_day

    return parse_day(args.since, "--since"), parse_day(args.until, "--until")


def _score_out_line(ui: UI, out: Path | None) -> None:
    if out is not None:
        ui.summary(f"        wrote {out} and {out.with_name(out.stem + '_groups' + out.suffix)}")


def cmd_score(args, ui: UI) -> int:
    cfg = _config(args)
    since, until = _window(args)
    with _open(args, ui) as store:
        ui.finished(run_score(store, cfg, ui, since=since, until=until, out=args.out))
    _score_out_line(ui, args.out)
    return 0


def cmd_run(args, ui: UI) -> int:
    cfg = _config(args)
    with _open(args, ui, create=True) as store:
        summary = run_run(store, cfg, ui, paths=args.logs, out=args.out, engine=args.engine,
                          ray_address=args.ray_address)
        _score_out_line(ui, args.out)
        return _strict_exit(args, summary.steps[0], store)


def cmd_report(args, ui: UI) -> int:
    cfg = _config(args)
    with _open(args, ui) as store:
        ui.finished(run_report(store, cfg, ui, out_dir=args.out, week=args.week, redact=not args.no_redact))
    return 0


def cmd_demo(args, ui: UI) -> int:
    cfg = _config(args)
    with _open(args, ui, create=True) as store:
        summary = run_demo(store, cfg, ui, out_dir=args.out, data_dir=args.data, scale=args.scale)
    for line in summary.lines():
        ui.summary(line)
    return 0


def cmd_search(args, ui: UI) -> int:
    from promptcov.index.search import Searcher

    if (args.text is None) == (args.request_id is None):
        raise InputError("give either TEXT or --request-id ID")
    if args.k < 1:
        raise InputError(f"-k must be >= 1, got {args.k}")
    cfg = _config(args)
    searcher = Searcher.open(_store_path(args), max_seq_length=cfg.embed.max_seq_length)
    hits = (searcher.search_request(args.request_id, args.k) if args.request_id
            else searcher.search_text(args.text, args.k, system=args.system))
    if args.json:
        print_json([{k: h[k] for k in ("request_id", "account_id", "timestamp", "prompt", "similarity",
                                       "cluster_id", "capability", "n_requests", "accounts")} for h in hits])
        return 0
    for i, h in enumerate(hits, 1):
        prompt = " ".join(h["prompt"].split())
        prompt = prompt[:110] + ("…" if len(prompt) > 110 else "")
        area = f" [{h['capability']} c{h['cluster_id']}]" if h["capability"] else ""
        print(f"{i:>3}. {h['similarity']:.3f}  {h['account_id']}  {h['timestamp'][:19]}{area}  "
              f"x{h['n_requests']} from {len(h['accounts'])} account(s)\n     {prompt}")
    near = searcher.accounts_near(hits, 0.9)
    if near:
        shown = ", ".join(f"{a} ({n})" for a, n in near[:10])
        more = f" and {len(near) - 10} more" if len(near) > 10 else ""
        ui.summary(f"accounts that sent near-duplicates (similarity >= 0.90): {shown}{more}")
    else:
        ui.summary("no account sent a near-duplicate (similarity >= 0.90)")
    return 0


def cmd_serve(args, ui: UI) -> int:
    """The HTTP lookup service over the store's published snapshot (runs until interrupted)."""
    from promptcov.service.server import serve

    cfg = _config(args)
    return serve(_store_path(args), host=args.host, port=args.port, max_seq_length=cfg.embed.max_seq_length,
                 announce=ui.summary)


def cmd_verify(args, ui: UI) -> int:
    """Full check of the store's vector shards and index; ``--repair`` fixes what it can."""
    from promptcov.index.verify import verify_store

    cfg = _config(args)
    with _open(args, ui) as store:
        report = verify_store(store, repair=args.repair, index_cfg=cfg.index)
    for line in report.lines():
        ui.summary(line)
    return 0 if report.healthy else 1


#: Sub-command name -> function(args, ui) -> exit status.
COMMANDS = {
    "ingest": cmd_ingest,
    "embed": cmd_embed,
    "map": cmd_map,
    "score": cmd_score,
    "run": cmd_run,
    "search": cmd_search,
    "report": cmd_report,
    "demo": cmd_demo,
    "verify": cmd_verify,
    "serve": cmd_serve,
}
