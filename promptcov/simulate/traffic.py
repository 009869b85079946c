"""Shared machinery of the scenario: the context object, organic prompt picking and sessions.

Organic traffic is a long tail: each person has a few favourite topics plus occasional others,
some paste well-known public prompts (the same text from many unrelated accounts), and a third
of conversations go on for follow-up turns. :class:`OrganicPicker` draws such prompts;
:func:`emit_sessions` turns a plan of sessions into requests with realistic gaps between turns
and between conversations.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from promptcov.simulate.config import SimConfig
from promptcov.simulate.corpus import Prompt, PromptPools
from promptcov.simulate.identity import Account, IdFactory
from promptcov.simulate.timing import DIURNAL, sample_times, session_sizes
from promptcov.simulate.writer import LogWriter

__all__ = [
    "Context",
    "OrganicPicker",
    "Prefs",
    "GENERIC_FOLLOWUPS",
    "plan_sessions",
    "emit_sessions",
]

#: Later user turns that fit almost any conversation (written for this project).
GENERIC_FOLLOWUPS = (
    "Can you make it shorter?",
    "Thanks. Can you give me a concrete example?",
    "Can you expand on the second point?",
    "Rewrite that in a more formal tone.",
    "What if I don't have access to that?",
    "Can you put that in a table?",
    "Why is that?",
    "That didn't work, I still get the same error.",
    "Now translate it into Spanish please.",
    "Explain it like I'm twelve.",
    "Are there any downsides to this approach?",
    "Give me three more options.",
    "Thank you! One more question: how long would that take?",
    "Where does that come from? Any sources?",
    "Make it a bit funnier.",
    "hmm not quite, try again",
    "shorter please",
    "What would you recommend for a beginner?",
    "ok and what about the cost?",
    "Can you double check the numbers?",
    "Perfect. Now write a short summary I can paste into an email.",
    "I meant the other one, sorry.",
)


@dataclass
class Context:
    """Everything the generators share: config, pools, the writer, the id factory, the time span."""

    cfg: SimConfig
    pools: PromptPools
    writer: LogWriter
    ids: IdFactory
    picker: OrganicPicker
    t0: float
    t1: float
    release: float
    proxy_pools: dict[str, list[tuple[str, int]]] = field(default_factory=dict)

    def rng(self, name: str, *extra: int) -> np.random.Generator:
        """An independent generator for one component, so components do not shift each other."""
        return np.random.default_rng([self.cfg.seed, zlib.crc32(name.encode()), *extra])

    @classmethod
    def create(cls, cfg: SimConfig, pools: PromptPools, out_dir) -> Context:
        """The context of one simulation writing under ``out_dir``, every generator seeded from ``cfg.seed``."""
        return cls(cfg=cfg, pools=pools, writer=LogWriter(out_dir, cfg, np.random.default_rng([cfg.seed, 1])),
                   ids=IdFactory(np.random.default_rng([cfg.seed, 2])),
                   picker=OrganicPicker(pools, np.random.default_rng([cfg.seed, 3])),
                   t0=cfg.start_dt.timestamp(), t1=cfg.end_dt.timestamp(), release=cfg.release_dt.timestamp())

    def run_steps(self, steps: Sequence[tuple[str, Callable[[], list[Account]]]], log) -> list[Account]:
        """Run the generators in order; returns every account they made (logged step by step)."""
        accounts: list[Account] = []
        for name, step in steps:
            before = sum(self.writer.per_account.values())
            made = step()
            accounts.extend(made)
            log.info("simulated %s: %d accounts, %d requests", name, len(made),
                     sum(self.writer.per_account.values()) - before)
        return accounts


@dataclass(frozen=True)
class Prefs:
    """A person's topic mix (probability per category) and how often they paste popular prompts."""

    cat_p: np.ndarray
    p_popular: float
    p_head: float = 0.05


