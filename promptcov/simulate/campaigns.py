"""Distillation campaigns: many accounts sweeping high-value capability areas as one.

A sweep is a structured map of the input space: a few scaffolds (templates) whose slots are
varied, wrapped around many distinct base tasks, each asked once or a few times, rarely followed
up, at high volume in a few valuable areas, spread over many accounts. Three campaigns, each
with a different operational style, so no single surface feature gives them all away:

* ``reason_rubric`` -- chain-of-thought elicitation, rubric grading (the model as a reward model)
  and censorship-safe rewrites; synchronised batches every few hours round the clock, a handful
  of shared payment instruments, datacenter networks.
* ``broad_agentic`` -- agentic reasoning, tool use, coding, data analysis, vision; accounts of
  different kinds (clients, volumes, time zones, rhythms) behind a rotating proxy pool that also
  carries ordinary customers; a third mix 20-40% organic cover traffic into their sweep.
* ``agentic_tools`` -- agentic coding and tool orchestration at the largest volume, load-balanced
  over many low-volume accounts, partly on shared proxies; within a day of a new model's release
  it moves about half of its traffic to the new model.
"""

from __future__ import annotations

import logging

import numpy as np

from promptcov.simulate.corpus import Prompt, Scaffold
from promptcov.simulate.identity import (
    BROWSER_UAS,
    DATACENTER_ASNS,
    PROXY_ASNS,
    SCRIPT_UAS,
    SDK_UAS,
    Account,
    pick_tz,
    pick_user_agents,
)
from promptcov.simulate.timing import DIURNAL, FLAT, sample_times
from promptcov.simulate.traffic import Context, Prefs, emit_sessions, plan_sessions

__all__ = ["CAMPAIGN_MIX", "Sweep", "reason_rubric", "broad_agentic", "agentic_tools"]

log = logging.getLogger(__name__)

#: Capability areas each campaign sweeps, with their share of its sweep traffic.
CAMPAIGN_MIX: dict[str, dict[str, float]] = {
    "reason_rubric": {
        "cot_elicitation": 0.4,
        "rubric_grading": 0.3,
        "censorship_rewrite": 0.2,
        "math_reasoning": 0.1,
    },
    "broad_agentic": {
        "agentic_coding": 0.2,
        "tool_use": 0.2,
        "coding": 0.15,
        "data_analysis": 0.15,
        "computer_vision": 0.15,
        "general_instruction": 0.15,
    },
    "agentic_tools": {"agentic_coding": 0.45, "tool_use": 0.55},
}
_SCAFFOLD_FALLBACK = {"math_reasoning": "cot_elicitation", "general_instruction": "cot_elicitation"}
_FOLLOWUPS = (
    "Continue.",
    "Now give only the final answer.",
    "Output the same as JSON with the fields reasoning and answer.",
    "Go on from where you stopped.",
    "Redo it with more detail in each step.",
)
_P_FOLLOW = 0.03


class Sweep:
    """A campaign's sweep material: its scaffolds per area and a dealer of distinct tasks.

    Tasks are dealt from a shuffled queue shared by all the campaign's accounts, so together
    they cover the area with little repetition (a task comes back only after the pool is used
    up). Filled judge prompts (``complete`` tasks) are mostly sent as they are.
    """

    def __init__(self, name: str, ctx: Context, rng: np.random.Generator) -> None:
        self.name, self.ctx, self.rng = name, ctx, rng
        tasks = ctx.pools.tasks
        mix = {a: w for a, w in CAMPAIGN_MIX[name].items() if tasks.get(a)}
        missing = sorted(set(CAMPAIGN_MIX[name]) - set(mix))
        if missing:
            log.info("campaign %s: no tasks for %s; those areas are left out", name, ", ".join(missing))
        if not mix:
            raise ValueError(f"campaign {name}: no task pool for any of its areas")
        self.areas = sorted(mix)
        self.mix = np.array([mix[a] for a in self.areas])
        self.mix /= self.mix.sum()
        self.scaffolds: dict[str, tuple[list[Scaffold], np.ndarray]] = {}
        for area in self.areas:
            cands = ctx.pools.scaffolds_for(area) or ctx.pools.scaffolds_for(_SCAFFOLD_FALLBACK.get(area, ""))
            if not cands:
                log.warning("campaign %s: no scaffold for %s; its tasks are sent bare", name, area)
                self.scaffolds[area] = ([], np.zeros(0))
                continue
            k = min(len(cands), 2 + int(rng.integers(2)))
            chosen = [cands[int(i)] for i in rng.choice(len(cands), size=k, replace=False)]
            w = np.sort(rng.dirichlet(np.ones(k) * 0.8))[::-1]
            self.scaffolds[area] = (chosen, w / w.sum())
        self.order = {a: rng.permutation(len(tasks[a])) for a in self.areas}
        self.pos = dict.fromkeys(self.areas, 0)

    def account_mix(self, rng: np.random.Generator) -> np.ndarray:
        """One account's share per area: the campaign mix, perturbed (accounts specialise a little)."""
        return rng.dirichlet(self.mix * 12.0 + 1e-3)

    def _task(self, area: str) -> Prompt:
        pool = self.ctx.pools.tasks[area]
        if self.pos[area] >= len(pool):
            self.order[area] = self.rng.permutation(len(pool))
            self.pos[area] = 0
        item = pool[int(self.order[area][self.pos[area]])]
        self.pos[area] += 1
        return item

    def render(self, rng: np.random.Generator, area_p: np.ndarray) -> Prompt:
        """One sweep request: a dealt task wrapped in one of the area's scaffolds."""
        area = self.areas[int(rng.choice(len(self.areas), p=area_p))]
        task = self._task(area)
        chosen, w = self.scaffolds[area]
        if not chosen or (task.complete and rng.random() < 0.75):
            return Prompt(task.prompt, area, task.system)
        sc = chosen[int(rng.choice(len(chosen), p=w))]
        extra = dict(task.slots)
        task_system = (
            "" if (sc.uses("tools") and "tools" in extra and extra["tools"] == task.system) else task.system
        )
        system = "\n\n".join(s for s in (sc.system, task_system) if s)
        return Prompt(sc.fill(task.prompt, rng, extra), area, system)


