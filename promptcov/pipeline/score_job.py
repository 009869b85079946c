"""The score job: one window of requests -> account links, pivots, scores, flags and evidence.

Builds a :class:`~promptcov.coverage.frame.RequestFrame` from the store, runs the account
linker, the pivot detector and the sweep detector, and writes the contract's ``accounts`` and
``groups`` tables (always into the store, and to ``--out`` when given) plus the store-only
``account_metrics``, ``links`` and ``score_runs`` tables.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from promptcov.config import Config
from promptcov.coverage.frame import RequestFrame
from promptcov.errors import InputError
from promptcov.index.snapshot import publish
from promptcov.index.store import Store
from promptcov.pipeline.progress import Progress, ensure_progress
from promptcov.reports.tables import arrow_table, write_table

__all__ = ["ScoreSummary", "run_score", "load_frame", "parse_day", "write_table"]

log = logging.getLogger(__name__)

ACCOUNT_COLUMNS = ("account_id", "n_requests", "score", "flagged", "group_id", "top_capability", "reasons")
GROUP_COLUMNS = ("group_id", "n_accounts", "n_requests", "score", "flagged", "capabilities", "reasons")


@dataclass
class ScoreSummary:
    window: tuple[str, str] = ("", "")
    accounts: int = 0
    flagged_accounts: int = 0
    groups: int = 0
    flagged_groups: int = 0
    threshold: float = 0.0
    target_fpr: float = 0.0
    benign: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (f"score {self.window[0]}..{self.window[1]}: {self.accounts} accounts, {self.flagged_accounts} flagged; "
                f"{self.groups} linked groups, {self.flagged_groups} flagged; {self.benign} benign systematic; "
                f"threshold {self.threshold:.3f} (expected false-positive rate {self.target_fpr:.1%}) "
                f"in {self.seconds:.0f}s")


def parse_day(value: str | None, flag: str) -> datetime | None:
    """An ISO date or date-time given on the command line, as naive UTC."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time())
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"{flag} {value!r}: expected an ISO date like 2026-11-16") from exc
    return dt.astimezone(timezone.utc).replace(tzinfo=None) if dt.tzinfo else dt


def load_frame(store: Store, since: datetime | None, until: datetime | None) -> RequestFrame:
    """The requests of ``[since, until)`` with their map columns and vectors, sorted by (account, ts)."""
    if not store.has_table("text_map"):
        raise InputError("no capability map yet; run `promptcov map` first")
    where, params = [], []
    if since is not None:
        where.append("r.ts >= ?")
        params.append(since)
    if until is not None:
        where.append("r.ts < ?")
        params.append(until)
    cond = ("WHERE " + " AND ".join(where)) if where else ""
    tmpl_join = ("LEFT JOIN templates tp ON tp.template_id = m.template_id" if store.has_table("templates")
                 else "LEFT JOIN (SELECT NULL::VARCHAR AS template_id, false AS popular) tp ON false")
    rel = store.con.sql(f"""
        SELECT r.request_id, r.account_id, epoch_ms(r.ts) / 1000.0 AS ts, r.text_id,
               coalesce(m.cluster_id, -1) AS cluster_id, coalesce(m.capability, 'other') AS capability,
               m.marker, m.template_id, coalesce(tp.popular, false) AS template_popular,
               coalesce(r.turn_index, -1) AS turn_index, r.conversation_id, r.model, r.ip, r.asn, r.payment_id,
               r.user_agent, r.org_id
        FROM requests r LEFT JOIN text_map m USING (text_id) {tmpl_join} {cond}
        ORDER BY r.account_id, r.ts, r.request_id""", params=params)
    cols = rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()
    # string columns stay Arrow arrays: the frame interns them (one object per distinct value) without
    # first making one Python string per row; numbers and request ids become numpy arrays
    text = (pa.types.is_string, pa.types.is_large_string)
    cols = {name: (col if any(t(col.type) for t in text) and name != "request_id" else col.to_numpy())
            for name, col in zip(cols.column_names, cols.columns, strict=True)}
    n = len(cols["request_id"])
    if n == 0:
        raise InputError("no requests in the scoring window; check --since/--until against the store")
    text_ids = np.asarray(cols["text_id"], dtype=np.int64)
    uniq = np.unique(text_ids)
    vid, vecs = store.get_vectors(uniq)
    order = np.argsort(vid)
    vid, vecs = vid[order], vecs[order]
    pos = np.searchsorted(vid, text_ids)
    pos = np.clip(pos, 0, max(len(vid) - 1, 0))
    vec_row = np.where((len(vid) > 0) & (vid[pos] == text_ids) if len(vid) else np.zeros(n, bool), pos, -1)
    store.con.register("_win_ids", pa.table({"text_id": uniq}))
    try:
        prompts = dict(store.con.execute("SELECT t.text_id, t.prompt FROM texts t JOIN _win_ids USING (text_id)"
                                         ).fetchall())
    finally:
        store.con.unregister("_win_ids")
    data = {k: v if isinstance(v, pa.ChunkedArray) else _nulls_to_none(v) for k, v in cols.items()}
    data["vec_row"] = vec_row
    data["template_popular"] = np.asarray(data["template_popular"], dtype=bool)
    return RequestFrame.from_columns(data, vectors=vecs, prompts=prompts, sort=False)


