"""ISO week parsing and the last full week in a store."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from promptcov.errors import InputError
from promptcov.reports.weeks import last_full_iso_week, parse_week, shift_week, week_bounds, week_of


@pytest.mark.parametrize(
    "bad", ["2026-47", "2026W47", "2026-W7", "2026-W54", "W47", "", "2026-w47x", "2025-W53"]
)
def test_bad_week_strings_raise_input_error(bad):
    with pytest.raises(InputError):
        parse_week(bad)


def test_week_bounds_and_shift():
    start, end = week_bounds("2026-W47")
    assert start == dt.datetime(2026, 11, 16) and end == dt.datetime(2026, 11, 23)
    assert week_of(dt.date(2026, 11, 22)) == "2026-W47"
    assert shift_week("2026-W01", -1) == "2025-W52"
    assert shift_week("2020-W53", 1) == "2021-W01"


def _store(tmp_path, stamps):
    con = duckdb.connect(str(tmp_path / "c.duckdb"))
    con.execute("CREATE TABLE requests (account_id VARCHAR, ts TIMESTAMP, text_id BIGINT)")
    for s in stamps:
        con.execute("INSERT INTO requests VALUES ('a', ?, 1)", [s])
    return con


def test_last_full_week_is_the_one_before_a_partial_week(tmp_path):
    con = _store(
        tmp_path, [dt.datetime(2026, 11, 2, 9), dt.datetime(2026, 11, 25, 9)]
    )  # ends Wednesday of W48
    assert last_full_iso_week(con) == "2026-W47"


def test_a_log_ending_on_sunday_closes_its_week(tmp_path):
    con = _store(tmp_path, [dt.datetime(2026, 11, 2, 9), dt.datetime(2026, 11, 22, 23, 30)])
    assert last_full_iso_week(con) == "2026-W47"


def test_less_than_a_week_reports_the_partial_week(tmp_path):
    con = _store(tmp_path, [dt.datetime(2026, 11, 24, 9), dt.datetime(2026, 11, 25, 9)])
    assert last_full_iso_week(con) == "2026-W48"


def test_empty_store_raises(tmp_path):
    con = _store(tmp_path, [])
    with pytest.raises(InputError, match="ingest"):
        last_full_iso_week(con)
