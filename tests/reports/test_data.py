"""build_report_data against the crafted store: every figure is checked against the raw requests."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import duckdb
import pytest

from promptcov.errors import InputError
from promptcov.reports.data import build_report_data
from tests.reports.report_store import HOSTILE_SCRIPT, HYDRA, SECRETS, WEEK, write_store


@pytest.fixture(scope="module")
def data(store_db):
    con = duckdb.connect(str(store_db[0]), read_only=True)
    try:
        return build_report_data(con)
    finally:
        con.close()


def test_default_week_is_last_full_iso_week(data):
    assert data["week"] == WEEK  # the store also holds Monday of W48
    assert data["previous_week"] == "2026-W46"
    assert data["weeks"] == [f"2026-W{n}" for n in range(42, 48)]
    assert (data["week_start"], data["week_end"]) == ("2026-11-16", "2026-11-22")


def test_area_counts_per_week_match_the_requests(data, store_db):
    exp = store_db[1]
    rows = {r["area"]: r for r in data["areas"]["rows"]}
    areas = {a for a, _ in exp["area_week"]}
    assert set(rows) == areas
    for area in areas:
        for i, w in enumerate(data["weeks"]):
            assert rows[area]["counts"][i] == exp["area_week"].get((area, w), 0), (area, w)
            assert rows[area]["flagged_counts"][i] == exp["area_week_flagged"].get((area, w), 0), (area, w)
    assert data["areas"]["totals"] == [exp["week_requests"].get(w, 0) for w in data["weeks"]]
    ag = rows["agentic_coding"]
    assert ag["change"] == ag["counts"][-1] - ag["counts"][-2]


def test_pressure_marks_swept_areas_only(data):
    pressure = {r["area"] for r in data["areas"]["rows"] if r["under_pressure"]}
    assert pressure == {"agentic_coding", "tool_use", "rubric_grading"}
    rows = {r["area"]: r for r in data["areas"]["rows"]}
    assert rows["rubric_grading"]["groups"] == [
        {"group_id": "G-rubric", "requests": rows["rubric_grading"]["this_week"]}
    ]
    assert rows["general_chat"]["pressure_share"] == 0.0


def test_headline_counts_and_change(data, store_db):
    exp = store_db[1]
    h = data["headline"]
    assert h["requests"]["value"] == exp["week_requests"][WEEK]
    assert h["requests"]["previous"] == exp["week_requests"]["2026-W46"]
    assert h["accounts"]["value"] == exp["week_accounts"][WEEK]
    assert h["flagged_accounts"]["value"] == exp["week_flagged_accounts"][WEEK] == 12 + 6 + 1
    assert h["flagged_accounts"]["previous"] == exp["week_flagged_accounts"]["2026-W46"] == 12 + 1
    assert (h["flagged_groups"]["value"], h["flagged_groups"]["previous"]) == (2, 1)
    assert h["flagged_groups"]["change"] == 1


def test_groups_carry_their_evidence(data, store_db):
    exp = store_db[1]
    g = data["groups"]
    assert [x["group_id"] for x in g["items"]] == ["G-hydra", "G-rubric"]  # G-quiet is not flagged
    hydra, rubric = g["items"]
    assert hydra["n_accounts"] == 12 and hydra["members_sample"] == HYDRA[:5]
    assert hydra["requests_week"] == exp["group_week"]["G-hydra"]
    assert sum(n for d, n in hydra["timeline"] if d >= "2026-11-16") == hydra["requests_week"]
    assert len(hydra["timeline"]) == 42
    assert hydra["link_types"] == {"payment": 11, "template": 11, "timing": 1}
    assert hydra["link_details"]["payment"] == ["pm_shared_1"]
    assert hydra["first_seen"] == "2026-11-02" and not hydra["new_this_week"]
    assert hydra["templates"][0]["template_id"] == "T-agent" and hydra["templates"][0]["share"] == 1.0
    assert {a["area"] for a in hydra["areas_week"]} == {"agentic_coding", "tool_use"}
    assert [p["model"] for p in hydra["pivot_models"]] == ["nova-2"]
    assert hydra["pivot_models"][0]["model_first_seen"] == "2026-11-17"
    assert rubric["new_this_week"] and rubric["first_seen"] == "2026-11-17"
    assert rubric["requests_week"] == exp["group_week"]["G-rubric"]
    assert rubric["link_types"] == {"ip": 5} and rubric["pivots"] == []
    assert g["n_flagged"] == 2 and g["n_active"] == 2 and g["n_accounts_active"] == 18


def test_clusters_new_and_concentrated(data):
    c = data["clusters"]
    assert {x["cluster_id"] for x in c["new"]} == {5, 6}  # rubric sweep and the benchmark start in W47
    conc = {x["cluster_id"]: x for x in c["concentrated"]}
    assert set(conc) == {5, 6}
    assert conc[5]["accounts"] == 6 and conc[5]["top5_share"] == pytest.approx(5 / 6)
    assert conc[5]["flagged_share"] == 1.0 and conc[6]["flagged_share"] == 0.0


def test_accounts_outside_groups_and_benign_listed_apart(data):
    a = data["accounts"]
    assert [x["account_id"] for x in a["flagged_outside_groups"]] == ["s-solo"]
    assert [(x["account_id"], x["benign_kind"]) for x in a["benign"]] == [("bench-1", "benchmark")]
    assert a["benign"][0]["requests_week"] == 30


def test_map_samples_this_weeks_texts(data, store_db):
    exp = store_db[1]
    m = data["map"]
    assert m["available"] and m["scope"] == "week"
    assert m["n_points"] == len(exp["w47_texts"])
    assert m["n_flagged"] == len(exp["w47_flagged_texts"])
    assert {lb["cluster_id"] for lb in m["labels"]} == {5, 6}
    assert all(0 <= p[2] < len(m["areas"]) for p in m["points"])


def test_method_reads_the_latest_score_run(data):
    me = data["method"]
    assert me["threshold"] == 0.62 and me["expected_fpr"] == 0.01 and me["source"] == "score_runs"
    assert "organic" in me["calibration"]


def test_summary_names_groups_areas_and_dates(data):
    s = data["summary"]
    for needle in ["G-hydra", "2026-11-02", "agentic_coding", "rubric_grading", "nova-2", "G-rubric"]:
        assert needle in s


def test_data_is_json_and_redacted(data):
    text = json.dumps(data, allow_nan=False)
    for secret in SECRETS:
        assert secret not in text
    assert "[email]" in text
    assert HOSTILE_SCRIPT in text  # kept as text; escaping is the renderer's job
    examples = [e for g in data["groups"]["items"] for e in g["examples"]]
    assert examples and all(len(e) <= 240 for e in examples)


def test_redact_false_keeps_text(con):
    d = build_report_data(con, redact=False, map_points=50)
    assert "jane.doe@example.com" in json.dumps(d)
    assert d["redacted"] is False and d["map"]["n_points"] == 50


def test_bad_week_and_empty_week_raise(con):
    with pytest.raises(InputError, match="YYYY-Www"):
        build_report_data(con, week="2026-47")
    with pytest.raises(InputError, match="no requests"):
        build_report_data(con, week="2030-W01")
    with pytest.raises(InputError):
        build_report_data(con, n_weeks=1)


def test_store_without_scores_or_map_points(tmp_path):
    path = tmp_path / "bare.duckdb"
    write_store(path, with_scores=False, with_map_points=False)
    con = duckdb.connect(str(path), read_only=True)
    d = build_report_data(con, week=WEEK)
    assert not d["groups"]["available"] and "promptcov score" in d["groups"]["message"]
    assert not d["map"]["available"] and "promptcov map" in d["map"]["message"]
    assert d["headline"]["flagged_accounts"]["value"] == 0
    assert "promptcov score" in d["summary"]
    assert d["method"]["source"] is None


def test_picks_the_score_run_covering_the_week(tmp_path, store_db):
    path = tmp_path / "runs.duckdb"
    shutil.copy(store_db[0], path)
    con = duckdb.connect(str(path))
    new_start = dt.datetime(2026, 11, 9)
    con.execute("UPDATE accounts SET window_start = ?", [new_start])
    con.execute(
        "INSERT INTO accounts SELECT account_id, n_requests, 0.95, account_id = 'o05', NULL, top_capability, "
        "'old run', '{}', NULL, TIMESTAMP '2026-10-12', TIMESTAMP '2026-11-08' FROM accounts"
    )
    con.close()
    con = duckdb.connect(str(path), read_only=True)
    old = build_report_data(con, week="2026-W44")
    new = build_report_data(con, week=WEEK)
    assert [a["account_id"] for a in old["accounts"]["flagged_outside_groups"]] == ["o05"]
    assert [a["account_id"] for a in new["accounts"]["flagged_outside_groups"]] == ["s-solo"]


def test_nothing_is_new_in_the_first_week_of_a_store(con):
    d = build_report_data(con, week="2026-W42")
    assert d["clusters"]["new"] == []
    assert d["headline"]["requests"]["previous"] == 0
