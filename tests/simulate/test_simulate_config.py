"""SimConfig: defaults, scaling floors, validation."""

from __future__ import annotations

import pytest

from promptcov.errors import InputError
from promptcov.simulate import SimConfig


def test_defaults_span_four_weeks_and_release_in_the_last_two():
    cfg = SimConfig()
    assert cfg.end_dt.isocalendar()[:2] == (2026, 48) and cfg.end_dt.weekday() == 0
    assert (cfg.end_dt - cfg.start_dt).days == 28
    assert 0 < (cfg.end_dt - cfg.release_dt).days < 14


def test_scaled_counts_keep_every_kind_present():
    small = SimConfig(scale=0.01)
    for name in ("reason_rubric_accounts", "broad_agentic_accounts", "agentic_tools_accounts"):
        assert small.n(name) == 8
    assert small.n("products") == small.n("power_users") == small.n("teams") == 1
    assert small.n("organic_accounts") == 20
    big = SimConfig(scale=2)
    assert big.n("agentic_tools_accounts") == 160 and big.n("organic_accounts") == 800
    assert SimConfig(scale=0.15).account_volume < SimConfig().account_volume == 1.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scale": 0},
        {"weeks": 0},
        {"split": "hour"},
        {"bad_records": -1},
        {"model_new": "claude-x-1"},
        {"end": "next monday"},
        {"release": "2020-01-01T00:00:00Z"},
    ],
)
def test_bad_settings_raise_input_error(kwargs):
    with pytest.raises(InputError):
        SimConfig(**kwargs)


def test_from_dict_rejects_unknown_keys():
    assert SimConfig.from_dict({"seed": 4, "weeks": 2}).weeks == 2
    with pytest.raises(InputError, match="unknown simulator setting"):
        SimConfig.from_dict({"seeds": 4})
