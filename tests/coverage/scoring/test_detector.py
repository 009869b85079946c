"""SweepDetector end to end on synthetic windows: sweeps caught, hard negatives left alone."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from promptcov.coverage.scoring.detector import SweepDetector
from promptcov.errors import InputError, NotFittedError
from tests.coverage.synth_frames import (
    SynthWorld,
    add_batch_job,
    add_benchmark,
    add_coding_tool,
    add_hydra,
    add_power_user,
    add_product,
    organic_population,
)

HARD_NEGATIVES = ["product", "ide-tool", "nightly", "nightly-da", "power"]
CONTRACT = {"account_id", "n_requests", "score", "flagged", "group_id", "top_capability", "reasons"}


@dataclass
class Link:  # the shape promptcov.coverage.linking.linker produces
    a: str
    b: str
    link_type: str
    weight: float
    detail: str = ""


def hard_negatives(world: SynthWorld) -> None:
    organic_population(world, 150)
    add_product(world)
    add_coding_tool(world)
    add_batch_job(world, "nightly", area="other")
    add_batch_job(world, "nightly-da", area="data_analysis")
    add_power_user(world)


@pytest.fixture(scope="module")
def attacked():
    world = SynthWorld(seed=11)
    hard_negatives(world)
    add_benchmark(world, area="coding")
    world.sweep("sweeper", 1500, ["rubric_grading", "cot_elicitation"], ["sw-t1", "sw-t2"])
    pools = add_hydra(world)
    members = pools["G-hydra"]
    world.organic("bystander", 40)  # shares an ASN with the hydra and got pulled into its group
    links = [Link(members[i], members[i + 1], "template", 0.9, "hydra-t1") for i in range(len(members) - 1)]
    links += [Link(members[i], members[i + 3], "payment", 1.0, "card") for i in range(0, len(members) - 3, 3)]
    links.append(Link("bystander", members[0], "asn", 0.2, "AS64500"))
    groups = {"G-hydra": [*members, "bystander"]}
    pivots = {"G-hydra": ["moved from rubric_grading to cot_elicitation on day 6"]}
    frame = world.frame()
    det = SweepDetector(seed=0).fit(frame, group_members=groups, links=links, pivots=pivots)
    return det, frame, members, groups, links


def rows_by_id(det) -> dict:
    return {r["account_id"]: r for r in det.accounts_}


def test_single_account_sweep_is_flagged_with_reasons_and_evidence(attacked):
    det, *_ = attacked
    r = rows_by_id(det)["sweeper"]
    assert r["flagged"] and r["score"] >= det.threshold_
    assert r["top_capability"] in ("rubric_grading", "cot_elicitation")
    assert "templated" in r["reasons"] and "round the clock" in r["reasons"]
    ev = r["evidence"]
    assert set(ev) >= {"metrics", "drivers", "examples", "templates", "capabilities", "linked", "pivots"}
    assert ev["templates"][0][0] in ("sw-t1", "sw-t2") and 1 <= len(ev["examples"]) <= 3
    assert ev["drivers"][0][1] > 0 and ev["metrics"]["template_share"] > 0.8


def test_hydra_group_is_flagged_though_no_member_is_alone(attacked):
    det, _, members, _, _ = attacked
    rows = rows_by_id(det)
    # no member is flagged on its own traffic; the published score carries the group's evidence
    assert all(rows[m]["evidence"]["own_score"] < det.threshold_ for m in members)
    assert all(rows[m]["score"] >= det.threshold_ for m in members)
    group = {g["group_id"]: g for g in det.groups_}["G-hydra"]
    assert group["flagged"] and group["score"] > 0.9
    assert group["capabilities"].split(",")[0] in ("cot_elicitation", "rubric_grading")
    assert group["evidence"]["link_types"] == {"template": 23, "payment": 7, "asn": 1}
    assert "coordinated group of" in group["reasons"] and "pivot:" in group["reasons"]
    assert len(group["evidence"]["timeline"]) >= 5 and group["first_seen"] < group["last_seen"]
    for m in members:
        assert rows[m]["flagged"] and rows[m]["group_id"] == "G-hydra"
        assert rows[m]["reasons"].startswith("member of flagged group G-hydra")


def test_member_linked_only_by_asn_is_not_flagged_through_the_group(attacked):
    det, *_ = attacked
    r = rows_by_id(det)["bystander"]
    assert not r["flagged"] and r["group_id"] == "G-hydra" and r["score"] < det.threshold_
    assert "weak tie" in r["reasons"]
    assert r["evidence"]["linked"][0][1] == "asn"


def test_hard_negatives_and_organic_accounts_stay_unflagged(attacked):
    det, *_ = attacked
    rows = rows_by_id(det)
    for name in HARD_NEGATIVES:
        assert not rows[name]["flagged"], (name, rows[name]["score"], rows[name]["reasons"])
    organic = [r for a, r in rows.items() if a.startswith("org-")]
    assert not any(r["flagged"] for r in organic)
    assert max(r["score"] for r in organic) < 0.2


def test_one_off_benchmark_is_labelled_benign_not_flagged(attacked):
    det, *_ = attacked
    r = rows_by_id(det)["evaluator"]
    assert r["benign_kind"] == "benchmark" and not r["flagged"]
    assert r["score"] >= det.threshold_  # systematic: it would be flagged without the label
    assert r["reasons"].startswith("one-off benchmark-like run:")
    assert all(x["benign_kind"] is None for x in det.accounts_ if x["account_id"] != "evaluator")


def test_outputs_follow_the_contract_and_serialise(attacked):
    det, frame, *_ = attacked
    assert len(det.accounts_) == len(set(frame.account_id))
    for r in det.accounts_:
        assert CONTRACT <= set(r) and 0.0 <= r["score"] <= 1.0 and isinstance(r["flagged"], bool)
        assert isinstance(r["group_id"], str) and r["reasons"]
    json.dumps(det.accounts_)
    json.dumps(det.groups_)
    assert set(det.groups_[0]) >= {
        "group_id",
        "n_accounts",
        "n_requests",
        "score",
        "flagged",
        "capabilities",
        "reasons",
        "members",
        "evidence",
        "first_seen",
        "last_seen",
    }
    assert len(det.metrics_["n_requests"]) == len(det.account_ids_)
    assert det.flagged_accounts()[0] in ("sweeper", *[f"hydra-{i:02d}" for i in range(24)])


def test_clean_population_flags_nobody_and_groups_alone_do_not_flag():
    world = SynthWorld(seed=12)
    hard_negatives(world)
    frame = world.frame()
    organic = sorted(a for a in set(frame.account_id) if a.startswith("org-"))[:6]
    links = [Link(organic[0], organic[i], "payment", 1.0) for i in range(1, 6)]
    det = SweepDetector().fit(frame, groups={a: "G-family" for a in organic}, links=links)
    assert det.threshold_ == 0.5 and "robust null of" in det.calibration_
    assert not any(r["flagged"] for r in det.accounts_)
    assert not det.groups_[0]["flagged"]


def test_hydra_members_without_the_group_are_not_flagged():
    world = SynthWorld(seed=13, days=7)
    organic_population(world, 60)
    members = add_hydra(world, n_accounts=16, per_account=20)["G-hydra"]
    frame = world.frame()
    alone = SweepDetector().fit(frame)
    assert not any(r["flagged"] for r in alone.accounts_)
    grouped = SweepDetector().fit(frame, group_members={"G-hydra": members})
    assert {r["account_id"] for r in grouped.accounts_ if r["flagged"]} == set(members)


def test_proxy_group_mixing_a_sweep_with_ordinary_customers_is_flagged():
    world = SynthWorld(seed=4, days=10)
    organic_population(world, 60)
    members = add_hydra(world, n_accounts=16, per_account=25)["G-hydra"]
    for m in members:  # the same keys also carry ordinary customers' traffic
        world.organic(m, 25, followup_p=0.3)
    det = SweepDetector().fit(world.frame(), group_members={"G-hydra": members})
    group = det.groups_[0]
    assert group["flagged"] and group["reasons"].startswith("sweep component: 50% of the group's traffic")
    assert group["evidence"]["metrics"]["pooled_score"] < det.threshold_  # diluted, all traffic alone
    assert {r["account_id"] for r in det.accounts_ if r["flagged"]} == set(members)


def test_errors_before_fit_and_on_bad_input():
    with pytest.raises(NotFittedError):
        SweepDetector().flagged_accounts()
    with pytest.raises(InputError):
        SweepDetector().fit({"account_id": []})
    world = SynthWorld(seed=1, days=2)
    world.organic("a", 5)
    with pytest.raises(InputError):
        SweepDetector().fit(world.frame(), groups=[("a", "G")])


def test_fit_is_deterministic_and_params_untouched():
    world = SynthWorld(seed=2, days=3)
    organic_population(world, 30)
    world.sweep("s", 200, ["coding"], ["t"])
    frame = world.frame()
    det = SweepDetector(seed=3)
    a = [r["score"] for r in det.fit(frame).accounts_]
    b = [r["score"] for r in SweepDetector(seed=3).fit(frame).accounts_]
    assert np.allclose(a, b)
    assert det.weights is None and det.params is None and det.overrides == {"seed": 3}


def test_sorting_by_score_puts_flagged_accounts_first(attacked):
    det, *_ = attacked
    ranked = sorted(det.accounts_, key=lambda r: -r["score"])
    flags = [r["flagged"] for r in ranked if r["benign_kind"] is None]
    n = sum(flags)
    assert n > 10 and all(flags[:n]) and not any(flags[n:])
    for r in det.accounts_:  # flagged means: score at or above the window's threshold
        assert r["flagged"] == (r["score"] >= det.threshold_ and r["benign_kind"] is None)


def test_weak_membership_inherits_nothing_and_strong_inherits_the_group_score():
    world = SynthWorld(seed=13, days=7)
    organic_population(world, 60)
    members = add_hydra(world, n_accounts=16, per_account=20)["G-hydra"]
    frame = world.frame()
    tie = dict.fromkeys(members, 0.95)
    tie[members[0]] = 0.2  # tied to the group by a weak link only
    det = SweepDetector().fit(frame, group_members={"G-hydra": members}, membership=tie)
    rows = rows_by_id(det)
    g = det.groups_[0]["score"]
    assert rows[members[1]]["score"] == pytest.approx(max(0.95 * g, rows[members[1]]["evidence"]["own_score"]),
                                                      abs=1e-3)
    assert rows[members[0]]["score"] == rows[members[0]]["evidence"]["own_score"]
    assert not rows[members[0]]["flagged"] and rows[members[1]]["flagged"]


def _popular(frame, prefix):
    """The frame with the templates of ``prefix``'s hydra marked popular (small accounts, a few uses each)."""
    from dataclasses import replace

    pop = np.array([t is not None and str(t).startswith(prefix) for t in frame.template_id])
    return replace(frame, template_popular=pop | frame.template_popular)


