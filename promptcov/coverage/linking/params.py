"""The account linker's settings, in one frozen dataclass (``[score.linking]`` in ``promptcov.toml``).

None of these is a weight of evidence: how much a shared card, address, scaffold or synchronised
burst says is estimated from each window's own data (Fellegi-Sunter, see
:mod:`promptcov.coverage.linking.fellegi_sunter`). These settings bound that estimate and shape
the groups.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LinkParams"]


@dataclass(frozen=True)
class LinkParams:
    """Settings of :class:`~promptcov.coverage.linking.linker.AccountLinker`.

    Evidence
    --------
    max_key_accounts
        A template, near-duplicate family or identifier value held by more accounts than this
        generates no candidate pairs (it is far too common to single out an operator; its
        term-frequency weight would be near zero anyway).
    near_dup_cosine, near_dup_k
        Near-duplicate families: prompts with cosine >= ``near_dup_cosine`` to one of their
        ``near_dup_k`` nearest neighbours are one family.
    overlap_levels
        Comparison levels of the template and near-duplicate families: the Bhattacharyya overlap of
        two accounts' usage of rare keys (1 = same usage, 0 = nothing shared) is cut at these
        values into levels "low", "mid", "high".
    timing_*
        :func:`~promptcov.coverage.linking.cooccurrence.timing_links` settings (synchronised
        activity in short time bins beyond chance, rhythm-corrected).
    timing_levels
        Synchrony score cut into levels "mid" and "high".
    timing_exact_pairs, timing_lsh_bands, timing_lsh_rows, timing_lsh_max_bucket
        Synchrony candidates: every pair sharing a time bin while that product lists at most
        ``timing_exact_pairs`` entries, else MinHash/LSH banding of the accounts' bin sets
        (:mod:`~promptcov.coverage.linking.sync_lsh`: bands of rows; a bucket pairs each member
        with its next ``timing_lsh_max_bucket`` members), which bounds the candidates at 10^7 requests.
    timing_max_partners
        A synchronised pair is kept only when it is among the strongest ``timing_max_partners`` of one
        of its accounts (0: all): this bounds the tied pairs at 10^7 requests (see ``timing_links``).
    max_bits
        The most evidence (in bits, log2 Bayes factor) one family may add. Fellegi-Sunter assumes
        the families are independent given the truth; they are not quite (a proxy pool, a card and
        a scheduler often come together), so no single family may decide a link on its own.
        Infrastructure (address, /24, ASN) and client strings are capped low: proxy pools and
        NATs are shared with ordinary customers.
    em_iterations, em_prior
        EM iterations and the Dirichlet pseudo-count added to every m/u cell.
    prior_siblings
        The prior probability that two accounts of the window share an operator never falls below
        ``prior_siblings / N`` (about one sibling per account): see
        :func:`~promptcov.coverage.linking.fellegi_sunter.fit_fs` for why EM needs that floor.
    min_coherence
        A template used by many accounts whose users are otherwise tied (infrastructure, payment,
        timing) to this mean posterior or more is a campaign's signature even when its usage looks
        like a popular public prompt; below it, a popular-looking template links no one.
    min_tied_share
        ...or when at least this share of its users is tied (posterior >= ``min_posterior`` on
        the other evidence) to another user and those ties are beyond chance (Poisson tail against
        the window's rate of tied pairs, family-wise ``timing_alpha``): a campaign spread over many
        cards, each shared by a few of its accounts.
    min_popular_accounts
        Templates with fewer users are never treated as popular.
    key_min_span_hours
        The rarity of a shared signature template ties two accounts only when both were active over
        at least this span: a one-off run inside a day shares templates with whoever uses them...
    key_min_shared
        ...unless the two share at least this many distinct rare templates, making up at least
        ``overlap_levels[1]`` of their traffic (a hydra's burner accounts fill several of its
        scaffolds; an evaluator runs one judge template, a benchmark shares a few tasks' format).

    Groups
    ------
    min_posterior
        A pair is an edge of the account graph when its posterior probability of one operator is
        at least this (0.5: more likely than not).
    resolution
        Leiden's CPM resolution: a group must be tied more densely than this (sum of edge
        posteriors over its possible pairs). 0.05 keeps a rotating campaign whose accounts are
        not all active together in one group, while one edge never pulls an outsider into a
        large group (it would need ties to 5% of the members).
    min_member_bits
        A member's summed evidence to the rest of its group (bits) must reach this, else it is
        let go (one weak tie does not make a member).
    min_group_size, seed

    Memory
    ------
    pair_block
        Candidate pairs are compared in blocks of accounts with about this many candidate entries
        each; with the pairs some behaviour or payment evidence ties, this sets the linker's
        memory (about 100 bytes per entry), not the size of the log.
    """

    max_key_accounts: int = 2000
    near_dup_cosine: float = 0.95
    near_dup_k: int = 10
    overlap_levels: tuple[float, ...] = (0.05, 0.2, 0.5, 0.8)
    timing_bin_s: float = 600.0
    timing_min_requests: int = 20
    timing_min_shared_bins: int = 5
    timing_min_score: float = 0.3
    timing_min_lift: float = 3.0
    timing_alpha: float = 0.01
    timing_levels: tuple[float, float] = (0.3, 0.6)
    timing_exact_pairs: float = 1e9
    timing_lsh_bands: int = 160
    timing_lsh_rows: int = 4
    timing_lsh_max_bucket: int = 64
    timing_max_partners: int = 64
    max_bits_template: float = 12.0
    max_bits_near_duplicate: float = 10.0
    max_bits_payment: float = 10.0
    max_bits_timing: float = 8.0
    max_bits_network: float = 4.0
    max_bits_client: float = 2.0
    em_iterations: int = 40
    em_prior: float = 0.5
    prior_siblings: float = 1.0
    min_coherence: float = 0.3
    min_tied_share: float = 0.5
    min_popular_accounts: int = 10
    key_min_span_hours: float = 24.0
    key_min_shared: int = 2
    min_posterior: float = 0.5
    resolution: float = 0.05
    min_member_bits: float = 4.0
    min_group_size: int = 2
    seed: int = 0
    pair_block: int = 2_000_000

    def __post_init__(self):
        if not 0.0 < self.min_posterior < 1.0:
            raise ValueError(f"min_posterior must be in (0, 1), got {self.min_posterior}")
        if not 0.0 < self.resolution < 1.0:
            raise ValueError(f"resolution must be in (0, 1), got {self.resolution}")
        if list(self.overlap_levels) != sorted(self.overlap_levels) or self.overlap_levels[0] <= 0:
            raise ValueError(f"overlap_levels must be increasing and positive, got {self.overlap_levels}")
        if min(self.timing_lsh_bands, self.timing_lsh_rows, self.timing_lsh_max_bucket) < 1:
            raise ValueError("timing_lsh_bands, timing_lsh_rows and timing_lsh_max_bucket must be positive")
        if self.pair_block < 1:
            raise ValueError(f"pair_block must be positive, got {self.pair_block}")
        if self.max_key_accounts < 2 or self.em_iterations < 1 or self.min_group_size < 2:
            raise ValueError("max_key_accounts >= 2, em_iterations >= 1 and min_group_size >= 2 are required")
