"""Synthetic request frames for the detector tests: clustered random unit vectors, no model.

The prompt space: each capability area has a centre and ``n_topics`` topic centres around it;
a prompt is its topic centre plus noise (two prompts of one topic have cosine ~0.6, of one
area ~0.3, of different areas ~0). Account behaviours are built from what the design says
each kind of traffic is (see promptcov/coverage/scoring.py): organic people, sweeps, hydra
groups and the hard negatives (product, coding tool, nightly batch job, power user, benchmark).
"""

from __future__ import annotations

import numpy as np

from promptcov.coverage.frame import RequestFrame

AREAS = [
    "agentic_coding",
    "tool_use",
    "coding",
    "rubric_grading",
    "cot_elicitation",
    "censorship_rewrite",
    "computer_vision",
    "data_analysis",
    "math_reasoning",
    "creative_writing",
    "general_chat",
    "other",
]
ORGANIC_AREAS = {
    "general_chat": 0.35,
    "creative_writing": 0.15,
    "coding": 0.15,
    "other": 0.1,
    "math_reasoning": 0.07,
    "data_analysis": 0.06,
    "tool_use": 0.04,
    "computer_vision": 0.03,
    "agentic_coding": 0.03,
    "rubric_grading": 0.01,
    "cot_elicitation": 0.005,
    "censorship_rewrite": 0.005,
}
DAY = 86400.0
START = 1_763_251_200.0  # a Monday 00:00 UTC