def _nulls_to_none(values) -> np.ndarray:
    """DuckDB returns columns with NULLs as masked arrays; NULL must become ``None``, not a filler."""
    if not isinstance(values, np.ma.MaskedArray):
        return np.asarray(values)
    mask = np.ma.getmaskarray(values)
    if not mask.any():
        return np.asarray(values.data)
    arr = values.data.astype(object)
    arr[mask] = None
    return arr


def run_score(store: Store, config: Config, progress: Progress | None = None, *, since: datetime | None = None,
              until: datetime | None = None, out: Path | None = None) -> ScoreSummary:
    """Score every account and linked group active in ``[since, until)``; write the tables."""
    progress = ensure_progress(progress)
    cfg = config.score
    from promptcov.coverage.linking.linker import AccountLinker
    from promptcov.coverage.scoring.detector import SweepDetector
    from promptcov.coverage.scoring.pivots import detect_pivots

    if since is not None and until is not None and since >= until:
        raise InputError(f"--since {since:%Y-%m-%d} is not before --until {until:%Y-%m-%d}")
    if out is not None and out.suffix.lower() not in (".csv", ".parquet", ".json"):
        raise InputError(f"--out {out}: the suffix must be .csv, .parquet or .json")
    t0 = time.perf_counter()
    frame = load_frame(store, since, until)
    log.info("scoring %d requests of %d accounts", len(frame), len(np.unique(frame.account_id)))
    progress.update("score", 0, 3)
    linker = AccountLinker(cfg.linking).fit(frame)
    progress.update("score", 1, 3)
    pivots = detect_pivots(frame, linker.groups_, cfg.pivots)
    det = SweepDetector(cfg.detector, weights=cfg.weights, high_value=high_value_weights(config)).fit(
        frame, groups=linker.groups_, group_members=linker.group_members_, links=linker.edges_, pivots=pivots,
        membership=linker.membership_, cohesion=linker.cohesion_)
    progress.update("score", 3, 3)
    w_start = since or datetime.fromtimestamp(float(frame.ts.min()), tz=timezone.utc).replace(tzinfo=None)
    w_end = until or (datetime.fromtimestamp(float(frame.ts.max()), tz=timezone.utc).replace(tzinfo=None)
                      + timedelta(seconds=1))
    for r in det.accounts_:
        r["window_start"], r["window_end"] = w_start, w_end
    acc_cols = ACCOUNT_COLUMNS + ("evidence", "benign_kind", "window_start", "window_end")
    grp_cols = GROUP_COLUMNS + ("members", "evidence", "first_seen", "last_seen")
    store.replace_table("accounts", arrow_table(det.accounts_, acc_cols))
    store.replace_table("groups", arrow_table(det.groups_, grp_cols))
    metric_cols = {"account_id": pa.array(list(det.account_ids_), pa.string())}
    for name, arr in det.metrics_.items():
        arr = np.asarray(arr)
        if arr.dtype.kind in "fiub" and arr.shape == (len(det.account_ids_),):
            metric_cols[name] = pa.array(arr.astype(np.float64))
    store.replace_table("account_metrics", pa.table(metric_cols))
    links = linker.edges_
    store.replace_table("links", pa.table({
        "account_a": pa.array([x.a for x in links], pa.string()), "account_b": pa.array([x.b for x in links], pa.string()),
        "link_type": pa.array([x.link_type for x in links], pa.string()),
        "bits": pa.array([float(x.bits) for x in links], pa.float64()),
        "weight": pa.array([float(x.weight) for x in links], pa.float64()),
        "detail": pa.array([x.detail for x in links], pa.string())}))
    store.con.execute("""CREATE TABLE IF NOT EXISTS score_runs (run_at TIMESTAMP, window_start TIMESTAMP,
        window_end TIMESTAMP, threshold DOUBLE, expected_fpr DOUBLE, calibration VARCHAR, n_accounts BIGINT)"""
                      ).fetchall()
    store.con.execute("INSERT INTO score_runs VALUES (?, ?, ?, ?, ?, ?, ?)", [
        datetime.now(timezone.utc).replace(tzinfo=None), w_start, w_end, float(det.threshold_), cfg.detector.target_fpr,
        det.calibration_, len(det.accounts_)]).fetchall()
    publish(store)
    if out is not None:
        write_table(det.accounts_, ACCOUNT_COLUMNS, out)
        write_table(det.groups_, GROUP_COLUMNS, out.with_name(out.stem + "_groups" + out.suffix))
    s = ScoreSummary(window=(f"{w_start:%Y-%m-%d}", f"{w_end:%Y-%m-%d}"), accounts=len(det.accounts_),
                     flagged_accounts=sum(bool(r["flagged"]) for r in det.accounts_), groups=len(det.groups_),
                     flagged_groups=sum(bool(g["flagged"]) for g in det.groups_), threshold=float(det.threshold_),
                     target_fpr=cfg.detector.target_fpr, benign=sum(1 for r in det.accounts_ if r.get("benign_kind")),
                     seconds=time.perf_counter() - t0)
    return s


def high_value_weights(config: Config) -> dict[str, float]:
    """The high-value area weights of the taxonomy the map used (the default plus ``[map] taxonomy``)."""
    from promptcov.coverage.areas.taxonomy import Taxonomy

    return Taxonomy.load(extra=[config.map.taxonomy] if config.map.taxonomy else []).high_value_weights()
