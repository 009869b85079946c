"""The ``promptcov`` command line: parses arguments, sets up logging and progress, calls the library.

Exit status (the contract): 0 success, 1 a failure of the job, 2 bad usage or bad input.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

from promptcov import __version__
from promptcov.commands import COMMANDS, UI
from promptcov.errors import InputError, PromptcovError

__all__ = ["main", "build_parser"]

log = logging.getLogger("promptcov")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's usage errors -> exit 2 with one clear line
        self.print_usage(sys.stderr)
        self.exit(2, f"promptcov: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", type=Path, default=None,
                        help="store folder (default: $PROMPTCOV_STORE, else ./promptcov-store)")
    common.add_argument("--config", type=Path, default=None, help="TOML config file (see README)")
    common.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary")
    common.add_argument("--verbose", "-v", action="count", default=0, help="more log output (-vv: debug)")

    p = _Parser(prog="promptcov", description="Find distillation sweeps in LLM API request logs.")
    p.add_argument("--version", action="version", version=f"promptcov {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("ingest", parents=[common], help="read request logs into the store (idempotent)")
    s.add_argument("logs", nargs="+", type=Path, metavar="LOG")
    s.add_argument("--strict", action="store_true", help="exit 2 if any record was quarantined")
    _format_flag(s)

    s = sub.add_parser("embed", parents=[common], help="embed stored prompts not yet embedded")
    _embed_flags(s)

    s = sub.add_parser("map", parents=[common], help="cluster the prompt space and name capability areas")
    _map_flags(s)

    s = sub.add_parser("score", parents=[common], help="per-account and per-group coverage scores and flags")
    _score_flags(s)

    s = sub.add_parser("run", parents=[common], help="ingest, embed, map and score in one go")
    s.add_argument("logs", nargs="+", type=Path, metavar="LOG")
    s.add_argument("--strict", action="store_true", help="exit 2 if any record was quarantined")
    _format_flag(s)
    _embed_flags(s)
    _map_flags(s)
    _score_flags(s)

    s = sub.add_parser("search", parents=[common], help="stored prompts nearest to TEXT")
    s.add_argument("text", nargs="?", metavar="TEXT")
    s.add_argument("--request-id", help="search by the text of a stored request instead of TEXT")
    s.add_argument("--system", default="", metavar="SYSTEM",
                   help="the system prompt TEXT was sent with: re-ranks the nearest prompts by it too")
    s.add_argument("-k", type=int, default=10, help="number of hits (default 10)")
    s.add_argument("--json", action="store_true", help="print the hits as one JSON array")

    s = sub.add_parser("serve", parents=[common], help="the HTTP lookup service (token: $PROMPTCOV_TOKEN)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8765, help="port (default 8765)")

    s = sub.add_parser("report", parents=[common], help="the weekly capability-targeting report")
    s.add_argument("--week", help="ISO week YYYY-Www (default: the last full week in the store)")
    s.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default ./reports)")
    s.add_argument("--no-redact", action="store_true", help="show personal data in prompts (investigators)")

    s = sub.add_parser("verify", parents=[common], help="check the store's vectors and index byte by byte")
    s.add_argument("--repair", action="store_true",
                   help="forget damaged vector shards (embed re-embeds them) and rebuild the index")

    s = sub.add_parser("demo", parents=[common], help="simulate a log, run the main job and write a report")
    s.add_argument("--out", type=Path, default=Path("reports/demo"), help="report folder (default reports/demo)")
    s.add_argument("--data", type=Path, default=None, help="real prompt sets to draw from (default: built-in)")
    s.add_argument("--scale", type=float, default=None, help="simulator scale (default 0.15)")
    s.add_argument("--model", default=None, help="embedding model (default: the packaged all-MiniLM-L6-v2)")
    return p


def _format_flag(s):
    s.add_argument("--format", dest="log_format", default=None, metavar="NAME",
                   help="field profile of the logs: litellm or openai-batch (default: the contract's "
                        "field names, or [ingest] format / [ingest.fields] in the config)")


def _embed_flags(s):
    s.add_argument("--model", default=None,
                   help="sentence-transformers model path or name; 'fast': the static model distilled from the default")
    s.add_argument("--max-seq-length", type=int, default=None, help="tokens kept per prompt (default 128)")
    s.add_argument("--batch-size", type=int, default=None, help="texts per forward pass")
    s.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda")
    s.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="run the embed job here (local) or on a Ray cluster (ray)")
    s.add_argument("--ray-address", default=None,
                   help="Ray cluster to join with --engine ray (default: start a local one)")


def _map_flags(s):
    s.add_argument("--sample-size", type=int, default=None, help="distinct texts the map is fitted on")
    s.add_argument("--taxonomy", default=None, help="extra taxonomy TOML merged over the default")
    s.add_argument("--seed", type=int, default=None, help="seed of every random step (default 0)")


def _score_flags(s):
    s.add_argument("--since", help="window start, ISO date (inclusive)")
    s.add_argument("--until", help="window end, ISO date (exclusive)")
    s.add_argument("--out", type=Path, default=None, help="accounts table file: .csv, .parquet or .json")


def _setup_logging(verbose: int, quiet: bool) -> None:
    # the model libraries draw their own loading bars; the CLI owns the terminal
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    level = logging.WARNING
    if verbose == 1:
        level = logging.INFO
    elif verbose >= 2:
        level = logging.DEBUG
    if quiet and not verbose:
        level = logging.ERROR
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not verbose:  # UMAP says it runs single-threaded because it is seeded: on purpose here
        warnings.filterwarnings("ignore", message="n_jobs value .* overridden", category=UserWarning)
    for noisy in ("sentence_transformers", "transformers", "numba", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    ui = UI(quiet=args.quiet)
    try:
        return int(COMMANDS[args.command](args, ui) or 0)
    except KeyboardInterrupt:
        print("promptcov: interrupted; run the same command again to resume", file=sys.stderr)
        return 1
    except InputError as exc:
        print(f"promptcov: error: {exc}", file=sys.stderr)
        return 2
    except PromptcovError as exc:
        print(f"promptcov: job failed: {exc}", file=sys.stderr)
        return exc.exit_code
    except (OSError, MemoryError) as exc:
        print(f"promptcov: job failed: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: one clear line, the traceback only with -v
        log.debug("unexpected error", exc_info=True)
        print(f"promptcov: job failed: unexpected {type(exc).__name__}: {exc} (run with -v for the traceback)",
              file=sys.stderr)
        if args.verbose:
            import traceback

            traceback.print_exc()
        return 1
    finally:
        ui.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
