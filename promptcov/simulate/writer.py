"""Turning simulated requests into gateway log files, streamed to disk with bounded memory.

:class:`LogWriter` receives requests in any order, renders each as one JSON line in the log
format of ``../shared/spec/log-format.md`` (timestamps as ISO strings with ``Z`` or an offset,
or epoch seconds/milliseconds, as a real gateway mix would; ~30% of conversations in the
``messages`` shape), and appends it to a temporary shard per output file. :meth:`LogWriter.finish`
sorts each shard by time, mixes in the requested bad records and writes the final files
atomically (gzip with a fixed header, so the same seed gives the same bytes).
"""

from __future__ import annotations

import gzip
import json
import logging
import shutil
import zlib
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from promptcov.io import atomic_write
from promptcov.simulate.config import SimConfig
from promptcov.simulate.identity import Account

__all__ = ["LogWriter", "format_timestamp", "BAD_KINDS"]

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_FLUSH_LINES = 2000
_REPLIES = (
    "Sure, here is a first version.",
    "Here's what I found.",
    "Good question. Short answer: it depends on a few things.",
    "Here are a few options you could try.",
    "I've updated it as you asked.",
    "Let me walk through it step by step.",
    "Done. Let me know if you want changes.",
)
#: Kinds of broken records :meth:`LogWriter.finish` can inject.
BAD_KINDS = ("malformed_json", "missing_account_id", "bad_timestamp", "empty_prompt", "wrong_type")


def format_timestamp(ts: float, style: int, tz: float) -> str | int | float:
    """Render epoch seconds ``ts`` in one of five gateway styles.

    0: ISO with milliseconds and ``Z``; 1: ISO seconds ``Z``; 2: ISO with the client's UTC offset;
    3: epoch seconds (number); 4: epoch milliseconds (integer).
    """
    ms = int(round(ts * 1000.0))
    if style == 3:
        return round(ms / 1000.0, 3) if ms % 1000 else ms // 1000
    if style == 4:
        return ms
    dt = _EPOCH + timedelta(milliseconds=ms)
    if style == 0:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    if style == 1:
        return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    off = timedelta(minutes=int(round(tz * 60)))
    return dt.astimezone(timezone(off)).isoformat(timespec="seconds")