def _campaign_followup(rng: np.random.Generator, item: Prompt, turn: int) -> str:
    return _FOLLOWUPS[int(rng.integers(len(_FOLLOWUPS)))]


def _member(ctx: Context, rng: np.random.Generator, name: str, p_new: float, p_stop: float) -> Account:
    acct = Account(
        account_id=ctx.ids.account(), label="campaign", kind=name, campaign=name, org_id=ctx.ids.org()
    )
    span = ctx.t1 - ctx.t0
    if rng.random() < p_new:  # a fresh account created during the period
        acct.start = float(rng.uniform(ctx.t0 + 0.1 * span, ctx.t1 - 0.2 * span))
    else:
        acct.start = ctx.t0 + float(rng.uniform(0, 2 * 86400))
    if rng.random() < p_stop:  # banned or abandoned before the end
        acct.stop = float(rng.uniform(acct.start + 0.3 * (ctx.t1 - acct.start), ctx.t1))
    return acct


def _send(ctx: Context, rng: np.random.Generator, acct: Account, t: float, item: Prompt) -> None:
    conv = f"conv_{rng.bytes(8).hex()}"
    ctx.writer.add(acct, t, item.prompt, item.system, conv, 0, (), t)
    if rng.random() < _P_FOLLOW:
        ctx.writer.add(acct, t + 20 + rng.exponential(60), _campaign_followup(rng, item, 0), item.system, conv, 1,
                       (item.prompt,), t)  # fmt: skip


def _ensure_active(
    ctx: Context, rng: np.random.Generator, sweep: Sweep, accts: list[Account], mixes: list[np.ndarray]
) -> None:
    """A member that drew no traffic at all (tiny volumes, short lifetime) still sends a few requests."""
    for acct, mix in zip(accts, mixes, strict=True):
        if ctx.writer.per_account.get(acct.account_id, 0) == 0:
            lo, hi = max(ctx.t0, acct.start), min(ctx.t1, acct.stop)
            if hi <= lo:
                acct.start, lo, hi = ctx.t0, ctx.t0, ctx.t1
            for ts in np.sort(rng.uniform(lo, hi, size=3 + int(rng.integers(4)))):
                _send(ctx, rng, acct, float(ts), sweep.render(rng, mix))


