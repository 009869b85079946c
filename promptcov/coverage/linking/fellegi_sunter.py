"""Fellegi-Sunter match weights for account pairs, estimated from the window itself by EM.

Two accounts are a *match* when one operator runs both. Each family of evidence (shared rare
templates, near-duplicate prompts, synchronised timing, payment, network, client) compares a pair
at a *level* (0 = disagree or nothing shared, 1.. = stronger agreement, -1 = not comparable,
e.g. one account has no payment id). With ``m[l] = P(level l | match)`` and
``u[l] = P(level l | not a match)``, the evidence of a level is ``log2(m[l] / u[l])`` bits and a
pair's posterior log-odds are ``log2(lambda / (1 - lambda)) + sum of bits`` (Fellegi and Sunter,
1969; the model splink implements).

Nothing here is a constant tuned on one scenario: ``lambda``, ``m`` and ``u`` are estimated from
the window's pairs by expectation-maximisation (the candidate pairs plus every other pair of the
window, which shares nothing and enters as one aggregated row). For identifier families the
agreement level is *term-frequency adjusted* as in splink: sharing a value that two random accounts
of the window share with probability ``tf`` (``n_v (n_v - 1) / (N (N - 1))`` for a value held by
``n_v`` of ``N`` accounts) weighs ``log2(m[agree] / tf)``: a card or an address few accounts use is
strong evidence, a big proxy pool's address or a common ASN weak.

Families are not quite independent given the truth (a proxy pool, a card and a scheduler often
come together), so each family's bits are clipped to ``[-cap, cap]``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

__all__ = ["Family", "FSModel", "fit_fs", "log2_odds"]

log = logging.getLogger(__name__)


def log2_odds(p: np.ndarray) -> np.ndarray:
    """``log2(p / (1 - p))`` with ``p`` clipped away from 0 and 1."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    return np.log2(p / (1 - p))


@dataclass
class Family:
    """One family's comparison of the candidate pairs.

    ``levels``: int array (P,), -1 not comparable, 0 disagree, 1..n_levels-1 agreement strengths.
    ``tf_bits``: optional float array (P,): ``-log2(tf)`` of the rarest shared value at an agreement
    level (term-frequency adjustment), NaN where not applicable. ``cap``: bits bound.
    ``drives``: whether the family takes part in deciding which pairs are matches during EM. A
    family that only corroborates (shared addresses and client strings: proxy pools and NATs join
    unrelated customers) has its ``m`` and ``u`` estimated from the matches the driving families
    find, so EM can never define "one operator" as "one proxy pool".
    ``null_u``: the level distribution among pairs of *unrelated* accounts when it can be computed
    directly (behaviour families: the same window with requests shuffled between accounts, which
    keeps how common each template is and destroys coordination; one holder's volume beyond the
    key's second-largest holder is left out, see :func:`~promptcov.coverage.linking.evidence.null_keys`);
    ``u`` is then fixed to it.
    ``fixed_m``: ``m`` fixed instead of estimated (identifier families: one ``m`` per family would
    average campaigns that share cards widely with campaigns that never do, and so make a card
    shared by a handful of accounts count for nothing; with ``m = 1/2`` its weight is its rarity).
    ``key_bits``: optional float array (P,): ``-log2(tf)`` of the rarest *key* the pair shares (for
    the template family: the rarest signature template both use). At an agreement level the pair
    gets the larger of the level's evidence and ``log2(1/2) + key_bits``: a scaffold only a handful
    of accounts ever fill ties any two of them, even when each sends it a few times among other
    traffic (low-volume hydra accounts rotating over many scaffolds overlap little pairwise).
    ``max_negative``: the most a family can count *against* a pair (bits). Families are not
    comprehensive: a campaign that shares cards may use scaffolds of its own, so the absence of one
    kind of agreement is weak evidence.
    """

    name: str
    levels: np.ndarray
    n_levels: int
    cap: float
    tf_bits: np.ndarray | None = None
    drives: bool = True
    null_u: np.ndarray | None = None
    fixed_m: np.ndarray | None = None
    max_negative: float = 1.0
    key_bits: np.ndarray | None = None


@dataclass
class FSModel:
    """Estimated ``lambda`` (prior match rate over all pairs), ``m`` and ``u`` per family."""

    lam: float
    m: dict[str, np.ndarray]
    u: dict[str, np.ndarray]
    n_pairs: float
    iterations: int

    def level_bits(self, fam: Family) -> np.ndarray:
        """Clipped evidence (bits) of each candidate pair for one family (0 where not comparable)."""
        m, u = self.m[fam.name], self.u[fam.name]
        lv = fam.levels
        bits = np.zeros(len(lv))
        ok = lv >= 0
        bits[ok] = np.log2(m[lv[ok]] / u[lv[ok]])
        if fam.tf_bits is not None:
            tf = ok & (lv > 0) & np.isfinite(fam.tf_bits)
            # term-frequency adjustment: u of the agreement level replaced by the value's frequency
            bits[tf] = np.log2(m[lv[tf]]) + fam.tf_bits[tf]
        if fam.key_bits is not None:
            kb = ok & (lv > 0) & np.isfinite(fam.key_bits)
            bits[kb] = np.maximum(bits[kb], fam.key_bits[kb] - 1.0)
        return np.clip(bits, -min(fam.cap, fam.max_negative), fam.cap)

    def bits(self, families: list[Family]) -> dict[str, np.ndarray]:
        return {f.name: self.level_bits(f) for f in families}

    def posterior(self, total_bits: np.ndarray) -> np.ndarray:
        z = log2_odds(self.lam) + np.asarray(total_bits, dtype=np.float64)
        return 1.0 / (1.0 + np.exp2(-np.clip(z, -60, 60)))