class LogWriter:
    """Collect requests, then write the sorted log files (see the module docstring)."""

    def __init__(self, out_dir: Path, config: SimConfig, rng: np.random.Generator) -> None:
        self.cfg = config
        self.rng = rng
        self.log_dir = Path(out_dir) / "logs"
        self.tmp_dir = Path(out_dir) / ".sim-tmp"
        if self.tmp_dir.exists():
            shutil.rmtree(self.tmp_dir)
        self.tmp_dir.mkdir(parents=True)
        self.release = config.release_dt.timestamp()
        self.buffers: dict[str, list[str]] = {}
        self.per_account: Counter[str] = Counter()
        self.n_messages = 0
        self.n_new_model = 0
        self.accounts: dict[str, Account] = {}

    # ------------------------------------------------------------------ requests
    def _key(self, ts: float) -> str:
        day = (_EPOCH + timedelta(days=int(ts // 86400))).date()
        if self.cfg.split == "day":
            return day.isoformat()
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"

    def model_for(self, acct: Account, conv_id: str, conv_ts: float) -> str:
        """The model a conversation started at ``conv_ts`` uses: the new model with probability
        ``acct.adopt`` once the account's adoption has ramped up after the release."""
        dt_h = (conv_ts - self.release) / 3600.0 - acct.adopt_delay_h
        if acct.adopt <= 0 or dt_h <= 0:
            return self.cfg.model_old
        p = acct.adopt * min(1.0, dt_h / max(acct.adopt_ramp_h, 1e-6))
        u = (zlib.crc32(conv_id.encode()) & 0xFFFFFFFF) / 2**32
        return self.cfg.model_new if u < p else self.cfg.model_old

    def add(
        self,
        acct: Account,
        ts: float,
        prompt: str,
        system: str = "",
        conv_id: str | None = None,
        turn: int = 0,
        history: Sequence[str] = (),
        conv_ts: float | None = None,
    ) -> None:
        """Record one request of ``acct`` at epoch seconds ``ts``; ``history`` holds earlier user turns."""
        rng = self.rng
        self.accounts.setdefault(acct.account_id, acct)
        conv_id = conv_id or f"conv_{rng.bytes(8).hex()}"
        model = self.model_for(acct, conv_id, ts if conv_ts is None else conv_ts)
        self.n_new_model += model == self.cfg.model_new
        style = int(rng.choice(5, p=(0.5, 0.15, 0.1, 0.17, 0.08)))
        ts = float(np.floor(ts)) if style in (1, 2) else round(ts, 3)  # what the rendered stamp says
        rec: dict[str, object] = {
            "request_id": f"req_{rng.bytes(8).hex()}",
            "account_id": acct.account_id,
            "timestamp": format_timestamp(ts, style, acct.tz),
        }
        if rng.random() < acct.p_messages:
            self.n_messages += 1
            msgs: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
            for prev in history:
                msgs.append({"role": "user", "content": prev})
                msgs.append({"role": "assistant", "content": _REPLIES[int(rng.integers(len(_REPLIES)))]})
            msgs.append({"role": "user", "content": prompt})
            rec["messages"] = msgs
            rec["conversation_id"] = conv_id
            if rng.random() < 0.5:
                rec["turn_index"] = len(history)
        else:
            rec["prompt"] = prompt
            if system:
                rec["system"] = system
            rec["conversation_id"] = conv_id
            rec["turn_index"] = turn
        if rng.random() > 0.005:
            rec["model"] = model
        if acct.org_id:
            rec["org_id"] = acct.org_id
        net = acct.pick_ip(rng)
        if net is not None and rng.random() > 0.005:
            rec["ip"] = net[0]
            if rng.random() > 0.01:
                rec["asn"] = net[1] if rng.random() < 0.8 else str(net[1])
        if acct.payment_id:
            rec["payment_id"] = acct.payment_id
        ua = acct.pick_ua(rng)
        if ua and rng.random() > 0.01:
            rec["user_agent"] = ua
        key = self._key(ts)
        buf = self.buffers.setdefault(key, [])
        buf.append(f"{ts:.3f}\t{json.dumps(rec, ensure_ascii=False)}")
        self.per_account[acct.account_id] += 1
        if len(buf) >= _FLUSH_LINES:
            self._flush(key)

    def _flush(self, key: str) -> None:
        lines = self.buffers.pop(key, [])
        if lines:
            with open(self.tmp_dir / f"{key}.tsv", "a", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")

    # ------------------------------------------------------------------ bad records
    def _bad_record(self, kind: str, ts: float) -> str:
        rng = self.rng
        ids = sorted(self.per_account)
        acct = ids[int(rng.integers(len(ids)))] if ids else "acct_unknown"
        base: dict[str, object] = {
            "request_id": f"req_{rng.bytes(8).hex()}",
            "account_id": acct,
            "timestamp": format_timestamp(ts, 0, 0.0),
            "prompt": "Summarise the attached meeting notes in five bullet points.",
            "model": self.cfg.model_old,
        }
        if kind == "malformed_json":
            text = json.dumps(base)
            return text[: int(rng.integers(10, len(text) - 5))]
        if kind == "missing_account_id":
            del base["account_id"]
        elif kind == "bad_timestamp":
            base["timestamp"] = ("yesterday", "2026-13-45T25:61:00Z", "", "16/11/2026 09:12")[
                int(rng.integers(4))
            ]
        elif kind == "empty_prompt":
            base["prompt"] = ("", "   ")[int(rng.integers(2))]
        else:
            field, value = (
                ("account_id", 12345),
                ("prompt", 42),
                ("turn_index", "three"),
                ("messages", "hello"),
            )[int(rng.integers(4))]
            if field == "messages":
                del base["prompt"]
            base[field] = value
        return json.dumps(base, ensure_ascii=False)

    # ------------------------------------------------------------------ output
    def _write_file(self, shard: Path, path: Path, bad: list[str]) -> None:
        """Sort one shard by time, put the bad records at random places, write it atomically."""
        with open(shard, encoding="utf-8") as fh:
            lines = [line.rstrip("\n") for line in fh if line.strip()]
        order = sorted(range(len(lines)), key=lambda i: (float(lines[i].partition("\t")[0]), lines[i]))
        inserts: dict[int, list[str]] = {}
        for text in bad:
            inserts.setdefault(int(self.rng.integers(len(lines) + 1)), []).append(text)
        with atomic_write(path, "wb") as out:
            sink = (
                gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6)
                if self.cfg.compress
                else out
            )
            for pos, i in enumerate(order):
                for text in inserts.get(pos, ()):
                    sink.write(text.encode("utf-8") + b"\n")
                sink.write(lines[i].partition("\t")[2].encode("utf-8") + b"\n")
            for text in inserts.get(len(lines), ()):
                sink.write(text.encode("utf-8") + b"\n")
            if sink is not out:
                sink.close()

    def finish(self, n_bad: int = 0) -> tuple[list[Path], Counter[str]]:
        """Write the final log files; return their paths and the counts of injected bad records."""
        for key in list(self.buffers):
            self._flush(key)
        keys = sorted(p.stem for p in self.tmp_dir.glob("*.tsv"))
        bad_by_key: dict[str, list[str]] = {}
        bad_counts: Counter[str] = Counter()
        for i in range(n_bad if keys else 0):
            kind = BAD_KINDS[i % len(BAD_KINDS)]
            key = keys[int(self.rng.integers(len(keys)))]
            first = datetime.strptime(f"{key}-1", "%G-W%V-%u") if "W" in key else datetime.fromisoformat(key)
            day0 = first.replace(tzinfo=timezone.utc).timestamp()
            bad_by_key.setdefault(key, []).append(
                self._bad_record(kind, day0 + float(self.rng.random()) * 86400)
            )
            bad_counts[kind] += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for old in sorted(self.log_dir.glob("requests-*.jsonl*")):
            log.info("removing %s from an earlier run", old)
            old.unlink()
        suffix = ".jsonl.gz" if self.cfg.compress else ".jsonl"
        paths = []
        for key in keys:
            path = self.log_dir / f"requests-{key}{suffix}"
            self._write_file(self.tmp_dir / f"{key}.tsv", path, bad_by_key.get(key, []))
            paths.append(path)
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        return paths, bad_counts
