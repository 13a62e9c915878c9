"""SPD lookup cost at 10, 1,000 and 50,000 filters (issue 2: within 3x of 10).

The policies look like what the planner produces for one server: a mirrored
``me <-> peer`` filter per path (some restricted to a tcp service port, a few
IPv6), a handful of subnet filters, IKE and ICMP filters to ``any`` and a
catch-all.  Every size has the same filter shapes, so the index is the same
shape at every size and only the table sizes grow.  The packets mix hits on
host pairs in both directions, subnet hits and misses that fall to ``any``.

Printed: lookups per second (best of several runs), cost relative to the
10-filter case, and — for contrast — a first-match linear scan over the same
compiled entries in the same order.  Also the compile and find_conflicts
times.  Run: ``.venv/bin/python bench/bench_spd.py``.
"""

from __future__ import annotations

import ipaddress
import random
import time
from pathlib import Path

from secpath.policy.model import (
    ANY_PORT,
    Address,
    AddressKind,
    Behavior,
    Filter,
    FilterAction,
    FilterList,
    IpAddress,
    KeyExchange,
    Local,
    Policy,
    PortRange,
    PskAuth,
    Rule,
    SecurityMethod,
)
from secpath.policy.spd import Direction, Spd, SpdEntry
from secpath.policy.spd_conflicts import find_conflicts

SIZES = (10, 1_000, 50_000)
LOOKUPS = 20_000
RUNS = 5
LINEAR_LOOKUPS = {10: 20_000, 1_000: 1_000, 50_000: 30}
LOCAL4 = ipaddress.IPv4Address("10.0.0.1")
LOCAL6 = ipaddress.IPv6Address("2001:db8::1")
SECURE = FilterAction("secure", Behavior.NEGOTIATE, (SecurityMethod("aes128gcm", "none"),))
PERMIT = FilterAction("permit", Behavior.PERMIT)
BLOCK = FilterAction("block", Behavior.BLOCK)
AUTH = (PskAuth(Path("/etc/secpath/psk")),)
SERVICE_PORTS = (443, 1433, 5060, 8443)
FILTERS_PER_RULE = 50

Packet = tuple[IpAddress, IpAddress, int, int | None, int | None, Direction]


def peer(i: int) -> IpAddress:
    """The i-th remote server: IPv4 in 10.64.0.0/10, every 20th one IPv6."""
    if i % 20 == 19:
        return LOCAL6 + 0x10000 + i
    return ipaddress.IPv4Address(int(ipaddress.IPv4Address("10.64.0.0")) + i + 1)


def host_filter(i: int) -> Filter:
    target = Address(AddressKind.NETWORK, ipaddress.ip_network(peer(i)))
    if i % 4 == 3:  # a service path: tcp to one port
        port = PortRange(SERVICE_PORTS[i % 3], SERVICE_PORTS[i % 3])
        return Filter(Address.me(), target, 6, ANY_PORT, port)
    return Filter(Address.me(), target)