def test_a_hydras_own_popular_looking_template_is_its_signature_in_the_group_score():
    world = SynthWorld(seed=14, days=7)
    organic_population(world, 60)
    members = add_hydra(world, n_accounts=30, per_account=6)["G-hydra"]
    frame = _popular(world.frame(), "hydra-")
    links = [Link(members[i], members[i + 3], "payment", 1.0, "card") for i in range(len(members) - 3)]
    det = SweepDetector().fit(frame, group_members={"G-hydra": members}, links=links)
    group = det.groups_[0]
    assert group["evidence"]["metrics"]["template_share"] > 0.8  # owned: counted as its templates
    assert group["flagged"] and {r["account_id"] for r in det.accounts_ if r["flagged"]} == set(members)
    owned_off = SweepDetector(owned_template_share=1.01).fit(frame, group_members={"G-hydra": members},
                                                             links=links)
    assert owned_off.groups_[0]["evidence"]["metrics"]["template_share"] == 0.0
    assert owned_off.groups_[0]["score"] < group["score"]


def test_threshold_is_calibrated_on_own_traffic_so_a_large_flagged_group_cannot_raise_it():
    """A window where a big hydra's members outnumber the active organic accounts: their inherited
    scores must not move the null the threshold comes from."""
    world = SynthWorld(seed=15, days=7)
    organic_population(world, 40)
    members = add_hydra(world, n_accounts=60, per_account=25)["G-hydra"]
    det = SweepDetector().fit(world.frame(), group_members={"G-hydra": members})
    heavy = det.metrics_["n_requests"] >= 20
    assert np.mean(np.isin(det.account_ids_, members)[heavy]) > 0.5
    assert det.threshold_ == 0.5
    assert {r["account_id"] for r in det.accounts_ if r["flagged"]} == set(members)


