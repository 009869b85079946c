"""The request frame: one scoring window of requests as aligned numpy arrays.

``pipeline.score`` reads the store and builds a :class:`RequestFrame`; the pure coverage
modules (metrics, linking, scoring) only ever see this frame, never the store. Rows are sorted
by ``(account_id, ts)`` so that an account's traffic is one contiguous slice.

String columns are held interned: each distinct value is one Python object that every row holding
it points to (8 bytes a row instead of one string object a row), and :meth:`RequestFrame.codes`
gives a column's integer codes and sorted distinct values, computed once per frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields

import numpy as np

__all__ = ["RequestFrame", "FRAME_COLUMNS", "encode_strings"]

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
    _codes: dict = field(default_factory=dict, repr=False, compare=False)

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
        arrays, cache = {}, {}
        for name, dtype in FRAME_COLUMNS.items():
            if name in columns and columns[name] is not None:
                values = columns[name]
                enc = encode_strings(values) if dtype is object and name != "request_id" else None
                if enc is not None:
                    arr, cache[name] = enc[0], (enc[0], *enc[1])
                elif dtype is object:
                    arr = np.empty(n, dtype=object)
                    arr[:] = list(values.to_pylist() if hasattr(values, "to_pylist") else values)
                else:
                    arr = np.asarray(values, dtype=dtype)
            elif name == "request_id":  # fixed-width strings, no object per row: "r0", "r1", ...
                arr = np.char.add("r", np.arange(n).astype(f"U{len(str(max(n - 1, 0)))}"))
            else:
                default = _DEFAULTS.get(name)
                arr = np.full(n, default, dtype=dtype)
            if arr.shape != (n,):
                raise ValueError(f"column {name!r} has shape {arr.shape}, expected ({n},)")
            arrays[name] = arr
        vecs = np.zeros((0, 0), dtype=np.float32) if vectors is None else np.ascontiguousarray(vectors, np.float32)
        frame = cls(**arrays, vectors=vecs, prompts=dict(prompts or {}), _codes=cache)
        if sort and n:
            code = cache.get("account_id", (None, np.full(1, -1), None))[1]
            # the interned codes follow the values' sorted order: the same order as sorting the strings
            key = code if (code >= 0).all() else frame.account_id.astype(str)
            order = np.lexsort((frame.ts, key))
            frame = frame.take(order)
        return frame

    def codes(self, name: str, drop_empty: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``(codes, values)`` of an object column: int64 code per row (-1 for ``None`` and, with
        ``drop_empty``, ``""``) into its sorted distinct values (the codes follow that order)."""
        if FRAME_COLUMNS.get(name) is not object:
            raise ValueError(f"{name!r} is not a string column of the frame")
        column = getattr(self, name)
        if name not in self._codes or self._codes[name][0] is not column:  # (a replaced column: new codes)
            self._codes[name] = (column, *_sorted_codes(column))
        _, code, values = self._codes[name]
        code = code.astype(np.int64)
        if drop_empty and len(values) and values[0] == "":  # "" sorts first
            return np.where(code > 0, code - 1, -1), values[1:]
        return code, values

    def account_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(codes, ids)``: each row's account as an int64 code into the sorted distinct account ids
        (as ``str``; a ``None`` id counts as ``"None"``, as ``astype(str)`` makes it)."""
        code, ids = self.codes("account_id", drop_empty=False)
        if (code >= 0).all():
            return code, ids.astype(str)
        ids, code = factorize_str(self.account_id)
        return code, ids.astype(str)

    def __len__(self) -> int:
        return len(self.account_id)

    def take(self, index: np.ndarray) -> RequestFrame:
        """Rows at ``index`` (int positions or bool mask); vectors and prompts are shared."""
        kw = {f.name: getattr(self, f.name)[index] for f in fields(self) if f.name in FRAME_COLUMNS}
        cache = {name: (kw[name], *_compact(code[index], values))
                 for name, (column, code, values) in self._codes.items() if column is getattr(self, name)}
        return RequestFrame(**kw, vectors=self.vectors, prompts=self.prompts, _codes=cache)

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


def encode_strings(values) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]] | None:
    """Intern a column of ``str``/``None`` (a sequence, numpy or pyarrow array, dictionary-encoded or not):
    ``(object array whose equal values share one object, (int32 codes, sorted distinct values))``,
    ``None`` for other values.

    >>> arr, (code, values) = encode_strings(["b", None, "a", "b"])
    >>> arr.tolist(), code.tolist(), values.tolist()
    (['b', None, 'a', 'b'], [1, -1, 0, 1], ['a', 'b'])
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(
            values, type=pa.string())
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        text = (pa.types.is_string, pa.types.is_large_string)
        if pa.types.is_dictionary(arr.type) and any(t(arr.type.value_type) for t in text):
            enc = arr  # already codes and values (distinct values; unused ones are dropped below)
            if enc.dictionary.null_count or len(pc.unique(enc.dictionary)) < len(enc.dictionary):
                enc = pc.dictionary_encode(enc.dictionary_decode())
        elif any(t(arr.type) for t in text):
            enc = pc.dictionary_encode(arr)
        else:
            return None
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return None
    vocab = np.array(enc.dictionary.to_pylist(), dtype=object)
    order = np.argsort(vocab.astype(str), kind="stable")
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    idx = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32)
    code = np.where(idx >= 0, rank[np.maximum(idx, 0)] if len(rank) else -1, -1).astype(np.int32)
    code, values = _compact(code, vocab[order])
    lookup = np.empty(len(values) + 1, dtype=object)
    lookup[: len(values)] = values
    lookup[-1] = None  # code -1
    return lookup[code], (code, values)