def build_policy(size: int) -> tuple[Policy, list[int]]:
    """A policy with ``size`` filters; also the peers of its host filters."""
    fixed = [
        Rule(
            "ike",
            FilterList("ike", (Filter(Address.me(), Address.any(), 17, PortRange(500, 500), ANY_PORT),)),
            PERMIT,
        ),
        Rule("icmp", FilterList("icmp", (Filter(Address.any(), Address.any(), 1),)), PERMIT),
        Rule("default", FilterList("default", (Filter(Address.me(), Address.any()),)), BLOCK),
        Rule(
            "site-b", FilterList("site-b", (Filter(Address.me(), Address.of("10.128.0.0/16")),)), SECURE, AUTH
        ),
    ]
    subnets = max(1, size // 100)
    subnet_filters = tuple(
        Filter(Address.me(), Address.of(f"10.{192 + k // 256}.{k % 256}.0/24")) for k in range(subnets)
    )
    fixed.append(Rule("lans", FilterList("lans", subnet_filters), SECURE, AUTH))
    hosts = size - len(fixed) + 1 - subnets
    rules = []
    for start in range(0, hosts, FILTERS_PER_RULE):
        chunk = tuple(host_filter(i) for i in range(start, min(hosts, start + FILTERS_PER_RULE)))
        rules.append(Rule(f"paths-{start}", FilterList(f"paths-{start}", chunk), SECURE, AUTH))
    policy = Policy("bench", Local((LOCAL4, LOCAL6)), KeyExchange(()), (*rules, *fixed))
    count = sum(len(r.filter_list.filters) for r in policy.rules)
    assert count == size, count
    return policy, list(range(hosts))


def packets(peers: list[int], n: int, rng: random.Random) -> list[Packet]:
    out: list[Packet] = []
    for _ in range(n):
        roll = rng.random()
        proto = rng.choice((6, 6, 17, 1))
        ports = (rng.randrange(1024, 65536), rng.choice(SERVICE_PORTS)) if proto != 1 else (None, None)
        if roll < 0.7:
            remote = peer(rng.choice(peers))
        elif roll < 0.8:
            remote = ipaddress.IPv4Address(f"10.192.0.{rng.randrange(1, 255)}")
        else:
            remote = ipaddress.IPv4Address(rng.getrandbits(32))
        local: IpAddress = LOCAL6 if remote.version == 6 else LOCAL4
        if rng.random() < 0.5:
            out.append((local, remote, proto, ports[0], ports[1], Direction.OUTBOUND))
        else:
            out.append((remote, local, proto, ports[1], ports[0], Direction.INBOUND))
    return out


def time_lookups(spd: Spd, pkts: list[Packet]) -> float:
    """Seconds per lookup over one pass of ``pkts``."""
    lookup = spd.lookup
    start = time.perf_counter()
    for s, d, p, sp, dp, direction in pkts:
        lookup(s, d, p, sp, dp, direction=direction)
    return (time.perf_counter() - start) / len(pkts)


def linear_first_match(entries: tuple[SpdEntry, ...], packet: Packet) -> SpdEntry | None:
    """The definition, unindexed: the first entry (in specificity order) that matches."""
    src, dst, proto, sport, dport, _ = packet
    for e in entries:
        sel = e.selector
        if sel.source.version != src.version or src not in sel.source or dst not in sel.destination:
            continue
        if sel.protocol is not None and sel.protocol != proto:
            continue
        sp_ok = sel.source_port.is_any if sport is None else sport in sel.source_port
        dp_ok = sel.destination_port.is_any if dport is None else dport in sel.destination_port
        if sp_ok and dp_ok:
            return e
    return None


def main() -> None:
    rng = random.Random(4301)
    prepared = []
    for size in SIZES:
        policy, peers = build_policy(size)
        start = time.perf_counter()
        spd = Spd(policy)
        compile_s = time.perf_counter() - start
        start = time.perf_counter()
        find_conflicts(spd)
        conflicts_s = time.perf_counter() - start
        pkts = packets(peers, LOOKUPS, rng)
        checked = pkts[: LINEAR_LOOKUPS[size]]
        start = time.perf_counter()
        expected = [linear_first_match(spd.entries, p) for p in checked]
        linear = (time.perf_counter() - start) / len(checked)
        for p, e in zip(checked, expected, strict=True):  # the index agrees with the scan
            m = spd.lookup(*p[:5], direction=p[5])
            assert (m is None) == (e is None)
            assert m is None or e is None or (m.filter is e.ref.filter and m.mirrored == e.mirrored)
        decided = [spd.lookup(*p[:5], direction=p[5]) for p in pkts[:1000]]
        on_paths = sum(m is not None and m.rule.name.startswith("paths-") for m in decided)
        prepared.append((size, spd, pkts, compile_s, conflicts_s, linear, on_paths))
    # sizes interleaved run by run, so that load from elsewhere hits them alike
    best = {size: float("inf") for size in SIZES}
    for _ in range(RUNS):
        for size, spd, pkts, *_rest in prepared:
            best[size] = min(best[size], time_lookups(spd, pkts))
    base, base_linear = best[SIZES[0]], prepared[0][5]
    print(f"{LOOKUPS:,} lookups per run, best of {RUNS} interleaved runs")
    header = (
        f"{'filters':>8} {'entries':>8} {'lookups/s':>11} {'us/lookup':>10} {'vs 10':>6} "
        f"{'linear/s':>10} {'vs 10':>8} {'compile s':>10} {'conflicts s':>12}"
    )
    print(header)
    print("-" * len(header))
    for size, spd, _, compile_s, conflicts_s, linear, _ in prepared:
        per = best[size]
        print(
            f"{size:>8,} {len(spd.entries):>8,} {1 / per:>11,.0f} {per * 1e6:>10.2f} "
            f"{per / base:>5.2f}x {1 / linear:>10,.0f} {linear / base_linear:>7.1f}x "
            f"{compile_s:>10.3f} {conflicts_s:>12.3f}"
        )
    worst = best[SIZES[-1]] / base
    verdict = "within" if worst <= 3 else "NOT within"
    print(f"\n{SIZES[-1]:,} filters cost {worst:.2f}x the {SIZES[0]}-filter lookup: {verdict} 3x")
    print("linear/s: first-match scan over the same compiled entries, for contrast")
    shares = ", ".join(f"{p[0]:,}: {p[6] / 10:.0f}%" for p in prepared)
    print(f"packets decided by a host-pair filter: {shares}")


if __name__ == "__main__":
    main()