def test_burner_accounts_on_one_template_inherit_and_a_long_one_template_run_does_not():
    """Tied to the group only by its template, a 4-request burner account of the hydra inherits the
    group's score; a 60-request run of that one template (an evaluator) stays out of it."""
    world = SynthWorld(seed=16, days=7)
    organic_population(world, 60)
    members = add_hydra(world, n_accounts=16, per_account=25)["G-hydra"]
    burners = [f"burner-{i}" for i in range(4)]
    for b in burners:
        world.sweep(b, 4, ["cot_elicitation"], ["hydra-t1"], template_p=1.0, cot_marker=True)
    world.sweep("evaluator", 60, ["rubric_grading"], ["hydra-t1"], template_p=1.0)
    everyone = [*members, *burners, "evaluator"]
    links = [Link(members[i], members[i + 1], "payment", 1.0, "card") for i in range(len(members) - 1)]
    links += [Link(a, members[0], "template", 0.9, "hydra-t1") for a in [*burners, "evaluator"]]
    det = SweepDetector().fit(world.frame(), group_members={"G-hydra": everyone}, links=links)
    rows = rows_by_id(det)
    assert det.groups_[0]["flagged"]
    assert all(rows[b]["flagged"] for b in burners)
    assert not rows["evaluator"]["flagged"]


