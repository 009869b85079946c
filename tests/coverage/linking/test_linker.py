"""Tests for account linking: each kind of evidence, what must NOT link, and the communities."""

from __future__ import annotations

import numpy as np
import pytest

from promptcov.coverage.frame import RequestFrame
from promptcov.coverage.linking.linker import (
    AccountLinker,
    Link,
    near_duplicate_families,
    timing_links,
)
from promptcov.errors import InputError, NotFittedError

T0 = 1_763_251_200.0  # 2025-11-16 00:00 UTC
DAY = 86400.0


class Builder:
    """Collect synthetic requests; every request gets its own text unless told otherwise."""

    def __init__(self, seed: int = 0, dim: int = 16):
        self.rng = np.random.default_rng(seed)
        self.dim = dim
        self.rows: list[dict] = []
        self.vecs: list[np.ndarray] = []

    def _vec(self, base: np.ndarray | None = None, noise: float = 0.0) -> int:
        v = self.rng.normal(size=self.dim) if base is None else base + noise * self.rng.normal(size=self.dim)
        self.vecs.append(v / np.linalg.norm(v))
        return len(self.vecs) - 1

    def add(self, account, ts, *, base=None, noise=0.0, text_id=None, **fields):
        row = self._vec(base, noise)
        self.rows.append(
            {
                "account_id": account,
                "ts": float(ts),
                "text_id": 10_000 + row if text_id is None else text_id,
                "vec_row": row,
                **fields,
            }
        )

    def organic(self, account, n, start=T0, span=7 * DAY, **fields):
        for t in np.sort(self.rng.uniform(start, start + span, n)):
            self.add(account, t, **fields)

    def frame(self) -> RequestFrame:
        keys = sorted({k for r in self.rows for k in r} | {"account_id", "ts", "text_id", "vec_row"})
        cols = {k: [r.get(k, False if k == "template_popular" else None) for r in self.rows] for k in keys}
        vecs = np.array(self.vecs, dtype=np.float32).reshape(-1, self.dim)
        return RequestFrame.from_columns(cols, vectors=vecs)


def _types(linker, a, b):
    return {e.link_type for e in linker.edges_ if {e.a, e.b} == {a, b}}


def test_popular_template_links_no_one():
    b = Builder(1)
    for i in range(12):
        acct = f"user-{i:02d}"
        b.organic(acct, 10)
        for t in b.rng.uniform(T0, T0 + DAY, 15):  # everyone pastes the same famous prompt
            b.add(acct, t, template_id="tpl-act-as-linux", template_popular=True)
    linker = AccountLinker().fit(b.frame())
    assert linker.edges_ == [] and linker.groups_ == {}
    # not flagged popular, but used by more accounts than the cap: still links no one
    b2 = Builder(2)
    for i in range(12):
        b2.organic(f"user-{i:02d}", 10)
        for t in b2.rng.uniform(T0, T0 + DAY, 15):
            b2.add(f"user-{i:02d}", t, template_id="tpl-common")
    assert AccountLinker(max_key_accounts=10).fit(b2.frame()).groups_ == {}


def _hydra_with_proxy(seed=3):
    b = Builder(seed)
    attackers = [f"atk-{i}" for i in range(5)]
    organic = [f"org-{i}" for i in range(10)]
    for a in attackers:
        for t in np.sort(b.rng.uniform(T0, T0 + 2 * DAY, 40)):
            b.add(a, t, template_id="tpl-sweep-7f", ip="198.51.100.9", asn="64500")
    for i, a in enumerate(organic):
        on_proxy = i < 4  # four ordinary customers of the same proxy service
        b.organic(a, 30, ip="198.51.100.9" if on_proxy else f"203.0.113.{i}", asn="64500")
    return b, attackers, organic


def test_rare_template_links_hydra_and_shared_proxy_ip_does_not_convict_organic():
    b, attackers, organic = _hydra_with_proxy()
    linker = AccountLinker().fit(b.frame())
    assert len(linker.group_members_) == 1
    ((gid, members),) = linker.group_members_.items()
    assert members == attackers and gid.startswith("G-")
    assert all(linker.groups_[a] == gid for a in attackers)
    assert not any(o in linker.groups_ for o in organic)
    assert not any(o in (e.a, e.b) for e in linker.edges_ for o in organic)
    assert {"template", "ip"} <= _types(linker, "atk-0", "atk-1")
    tpl = [e for e in linker.edges_ if e.link_type == "template"]
    assert all(isinstance(e, Link) and e.a < e.b and 0.5 <= e.weight <= 1 for e in tpl)
    assert "rare-template overlap" in tpl[0].detail and tpl[0].bits > 0
    ip = [e for e in linker.edges_ if e.link_type == "ip"]
    assert ip and all(0 < e.bits <= linker.params_.max_bits_network + 1e-9 for e in ip)
    assert linker.graph_.number_of_nodes() == len(attackers)
    assert linker.membership_["atk-0"] > 0.99 and linker.cohesion_[gid] > 0.9


