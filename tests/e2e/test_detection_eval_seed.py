"""End to end with the real model on an *evaluation* scenario family (seed 119, eval half: tasks and
scaffolds the detector was never developed on): every legitimate account stays unflagged and the
detector ranks campaign accounts far above the rest."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from promptcov.cli import main
from promptcov.simulate.families import simulate_family

pytestmark = pytest.mark.e2e

# an evaluation-half seed whose per-seed output was never used for tuning (round 3 was diagnosed on
# 104, 105 and 117, round 4 on 108, 112, 126, 131, 134, 135 and 143; the held-out seeds are now 148-163:
# README, "Seeds")
EVAL_SEED = 119


@pytest.fixture(scope="module")
def scored(tmp_path_factory, real_assigner):  # real_assigner: the run reads its fit from the session cache
    work = tmp_path_factory.mktemp("e2e-eval")
    sim = simulate_family(EVAL_SEED, work / "sim", split="eval", scale=0.1)
    store = work / "store"
    rc = main(["run", *map(str, sim.log_paths), "--store", str(store), "--sample-size", "1500",
               "--out", str(work / "accounts.json"), "-q"])
    assert rc == 0
    with open(sim.labels_path, newline="") as fh:
        labels = {r["account_id"]: r for r in csv.DictReader(fh)}
    return json.loads((work / "accounts.json").read_text()), labels


def test_no_legitimate_account_is_flagged_on_an_eval_seed(scored):
    accounts, labels = scored
    wrongly = [(a["account_id"], labels[a["account_id"]]["kind"]) for a in accounts
               if a["flagged"] and labels[a["account_id"]]["label"] != "campaign"]
    assert wrongly == []


def test_campaign_accounts_rank_above_the_rest_on_an_eval_seed(scored):
    accounts, labels = scored
    y = np.array([labels[a["account_id"]]["label"] == "campaign" for a in accounts])
    s = np.array([a["score"] for a in accounts])
    assert y.any() and roc_auc_score(y, s) >= 0.9
    assert any(a["flagged"] for a in accounts)
