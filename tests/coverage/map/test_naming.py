"""Tests of c-TF-IDF cluster keywords and centroid exemplars (promptcov.coverage.map.naming)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from promptcov.coverage.map.naming import class_tfidf, cluster_keywords, exemplars, sample_per_label
from promptcov.errors import InputError

# A crafted corpus: every text shares the filler "please help me with this question", each cluster
# has its own vocabulary, and the noise texts are unrelated one-offs.
FILLER = "please help me with this question:"
COOKING = ["bake sourdough bread", "knead bread dough", "sourdough starter feeding", "bread oven temperature"]
PYTHON = ["python list comprehension", "python dict sorting", "python list slicing", "debug python traceback"]
STARS = [
    "telescope galaxy observation",
    "galaxy redshift telescope",
    "nebula telescope photo",
    "galaxy cluster mass",
]


def corpus(repeat: int = 5) -> tuple[list[str], np.ndarray]:
    texts, labels = [], []
    for label, topic in enumerate([COOKING, PYTHON, STARS]):
        for i in range(repeat):
            for t in topic:
                texts.append(f"{FILLER} {t} variant {i}")
                labels.append(label)
    for t in ["tax refund deadline", "knitting scarf pattern", "car tyre pressure"]:
        texts.append(f"{FILLER} {t}")
        labels.append(-1)
    return texts, np.array(labels)


def test_keywords_name_each_cluster():
    texts, labels = corpus()
    kw = cluster_keywords(texts, labels, top_n=3)
    assert set(kw) == {-1, 0, 1, 2}
    assert kw[0][0] == "bread" and "sourdough" in kw[0]
    assert kw[1][0] == "python" and any("list" in k for k in kw[1])
    assert kw[2][0] in ("galaxy", "telescope") and {"galaxy", "telescope"} <= set(kw[2])
    for label, words in kw.items():
        assert len(words) <= 3
        if label < 0:
            continue
        assert not {"help", "question", "variant"} & set(words)  # shared by every cluster: low idf
        assert "please" not in words and "this" not in words  # stop words
    # min_df=2 drops the noise texts' one-off words
    assert not {"tax", "knitting", "tyre"} & set(kw[-1])


def test_keywords_deterministic_and_sampled():
    texts, labels = corpus(repeat=50)
    a = cluster_keywords(texts, labels, max_docs_per_cluster=8, seed=3)
    b = cluster_keywords(texts, labels, max_docs_per_cluster=8, seed=3)
    assert a == b
    assert a[1][0] == "python"
    idx = sample_per_label(labels, cap=8, seed=3)
    assert np.bincount(labels[idx] + 1).tolist() == [3, 8, 8, 8]
    assert np.all(np.diff(idx) > 0)


def test_keywords_edge_cases():
    assert cluster_keywords([], np.array([], dtype=int)) == {}
    assert cluster_keywords(["the and of", "is it 42"], np.array([0, 1]), min_df=1) == {0: [], 1: []}
    with pytest.raises(InputError):
        cluster_keywords(["a b"], np.array([0, 1]))
    with pytest.raises(InputError):
        cluster_keywords(["a b"], np.array([0]), top_n=0)


def test_class_tfidf_formula():
    # two classes, three terms; class 0 = docs 0,1; class 1 = doc 2
    counts = sp.csr_matrix(np.array([[2, 1, 0], [1, 0, 0], [0, 1, 3]], dtype=float))
    w = class_tfidf(counts, np.array([0, 0, 1]), 2)
    per_class = np.array([[3, 1, 0], [0, 1, 3]], dtype=float)
    avg_words = per_class.sum(axis=1).mean()
    expected = per_class / per_class.sum(axis=1, keepdims=True) * np.log1p(avg_words / per_class.sum(axis=0))
    np.testing.assert_allclose(w, expected)
    w_sqrt = class_tfidf(counts, np.array([0, 0, 1]), 2, reduce_frequent_words=True)
    idf = np.log1p(avg_words / per_class.sum(axis=0))
    np.testing.assert_allclose(w_sqrt, np.sqrt(per_class / per_class.sum(axis=1, keepdims=True)) * idf)
    assert w[0, 0] > w[0, 1]  # frequent and class-specific beats shared


def test_exemplars_nearest_members_first():
    rng = np.random.default_rng(0)
    cents = np.eye(4, dtype=np.float32)[:2]
    x = np.concatenate([cents[[0] * 6], cents[[1] * 6]]) + rng.normal(0, 0.3, (12, 4)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = np.array([5] * 6 + [9] * 5 + [-1])
    ex = exemplars(x, labels, cents, k=3, cluster_ids=np.array([5, 9]))
    assert set(ex) == {5, 9}
    for cid, row in ((5, 0), (9, 1)):
        members = np.flatnonzero(labels == cid)
        best = members[np.argsort(-(x[members] @ cents[row]), kind="stable")[:3]]
        assert ex[cid] == best.tolist()
    assert 11 not in ex[9]  # noise row is never an exemplar
    assert exemplars(x, labels, {9: cents[1], 7: cents[0]}, k=2) == {9: ex[9][:2]}
    with pytest.raises(ValueError, match="4 dimensions|dimension"):
        exemplars(x, labels, cents[:, :3], cluster_ids=np.array([5, 9]))
    with pytest.raises(InputError):
        exemplars(x, labels[:3], cents)
