"""Legitimate heavy users that a naive detector would flag (labelled hard negatives).

* **products**: an app built on the API sends one fixed system prompt with thousands of varied
  questions from its own users, round the clock, rarely with follow-ups;
* **coding tool**: an IDE assistant with its system prompt, code requests and many follow-ups;
* **batch job**: one narrow template applied to real texts every night at about 02:00, in a burst;
* **benchmark**: an evaluator runs one public benchmark set once, through one CoT template, within
  a few hours (label ``benign_benchmark``): systematic, but small, once, and never coordinated.

What separates them from a sweep: one account rather than many acting as one, a template applied
to *real, varied* inputs rather than a map of a capability area, and stable repetition over time.
"""

from __future__ import annotations

import logging

import numpy as np

from promptcov.simulate.corpus import Prompt
from promptcov.simulate.identity import SCRIPT_UAS, SDK_UAS, Account, pick_tz
from promptcov.simulate.timing import DIURNAL, OFFICE
from promptcov.simulate.traffic import Context, emit_sessions, plan_sessions

__all__ = ["products", "coding_tools", "batch_jobs", "benchmarks", "BENCHMARK_TEMPLATES"]

log = logging.getLogger(__name__)

#: Evaluation-harness prompt formats (written for this project).
BENCHMARK_TEMPLATES = (
    "Answer the following question. Reason step by step, then write the final answer on its own line "
    "as 'Answer: <answer>'.\n\nQuestion: {task}",
    "{task}\n\nLet's think step by step.",
    "Q: {task}\nA: Let's work this out carefully before giving the answer.",
)
_CODING_FOLLOWUPS = (
    "That throws a TypeError on the second call, can you fix it?",
    "Add unit tests for this.",
    "Can you refactor it to be async?",
    "Now add type hints and a docstring.",
    "It works, but it's slow on large inputs. Any ideas?",
    "Explain what this line does.",
    "Use the standard library only, no extra dependencies.",
    "The linter complains about the unused variable, clean it up.",
)


def _service(ctx: Context, rng: np.random.Generator, kind: str, uas: tuple[str, ...], n_ips: int) -> Account:
    ids = ctx.ids
    dc = ids.datacenter()
    ips = [dc] + [(ids.ip(int(dc[0].split(".")[0])), dc[1]) for _ in range(n_ips - 1)]
    return Account(
        account_id=ids.account(),
        label="hard_negative",
        kind=kind,
        org_id=ids.org(),
        payment_id=ids.payment(),
        ips=ips,
        user_agents=uas,
        tz=pick_tz(rng),
        start=ctx.t0,
    )


def products(ctx: Context) -> list[Account]:
    """Apps built on the API: fixed system prompt, many varied end-user questions, day and night."""
    rng = ctx.rng("products")
    systems = ctx.pools.product_systems
    if not systems:
        log.warning("no product system prompts in the corpus: products are left out")
        return []
    out = []
    all_cats = ctx.picker.prefs(rng, n_fav=len(ctx.picker.cats))
    for i in range(ctx.cfg.n("products")):
        product = systems[(i + int(rng.integers(len(systems)))) % len(systems)]
        acct = _service(
            ctx, rng, "product", (SDK_UAS[int(rng.integers(len(SDK_UAS)))],), 2 + int(rng.integers(3))
        )
        acct.p_messages = 0.3
        n = int(rng.uniform(1200, 2800) * ctx.cfg.single_volume)
        profile = 0.45 + 0.55 * DIURNAL
        plan = plan_sessions(rng, acct, n, ctx.t0, ctx.t1, profile, 1.1, mean_session=1.3)

        def draw(r: np.random.Generator) -> tuple[Prompt, float]:
            return ctx.picker.pick(r, all_cats), 0.08

        emit_sessions(ctx, rng, acct, plan, draw, system=product.system, conv_gap=(1.0, 20.0))
        out.append(acct)
    return out


