"""The campaigns and benchmark runners of a scenario family, built from a :class:`CampaignSpec`.

A campaign deals distinct tasks of its target areas, each wrapped in one of the area's scaffolds
(1-10, drawn from the half's scaffolds so that several styles appear), from many accounts: a
few shared payment instruments, part of the traffic through a proxy pool that ordinary customers
also use, waking hours or round the clock, follow-up turns and organic cover traffic in the
proportions the spec says. A pivoting campaign moves a share of its traffic to the new model
and/or to a new area within a day of the release. Benchmark runners are benign: one account runs
one structured benchmark once, in a burst of a few hours.
"""

from __future__ import annotations

import logging

import numpy as np

from promptcov.simulate.corpus import Prompt, Scaffold
from promptcov.simulate.family_config import CampaignSpec
from promptcov.simulate.identity import (
    BROWSER_UAS,
    DATACENTER_ASNS,
    PROXY_ASNS,
    SCRIPT_UAS,
    SDK_UAS,
    Account,
    pick_tz,
)
from promptcov.simulate.timing import DIURNAL, FLAT
from promptcov.simulate.traffic import Context, emit_sessions, plan_sessions

__all__ = ["FamilySweep", "proxy_pool", "family_campaign", "benchmark_runners"]

log = logging.getLogger(__name__)

_FOLLOWUPS = (
    "Continue from where you stopped.",
    "Give the same answer as JSON only.",
    "Now shorten it to the essentials.",
    "Redo the last step more carefully.",
    "Next one, same format.",
    "Expand step 2.",
)
_HARNESS = (
    "### Problem {n}\n{task}\n\n### Response format\nFinal answer only, on the last line.",
    "[eval-run item={n}] {task}",
    "Question {n} of the evaluation set.\n\n{task}\n\nAnswer concisely.",
)


class FamilySweep:
    """A campaign's material: per area its chosen scaffolds and a dealer of distinct tasks."""

    def __init__(self, spec: CampaignSpec, ctx: Context, rng: np.random.Generator) -> None:
        self.ctx, self.rng = ctx, rng
        wanted = list(spec.areas) + ([spec.pivot_area] if spec.pivot_area else [])
        self.areas = [a for a in wanted if ctx.pools.tasks.get(a)]
        if not self.areas:
            raise ValueError(f"{spec.name}: no tasks for any of {wanted}")
        self.scaffolds: dict[str, tuple[list[Scaffold], np.ndarray]] = {}
        for area in self.areas:
            cands = ctx.pools.scaffolds_for(area)
            order = [cands[int(i)] for i in rng.permutation(len(cands))]
            # round-robin over styles so that a campaign with k >= 3 scaffolds uses >= 3 styles
            by_style: dict[str, list[Scaffold]] = {}
            for sc in order:
                by_style.setdefault(sc.id.rpartition("/")[2], []).append(sc)
            ranked = [lst[i] for i in range(len(order)) for lst in by_style.values() if i < len(lst)]
            k = min(spec.scaffolds_per_area, len(ranked))
            w = rng.dirichlet(np.ones(k)) if k else np.zeros(0)
            self.scaffolds[area] = (ranked[:k], w)
        self.order = {a: rng.permutation(len(ctx.pools.tasks[a])) for a in self.areas}
        self.pos = dict.fromkeys(self.areas, 0)

    def _task(self, area: str) -> Prompt:
        pool = self.ctx.pools.tasks[area]
        if self.pos[area] >= len(pool):
            self.order[area], self.pos[area] = self.rng.permutation(len(pool)), 0
        item = pool[int(self.order[area][self.pos[area]])]
        self.pos[area] += 1
        return item

    def render(self, rng: np.random.Generator, area: str) -> Prompt:
        """One sweep request of ``area``: a dealt task in one of the area's scaffolds."""
        task = self._task(area)
        chosen, w = self.scaffolds[area]
        if not chosen or (task.complete and rng.random() < 0.5):
            return Prompt(task.prompt, area, task.system)
        sc = chosen[int(rng.choice(len(chosen), p=w))]
        system = "\n\n".join(s for s in (sc.system, "" if sc.uses("tools") else task.system) if s)
        return Prompt(sc.fill(task.prompt, rng, dict(task.slots)), area, system)


