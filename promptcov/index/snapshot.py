"""The published snapshot: what lookups read while a job holds the store's catalog.

DuckDB lets one process open ``catalog.duckdb`` for writing, and then no other process can
even read it. So the jobs (``ingest``, ``embed``, ``map``, ``score``) *publish* what lookups
need when they finish, and readers (``promptcov search``, ``promptcov serve``) read only that::

    published/
        CURRENT                 the live generation's name, replaced atomically (os.replace)
        g000007/
            snapshot.json       generation, model, dim, counts, created_at
            hits.arrow          one row per distinct text: its earliest request, account,
                                timestamp, system, prompt, n_requests, up to 20 accounts,
                                cluster_id, capability (sorted by text_id; an Arrow IPC file
                                that readers memory-map and binary-search: no query engine
                                on the hot path of a search)
            requests.parquet    request_id -> text_id (sorted by request_id)
            embedded.parquet    text_id -> vector shard
            vectors/            hard links to the vector shards (immutable once written)
            index/              hard links to the FAISS index files
            accounts.parquet    the accounts table with evidence (after ``score``)
            groups.parquet      the groups table with evidence (after ``score``)

A generation is built in a temporary folder, renamed into place, and only then named by
``CURRENT``; a reader therefore sees either the old generation or the new one, whole. Older
generations are pruned, always keeping the previous one for readers still on it. Hard links
cost no space and keep a file's published content even after the job replaces the original
(``os.replace`` makes a new inode). New vectors appear to readers once published.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from promptcov.errors import InputError
from promptcov.io import atomic_write, read_json, write_json

__all__ = ["publish", "current_generation", "Snapshot", "PUBLISHED_DIR", "MAX_ACCOUNTS"]

log = logging.getLogger(__name__)

PUBLISHED_DIR = "published"
MAX_ACCOUNTS = 20
_GEN = re.compile(r"g(\d{6,})")

_HITS_SQL = """
COPY (
    WITH firsts AS (
        SELECT text_id, arg_min(request_id, (ts, request_id)) AS request_id,
               arg_min(account_id, (ts, request_id)) AS account_id, min(ts) AS ts
        FROM requests GROUP BY text_id),
    accs AS (
        SELECT text_id, list(account_id ORDER BY account_id) AS accounts
        FROM (SELECT DISTINCT text_id, account_id FROM requests) GROUP BY text_id)
    SELECT t.text_id, f.request_id, f.account_id, f.ts, t.system, t.prompt, t.n_requests,
           a.accounts[1:{max_accounts}] AS accounts, {map_cols}
    FROM texts t JOIN firsts f USING (text_id) JOIN accs a USING (text_id) {map_join}
    ORDER BY t.text_id
) TO '{path}' (FORMAT PARQUET)
"""


def _root(store_path: str | os.PathLike) -> Path:
    return Path(store_path) / PUBLISHED_DIR


def current_generation(store_path: str | os.PathLike) -> str | None:
    """The live generation's name, or ``None`` when nothing was published yet."""
    try:
        name = (_root(store_path) / "CURRENT").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name or None


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed: copy instead
        shutil.copy2(src, dst)


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def _export_tables(store, tmp: Path) -> dict:
    """Write the Parquet tables of one generation into ``tmp``; returns their row counts."""
    con = store.con
    has_map = store.has_table("text_map")
    con.execute(_HITS_SQL.format(
        max_accounts=MAX_ACCOUNTS, path=_quote(tmp / "hits.parquet"),
        map_cols="m.cluster_id::INTEGER AS cluster_id, m.capability::VARCHAR AS capability" if has_map
        else "NULL::INTEGER AS cluster_id, NULL::VARCHAR AS capability",
        map_join="LEFT JOIN text_map m USING (text_id)" if has_map else "")).fetchall()
    _parquet_to_arrow(tmp / "hits.parquet", tmp / "hits.arrow")
    con.execute(f"COPY (SELECT request_id, text_id FROM requests ORDER BY request_id) "
                f"TO '{_quote(tmp / 'requests.parquet')}' (FORMAT PARQUET)").fetchall()
    con.execute(f"COPY (SELECT text_id, shard FROM embedded ORDER BY text_id) "
                f"TO '{_quote(tmp / 'embedded.parquet')}' (FORMAT PARQUET)").fetchall()
    counts = {t: store.count(t) for t in ("requests", "texts", "embedded")}
    for table in ("accounts", "groups"):
        if store.has_table(table):
            con.execute(f"COPY (SELECT * FROM {table}) TO '{_quote(tmp / (table + '.parquet'))}' "
                        f"(FORMAT PARQUET)").fetchall()
            counts[table] = store.count(table)
    return counts


