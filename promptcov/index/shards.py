"""Vector shards: the store's embedded texts as ``vectors/shard-NNNNNN.npz`` files, with checksums.

Each shard file is written atomically, then recorded (its ids in ``embedded``, its size and
sha256 in ``shards``) in one transaction. Every read checks size and sha256, so a truncated or
bit-flipped shard is an error naming the file, never silently wrong vectors; a job opening the
store checks every recorded shard's size once (cheap), ``promptcov verify`` checks every byte.
A damaged or missing shard is *forgotten* (file and rows deleted), so its texts are embedded
again by the next ``promptcov embed``: vectors are derived data, the texts are the source.

:class:`VectorShards` is a mixin of :class:`promptcov.index.store.Store` (it uses the store's
``con``, ``vectors_dir`` and ``manifest()``).
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from promptcov.errors import DamagedStoreError
from promptcov.io import atomic_write

__all__ = ["VectorShards", "SHARDS_DDL"]

log = logging.getLogger(__name__)

# one row per vector shard file: its size and sha256, recorded with its ids in one transaction
SHARDS_DDL = """
CREATE TABLE IF NOT EXISTS shards (shard INTEGER PRIMARY KEY, n_vectors BIGINT NOT NULL, bytes BIGINT NOT NULL,
                                   sha256 VARCHAR NOT NULL);
"""

_REPAIR = "run `promptcov embed` (it re-embeds lost vectors) or `promptcov verify --repair`"


def _load_shard(data: bytes, recorded: tuple[int, str] | None, dim: int | None):
    """``(ids, vecs, None)`` from a shard file's bytes, or ``(None, None, problem)``."""
    if recorded is not None:
        if len(data) != recorded[0]:
            return None, None, f"{len(data)} bytes, {recorded[0]} recorded"
        if hashlib.sha256(data).hexdigest() != recorded[1]:
            return None, None, "sha256 differs from the recorded one"
    try:
        with np.load(io.BytesIO(data)) as z:
            ids, vecs = z["ids"], z["vecs"]
    except Exception as exc:  # noqa: BLE001 - damaged bytes may fail anywhere in the zip/npy decoders
        return None, None, f"unreadable: {type(exc).__name__}: {str(exc)[:80]}"
    if ids.ndim != 1 or vecs.ndim != 2 or len(ids) != len(vecs) or (dim and vecs.shape[1] != dim):
        return None, None, f"bad arrays: ids {ids.shape}, vecs {vecs.shape}"
    return ids, vecs, None