def test_a_group_whose_sweep_component_is_one_members_batch_job_does_not_flag_the_others():
    """Four ordinary accounts tied to a nightly rubric-grading job through a template they touched
    once or twice: the group's templated traffic is that one job's, which is scored on its own."""
    world = SynthWorld(seed=17, days=14)
    organic_population(world, 60)
    add_batch_job(world, "nightly-judge", per_night=40, area="rubric_grading")
    people = [f"desk-{i}" for i in range(4)]
    for p in people:
        world.organic(p, 60, followup_p=0.2)
        for t in world.flat_times(2):
            world.add(p, t, "rubric_grading", world.vec("rubric_grading", 0), template_id="nightly-judge-tmpl")
    members = ["nightly-judge", *people]
    links = [Link("nightly-judge", p, "template", 0.9, "nightly-judge-tmpl") for p in people]
    links += [Link(people[i], people[i + 1], "payment", 1.0, "team card") for i in range(3)]
    det = SweepDetector().fit(world.frame(), group_members={"G-desk": members}, links=links)
    assert not det.groups_[0]["flagged"]
    assert not any(r["flagged"] for r in det.accounts_ if r["account_id"] in members)


@pytest.mark.parametrize("tie, flagged", [("template", False), ("near_duplicate", False), ("payment", True)])
def test_a_one_off_run_sharing_a_campaigns_content_is_a_benchmark_but_a_shared_card_is_not(tie, flagged):
    """A benchmark runner on the same public tasks as a hydra shares its content, not its operator."""
    world = SynthWorld(seed=18, days=7)
    organic_population(world, 60)
    members = add_hydra(world, n_accounts=16, per_account=25)["G-hydra"]
    add_benchmark(world, "runner", n=40, area="cot_elicitation")
    links = [Link(members[i], members[i + 1], "payment", 1.0, "card") for i in range(len(members) - 1)]
    links += [Link("runner", m, tie, 0.99, "shared") for m in members[:5]]
    det = SweepDetector().fit(world.frame(), group_members={"G-hydra": [*members, "runner"]}, links=links)
    rows = rows_by_id(det)
    assert det.groups_[0]["flagged"] and all(rows[m]["flagged"] for m in members)
    assert rows["runner"]["flagged"] is flagged
    assert (rows["runner"]["benign_kind"] == "benchmark") is (not flagged)


def _small_hydra_and_office(seed: int):
    """Six accounts, each sending five fills of two rare scaffolds (tool use, data analysis) and four
    ordinary requests, on two cards; and an office of six colleagues who each filled a shared report
    template twice among forty ordinary requests, on one network."""
    world = SynthWorld(seed=seed, days=7)
    organic_population(world, 60)
    members = [f"hyd-{i}" for i in range(6)]
    for i, m in enumerate(members):
        world.sweep(m, 5, ["tool_use", "data_analysis"], ["hyd-t1", "hyd-t2"], times=world.human_times(5),
                    template_p=0.8, payment_id=f"card-{i % 2}")
        world.organic(m, 4, followup_p=0.3)
    office = [f"desk-{i}" for i in range(6)]
    for p in office:
        world.organic(p, 40, followup_p=0.2)
        for t in world.flat_times(2):
            world.add(p, t, "data_analysis", world.vec("data_analysis", 0), template_id="office-report")
    links = [Link(members[i], members[i + 1], "payment", 1.0, "card") for i in range(5)]
    links += [Link(office[i], office[i + 1], "ip", 0.9, "office") for i in range(5)]
    return world.frame(), {"G-hydra": members, "G-office": office}, links


@pytest.mark.parametrize("seed", [21, 22])
def test_a_small_hydra_is_flagged_by_its_members_acting_alike_and_an_office_template_is_not(seed):
    """Thirty template fills are too few to trust from one account; from six accounts filling the same
    rare scaffolds they are not one person's fluke. Six colleagues sharing one report template among
    their ordinary traffic stay far below the threshold."""
    from dataclasses import replace as dc_replace

    from promptcov.coverage.scoring.params import ScoreWeights

    frame, groups, links = _small_hydra_and_office(seed)
    det = SweepDetector().fit(frame, group_members=groups, links=links)
    by = {g["group_id"]: g for g in det.groups_}
    hydra, office = by["G-hydra"], by["G-office"]
    assert hydra["flagged"] and hydra["evidence"]["metrics"]["alike_members"] > 5
    assert "filling its rare templates alike" in hydra["reasons"]
    assert {r["account_id"] for r in det.accounts_ if r["flagged"]} == set(groups["G-hydra"])
    assert office["score"] < 0.2 and office["evidence"]["metrics"]["alike_members"] > 5
    off = SweepDetector(weights=dc_replace(ScoreWeights(), shrink_members=0.0)).fit(
        frame, group_members=groups, links=links)
    assert not any(g["flagged"] for g in off.groups_)  # by volume alone the hydra stays under the floor