class SynthWorld:
    """Accumulates requests, then builds a :class:`RequestFrame`."""

    def __init__(self, seed: int = 0, dim: int = 64, n_topics: int = 8, days: int = 14):
        self.rng = np.random.default_rng(seed)
        self.dim, self.n_topics, self.days = dim, n_topics, days
        centres = self._unit(self.rng.normal(size=(len(AREAS), dim)))
        self.topics = self._unit(
            centres[:, None, :] + self._unit(self.rng.normal(size=(len(AREAS), n_topics, dim)))
        )
        self.rows: list[dict] = []
        self.vecs: list[np.ndarray] = []

    @staticmethod
    def _unit(x: np.ndarray) -> np.ndarray:
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    def vec(self, area: str, topic: int, spread: float = 0.8) -> np.ndarray:
        noise = self.rng.normal(size=self.dim) / np.sqrt(self.dim)
        return self._unit(self.topics[AREAS.index(area), topic] + spread * noise)

    def add(self, account: str, ts: float, area: str, vec: np.ndarray, **fields) -> None:
        topic_cluster = int(np.argmax(self.topics.reshape(-1, self.dim) @ vec))
        row = {
            "account_id": account,
            "ts": float(ts),
            "capability": area,
            "cluster_id": topic_cluster,
            "vec_row": len(self.vecs),
            "text_id": len(self.vecs),
        }
        row.update(fields)
        self.rows.append(row)
        self.vecs.append(vec.astype(np.float32))

    # ---- timing -------------------------------------------------------------------------
    def human_times(self, n: int, tz: float | None = None) -> np.ndarray:
        """Diurnal: waking hours 8-23 local, in sessions."""
        tz = self.rng.uniform(0, 24) if tz is None else tz
        n_sessions = max(1, n // 6)
        days = self.rng.integers(0, self.days, n_sessions)
        hours = self.rng.uniform(8, 23, n_sessions)
        session_start = START + days * DAY + ((hours - tz) % 24) * 3600
        which = self.rng.integers(0, n_sessions, n)
        return np.sort(session_start[which] + self.rng.uniform(0, 1800, n))

    def flat_times(self, n: int, days: float | None = None, start: float = START) -> np.ndarray:
        span = (self.days if days is None else days) * DAY
        return np.sort(start + self.rng.uniform(0, span, n))

    def product_times(self, n: int) -> np.ndarray:
        """Many people behind one key: round the clock but following the day."""
        t = self.rng.uniform(0, self.days * DAY, 4 * n)
        keep = self.rng.random(4 * n) < (1 + 0.8 * np.cos(2 * np.pi * (t / 3600 - 15) / 24)) / 1.8
        return np.sort(START + t[keep][:n])

    # ---- behaviours -----------------------------------------------------------------------
    def organic(
        self,
        account: str,
        n: int,
        followup_p: float = 0.3,
        areas: dict | None = None,
        popular_p: float = 0.05,
        times: np.ndarray | None = None,
    ) -> None:
        areas = ORGANIC_AREAS if areas is None else areas
        names = list(areas)
        p = np.array([areas[a] for a in names]) / sum(areas.values())
        favourites = [
            (names[i], int(self.rng.integers(self.n_topics))) for i in self.rng.choice(len(names), 3, p=p)
        ]
        ts = self.human_times(n) if times is None else times
        prev, conv, turn = None, 0, 0
        for i in range(n):
            if prev is not None and self.rng.random() < followup_p:
                area, v = (
                    prev[0],
                    self._unit(prev[1] + 0.2 * self.rng.normal(size=self.dim) / np.sqrt(self.dim)),
                )
                turn += 1
            else:
                conv, turn = conv + 1, 0
                area, topic = (
                    favourites[self.rng.integers(3)]
                    if self.rng.random() < 0.5
                    else (names[self.rng.choice(len(names), p=p)], int(self.rng.integers(self.n_topics)))
                )
                v = self.vec(area, topic)
            pop = self.rng.random() < popular_p and turn == 0
            self.add(
                account,
                ts[i],
                area,
                v,
                turn_index=turn,
                conversation_id=f"{account}-c{conv}",
                template_id="pop-act-as" if pop else None,
                template_popular=pop,
            )
            prev = (area, v)

    def sweep(
        self,
        account: str,
        n: int,
        areas: list[str],
        templates: list[str],
        times: np.ndarray | None = None,
        template_p: float = 0.9,
        cot_marker: bool = False,
        **fields,
    ) -> None:
        ts = self.flat_times(n) if times is None else times
        for i in range(n):
            area = areas[i % len(areas)]
            tmpl = templates[i % len(templates)] if self.rng.random() < template_p else None
            marker = "cot_elicitation" if cot_marker else None
            self.add(
                account,
                ts[i],
                area,
                self.vec(area, int(self.rng.integers(self.n_topics))),
                template_id=tmpl,
                turn_index=0,
                conversation_id=f"{account}-s{i}",
                marker=marker,
                **fields,
            )

    def frame(self) -> RequestFrame:
        cols: dict[str, list] = {}
        keys = sorted({k for r in self.rows for k in r})
        for key in keys:
            default = {"turn_index": -1, "template_popular": False, "cluster_id": -1}.get(key)
            cols[key] = [r.get(key, default) for r in self.rows]
        prompts = {r["text_id"]: f"synthetic {r['capability']} prompt #{r['text_id']}" for r in self.rows}
        return RequestFrame.from_columns(cols, vectors=np.stack(self.vecs), prompts=prompts)


def organic_population(world: SynthWorld, n_accounts: int = 200, prefix: str = "org") -> None:
    """Ordinary accounts: log-normal volumes (median ~12), diurnal, follow-ups, long tail."""
    volumes = np.clip(np.round(world.rng.lognormal(np.log(12), 1.0, n_accounts)), 1, 400).astype(int)
    for i, n in enumerate(volumes):
        world.organic(f"{prefix}-{i:04d}", int(n), followup_p=float(world.rng.uniform(0.1, 0.45)))


def add_product(world: SynthWorld, account: str = "product", n: int = 2500) -> None:
    """A support/tutoring product: many end users' varied questions, one key, round the clock."""
    world.organic(
        account,
        n,
        followup_p=0.35,
        times=world.product_times(n),
        areas={"general_chat": 0.6, "math_reasoning": 0.2, "other": 0.2},
        popular_p=0.0,
    )


def add_coding_tool(world: SynthWorld, account: str = "ide-tool", n: int = 1200) -> None:
    """An IDE assistant: coding requests with follow-ups, many developers, round the clock."""
    world.organic(
        account,
        n,
        followup_p=0.4,
        times=world.product_times(n),
        areas={"coding": 0.7, "agentic_coding": 0.3},
        popular_p=0.0,
    )


def add_batch_job(
    world: SynthWorld, account: str = "nightly", per_night: int = 150, area: str = "other", topic: int = 0
) -> None:
    """One narrow template over real texts, 02:00-03:00 UTC every night, no follow-ups."""
    for d in range(world.days):
        ts = np.sort(START + d * DAY + 2 * 3600 + world.rng.uniform(0, 3600, per_night))
        for t in ts:
            world.add(
                account,
                t,
                area,
                world.vec(area, topic, spread=1.0),
                template_id=f"{account}-tmpl",
                turn_index=0,
                conversation_id=None,
            )


def add_power_user(world: SynthWorld, account: str = "power", n: int = 400) -> None:
    """Hundreds of varied requests across many areas, diurnal, with follow-ups."""
    world.organic(
        account,
        n,
        followup_p=0.25,
        areas={a: 1.0 for a in AREAS if a not in ("rubric_grading", "censorship_rewrite")},
    )


def add_benchmark(
    world: SynthWorld, account: str = "evaluator", n: int = 400, area: str = "math_reasoning"
) -> None:
    """One template over a task set, run once within three hours."""
    world.sweep(
        account,
        n,
        [area],
        [f"{account}-bench"],
        times=world.flat_times(n, days=3 / 24, start=START + 3 * DAY),
        template_p=1.0,
    )


def add_hydra(
    world: SynthWorld,
    prefix: str = "hydra",
    n_accounts: int = 24,
    per_account: int = 25,
    areas: tuple[str, ...] = ("cot_elicitation", "rubric_grading"),
) -> dict[str, list[str]]:
    """Low-volume accounts running one campaign together; returns {group_id: members}."""
    members = [f"{prefix}-{i:02d}" for i in range(n_accounts)]
    ts = world.flat_times(n_accounts * per_account, days=5, start=START + 4 * DAY)
    for i, m in enumerate(members):
        world.sweep(
            m,
            per_account,
            list(areas),
            [f"{prefix}-t1", f"{prefix}-t2"],
            times=ts[i::n_accounts],
            cot_marker=True,
            payment_id=f"{prefix}-card-{i % 3}",
        )
    return {f"G-{prefix}": members}