def _parquet_to_arrow(src: Path, dst: Path) -> None:
    """Rewrite a Parquet file as an uncompressed Arrow IPC file, batch by batch; removes ``src``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(src)
    with pa.OSFile(str(dst), "wb") as sink, pa.ipc.new_file(sink, pf.schema_arrow) as writer:
        for batch in pf.iter_batches(batch_size=65536):
            writer.write_batch(batch)
    src.unlink()


class _SortedLookup:
    """Row positions of int64 keys in a memory-mapped Arrow table sorted by that key column."""

    def __init__(self, table, key: str):
        self.table = table
        self.chunks = [c.to_numpy(zero_copy_only=False) for c in table.column(key).chunks]
        self.starts = np.cumsum([0] + [len(c) for c in self.chunks])[:-1]
        self.firsts = np.array([c[0] if len(c) else np.iinfo(np.int64).max for c in self.chunks], np.int64)

    def rows(self, keys: list[int]) -> list[int]:
        out = []
        for k in keys:
            ci = int(np.searchsorted(self.firsts, k, side="right")) - 1
            if ci < 0:
                continue
            chunk = self.chunks[ci]
            j = int(np.searchsorted(chunk, k))
            if j < len(chunk) and chunk[j] == k:
                out.append(int(self.starts[ci]) + j)
        return out


def _next_name(root: Path) -> str:
    nums = [int(m.group(1)) for p in root.iterdir() if (m := _GEN.fullmatch(p.name))] if root.exists() else []
    return f"g{(max(nums) + 1 if nums else 1):06d}"


def publish(store, keep: int = 2) -> Path:
    """Publish what lookups need from ``store`` (an open :class:`~promptcov.index.store.Store`).

    Works from a read-only store too (a reader can publish a store no job ever published).
    Returns the new generation's folder. ``keep`` generations survive pruning (at least 2).
    """
    t0 = time.perf_counter()
    root = _root(store.path)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        counts = _export_tables(store, tmp)
        (tmp / "vectors").mkdir()
        for p in store.shard_paths():
            _link_or_copy(p, tmp / "vectors" / p.name)
        if (store.index_dir / "manifest.json").exists():
            (tmp / "index").mkdir()
            for p in sorted(store.index_dir.iterdir()):
                if p.is_file() and not p.name.startswith("."):
                    _link_or_copy(p, tmp / "index" / p.name)
        m = store.manifest()
        for _ in range(100):  # another publisher may take a name first: take the next one
            name = _next_name(root)
            write_json(tmp / "snapshot.json", {
                "generation": name, "model": m.get("model"), "dim": m.get("dim"), "counts": counts,
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
            try:
                tmp.rename(root / name)
                break
            except OSError:
                continue
        else:  # pragma: no cover - 100 collisions in a row
            raise InputError(f"cannot name a new generation in {root}")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    with atomic_write(root / "CURRENT") as fh:
        fh.write(name + "\n")
    _prune(root, name, max(2, keep))
    log.info("published %s (%s) in %.1fs", name, counts, time.perf_counter() - t0)
    return root / name


def _prune(root: Path, current: str, keep: int) -> None:
    """Remove all but the newest ``keep`` generations (never ``current``) and stale temp folders."""
    gens = sorted((p for p in root.iterdir() if _GEN.fullmatch(p.name)), key=lambda p: int(p.name[1:]))
    for p in gens[:-keep]:
        if p.name != current:
            shutil.rmtree(p, ignore_errors=True)
    for p in root.glob(".tmp-*"):
        pid = p.name.split("-")[1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Snapshot:
    """Read-only view of one published generation (DuckDB over Parquet, in process, no lock).

    Thread-safe: each query runs on its own DuckDB cursor.
    """

    def __init__(self, folder: str | os.PathLike):
        import duckdb

        self.folder = Path(folder)
        if not (self.folder / "snapshot.json").exists():
            raise InputError(f"{self.folder}: not a published snapshot")
        self.manifest = read_json(self.folder / "snapshot.json")
        self.generation = self.manifest["generation"]
        self._con = duckdb.connect(":memory:")
        self._con.execute("SET enable_object_cache = true").fetchall()
        self._lock = threading.Lock()
        self.tables = set()
        import pyarrow as pa

        self._hits = pa.ipc.open_file(pa.memory_map(str(self.folder / "hits.arrow"))).read_all()
        self._hit_rows = _SortedLookup(self._hits, "text_id")
        for name in ("requests", "embedded", "accounts", "groups"):
            path = self.folder / f"{name}.parquet"
            if path.exists():
                self._con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{_quote(path)}')").fetchall()
                self.tables.add(name)

    @classmethod
    def open(cls, store_path: str | os.PathLike) -> Snapshot:
        """The store's live generation; ``InputError`` when nothing was published yet."""
        name = current_generation(store_path)
        if name is None:
            raise InputError(f"store {store_path} has no published snapshot; run `promptcov embed` first")
        return cls(_root(store_path) / name)

    @property
    def index_dir(self) -> Path:
        return self.folder / "index"

    @property
    def counts(self) -> dict:
        return dict(self.manifest.get("counts", {}))

    def _query(self, sql: str, params: list | None = None) -> list[tuple]:
        with self._lock:
            cur = self._con.cursor()
        try:
            return cur.execute(sql, params or []).fetchall()
        finally:
            cur.close()

    def hits(self, text_ids: list[int]) -> dict[int, tuple]:
        """``text_id -> (request_id, account_id, ts, prompt, n_requests, accounts, cluster_id, capability)``."""
        rows = self._hit_rows.rows([int(t) for t in text_ids])
        if not rows:
            return {}
        cols = ("text_id", "request_id", "account_id", "ts", "prompt", "n_requests", "accounts", "cluster_id",
                "capability")
        part = self._hits.select(list(cols)).take(rows).to_pydict()
        return {int(tid): tuple(part[c][i] for c in cols[1:]) for i, tid in enumerate(part["text_id"])}

    def systems(self, text_ids: list[int]) -> dict[int, str]:
        """``text_id -> system prompt`` ('' when none) of the given texts."""
        rows = self._hit_rows.rows([int(t) for t in text_ids])
        if not rows:
            return {}
        part = self._hits.select(["text_id", "system"]).take(rows).to_pydict()
        return {int(t): s or "" for t, s in zip(part["text_id"], part["system"], strict=True)}

    def text_of_request(self, request_id: str) -> int | None:
        """The text id of a stored request, or ``None`` when the request is unknown."""
        rows = self._query("SELECT text_id FROM requests WHERE request_id = ?", [request_id])
        return int(rows[0][0]) if rows else None

    def vector(self, text_id: int) -> np.ndarray | None:
        """The stored vector of one text, or ``None`` when it has no vector in this generation."""
        rows = self._query("SELECT shard FROM embedded WHERE text_id = ?", [int(text_id)])
        if not rows:
            return None
        with np.load(self.folder / "vectors" / f"shard-{int(rows[0][0]):06d}.npz") as z:
            pos = np.flatnonzero(z["ids"] == int(text_id))
            return None if len(pos) == 0 else np.asarray(z["vecs"][pos[0]], np.float32)

    def account(self, account_id: str) -> dict | None:
        """The account's row of the accounts table, or ``None`` (unknown, or never scored)."""
        return self._row("accounts", "account_id", account_id)

    def group(self, group_id: str) -> dict | None:
        """The group's row of the groups table, or ``None``."""
        return self._row("groups", "group_id", group_id) if group_id else None

    def _row(self, table: str, key: str, value: str) -> dict | None:
        if table not in self.tables:
            return None
        with self._lock:
            cur = self._con.cursor()
        try:
            cur.execute(f"SELECT * FROM {table} WHERE {key} = ? LIMIT 1", [value])
            cols = [d[0] for d in cur.description]
            row = cur.fetchone()
        finally:
            cur.close()
        return None if row is None else dict(zip(cols, row, strict=True))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._con.close()