class OrganicPicker:
    """Draw organic prompts by topic preference, with shared popular prompts and a reused head."""

    def __init__(self, pools: PromptPools, rng: np.random.Generator) -> None:
        self.items = pools.organic
        self.popular = pools.popular
        cats: dict[str, list[int]] = {}
        for i, p in enumerate(self.items):
            cats.setdefault(p.category, []).append(i)
        self.cats = sorted(cats)
        self.by_cat = [np.array(cats[c]) for c in self.cats]
        sizes = np.array([len(v) for v in self.by_cat], dtype=float)
        self.base_p = np.sqrt(sizes) / np.sqrt(sizes).sum()
        self.pop_w = _zipf(len(self.popular), 1.1)
        n_head = min(60, len(self.items))
        self.head = rng.choice(len(self.items), size=n_head, replace=False) if n_head else np.zeros(0, int)
        self.head_w = _zipf(n_head, 1.0)
        self.followups = tuple(pools.followups) + GENERIC_FOLLOWUPS

    def prefs(self, rng: np.random.Generator, n_fav: int | None = None, focus: str | None = None) -> Prefs:
        """A random person: ``n_fav`` favourite categories hold ~75% of their requests."""
        k = len(self.cats)
        n_fav = min(k, n_fav if n_fav is not None else 1 + int(rng.integers(3)))
        fav = rng.choice(k, size=n_fav, replace=False, p=self.base_p)
        p = 0.25 * self.base_p.copy()
        p[fav] += 0.75 * rng.dirichlet(np.ones(n_fav))
        if focus in self.cats:
            p[self.cats.index(focus)] += 0.5
        p_pop = 0.0 if (rng.random() < 0.55 or not self.popular) else float(rng.uniform(0.05, 0.35))
        return Prefs(p / p.sum(), p_pop)

    def pick(self, rng: np.random.Generator, prefs: Prefs) -> Prompt:
        u = rng.random()
        if u < prefs.p_popular:
            return self.popular[int(rng.choice(len(self.popular), p=self.pop_w))]
        if u < prefs.p_popular + prefs.p_head and len(self.head):
            return self.items[int(self.head[rng.choice(len(self.head), p=self.head_w)])]
        c = int(rng.choice(len(self.cats), p=prefs.cat_p))
        pool = self.by_cat[c]
        return self.items[int(pool[int(rng.integers(len(pool)))])]

    def followup(self, rng: np.random.Generator, item: Prompt, turn: int) -> str:
        """The user's next turn: the item's own follow-ups first, else a generic one."""
        if turn < len(item.followups):
            return item.followups[turn]
        return self.followups[int(rng.integers(len(self.followups)))]


def _zipf(n: int, a: float) -> np.ndarray:
    if n == 0:
        return np.zeros(0)
    w = 1.0 / np.arange(1, n + 1) ** a
    return w / w.sum()


def plan_sessions(
    rng: np.random.Generator,
    acct: Account,
    n: int,
    t0: float,
    t1: float,
    profile: np.ndarray = DIURNAL,
    weekend: float = 1.0,
    mean_session: float = 3.0,
) -> list[tuple[float, int]]:
    """(start, size) of the sessions in which ``acct`` sends ``n`` requests within its lifetime."""
    lo, hi = max(t0, acct.start), min(t1, acct.stop)
    if n <= 0 or hi - lo < 3600:
        return []
    sizes = session_sizes(rng, n, mean_session)
    starts = sample_times(rng, len(sizes), lo, hi, acct.tz, profile, weekend)
    order = rng.permutation(len(sizes))
    return [(float(s), sizes[int(i)]) for s, i in zip(starts, order, strict=True)]


#: draw(rng) -> (prompt item, probability that the conversation goes on after a turn)
Draw = Callable[[np.random.Generator], tuple[Prompt, float]]


def emit_sessions(
    ctx: Context,
    rng: np.random.Generator,
    acct: Account,
    plan: Sequence[tuple[float, int]],
    draw: Draw,
    followup: Callable[[np.random.Generator, Prompt, int], str] | None = None,
    turn_gap: tuple[float, float] = (20.0, 110.0),
    conv_gap: tuple[float, float] = (45.0, 280.0),
    system: str | None = None,
) -> int:
    """Write the requests of each planned session; returns how many were written.

    Within a session, a conversation starts with a drawn prompt and continues with follow-up
    turns (probability from ``draw``, decaying with each turn); gaps are ``a + Exp(b)`` seconds.
    ``system`` overrides the item's own system prompt (a product's fixed system prompt).
    """
    followup = followup or ctx.picker.followup
    end = min(ctx.t1, acct.stop)
    written = 0
    for start, size in plan:
        t, left = start, size
        while left > 0 and t < end:
            item, p_follow = draw(rng)
            conv = f"conv_{rng.bytes(8).hex()}"
            history: list[str] = []
            prompt, turn, conv_ts = item.prompt, 0, t
            sys_text = item.system if system is None else system
            while True:
                ctx.writer.add(acct, t, prompt, sys_text, conv, turn, history, conv_ts)
                written += 1
                left -= 1
                if left <= 0 or rng.random() >= p_follow * 0.75**turn:
                    break
                history.append(prompt)
                prompt = followup(rng, item, turn)
                turn += 1
                t += turn_gap[0] + rng.exponential(turn_gap[1])
                if t >= end:
                    break
            t += conv_gap[0] + rng.exponential(conv_gap[1])
    return written
