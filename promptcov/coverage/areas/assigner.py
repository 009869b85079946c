"""Assign each request a capability area with a classifier over its embedding and its shape.

:class:`CapabilityAssigner` is a multinomial logistic regression over ``[embedding, shape
features]`` (:mod:`promptcov.coverage.areas.features`), trained at :meth:`~CapabilityAssigner.fit`
on the labelled corpus that ships with promptcov (``promptcov/data/areas/*.jsonl``: many
phrasings per area, in four scaffold styles and in organic wording), plus every exemplar of the
taxonomy (so a deployment's own areas in an extra TOML join the training data), plus optional
extra labelled rows. The embedding says what a request is about; the shape features say what it
asks for (an agent loop in a repository, GUI actions on a screen, a score on a rubric...).

**Abstention.** A request whose top probability is below ``threshold_`` is ``other``. The
threshold is calibrated at fit time on held-out corpus data: the classifier is refitted once per
corpus family without that family (an unseen scaffold style), and ``threshold_`` is the
``abstain_quantile`` quantile of the top probability of the held-out rows it got right (so about
that share of correct out-of-style predictions would abstain), capped at ``max_threshold``.

**Sweep-only areas need more certainty.** An area may set ``min_probability`` in the taxonomy:
the extraction areas (CoT elicitation, rubric grading, censorship rewrites, tool use, agentic
coding, vision, computer use) set 0.8. The costs are asymmetric: an ordinary prompt labelled a
sweep-only area is false evidence against its account, while a campaign request that falls to the
next area or to ``other`` costs little, because a campaign sends thousands like it. A request
goes to the most probable area whose bar it clears, else ``other``.

**Markers.** ``markers`` is the strongest shape evidence of the chosen area
(``"agentic_coding:iterate_loop"``), except that a reasoning demand always reports
``"cot_elicitation:reasoning_demand"`` (or the taxonomy's CoT rule that fired), whatever area wins:
the metrics count chain-of-thought elicitation from it. Decisive marker rules of areas that the
packaged taxonomy does not have (a deployment's own) still decide for those areas.

**Cache.** The fitted coefficients and the corpus vectors are cached under
``$PROMPTCOV_CACHE`` (else ``~/.cache/promptcov``) in ``areas/``, keyed by the embedder's name
and dimension and a hash of the training rows and parameters, and written atomically, so a
second fit with the same model and corpus neither embeds nor trains.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from promptcov.coverage.areas.features import FEATURE_NAMES, shape_features, strongest_evidence
from promptcov.coverage.areas.markers import first_decisive
from promptcov.coverage.areas.taxonomy import OTHER, Taxonomy, cot_marker, default_taxonomy
from promptcov.errors import InputError, NotFittedError
from promptcov.io import atomic_write

__all__ = ["CORPUS_DIR", "CapabilityAssigner", "cache_dir", "load_corpus"]

log = logging.getLogger(__name__)

#: The labelled training corpus that ships with promptcov.
CORPUS_DIR = Path(__file__).resolve().parents[2] / "data" / "areas"
_COT_FEATURE = FEATURE_NAMES.index("reasoning_demand")
_VERSION = "combined-system-vectors-1"  # bump when the training embedding changes


def cache_dir() -> Path:
    """``$PROMPTCOV_CACHE`` or ``~/.cache/promptcov``."""
    env = os.environ.get("PROMPTCOV_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "promptcov"


def load_corpus(folder: str | Path | None = None) -> list[dict]:
    """Rows ``{area, family, system, prompt}`` of every ``*.jsonl`` in ``folder`` (default: the
    packaged corpus). A malformed row raises :class:`~promptcov.errors.InputError` naming it."""
    folder = Path(folder) if folder is not None else CORPUS_DIR
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        with open(path, encoding="utf-8") as fh:
            for i, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                    rows.append({"area": str(r["area"]), "family": str(r.get("family", "corpus")),
                                 "system": str(r.get("system") or ""), "prompt": str(r["prompt"])})
                except (ValueError, KeyError, TypeError) as exc:
                    raise InputError(f"{path}:{i}: bad corpus row ({exc})") from None
    if not rows:
        raise InputError(f"no labelled rows (*.jsonl) in {folder}")
    return rows


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class CapabilityAssigner:
    """Assigns each request a capability area, a confidence (probability) and its shape evidence.

    Parameters
    ----------
    taxonomy : Taxonomy or None
        Default: the packaged taxonomy. Corpus rows of areas it lacks are dropped.
    embedder : Embedder or None
        Must be the model that embedded the request vectors. Default: the real model.
    min_similarity : float or None
        Fixed abstention threshold on the top probability, instead of the calibrated one.
    corpus : path, list of row dicts or None
        The labelled corpus (default: the packaged one). ``extra_rows``: more rows
        (``{area, system, prompt}``), e.g. real labelled sets in an evaluation.
    C : float
        Inverse L2 regularisation of the logistic regression.
    embedding_weight : float
        Scale of the standardised embedding columns against the shape features (below 1 regularises
        the topic more than the shape: the same coefficient budget buys less from the embedding).
    abstain_quantile, max_threshold : float
        Calibration of the abstention threshold (see the module docstring).
    cache : bool
        Read and write the fitted model and corpus vectors in :func:`cache_dir`.
    batch_size : int
        Requests scored per batch.
    """

    def __init__(self, taxonomy: Taxonomy | None = None, embedder=None, min_similarity: float | None = None,
                 corpus=None, extra_rows: Sequence[dict] | None = None, C: float = 0.5,
                 embedding_weight: float = 0.5,
                 abstain_quantile: float = 0.05, max_threshold: float = 0.4, cache: bool = True,
                 batch_size: int = 65536):
        self.taxonomy = taxonomy
        self.embedder = embedder
        self.min_similarity = min_similarity
        self.corpus = corpus
        self.extra_rows = extra_rows
        self.C = C
        self.embedding_weight = embedding_weight
        self.abstain_quantile = abstain_quantile
        self.max_threshold = max_threshold
        self.cache = cache
        self.batch_size = batch_size

    # --- training -------------------------------------------------------------------------
    def _training_rows(self) -> list[dict]:
        tax = self.taxonomy_
        base = self.corpus if isinstance(self.corpus, list) else load_corpus(self.corpus)
        rows = [r for r in base if r["area"] in tax.ids and r["area"] != OTHER]
        for a in tax.areas:
            rows += [{"area": a.id, "family": "exemplar", "system": "", "prompt": ex} for ex in a.exemplars]
        for r in self.extra_rows or ():
            if r["area"] in tax.ids and r["area"] != OTHER:
                rows.append({"area": r["area"], "family": r.get("family", "extra"),
                             "system": r.get("system") or "", "prompt": r["prompt"]})
        if len({r["area"] for r in rows}) < 2:
            raise InputError("the capability corpus and taxonomy give fewer than two areas to learn")
        return rows

    def _key(self, rows: list[dict]) -> tuple[str, str]:
        h = hashlib.sha256()
        name = getattr(self.embedder_, "name", type(self.embedder_).__name__)
        h.update(f"{_VERSION}|{name}|{getattr(self.embedder_, 'dim', '')}".encode())
        for r in rows:
            h.update(json.dumps([r["area"], r["system"], r["prompt"]]).encode())
        vec_key = h.hexdigest()[:24]
        h.update(json.dumps([self.C, self.embedding_weight, self.abstain_quantile, self.max_threshold,
                             [r["family"] for r in rows]]).encode())
        return vec_key, h.hexdigest()[:24]

    def _vectors(self, rows: list[dict], key: str) -> np.ndarray:
        from promptcov.index.system_vectors import embed_combined

        path = cache_dir() / "areas" / f"vectors-{key}.npy"
        if self.cache and path.exists():
            return np.load(path)
        t0 = time.perf_counter()
        vecs = np.ascontiguousarray(embed_combined(self.embedder_, [r["system"] for r in rows],
                                                   [r["prompt"] for r in rows]), dtype=np.float32)
        log.info("embedded %d capability training rows in %.1fs", len(rows), time.perf_counter() - t0)
        if vecs.ndim != 2 or vecs.shape[0] != len(rows):
            raise InputError(f"embedder returned shape {vecs.shape} for {len(rows)} training rows")
        if self.cache:
            with atomic_write(path, "wb") as fh:
                np.save(fh, vecs)
        return vecs

    def _train(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
        from sklearn.linear_model import LogisticRegression

        mean, std = X.mean(axis=0), X.std(axis=0)
        scale = np.where(std > 1e-3, std, 1.0)  # a column constant in training must not explode later
        d = X.shape[1] - len(FEATURE_NAMES)
        scale[:d] /= float(self.embedding_weight)
        clf = LogisticRegression(C=float(self.C), max_iter=3000, class_weight="balanced")
        clf.fit((X - mean) / scale, y)
        return mean, scale, clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32), clf.classes_

    def _calibrate(self, X: np.ndarray, y: np.ndarray, fam: np.ndarray) -> float:
        tops = []
        for f in np.unique(fam):
            test = fam == f
            if f in ("exemplar", "extra") or test.all() or len(np.unique(y[~test])) < 2:
                continue
            mean, scale, coef, icpt, classes = self._train(X[~test], y[~test])
            p = _softmax(((X[test] - mean) / scale) @ coef.T + icpt) if len(classes) > 2 else None
            if p is None:
                continue
            ok = classes[p.argmax(axis=1)] == y[test]
            tops.append(p.max(axis=1)[ok])
        if not tops or not sum(len(t) for t in tops):
            return float(self.max_threshold)
        return float(min(self.max_threshold, np.quantile(np.concatenate(tops), float(self.abstain_quantile))))

    def fit(self, X=None, y=None) -> CapabilityAssigner:
        """Train (or load from the cache) the classifier. ``X``/``y`` are ignored."""
        from promptcov.index.embedders import load_embedder

        t0 = time.perf_counter()
        self.taxonomy_ = self.taxonomy if self.taxonomy is not None else default_taxonomy()
        self.embedder_ = self.embedder if self.embedder is not None else load_embedder()
        rows = self._training_rows()
        vec_key, key = self._key(rows)
        path = cache_dir() / "areas" / f"model-{key}.npz"
        self.from_cache_ = bool(self.cache and path.exists())
        if self.from_cache_:
            z = np.load(path, allow_pickle=False)
            self.mean_, self.scale_, self.coef_, self.intercept_ = z["mean"], z["scale"], z["coef"], z["intercept"]
            self.area_ids_, self.threshold_ = [str(a) for a in z["classes"]], float(z["threshold"])
        else:
            X = np.hstack([self._vectors(rows, vec_key), shape_features([r["system"] for r in rows],
                                                                         [r["prompt"] for r in rows])])
            lab = np.array([r["area"] for r in rows])
            self.threshold_ = self._calibrate(X, lab, np.array([r["family"] for r in rows]))
            self.mean_, self.scale_, self.coef_, self.intercept_, classes = self._train(X, lab)
            self.area_ids_ = [str(a) for a in classes]
            if self.cache:
                with atomic_write(path, "wb") as fh:
                    np.savez(fh, mean=self.mean_, scale=self.scale_, coef=self.coef_, intercept=self.intercept_,
                             classes=np.array(self.area_ids_), threshold=self.threshold_)
        builtin = set(default_taxonomy().ids)
        self.user_markers_ = [m for m in self.taxonomy_.markers(decisive=True) if m.area not in builtin]
        self.n_training_rows_ = len(rows)
        log.info("capability assigner fitted on %d rows, %d areas, threshold %.3f (%s) in %.1fs", len(rows),
                 len(self.area_ids_), self.threshold_, "cached" if self.from_cache_ else "trained",
                 time.perf_counter() - t0)
        return self

    # --- prediction -----------------------------------------------------------------------
    def _check(self):
        if not hasattr(self, "coef_"):
            raise NotFittedError("CapabilityAssigner is not fitted: call fit() first")

    def predict_proba(self, systems: Sequence[str | None], prompts: Sequence[str],
                      vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities (n, n_areas) in ``area_ids_`` order, shape features (n, n_features))``."""
        self._check()
        vectors = np.asarray(vectors, dtype=np.float32)
        d = self.mean_.shape[0] - len(FEATURE_NAMES)
        if vectors.ndim != 2 or vectors.shape[1] != d:
            raise InputError(f"vectors have shape {vectors.shape}, but the assigner was trained on dimension "
                             f"{d} by {getattr(self.embedder_, 'name', 'the embedder')}: embed the requests "
                             "with the same model")
        F = shape_features(systems, prompts)
        P = np.empty((len(prompts), len(self.area_ids_)), dtype=np.float32)
        step = max(1, int(self.batch_size))
        for lo in range(0, len(prompts), step):
            X = np.hstack([vectors[lo:lo + step], F[lo:lo + step]])
            P[lo:lo + step] = _softmax(((X - self.mean_) / self.scale_) @ self.coef_.T + self.intercept_)
        return P, F

    def min_probabilities(self) -> np.ndarray:
        """The probability each area of ``area_ids_`` needs: its taxonomy ``min_probability`` (never
        below the threshold), else ``threshold_`` (or ``min_similarity`` when given)."""
        self._check()
        thr = self.threshold_ if self.min_similarity is None else float(self.min_similarity)
        by_id = {a.id: a.min_probability for a in self.taxonomy_.areas}
        return np.array([thr if by_id.get(a) is None else max(thr, float(by_id[a])) for a in self.area_ids_])

    def predict(self, systems: Sequence[str | None], prompts: Sequence[str], vectors: np.ndarray | None = None):
        """Areas, scores and markers for aligned ``systems``/``prompts``/``vectors``.

        ``vectors`` embed ``embed_text(system, prompt)``; computed with the fitted embedder when
        ``None``. Returns ``(areas, scores, markers)``: object array of area ids (``other`` when
        the top probability is below the threshold); float array of the top probability (1.0
        when a user marker decided); object array of ``"area:evidence"`` or ``None``.
        """
        self._check()
        n = len(prompts)
        if len(systems) != n:
            raise InputError(f"systems has {len(systems)} entries but prompts has {n}")
        if vectors is None:
            from promptcov.index.system_vectors import embed_combined

            vectors = embed_combined(self.embedder_, [s or "" for s in systems], [p or "" for p in prompts])
        if len(vectors) != n:
            raise InputError(f"vectors has {len(vectors)} rows but prompts has {n}")
        areas, scores, markers = np.empty(n, dtype=object), np.zeros(n), np.empty(n, dtype=object)
        if not n:
            return areas, scores, markers
        P, F = self.predict_proba(systems, prompts, vectors)
        need = self.min_probabilities()
        passing = np.where(P >= need[None, :], P, -1.0)
        best = passing.argmax(axis=1)
        ids = np.array(self.area_ids_, dtype=object)
        areas[:] = np.where(passing[np.arange(n), best] >= 0.0, ids[best], OTHER)
        scores[:] = P.max(axis=1)
        cot_tax = self.taxonomy_ if "cot_elicitation" in self.taxonomy_.ids else default_taxonomy()
        for i in range(n):
            if self.user_markers_:
                hit, _ = first_decisive(self.user_markers_, systems[i], prompts[i])
                if hit is not None:
                    areas[i], scores[i], markers[i] = hit.area, 1.0, hit.full_name
                    continue
            if F[i, _COT_FEATURE] >= 0.3:
                markers[i] = "cot_elicitation:reasoning_demand"
            elif cot_marker(systems[i], prompts[i], cot_tax):
                markers[i] = "cot_elicitation:marker"
            else:
                markers[i] = strongest_evidence(F[i], areas[i]) if areas[i] != OTHER else None
        return areas, scores, markers
