"""The store: one folder holding all state of one deployment.

Layout (see docs/DESIGN.md)::

    store.json            manifest: schema version, model and dimension once embedded
    catalog.duckdb        requests, texts, embedded, and the coverage tables
    quarantine/*.jsonl    bad records with source, line and reason
    vectors/shard-*.npz   embedded texts (ids int64, vecs float32); size and sha256 in table ``shards``
    index/                the FAISS index and its manifest
    map/, scores/         coverage artefacts

Why DuckDB: the request table is append-mostly and read by analytical scans (per account, per
week, per area); DuckDB is a columnar engine in one file, with transactions (a batch is stored
whole or not at all), a primary key that makes ingestion idempotent, and Parquet/CSV export.
Vectors live beside it as ``.npz`` shards written atomically, so an interrupted embed job loses
at most the shard in flight.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from promptcov.errors import InputError, JobError, ManifestMismatchError
from promptcov.index.shards import SHARDS_DDL, VectorShards
from promptcov.io import atomic_write, read_json, write_json

__all__ = ["Store", "SCHEMA_VERSION", "default_store_path"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: requests.content_hash (conflicting request ids are quarantined)

_DDL = """
CREATE TABLE IF NOT EXISTS requests (
    request_id VARCHAR PRIMARY KEY, account_id VARCHAR NOT NULL, ts TIMESTAMP NOT NULL,
    text_id BIGINT NOT NULL, conversation_id VARCHAR, turn_index INTEGER, model VARCHAR,
    org_id VARCHAR, ip VARCHAR, asn VARCHAR, payment_id VARCHAR, user_agent VARCHAR,
    meta VARCHAR, source VARCHAR, line BIGINT, content_hash VARCHAR);
