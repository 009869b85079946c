"""Template detection: skeletons, MinHash/LSH helpers, crafted scaffolds, real prompts, popularity."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from promptcov.coverage.templates.detector import (
    TemplateDetector,
    skeleton,
    skeleton_tokens,
    template_popularity,
)
from promptcov.coverage.templates.minhash import MinHasher, band_edges, lsh_params, shingle_hash
from promptcov.errors import InputError, NotFittedError

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"

# A vocabulary for random "tasks": texts drawn from it share almost no 3-shingles with each other.
VOCAB = (
    "river stone lamp orbit velvet copper garden ticket silent mirror harbor pencil engine meadow cloud "
    "violin marble ladder winter candle bridge falcon desert anchor basket thunder compass lantern cotton "
    "saddle piano glacier rocket shelter willow cabin needle quartz feather timber canyon beacon ribbon "
    "walnut tunnel summit oyster parcel cactus helmet fabric jungle kettle lagoon magnet nectar orchard "
    "pepper quarry raven sparrow tractor umbrella vessel wagon yarn zephyr acorn blossom chimney dolphin "
    "ember fossil gravel hammock igloo jigsaw kayak lobster mosaic nutmeg olive pebble quiver rattle "
    "sapphire tulip urchin vapor walrus yodel badge cinder dune easel fiddle goblet hinge inlet jester"
).split()


def _task(rng, n_words: int) -> str:
    return " ".join(rng.choice(VOCAB, size=n_words)) + "."


def _ids(n: int, start: int = 0) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.int64)


# --- skeleton --------------------------------------------------------------------------------------


def test_skeleton_masks_slots_and_keeps_the_scaffold():
    assert skeleton('Solve: 12 + 7 = ? Reply "fast" at ops@example.com') == (
        "solve: <num> + <num> = ? reply <str> at <email>"
    )
    s = skeleton("See https://x.org/a?b=1 and `x = 1` and\n```py\nprint(2)\n```\ndone id_42 v1.2.3")
    assert s == "see <url> and <code> and <code> done <num> <num>"
    assert skeleton("costs 12, or 7.5.") == "costs <num> , or <num> ."
    # JSON keys are scaffold, JSON string values are slots
    assert skeleton('{"name": "Ann", "role": "admin"}') == '{"name": <str> , "role": <str> }'
    assert skeleton("x" * 60) == "<blob>"
    assert skeleton("Don't  STOP\n\nnow") == "don't stop now"
    assert skeleton("") == "" and skeleton(None) == ""
    long = "Intro words here. " + "middle " * 3000 + "Final instruction: answer briefly."
    assert skeleton(long).endswith("final instruction: answer briefly.") and "<cut>" in skeleton(long)
    assert skeleton_tokens("Rate it 1-10, please!") == ["rate", "it", "<num>", ",", "please", "!"]


# --- MinHash / LSH helpers agree with datasketch ----------------------------------------------------


def test_signatures_equal_datasketch_minhash():
    from datasketch import MinHash

    h = MinHasher(num_perm=64, seed=1, shingle=3)
    toks = "the quick brown fox jumps over the lazy dog and runs away".split()
    th = h.token_hashes(toks)
    sig = h.signatures([th, th[:4]])
    for row, part in ((0, th), (1, th[:4])):
        ref = MinHash(num_perm=64, seed=1, scheme="affine32", hashfunc=lambda x: x)
        ref.update_batch([shingle_hash(part[i : i + 3].tolist()) for i in range(len(part) - 2)])
        assert np.array_equal(ref.hashvalues, sig[row])


def test_lsh_params_match_datasketch():
    lsh = pytest.importorskip("datasketch.lsh")
    for t, p in ((0.6, 64), (0.8, 128), (0.5, 32)):
        assert lsh_params(t, p) == tuple(lsh._optimal_param(t, p, 0.5, 0.5))


def test_band_edges_verify_candidates():
    rng = np.random.default_rng(0)
    sig = rng.integers(0, 2**32, size=(6, 64), dtype=np.uint64).astype(np.uint32)
    sig[1] = sig[0]
    sig[2, :40] = sig[0, :40]  # estimated Jaccard 0.625
    sig[3, :12] = sig[0, :12]  # shares two bands, Jaccard 0.19: a candidate that must be rejected
    edges = {tuple(sorted(e)) for e in band_edges(sig, 10, 6, 0.6).tolist()}
    assert (0, 1) in edges and ((0, 2) in edges or (1, 2) in edges)
    assert not any(3 in e for e in edges)


# --- crafted templates ----------------------------------------------------------------------------


def test_prefix_scaffold_around_long_varied_tasks():
    rng = np.random.default_rng(1)
    scaffold = "Solve the following problem and explain every assumption you make before you answer:"
    sweep = [f"{scaffold}\n\n{_task(rng, 90)}" for _ in range(12)]
    controls = [_task(rng, 90) for _ in range(12)]
    d = TemplateDetector().fit(sweep + controls, _ids(24))
    got = [d.template_ids_[i] for i in range(24)]
    assert len(set(got[:12])) == 1 and got[0] is not None
    assert all(g is None for g in got[12:])
    (tid,) = d.templates_
    assert d.templates_[tid]["n_texts"] == 12 and d.templates_[tid]["skeleton"].startswith(
        "solve the following"
    )


def test_suffix_scaffold_and_slotted_whole_text_template():
    rng = np.random.default_rng(2)
    suffix = "Respond only with valid JSON containing the keys answer, confidence and sources."
    sweep = [f"{_task(rng, 70)}\n\n{suffix}" for _ in range(10)]
    slotted = [
        f"Convert {rng.integers(1, 999)} {u} into metric units, round the result to {k} decimal places "
        "and show the conversion factor you used."
        for u, k in zip(["miles", "feet", "pounds", "ounces", "gallons", "inches"], range(6), strict=True)
    ]
    d = TemplateDetector().fit(sweep + slotted, _ids(16))
    a = {d.template_ids_[i] for i in range(10)}
    b = {d.template_ids_[i] for i in range(10, 16)}
    assert len(a) == 1 and None not in a
    assert len(b) == 1 and None not in b and a != b


def test_a_repeated_fill_does_not_pull_its_bare_text_into_the_template():
    """A batch job wraps one instruction around documents; people send some of those documents bare.

    The bare document matches its wrapped twin in the tail view (the fill), not the scaffold, so it
    must stay free text, while the job's own texts keep their template.
    """
    rng = np.random.default_rng(3)
    scaffold = "Tag the review with every aspect it mentions from this list: price, quality, delivery, size:"
    docs = [_task(rng, 60) for _ in range(30)]
    job = [f"{scaffold} {d}" for d in docs]
    bare = docs[:8]  # eight people paste a document the job also processed
    d = TemplateDetector().fit(job + bare, _ids(38))
    got = [d.template_ids_[i] for i in range(38)]
    assert len(set(got[:30])) == 1 and got[0] is not None
    assert all(g is None for g in got[30:]), "a bare document joined the batch job's template"
    (tid,) = d.templates_
    assert d.templates_[tid]["n_texts"] == 30


def test_system_scaffold_versus_product_system_prompt():
    rng = np.random.default_rng(3)
    cot = "Before answering, write out your full internal reasoning step by step, then give the answer."
    product = "You are Ava, the friendly assistant of Northwind Bank. Answer customer questions politely."
    questions = [_task(rng, 25) for _ in range(24)]
    systems = [cot] * 12 + [product] * 12
    d = TemplateDetector().fit(questions, _ids(24), systems=systems)
    sweep = {d.template_ids_[i] for i in range(12)}
    assert len(sweep) == 1 and next(iter(sweep)).startswith("S-")
    # the product's shared system prompt is recorded but is not a sweep template
    assert all(d.template_ids_[i] is None for i in range(12, 24))
    prod = {d.system_template_ids_[i] for i in range(12, 24)}
    assert len(prod) == 1 and None not in prod and prod != sweep
    assert d.scaffold_system_templates_ == sorted(sweep) and d.templates_[next(iter(sweep))]["system"]


def test_unrelated_texts_min_texts_and_short_texts():
    rng = np.random.default_rng(4)
    d = TemplateDetector().fit([_task(rng, 40) for _ in range(30)], _ids(30))
    assert all(v is None for v in d.template_ids_.values()) and d.templates_ == {}
    scaffold = "Translate the passage below into formal French and list every idiom you changed:"
    few = [f"{scaffold} {_task(rng, 30)}" for _ in range(4)]
    assert all(v is None for v in TemplateDetector(min_texts=4).fit(few, _ids(4)).template_ids_.values())
    assert all(v is not None for v in TemplateDetector(min_texts=3).fit(few, _ids(4)).template_ids_.values())
    short = [f"capital of {w}?" for w in VOCAB[:10]]
    assert all(v is None for v in TemplateDetector().fit(short, _ids(10)).template_ids_.values())


def test_punctuation_rules_do_not_make_a_template():
    # regression: texts that merely end with a long "=====" rule were joined by their suffix anchor
    rng = np.random.default_rng(7)
    texts = [f"{_task(rng, 40)}\n\n" + "=" * 60 + "\n" + "-" * 40 for _ in range(10)]
    assert all(v is None for v in TemplateDetector().fit(texts, _ids(10)).template_ids_.values())


def test_ids_are_stable_under_reordering_and_duplicates():
    rng = np.random.default_rng(5)
    texts = [
        f"Grade this essay strictly and list its three weakest arguments: {_task(rng, 60)}" for _ in range(8)
    ]
    texts += [_task(rng, 60) for _ in range(5)]
    ids = _ids(13, start=100)
    a = TemplateDetector().fit(texts, ids).template_ids_
    perm = np.random.default_rng(6).permutation(13)
    b = TemplateDetector().fit([texts[i] for i in perm], ids[perm]).template_ids_
    assert a == b
    dup = TemplateDetector().fit(texts + texts[:2], np.r_[ids, ids[:2]])
    assert dup.template_ids_ == a
    assert list(dup.transform(ids[:2])) == [a[100], a[101]]


def test_input_checks():
    d = TemplateDetector()
    with pytest.raises(NotFittedError):
        d.transform([1])
    with pytest.raises(InputError, match="aligned"):
        d.fit(["a", "b"], np.arange(3))
    with pytest.raises(InputError, match="systems"):
        d.fit(["a"], np.arange(1), systems=["x", "y"])
    with pytest.raises(InputError, match="threshold"):
        TemplateDetector(threshold=1.5).fit(["a"], np.arange(1))


# --- real prompts ----------------------------------------------------------------------------------


def _real(name: str, n: int) -> list[dict]:
    with gzip.open(DATA / name, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    idx = np.random.default_rng(0).choice(len(rows), size=min(n, len(rows)), replace=False)
    return [rows[i] for i in sorted(idx)]


@pytest.mark.skipif(not DATA.is_dir(), reason=f"real prompt sets not present at {DATA}")
def test_real_judge_prompts_share_templates_and_organic_prompts_do_not():
    judge = [r["prompt"] for r in _real("rubric_grading_filled.jsonl.gz", 150)]
    d = TemplateDetector().fit(judge, _ids(len(judge)))
    assert np.mean([v is not None for v in d.template_ids_.values()]) >= 0.95
    assert len(d.templates_) <= 3  # Prometheus absolute grading and Auto-J critique
    organic = [r["prompt"] for r in _real("organic_sharegpt_v3.jsonl.gz", 600)]
    d = TemplateDetector().fit(organic, _ids(len(organic)))
    assert np.mean([v is not None for v in d.template_ids_.values()]) <= 0.05


# --- popularity ------------------------------------------------------------------------------------


def test_popularity_tells_public_templates_from_one_actor():
    tids, accs = [], []
    for u in range(30):  # a public prompt: 30 accounts paste it once among their own traffic
        tids += ["T-public", None, None, None]
        accs += [f"user{u}"] * 4
    for h in range(30):  # a hydra: 30 accounts, each sends the sweep template 50 times and nothing else
        tids += ["T-sweep"] * 50
        accs += [f"hydra{h}"] * 50
    tids += ["T-solo"] * 200  # one account's own template
    accs += ["solo"] * 200
    pop = template_popularity(tids, accs, min_accounts=20)
    assert pop["T-public"] == (30, True)
    assert pop["T-sweep"] == (30, False)
    assert pop["T-solo"] == (1, False)
    assert template_popularity(tids, accs, min_accounts=40)["T-public"] == (30, False)
    assert template_popularity([], []) == {}
    assert template_popularity([None, None], ["a", "b"]) == {}
    with pytest.raises(InputError):
        template_popularity(["T-a"], ["a", "b"])