def proxy_pool(ctx: Context, spec: CampaignSpec) -> list[tuple[str, int]]:
    """The proxy exits a campaign shares with ordinary customers (empty without proxy use)."""
    if spec.proxy_share <= 0:
        return []
    n = max(4, spec.n_accounts // 4)
    return [ctx.ids.datacenter(PROXY_ASNS) if i % 3 else ctx.ids.residential(p_v6=0.0) for i in range(n)]


def _uas(rng: np.random.Generator, clients: str) -> tuple[str, ...]:
    fam = {"sdk": SDK_UAS, "script": SCRIPT_UAS, "browser": BROWSER_UAS}.get(clients)
    if fam is None:
        fam = (SDK_UAS, SCRIPT_UAS, BROWSER_UAS)[int(rng.integers(3))]
    return (fam[int(rng.integers(len(fam)))],)


def _member(ctx: Context, rng: np.random.Generator, spec: CampaignSpec, pay: str,
            proxies: list[tuple[str, int]], tz: float | None) -> Account:
    acct = Account(ctx.ids.account(), "campaign", spec.name, spec.name, ctx.ids.org(), pay)
    own = [ctx.ids.datacenter(DATACENTER_ASNS) if spec.clients in ("sdk", "script") else ctx.ids.residential()
           for _ in range(1 + int(rng.integers(2)))]  # fmt: skip
    if proxies:
        picks = rng.choice(len(proxies), size=min(len(proxies), 2 + int(rng.integers(3))), replace=False)
        via = [proxies[int(j)] for j in picks]
        acct.ips = via + own
        acct.ip_weights = [spec.proxy_share / len(via)] * len(via) + [(1 - spec.proxy_share) / len(own)] * len(own)
    else:
        acct.ips = own
    acct.user_agents = _uas(rng, spec.clients)
    acct.tz = pick_tz(rng) if tz is None else tz
    acct.p_messages = float(rng.choice([0.0, 0.2, 0.5, 0.8]))
    span = ctx.t1 - ctx.t0
    acct.start = ctx.t0 + float(rng.uniform(0, 2 * 86400))
    if rng.random() < 0.3:  # opened during the window
        acct.start = float(rng.uniform(ctx.t0 + 0.1 * span, ctx.t1 - 0.2 * span))
    if rng.random() < 0.1:  # banned or abandoned
        acct.stop = float(rng.uniform(acct.start + 0.3 * (ctx.t1 - acct.start), ctx.t1))
    if spec.pivot_model:
        acct.adopt, acct.adopt_delay_h, acct.adopt_ramp_h = spec.pivot_share, spec.pivot_delay_h, 2.0
    elif rng.random() < 0.55:  # adopts the new model like everyone else
        acct.adopt, acct.adopt_delay_h = float(rng.uniform(0.1, 0.3)), float(rng.uniform(0, 72))
        acct.adopt_ramp_h = float(rng.uniform(48, 168))
    return acct


def family_campaign(ctx: Context, spec: CampaignSpec, proxies: list[tuple[str, int]]) -> list[Account]:
    """Write the traffic of one campaign; return its accounts."""
    rng = ctx.rng("family_campaign", int(spec.name.rpartition("_")[2] or 0))
    sweep = FamilySweep(spec, ctx, rng)
    base = [a for a in sweep.areas if a != spec.pivot_area] or sweep.areas
    cards = [ctx.ids.payment() for _ in range(spec.n_payment_ids)]
    camp_tz = None if rng.random() < 0.4 else pick_tz(rng)
    profile = FLAT if spec.round_the_clock else DIURNAL
    pivot_t = ctx.release + spec.pivot_delay_h * 3600.0
    accts = []
    for i in range(spec.n_accounts):
        acct = _member(ctx, rng, spec, cards[i % len(cards)], proxies, camp_tz)
        mix = rng.dirichlet(np.ones(len(base)) * 4.0)
        vol = int(np.clip(rng.lognormal(np.log(spec.median_requests), 0.5), 3, 6 * spec.median_requests))
        prefs = ctx.picker.prefs(rng)
        plan = plan_sessions(rng, acct, vol, ctx.t0, ctx.t1, profile, float(rng.uniform(0.6, 1.2)),
                             6.0 if spec.round_the_clock else 3.0)  # fmt: skip

        def draw(r: np.random.Generator, mix=mix, prefs=prefs, pivoted=False) -> tuple[Prompt, float]:
            if r.random() < spec.cover_share:
                return ctx.picker.pick(r, prefs), 0.35
            if pivoted and r.random() < spec.pivot_share:
                return sweep.render(r, spec.pivot_area), spec.followup_share
            return sweep.render(r, base[int(r.choice(len(base), p=mix))]), spec.followup_share

        def followup(r: np.random.Generator, item: Prompt, turn: int) -> str:
            if item.category in sweep.areas:
                return _FOLLOWUPS[int(r.integers(len(_FOLLOWUPS)))]
            return ctx.picker.followup(r, item, turn)

        gaps = ((3.0, 20.0), (2.0, 30.0)) if spec.round_the_clock else ((20.0, 90.0), (30.0, 180.0))
        split = bool(spec.pivot_area) and spec.pivot_area in ctx.pools.tasks
        before = [p for p in plan if not split or p[0] < pivot_t]
        emit_sessions(ctx, rng, acct, before, draw, followup, turn_gap=gaps[0], conv_gap=gaps[1])
        if split:
            after = [p for p in plan if p[0] >= pivot_t]
            emit_sessions(ctx, rng, acct, after, lambda r, d=draw: d(r, pivoted=True), followup,
                          turn_gap=gaps[0], conv_gap=gaps[1])  # fmt: skip
        if ctx.writer.per_account.get(acct.account_id, 0) == 0:  # too short-lived to draw any session
            lo, hi = max(ctx.t0, acct.start), min(ctx.t1, acct.stop)
            for ts in np.sort(rng.uniform(lo, max(hi, lo + 3600.0), size=3)):
                item = sweep.render(rng, base[0])
                ctx.writer.add(acct, float(min(ts, ctx.t1 - 1.0)), item.prompt, item.system)
        accts.append(acct)
    return accts


def benchmark_runners(ctx: Context, n: int) -> list[Account]:
    """``n`` evaluators, each running one benchmark (an area's tasks in one harness format) once."""
    rng = ctx.rng("benchmark_runners")
    areas = [a for a in ("math_reasoning", "coding", "cot_elicitation", "tool_use", "data_analysis")
             if len(ctx.pools.tasks.get(a, ())) >= 10]  # fmt: skip
    out: list[Account] = []
    for _ in range(n if areas else 0):
        ip = ctx.ids.datacenter()
        acct = Account(ctx.ids.account(), "benign_benchmark", "benchmark_runner", "", ctx.ids.org(),
                       ctx.ids.payment(), [ip], None, (SCRIPT_UAS[int(rng.integers(len(SCRIPT_UAS)))],),
                       pick_tz(rng), 0.0)  # fmt: skip
        source = ctx.pools.tasks[areas[int(rng.integers(len(areas)))]]
        harness = _HARNESS[int(rng.integers(len(_HARNESS)))]
        k = min(len(source), max(30, int(rng.uniform(60, 250) * ctx.cfg.single_volume)))
        items = [source[int(i)] for i in rng.choice(len(source), size=k, replace=False)]
        t = float(rng.uniform(ctx.t0 + 86400.0, ctx.t1 - 8 * 3600.0))
        if rng.random() < 0.5:  # evaluating the new model right after its release
            t = float(min(ctx.release + rng.uniform(2, 48) * 3600.0, ctx.t1 - 8 * 3600.0))
            acct.adopt, acct.adopt_delay_h, acct.adopt_ramp_h = 1.0, 0.0, 0.01
        acct.start = t
        for j, item in enumerate(items):
            ctx.writer.add(acct, t, harness.replace("{n}", str(j + 1)).replace("{task}", item.prompt), conv_ts=t)
            t += 3.0 + rng.exponential(20.0)
            if t >= ctx.t1:
                break
        out.append(acct)
    return out
