"""The simulated log: determinism, format, labels, and the properties each kind must have."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import datetime

import numpy as np
import pytest

from promptcov.simulate import LABELS, SimConfig, simulate
from promptcov.simulate.writer import BAD_KINDS
from tests.simulate._logcheck import prompt_of, read_labels, read_logs

CAMPAIGNS = ("reason_rubric", "broad_agentic", "agentic_tools")


@pytest.fixture(scope="module")
def parsed(small_sim):
    good, bad = read_logs(small_sim.log_paths)
    labels = read_labels(small_sim.labels_path)
    by_acct = defaultdict(list)
    for r in good:
        by_acct[r["account_id"]].append(r)
    scenario = json.loads(small_sim.scenario_path.read_text())
    return good, bad, labels, by_acct, scenario


def _of_kind(labels, by_acct, kind):
    return [by_acct[a] for a, row in labels.items() if row["kind"] == kind]


def test_same_seed_same_bytes_other_seed_differs(tmp_path, tiny_corpus):
    cfg = SimConfig(scale=0.05, seed=11, weeks=1, volume=0.3, bad_records=3)
    a = simulate(cfg, tmp_path / "a", corpus_dir=tiny_corpus)
    b = simulate(cfg, tmp_path / "b", corpus_dir=tiny_corpus)
    assert [p.name for p in a.log_paths] == [p.name for p in b.log_paths]
    for pa, pb in zip(a.log_paths, b.log_paths, strict=True):
        assert pa.read_bytes() == pb.read_bytes()
    assert a.labels_path.read_bytes() == b.labels_path.read_bytes()
    assert a.scenario_path.read_bytes() == b.scenario_path.read_bytes()
    c = simulate(SimConfig(scale=0.05, seed=12, weeks=1, volume=0.3), tmp_path / "c", corpus_dir=tiny_corpus)
    assert a.labels_path.read_bytes() != c.labels_path.read_bytes()


def test_every_record_follows_the_log_format(small_sim, parsed):
    good, bad, _, _, scenario = parsed
    assert len(good) == small_sim.n_requests
    assert len(bad) == 10 == sum(scenario["counts"]["bad_records"].values())
    assert set(scenario["counts"]["bad_records"]) == set(BAD_KINDS)
    t0 = SimConfig().start_dt.timestamp()
    t1 = SimConfig().end_dt.timestamp()
    ts = np.array([r["_ts"] for r in good])
    assert ts.min() >= t0 and ts.max() < t1
    styles = Counter(type(r["timestamp"]).__name__ for r in good)
    assert styles["str"] > 0 and styles["int"] + styles["float"] > 0
    assert any(isinstance(r["timestamp"], str) and r["timestamp"][-6] in "+-" for r in good)
    share_messages = np.mean(["messages" in r for r in good])
    assert 0.15 < share_messages < 0.45
    assert len({r["request_id"] for r in good}) == len(good)
    for path in small_sim.log_paths:  # one file per day, sorted by time within it
        day = path.name.removeprefix("requests-").split(".")[0]
        own, _ = read_logs([path])
        day0 = datetime.fromisoformat(f"{day}T00:00:00+00:00").timestamp()
        assert all(day0 <= r["_ts"] < day0 + 86400 for r in own)
        stamps = [r["_ts"] for r in own]
        assert stamps == sorted(stamps)


def test_log_records_pass_the_ingest_normaliser(small_sim):
    records = pytest.importorskip("promptcov.index.records")
    good, bad = read_logs(small_sim.log_paths[:3])
    for i, r in enumerate(good):
        r.pop("_ts")
        records.normalize_record(r, source="sim.jsonl", line=i + 1)
    for line in bad:
        with pytest.raises(ValueError):
            records.normalize_record(json.loads(line), source="sim.jsonl", line=1)


def test_labels_cover_every_account_and_every_kind(small_sim, parsed):
    good, _, labels, by_acct, scenario = parsed
    assert set(by_acct) == set(labels)
    assert small_sim.n_accounts == len(labels)
    assert {row["label"] for row in labels.values()} == set(LABELS)
    kinds = Counter(row["kind"] for row in labels.values())
    for kind in (
        "organic",
        "product",
        "coding_tool",
        "batch_job",
        "power_user",
        "team",
        "benchmark",
        "proxy_customer",
    ):
        assert kinds[kind] >= 1, kind
    for name in CAMPAIGNS:
        members = [row for row in labels.values() if row["campaign"] == name]
        assert len(members) >= 8 and all(
            row["label"] == "campaign" and row["kind"] == name for row in members
        )
    assert all(row["campaign"] == "" for row in labels.values() if row["label"] != "campaign")
    assert scenario["counts"]["total_requests"] == len(good)


def test_reason_rubric_shares_payment_instruments(parsed):
    _, _, labels, by_acct, _ = parsed
    owners = defaultdict(set)
    for acct, recs in by_acct.items():
        for r in recs:
            owners[r["payment_id"]].add(acct)
    shared = [
        s for s in owners.values() if len(s) > 1 and any(labels[a]["campaign"] == "reason_rubric" for a in s)
    ]
    assert shared, "reason_rubric accounts must share some payment ids"
    assert all(all(labels[a]["campaign"] == "reason_rubric" for a in s) for s in shared)


def test_broad_agentic_proxy_also_carries_ordinary_customers(parsed):
    _, _, labels, by_acct, _ = parsed
    ip_kinds = defaultdict(set)
    for acct, recs in by_acct.items():
        for r in recs:
            if "ip" in r:
                ip_kinds[r["ip"]].add(labels[acct]["kind"])
    mixed = [k for k in ip_kinds.values() if "broad_agentic" in k and "proxy_customer" in k]
    assert len(mixed) >= 3


def test_agentic_tools_moves_half_its_traffic_to_the_new_model(parsed):
    good, _, labels, _, scenario = parsed
    release = SimConfig().release_dt.timestamp()
    assert scenario["model_new_release"] == SimConfig().release_dt.isoformat()
    recs = [r for r in good if labels[r["account_id"]]["campaign"] == "agentic_tools" and "model" in r]
    before = [r["model"] for r in recs if r["_ts"] < release]
    after = [r["model"] for r in recs if r["_ts"] >= release + 24 * 3600]
    assert before and set(before) == {"claude-x-1"}
    share = np.mean([m == "claude-x-2" for m in after])
    assert 0.3 < share < 0.7
    products = [r["model"] for r in good if labels[r["account_id"]]["kind"] == "product" and "model" in r]
    assert set(products) == {"claude-x-1"}


def test_campaigns_sweep_many_distinct_tasks_rarely_followed_up(parsed):
    _, _, labels, by_acct, _ = parsed
    for name in CAMPAIGNS:
        recs = [r for a, row in labels.items() if row["campaign"] == name for r in by_acct[a]]
        prompts = [prompt_of(r)[1] for r in recs]
        turns = np.array([prompt_of(r)[2] for r in recs])
        assert len(set(prompts)) >= 0.3 * len(prompts), name
        assert np.mean(turns > 0) < 0.12, name
        volumes = [len(by_acct[a]) for a, row in labels.items() if row["campaign"] == name]
        assert max(volumes) < max(len(r) for r in _of_kind(labels, by_acct, "product"))
    organic_turns = [prompt_of(r)[2] for recs in _of_kind(labels, by_acct, "organic") for r in recs]
    assert np.mean(np.array(organic_turns) > 0) > 0.08


def test_reason_rubric_fires_in_synchronised_windows(parsed):
    _, _, labels, by_acct, _ = parsed
    members = [a for a, row in labels.items() if row["campaign"] == "reason_rubric"]
    slots = defaultdict(set)  # 30-minute slot -> accounts active in it
    for a in members:
        for r in by_acct[a]:
            slots[int(r["_ts"] // 1800)].add(a)
    busy = [len(s) for s in slots.values()]
    assert np.mean(busy) >= 2.0  # several accounts per active window, not one at a time


def test_hard_negatives_behave_as_described(parsed):
    _, _, labels, by_acct, _ = parsed
    (product,) = _of_kind(labels, by_acct, "product")[:1]
    assert len({prompt_of(r)[0] for r in product}) == 1  # one fixed system prompt
    assert len({prompt_of(r)[1] for r in product}) > 10
    hours = np.array([r["_ts"] % 86400 // 3600 for r in product])
    assert len(set(hours.tolist())) >= 20  # round the clock
    (batch,) = _of_kind(labels, by_acct, "batch_job")[:1]
    days = {int(r["_ts"] // 86400) for r in batch}
    assert len(days) >= 20
    local = Counter(int(r["_ts"] % 86400 // 3600) for r in batch)
    assert local.most_common(1)[0][1] + sum(sorted(local.values())[-2:-1]) >= 0.85 * len(batch)
    (bench,) = _of_kind(labels, by_acct, "benchmark")[:1]
    run = [r for r in bench if r.get("model") == "claude-x-2"]
    assert len(run) >= 10 and max(r["_ts"] for r in run) - min(r["_ts"] for r in run) < 6 * 3600
    team_orgs = Counter(r["org_id"] for recs in _of_kind(labels, by_acct, "team") for r in recs[:1])
    assert max(team_orgs.values()) >= 2


def test_bad_config_is_rejected(tmp_path, tiny_corpus):
    with pytest.raises(ValueError):
        simulate("not a config", tmp_path, corpus_dir=tiny_corpus)
