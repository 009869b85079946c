"""Every decision constant of scoring, in frozen dataclasses (``[score.*]`` in ``promptcov.toml``).

- :class:`ScoreWeights`: the fixed functional form of the score (log-odds units);
- :class:`DetectorParams`: metric settings, threshold calibration, benign benchmark runs, evidence;
- :class:`PivotParams`: new-model rushes and capability shifts.

Each value is defined here once; the modules that use them take an instance. The module docstring
of :mod:`promptcov.coverage.scoring.score` explains the form and why each weight has its value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ScoreWeights", "DetectorParams", "PivotParams"]


@dataclass(frozen=True)
class ScoreWeights:
    """The fixed weights of the score (log-odds units); see :mod:`promptcov.coverage.scoring.score`."""

    bias: float = -5.5
    structure: float = 2.0
    targeting: float = 1.5
    structure_x_targeting: float = 3.0
    tiling_weight: float = 0.55
    tiling_floor: float = 0.4
    tiling_span: float = 0.5
    near_dup_weight: float = 0.4
    no_followups: float = 0.6
    many_followups: float = 1.5
    followup_full: float = 0.2
    round_the_clock: float = 1.0
    diurnal: float = 0.5
    scheduled: float = 1.5
    pacing: float = 0.5
    coverage: float = 1.5
    coverage_min_n: float = 10.0
    #: coverage ratios between this and 1 say nothing (a large account saturates its area)
    coverage_dead_zone: float = math.log2(0.75)
    group: float = 3.0
    #: group evidence = size_w * size + cohesion_w * cohesion + sync_w * synchrony
    group_size_weight: float = 0.3
    group_cohesion_weight: float = 0.4
    group_sync_weight: float = 0.3
    #: a group of this many accounts has full size evidence (log2 scale)
    group_size_saturation: float = 32.0
    prior_logit: float = -4.0
    shrink_n: float = 50.0
    #: members acting alike (filling the group's rare templates) beyond the first, at which a group's
    #: sweep component is as reliable as ``shrink_n`` requests make it (r = 0.5); 0 turns this off
    shrink_members: float = 4.0
    #: the members' replicate reliability counts in full once template fills are this share of the
    #: group's pooled traffic (less, proportionally, below it: an office's shared report template
    #: among its ordinary traffic is no sweep)
    alike_full_share: float = 0.25
    #: group size evidence counts the members acting alike (True) or every linked member (False)
    group_size_alike: bool = True
    #: a profile is flat (round the clock) when its first daily harmonic is below
    #: max(flat_amplitude, flat_noise / sqrt(n)): above the noise of a flat histogram of n requests
    flat_amplitude: float = 0.12
    flat_noise: float = 2.5


@dataclass(frozen=True)
class DetectorParams:
    """Settings of :class:`~promptcov.coverage.scoring.detector.SweepDetector`.

    Calibration: the flag threshold is the ``1 - target_fpr`` quantile of a robust null fitted to
    the own scores of the window's ungrouped accounts with at least ``min_calibration_requests``
    requests, clipped to
    ``[threshold_floor, threshold_ceiling]``. Metrics: ``n_cells`` / ``per_account_cap`` (fine cells
    of the coverage metric, ``None`` = automatic), ``max_sample``, ``lookback``, ``dup_cos``,
    ``related_cos`` (distance metrics), ``min_timing_requests`` (hour-of-day metrics).
    ``benchmark_max_hours``, ``benchmark_min_structure``, ``benchmark_min_requests``: an unlinked,
    structured one-off run inside that span is a benign benchmark, never flagged.
    ``n_examples``, ``example_chars``: example prompts kept as evidence.
    ``min_member_weight``: an account inherits its group's score times its tie to the group
    (``membership``); weaker ties than this inherit nothing. ``owned_template_share``: a
    popular-looking template counts as rare in a group's pooled traffic when the group sent at
    least this share of its uses in the window (a hydra's own scaffold, not a public prompt).
    """

    target_fpr: float = 0.01
    threshold_floor: float = 0.5
    threshold_ceiling: float = 0.95
    min_calibration_requests: int = 20
    n_cells: int | None = None
    per_account_cap: int = 20
    max_sample: int = 500
    lookback: int = 100
    dup_cos: float = 0.9
    related_cos: float = 0.35
    min_timing_requests: int = 48
    benchmark_max_hours: float = 24.0
    benchmark_min_structure: float = 0.5
    benchmark_min_requests: int = 20
    n_examples: int = 3
    example_chars: int = 200
    min_member_weight: float = 0.5
    owned_template_share: float = 0.5
    seed: int = 0

    def __post_init__(self):
        if not 0.0 < self.target_fpr < 0.5:
            raise ValueError(f"target_fpr must be in (0, 0.5), got {self.target_fpr}")
        if not 0.0 < self.threshold_floor <= self.threshold_ceiling < 1.0:
            raise ValueError("need 0 < threshold_floor <= threshold_ceiling < 1")


@dataclass(frozen=True)
class PivotParams:
    """Settings of :func:`~promptcov.coverage.scoring.pivots.detect_pivots`.

    An entity (account or group) needs ``min_requests`` requests. New-model rush: within
    ``window_s`` after a model's first appearance (models seen within ``new_model_lead_s`` of the
    window start are not new), the entity sends ``min_window_requests`` or more requests, at least
    ``min_share`` of them to the new model, and ``min_lift`` times what everyone else sent to it in
    the same hours (``context_s`` either side), beyond chance (Poisson tail, family-wise ``alpha``).
    Capability shift: total variation distance ``min_tvd`` or more between the area mix before and
    after a boundary tried every ``split_every_s``, with ``min_side`` requests on each side.
    """

    min_requests: int = 50
    window_s: float = 48 * 3600.0
    new_model_lead_s: float = 86400.0
    min_window_requests: int = 20
    min_share: float = 0.3
    min_lift: float = 2.0
    context_s: float = 3 * 3600.0
    alpha: float = 0.01
    min_tvd: float = 0.5
    split_every_s: float = 86400.0
    min_side: int = 20
