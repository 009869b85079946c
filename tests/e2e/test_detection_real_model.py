"""End to end with the real model: simulate a small multi-week log, `promptcov run` it, and check
that the campaigns are caught as groups while every legitimate account stays unflagged."""

from __future__ import annotations

import csv
import json
from collections import Counter

import pytest

from promptcov.cli import main
from promptcov.index.store import Store
from promptcov.simulate import SimConfig, simulate

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def run(tmp_path_factory, real_assigner):  # real_assigner: the run reads its fit from the session cache
    work = tmp_path_factory.mktemp("e2e")
    sim = simulate(SimConfig(scale=0.1, seed=5, volume=0.6, bad_records=3), work / "sim")
    store = work / "store"
    rc = main(["run", *map(str, sim.log_paths), "--store", str(store), "--out", str(work / "accounts.json"), "-q"])
    assert rc == 0
    with open(sim.labels_path, newline="") as fh:
        labels = {r["account_id"]: r for r in csv.DictReader(fh)}
    return work, store, labels


def test_legitimate_accounts_stay_unflagged(run):
    work, _, labels = run
    accounts = json.loads((work / "accounts.json").read_text())
    wrongly = [(a["account_id"], labels[a["account_id"]]["kind"]) for a in accounts
               if a["flagged"] and labels[a["account_id"]]["label"] != "campaign"]
    assert wrongly == []


def test_campaigns_are_caught_as_groups(run):
    work, store_path, labels = run
    accounts = {a["account_id"]: a for a in json.loads((work / "accounts.json").read_text())}
    caught = 0
    campaigns = sorted({r["campaign"] for r in labels.values() if r["campaign"]})
    for name in campaigns:
        members = [accounts[a] for a, r in labels.items() if r["campaign"] == name and a in accounts]
        recall = sum(m["flagged"] for m in members) / len(members)
        top_group = Counter(m["group_id"] for m in members if m["group_id"]).most_common(1)
        if recall >= 0.5 and top_group and top_group[0][1] >= 0.5 * len(members):
            caught += 1
    assert caught >= 2, f"only {caught} of {len(campaigns)} campaigns caught as a group"
    with Store(store_path, read_only=True) as store:
        ev = store.con.execute("SELECT reasons, evidence FROM groups WHERE flagged ORDER BY score DESC LIMIT 1"
                               ).fetchall()
    assert ev, "no flagged group"
    reasons, evidence = ev[0]
    evidence = json.loads(evidence)
    assert reasons and evidence["examples"] and evidence["link_types"]


def test_report_from_the_run(run, tmp_path):
    _, store_path, _ = run
    assert main(["report", "--store", str(store_path), "--out", str(tmp_path), "-q"]) == 0
    data = json.loads((tmp_path / "2026-W47.json").read_text())
    assert data["week"] == "2026-W47"
