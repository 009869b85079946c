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
    """Cached artefacts (the fitted capability assigner) go to a temporary folder of this run, never
    ~/.cache; the workers of a parallel run (pytest-xdist) share one, so the real-model fit is paid once."""
    old = os.environ.get("PROMPTCOV_CACHE")
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    (root / "promptcov-cache").mkdir(exist_ok=True)
    os.environ["PROMPTCOV_CACHE"] = str(root / "promptcov-cache")
    yield
    if old is None:
        os.environ.pop("PROMPTCOV_CACHE", None)
    else:
        os.environ["PROMPTCOV_CACHE"] = old


@pytest.fixture(scope="session")
def real_assigner(real_embedder, _tmp_promptcov_cache):
    """The default capability assigner fitted with the real model (embedding its 1,800 training rows is
    the slow part). The fit writes the session cache, which the e2e ``promptcov run`` calls then read;
    a file lock makes the workers of a parallel run wait for one fit instead of each repeating it."""
    import fcntl

    from promptcov.coverage.areas.assigner import CapabilityAssigner

    with open(Path(os.environ["PROMPTCOV_CACHE"]) / "real-assigner.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return CapabilityAssigner(embedder=real_embedder).fit()
