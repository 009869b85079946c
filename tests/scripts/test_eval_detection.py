"""scripts/eval_detection.py end to end on a tiny scenario family with the hashing embedder."""

from __future__ import annotations

import json

import eval_detection
import pytest
from eval_figures import LOWER_IS_BETTER, summarise


def test_eval_detection_runs_end_to_end_and_writes_json(tmp_path, capsys):
    out = tmp_path / "eval.json"
    argv = ["--model", "hashing", "--seeds", "1", "--seed-start", "104", "--split", "eval", "--scale", "0.05",
            "--work", str(tmp_path / "work"), "--cache", str(tmp_path / "cache"), "--out", str(out),
            "--map-sample", "400"]  # fmt: skip
    assert eval_detection.main(argv) == 0
    text = capsys.readouterr().out
    assert "window-MMD (2026)" in text and "PRADA" in text and "mean / worst" in text
    res = json.loads(out.read_text())
    assert res["split"] == "eval" and res["seeds"] == [104] and not res["development_figure"]
    seed = res["per_seed"][0]
    names = [m["method"] for m in seed["methods"]]
    assert names[0] == "promptcov" and len(names) == 5
    for m in seed["methods"]:
        assert 0.0 <= m["auroc"] <= 1.0 and 0.0 <= m["tpr@1%fpr"] <= 1.0
        assert set(m) >= {"ap", "heavy_auroc", "flag_precision", "flag_recall", "flagged_hard_negatives"}
    assert seed["campaigns"] and all(0 <= c["largest_group_share"] <= 1 for c in seed["campaigns"].values())
    assert seed["cache_misses"] > 0 and res["summary"]["methods"]["promptcov"]["auroc"]["n"] == 1
    # --measure-only re-measures the scored store without running the pipeline again
    assert eval_detection.main(argv + ["--measure-only"]) == 0
    again = json.loads(out.read_text())["per_seed"][0]
    assert again["pipeline_skipped"] and again["cache_hit_rate"] is None
    assert again["methods"][0] == seed["methods"][0]



def _seed(auroc, fp, recall):
    camp = {"accounts": 10, "recall": recall, "largest_group_share": recall, "groups": 2,
            "non_campaign_in_group": fp, "pivots": True, "pivot_reported": recall > 0.5,
            "traits": {"hydra": True, "proxy_share": 0.6, "cover_share": 0.0}}  # fmt: skip
    return {"seconds": 1.0, "cache_hits": 1, "cache_misses": 1, "split": "dev",
            "methods": [{"method": "x", "auroc": auroc, "flagged_hard_negatives": fp, "heavy_auroc": None}],
            "campaigns": {"c1": camp}}  # fmt: skip


def test_summary_takes_mean_and_the_worst_case_in_the_right_direction():
    s = summarise([_seed(0.9, 0, 1.0), _seed(0.7, 3, 0.4)])
    m = s["methods"]["x"]
    assert m["auroc"]["mean"] == pytest.approx(0.8) and m["auroc"]["worst"] == 0.7
    assert "flagged_hard_negatives" in LOWER_IS_BETTER and m["flagged_hard_negatives"]["worst"] == 3
    assert m["heavy_auroc"]["n"] == 0 and s["flagged_negative_kinds"] == {"x": {}}
    c = s["campaigns"]["hydra"]
    assert c["recall"]["worst"] == 0.4 and c["non_campaign_in_group"]["worst"] == 3
    assert s["pivots"] == {"pivoting_campaigns": 2, "reported": 1, "non_pivoting_campaigns": 0, "false_pivots": 0}