def factorize_str(values, none: str = "None") -> tuple[np.ndarray, np.ndarray]:
    """``(sorted distinct values, int64 code per row)`` of a column, as ``str``.

    The same result as ``np.unique(np.asarray(values).astype(str), return_inverse=True)`` (``None``
    counts as the string ``none``), computed with pyarrow's dictionary encoding instead of a
    fixed-width unicode copy of the column, which costs rows x longest value x 4 bytes (800 MB for
    10^7 rows of 20-character area names) and sorts every row.

    >>> uniq, code = factorize_str(["b", None, "a", "b"])
    >>> uniq.tolist(), code.tolist()
    (['None', 'a', 'b'], [2, 0, 1, 2])
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    values = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    if not len(values):
        return np.array([], dtype=object), np.zeros(0, dtype=np.int64)
    try:
        enc = pc.dictionary_encode(pa.array(values, type=pa.string()))
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):  # not str/None: numpy's way
        values = np.array([none if v is None else str(v) for v in values], dtype=object)
        uniq, inv = np.unique(values.astype(str), return_inverse=True)
        return uniq.astype(object), inv.ravel().astype(np.int64)
    vocab = enc.dictionary.to_pylist()
    idx = pc.fill_null(enc.indices, len(vocab)).to_numpy(zero_copy_only=False).astype(np.int64)
    vocab.append(none)  # the null slot (unused when there are no nulls)
    uniq = sorted(set(vocab[:-1] + ([none] if enc.indices.null_count else [])))
    rank = {v: i for i, v in enumerate(uniq)}
    remap = np.array([rank.get(v, -1) for v in vocab], dtype=np.int64)
    return np.array(uniq, dtype=object), remap[idx]


def _sorted_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes into the sorted distinct non-``None`` values (as ``str``) of any object column."""
    present = np.array([v is not None for v in values], dtype=bool)
    code = np.full(len(values), -1, dtype=np.int32)
    if not present.any():
        return code, np.array([], dtype=object)
    uniq, inv = factorize_str(values[present])
    code[present] = inv
    return code, uniq


def _compact(code: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop the values no row holds any more (after :meth:`RequestFrame.take`), keeping the order."""
    used = np.bincount(code[code >= 0], minlength=len(values)) > 0
    if used.all():
        return code, values
    new = (np.cumsum(used) - 1).astype(np.int32)
    return np.where(code >= 0, new[np.maximum(code, 0)], -1).astype(np.int32), values[used]
