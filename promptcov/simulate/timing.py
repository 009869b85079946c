"""When requests arrive: diurnal and weekly rhythm, sessions, round-the-clock services, bursts.

People send requests in their waking hours, in sessions of a few requests minutes apart, with
long gaps between sessions and a different rhythm at weekends. Services and scripts run round the
clock. These helpers draw timestamps (epoch seconds, float) from such profiles; all jitter comes
from the caller's generator so a seed fixes every timestamp.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DIURNAL",
    "OFFICE",
    "FLAT",
    "hour_grid",
    "sample_times",
    "session_sizes",
]

#: Relative activity by local hour for ordinary people (quiet 1-7h, peaks late morning and evening).
DIURNAL = np.array(
    [0.35, 0.2, 0.1, 0.06, 0.05, 0.07, 0.15, 0.35, 0.6, 0.85, 1.0, 1.0, 0.9, 0.9, 0.95, 1.0, 0.95, 0.85, 0.8, 0.9,
     1.0, 0.95, 0.8, 0.55]
)  # fmt: skip
#: Office hours (teams, coding tools used at work).
OFFICE = np.array(
    [0.03, 0.02, 0.02, 0.02, 0.02, 0.03, 0.08, 0.3, 0.75, 1.0, 1.0, 0.95, 0.7, 0.9, 1.0, 1.0, 0.9, 0.7, 0.4, 0.25,
     0.2, 0.15, 0.08, 0.05]
)  # fmt: skip
#: Round the clock with a mild global rhythm.
FLAT = 0.85 + 0.15 * np.cos((np.arange(24) - 15) / 24 * 2 * np.pi)


def hour_grid(
    t0: float, t1: float, tz: float, profile: np.ndarray, weekend: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Hour starts in ``[t0, t1)`` and their relative weight for a person in UTC offset ``tz``.

    The weight is ``profile[local hour]`` times ``weekend`` on local Saturdays and Sundays.
    """
    starts = np.arange(t0, t1, 3600.0)
    local = starts + tz * 3600.0
    hour = (np.floor(local / 3600.0) % 24).astype(int)
    weekday = (np.floor(local / 86400.0).astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    w = profile[hour] * np.where(weekday >= 5, weekend, 1.0)
    return starts, w


def sample_times(
    rng: np.random.Generator,
    n: int,
    t0: float,
    t1: float,
    tz: float = 0.0,
    profile: np.ndarray = DIURNAL,
    weekend: float = 1.0,
) -> np.ndarray:
    """``n`` sorted timestamps in ``[t0, t1)`` drawn from the hourly profile (uniform within an hour)."""
    if n <= 0 or t1 <= t0:
        return np.zeros(0)
    starts, w = hour_grid(np.floor(t0 / 3600.0) * 3600.0, t1, tz, profile, weekend)
    if w.sum() <= 0:
        w = np.ones_like(w)
    idx = rng.choice(len(starts), size=n, p=w / w.sum())
    ts = starts[idx] + rng.random(n) * 3600.0
    ts = np.clip(ts, t0, t1 - 1.0)
    return np.sort(ts)


def session_sizes(rng: np.random.Generator, n: int, mean: float = 3.0) -> list[int]:
    """Split ``n`` requests into sessions of geometric size with the given mean (at least 1 each)."""
    sizes: list[int] = []
    left = n
    p = 1.0 / max(mean, 1.0)
    while left > 0:
        k = min(left, int(rng.geometric(p)))
        sizes.append(k)
        left -= k
    return sizes
