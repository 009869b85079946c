"""A crafted store for the report tests: six weeks of traffic with known sweeps.

Weeks 2026-W42 .. 2026-W47 (W47 = 2026-11-16 .. 2026-11-22) plus a partial W48 (Monday only),
so the last *full* ISO week is W47. Cast:

* 40 organic accounts (o00..o39): a few requests a day over general_chat / coding /
  creative_writing, daytime hours.
* group G-hydra (12 accounts h00..h11, flagged): agentic_coding and tool_use through one
  template, since 2026-11-02 (W45); switches to the new model ``nova-2`` (first seen in the
  store on 2026-11-17) on 2026-11-18. Linked by template, payment and timing links.
* group G-rubric (6 accounts r00..r05, flagged): rubric_grading, new in W47 (a new cluster).
* group G-quiet (3 accounts q0..q2, NOT flagged): linked but benign.
* s-solo (flagged, no group): tool_use in W46 and W47; its evidence examples are hostile.
* bench-1 (benign_kind = benchmark, not flagged): math_reasoning, once, in W47.

Every figure the tests check is recomputed here in plain Python from the request list
(``expected``), independently of the report code.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil

import duckdb
import numpy as np
import pyarrow as pa

HOSTILE_SCRIPT = "<script>document.title='PWNED'</script>"
HOSTILE_IMG = "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"
BIDI = "\u202eexe.txt\u202c \u2066x\u2069 \u202a\u202b\u202d"
SHARED_IP = "192.168.100.170"  # its first three octets once came out as "[phone].170"
HOSTILE_PROMPTS = [
    f"Grade this answer {HOSTILE_SCRIPT} please",
    f"Rate the reply {HOSTILE_IMG} on a 1-10 scale",
    "Ignore the table | col | `code` [click](http://evil.example) ![x](http://evil.example/a.png) <b>bold</b>",
    "My email is jane.doe@example.com and my key is sk-proj-abcdefghijklmnopqrstuv123456, phone +1 415-555-0132,"
    " mobile 4155550199 or +14155550132; SSN 078051120; IBAN GB82 WEST 1234 5698 7654 32",
    "AWS AKIAIOSFODNN7EXAMPLE with Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N"
    " keys sk_live_4eC39HqLyjWDarjtT1zdp7dc rk_test_51Habcdefghijklmno hf_abcdefghijklmnopqrstuvwxyzABCDEFGH"
    f" from {SHARED_IP} and 2001:db8::8a2e:370:7334 {BIDI}",
]
SECRETS = [
    "jane.doe@example.com",
    "sk-proj-abcdefghijklmnopqrstuv123456",
    "415-555-0132",
    "AKIAIOSFODNN7EXAMPLE",
    "eyJhbGciOiJIUzI1NiJ9",
    # issue 9 item 8: addresses, unseparated phones, SSN without dashes, IBAN, Stripe/HF tokens
    SHARED_IP,
    "100.170",
    "2001:db8::8a2e:370:7334",
    "370:7334",
    "+14155550132",
    "4155550132",
    "4155550199",
    "078051120",
    "GB82 WEST 1234 5698 7654 32",
    "5698 7654",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "rk_test_51Habcdefghijklmno",
    "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH",
]
#: bidi override/isolate characters: never shown raw, redaction on or off
BIDI_CHARS = sorted(set(BIDI) - {" ", "e", "x", "t", "."})
WEEK = "2026-W47"
W47 = dt.datetime(2026, 11, 16)
START = dt.datetime(2026, 10, 12)  # Monday of W42

DDL = """
CREATE TABLE requests (request_id VARCHAR PRIMARY KEY, account_id VARCHAR NOT NULL, ts TIMESTAMP NOT NULL,
  text_id BIGINT NOT NULL, conversation_id VARCHAR, turn_index INTEGER, model VARCHAR, org_id VARCHAR,
  ip VARCHAR, asn VARCHAR, payment_id VARCHAR, user_agent VARCHAR, meta VARCHAR, source VARCHAR, line BIGINT);
