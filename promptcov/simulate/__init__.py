"""Synthetic multi-week API request logs with ground truth, for the demo, evaluation and tests.

:func:`simulate` writes request logs in the contract's format plus ``labels.csv`` and
``scenario.json``: an organic population (heavy-tailed, diurnal, long-tailed topics, follow-ups,
popular public prompts), legitimate heavy users that look suspicious (products, a coding tool, a
nightly batch job, power users, teams, VPN customers on a fraud ring's proxies, a one-off
benchmark run) and three distillation campaigns with different operational styles.
"""

from promptcov.simulate.config import SimConfig
from promptcov.simulate.corpus import Prompt, PromptPools, Scaffold, load_pools
from promptcov.simulate.scenario import LABELS, SimResult, simulate

__all__ = ["SimConfig", "SimResult", "simulate", "load_pools", "PromptPools", "Prompt", "Scaffold", "LABELS"]
