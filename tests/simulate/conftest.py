"""Fixtures: a tiny sample corpus and one small simulated log shared by a module's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptcov.simulate import SimConfig, simulate
from tests.simulate._simcorpus import build_corpus


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> Path:
    return build_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def small_sim(tmp_path_factory, tiny_corpus):
    """One small simulation shared by the property tests of a module."""
    out = tmp_path_factory.mktemp("sim")
    cfg = SimConfig(scale=0.05, seed=3, bad_records=10, volume=0.6)
    return simulate(cfg, out, corpus_dir=tiny_corpus)
