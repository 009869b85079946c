"""scripts/simulate_logs.py through its main(argv)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.simulate._logcheck import read_labels

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "simulate_logs.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("simulate_logs", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_script_writes_logs_and_prints_counts(script, tmp_path, tiny_corpus, capsys):
    out = tmp_path / "sim"
    argv = ["--out", str(out), "--corpus", str(tiny_corpus), "--scale", "0.05", "--weeks", "1", "--volume", "0.3",
            "--seed", "5", "--bad-records", "4", "--split", "week", "--no-gzip"]  # fmt: skip
    assert script.main(argv) == 0
    text = capsys.readouterr().out
    assert "campaign agentic_tools" in text and "4 bad records" in text
    logs = sorted((out / "logs").glob("requests-*.jsonl"))
    assert logs and all("-W" in p.name for p in logs)
    assert len(read_labels(out / "labels.csv")) > 50


def test_script_bad_input_exits_2(script, tmp_path, tiny_corpus, capsys):
    assert script.main(["--out", str(tmp_path), "--corpus", str(tiny_corpus), "--scale", "-1"]) == 2
    assert "scale" in capsys.readouterr().err
