"""Ordinary customers: the organic population, small teams, power users and proxy customers.

Organic volume is heavy-tailed (most accounts send a handful of requests over the period, a few
send hundreds), follows each person's waking hours and week, wanders over a long tail of topics,
and has follow-up turns. Teams (2-6 colleagues sharing org, payment instrument and office IP) and
VPN customers who share a fraud ring's proxy addresses are labelled hard negatives: they look
linked on the network side but their prompts are ordinary.
"""

from __future__ import annotations

import numpy as np

from promptcov.simulate.corpus import Prompt
from promptcov.simulate.identity import Account, pick_tz, pick_user_agents
from promptcov.simulate.timing import DIURNAL, OFFICE
from promptcov.simulate.traffic import Context, Prefs, emit_sessions, plan_sessions

__all__ = ["organic_accounts", "proxy_customers", "teams", "power_users", "organic_volume"]

_P_MESSAGES = np.array([0.0, 0.15, 0.5, 0.9])
_P_MESSAGES_W = np.array([0.35, 0.25, 0.2, 0.2])


def organic_volume(rng: np.random.Generator, volume: float) -> int:
    """Requests over the period for one ordinary account: lognormal, median ~6, a few hundreds."""
    return int(np.clip(round(rng.lognormal(np.log(6.0), 1.25) * volume), 1, 450))


def _person(ctx: Context, rng: np.random.Generator, label: str, kind: str) -> Account:
    ids = ctx.ids
    n_ips = 1 if rng.random() < 0.7 else 2 + int(rng.integers(2))
    acct = Account(
        account_id=ids.account(),
        label=label,
        kind=kind,
        org_id=ids.org(),
        payment_id=ids.payment(),
        ips=[ids.residential() for _ in range(n_ips)],
        ip_weights=[0.7] + [0.3 / max(1, n_ips - 1)] * (n_ips - 1),
        user_agents=pick_user_agents(rng, (0.5, 0.25, 0.25)),
        tz=pick_tz(rng),
        p_messages=float(_P_MESSAGES[rng.choice(4, p=_P_MESSAGES_W)]),
    )
    if rng.random() < 0.55:  # adopts the new model gradually
        acct.adopt = float(rng.uniform(0.1, 0.3))
        acct.adopt_delay_h = float(rng.uniform(0, 72))
        acct.adopt_ramp_h = float(rng.uniform(48, 168))
    if rng.random() < 0.2:  # signed up during the period
        acct.start = float(rng.uniform(ctx.t0, ctx.t1 - 2 * 86400))
    if rng.random() < 0.1:  # stopped using the API
        acct.stop = float(rng.uniform(max(acct.start, ctx.t0) + 86400, ctx.t1))
    return acct


def _organic_draw(ctx: Context, prefs: Prefs, p_follow: float):
    def draw(rng: np.random.Generator) -> tuple[Prompt, float]:
        return ctx.picker.pick(rng, prefs), p_follow

    return draw


def organic_accounts(ctx: Context) -> list[Account]:
    """The ordinary population (label ``organic``)."""
    rng = ctx.rng("organic")
    out = []
    for _ in range(ctx.cfg.n("organic_accounts")):
        acct = _person(ctx, rng, "organic", "organic")
        prefs = ctx.picker.prefs(rng)
        n = organic_volume(rng, ctx.cfg.volume)
        weekend = float(rng.uniform(0.5, 1.4))
        plan = plan_sessions(rng, acct, n, ctx.t0, ctx.t1, DIURNAL, weekend, mean_session=2.5)
        emit_sessions(ctx, rng, acct, plan, _organic_draw(ctx, prefs, float(rng.uniform(0.2, 0.5))))
        out.append(acct)
    return out