CREATE TABLE texts (text_id BIGINT PRIMARY KEY, system VARCHAR, prompt VARCHAR, n_requests BIGINT);
CREATE TABLE text_map (text_id BIGINT PRIMARY KEY, cluster_id INTEGER, capability VARCHAR,
  capability_score DOUBLE, marker VARCHAR, template_id VARCHAR, map_version INTEGER);
CREATE TABLE clusters (cluster_id INTEGER, map_version INTEGER, size BIGINT, n_texts BIGINT, n_accounts BIGINT,
  top5_share DOUBLE, capability VARCHAR, keywords VARCHAR, exemplars VARCHAR, is_new BOOLEAN,
  first_seen_version INTEGER, centroid_x DOUBLE, centroid_y DOUBLE);
CREATE TABLE templates (template_id VARCHAR, skeleton VARCHAR, n_texts BIGINT, n_requests BIGINT,
  n_accounts BIGINT, popular BOOLEAN, example VARCHAR);
CREATE TABLE accounts (account_id VARCHAR, n_requests BIGINT, score DOUBLE, flagged BOOLEAN, group_id VARCHAR,
  top_capability VARCHAR, reasons VARCHAR, evidence VARCHAR, benign_kind VARCHAR, window_start TIMESTAMP,
  window_end TIMESTAMP);
CREATE TABLE groups (group_id VARCHAR, n_accounts BIGINT, n_requests BIGINT, score DOUBLE, flagged BOOLEAN,
  capabilities VARCHAR, reasons VARCHAR, members VARCHAR, evidence VARCHAR, first_seen TIMESTAMP,
  last_seen TIMESTAMP);
CREATE TABLE links (account_a VARCHAR, account_b VARCHAR, link_type VARCHAR, weight DOUBLE, detail VARCHAR);
CREATE TABLE map_points (text_id BIGINT, x DOUBLE, y DOUBLE);
CREATE TABLE score_runs (run_at TIMESTAMP, window_start TIMESTAMP, window_end TIMESTAMP, threshold DOUBLE,
  expected_fpr DOUBLE, calibration VARCHAR, n_accounts BIGINT);
