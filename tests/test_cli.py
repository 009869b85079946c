"""The CLI through main(argv) and the console script: exit codes and output per the contract."""

import json
import shutil
import subprocess

import pytest

from promptcov.cli import main


@pytest.fixture
def log(write_jsonl):
    return write_jsonl("log.jsonl", [
        json.dumps({"request_id": "r1", "account_id": "a1", "timestamp": "2026-11-16T09:12:44Z", "prompt": "hello"}),
        '{"broken',
    ])


def test_ingest_exit_codes_and_summary(tmp_path, log, capsys):
    store = str(tmp_path / "s")
    assert main(["ingest", str(log), "--store", store]) == 0
    out = capsys.readouterr().out
    assert "2 read, 1 stored, 0 duplicates skipped, 1 quarantined" in out
    assert main(["ingest", str(log), "--store", store, "--strict"]) == 2
    assert "--strict: 1 bad record(s)" in capsys.readouterr().err
    assert main(["ingest", str(log), "--store", store, "--quiet"]) == 0
    assert capsys.readouterr().out == ""


def test_store_from_environment(tmp_path, log, monkeypatch):
    monkeypatch.setenv("PROMPTCOV_STORE", str(tmp_path / "envstore"))
    assert main(["ingest", str(log), "-q"]) == 0
    assert (tmp_path / "envstore" / "catalog.duckdb").exists()


def test_bad_usage_and_bad_input_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["ingest"])
    assert e.value.code == 2
    assert main(["ingest", str(tmp_path / "missing.jsonl"), "--store", str(tmp_path / "s")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["embed", "--store", str(tmp_path / "empty")]) == 2
    assert main(["search", "x", "--store", str(tmp_path / "nothing")]) == 2
    bad_cfg = tmp_path / "c.toml"
    bad_cfg.write_text("[embed]\nmodle = 'x'\n")
    assert main(["ingest", "x.jsonl", "--config", str(bad_cfg), "--store", str(tmp_path / "s")]) == 2
    assert "unknown key 'modle' in [embed]" in capsys.readouterr().err


def test_search_json_through_cli(tmp_path, log, capsys):
    store = str(tmp_path / "s")
    assert main(["ingest", str(log), "--store", store, "-q"]) == 0
    assert main(["embed", "--store", store, "--model", "hashing", "-q"]) == 0
    assert main(["search", "hello", "--json", "-k", "3", "--store", store]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert isinstance(hits, list) and hits[0]["request_id"] == "r1" and hits[0]["similarity"] >= 0.99
    assert main(["search", "--request-id", "r1", "--store", store]) == 0
    assert "a1" in capsys.readouterr().out


def test_console_script_is_installed(tmp_path, log):
    exe = shutil.which("promptcov")
    if exe is None:
        pytest.skip("promptcov console script not on PATH (package not installed)")
    r = subprocess.run([exe, "ingest", str(log), "--store", str(tmp_path / "s")], capture_output=True, text=True)
    assert r.returncode == 0 and "1 stored" in r.stdout
    r = subprocess.run([exe, "frobnicate"], capture_output=True, text=True)
    assert r.returncode == 2
