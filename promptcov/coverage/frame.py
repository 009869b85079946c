"""The request frame: one scoring window of requests as aligned numpy arrays.

``pipeline.score`` reads the store and builds a :class:`RequestFrame`; the pure coverage
modules (metrics, linking, scoring) only ever see this frame, never the store. Rows are sorted
by ``(account_id, ts)`` so that an account's traffic is one contiguous slice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields

import numpy as np

__all__ = ["RequestFrame", "FRAME_COLUMNS"]

#: column name -> numpy dtype (``object`` columns hold ``str`` or ``None``).
FRAME_COLUMNS: dict[str, object] = {
    "request_id": object,
    "account_id": object,
    "ts": np.float64,
    "text_id": np.int64,
    "vec_row": np.int64,
    "cluster_id": np.int64,
    "capability": object,
    "marker": object,
    "template_id": object,
    "template_popular": bool,
    "turn_index": np.int64,
    "conversation_id": object,
    "model": object,
    "ip": object,
    "asn": object,
    "payment_id": object,
    "user_agent": object,
    "org_id": object,
}

_DEFAULTS = {
    "vec_row": -1,
    "cluster_id": -1,
    "capability": "other",
    "marker": None,
    "template_id": None,
    "template_popular": False,
    "turn_index": -1,
}


@dataclass
class RequestFrame:
    """Requests of one window, sorted by (account_id, ts); see docs/DESIGN.md."""

    request_id: np.ndarray
    account_id: np.ndarray
    ts: np.ndarray
    text_id: np.ndarray
    vec_row: np.ndarray
    cluster_id: np.ndarray
    capability: np.ndarray
    marker: np.ndarray
    template_id: np.ndarray
    template_popular: np.ndarray
    turn_index: np.ndarray
    conversation_id: np.ndarray
    model: np.ndarray
    ip: np.ndarray
    asn: np.ndarray
    payment_id: np.ndarray
    user_agent: np.ndarray
    org_id: np.ndarray
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    prompts: dict = field(default_factory=dict)

    @classmethod
    def from_columns(cls, columns: dict, vectors: np.ndarray | None = None, prompts: dict | None = None,
                     sort: bool = True) -> RequestFrame:
        """Build a frame from a dict of column -> sequence; missing optional columns get defaults.

        ``account_id``, ``ts`` and ``text_id`` are required. Rows are sorted by (account_id, ts)
        unless ``sort=False`` (the caller promises they already are).
        """
        for req in ("account_id", "ts", "text_id"):
            if req not in columns:
                raise ValueError(f"RequestFrame needs column {req!r}")
        n = len(columns["account_id"])
        arrays = {}
        for name, dtype in FRAME_COLUMNS.items():
            if name in columns and columns[name] is not None:
                values = columns[name]
                if dtype is object:
                    arr = np.empty(n, dtype=object)
                    arr[:] = list(values)
                else:
                    arr = np.asarray(values, dtype=dtype)
            elif name == "request_id":
                arr = np.array([f"r{i}" for i in range(n)], dtype=object)
            else:
                default = _DEFAULTS.get(name)
                arr = np.full(n, default, dtype=dtype)
            if arr.shape != (n,):
                raise ValueError(f"column {name!r} has shape {arr.shape}, expected ({n},)")
            arrays[name] = arr
        vecs = np.zeros((0, 0), dtype=np.float32) if vectors is None else np.ascontiguousarray(vectors, np.float32)
        frame = cls(**arrays, vectors=vecs, prompts=dict(prompts or {}))
        if sort and n:
            order = np.lexsort((frame.ts, frame.account_id.astype(str)))
            frame = frame.take(order)
        return frame

    def __len__(self) -> int:
        return len(self.account_id)

    def take(self, index: np.ndarray) -> RequestFrame:
        """Rows at ``index`` (int positions or bool mask); vectors and prompts are shared."""
        kw = {f.name: getattr(self, f.name)[index] for f in fields(self) if f.name in FRAME_COLUMNS}
        return RequestFrame(**kw, vectors=self.vectors, prompts=self.prompts)

    def subset(self, mask: np.ndarray) -> RequestFrame:
        """Rows where ``mask`` is true (order kept)."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (len(self),):
            raise ValueError(f"mask has shape {mask.shape}, expected ({len(self)},)")
        return self.take(np.flatnonzero(mask))

    def accounts(self) -> Iterator[tuple[str, slice]]:
        """Yield ``(account_id, slice)`` for each account's contiguous block of rows."""
        acc = self.account_id
        if len(acc) == 0:
            return
        change = np.flatnonzero(acc[1:] != acc[:-1]) + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [len(acc)]])
        for s, e in zip(starts, ends, strict=True):
            yield str(acc[s]), slice(int(s), int(e))

    def account_vectors(self, sl: slice) -> np.ndarray:
        """Vectors of the requests in ``sl`` (rows without a vector are dropped)."""
        rows = self.vec_row[sl]
        rows = rows[rows >= 0]
        if self.vectors.size == 0 or len(rows) == 0:
            return np.zeros((0, self.vectors.shape[1] if self.vectors.ndim == 2 else 0), dtype=np.float32)
        return self.vectors[rows]