def proxy_customers(ctx: Context, pool: list[tuple[str, int]]) -> list[Account]:
    """Ordinary users of a VPN / proxy service whose exit addresses a fraud ring also uses."""
    rng = ctx.rng("proxy_customers")
    n = max(3, int(round(0.06 * ctx.cfg.n("organic_accounts"))))
    out = []
    for _ in range(n):
        acct = _person(ctx, rng, "hard_negative", "proxy_customer")
        k = 2 + int(rng.integers(3))
        picks = rng.choice(len(pool), size=min(k, len(pool)), replace=False)
        acct.ips = [pool[int(i)] for i in picks] + (acct.ips[:1] if rng.random() < 0.3 else [])
        acct.ip_weights = None
        prefs = ctx.picker.prefs(rng)
        vol = max(3, organic_volume(rng, ctx.cfg.volume * 2.0))
        plan = plan_sessions(rng, acct, vol, ctx.t0, ctx.t1, DIURNAL, float(rng.uniform(0.6, 1.3)), 2.5)
        emit_sessions(ctx, rng, acct, plan, _organic_draw(ctx, prefs, 0.35))
        out.append(acct)
    return out


def teams(ctx: Context) -> list[Account]:
    """Small companies: colleagues sharing org id, one payment instrument and the office IP.

    Half of the teams also share an internal prompt template (a batch template applied to real
    texts now and then) -- a legitimate shared template across linked accounts.
    """
    rng = ctx.rng("teams")
    pools = ctx.pools
    out = []
    for _ in range(ctx.cfg.n("teams")):
        org, pay = ctx.ids.org(), ctx.ids.payment()
        office = ctx.ids.residential(p_v6=0.0)
        tz = pick_tz(rng)
        focus = ctx.picker.cats[int(rng.integers(len(ctx.picker.cats)))]
        template, team_texts = None, pools.batch_texts
        if pools.batch_jobs and pools.batch_texts and rng.random() < 0.5:
            _, template, text_kind = pools.batch_jobs[int(rng.integers(len(pools.batch_jobs)))]
            team_texts = pools.texts_for(text_kind)
        for _ in range(2 + int(rng.integers(5))):
            acct = _person(ctx, rng, "hard_negative", "team")
            acct.org_id, acct.payment_id, acct.tz = org, pay, tz
            acct.ips = [office] + acct.ips[:1]
            acct.ip_weights = [0.8, 0.2][: len(acct.ips)]
            acct.start, acct.stop = ctx.t0, float("inf")
            prefs = ctx.picker.prefs(rng, focus=focus)
            base = _organic_draw(ctx, prefs, 0.4)

            def draw(
                r: np.random.Generator, base=base, template=template, texts=team_texts
            ) -> tuple[Prompt, float]:
                if template is not None and r.random() < 0.15:
                    text = texts[int(r.integers(len(texts)))]
                    return Prompt(template.replace("{text}", text), "team_template"), 0.1
                return base(r)

            n = int(np.clip(round(rng.lognormal(np.log(20.0), 0.8) * ctx.cfg.volume), 2, 300))
            plan = plan_sessions(rng, acct, n, ctx.t0, ctx.t1, OFFICE, 0.15, mean_session=3.0)
            emit_sessions(ctx, rng, acct, plan, draw)
            out.append(acct)
    return out


def power_users(ctx: Context) -> list[Account]:
    """Enthusiasts with hundreds of varied requests over many topics, quick to try new models."""
    rng = ctx.rng("power_users")
    out = []
    for _ in range(ctx.cfg.n("power_users")):
        acct = _person(ctx, rng, "hard_negative", "power_user")
        acct.start, acct.stop = ctx.t0, float("inf")
        acct.user_agents = pick_user_agents(rng, (0.5, 0.1, 0.4), k_max=3)
        acct.adopt = float(rng.uniform(0.3, 0.6))
        acct.adopt_delay_h, acct.adopt_ramp_h = float(rng.uniform(1, 24)), float(rng.uniform(6, 48))
        prefs = ctx.picker.prefs(rng, n_fav=min(5, len(ctx.picker.cats)))
        n = int(rng.uniform(250, 600) * ctx.cfg.account_volume)
        plan = plan_sessions(rng, acct, n, ctx.t0, ctx.t1, DIURNAL, float(rng.uniform(0.8, 1.5)), 5.0)
        emit_sessions(ctx, rng, acct, plan, _organic_draw(ctx, prefs, 0.5))
        out.append(acct)
    return out
