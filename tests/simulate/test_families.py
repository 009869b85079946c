"""Scenario families: deterministic per seed, inside their ranges, disjoint dev/eval material, full labels."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from promptcov.errors import InputError
from promptcov.simulate.families import DEV_SEEDS, EVAL_SEEDS, family_pools, simulate_family
from promptcov.simulate.family_config import HIGH_VALUE_AREAS, RANGES, draw_family
from promptcov.simulate.material import STYLES, family_scaffolds, half_of, load_intents, split_pools
from tests.simulate._logcheck import prompt_of, read_labels, read_logs

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")


def test_family_is_a_pure_function_of_the_seed():
    assert draw_family(7) == draw_family(7)
    assert draw_family(7) != draw_family(8)
    assert draw_family(7, scale=0.5).campaigns[0].n_accounts <= draw_family(7).campaigns[0].n_accounts


def test_families_respect_the_ranges_and_cover_them():
    fams = [draw_family(s) for s in range(200)]
    camps = [c for f in fams for c in f.campaigns]
    assert {len(f.campaigns) for f in fams} == {2, 3, 4}
    for c in camps:
        assert RANGES["accounts"][0] <= c.n_accounts <= RANGES["accounts"][1]
        assert 1 <= c.n_payment_ids <= min(40, c.n_accounts)
        assert 0.0 <= c.proxy_share <= 1.0 and 0.0 <= c.followup_share <= 0.4 and 0.0 <= c.cover_share <= 0.5
        assert 1 <= c.scaffolds_per_area <= 10 and 1 <= len(c.areas) <= 5
        assert set(c.areas) <= set(HIGH_VALUE_AREAS) and len(set(c.areas)) == len(c.areas)
        assert c.pivot_area not in c.areas
        if c.pivots:
            assert 1.0 <= c.pivot_delay_h <= 24.0 and 0.3 <= c.pivot_share <= 0.7
        if c.hydra:
            assert 5 <= c.median_requests <= 60
    # the draws reach both ends of the knobs, not one corner of them
    assert min(c.n_accounts for c in camps) < 20 and max(c.n_accounts for c in camps) > 200
    assert {c.round_the_clock for c in camps} == {True, False}
    assert Counter(c.hydra for c in camps)[True] > 0.4 * len(camps)
    assert any(c.pivot_model for c in camps) and any(c.pivot_area for c in camps)
    assert any(c.n_payment_ids == 1 for c in camps) and max(c.n_payment_ids for c in camps) > 30
    assert {a for c in camps for a in c.areas} == set(HIGH_VALUE_AREAS)
    with pytest.raises(InputError):
        draw_family(1, scale=0)


def test_seed_convention_keeps_dev_and_eval_apart():
    assert DEV_SEEDS == tuple(range(10)) and EVAL_SEEDS == tuple(range(100, 120))


def test_half_of_is_stable():
    # a fixed record always falls in the same half (sha1 of the stripped text, lowest bit of byte 0)
    assert half_of("What is the capital of France?") == "dev"
    assert half_of("  What is the capital of France?\n") == "dev"
    halves = Counter(half_of(f"task number {i}") for i in range(2000))
    assert 900 < halves["dev"] < 1100


def test_scaffold_halves_are_disjoint_and_span_styles():
    intents = load_intents()
    for area in HIGH_VALUE_AREAS:
        halves = Counter(r["half"] for r in intents if r["area"] == area)
        assert halves["dev"] >= 1 and halves["eval"] >= 1, area
    dev, ev = family_scaffolds("dev"), family_scaffolds("eval")
    assert {s.id for s in dev}.isdisjoint({s.id for s in ev})
    assert {s.template for s in dev}.isdisjoint({s.template for s in ev})
    dev_asks = {r["ask"] for r in intents if r["half"] == "dev"}
    for s in ev:  # no development instruction inside an evaluation scaffold
        assert not any(a[:40] in s.template for a in dev_asks)
    for area in HIGH_VALUE_AREAS:
        styles = {s.id.rpartition("/")[2] for s in ev if s.area == area}
        assert len(styles) >= 3 and styles <= set(STYLES)
    agentic = " ".join(s.template + s.system for s in dev + ev if s.area == "agentic_coding").lower()
    assert "repository" in agentic and "test" in agentic and "iterate" in agentic
    cu = " ".join(s.template + s.system for s in dev + ev if s.area == "computer_use").lower()
    assert "click" in cu and "screenshot" in cu and "type" in cu
    with pytest.raises(InputError):
        family_scaffolds("test")


def _material(pools):
    texts = {p.prompt for items in pools.tasks.values() for p in items}
    return texts, {p.prompt for p in pools.organic}, {s.template for s in pools.scaffolds}


def test_dev_and_eval_pools_share_no_text_corpus():
    dev, ev = family_pools("dev"), family_pools("eval")
    (dt, do, ds), (et, eo, es) = _material(dev), _material(ev)
    assert dt and et and dt.isdisjoint(et) and do.isdisjoint(eo) and ds.isdisjoint(es)
    assert "computer_use" in dev.tasks and "computer_use" in ev.tasks
    assert len(ds) > len(es)  # the original scaffolds are development material only


@pytest.mark.skipif(not DATA.is_dir(), reason="the real prompt sets are not present")
def test_dev_and_eval_pools_share_no_text_real_sets():
    (dt, do, _), (et, eo, _) = _material(family_pools("dev", DATA)), _material(family_pools("eval", DATA))
    assert len(dt) > 1000 and dt.isdisjoint(et) and do.isdisjoint(eo)


def test_split_pools_rejects_unknown_split():
    with pytest.raises(InputError):
        split_pools(family_pools("dev"), "train")


@pytest.fixture(scope="module")
def fam_sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("fam")
    return simulate_family(3, out / "a", split="eval", scale=0.08), out


def test_simulate_family_labels_cover_every_account_and_records_are_valid(fam_sim):
    res, _ = fam_sim
    recs, bad = read_logs(res.log_paths)
    assert not bad and recs  # read_logs checks every record against the log format
    labels = read_labels(res.labels_path)
    assert {r["account_id"] for r in recs} == set(labels)
    scen = json.loads(res.scenario_path.read_text())
    fam = draw_family(3, 0.08)
    kinds = Counter(v["label"] for v in labels.values())
    assert kinds["campaign"] > 0 and kinds["organic"] > 0 and kinds["hard_negative"] > 0
    assert kinds["benign_benchmark"] >= 1
    for spec in fam.campaigns:
        members = [a for a, v in labels.items() if v["campaign"] == spec.name]
        assert len(members) == spec.n_accounts == scen["campaigns"][spec.name]["accounts_present"]
        cards = {r.get("payment_id") for r in recs if r["account_id"] in set(members)}
        assert len(cards) <= spec.n_payment_ids
    assert scen["split"] == "eval" and scen["family"]["seed"] == 3


def test_simulate_family_is_byte_identical_and_uses_its_half(fam_sim):
    res, out = fam_sim
    again = simulate_family(3, out / "b", split="eval", scale=0.08)
    assert [p.read_bytes() for p in res.log_paths] == [p.read_bytes() for p in again.log_paths]
    dev_tasks = {p.prompt for items in family_pools("dev").tasks.values() for p in items}
    labels = read_labels(res.labels_path)
    recs, _ = read_logs(res.log_paths)
    sent = [prompt_of(r)[0] for r in recs if labels[r["account_id"]]["label"] == "campaign"]
    assert sent and not any(t in s for s in sent[:300] for t in dev_tasks if len(t) > 30)
    with pytest.raises(InputError):
        simulate_family(3, out / "c", split="both")
