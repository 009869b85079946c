"""Who sends the requests: accounts, their networks, payment instruments, clients and time zones.

Organic users sit on residential ISPs (a unique address each, but a big ISP's ASN is shared by
thousands), products and scripts on cloud ASNs, fraud rings behind proxy pools that ordinary VPN
customers also use. Ids are opaque random strings so that nothing in an id leaks its label.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Account",
    "IdFactory",
    "RESIDENTIAL_ASNS",
    "DATACENTER_ASNS",
    "PROXY_ASNS",
    "BROWSER_UAS",
    "SCRIPT_UAS",
    "SDK_UAS",
    "pick_tz",
    "pick_user_agents",
]

# Public ASNs with a made-up first octet each (addresses are synthetic; only the sharing pattern matters).
RESIDENTIAL_ASNS: tuple[tuple[int, int], ...] = (
    (7922, 73), (7018, 99), (701, 71), (20115, 24), (3320, 91), (2856, 86), (3215, 90), (12322, 82),
    (6830, 84), (4766, 121), (17676, 126), (55836, 49), (28573, 177), (1221, 101), (9808, 112), (4134, 116),
)  # fmt: skip
RESIDENTIAL_WEIGHTS = np.array([12, 10, 8, 8, 7, 5, 5, 4, 4, 4, 4, 6, 3, 3, 6, 7], dtype=float)
DATACENTER_ASNS: tuple[tuple[int, int], ...] = (
    (16509, 52), (14618, 54), (15169, 34), (8075, 20), (14061, 167), (24940, 88), (16276, 51),
    (63949, 172), (45102, 47), (132203, 43), (20473, 45),
)  # fmt: skip
PROXY_ASNS: tuple[tuple[int, int], ...] = ((9009, 185), (212238, 194), (60068, 156))

BROWSER_UAS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
)
SCRIPT_UAS = (
    "python-requests/2.32.3",
    "python-requests/2.31.0",
    "python-httpx/0.27.2",
    "curl/8.5.0",
    "Go-http-client/2.0",
    "okhttp/4.12.0",
    "PostmanRuntime/7.42.0",
    "axios/1.7.7",
)
SDK_UAS = (
    "claude-python/0.39.0",
    "claude-python/0.37.1",
    "claude-typescript/0.32.1",
    "claude-typescript/0.30.0",
    "langchain-claude/0.3.0",
    "claude-go/0.2.1",
    "litellm/1.52.6",
)

#: (UTC offset in hours, weight): where ordinary users live.
_TZ = ((-8, 12), (-7, 4), (-6, 6), (-5, 15), (-3, 5), (0, 8), (1, 15), (2, 5), (3, 4), (5.5, 7), (7, 3), (8, 10),
       (9, 6), (10, 3))  # fmt: skip
_TZ_OFF = np.array([t for t, _ in _TZ], dtype=float)
_TZ_W = np.array([w for _, w in _TZ], dtype=float) / sum(w for _, w in _TZ)


def pick_tz(rng: np.random.Generator) -> float:
    """A home time zone (UTC offset in hours), weighted by where users are."""
    return float(_TZ_OFF[rng.choice(len(_TZ_OFF), p=_TZ_W)])


def pick_user_agents(
    rng: np.random.Generator, mix: tuple[float, float, float], k_max: int = 2
) -> tuple[str, ...]:
    """One to ``k_max`` client user agents drawn from (browser, script, SDK) with weights ``mix``."""
    k = 1 + int(rng.integers(k_max))
    out = []
    for _ in range(k):
        fam = (BROWSER_UAS, SCRIPT_UAS, SDK_UAS)[rng.choice(3, p=np.asarray(mix) / sum(mix))]
        out.append(fam[int(rng.integers(len(fam)))])
    return tuple(dict.fromkeys(out))


@dataclass
class Account:
    """One API account and the ground truth about it.

    ``ips`` are (address, asn) pairs; ``ip_weights`` how often each is used. ``p_messages`` is how
    often the client sends the whole conversation in the ``messages`` shape. ``adopt`` is the share
    of traffic that goes to the new model once adoption has ramped up (``adopt_delay_h`` after the
    release, over ``adopt_ramp_h`` hours).
    """

    account_id: str
    label: str
    kind: str
    campaign: str = ""
    org_id: str = ""
    payment_id: str = ""
    ips: list[tuple[str, int]] = field(default_factory=list)
    ip_weights: list[float] | None = None
    user_agents: tuple[str, ...] = ()
    tz: float = 0.0
    p_messages: float = 0.3
    adopt: float = 0.0
    adopt_delay_h: float = 24.0
    adopt_ramp_h: float = 96.0
    start: float = 0.0
    stop: float = float("inf")

    def pick_ip(self, rng: np.random.Generator) -> tuple[str, int] | None:
        if not self.ips:
            return None
        if self.ip_weights is None or len(self.ip_weights) != len(self.ips):
            return self.ips[int(rng.integers(len(self.ips)))]
        w = np.asarray(self.ip_weights, dtype=float)
        return self.ips[int(rng.choice(len(self.ips), p=w / w.sum()))]

    def pick_ua(self, rng: np.random.Generator) -> str | None:
        if not self.user_agents:
            return None
        if len(self.user_agents) == 1 or rng.random() < 0.8:
            return self.user_agents[0]
        return self.user_agents[int(rng.integers(1, len(self.user_agents)))]


class IdFactory:
    """Opaque, unique, deterministic ids and network addresses."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._seen: set[str] = set()

    def _unique(self, prefix: str, nbytes: int) -> str:
        while True:
            val = f"{prefix}{self.rng.bytes(nbytes).hex()}"
            if val not in self._seen:
                self._seen.add(val)
                return val

    def account(self) -> str:
        return self._unique("acct_", 6)

    def org(self) -> str:
        return self._unique("org_", 5)

    def payment(self) -> str:
        return self._unique("pm_", 8)

    def ip(self, first_octet: int, v6: bool = False) -> str:
        while True:
            if v6:
                groups = self.rng.integers(0, 65536, size=6)
                val = f"2a0{first_octet % 10}:{first_octet:x}00:" + ":".join(f"{g:x}" for g in groups)
            else:
                rest = self.rng.integers(0, 256, size=3)
                val = f"{first_octet}.{rest[0]}.{rest[1]}.{1 + int(rest[2]) % 254}"
            if val not in self._seen:
                self._seen.add(val)
                return val

    def residential(self, p_v6: float = 0.15) -> tuple[str, int]:
        i = int(self.rng.choice(len(RESIDENTIAL_ASNS), p=RESIDENTIAL_WEIGHTS / RESIDENTIAL_WEIGHTS.sum()))
        asn, octet = RESIDENTIAL_ASNS[i]
        return self.ip(octet, v6=bool(self.rng.random() < p_v6)), asn

    def datacenter(self, asns: tuple[tuple[int, int], ...] = DATACENTER_ASNS) -> tuple[str, int]:
        asn, octet = asns[int(self.rng.integers(len(asns)))]
        return self.ip(octet), asn
