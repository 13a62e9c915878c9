"""A generated topology of any size, for benchmarks and scale tests.

A central site holds the duplexed router and logger, two Administrator &
Data Servers with HDS and two Administration/RT/HDS/DDS servers; the rest
are PG pairs and Unified CMs (one per ten PG pairs, in a voice domain).
Every fifth PG pair sits at a remote site behind NAT, each PG with its own
static NAT address.
"""

from __future__ import annotations

import ipaddress
from typing import Any

__all__ = ["synthetic_topology"]

_FIXED = 8  # router A/B, logger A/B, 2 aw-hds, 2 admin-rt-hds-dds


def _addr(net: str, index: int) -> str:
    return str(ipaddress.ip_network(net)[index + 10])


def synthetic_topology(servers: int, profile: str = "modern") -> dict[str, Any]:
    """A topology document (as parsed TOML) with exactly ``servers`` servers (>= 10)."""
    if servers < 10:
        raise ValueError("a synthetic topology has at least 10 servers")
    rest = servers - _FIXED
    ucms = max(1, rest // 21)
    pairs = (rest - ucms) // 2
    ucms = rest - 2 * pairs  # absorbs an odd server
    doc: dict[str, Any] = {
        "deployment": {"name": f"synthetic-{servers}", "domain": "icm.example.com",
                       "profile": profile},
        "site": [{"name": "central", "gateway": "203.0.113.1", "subnets": ["10.0.0.0/8"]}],
        "server": [],
    }
    srv: list[dict[str, Any]] = doc["server"]
    for role, prefix in (("router", "rtr"), ("logger", "lgr")):
        for side in "AB":
            n = len(srv)
            srv.append({"name": f"{prefix}-{side.lower()}", "role": role, "side": side,
                        "site": "central", "visible": _addr("10.1.0.0/16", n),
                        "private": _addr("10.2.0.0/16", n)})
    for role, prefix in (("aw-hds", "aw"), ("admin-rt-hds-dds", "adm")):
        for tier in ("primary", "secondary"):
            srv.append({"name": f"{prefix}-{tier}", "role": role, "tier": tier,
                        "site": "central", "visible": _addr("10.1.0.0/16", len(srv))})
    for u in range(ucms):
        srv.append({"name": f"ucm-{u}", "role": "unified-cm", "tier": "primary",
                    "site": "central", "visible": _addr("10.3.0.0/16", u),
                    "domain": "voice.example.com"})
    for p in range(pairs):
        remote = p % 5 == 4
        site = "central"
        if remote:
            site = f"remote-{p // 5}"
            doc["site"].append({"name": site, "behind_nat": True,
                                "public_address": _addr("198.18.0.0/15", 2 * p),
                                "gateway": _addr("198.18.0.0/15", 2 * p),
                                "subnets": [f"192.168.{p % 250}.0/24"]})
        for i, side in enumerate("AB"):
            k = 2 * p + i
            entry: dict[str, Any] = {
                "name": f"pg{p}-{side.lower()}", "role": "pg", "side": side, "pair": f"pg{p}",
                "site": site, "visible": _addr("10.4.0.0/16", k),
                "private": _addr("10.5.0.0/16", k), "unified_cm": f"ucm-{p % ucms}"}
            if remote and side == "B":  # side A uses the site's address, B a static NAT
                entry["nat_address"] = _addr("198.18.0.0/15", 2 * p + 1)
            srv.append(entry)
    return doc