CREATE TABLE IF NOT EXISTS texts (
    text_id BIGINT PRIMARY KEY, system VARCHAR NOT NULL, prompt VARCHAR NOT NULL, n_requests BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS embedded (text_id BIGINT PRIMARY KEY, shard INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    source VARCHAR, ingested_at TIMESTAMP, n_read BIGINT, n_stored BIGINT, n_duplicates BIGINT,
    n_quarantined BIGINT);
"""

_REQUEST_COLS = (
    "request_id", "account_id", "ts", "text_id", "conversation_id", "turn_index", "model", "org_id",
    "ip", "asn", "payment_id", "user_agent", "meta", "source", "line", "content_hash",
)
_BATCH_COLS = _REQUEST_COLS + ("system", "prompt")


def _conflict(request_id: str) -> str:
    return f"conflict: request_id {request_id!r} already stored with different content"


def _data_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "this data cannot be stored" (not a broken disk or a lock)."""
    import duckdb
    import pyarrow as pa

    return (duckdb.ConversionException, duckdb.ConstraintException, duckdb.InvalidInputException,
            duckdb.OutOfRangeException, duckdb.TypeMismatchException, pa.ArrowInvalid, pa.ArrowTypeError,
            OverflowError, UnicodeError, TypeError, ValueError)


def default_store_path() -> Path:
    """``$PROMPTCOV_STORE``, else ``./promptcov-store`` (the contract's default)."""
    return Path(os.environ.get("PROMPTCOV_STORE") or "promptcov-store")


class Store(VectorShards):
    """A promptcov store folder. ``Store(path)`` creates it when missing; ``create=False`` (every job
    but ingest, run and demo) refuses a path that holds no store, so a typo creates nothing.

    >>> import tempfile
    >>> s = Store(tempfile.mkdtemp())
    >>> s.count("requests")
    0
    """

    def __init__(self, path: str | os.PathLike, read_only: bool = False, create: bool = True):
        self.path = Path(path)
        self.read_only = read_only
        self.create = create and not read_only
        self._con = None
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"--store {self.path}: exists and is not a directory")
        missing = not self.manifest_path.exists() or (read_only and not (self.path / "catalog.duckdb").exists())
        if missing and not self.create:
            raise InputError(f"--store {self.path}: no promptcov store here (check the path; "
                             f"`promptcov ingest LOG --store {self.path}` creates one)")
        if self.create:
            self.path.mkdir(parents=True, exist_ok=True)
            if not self.manifest_path.exists():
                write_json(self.manifest_path, {
                    "schema_version": SCHEMA_VERSION,
                    "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "model": None, "dim": None})
        manifest = self.manifest()
        if manifest.get("schema_version") != SCHEMA_VERSION:
            raise ManifestMismatchError(
                f"{self.manifest_path}: store schema version {manifest.get('schema_version')} "
                f"!= this promptcov's {SCHEMA_VERSION}")

    # -- paths ---------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.path / "store.json"

    @property
    def quarantine_dir(self) -> Path:
        return self.path / "quarantine"

    @property
    def vectors_dir(self) -> Path:
        return self.path / "vectors"

    @property
    def index_dir(self) -> Path:
        return self.path / "index"

    @property
    def map_dir(self) -> Path:
        return self.path / "map"

    # -- manifest ------------------------------------------------------------------------
    def manifest(self) -> dict:
        return read_json(self.manifest_path)

    def bind_model(self, model: str, dim: int) -> None:
        """Record the embedding model; refuse a second, different one (vectors never mix)."""
        m = self.manifest()
        if m.get("model") not in (None, model) or m.get("dim") not in (None, dim):
            raise ManifestMismatchError(
                f"store {self.path} holds vectors of model {m.get('model')!r} (dim {m.get('dim')}), "
                f"not {model!r} (dim {dim}); use the store's model (--model {m.get('model')}) "
                f"or a new --store")
        if m.get("model") is None:
            m.update(model=model, dim=int(dim))
            write_json(self.manifest_path, m)

    # -- database ------------------------------------------------------------------------
    @property
    def con(self):
        """The DuckDB connection (opened lazily, tables created on first open)."""
        if self._con is None:
            import duckdb

            db = self.path / "catalog.duckdb"
            try:
                self._con = duckdb.connect(str(db), read_only=self.read_only)
            except duckdb.IOException as exc:  # busy (locked by another job) or unreadable: a job failure
                raise JobError(f"cannot open {db}: {exc} (is another promptcov job using this store?)") from exc
            if not self.read_only:
                self._con.execute(_DDL).fetchall()
                self._con.execute(SHARDS_DDL).fetchall()
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator:
        """One DuckDB transaction: committed when the block ends, rolled back on any error."""
        con = self.con
        con.execute("BEGIN TRANSACTION").fetchall()
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK").fetchall()
            raise
        con.execute("COMMIT").fetchall()

    def replace_table(self, name: str, table) -> None:
        """Replace table ``name`` by the Arrow ``table`` atomically (readers see the old or the new one)."""
        if not re.fullmatch(r"[a-z_]+", name):
            raise ValueError(f"bad table name {name!r}")
        self.con.register("_new_tbl", table)
        try:
            with self.transaction() as con:
                con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _new_tbl").fetchall()
        finally:
            self.con.unregister("_new_tbl")

    def has_table(self, name: str) -> bool:
        row = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchall()[0]
        return bool(row[0])

    def count(self, table: str) -> int:
        if not re.fullmatch(r"[a-z_]+", table):
            raise ValueError(f"bad table name {table!r}")
        if not self.has_table(table):
            return 0
        return int(self.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])

    # -- ingest ----------------------------------------------------------------------------
    def add_requests(self, rows: list[dict]) -> tuple[int, int, list[tuple[int, str]]]:
        """Insert normalised records (with ``text_id``, ``system``, ``prompt``, ``content_hash``).

        Returns ``(stored, duplicates, rejected)``. A ``request_id`` already stored (or earlier in
        the batch) with the same ``content_hash`` is a duplicate and is skipped, which makes
        re-ingesting a file a no-op; with a different content hash it is a conflict. ``rejected``
        lists ``(index in rows, reason)`` for conflicts and for rows the database refused; the
        caller quarantines them. Good rows are never lost to a bad one: a batch the database
        refuses is split in halves until the offending rows are isolated. Only the texts of
        stored requests are added. A failure that is not about the data (disk, lock) raises
        :class:`~promptcov.errors.JobError`.
        """
        if not rows:
            return 0, 0, []
        rejected: list[tuple[int, str]] = []
        first: dict[str, int] = {}
        dup = 0
        for i, r in enumerate(rows):
            j = first.setdefault(r["request_id"], i)
            if j != i:
                if rows[j]["content_hash"] == r["content_hash"]:
                    dup += 1
                else:
                    rejected.append((i, _conflict(r["request_id"])))
        stored_hash = self._stored_hashes(list(first))
        fresh = []
        for rid, i in first.items():
            if rid not in stored_hash:
                fresh.append(i)
            elif stored_hash[rid] == rows[i]["content_hash"]:
                dup += 1
            else:
                rejected.append((i, _conflict(rid)))
        stored = self._insert_split(rows, fresh, rejected)
        rejected.sort()
        return stored, dup, rejected

    def _stored_hashes(self, ids: list[str]) -> dict[str, str | None]:
        import pyarrow as pa

        try:
            tbl = pa.table({"request_id": pa.array(ids, pa.string())})
        except (pa.ArrowException, UnicodeError):  # normalize_record refuses these; stay safe anyway
            return {}
        self.con.register("batch_ids", tbl)
        try:
            return dict(self.con.execute("SELECT r.request_id, r.content_hash FROM requests r "
                                         "JOIN batch_ids b USING (request_id)").fetchall())
        finally:
            self.con.unregister("batch_ids")

    def _insert_split(self, rows: list[dict], idx: list[int], rejected: list) -> int:
        """Insert ``rows[idx]``; on a data error, bisect so that only the offending rows are rejected."""
        if not idx:
            return 0
        try:
            return self._insert(rows, idx)
        except _data_errors() as exc:
            if len(idx) == 1:
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                rejected.append((idx[0], f"cannot be stored: {msg[:200]}"))
                log.warning("request %r refused by the store: %s", rows[idx[0]].get("request_id"), msg[:200])
                return 0
        half = len(idx) // 2
        return self._insert_split(rows, idx[:half], rejected) + self._insert_split(rows, idx[half:], rejected)

    def _insert(self, rows: list[dict], idx: list[int]) -> int:
        import duckdb
        import pyarrow as pa

        batch = pa.table({c: [rows[i][c] for i in idx] for c in _BATCH_COLS})
        cols = ", ".join(_REQUEST_COLS)
        self.con.register("batch_req", batch)
        try:
            with self.transaction() as con:
                con.execute(f"INSERT INTO requests ({cols}) SELECT {cols} FROM batch_req").fetchall()
                con.execute("""
                    INSERT INTO texts SELECT b.text_id, any_value(b.system), any_value(b.prompt), 0
                    FROM batch_req b ANTI JOIN texts x ON b.text_id = x.text_id GROUP BY b.text_id""").fetchall()
                con.execute("""
                    UPDATE texts SET n_requests = texts.n_requests + c.n
                    FROM (SELECT text_id, count(*) AS n FROM batch_req GROUP BY text_id) c
                    WHERE texts.text_id = c.text_id""").fetchall()
        except duckdb.IOException as exc:
            raise JobError(f"cannot write to the store {self.path}: {exc}") from exc
        finally:
            self.con.unregister("batch_req")
        return len(idx)

    def write_quarantine(self, name: str, records: list[dict]) -> Path:
        """Write bad records (``source, line, reason, raw``) to ``quarantine/<name>.jsonl`` atomically."""
        import json

        path = self.quarantine_dir / f"{name}.jsonl"
        with atomic_write(path) as fh:
            for r in records:
                fh.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
        return path

    def quarantined(self) -> Iterator[dict]:
        """Every quarantined record, file by file."""
        import json

        if not self.quarantine_dir.exists():
            return
        for p in sorted(self.quarantine_dir.glob("*.jsonl")):
            with open(p, encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        yield json.loads(line)

    def texts_for(self, text_ids: np.ndarray) -> list[tuple[str, str]]:
        """``(system, prompt)`` of each text id, in the order given."""
        import pyarrow as pa

        ids = np.asarray(text_ids, dtype=np.int64)
        self.con.register("_texts_for", pa.table({"text_id": ids, "pos": np.arange(len(ids))}))
        try:
            return self.con.execute("SELECT t.system, t.prompt FROM _texts_for i JOIN texts t USING (text_id) "
                                    "ORDER BY i.pos").fetchall()
        finally:
            self.con.unregister("_texts_for")
