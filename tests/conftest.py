"""Shared fixtures: the real data folder (when present) and small log writers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (the real public prompt sets); skip when this checkout has none beside it."""
    if not (SHARED_DATA / "MANIFEST.md").exists():
        pytest.skip(f"real prompt sets not present at {SHARED_DATA} (CI has them)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def real_embedder():
    """The real default embedding model, loaded once and shared (read-only) by the e2e tests that embed
    in-process: each load costs several seconds. The CLI runs of the e2e tests still load their own."""
    from promptcov.index.embedders import load_embedder

    return load_embedder()


@pytest.fixture
def write_jsonl(tmp_path):
    def _write(name: str, records: list, raw_lines: dict | None = None) -> Path:
        lines = [json.dumps(r) if not isinstance(r, str) else r for r in records]
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return _write


@pytest.fixture(scope="session", autouse=True)
def _tmp_promptcov_cache(tmp_path_factory):
    """Cached artefacts (the fitted capability assigner) go to a session temporary folder, never ~/.cache."""
    old = os.environ.get("PROMPTCOV_CACHE")
    os.environ["PROMPTCOV_CACHE"] = str(tmp_path_factory.mktemp("promptcov-cache"))
    yield
    if old is None:
        os.environ.pop("PROMPTCOV_CACHE", None)
    else:
        os.environ["PROMPTCOV_CACHE"] = old
