"""Write the score tables (``score --out``) as CSV, Parquet or JSON, with spreadsheet-safe CSV cells.

Account ids, group ids and reasons come from the logs, so an attacker chooses them. A CSV cell
that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a formula
when the file is opened in Excel, LibreOffice or Google Sheets (``=HYPERLINK(...)`` leaks data,
``+cmd|' /C calc'!A0`` runs a program). Following OWASP's "CSV injection" advice,
:func:`csv_safe` prefixes such a *string* cell with a single quote, which the spreadsheet shows
as text. Numeric columns stay numbers (a negative score is not a string cell). JSON and Parquet
are read by programs, not spreadsheets, and keep the raw values.

>>> csv_safe("=HYPERLINK(\\"http://x\\")")
'\\'=HYPERLINK("http://x")'
>>> csv_safe("acct-1")
'acct-1'
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from promptcov.errors import InputError
from promptcov.io import atomic_write, tmp_path_for

__all__ = ["write_table", "arrow_table", "csv_safe", "csv_safe_table", "FORMULA_PREFIXES", "TABLE_TYPES"]

#: a spreadsheet reads a cell starting with one of these as a formula (OWASP CSV injection)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

#: Arrow type of each column the score job writes; a column not listed is inferred
TABLE_TYPES = {
    "account_id": pa.string(),
    "group_id": pa.string(),
    "n_requests": pa.int64(),
    "n_accounts": pa.int64(),
    "score": pa.float64(),
    "flagged": pa.bool_(),
    "top_capability": pa.string(),
    "reasons": pa.string(),
    "capabilities": pa.string(),
    "evidence": pa.string(),
    "benign_kind": pa.string(),
    "members": pa.string(),
    "first_seen": pa.string(),
    "last_seen": pa.string(),
    "window_start": pa.timestamp("us"),
    "window_end": pa.timestamp("us"),
}
_FORMULA_RE = "^[=+\\-@\\t\\r]"


def csv_safe(value: str | None) -> str | None:
    """``value`` with a leading ``'`` when a spreadsheet would read it as a formula, else unchanged."""
    if value and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_safe_table(table: pa.Table) -> pa.Table:
    """``table`` with :func:`csv_safe` applied to every string cell; other columns are untouched."""
    cols = []
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            col = pc.if_else(
                pc.match_substring_regex(col, _FORMULA_RE), pc.binary_join_element_wise("'", col, ""), col
            )
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def arrow_table(rows: list[dict], columns: tuple[str, ...]) -> pa.Table:
    """``rows`` (dicts) as an Arrow table of ``columns``, typed by :data:`TABLE_TYPES`.

    ``evidence`` and ``members`` that are not strings yet are JSON-encoded; a missing
    ``group_id`` becomes ``""`` (the contract's "no group").
    """
    out = {}
    for c in columns:
        vals = [r.get(c) for r in rows]
        if c in ("evidence", "members"):
            vals = [
                json.dumps(v, ensure_ascii=False, default=str) if not isinstance(v, str) else v for v in vals
            ]
        if c == "group_id":
            vals = [v or "" for v in vals]
        out[c] = pa.array(vals, type=TABLE_TYPES.get(c))
    return pa.table(out)


def write_table(rows: list[dict], columns: tuple[str, ...], path: Path) -> Path:
    """Write ``rows`` (only ``columns``) to ``path`` as .csv, .parquet or .json (an array), atomically.

    CSV string cells that a spreadsheet would run as a formula are neutralised
    (:func:`csv_safe_table`); Parquet and JSON keep the raw values.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".json"):
        raise InputError(f"--out {path}: the suffix must be .csv, .parquet or .json")
    table = arrow_table(rows, columns)
    if suffix == ".json":
        with atomic_write(path) as fh:
            json.dump(table.to_pylist(), fh, ensure_ascii=False, indent=1)
        return path
    tmp = tmp_path_for(path)
    try:
        if suffix == ".csv":
            import pyarrow.csv as pacsv

            pacsv.write_csv(csv_safe_table(table), tmp)
        else:
            import pyarrow.parquet as pq

            pq.write_table(table, tmp)
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
