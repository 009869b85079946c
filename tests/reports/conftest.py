"""Fixtures for the report tests: the crafted store of :mod:`report_store`, built once per module."""

from __future__ import annotations

import duckdb
import pytest

from tests.reports.report_store import write_store


@pytest.fixture(scope="module")
def store_db(tmp_path_factory):
    """(path to catalog.duckdb, expected figures) for the full crafted store."""
    path = tmp_path_factory.mktemp("store") / "catalog.duckdb"
    exp = write_store(path)
    return path, exp


@pytest.fixture
def con(store_db):
    c = duckdb.connect(str(store_db[0]), read_only=True)
    yield c
    c.close()
