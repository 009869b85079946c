"""The simulator's one configuration object, :class:`SimConfig`.

``scale`` multiplies the number of accounts of every kind (never below what keeps each kind
present: 8 accounts per campaign, one of each hard negative); ``volume`` multiplies how many
requests each account sends. Everything is a pure function of the config and the seed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from promptcov.errors import InputError

__all__ = ["SimConfig", "parse_when"]

MIN_CAMPAIGN_ACCOUNTS = 8


def parse_when(value: str, what: str) -> datetime:
    """Parse an ISO 8601 date or date-time (naive values are UTC) into an aware UTC datetime."""
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what}: {value!r} is not an ISO 8601 date-time (e.g. 2026-11-23T00:00Z)") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


@dataclass(frozen=True)
class SimConfig:
    """What to simulate. Counts are at ``scale=1``; :meth:`n` gives the scaled count.

    >>> cfg = SimConfig(scale=0.1)
    >>> cfg.n("agentic_tools_accounts"), cfg.n("organic_accounts")
    (8, 40)
    """

    seed: int = 0
    scale: float = 1.0
    volume: float = 1.0
    weeks: int = 4
    end: str = "2026-11-23T00:00:00Z"
    release: str | None = None  # default: Tuesday 17:00Z thirteen days before `end`
    model_old: str = "claude-x-1"
    model_new: str = "claude-x-2"
    organic_accounts: int = 400
    power_users: int = 4
    teams: int = 3
    products: int = 3
    reason_rubric_accounts: int = 40
    broad_agentic_accounts: int = 60
    agentic_tools_accounts: int = 80
    bad_records: int = 0
    compress: bool = True
    split: str = "day"

    def __post_init__(self) -> None:
        if not (0 < self.scale <= 100):
            raise InputError(f"scale must be in (0, 100], got {self.scale}")
        if not (0 < self.volume <= 20):
            raise InputError(f"volume must be in (0, 20], got {self.volume}")
        if not (1 <= self.weeks <= 52):
            raise InputError(f"weeks must be between 1 and 52, got {self.weeks}")
        if self.split not in ("day", "week"):
            raise InputError(f"split must be 'day' or 'week', got {self.split!r}")
        if self.bad_records < 0:
            raise InputError(f"bad_records must be >= 0, got {self.bad_records}")
        if self.model_old == self.model_new:
            raise InputError("model_old and model_new must differ")
        for name in ("organic_accounts", "power_users", "teams", "products"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0")
        start, end, release = self.start_dt, self.end_dt, self.release_dt
        if not (start < release < end):
            raise InputError(
                f"release {release.isoformat()} must fall inside the simulated span {start} .. {end}"
            )

    @property
    def end_dt(self) -> datetime:
        return parse_when(self.end, "end")

    @property
    def start_dt(self) -> datetime:
        return self.end_dt - timedelta(weeks=self.weeks)

    @property
    def release_dt(self) -> datetime:
        if self.release is not None:
            return parse_when(self.release, "release")
        days_back = 13 if self.weeks >= 2 else 4
        return self.end_dt - timedelta(days=days_back) + timedelta(hours=17)

    def n(self, name: str) -> int:
        """Scaled account count for the field ``name`` (campaigns: at least 8; others: at least 1)."""
        base = getattr(self, name)
        scaled = int(round(base * self.scale))
        if name.endswith("_accounts") and name != "organic_accounts":
            return max(MIN_CAMPAIGN_ACCOUNTS, scaled)
        if name == "organic_accounts":
            return max(20, scaled) if base else 0
        return max(1, scaled) if base else 0

    @property
    def account_volume(self) -> float:
        """Per-account volume factor for campaigns and power users: ``volume``, shrunk with the
        square root of ``scale`` below 1 (the campaigns keep 8 accounts, so a demo stays small)."""
        return self.volume * max(0.05, min(self.scale, 1.0)) ** 0.5

    @property
    def single_volume(self) -> float:
        """Volume factor for kinds that stay one account at small scale (product, batch job, ...)."""
        return self.volume * max(0.05, min(self.scale, 1.0)) ** 0.7

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SimConfig:
        """Build from a mapping (e.g. a TOML table); unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(
                f"unknown simulator setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**values)