class VectorShards:
    """Shard I/O and integrity checks of a store (mixed into :class:`~promptcov.index.store.Store`)."""

    _shard_meta: dict[int, tuple[int, str]] | None = None
    _shards_checked = False

    def shard_path(self, shard: int) -> Path:
        return self.vectors_dir / f"shard-{shard:06d}.npz"

    def shard_paths(self) -> list[Path]:
        return sorted(self.vectors_dir.glob("shard-*.npz"))

    @staticmethod
    def _shard_number(path: Path) -> int:
        return int(path.stem.split("-")[1])

    def write_shard(self, shard: int, ids: np.ndarray, vecs: np.ndarray) -> Path:
        """Persist one embedded batch atomically, then record its ids and checksum."""
        buf = io.BytesIO()
        np.savez(buf, ids=np.asarray(ids, dtype=np.int64), vecs=np.ascontiguousarray(vecs, np.float32))
        data = buf.getvalue()
        path = self.shard_path(shard)
        with atomic_write(path, "wb") as fh:
            fh.write(data)
        self._register_shard(shard, ids, len(data), hashlib.sha256(data).hexdigest(), replace=True)
        return path

    def _register_shard(self, shard: int, ids: np.ndarray, nbytes: int, sha: str, replace: bool = False) -> None:
        import pyarrow as pa

        tbl = pa.table({"text_id": np.asarray(ids, np.int64), "shard": np.full(len(ids), shard, np.int32)})
        self.con.register("shard_ids", tbl)
        try:
            with self.transaction() as con:
                if replace:
                    con.execute("DELETE FROM embedded WHERE shard = ?", [shard]).fetchall()
                con.execute("INSERT INTO embedded SELECT s.* FROM shard_ids s "
                            "ANTI JOIN embedded e ON s.text_id = e.text_id").fetchall()
                con.execute("INSERT OR REPLACE INTO shards VALUES (?, ?, ?, ?)",
                            [shard, len(ids), nbytes, sha]).fetchall()
        finally:
            self.con.unregister("shard_ids")
        self._shard_meta = None

    def shard_checksums(self) -> dict[int, tuple[int, str]]:
        """``{shard: (bytes, sha256)}`` as recorded when each shard was written."""
        if self._shard_meta is None:
            self._shard_meta = {} if not self.has_table("shards") else {
                int(n): (int(b), str(h)) for n, b, h in
                self.con.execute("SELECT shard, bytes, sha256 FROM shards").fetchall()}
        return self._shard_meta

    def registered_shards(self) -> dict[int, int]:
        """``{shard: number of texts}`` for every shard recorded in ``embedded``."""
        return {int(n): int(c) for n, c in
                self.con.execute("SELECT shard, count(*) FROM embedded GROUP BY shard").fetchall()}

    def read_shard(self, shard: int) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, vecs)`` of one shard, after checking its recorded size and sha256.

        Raises :class:`DamagedStoreError` when the file is missing, truncated, altered or unreadable.
        """
        ids, vecs, problem = self.load_shard(shard)
        if problem:
            raise DamagedStoreError(f"vector shard {self.shard_path(shard)} is {problem}; {_REPAIR}")
        return ids, vecs

    def load_shard(self, shard: int) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
        """``(ids, vecs, None)`` of a sound shard, or ``(None, None, problem)``: "missing" or "damaged (...)"."""
        try:
            data = self.shard_path(shard).read_bytes()
        except FileNotFoundError:
            return None, None, "missing"
        ids, vecs, problem = _load_shard(data, self.shard_checksums().get(shard), self.manifest().get("dim"))
        return ids, vecs, (f"damaged ({problem})" if problem else None)

    def shard_problems(self, full: bool = False) -> dict[int, str]:
        """``{shard: problem}`` for recorded shards that are missing or damaged.

        The cheap check (``full=False``) compares each file's size with the recorded size; the full
        one also reads every shard and checks its sha256 and its arrays.
        """
        meta = self.shard_checksums()
        dim = self.manifest().get("dim")
        out = {}
        for n in sorted(self.registered_shards()):
            path = self.shard_path(n)
            if not path.exists():
                out[n] = "missing"
            elif n in meta and path.stat().st_size != meta[n][0]:
                out[n] = f"{path.stat().st_size} bytes, {meta[n][0]} recorded"
            elif full:
                problem = _load_shard(path.read_bytes(), meta.get(n), dim)[2]
                if problem:
                    out[n] = problem
        return out

    def check_shards(self) -> None:
        """The cheap shard check, once per open store; raises :class:`DamagedStoreError` naming the shards."""
        if self._shards_checked:
            return
        problems = self.shard_problems(full=False)
        if problems:
            listed = ", ".join(f"{self.shard_path(n).name} ({p})" for n, p in list(problems.items())[:5])
            more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
            raise DamagedStoreError(f"store {self.path}: vector shard(s) {listed}{more}; {_REPAIR}")
        self._shards_checked = True

    def forget_shards(self, shards: Iterable[int]) -> int:
        """Delete shard files and their rows, so their texts are embedded again; returns the texts freed.

        The files go first: a job killed in between leaves recorded shards without files, which the
        next check finds again (never a damaged file that could be recorded afresh).
        """
        shards = sorted(set(int(n) for n in shards))
        if not shards:
            return 0
        for n in shards:
            self.shard_path(n).unlink(missing_ok=True)
        marks = ", ".join("?" * len(shards))
        with self.transaction() as con:
            freed = con.execute(f"SELECT count(*) FROM embedded WHERE shard IN ({marks})", shards).fetchall()[0][0]
            con.execute(f"DELETE FROM embedded WHERE shard IN ({marks})", shards).fetchall()
            con.execute(f"DELETE FROM shards WHERE shard IN ({marks})", shards).fetchall()
        self._shard_meta = None
        self._shards_checked = False
        log.warning("forgot %d damaged or missing vector shard(s) (%d texts will be embedded again)",
                    len(shards), freed)
        return int(freed)

    def repair_shards(self, full: bool = False) -> dict[int, str]:
        """Record shards left by a killed job, checksum shards that have none (older stores), and
        forget missing or damaged ones; returns ``{shard: problem}`` of the forgotten shards."""
        self.reconcile_shards()
        meta = self.shard_checksums()
        problems: dict[int, str] = {}
        for n, count in self.registered_shards().items():
            path = self.shard_path(n)
            if n in meta or not path.exists():
                continue
            data = path.read_bytes()
            problem = _load_shard(data, None, self.manifest().get("dim"))[2]
            if problem:
                problems[n] = problem
            else:
                self.con.execute("INSERT OR REPLACE INTO shards VALUES (?, ?, ?, ?)",
                                 [n, count, len(data), hashlib.sha256(data).hexdigest()]).fetchall()
                self._shard_meta = None
        problems.update(self.shard_problems(full=full))
        self.forget_shards(problems)
        self._shards_checked = True
        return problems

    def reconcile_shards(self) -> int:
        """Record shards written by a job that died before recording them; returns how many.

        An unrecorded file that does not load is deleted (its texts are still pending), and so is
        one whose texts are all recorded in other shards; vectors of texts recorded elsewhere are
        dropped from it, so no text ever has two vectors."""
        known = set(self.registered_shards())
        fixed = 0
        for p in self.shard_paths():
            n = self._shard_number(p)
            if n in known:
                continue
            ids, vecs, problem = _load_shard(p.read_bytes(), None, self.manifest().get("dim"))
            new = None if problem else ~self._recorded(ids)
            if problem or not new.any():
                log.warning("deleting unrecorded shard %s (%s)", p, problem or "its texts are recorded elsewhere")
                p.unlink()
                continue
            self.write_shard(n, ids[new], vecs[new])
            fixed += 1
        if fixed:
            log.info("recorded %d shard(s) left by an interrupted embed job", fixed)
        return fixed

    def _recorded(self, ids: np.ndarray) -> np.ndarray:
        """Mask of ``ids`` that already have a vector recorded in ``embedded``."""
        import pyarrow as pa

        self.con.register("_rec_ids", pa.table({"text_id": np.asarray(ids, np.int64)}))
        try:
            found = self.con.execute("SELECT text_id FROM _rec_ids SEMI JOIN embedded USING (text_id)"
                                     ).fetchnumpy()["text_id"]
        finally:
            self.con.unregister("_rec_ids")
        return np.isin(ids, np.asarray(found, np.int64))

    def next_shard_number(self) -> int:
        paths = self.shard_paths()
        used = [self._shard_number(paths[-1])] if paths else []
        used += list(self.shard_checksums()) + list(self.registered_shards())
        return max(used) + 1 if used else 0

    def iter_shards(self, shards: Iterable[int] | None = None) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield ``(shard, ids, vecs)`` for every recorded (or the given) shard, one at a time, each checked."""
        self.check_shards()
        wanted = None if shards is None else set(shards)
        for n in sorted(self.registered_shards()):
            if wanted is None or n in wanted:
                ids, vecs = self.read_shard(n)
                yield n, ids, vecs

    def get_vectors(self, text_ids: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors of the given texts: ``(ids_found, vecs)`` in the order of ``ids_found``."""
        ids = np.unique(np.asarray(list(text_ids), dtype=np.int64))
        if len(ids) == 0:
            return ids, np.zeros((0, self.manifest().get("dim") or 0), np.float32)
        import pyarrow as pa

        self.con.register("want_ids", pa.table({"text_id": ids}))
        try:
            rows = self.con.execute("SELECT e.text_id, e.shard FROM embedded e JOIN want_ids w USING (text_id)"
                                    ).fetchall()
        finally:
            self.con.unregister("want_ids")
        by_shard: dict[int, set[int]] = {}
        for tid, shard in rows:
            by_shard.setdefault(shard, set()).add(tid)
        out_ids, out_vecs = [], []
        for _, sids, svecs in self.iter_shards(by_shard):
            mask = np.isin(sids, np.fromiter(by_shard[_], np.int64))
            out_ids.append(sids[mask])
            out_vecs.append(svecs[mask])
        if not out_ids:
            return np.zeros(0, np.int64), np.zeros((0, self.manifest().get("dim") or 0), np.float32)
        return np.concatenate(out_ids), np.concatenate(out_vecs)
