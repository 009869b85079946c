"""``promptcov verify [--repair]``: check every byte of a store's vectors and index, and repair them.

What is checked (the full check; jobs run a cheap one when they start, see
:mod:`promptcov.index.shards` and :meth:`promptcov.index.faiss_index.VectorIndex.load`):

* every vector shard: present, size and sha256 as recorded, arrays readable;
* every shard holds exactly the texts recorded for it: no vector of a text the store does not
  hold, no second vector of a text recorded in another shard;
* shard files no job recorded (an embed job killed between writing and recording);
* the FAISS index: present, size and sha256 as in its manifest, readable, and holding exactly
  the recorded shards;
* texts without a vector (not damage: work for ``promptcov embed``).

``--repair`` records unrecorded shards, forgets damaged or missing ones (their texts are
embedded again by the next ``promptcov embed``: vectors are derived, texts are the source),
rewrites shards that hold vectors they should not, and rebuilds the index from the shards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from promptcov.config import IndexConfig
from promptcov.errors import DamagedStoreError, InputError, ManifestMismatchError
from promptcov.index.embed import index_kwargs, pending_count, sync_index
from promptcov.index.faiss_index import VectorIndex
from promptcov.index.store import Store

__all__ = ["VerifyReport", "verify_store"]

log = logging.getLogger(__name__)


@dataclass
class VerifyReport:
    """What :func:`verify_store` found and, with ``repair``, what it fixed."""

    store: str = ""
    shards_ok: int = 0
    shards_damaged: dict[int, str] = field(default_factory=dict)
    shards_missing: list[int] = field(default_factory=list)
    shards_unrecorded: int = 0
    vectors_without_texts: int = 0
    duplicate_vectors: int = 0
    texts_without_vectors: int = 0
    index: str = "ok"               # ok | missing | damaged | stale | none (no vectors yet)
    index_detail: str = ""
    repaired: list[str] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """True when no damage remains (texts waiting for ``promptcov embed`` are not damage)."""
        return not self.remaining

    def lines(self) -> list[str]:
        """The summary printed by ``promptcov verify``."""
        bad = [f"shard {n:06d} damaged ({p})" for n, p in sorted(self.shards_damaged.items())]
        bad += [f"shard {n:06d} missing" for n in self.shards_missing]
        out = [f"verify {self.store}: {self.shards_ok} shard(s) ok, {len(self.shards_damaged)} damaged, "
               f"{len(self.shards_missing)} missing, {self.shards_unrecorded} unrecorded; "
               f"{self.vectors_without_texts} vector(s) without a text, {self.duplicate_vectors} duplicate "
               f"vector(s); index {self.index}" + (f" ({self.index_detail})" if self.index_detail else "")]
        out += [f"        {b}" for b in bad[:20]] + ([f"        ... {len(bad) - 20} more"] if len(bad) > 20 else [])
        out += [f"repaired: {r}" for r in self.repaired]
        if self.texts_without_vectors:
            out.append(f"{self.texts_without_vectors} text(s) have no vector yet: run `promptcov embed`")
        if self.remaining:
            out.append("damage remains: " + "; ".join(self.remaining) + " (run `promptcov verify --repair`)")
        else:
            out.append("store is healthy" + (" after repair" if self.repaired else ""))
        return out


def _check_shards(store: Store, report: VerifyReport) -> dict[int, np.ndarray]:
    """Read every recorded shard; fill the report; return ``{shard: ids to drop}`` of sound shards."""
    drop: dict[int, np.ndarray] = {}
    for n in sorted(store.registered_shards()):
        ids, _, problem = store.load_shard(n)
        if problem == "missing":
            report.shards_missing.append(n)
            continue
        recorded_here = np.asarray(store.con.execute("SELECT text_id FROM embedded WHERE shard = ?", [n]
                                                     ).fetchnumpy()["text_id"], np.int64)
        if problem is None and not np.isin(recorded_here, ids).all():
            problem = f"damaged ({int((~np.isin(recorded_here, ids)).sum())} recorded text(s) not in the file)"
        if problem:
            report.shards_damaged[n] = problem.removeprefix("damaged (").removesuffix(")")
            continue
        report.shards_ok += 1
        keep = store.con.execute("SELECT e.text_id FROM embedded e SEMI JOIN texts t USING (text_id) "
                                 "WHERE e.shard = ?", [n]).fetchnumpy()["text_id"]
        extra = ~np.isin(ids, np.asarray(keep, np.int64))
        if extra.any():
            orphan = extra & np.isin(ids, recorded_here)
            report.vectors_without_texts += int(orphan.sum())
            report.duplicate_vectors += int((extra & ~orphan).sum())
            drop[n] = ids[extra]
    return drop


def _repair_shards(store: Store, report: VerifyReport, drop: dict[int, np.ndarray]) -> None:
    freed = 0
    if report.shards_unrecorded:
        store.reconcile_shards()
        report.repaired.append(f"recorded {report.shards_unrecorded} shard(s) left by an interrupted embed job")
    bad = sorted(set(report.shards_damaged) | set(report.shards_missing))
    if bad:
        freed = store.forget_shards(bad)
        report.repaired.append(f"forgot {len(bad)} damaged or missing shard(s); their {freed} text(s) "
                               f"will be embedded again by `promptcov embed`")
    for n, ids in drop.items():
        sids, svecs = store.read_shard(n)
        keep = ~np.isin(sids, ids)
        store.con.execute("DELETE FROM embedded WHERE shard = ? AND text_id IN (SELECT unnest(?))",
                          [n, [int(i) for i in ids]]).fetchall()
        if keep.any():
            store.write_shard(n, sids[keep], svecs[keep])
        else:
            store.forget_shards([n])
    if drop:
        n_drop = sum(len(v) for v in drop.values())
        report.repaired.append(f"removed {n_drop} vector(s) without a text or duplicated from {len(drop)} shard(s)")


def _check_index(store: Store, report: VerifyReport) -> None:
    m = store.manifest()
    registered = set(store.registered_shards())
    if not (store.index_dir / "manifest.json").exists():
        report.index = "none" if not registered else "missing"
        return
    try:
        index = VectorIndex.load(store.index_dir, model=m.get("model"), dim=m.get("dim"), checksum_max_bytes=None)
    except (DamagedStoreError, ManifestMismatchError) as exc:
        report.index, report.index_detail = "damaged", str(exc).split(";")[0].removeprefix("index damaged: ")[:200]
        return
    if index.shards != registered or index.ntotal != store.count("embedded"):
        report.index = "stale"
        report.index_detail = (f"{index.ntotal} vectors from {len(index.shards)} shard(s); the store records "
                               f"{store.count('embedded')} from {len(registered)}")


def verify_store(store: Store, repair: bool = False, index_cfg: IndexConfig | None = None) -> VerifyReport:
    """Check the store's shards and index fully; with ``repair``, fix what was found.

    Returns a :class:`VerifyReport`; ``report.healthy`` is False when damage remains.
    """
    if store.read_only and repair:
        raise InputError("verify --repair needs a writable store")
    cfg = index_cfg or IndexConfig()
    report = VerifyReport(store=str(store.path))
    registered = set(store.registered_shards())
    report.shards_unrecorded = sum(1 for p in store.shard_paths() if int(p.stem.split("-")[1]) not in registered)
    drop = _check_shards(store, report)
    _check_index(store, report)
    if repair:
        _repair_shards(store, report, drop)
        if not store.read_only:
            store.repair_shards(full=False)  # record checksums of shards from older stores
        changed = bool(report.repaired)
        if not store.count("embedded") and (store.index_dir / "manifest.json").exists():
            (store.index_dir / "manifest.json").unlink()  # no vectors left: no index (embed builds one)
            (store.index_dir / "index.faiss").unlink(missing_ok=True)
            report.repaired.append("removed the index: no vectors are left")
        elif (report.index != "ok" or changed) and store.count("embedded") and store.manifest().get("model"):
            m = store.manifest()
            sync_index(store, m["model"], int(m["dim"]), rebuild=True, **index_kwargs(cfg))
            report.repaired.append(f"rebuilt the index from {len(store.registered_shards())} shard(s)")
        fresh = VerifyReport()
        _check_shards(store, fresh)
        _check_index(store, fresh)
        check = fresh
    else:
        check = report
    report.texts_without_vectors = pending_count(store)
    if check.shards_damaged or check.shards_missing:
        report.remaining.append(f"{len(check.shards_damaged) + len(check.shards_missing)} damaged or missing shard(s)")
    if check.vectors_without_texts or check.duplicate_vectors or check.shards_unrecorded:
        report.remaining.append("shards hold vectors the store does not record")
    if check.index not in ("ok", "none"):
        report.remaining.append(f"index {check.index}")
    return report