def test_ip_and_asn_alone_form_no_group():
    b = Builder(4)
    for i in range(6):  # six accounts behind one IP and one ASN, nothing else in common
        b.organic(f"acct-{i}", 25, ip="192.0.2.1", asn="64501")
    linker = AccountLinker(min_posterior=0.01).fit(b.frame())
    assert linker.groups_ == {} and linker.edges_ == []


def test_shared_payment_links_accounts_and_same_org_is_not_evidence():
    b = Builder(5)
    for i, org in enumerate(["org-a", "org-b", "org-c"]):
        b.organic(f"pay-{i}", 10, payment_id="card-42", org_id=org)
    for i in range(4):  # a small team sharing a company card
        b.organic(f"team-{i}", 10, payment_id="card-99", org_id="org-team")
    for i in range(100):
        b.organic(f"solo-{i:03d}", 10, payment_id=f"pm-{i}", org_id=f"org-s{i}")
    linker = AccountLinker().fit(b.frame())
    assert list(linker.group_members_.values()) == [["pay-0", "pay-1", "pay-2"]]  # the team is expected
    pay = {(e.a, e.b): e for e in linker.edges_ if e.link_type == "payment"}
    assert pay[("pay-0", "pay-1")].bits >= 8 and "across orgs" in pay[("pay-0", "pay-1")].detail
    assert not any(e.a.startswith("team") for e in linker.edges_)  # same-org card: no evidence either way
    # term-frequency adjustment: a card shared by 30 accounts says less per pair than one shared by 3
    b2 = Builder(6)
    for i in range(30):
        b2.organic(f"mass-{i:02d}", 5, payment_id="card-shared", org_id=f"o{i}")
    for i in range(3):
        b2.organic(f"trio-{i}", 5, payment_id="card-trio", org_id=f"t{i}")
    for i in range(100):
        b2.organic(f"solo-{i:03d}", 5, payment_id=f"pm-{i}", org_id=f"s{i}")
    loose = AccountLinker(min_posterior=0.01, max_bits_payment=40).fit(b2.frame())
    bits = {e.a.split("-")[0]: e.bits for e in loose.edges_ if e.link_type == "payment"}
    assert bits["trio"] > bits["mass"] > 0


def test_near_duplicate_prompts_within_window_link():
    b = Builder(7)
    bases = [b.rng.normal(size=b.dim) for _ in range(6)]
    for a in ("nd-0", "nd-1", "nd-2"):
        for k, base in enumerate(bases):
            for t in b.rng.uniform(T0 + k * 3600, T0 + k * 3600 + 1800, 4):
                b.add(a, t, base=base, noise=0.03)
    for i in range(8):
        b.organic(f"org-{i}", 20)
    late = Builder(7)  # same near-duplicates, but sent ten days apart
    for j, a in enumerate(("late-0", "late-1")):
        for base in bases:
            late.add(a, T0 + j * 10 * DAY, base=base, noise=0.03)
    linker = AccountLinker(timing_min_requests=10**6).fit(b.frame())  # near-duplicates alone
    assert list(linker.group_members_.values()) == [["nd-0", "nd-1", "nd-2"]]
    assert _types(linker, "nd-0", "nd-2") == {"near_duplicate"}


def test_exact_same_text_links_without_vectors():
    b = Builder(8)
    for a in ("cp-0", "cp-1"):
        for k in range(10):
            b.add(a, T0 + k * 60 + (a == "cp-1") * 5, text_id=777 + k)
    for i in range(5):
        b.organic(f"org-{i}", 10)
    frame = b.frame()
    frame.vec_row[:] = -1
    linker = AccountLinker().fit(frame)
    assert list(linker.group_members_.values()) == [["cp-0", "cp-1"]]


