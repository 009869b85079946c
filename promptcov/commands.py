"""The sub-commands behind :mod:`promptcov.cli`: progress bars, summaries, and calls into the library.

This is the command-line floor: the only place that prints, draws progress bars and turns
flags into config overrides. Everything it calls lives in the library.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

from promptcov.config import Config, load_config
from promptcov.errors import InputError
from promptcov.index.store import Store, default_store_path

__all__ = ["UI"]


class UI:
    """Progress bars on a terminal and one-line summaries; ``quiet`` silences both."""

    def __init__(self, quiet: bool = False, stream=None):
        self.quiet = quiet
        self.stream = stream or sys.stderr

    @contextmanager
    def bar(self, desc: str, total: int | None = None, unit: str = "it"):
        """A tqdm bar on a terminal (none when quiet or not a TTY); yields ``update(n)``."""
        show = not self.quiet and self.stream.isatty()
        if not show:
            yield lambda n=1: None
            return
        from tqdm import tqdm

        with tqdm(total=total, desc=desc, unit=unit, file=self.stream, dynamic_ncols=True) as t:
            yield t.update

    @contextmanager
    def bar_to(self, desc: str, unit: str = "it"):
        """A bar driven by ``(done, total)`` callbacks (total known only once work starts)."""
        show = not self.quiet and self.stream.isatty()
        if not show:
            yield lambda done, total: None
            return
        from tqdm import tqdm

        t = tqdm(desc=desc, unit=unit, file=self.stream, dynamic_ncols=True)

        def cb(done, total):
            t.total = total
            t.n = done
            t.refresh()

        try:
            yield cb
        finally:
            t.close()

    def summary(self, line: str) -> None:
        if not self.quiet:
            print(line, file=sys.stdout, flush=True)


def _config(args) -> Config:
    store_cfg = _store_path(args) / "promptcov.toml"
    path = args.config or (store_cfg if store_cfg.exists() else None)
    cfg = load_config(path)
    if hasattr(args, "model"):
        cfg = cfg.override("embed", model=args.model, max_seq_length=getattr(args, "max_seq_length", None),
                           batch_size=getattr(args, "batch_size", None), device=getattr(args, "device", None))
    if hasattr(args, "sample_size"):
        cfg = cfg.override("map", sample_size=args.sample_size, taxonomy=args.taxonomy, seed=args.seed)
    return cfg


def _store_path(args) -> Path:
    return args.store if args.store is not None else default_store_path()


def _open_store(args, read_only: bool = False) -> Store:
    return Store(_store_path(args), read_only=read_only)


def _publish(store: Store) -> None:
    """Publish the snapshot lookups read (``search``, ``serve``) at the end of a job."""
    from promptcov.index.snapshot import publish

    publish(store)


def _ingest(args, ui: UI, store: Store, cfg: Config) -> int:
    from promptcov.index.ingest import ingest_files

    with ui.bar("ingest", unit="rec") as update:
        summary = ingest_files(store, args.logs, batch_size=cfg.ingest.batch_size, progress=update)
    _publish(store)
    ui.summary(summary.line())
    if summary.quarantined:
        ui.summary(f"        quarantined records (file, line, reason): {store.quarantine_dir}")
    if args.strict and summary.quarantined:
        print(f"promptcov: error: --strict: {summary.quarantined} bad record(s) quarantined in "
              f"{store.quarantine_dir}", file=sys.stderr)
        return 2
    return 0


def _embed(args, ui: UI, store: Store, cfg: Config):
    from promptcov.index.embed import embed_pending
    from promptcov.index.embedders import load_embedder

    e = cfg.embed
    if getattr(args, "engine", "local") == "ray":
        from promptcov.index.ray_embed import embed_pending_ray

        with ui.bar_to("embed", unit="text") as cb:
            summary = embed_pending_ray(store, e, cfg.index, address=args.ray_address, progress=cb)
        _publish(store)
        ui.summary(summary.line())
        return None
    embedder = load_embedder(e.model, max_seq_length=e.max_seq_length, batch_size=e.batch_size, device=e.device)
    with ui.bar_to("embed", unit="text") as cb:
        summary = embed_pending(store, embedder, shard_size=e.shard_size, chars_per_token=e.chars_per_token,
                                max_seq_length=e.max_seq_length, factory=cfg.index.factory,
                                large_factory=cfg.index.large_factory,
                                large_threshold=cfg.index.large_threshold, nprobe=cfg.index.nprobe, progress=cb)
    _publish(store)
    ui.summary(summary.line())
    return embedder


def cmd_ingest(args, ui: UI) -> int:
    cfg = _config(args)
    with _open_store(args) as store:
        return _ingest(args, ui, store, cfg)


def cmd_embed(args, ui: UI) -> int:
    cfg = _config(args)
    with _open_store(args) as store:
        if store.count("texts") == 0:
            raise InputError(f"store {store.path} holds no prompts; run `promptcov ingest LOG` first")
        _embed(args, ui, store, cfg)
    return 0


def cmd_search(args, ui: UI) -> int:
    from promptcov.cli import print_json
    from promptcov.index.search import Searcher

    if (args.text is None) == (args.request_id is None):
        raise InputError("give either TEXT or --request-id ID")
    if args.k < 1:
        raise InputError(f"-k must be >= 1, got {args.k}")
    cfg = _config(args)
    searcher = Searcher.open(_store_path(args), max_seq_length=cfg.embed.max_seq_length)
    hits = (searcher.search_request(args.request_id, args.k) if args.request_id
            else searcher.search_text(args.text, args.k))
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


def _map(args, ui: UI, store: Store, cfg: Config, embedder=None) -> None:
    from promptcov.index.embedders import load_embedder
    from promptcov.pipeline import run_map

    model = store.manifest().get("model") or cfg.embed.model
    if embedder is None:
        embedder = load_embedder(model, max_seq_length=cfg.embed.max_seq_length, device=cfg.embed.device)
    with ui.bar_to("map", unit="text") as cb:
        summary = run_map(store, cfg.map, embedder, progress=cb)
    _publish(store)
    ui.summary(summary.line())


def _score(args, ui: UI, store: Store, cfg: Config) -> None:
    from promptcov.pipeline import run_score
    from promptcov.pipeline.score_job import parse_day

    since, until = parse_day(args.since, "--since"), parse_day(args.until, "--until")
    summary = run_score(store, cfg.score, since, until, args.out)
    _publish(store)
    ui.summary(summary.line())
    if args.out is not None:
        ui.summary(f"        wrote {args.out} and {args.out.with_name(args.out.stem + '_groups' + args.out.suffix)}")


def cmd_map(args, ui: UI) -> int:
    cfg = _config(args)
    with _open_store(args) as store:
        _map(args, ui, store, cfg)
    return 0


def cmd_score(args, ui: UI) -> int:
    cfg = _config(args)
    with _open_store(args) as store:
        _score(args, ui, store, cfg)
    return 0


def cmd_run(args, ui: UI) -> int:
    cfg = _config(args)
    with _open_store(args) as store:
        rc = _ingest(args, ui, store, cfg)
        embedder = _embed(args, ui, store, cfg)
        _map(args, ui, store, cfg, embedder)
        _score(args, ui, store, cfg)
    return rc


def cmd_serve(args, ui: UI) -> int:
    from promptcov.service.server import serve

    cfg = _config(args)
    return serve(_store_path(args), host=args.host, port=args.port, max_seq_length=cfg.embed.max_seq_length,
                 announce=ui.summary)


def cmd_report(args, ui: UI) -> int:
    from promptcov.pipeline import run_report

    cfg = _config(args)
    with _open_store(args) as store:
        data, paths = run_report(store, cfg.report, args.out, week=args.week, redact=not args.no_redact)
    ui.summary(f"report {data.get('week')}: {paths['html']} (also .md and .json)")
    return 0


def cmd_demo(args, ui: UI) -> int:
    from promptcov.pipeline.demo import run_demo

    cfg = _config(args)
    return run_demo(args, ui, cfg, _store_path(args))
