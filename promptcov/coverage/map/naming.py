"""Names for map clusters: class-based TF-IDF keywords and the exemplar texts nearest each centroid.

A reviewer looking at cluster 412 needs to know in a glance what it is ("step, reasoning, explain,
answer" reads as chain-of-thought elicitation; "json, function, call, api" as tool use). c-TF-IDF
(the keyword method of BERTopic) treats all texts of one cluster as one long document and scores a
term by how frequent it is *in that cluster* against how common it is across *all* clusters:

    W(t, c) = tf(t, c) * log(1 + A / f(t))

where ``tf(t, c)`` is the term's share of the words of cluster ``c``, ``f(t)`` its count over all
clusters and ``A`` the average number of words per cluster. A template's fixed words dominate a
sweep's cluster and are rare elsewhere, so they rise to the top; words every cluster uses sink.

Large inputs: at most ``max_docs_per_cluster`` texts per cluster are read (a seeded sample), so the
cost is bounded by ``n_clusters * max_docs_per_cluster`` whatever the number of texts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer

from promptcov.errors import InputError

__all__ = ["cluster_keywords", "class_tfidf", "exemplars", "sample_per_label"]

log = logging.getLogger(__name__)

#: Words: a letter first, then letters, digits, "_" or "-" (no bare numbers, no one-letter tokens).
TOKEN_PATTERN = r"(?u)\b[^\W\d_][\w\-]*\w\b"


def sample_per_label(labels: np.ndarray, cap: int, seed: int = 0) -> np.ndarray:
    """Sorted row indices keeping at most ``cap`` rows of each label (seeded, uniform within a label)."""
    labels = np.asarray(labels)
    if cap < 1:
        raise InputError(f"cap must be >= 1, got {cap}")
    rng = np.random.default_rng(seed)
    keep = []
    for lab in np.unique(labels):
        idx = np.flatnonzero(labels == lab)
        if len(idx) > cap:
            idx = rng.choice(idx, size=cap, replace=False)
        keep.append(idx)
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


def class_tfidf(
    doc_term: sp.spmatrix, doc_class: np.ndarray, n_classes: int, reduce_frequent_words: bool = False
) -> np.ndarray:
    """The c-TF-IDF matrix (n_classes, n_terms) from a document-term count matrix.

    Summing the rows of one class equals counting the terms of the class's concatenated documents;
    ``tf`` is L1-normalised per class (so a big cluster does not win by size) and
    ``idf = log(1 + A / f_t)`` with ``A`` the mean number of words per class.
    ``reduce_frequent_words`` takes the square root of ``tf`` first (BERTopic's option of that
    name): a word in every text of many clusters ("variant", "answer") then no longer outweighs a
    slightly rarer word found only in this cluster, because idf counts for more.
    """
    doc_term = sp.csr_matrix(doc_term)
    onehot = sp.csr_matrix(
        (np.ones(len(doc_class)), (np.asarray(doc_class), np.arange(len(doc_class)))),
        shape=(n_classes, doc_term.shape[0]),
    )
    counts = (onehot @ doc_term).toarray().astype(np.float64)
    words = counts.sum(axis=1)
    avg_words = float(words.mean()) if len(words) else 0.0
    freq = counts.sum(axis=0)
    idf = np.log1p(avg_words / np.maximum(freq, 1.0))
    tf = counts / np.maximum(words, 1.0)[:, None]
    if reduce_frequent_words:
        tf = np.sqrt(tf)
    return tf * idf


def cluster_keywords(
    texts: Sequence[str],
    labels: np.ndarray,
    top_n: int = 8,
    max_docs_per_cluster: int = 1000,
    min_df: int = 2,
    ngram_range: tuple[int, int] = (1, 2),
    seed: int = 0,
    reduce_frequent_words: bool = True,
) -> dict[int, list[str]]:
    """The ``top_n`` c-TF-IDF keywords of every label (noise, -1, included as a class of its own).

    ``texts`` and ``labels`` are aligned. English stop words are dropped; ``min_df`` counts
    *texts* (a term must occur in at least that many sampled texts, which drops one-off names and
    ids; it is lowered to 1 when fewer texts than ``2 * min_df`` are given). A term that merely
    repeats a higher-ranked bigram's word is kept (BERTopic does the same). A label whose texts hold
    no usable word gets an empty list. ``reduce_frequent_words``: see :func:`class_tfidf`.

    >>> texts = ["sort a list in python", "python list sorting code", "bake bread at home", "bread dough recipe"]
    >>> cluster_keywords(texts, np.array([0, 0, 1, 1]), top_n=2, min_df=1)
    {0: ['list', 'python'], 1: ['bread', 'bake']}
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(texts):
        raise InputError(f"texts ({len(texts)}) and labels ({labels.shape}) must be aligned 1-D sequences")
    if top_n < 1:
        raise InputError(f"top_n must be >= 1, got {top_n}")
    classes = np.unique(labels)
    result: dict[int, list[str]] = {int(c): [] for c in classes}
    if len(classes) == 0:
        return result
    rows = sample_per_label(labels, max_docs_per_cluster, seed)
    docs = [str(texts[i]) for i in rows]
    doc_class = np.searchsorted(classes, labels[rows])
    vectorizer = CountVectorizer(
        stop_words="english",
        ngram_range=ngram_range,
        min_df=min_df if len(docs) >= 2 * min_df else 1,
        token_pattern=TOKEN_PATTERN,
        lowercase=True,
    )
    try:
        doc_term = vectorizer.fit_transform(docs)
    except ValueError:  # empty vocabulary: only stop words, numbers or symbols
        log.info("c-TF-IDF: no usable words in %d texts", len(docs))
        return result
    terms = vectorizer.get_feature_names_out()
    weights = class_tfidf(doc_term, doc_class, len(classes), reduce_frequent_words)
    k = min(top_n, len(terms))
    for ci, c in enumerate(classes):
        w = weights[ci]
        top = np.argpartition(-w, k - 1)[:k]
        top = top[np.lexsort((terms[top], -w[top]))]  # by weight, ties alphabetical: deterministic
        result[int(c)] = [str(terms[t]) for t in top if w[t] > 0]
    return result