"""

# area -> (cluster_id, map centre)
AREAS = {
    "general_chat": (0, (0.0, 0.0)),
    "coding": (1, (6.0, 1.0)),
    "creative_writing": (2, (-5.0, 4.0)),
    "agentic_coding": (3, (7.0, -5.0)),
    "tool_use": (4, (2.0, -7.0)),
    "rubric_grading": (5, (-6.0, -4.0)),
    "math_reasoning": (6, (-1.0, 7.0)),
}
HYDRA = [f"h{i:02d}" for i in range(12)]
RUBRIC = [f"r{i:02d}" for i in range(6)]
QUIET = [f"q{i}" for i in range(3)]
ORGANIC = [f"o{i:02d}" for i in range(40)]


class _Builder:
    def __init__(self, seed: int = 7):
        self.rng = np.random.default_rng(seed)
        self.texts: dict[str, tuple[int, str, str | None]] = {}  # prompt -> (text_id, area, template)
        self.reqs: list[dict] = []

    def text(self, prompt: str, area: str, template: str | None = None) -> int:
        if prompt not in self.texts:
            self.texts[prompt] = (1000 + len(self.texts), area, template)
        return self.texts[prompt][0]

    def req(self, account, ts, prompt, area, template=None, model="base-1", payment=None, ip=None):
        tid = self.text(prompt, area, template)
        self.reqs.append(
            dict(
                request_id=f"q{len(self.reqs):06d}",
                account_id=account,
                ts=ts,
                text_id=tid,
                model=model,
                payment_id=payment,
                ip=ip,
                area=area,
            )
        )


def build(b: _Builder) -> None:
    rng = b.rng
    organic_areas = ["general_chat", "coding", "creative_writing"]
    for day in range(42):
        d0 = START + dt.timedelta(days=day)
        for acc in ORGANIC:
            for _ in range(int(rng.integers(0, 3))):
                area = organic_areas[int(rng.integers(0, 3))]
                ts = d0 + dt.timedelta(hours=int(rng.integers(8, 22)), minutes=int(rng.integers(0, 60)))
                b.req(acc, ts, f"{area} question {int(rng.integers(0, 400))} from a person", area)
        if d0 >= dt.datetime(2026, 11, 2):  # hydra since W45
            for i, acc in enumerate(HYDRA):
                for k in range(4):
                    area = "agentic_coding" if k % 2 == 0 else "tool_use"
                    ts = d0 + dt.timedelta(hours=k * 6, minutes=i)
                    model = "nova-2" if ts >= dt.datetime(2026, 11, 18) else "base-1"
                    b.req(
                        acc,
                        ts,
                        f"Act as an autonomous agent. Task #{day}-{i}-{k}: fix the failing build",
                        area,
                        template="T-agent",
                        model=model,
                        payment="pm_shared_1",
                    )
        if d0 >= W47 + dt.timedelta(days=1):  # rubric group, new in W47
            for i, acc in enumerate(RUBRIC):
                for k in range(3):
                    ts = d0 + dt.timedelta(hours=3 + k * 7, minutes=i)
                    prompt = (
                        HOSTILE_PROMPTS[(i + k) % 2]
                        if (i == 0 and k < 2)
                        else f"Score response {day}-{i}-{k}"
                    )
                    b.req(acc, ts, prompt, "rubric_grading", template="T-rubric", ip=SHARED_IP)
        if d0 >= W47 - dt.timedelta(days=7):
            ts = d0 + dt.timedelta(hours=2)
            b.req("s-solo", ts, f"Call the weather tool for city {day}", "tool_use", template="T-tool")
        for acc in QUIET:
            b.req(acc, d0 + dt.timedelta(hours=12), f"quiet chat {day} {acc}", "general_chat")
    nova_first = dt.datetime(2026, 11, 17, 9)
    b.req("o00", nova_first, "hello nova, tell me a story", "creative_writing", model="nova-2")
    for k in range(30):  # benchmark, once
        b.req(
            "bench-1",
            W47 + dt.timedelta(days=2, minutes=k),
            f"Benchmark item {k}: compute {k}*7",
            "math_reasoning",
        )
    for i, p in enumerate(HOSTILE_PROMPTS[2:]):
        b.req("o01", W47 + dt.timedelta(days=3, hours=10 + i), p, "general_chat")
    b.req("o02", dt.datetime(2026, 11, 23, 9), "monday morning partial week", "general_chat")  # W48


def _insert(con, table: str, rows: list[dict]) -> None:
    cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
    data = {c: [r.get(c) for r in rows] for c in cols}
    arrow = pa.table(
        {c: pa.array(v) if any(x is not None for x in v) else pa.nulls(len(v)) for c, v in data.items()}
    )
    con.register("_src", arrow)
    con.execute(
        f"INSERT INTO {table} SELECT {', '.join(f'CAST({c} AS {t})' for c, t in _types(con, table))} FROM _src"
    )
    con.unregister("_src")


def _types(con, table):
    return [(r[0], r[1]) for r in con.execute(f"DESCRIBE {table}").fetchall()]


def write_store(path, with_scores: bool = True, with_map_points: bool = True) -> dict:
    b = _Builder()
    build(b)
    con = duckdb.connect(str(path))
    con.execute(DDL)
    _insert(con, "requests", [{k: v for k, v in r.items() if k != "area"} for r in b.reqs])
    counts: dict[int, int] = {}
    for r in b.reqs:
        counts[r["text_id"]] = counts.get(r["text_id"], 0) + 1
    _insert(
        con,
        "texts",
        [dict(text_id=t, system="", prompt=p, n_requests=counts[t]) for p, (t, _, _) in b.texts.items()],
    )
    _insert(
        con,
        "text_map",
        [
            dict(
                text_id=t,
                cluster_id=AREAS[a][0],
                capability=a,
                capability_score=0.8,
                template_id=tpl,
                map_version=2,
            )
            for _, (t, a, tpl) in b.texts.items()
        ],
    )
    _insert(
        con,
        "clusters",
        [
            dict(
                cluster_id=c,
                map_version=2,
                capability=a,
                keywords=f"{a},kw" + (f",{BIDI}" if a == "rubric_grading" else ""),
                exemplars=json.dumps(
                    [HOSTILE_PROMPTS[2] if a == "general_chat" else f"exemplar of {a}", HOSTILE_PROMPTS[0]]
                ),
                is_new=False,
                centroid_x=xy[0],
                centroid_y=xy[1],
            )
            for a, (c, xy) in AREAS.items()
        ],
    )
    _insert(
        con,
        "templates",
        [
            dict(
                template_id="T-agent", skeleton="Act as an autonomous agent. Task #<N>: <...>", popular=False
            ),
            dict(template_id="T-rubric", skeleton="Score response <N>"),
        ],
    )
    if with_map_points:
        rng = np.random.default_rng(3)
        _insert(
            con,
            "map_points",
            [
                dict(
                    text_id=t, x=AREAS[a][1][0] + float(rng.normal()), y=AREAS[a][1][1] + float(rng.normal())
                )
                for _, (t, a, _) in b.texts.items()
            ],
        )
    exp = expected(b)
    if with_scores:
        _write_scores(con, b, exp)
    con.close()
    return exp


def _write_scores(con, b: _Builder, exp: dict) -> None:
    win = dict(window_start=START, window_end=dt.datetime(2026, 11, 22, 23, 59))
    n_by_acc = exp["requests_by_account_all"]
    ev_h = dict(examples=["Act as an autonomous agent. Task #1: fix it"], templates=[["T-agent", 500]])
    rows = []
    for acc in n_by_acc:
        row = dict(
            account_id=acc,
            n_requests=n_by_acc[acc],
            score=0.1,
            flagged=False,
            top_capability="general_chat",
            reasons="organic",
            evidence=json.dumps({}),
            **win,
        )
        if acc in HYDRA:
            row.update(
                score=0.9,
                flagged=True,
                group_id="G-hydra",
                top_capability="agentic_coding",
                reasons="one template; 12 linked accounts",
                evidence=json.dumps(ev_h),
            )
        elif acc in RUBRIC:
            row.update(score=0.5, flagged=False, group_id="G-rubric", top_capability="rubric_grading")
        elif acc in QUIET:
            row.update(group_id="G-quiet")
        elif acc == "s-solo":
            ev = dict(examples=HOSTILE_PROMPTS[2:], drivers=[["template_share", 0.4]])
            row.update(
                score=0.8,
                flagged=True,
                top_capability="tool_use",
                reasons=f"single template {HOSTILE_SCRIPT} {BIDI} via {SHARED_IP}",
                evidence=json.dumps(ev),
            )
        elif acc == "bench-1":
            row.update(
                score=0.3,
                benign_kind="benchmark",
                top_capability="math_reasoning",
                reasons="one-off benchmark",
            )
        rows.append(row)
    _insert(con, "accounts", rows)
    gev = dict(link_types={"template": 5}, timeline=[["2026-11-02", 48]], pivots=[])
    _insert(
        con,
        "groups",
        [
            dict(
                group_id="G-hydra",
                n_accounts=12,
                n_requests=sum(n_by_acc[a] for a in HYDRA),
                score=0.9,
                flagged=True,
                capabilities="agentic_coding,tool_use",
                reasons="shared template and payment",
                members=json.dumps(HYDRA),
                evidence=json.dumps(gev),
                first_seen=dt.datetime(2026, 11, 2),
                last_seen=dt.datetime(2026, 11, 22),
            ),
            dict(
                group_id="G-rubric",
                n_accounts=6,
                n_requests=0,
                score=0.7,
                flagged=True,
                capabilities='["rubric_grading"]',
                reasons=f"shared ip {SHARED_IP}",
                members=json.dumps(RUBRIC),
                evidence=json.dumps({"pivots": []}),
            ),
            dict(
                group_id="G-quiet",
                n_accounts=3,
                n_requests=0,
                score=0.2,
                flagged=False,
                capabilities="general_chat",
                reasons="",
                members=json.dumps(QUIET),
                evidence="{}",
            ),
        ],
    )
    links = [
        dict(account_a=HYDRA[i], account_b=HYDRA[i + 1], link_type="template", weight=1.0, detail="T-agent")
        for i in range(11)
    ]
    links += [
        dict(account_a=HYDRA[0], account_b=HYDRA[i], link_type="payment", weight=1.0, detail="pm_shared_1")
        for i in range(1, 12)
    ]
    links += [dict(account_a=HYDRA[0], account_b=HYDRA[1], link_type="timing", weight=0.5, detail="")]
    links += [
        dict(account_a=RUBRIC[0], account_b=RUBRIC[i], link_type="ip", weight=1.0, detail=SHARED_IP)
        for i in range(1, 6)
    ]
    links += [dict(account_a=QUIET[0], account_b=QUIET[1], link_type="asn", weight=1.0, detail="AS1")]
    _insert(con, "links", links)
    _insert(
        con,
        "score_runs",
        [
            dict(
                run_at=dt.datetime(2026, 11, 23, 1),
                threshold=0.62,
                expected_fpr=0.01,
                calibration="99th percentile of organic-only scores",
                n_accounts=70,
                **win,
            )
        ],
    )


def expected(b: _Builder) -> dict:
    """Figures recomputed from the raw request list."""

    def week_label(ts):
        y, w, _ = ts.isocalendar()
        return f"{y}-W{w:02d}"

    flagged = set(HYDRA) | set(RUBRIC) | {"s-solo"}
    area_week: dict[tuple[str, str], int] = {}
    area_week_fl: dict[tuple[str, str], int] = {}
    week_req: dict[str, int] = {}
    week_acc: dict[str, set] = {}
    week_fl_acc: dict[str, set] = {}
    by_acc: dict[str, int] = {}
    w47_texts, w47_flagged_texts = set(), set()
    group_week = {"G-hydra": 0, "G-rubric": 0}
    for r in b.reqs:
        if week_label(r["ts"]) == WEEK:
            w47_texts.add(r["text_id"])
            if r["account_id"] in flagged:
                w47_flagged_texts.add(r["text_id"])
            if r["account_id"] in HYDRA:
                group_week["G-hydra"] += 1
            if r["account_id"] in RUBRIC:
                group_week["G-rubric"] += 1
        w = week_label(r["ts"])
        key = (r["area"], w)
        area_week[key] = area_week.get(key, 0) + 1
        if r["account_id"] in flagged:
            area_week_fl[key] = area_week_fl.get(key, 0) + 1
            week_fl_acc.setdefault(w, set()).add(r["account_id"])
        week_req[w] = week_req.get(w, 0) + 1
        week_acc.setdefault(w, set()).add(r["account_id"])
        by_acc[r["account_id"]] = by_acc.get(r["account_id"], 0) + 1
    return dict(
        area_week=area_week,
        area_week_flagged=area_week_fl,
        week_requests=week_req,
        week_accounts={w: len(s) for w, s in week_acc.items()},
        week_flagged_accounts={w: len(s) for w, s in week_fl_acc.items()},
        requests_by_account_all=by_acc,
        n_texts=len(b.texts),
        w47_texts=w47_texts,
        w47_flagged_texts=w47_flagged_texts,
        group_week=group_week,
    )


DUP_EXAMPLE = "Act as an autonomous agent. Task #1: fix it"


def with_duplicate_examples(src, dst) -> None:
    """Copy the store at ``src`` to ``dst`` and give G-hydra what once showed one prompt three times.

    The score run's group evidence holds the same example three times (the detector picks
    distinct text ids, and one prompt sent with different system prompts is several texts), and
    the group's tool_use traffic gets its own template ``T-tool``: two templates, two areas.
    """
    shutil.copy(src, dst)
    con = duckdb.connect(str(dst))
    try:
        ev = json.loads(con.execute("SELECT evidence FROM groups WHERE group_id = 'G-hydra'").fetchone()[0])
        ev["examples"] = [DUP_EXAMPLE] * 3
        con.execute("UPDATE groups SET evidence = ? WHERE group_id = 'G-hydra'", [json.dumps(ev)])
        con.execute(
            "UPDATE text_map SET template_id = 'T-tool' WHERE template_id = 'T-agent' AND capability = 'tool_use'"
        )
        con.execute(
            "INSERT INTO templates (template_id, skeleton, popular) VALUES "
            "('T-tool', 'Act as an autonomous agent. Task #<N>: call the <tool> tool and report', false)"
        )
    finally:
        con.close()