def reason_rubric(ctx: Context) -> list[Account]:
    """CoT + rubric + censorship sweep in synchronised batches, shared cards, datacenter hosts."""
    rng = ctx.rng("reason_rubric")
    sweep = Sweep("reason_rubric", ctx, rng)
    n = ctx.cfg.n("reason_rubric_accounts")
    cards = [ctx.ids.payment() for _ in range(max(2, n // 8))]
    hosts = [DATACENTER_ASNS[int(i)] for i in rng.choice(len(DATACENTER_ASNS), size=3, replace=False)]
    uas = tuple(SCRIPT_UAS[int(i)] for i in rng.choice(3, size=2, replace=False)) + (SDK_UAS[0],)
    accts, mixes, vols = [], [], []
    for _ in range(n):
        acct = _member(ctx, rng, "reason_rubric", p_new=0.4, p_stop=0.15)
        acct.payment_id = cards[int(rng.integers(len(cards)))] if rng.random() < 0.75 else ctx.ids.payment()
        acct.ips = [ctx.ids.datacenter(hosts) for _ in range(1 + int(rng.integers(2)))]
        acct.user_agents = (uas[int(rng.integers(len(uas)))],)
        acct.tz, acct.p_messages = 8.0, float(rng.uniform(0.05, 0.3))
        acct.adopt, acct.adopt_delay_h, acct.adopt_ramp_h = 0.2, float(rng.uniform(48, 120)), 72.0
        accts.append(acct)
        mixes.append(sweep.account_mix(rng))
        vols.append(float(np.clip(rng.lognormal(np.log(110), 0.45), 30, 300) * ctx.cfg.account_volume))
    # Coordinated batches: as many as a typical member needs at ~2.5 requests per batch it joins,
    # so at any volume a batch gathers about half of the members (every few hours at scale 1).
    n_batches = max(6, int(np.median(vols) / (2.5 * 0.5)))
    gap = (ctx.t1 - ctx.t0) / n_batches
    batches = []
    t = ctx.t0 + rng.uniform(0, gap)
    while t < ctx.t1:
        batches.append(t)
        t += gap * rng.uniform(0.6, 1.4)
    batches_arr = np.array(batches)
    p_join, per_batch = [], []
    for acct, v in zip(accts, vols, strict=True):
        active = max(1, int(np.sum((batches_arr >= acct.start) & (batches_arr < acct.stop))))
        p = float(rng.uniform(0.35, 0.75))
        p_join.append(p)
        per_batch.append(max(1.0, v / (p * active)))
    for b in batches:
        window = rng.uniform(6, 25) * 60
        for acct, mix, p, m in zip(accts, mixes, p_join, per_batch, strict=True):
            if not (acct.start <= b < acct.stop) or rng.random() >= p:
                continue
            k = 1 + int(rng.poisson(m - 1.0))
            for ts in np.sort(b + rng.uniform(0, window, size=k)):
                if ts < ctx.t1:
                    _send(ctx, rng, acct, float(ts), sweep.render(rng, mix))
    _ensure_active(ctx, rng, sweep, accts, mixes)
    return accts


def broad_agentic(ctx: Context, pool: list[tuple[str, int]]) -> list[Account]:
    """Broad agentic sweep from accounts of different kinds behind a shared rotating proxy pool."""
    rng = ctx.rng("broad_agentic")
    sweep = Sweep("broad_agentic", ctx, rng)
    accts: list[Account] = []
    mixes: list[np.ndarray] = []
    for i in range(ctx.cfg.n("broad_agentic_accounts")):
        acct = _member(ctx, rng, "broad_agentic", p_new=0.35, p_stop=0.1)
        acct.payment_id = ctx.ids.payment()
        picks = rng.choice(len(pool), size=min(len(pool), 3 + int(rng.integers(6))), replace=False)
        acct.ips = [pool[int(j)] for j in picks]
        acct.user_agents = pick_user_agents(rng, (0.35, 0.35, 0.3))
        acct.tz, acct.p_messages = pick_tz(rng), float(rng.choice([0.0, 0.2, 0.5, 0.8]))
        acct.adopt, acct.adopt_delay_h, acct.adopt_ramp_h = 0.25, float(rng.uniform(24, 96)), 48.0
        mix = sweep.account_mix(rng)
        cover = float(rng.uniform(0.2, 0.4)) if i % 3 == 0 else 0.0
        prefs: Prefs = ctx.picker.prefs(rng)
        vol = int(np.clip(rng.lognormal(np.log(90), 0.7), 15, 350) * ctx.cfg.account_volume)

        def draw(r: np.random.Generator, mix=mix, cover=cover, prefs=prefs) -> tuple[Prompt, float]:
            if r.random() < cover:
                return ctx.picker.pick(r, prefs), 0.35
            return sweep.render(r, mix), _P_FOLLOW

        def followup(r: np.random.Generator, item: Prompt, turn: int) -> str:
            if item.category in CAMPAIGN_MIX["broad_agentic"]:
                return _campaign_followup(r, item, turn)
            return ctx.picker.followup(r, item, turn)

        style = rng.choice(3, p=(0.4, 0.35, 0.25))
        if style == 0:  # operated by hand-like scripts in office/waking hours
            plan = plan_sessions(rng, acct, vol, ctx.t0, ctx.t1, DIURNAL, float(rng.uniform(0.5, 1.2)), 4.0)
            gaps = ((20.0, 110.0), (30.0, 200.0))
        elif style == 1:  # round-the-clock worker
            plan = plan_sessions(rng, acct, vol, ctx.t0, ctx.t1, FLAT, 1.0, 6.0)
            gaps = ((2.0, 15.0), (3.0, 30.0))
        else:  # a few bursts at random times
            lo, hi = max(ctx.t0, acct.start), min(ctx.t1, acct.stop)
            sizes = [int(rng.integers(10, 31)) for _ in range(max(1, vol // 20))]
            plan = [
                (float(s), k)
                for s, k in zip(sample_times(rng, len(sizes), lo, hi, acct.tz, FLAT), sizes, strict=True)
            ]
            gaps = ((1.0, 8.0), (2.0, 40.0))
        emit_sessions(ctx, rng, acct, plan, draw, followup, turn_gap=gaps[0], conv_gap=gaps[1])
        accts.append(acct)
        mixes.append(mix)
    _ensure_active(ctx, rng, sweep, accts, mixes)
    return accts


def agentic_tools(ctx: Context) -> list[Account]:
    """Largest-volume agentic sweep, load-balanced over many low-volume accounts."""
    rng = ctx.rng("agentic_tools")
    sweep = Sweep("agentic_tools", ctx, rng)
    n = ctx.cfg.n("agentic_tools_accounts")
    proxy = [ctx.ids.datacenter(PROXY_ASNS[1:] + DATACENTER_ASNS[4:6]) for _ in range(max(6, n // 5))]
    ctx.proxy_pools["agentic_tools"] = proxy
    sdks = tuple(SDK_UAS[int(i)] for i in rng.choice(len(SDK_UAS), size=3, replace=False))
    accts, mixes, weights = [], [], []
    for _ in range(n):
        acct = _member(ctx, rng, "agentic_tools", p_new=0.3, p_stop=0.1)
        if rng.random() < 0.15:  # fresh accounts opened around the release
            acct.start = ctx.release + float(rng.uniform(-3, 2)) * 86400
        acct.payment_id = ctx.ids.payment()
        if rng.random() < 0.5:
            picks = rng.choice(len(proxy), size=min(len(proxy), 2 + int(rng.integers(4))), replace=False)
            acct.ips = [proxy[int(j)] for j in picks]
        else:
            acct.ips = [ctx.ids.datacenter() for _ in range(1 + int(rng.integers(2)))]
        ua = sdks[int(rng.integers(len(sdks)))] if rng.random() < 0.8 else SCRIPT_UAS[int(rng.integers(3))]
        acct.user_agents = (ua,) if rng.random() < 0.9 else (ua, BROWSER_UAS[0])
        acct.tz, acct.p_messages = pick_tz(rng), float(rng.choice([0.0, 0.3, 0.6]))
        acct.adopt = float(np.clip(rng.normal(0.5, 0.15), 0.15, 0.85))
        acct.adopt_delay_h, acct.adopt_ramp_h = float(rng.uniform(2, 18)), 2.0
        vol = float(np.clip(rng.lognormal(np.log(85), 0.6), 20, 400) * ctx.cfg.account_volume)
        life = (min(acct.stop, ctx.t1) - max(acct.start, ctx.t0)) / 86400.0
        accts.append(acct)
        mixes.append(sweep.account_mix(rng))
        weights.append(vol / max(life, 3.0))
    total = int(
        sum(
            w * (min(a.stop, ctx.t1) - max(a.start, ctx.t0)) / 86400.0
            for a, w in zip(accts, weights, strict=True)
        )
    )
    n_days = int(np.ceil((ctx.t1 - ctx.t0) / 86400.0))
    day_factor = rng.lognormal(0, 0.4, size=n_days)
    hours = np.arange(ctx.t0, ctx.t1, 3600.0)
    hw = FLAT[((hours // 3600) % 24).astype(int)] * day_factor[((hours - ctx.t0) // 86400).astype(int)]
    hw = hw * np.where(hours >= ctx.release, 1.4, 1.0)
    counts = rng.multinomial(total, hw / hw.sum())
    starts = np.array([a.start for a in accts])
    stops = np.array([a.stop for a in accts])
    w_arr = np.array(weights)
    for h, k in zip(hours, counts, strict=True):
        active = np.flatnonzero((starts <= h) & (stops > h + 3600))
        if k == 0 or len(active) == 0:
            continue
        who = rng.choice(active, size=int(k), p=w_arr[active] / w_arr[active].sum())
        for ts, i in sorted(zip(h + rng.random(int(k)) * 3600.0, who.tolist(), strict=True)):
            _send(ctx, rng, accts[i], float(ts), sweep.render(rng, mixes[i]))
    _ensure_active(ctx, rng, sweep, accts, mixes)
    return accts