def _monotone(m: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Project ``m`` so that ``m / u`` never falls as the agreement level rises (pool adjacent
    violators, weighted by ``u``): agreeing more can never be evidence *against* one operator. This
    rules out the degenerate EM solution where the "match" class is a bland subset of non-matches."""
    r, w = list(m / u), list(u)
    blocks = [[r[i], w[i], 1] for i in range(len(r))]
    out: list[list[float]] = []
    for b in blocks:
        out.append(b)
        while len(out) > 1 and out[-2][0] > out[-1][0]:
            r2, w2, n2 = out.pop()
            r1, w1, n1 = out.pop()
            out.append([(r1 * w1 + r2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    ratio = np.concatenate([[b[0]] * int(b[2]) for b in out])
    proj = ratio * u
    return proj / proj.sum()


def fit_fs(families: list[Family], n_total_pairs: float, iterations: int = 40, prior: float = 0.5,
           anchor_p: tuple[float, float] = (0.9, 0.01), lam_floor: float = 0.0,
           weights: np.ndarray | None = None) -> FSModel:
    """Estimate ``lambda``, ``m`` and ``u`` from every pair of the window.

    ``u`` is each family's null distribution where it has one (``null_u``), else the level
    frequency over all pairs of the window (matches are a small minority of all pairs; identifier
    families then get their per-value term-frequency adjustment when bits are computed). ``m`` and
    ``lambda`` are fitted by EM over the candidate pairs (pairs that share nothing at all are
    non-matches, as in blocking), starting from *anchored* responsibilities (``anchor_p``: a pair
    that some driving family ties at its top level starts as a likely match, any other as
    unlikely). ``m`` is kept monotone in the agreement level (:func:`_monotone`) and gets ``prior``
    pseudo-counts spread like ``u``; only driving families decide the responsibilities.

    ``lam_floor``: the prior never falls below it. When a single family carries all the evidence
    (a campaign tied only by its scaffold, or only by its cards), "these pairs are one operator" and
    "pairs like these are common" explain the window equally well and EM drifts to ``lambda -> 0``;
    the floor states the weakest prior held instead (the linker uses about one sibling account per
    account: ``1 / N``).

    ``weights``: how many candidate pairs each row stands for (default one each). The linker folds
    the pairs that no driving family ties (all at level 0 or not comparable) into one row per
    combination of levels, which gives the same estimate as listing them one by one.
    """
    n_rows = len(families[0].levels) if families else 0
    w = np.ones(n_rows) if weights is None else np.asarray(weights, dtype=np.float64)
    n_cand = float(w.sum())
    rest = max(float(n_total_pairs) - n_cand, 0.0)
    u = {}
    for f in families:
        if f.null_u is not None:
            u[f.name] = (np.asarray(f.null_u, np.float64) * n_total_pairs + prior) / (n_total_pairs + prior * f.n_levels)
        else:
            ok = f.levels >= 0
            counts = np.bincount(f.levels[ok], weights=w[ok], minlength=f.n_levels).astype(np.float64)
            counts[0] += rest
            u[f.name] = (counts + prior) / (counts.sum() + prior * f.n_levels)
    top = np.zeros(n_rows, dtype=bool)
    for f in families:
        if f.drives:
            top |= f.levels == f.n_levels - 1
    p = np.where(top, anchor_p[0], anchor_p[1])
    lam = float(np.clip(max(float(p @ w) / max(n_total_pairs, 1.0), lam_floor), 1e-12, 0.5))
    m = _m_only(families, p * w, u, prior)
    it = 0
    while it < iterations:
        it += 1
        model = FSModel(lam=lam, m=m, u=u, n_pairs=float(n_total_pairs), iterations=it)
        total = sum(model.level_bits(f) for f in families if f.drives)
        p = model.posterior(total) if n_rows else np.zeros(0)
        new_lam = float(np.clip(max(float(p @ w) / max(n_total_pairs, 1.0), lam_floor), 1e-12, 0.5))
        m = _m_only(families, p * w, u, prior)
        done = abs(new_lam - lam) <= 1e-6 * lam
        lam = new_lam
        if done:
            break
    log.debug("Fellegi-Sunter EM: %d iterations, lambda %.3g over %.0f pairs", it, lam, n_total_pairs)
    return FSModel(lam=lam, m=m, u=u, n_pairs=float(n_total_pairs), iterations=it)


def _m_only(families: list[Family], p: np.ndarray, u: dict, prior: float) -> dict[str, np.ndarray]:
    """``m`` from the responsibilities ``p`` (``prior`` pseudo-counts spread like ``u``), monotone."""
    m = {}
    for f in families:
        if f.fixed_m is not None:
            m[f.name] = np.asarray(f.fixed_m, np.float64)
            continue
        ok = f.levels >= 0
        wm = np.bincount(f.levels[ok], weights=p[ok], minlength=f.n_levels)
        m[f.name] = _monotone((wm + prior * u[f.name]) / (wm.sum() + prior), u[f.name])
    return m