def test_near_duplicate_families_join_close_vectors_only():
    rng = np.random.default_rng(9)
    base = rng.normal(size=32)
    close = base + 0.02 * rng.normal(size=(5, 32))
    far = rng.normal(size=(5, 32))
    x = np.vstack([close, far]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    fam = near_duplicate_families(x, 0.95)
    assert len(set(fam[:5])) == 1 and len(set(fam[5:])) == 5 and fam[0] not in fam[5:]


def _timing_builder(seed=10):
    b = Builder(seed)
    burst_bins = np.sort(b.rng.choice(7 * 144, size=40, replace=False))
    for a in ("sync-0", "sync-1", "sync-2", "sync-3"):
        for bin_ in burst_bins:
            for t in T0 + bin_ * 600 + b.rng.uniform(0, 600, 3):
                b.add(a, t)
    for i in range(8):  # diurnal power users of one timezone: 200 requests 09:00-17:00
        day = b.rng.integers(0, 7, 200)
        b_ts = T0 + day * DAY + 9 * 3600 + b.rng.uniform(0, 8 * 3600, 200)
        for t in np.sort(b_ts):
            b.add(f"human-{i}", t)
    for i in range(2):  # products built on the API, round the clock
        b.organic(f"product-{i}", 2000)
    return b


def test_synchronized_timing_links_and_rhythm_or_round_the_clock_does_not():
    b = _timing_builder()
    linker = AccountLinker().fit(b.frame())
    assert list(linker.group_members_.values()) == [["sync-0", "sync-1", "sync-2", "sync-3"]]
    timing = [e for e in linker.edges_ if e.link_type == "timing"]
    assert len(timing) == 6 and all(e.weight > 0.8 for e in timing)
    assert "same short time bins" in timing[0].detail


def test_timing_links_pure_function_respects_min_requests():
    rng = np.random.default_rng(13)
    acc = np.concatenate([np.repeat(np.arange(3), 10), np.repeat(np.arange(3, 9), 10)])
    ts = np.concatenate([np.tile(T0 + np.arange(10) * 3600.0, 3), rng.uniform(T0, T0 + 2 * DAY, 60)])
    mat, shared = timing_links(acc, ts, 9, min_requests=5, min_shared_bins=5)
    assert sorted(zip(mat.row.tolist(), mat.col.tolist(), strict=True)) == [(0, 1), (0, 2), (1, 2)]
    assert shared[(0, 1)] == 10 and mat.data.min() > 0.8
    mat, shared = timing_links(acc, ts, 9, min_requests=11)
    assert mat.nnz == 0 and shared == {}


def test_communities_are_deterministic_for_a_seed_and_bridges_are_cut():
    b = Builder(11)
    for g, tpl in enumerate(("tpl-a", "tpl-b")):
        for i in range(6):
            for t in np.sort(b.rng.uniform(T0, T0 + DAY, 30)):
                b.add(f"g{g}-{i}", t, template_id=tpl)
    for i in range(30):
        b.organic(f"org-{i:02d}", 5)
    # one account of each group also uses a second rare template: one bridge between two dense groups
    for g in range(2):
        for t in np.sort(b.rng.uniform(T0, T0 + DAY, 10)):
            b.add(f"g{g}-0", t, template_id="tpl-bridge")
    frame = b.frame()
    one = AccountLinker(seed=3).fit(frame)
    two = AccountLinker(seed=3).fit(frame)
    assert one.groups_ == two.groups_ and one.edges_ == two.edges_
    assert sorted(one.group_members_.values()) == [
        [f"g0-{i}" for i in range(6)],
        [f"g1-{i}" for i in range(6)],
    ]


def test_one_weak_link_does_not_make_a_member():
    b = Builder(14)
    for i in range(4):  # a hydra: most traffic in one rare template, some in a public judge template
        for t in np.sort(b.rng.uniform(T0, T0 + DAY, 40)):
            b.add(f"hyd-{i}", t, template_id="tpl-sweep")
        for t in np.sort(b.rng.uniform(T0, T0 + DAY, 2 if i else 12)):
            b.add(f"hyd-{i}", t, template_id="tpl-judge")
    for t in np.sort(b.rng.uniform(T0, T0 + DAY, 60)):  # an evaluator runs the judge template once
        b.add("bench", t, template_id="tpl-judge")
    for i in range(30):
        b.organic(f"org-{i:02d}", 5)
    linker = AccountLinker().fit(b.frame())
    assert list(linker.group_members_.values()) == [[f"hyd-{i}" for i in range(4)]]
    assert "bench" not in linker.groups_
    assert not any("bench" in (e.a, e.b) and e.weight >= 0.5 for e in linker.edges_)


def test_campaign_split_over_many_cards_stays_one_group_and_proxy_customers_stay_out():
    """The field test: 85 accounts, 12 cards, one proxy pool shared with ordinary customers, four
    scaffolds. Louvain cut it into one group per card; Leiden with CPM keeps it whole."""
    b = Builder(21)
    pool = [f"198.51.100.{i}" for i in range(40)]
    cards = [f"card-{i}" for i in range(12)]
    camp = [f"camp-{i:02d}" for i in range(85)]
    for i, a in enumerate(camp):
        for t in np.sort(b.rng.uniform(T0, T0 + 14 * DAY, 12)):
            b.add(a, t, template_id=f"tpl-scaffold-{b.rng.integers(4)}", payment_id=cards[i % 12],
                  ip=pool[b.rng.integers(len(pool))], asn="64500", org_id=f"o-{a}")
    for i in range(60):  # ordinary customers, a third of them on the same proxy pool
        ip = pool[i % len(pool)] if i % 3 == 0 else f"203.0.113.{i}"
        b.organic(f"org-{i:02d}", 15, span=14 * DAY, ip=ip, asn="64500" if i % 3 == 0 else "64999",
                  payment_id=f"pm-{i}", org_id=f"o-org-{i}")
    linker = AccountLinker().fit(b.frame())
    groups = list(linker.group_members_.values())
    biggest = max(groups, key=len)
    assert len(biggest) >= 0.8 * len(camp) and set(biggest) <= set(camp)
    assert not any(a.startswith("org-") for a in linker.groups_)


def test_popular_looking_template_of_a_campaign_on_many_cards_is_readmitted():
    """A hydra of 30 small accounts on 12 cards fills one scaffold a few times each, next to cover
    traffic: per account it looks like a public prompt. Its users are tied by their cards far beyond
    chance, so it is a signature; the same usage by 30 strangers links no one."""
    def build(cards: bool) -> Builder:
        b = Builder(31)
        for i in range(30):
            a, card = f"camp-{i:02d}", f"card-{i % 12}" if cards else f"pm-{i}"
            for t in np.sort(b.rng.uniform(T0, T0 + 7 * DAY, 4)):
                b.add(a, t, template_id="tpl-scaffold", template_popular=True, payment_id=card)
            b.organic(a, 3, payment_id=card)
        for i in range(200):
            b.organic(f"org-{i:03d}", 8, payment_id=f"pm-org-{i}")
        return b

    tied = AccountLinker().fit(build(cards=True).frame())
    assert tied.readmitted_templates_ == ["tpl-scaffold"]
    biggest = max(tied.group_members_.values(), key=len)
    assert len(biggest) >= 24 and all(a.startswith("camp-") for a in biggest)
    strangers = AccountLinker().fit(build(cards=False).frame())
    assert strangers.readmitted_templates_ == [] and strangers.groups_ == {}


def test_bad_input_and_not_fitted():
    with pytest.raises(InputError):
        AccountLinker().fit("not a frame")
    with pytest.raises(InputError):
        AccountLinker(resolution=2.0).fit(Builder().frame())
    with pytest.raises(InputError):
        AccountLinker(community="magic").fit(Builder().frame())
    with pytest.raises(NotFittedError):
        AccountLinker().links_for("a")
    empty = AccountLinker().fit(Builder().frame())
    assert empty.groups_ == {} and empty.edges_ == []


def test_link_helpers():
    from dataclasses import dataclass

    from promptcov.coverage.linking.linker import group_edges, link_fields

    @dataclass
    class L:
        a: str
        b: str
        link_type: str
        weight: float
        detail: str = ""

    edges = [
        link_fields(L("a", "b", "template", 0.9)),
        link_fields({"a": "b", "b": "a", "link_type": "asn"}),
        link_fields(("a", "c", "asn", 0.2)),
        link_fields(("c", "x", "payment", 1.0, "card")),
    ]
    assert edges[0] == ("a", "b", "template", 0.9, "") and edges[3][4] == "card"
    by_group = group_edges(edges, {"a": "G", "b": "G", "c": "G", "x": "H"})
    assert len(by_group["G"]) == 3 and "H" not in by_group


def test_rarity_bits_count_for_lasting_pairs_or_short_lived_pairs_sharing_a_scaffold_set():
    from promptcov.coverage.linking.evidence import rarity_bits_kept

    bits = np.array([9.0, 9.0, 9.0, 9.0])
    lasting = np.array([True, False, False, False])
    shared = np.array([1, 1, 2, 5])
    np.testing.assert_array_equal(rarity_bits_kept(bits, lasting, shared), [9.0, 0.0, 9.0, 9.0])
    np.testing.assert_array_equal(rarity_bits_kept(bits, lasting, shared, min_shared=3), [9.0, 0.0, 0.0, 9.0])


def test_one_accounts_volume_on_a_shared_template_does_not_make_templates_look_common():
    """A batch job sends its instruction thousands of times, and a colleague tries it three times. The
    null that weighs template overlap must not deal the job's thousands of requests to random
    accounts: that made every template look common, and a hydra rotating two scaffolds among cover
    traffic fell apart into its cards."""
    b = Builder(41)
    for i in range(30):
        a, card = f"camp-{i:02d}", f"card-{i % 15}"
        for t in np.sort(b.rng.uniform(T0, T0 + 7 * DAY, 4)):
            b.add(a, t, template_id=f"tpl-{b.rng.integers(2)}", payment_id=card)
        b.organic(a, 6, payment_id=card)
    for t in np.sort(b.rng.uniform(T0, T0 + 7 * DAY, 3000)):
        b.add("batch-job", t, template_id="job-tmpl", payment_id="pm-job")
    for t in (T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY):
        b.add("colleague", t, template_id="job-tmpl", payment_id="pm-colleague")
    b.organic("colleague", 40, payment_id="pm-colleague")
    for i in range(150):
        b.organic(f"org-{i:03d}", 12, payment_id=f"pm-org-{i}")
    linker = AccountLinker().fit(b.frame())
    biggest = max(linker.group_members_.values(), key=len)
    assert len(biggest) >= 24 and all(a.startswith("camp-") for a in biggest)
    assert not any(a.startswith("org-") for a in linker.groups_)


def test_a_campaigns_second_scaffold_is_readmitted_through_the_first_and_a_public_prompt_is_not():
    """40 small accounts on 20 cards (two each). Every account fills scaffold A: card-mates tie its
    users, so it is readmitted at once. Scaffolds B and C are each filled by one account of every
    card, so no two of their users share a card: by operator evidence alone they look like strangers.
    Their shared scaffold A ties them, so B and C are readmitted in the second round. A public prompt
    that 20 of the campaign's accounts use once among 160 strangers stays out."""
    b = Builder(41)
    camp = [f"camp-{i:02d}" for i in range(40)]
    for i, a in enumerate(camp):
        card = f"card-{i // 2}"
        for t in np.sort(b.rng.uniform(T0, T0 + 7 * DAY, 3)):
            b.add(a, t, template_id="tpl-a", template_popular=True, payment_id=card)
        for t in np.sort(b.rng.uniform(T0, T0 + 7 * DAY, 3)):  # B on even accounts, C on odd ones
            b.add(a, t, template_id="tpl-b" if i % 2 == 0 else "tpl-c", template_popular=True, payment_id=card)
        if i % 2:
            b.add(a, T0 + b.rng.uniform(0, 7 * DAY), template_id="tpl-public", template_popular=True,
                  payment_id=card)
        b.organic(a, 2, payment_id=card)
    for i in range(160):
        b.organic(f"org-{i:03d}", 6, payment_id=f"pm-org-{i}")
        b.add(f"org-{i:03d}", T0 + b.rng.uniform(0, 7 * DAY), template_id="tpl-public", template_popular=True,
              payment_id=f"pm-org-{i}")
    linker = AccountLinker().fit(b.frame())
    assert linker.readmitted_templates_ == ["tpl-a", "tpl-b", "tpl-c"]
    assert not any(a.startswith("org-") for a in linker.groups_)
    assert sum(a.startswith("camp-") for a in linker.groups_) >= 36


def test_synchrony_partner_cap_bounds_the_pairs_and_keeps_every_account_connected():
    """40 accounts fed by one scheduler (the same 30 ten-minute bins), amid random ones: uncapped,
    every one of the 780 pairs is synchronised; capped at 5 partners, each account keeps its 5
    strongest, the pairs fall to at most 40 x 5 and the 40 still form one connected component."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    rng = np.random.default_rng(17)
    bins = T0 + np.sort(rng.choice(2000, 30, replace=False)) * 600.0
    acc = np.concatenate([np.repeat(np.arange(40), 30), np.repeat(np.arange(40, 100), 30)])
    ts = np.concatenate([np.tile(bins, 40) + rng.uniform(0, 500, 1200), rng.uniform(T0, T0 + 14 * DAY, 1800)])
    full, _ = timing_links(acc, ts, 100, min_requests=5)
    capped, _ = timing_links(acc, ts, 100, min_requests=5, max_partners=5)
    assert full.nnz == 40 * 39 // 2 and max(full.row.max(), full.col.max()) < 40
    assert 0 < capped.nnz <= 40 * 5
    deg = np.bincount(np.r_[capped.row, capped.col], minlength=100)
    assert (deg[:40] >= 5).all() and (deg[40:] == 0).all()
    sub = sp.coo_matrix((capped.data, (capped.row, capped.col)), shape=(100, 100)).tocsr()[:40, :40]
    assert connected_components(sub, directed=False)[0] == 1