def coding_tools(ctx: Context) -> list[Account]:
    """An IDE assistant: its system prompt, code requests with context, many follow-ups.
    Coding tools switch to a new model quickly, as sweeps do."""
    rng = ctx.rng("coding_tool")
    pools = ctx.pools
    requests = list(pools.coding_requests)
    if pools.source == "data" or not requests:  # real code questions beside the sample's IDE requests
        requests += [p for p in pools.organic if p.category == "coding"]
    if not pools.coding_systems or not requests:
        log.warning("no coding-tool system prompt or requests in the corpus: the coding tool is left out")
        return []
    out = []
    for _ in range(max(1, int(round(ctx.cfg.scale)))):
        acct = _service(ctx, rng, "coding_tool", ("codepilot-ide/1.8.2 (vscode)",), 2)
        acct.p_messages = 0.6
        acct.adopt, acct.adopt_delay_h, acct.adopt_ramp_h = 0.5, float(rng.uniform(6, 30)), 24.0
        system = pools.coding_systems[int(rng.integers(len(pools.coding_systems)))]
        n = int(rng.uniform(500, 900) * ctx.cfg.single_volume)
        plan = plan_sessions(rng, acct, n, ctx.t0, ctx.t1, 0.3 + OFFICE, 0.45, mean_session=4.0)

        def draw(r: np.random.Generator) -> tuple[Prompt, float]:
            return requests[int(r.integers(len(requests)))], 0.5

        def followup(r: np.random.Generator, item: Prompt, turn: int) -> str:
            if turn < len(item.followups):
                return item.followups[turn]
            return _CODING_FOLLOWUPS[int(r.integers(len(_CODING_FOLLOWUPS)))]

        emit_sessions(ctx, rng, acct, plan, draw, followup, turn_gap=(15.0, 60.0), system=system)
        out.append(acct)
    return out


def batch_jobs(ctx: Context) -> list[Account]:
    """A nightly job: one narrow template over fresh real texts, a burst at ~02:00 local every night."""
    rng = ctx.rng("batch_job")
    pools = ctx.pools
    if not pools.batch_jobs or not pools.batch_texts:
        log.warning("no batch templates or texts: the nightly batch job is left out")
        return []
    out = []
    for _ in range(max(1, int(round(ctx.cfg.scale)))):
        acct = _service(ctx, rng, "batch_job", (SCRIPT_UAS[int(rng.integers(2))],), 1)
        acct.p_messages = 0.0
        _, template, text_kind = pools.batch_jobs[int(rng.integers(len(pools.batch_jobs)))]
        own = pools.texts_for(text_kind)
        own_set = set(own)
        others = [t for t in pools.batch_texts if t not in own_set]
        # fresh texts every night: the job's own kind first, then any other short texts
        source = [own[int(i)] for i in rng.permutation(len(own))]
        source += [others[int(i)] for i in rng.permutation(len(others))]
        pos = 0
        mean = max(3.0, 45.0 * ctx.cfg.single_volume)
        day = np.floor(ctx.t0 / 86400.0) * 86400.0
        while day < ctx.t1:
            t = day + (2.0 - acct.tz) * 3600.0 + rng.normal(0, 360)
            if rng.random() < 0.05:
                t += rng.uniform(3600, 7200)  # the job ran late
            if ctx.t0 <= t < ctx.t1 and rng.random() > 0.03:  # a missed night now and then
                for _ in range(int(rng.poisson(mean))):
                    if rng.random() < 0.03 and pos:  # a text seen before comes back
                        text = source[int(rng.integers(pos)) % len(source)]
                    else:
                        text = source[pos % len(source)]
                        pos += 1
                    ctx.writer.add(acct, t, template.replace("{text}", text))
                    t += 0.4 + rng.exponential(1.6)
            day += 86400.0
        out.append(acct)
    return out


def benchmarks(ctx: Context) -> list[Account]:
    """An evaluator runs one benchmark set once, through one CoT template, within a few hours,
    on the newly released model; a few ordinary requests before it (setting up)."""
    rng = ctx.rng("benchmark")
    source = ctx.pools.tasks.get("math_reasoning") or ctx.pools.tasks.get("cot_elicitation")
    if not source:
        log.warning("no math or CoT questions: the benchmark evaluator is left out")
        return []
    out = []
    for _ in range(max(1, int(round(ctx.cfg.scale)))):
        acct = _service(ctx, rng, "benchmark", (SCRIPT_UAS[2],), 1)
        acct.label, acct.p_messages = "benign_benchmark", 0.0
        acct.adopt, acct.adopt_delay_h, acct.adopt_ramp_h = 1.0, 0.0, 0.01
        template = BENCHMARK_TEMPLATES[int(rng.integers(len(BENCHMARK_TEMPLATES)))]
        n = min(len(source), max(40, int(300 * ctx.cfg.single_volume)))
        first = int(rng.integers(len(source) - n + 1))
        prefs = ctx.picker.prefs(rng)
        setup = plan_sessions(rng, acct, int(rng.integers(3, 11)), ctx.t0, ctx.release, DIURNAL, 1.0, 2.0)
        emit_sessions(ctx, rng, acct, setup, lambda r, prefs=prefs: (ctx.picker.pick(r, prefs), 0.2))
        lo = min(ctx.release + 86400.0, ctx.t1 - 8 * 3600.0)
        t = float(rng.uniform(lo, max(lo + 3600.0, ctx.t1 - 6 * 3600.0)))
        for item in source[first : first + n]:
            if t >= ctx.t1:
                break
            ctx.writer.add(acct, t, template.replace("{task}", item.prompt), conv_ts=t)
            t += 5.0 + rng.exponential(25.0)
        out.append(acct)
    return out
