"""Synthetic multi-week API request logs with ground truth, for the demo, evaluation and tests.

:func:`simulate` writes request logs in the contract's format plus ``labels.csv`` and
``scenario.json``: an organic population (heavy-tailed, diurnal, long-tailed topics, follow-ups,
popular public prompts), legitimate heavy users that look suspicious (products, a coding tool, a
nightly batch job, power users, teams, VPN customers on a fraud ring's proxies, a one-off
benchmark run) and three distillation campaigns with different operational styles.

:func:`simulate_family` writes a randomised scenario family per seed instead (2-4 campaigns of
random shape), from a development or an evaluation half of the material that share no text.
"""

from promptcov.simulate.config import SimConfig
from promptcov.simulate.corpus import Prompt, PromptPools, Scaffold, load_pools
from promptcov.simulate.families import simulate_family
from promptcov.simulate.scenario import LABELS, SimResult, simulate

__all__ = [
    "SimConfig", "SimResult", "simulate", "simulate_family", "load_pools", "PromptPools", "Prompt", "Scaffold",
    "LABELS",
]  # fmt: skip