def exemplars(
    vectors: np.ndarray,
    labels: np.ndarray,
    centroids: np.ndarray | Mapping[int, np.ndarray],
    k: int = 3,
    cluster_ids: np.ndarray | None = None,
) -> dict[int, list[int]]:
    """Row indices of the ``k`` members of each cluster nearest its centroid (most typical first).

    ``centroids`` is either a (n_clusters, d) array whose row ``j`` belongs to cluster id
    ``cluster_ids[j]`` (default ``j``), or a mapping id -> centroid. Only rows labelled with a
    cluster are candidates; noise (-1) and clusters without members are skipped. Cost: one pass over
    the members of each cluster, O(N * d) in all.
    """
    vectors = np.asarray(vectors)
    labels = np.asarray(labels)
    if vectors.ndim != 2 or labels.shape != (len(vectors),):
        raise InputError(f"vectors {vectors.shape} and labels {labels.shape} must be (n, d) and (n,)")
    if k < 1:
        raise InputError(f"k must be >= 1, got {k}")
    if isinstance(centroids, Mapping):
        ids = np.array(sorted(int(i) for i in centroids), dtype=np.int64)
        cents = np.array([centroids[int(i)] for i in ids], dtype=np.float32).reshape(len(ids), -1)
    else:
        cents = np.asarray(centroids, dtype=np.float32)
        ids = np.arange(len(cents), dtype=np.int64) if cluster_ids is None else np.asarray(cluster_ids)
        if cents.ndim != 2 or len(ids) != len(cents):
            raise InputError(f"centroids {cents.shape} need one cluster id each (got {len(ids)})")
    if len(cents) and cents.shape[1] != vectors.shape[1]:
        raise ValueError(
            f"dimension mismatch: centroids have {cents.shape[1]} dimensions, vectors {vectors.shape[1]}"
        )
    out: dict[int, list[int]] = {}
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    for cid, cent in zip(ids, cents, strict=True):
        lo, hi = np.searchsorted(sorted_labels, [cid, cid + 1]) if cid >= 0 else (0, 0)
        members = order[lo:hi]
        if len(members) == 0:
            continue
        sims = np.asarray(vectors[members], dtype=np.float32) @ cent
        kk = min(k, len(members))
        top = np.argpartition(-sims, kk - 1)[:kk]
        top = top[np.lexsort((members[top], -sims[top]))]
        out[int(cid)] = [int(i) for i in members[top]]
    return out
