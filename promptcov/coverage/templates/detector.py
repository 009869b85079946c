"""Shared-template detection: one scaffold with its slots varied.

A sweep is a structured map of the input space: one instruction scaffold filled with thousands
of different tasks, numbers, names or code. Organic users write free text; when they do share a
text, it is a well-known public prompt pasted by many unrelated people. This module finds the
scaffolds.

1. :func:`skeleton` masks the slots a template varies (code blocks, URLs, e-mails, quoted
   strings, numbers and digit-bearing ids, long unbroken blobs), lower-cases and collapses
   whitespace. Two fillings of one template have (nearly) the same skeleton.
2. :class:`TemplateDetector` sketches each distinct text with MinHash over word 3-shingles of
   its skeleton, in several **views**, because the scaffold may be a prefix, a suffix or a
   system prompt around a long varied task, and a whole-text Jaccard misses a short scaffold
   around a long task:

   * ``full``: the whole skeleton (head 256 + tail 64 tokens of very long texts);
   * ``head`` / ``tail``: the first / last ``window`` tokens;
   * ``prefix`` / ``suffix`` anchors: the exact first / last ``anchor`` tokens (catches a
     short scaffold of 12+ tokens that a 32-token window dilutes).

   Texts that match in any view (LSH banding of the signatures, candidates verified by their
   estimated Jaccard, or an identical anchor) are joined; connected groups of more than
   ``min_texts`` distinct texts are templates.
3. **System prompts** are grouped separately. A product built on the API sends one fixed system
   prompt with thousands of varied user questions: that is *not* a sweep template, so a shared
   system prompt alone gives a ``system_template_ids_`` entry (for reports) but no
   ``template_ids_`` entry. Only when the shared system prompt itself carries an extraction
   instruction (a marker of ``scaffold_areas``: a reasoning demand, a grading rubric, a
   censorship-rewrite instruction) is it the sweep's scaffold, and its texts get that template.
4. :func:`template_popularity` tells public templates (many accounts, each using it a little,
   as a small part of their traffic) from one actor's fingerprint.

MinHash signatures use datasketch's ``affine32`` permutations (identical values to
``datasketch.MinHash(num_perm, seed)`` fed the same shingle hashes), computed in numpy batches;
LSH banding uses numpy sorting instead of ``MinHashLSH`` dictionaries so that a million texts
fit in memory. Throughput: see ``fit``'s docstring.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np

from promptcov.coverage.templates.minhash import EdgeGroups, MinHasher, band_edges, lsh_params, sequence_key
from promptcov.errors import InputError, NotFittedError

__all__ = [
    "DEFAULT_SCAFFOLD_AREAS",
    "skeleton",
    "skeleton_tokens",
    "TemplateDetector",
    "template_popularity",
]

log = logging.getLogger(__name__)

#: Areas whose markers, found in a shared system prompt, make that system prompt a sweep scaffold.
DEFAULT_SCAFFOLD_AREAS = ("cot_elicitation", "rubric_grading", "censorship_rewrite")

_HEAD_CHARS, _TAIL_CHARS = 3000, 1200
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.I)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
_INLINE = re.compile(r"`[^`\n]{1,200}`")
# quoted strings, except JSON keys ("name": ...), which are part of the scaffold
_QUOTED = re.compile(
    r"(?<!\w)\"[^\"\n]{1,300}\"(?!\s*:)|\u201c[^\u201d\n]{1,300}\u201d|(?<!\w)'[^'\n]{1,300}'(?!\w)"
)
_BLOB = re.compile(r"(?<![^\s<>])[^\s<>]{40,}")
_NUM = re.compile(r"\b(?=\w*\d)[\w.,:/-]*\w")
_TOKEN = re.compile(r"<[a-z]+>|[^\W\d_]+|([^\w\s])\1*")


def _mask(text: str) -> str:
    if "`" in text:
        text = _INLINE.sub(" <code> ", _FENCE.sub(" <code> ", text))
    if "http" in text or "www." in text:
        text = _URL.sub(" <url> ", text)
    if "@" in text:
        text = _EMAIL.sub(" <email> ", text)
    text = _NUM.sub(" <num> ", _BLOB.sub(" <blob> ", _QUOTED.sub(" <str> ", text)))
    return " ".join(text.lower().split())


def skeleton(text: str | None) -> str:
    """Slot-masked, lower-cased, whitespace-collapsed form of ``text``.

    Very long texts keep their head and tail (joined by ``<cut>``): scaffolds sit there.

    >>> skeleton('Solve: 12 + 7 = ? Reply "fast" at ops@example.com')
    'solve: <num> + <num> = ? reply <str> at <email>'
    """
    if not text:
        return ""
    if len(text) > _HEAD_CHARS + _TAIL_CHARS:
        return _mask(text[:_HEAD_CHARS]) + " <cut> " + _mask(text[-_TAIL_CHARS:])
    return _mask(text)


def skeleton_tokens(text: str | None) -> list[str]:
    """Tokens of :func:`skeleton` used for shingles: words, placeholders and punctuation (a run of
    one character, such as a ``=====`` rule, is one token: decoration, not scaffold)."""
    return [
        t if t[0].isalpha() or t[0] == "<" else t[:3]
        for t in (m.group() for m in _TOKEN.finditer(skeleton(text)))
    ]


def _anchor_edges(keys: np.ndarray, nodes: np.ndarray, groups: EdgeGroups) -> None:
    """Join nodes that share an exact anchor key (star edges to each bucket's first node)."""
    if len(keys) < 2:
        return
    order = np.argsort(keys, kind="stable")
    k, nd = keys[order], nodes[order]
    start = np.r_[True, k[1:] != k[:-1]]
    head = nd[np.maximum.accumulate(np.where(start, np.arange(len(k)), 0))]
    keep = ~start
    groups.add(head[keep], nd[keep])


class TemplateDetector:
    """Find shared templates among distinct texts (see the module docstring).

    Parameters
    ----------
    num_perm : int
        MinHash permutations per view.
    threshold : float
        Estimated Jaccard (of 3-shingle sets) at which two views match.
    shingle : int
        Words per shingle.
    min_texts : int
        A text has a template only when it shares it with at least ``min_texts`` other distinct
        texts (groups of ``min_texts + 1`` or more).
    seed : int
        MinHash permutation seed (datasketch's).
    window : int
        Tokens of the head and tail views.
    anchor : int
        Tokens of the exact prefix/suffix anchors (0 disables anchors).
    min_tokens : int
        Texts whose skeleton has fewer tokens get no template: too short to tell a template from
        a common phrasing ("what is the capital of ...").
    scaffold_areas : tuple of str
        Taxonomy areas whose markers make a shared system prompt a sweep scaffold.
    taxonomy : Taxonomy or None
        Markers for ``scaffold_areas`` (default: the packaged taxonomy).
    batch_size : int
        Texts hashed per numpy batch.
    """

    def __init__(
        self,
        num_perm: int = 64,
        threshold: float = 0.6,
        shingle: int = 3,
        min_texts: int = 4,
        seed: int = 1,
        window: int = 32,
        anchor: int = 12,
        min_tokens: int = 8,
        scaffold_areas: Sequence[str] = DEFAULT_SCAFFOLD_AREAS,
        taxonomy=None,
        batch_size: int = 2048,
    ):
        self.num_perm = num_perm
        self.threshold = threshold
        self.shingle = shingle
        self.min_texts = min_texts
        self.seed = seed
        self.window = window
        self.anchor = anchor
        self.min_tokens = min_tokens
        self.scaffold_areas = scaffold_areas
        self.taxonomy = taxonomy
        self.batch_size = batch_size

    def _validate(self):
        if not 0.0 < float(self.threshold) <= 1.0:
            raise InputError(f"threshold must be in (0, 1], got {self.threshold}")
        for name in ("num_perm", "shingle", "window", "min_tokens", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if int(self.min_texts) < 1 or int(self.anchor) < 0:
            raise InputError("min_texts must be >= 1 and anchor >= 0")
        if int(self.window) <= int(self.shingle):
            raise InputError(f"window ({self.window}) must be longer than shingle ({self.shingle})")

    def _group(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Component label and canonical key (64-bit hash of the skeleton tokens) per text."""
        n = len(texts)
        hasher = MinHasher(int(self.num_perm), int(self.seed), int(self.shingle))
        groups = EdgeGroups(n)
        w, a = int(self.window), int(self.anchor)
        views: dict[str, list] = {"full": [], "head": [], "tail": []}
        anchors: dict[str, list] = {"prefix": [], "suffix": []}
        canon = np.zeros(n, np.uint64)
        for lo in range(0, n, int(self.batch_size)):
            ids, full, heads, tails, long_ids = [], [], [], [], []
            for i in range(lo, min(n, lo + int(self.batch_size))):
                toks = skeleton_tokens(texts[i])
                th = hasher.token_hashes(toks)
                canon[i] = np.uint64(sequence_key(th))
                if len(th) < int(self.min_tokens):
                    continue
                ids.append(i)
                full.append(th if len(th) <= 320 else np.r_[th[:256], th[-64:]])
                if len(th) >= w + 8:
                    long_ids.append(i)
                    heads.append(th[:w])
                    tails.append(th[-w:])
                if a and len(th) >= a + 6:
                    # an anchor must be mostly words: a run of markup or punctuation is no scaffold
                    if sum(t.isalpha() for t in toks[:a]) * 2 >= a:
                        anchors["prefix"].append((i, sequence_key(th[:a])))
                    if sum(t.isalpha() for t in toks[-a:]) * 2 >= a:
                        anchors["suffix"].append((i, sequence_key(th[-a:])))
            if ids:
                views["full"].append((np.array(ids, np.int64), hasher.signatures(full)))
            if long_ids:
                views["head"].append((np.array(long_ids, np.int64), hasher.signatures(heads)))
                views["tail"].append((np.array(long_ids, np.int64), hasher.signatures(tails)))
        b, r = lsh_params(float(self.threshold), int(self.num_perm))
        matches = []  # one (rows, cols) per view
        for parts in views.values():
            if parts:
                ids = np.concatenate([p[0] for p in parts])
                sig = np.concatenate([p[1] for p in parts])
                e = band_edges(sig, b, r, float(self.threshold))
                matches.append((ids[e[:, 0]], ids[e[:, 1]]))
        for parts in anchors.values():
            if parts:
                view = EdgeGroups(n)
                _anchor_edges(
                    np.array([k for _, k in parts], np.uint64), np.array([i for i, _ in parts]), view
                )
                if view.rows:
                    matches.append((np.concatenate(view.rows), np.concatenate(view.cols)))
        self._join_shared(groups, matches)
        return groups.labels(), canon

    def _join_shared(self, groups: EdgeGroups, matches: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """Join texts on the views' matches that are a part shared by a template's worth of texts.

        A view matches two texts on the part it looks at, which may be the scaffold or a slot's
        fill. A scaffold sits in the same place in every text that fills it, so its matches form a
        component of that view alone with at least ``min_texts + 1`` texts; a repeated fill
        matches a handful. A batch job wrapping one instruction around thousands of documents
        matches, in its tail view, each organic prompt that is one of those documents sent bare:
        chained through the job's own head matches, that would pull the organic prompt, and its
        sender, into the job's template (and tie strangers to the job and to each other). So a
        match counts only inside a view component of ``min_texts + 1`` texts or more.
        """
        need = int(self.min_texts) + 1
        for a, b in matches:
            view = EdgeGroups(groups.n)
            view.add(a, b)
            labels = view.labels()
            keep = np.bincount(labels)[labels[a]] >= need
            groups.add(a[keep], b[keep])

    def fit(
        self, texts: Sequence[str], text_ids, systems: Sequence[str | None] | None = None
    ) -> TemplateDetector:
        """Group ``texts`` (user prompts) by shared template; ``systems`` (aligned, optional) are
        grouped separately (see the module docstring). Duplicate text ids keep their first text.

        Cost is linear in the number of texts: skeleton + tokens + 3 MinHash views per text, then
        one sort per LSH band (throughput and memory: ``scripts/bench_map.py``, in the README).
        """
        self._validate()
        text_ids = np.asarray(text_ids)
        if text_ids.ndim != 1 or len(text_ids) != len(texts):
            raise InputError(
                f"text_ids must be 1-D and aligned with texts ({len(texts)}), got shape {text_ids.shape}"
            )
        if systems is not None and len(systems) != len(texts):
            raise InputError(f"systems has {len(systems)} entries but texts has {len(texts)}")
        _, first = np.unique(text_ids, return_index=True)
        first = np.sort(first)
        tids = text_ids[first].tolist()
        prompts = [texts[i] or "" for i in first]
        labels, canon = self._group(prompts)
        self.template_ids_, self.templates_ = self._assign(tids, prompts, labels, canon, "T-")
        self.system_template_ids_ = {t: None for t in tids}
        if systems is not None:
            self._fit_systems(tids, [systems[i] or "" for i in first])
        n_t = sum(1 for v in self.template_ids_.values() if v is not None)
        log.info(
            "templates: %d distinct texts, %d templates covering %d texts",
            len(tids),
            len(self.templates_),
            n_t,
        )
        return self

    def _assign(self, tids, texts, labels, canon, prefix, weights=None):
        """Map members of large enough components to a stable template id."""
        weights = np.ones(len(tids), np.int64) if weights is None else np.asarray(weights)
        size = np.bincount(labels, weights=weights, minlength=labels.max() + 1 if len(labels) else 0)
        # canonical member of each component: the smallest skeleton hash (independent of input order)
        order = np.lexsort((canon, labels))
        start = np.r_[True, labels[order][1:] != labels[order][:-1]] if len(order) else np.zeros(0, bool)
        rep = {int(labels[j]): int(j) for j in order[start]}
        ids, info = {}, {}
        for j, t in enumerate(tids):
            lab = int(labels[j])
            if size[lab] >= int(self.min_texts) + 1:
                r = rep[lab]
                tid = f"{prefix}{int(canon[r]):016x}"[:14]
                ids[t] = tid
                if tid not in info:
                    info[tid] = {
                        "skeleton": skeleton(texts[r])[:500],
                        "n_texts": int(size[lab]),
                        "example_text_id": tids[r],
                    }
            else:
                ids[t] = None
        return ids, info

    def _fit_systems(self, tids, systems):
        from promptcov.coverage.areas.markers import first_decisive
        from promptcov.coverage.areas.taxonomy import default_taxonomy

        uniq, inv = np.unique(np.array(systems, dtype=object), return_inverse=True)
        present = np.array([bool(s) for s in uniq])
        weights = np.where(present, np.bincount(inv, minlength=len(uniq)), 0)  # no system: never a template
        labels, canon = self._group([s if p else "" for s, p in zip(uniq, present, strict=True)])
        labels = np.where(present, labels, -1 - np.arange(len(uniq)))  # empty systems never group
        labels = np.unique(labels, return_inverse=True)[1]
        sys_ids, self.system_templates_ = self._assign(
            list(range(len(uniq))), list(uniq), labels, canon, "S-", weights
        )
        tax = self.taxonomy if self.taxonomy is not None else default_taxonomy()
        scaffold = [m for a in self.scaffold_areas if a in tax.ids for m in tax.area(a).markers]
        is_scaffold = np.zeros(len(uniq), bool)
        for j, s in enumerate(uniq):
            if sys_ids[j] is not None:
                is_scaffold[j] = first_decisive(scaffold, s, "")[0] is not None
        self.scaffold_system_templates_ = sorted({sys_ids[j] for j in np.flatnonzero(is_scaffold)})
        for k, t in enumerate(tids):
            sid = sys_ids[int(inv[k])]
            self.system_template_ids_[t] = sid
            if self.template_ids_[t] is None and is_scaffold[int(inv[k])]:
                self.template_ids_[t] = sid
        for sid in self.scaffold_system_templates_:
            self.templates_[sid] = dict(self.system_templates_[sid], system=True)

    def transform(self, text_ids) -> np.ndarray:
        """Template id (or ``None``) for each of ``text_ids`` (object array)."""
        if not hasattr(self, "template_ids_"):
            raise NotFittedError("TemplateDetector is not fitted: call fit(texts, text_ids) first")
        return np.array([self.template_ids_.get(t) for t in np.asarray(text_ids).tolist()], dtype=object)


def template_popularity(
    template_ids_per_request,
    account_ids,
    min_accounts: int = 20,
    max_uses: float = 3.0,
    max_share: float = 0.5,
) -> dict[str, tuple[int, bool]]:
    """``{template_id: (n_accounts, popular)}`` over aligned per-request arrays.

    A public template (a well-known "act as ..." prompt) is pasted by many unrelated accounts,
    each using it a few times, as a small part of their traffic. A sweep's template is used by
    one actor: one account or a hydra of many accounts, each sending it many times, or sending
    little else. A template is popular when it has at least ``min_accounts`` accounts, the
    median account uses it at most ``max_uses`` times, and for the median account it is at most
    ``max_share`` of all its requests in the window. ``None`` entries (no template) count toward
    each account's total.

    >>> pop = template_popularity(["T-a", None, "T-a", None, "T-b", "T-b"],
    ...                           ["u1", "u1", "u2", "u2", "x", "x"], min_accounts=2)
    >>> pop["T-a"], pop["T-b"]
    ((2, True), (1, False))
    """
    tids = np.asarray(template_ids_per_request, dtype=object)
    accs = np.asarray(account_ids, dtype=object)
    if tids.shape != accs.shape or tids.ndim != 1:
        raise InputError(f"template ids {tids.shape} and account ids {accs.shape} must be aligned 1-D arrays")
    if len(tids) == 0:
        return {}
    acc_codes, acc_inv = np.unique(accs.astype(str), return_inverse=True)
    total = np.bincount(acc_inv, minlength=len(acc_codes))
    has = np.array([t is not None for t in tids], bool)
    out: dict[str, tuple[int, bool]] = {}
    if not has.any():
        return out
    t_codes, t_inv = np.unique(tids[has].astype(str), return_inverse=True)
    pair = t_inv.astype(np.int64) * len(acc_codes) + acc_inv[has]
    upair, cnt = np.unique(pair, return_counts=True)
    pt, pa = upair // len(acc_codes), upair % len(acc_codes)
    share = cnt / total[pa]
    order = np.argsort(pt, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(pt, minlength=len(t_codes)))]
    for j, tid in enumerate(t_codes):
        sl = order[bounds[j] : bounds[j + 1]]
        n_acc = len(sl)
        popular = (
            n_acc >= int(min_accounts)
            and float(np.median(cnt[sl])) <= max_uses
            and float(np.median(share[sl])) <= max_share
        )
        out[str(tid)] = (n_acc, bool(popular))
    return out
