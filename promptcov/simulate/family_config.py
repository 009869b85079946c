"""Scenario families: the randomised shape of one simulated window, drawn from a seed.

:func:`draw_family` turns ``(seed, scale)`` into a :class:`FamilyConfig`: 2-4 campaigns, each
a :class:`CampaignSpec` with its own size, payment instruments, proxy use, rhythm, follow-ups,
cover traffic, scaffolds and target areas, and possibly a pivot after the model release; plus the
size of the organic population and of the hard negatives. Every range is a module constant so
tests can check them. Nothing here depends on the material: the same seed gives the same family
for the development and the evaluation half.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from promptcov.errors import InputError

__all__ = [
    "HIGH_VALUE_AREAS",
    "RANGES",
    "CampaignSpec",
    "FamilyConfig",
    "draw_family",
]

#: The capability areas a campaign may target.
HIGH_VALUE_AREAS = (
    "cot_elicitation", "rubric_grading", "censorship_rewrite", "agentic_coding", "tool_use",
    "computer_use", "computer_vision", "data_analysis", "coding", "math_reasoning",
)  # fmt: skip

#: The ranges a family is drawn from (at scale 1; ``scale`` shrinks account counts).
RANGES: dict[str, tuple[float, float]] = {
    "campaigns": (2, 4),
    "accounts": (10, 300),
    "payment_ids": (1, 40),
    "proxy_share": (0.0, 1.0),
    "followup_share": (0.0, 0.4),
    "cover_share": (0.0, 0.5),
    "scaffolds_per_area": (1, 10),
    "areas": (1, 5),
    "hydra_median": (5, 60),
    "heavy_median": (60, 250),
    "campaign_requests": (600, 3000),
    "pivot_delay_h": (1.0, 24.0),
    "pivot_share": (0.3, 0.7),
    "organic_accounts": (250, 450),
}
_MIN_ACCOUNTS = 6  # a campaign keeps at least this many accounts at small scale


@dataclass(frozen=True)
class CampaignSpec:
    """One campaign of a family (see the module docstring for what each knob means)."""

    name: str
    n_accounts: int
    n_payment_ids: int
    proxy_share: float
    round_the_clock: bool
    followup_share: float
    cover_share: float
    areas: tuple[str, ...]
    scaffolds_per_area: int
    median_requests: float
    hydra: bool
    clients: str  # "sdk" | "script" | "browser" | "mixed"
    pivot_model: bool = False
    pivot_area: str = ""
    pivot_delay_h: float = 0.0
    pivot_share: float = 0.0

    @property
    def pivots(self) -> bool:
        return self.pivot_model or bool(self.pivot_area)


@dataclass(frozen=True)
class FamilyConfig:
    """One randomised scenario: campaigns and population sizes. ``organic_accounts``, ``products``,
    ``power_users`` and ``teams`` are counts at scale 1 (the simulator scales them); campaign
    account counts are already scaled."""

    seed: int
    scale: float
    campaigns: tuple[CampaignSpec, ...] = field(default_factory=tuple)
    organic_accounts: int = 300
    products: int = 2
    power_users: int = 3
    teams: int = 2
    benchmark_runners: int = 2

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _campaign(rng: np.random.Generator, i: int, scale: float) -> CampaignSpec:
    lo, hi = RANGES["accounts"]
    n_full = int(round(_loguniform(rng, lo, hi + 0.49)))
    n = max(_MIN_ACCOUNTS, int(round(n_full * scale)))
    n_pay = int(min(n, round(_loguniform(rng, 1, RANGES["payment_ids"][1] + 0.49))))
    hydra = bool(rng.random() < 0.6)
    median = _loguniform(rng, *RANGES["hydra_median" if hydra else "heavy_median"])
    budget = _loguniform(rng, *RANGES["campaign_requests"])  # requests at scale 1
    median = float(max(RANGES["hydra_median"][0], min(median, budget / n_full)))
    k_areas = int(rng.integers(RANGES["areas"][0], RANGES["areas"][1] + 1))
    areas = tuple(sorted(str(a) for a in rng.choice(HIGH_VALUE_AREAS, size=k_areas, replace=False)))
    rest = [a for a in HIGH_VALUE_AREAS if a not in areas]
    pivot_model = bool(rng.random() < 0.4)
    pivot_area = str(rng.choice(rest)) if (rest and rng.random() < 0.3) else ""
    pivoting = pivot_model or bool(pivot_area)
    return CampaignSpec(
        name=f"campaign_{i + 1}",
        n_accounts=n,
        n_payment_ids=max(1, n_pay),
        proxy_share=float(rng.uniform(*RANGES["proxy_share"])) if rng.random() < 0.8 else 0.0,
        round_the_clock=bool(rng.random() < 0.5),
        followup_share=float(rng.uniform(*RANGES["followup_share"])),
        cover_share=float(rng.uniform(*RANGES["cover_share"])) if rng.random() < 0.6 else 0.0,
        areas=areas,
        scaffolds_per_area=int(rng.integers(RANGES["scaffolds_per_area"][0], RANGES["scaffolds_per_area"][1] + 1)),
        median_requests=median,
        hydra=hydra,
        clients=str(rng.choice(["sdk", "script", "browser", "mixed"], p=[0.35, 0.3, 0.1, 0.25])),
        pivot_model=pivot_model,
        pivot_area=pivot_area,
        pivot_delay_h=float(rng.uniform(*RANGES["pivot_delay_h"])) if pivoting else 0.0,
        pivot_share=float(rng.uniform(*RANGES["pivot_share"])) if pivoting else 0.0,
    )


def draw_family(seed: int, scale: float = 1.0) -> FamilyConfig:
    """The scenario family of ``seed`` (deterministic), with account counts times ``scale``."""
    if not (0 < scale <= 4):
        raise InputError(f"scale must be in (0, 4], got {scale}")
    rng = np.random.default_rng([int(seed), 0x5EED])
    k = int(rng.integers(RANGES["campaigns"][0], RANGES["campaigns"][1] + 1))
    camps = tuple(_campaign(rng, i, scale) for i in range(k))
    n_org = int(rng.integers(RANGES["organic_accounts"][0], RANGES["organic_accounts"][1] + 1))
    return FamilyConfig(
        seed=int(seed),
        scale=float(scale),
        campaigns=camps,
        organic_accounts=n_org,
        products=int(rng.integers(1, 3)),
        power_users=int(rng.integers(2, 5)),
        teams=int(rng.integers(2, 4)),
        benchmark_runners=int(rng.integers(1, 4)),
    )
