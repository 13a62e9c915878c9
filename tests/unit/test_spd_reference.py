"""The indexed SPD agrees with plain linear references on random filter sets.

The references below re-implement the module docstring's definition directly
from the policy (no compiled entries, no index): a linear scan for lookups
and an all-pairs comparison for conflicts.  Addresses, ports and protocols
come from small pools so that hits, ties, mirrors and overlaps are common.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from secpath.policy.model import (
    ANY_PORT,
    Address,
    AddressKind,
    Behavior,
    Filter,
    FilterAction,
    FilterList,
    IpAddress,
    IpNetwork,
    KeyExchange,
    Local,
    Policy,
    PortRange,
    PskAuth,
    Rule,
    SecurityMethod,
)
from secpath.policy.spd import Direction, Spd
from secpath.policy.spd_conflicts import ConflictKind, find_conflicts

LOCAL = (ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("2001:db8::1"))
RESOLVE: dict[str, list[IpAddress]] = {
    "db.example": [ipaddress.ip_address("10.0.0.2"), ipaddress.ip_address("2001:db8::2")],
    "web.example": [ipaddress.ip_address("10.0.1.5")],
    "me-too.example": [ipaddress.ip_address("10.0.0.1")],
}
FILTER_ENDS = [
    Address.me(),
    Address.any(),
    *(
        Address.of(t)
        for t in (
            "10.0.0.1",
            "10.0.0.2",
            "10.0.1.5",
            "10.0.0.0/30",
            "10.0.0.0/24",
            "10.0.0.0/16",
            "0.0.0.0/0",
            "2001:db8::2",
            "2001:db8::/64",
            "2001:db8::/32",
        )
    ),
    *(
        Address(AddressKind.DNS, dns_name=n)
        for n in ("db.example", "web.example", "me-too.example", "gone.example")
    ),
]
PACKET_V4 = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.1.5", "10.1.0.1", "172.16.0.1"]
PACKET_V6 = ["2001:db8::1", "2001:db8::2", "2001:db8::3", "2001:db8:1::1", "2001:db9::1"]
PORT_RANGES = [ANY_PORT, PortRange(80, 80), PortRange(443, 443), PortRange(0, 1023)]
PACKET_PORTS = [None, 80, 443, 1500, 22]
_SECURE = (SecurityMethod("aes128gcm", "none"),)
ACTIONS = [
    FilterAction("block", Behavior.BLOCK),
    FilterAction("permit", Behavior.PERMIT),
    FilterAction("permit-2", Behavior.PERMIT),
    FilterAction("secure", Behavior.NEGOTIATE, _SECURE),
]
BEHAVIOR_ORDER = {Behavior.BLOCK: 0, Behavior.PERMIT: 1, Behavior.NEGOTIATE: 2}


@st.composite
def filters(draw: st.DrawFn) -> Filter:
    protocol = draw(st.sampled_from([None, 1, 6, 17]))
    ports = st.sampled_from(PORT_RANGES) if protocol in (6, 17) else st.just(ANY_PORT)
    return Filter(
        draw(st.sampled_from(FILTER_ENDS)),
        draw(st.sampled_from(FILTER_ENDS)),
        protocol,
        draw(ports),
        draw(ports),
        draw(st.booleans()),
    )


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    rules = []
    for i in range(draw(st.integers(1, 5))):
        action = draw(st.sampled_from(ACTIONS))
        auth = (PskAuth(Path("/psk")),) if action.behavior is Behavior.NEGOTIATE else ()
        flist = FilterList(f"l{i}", tuple(draw(st.lists(filters(), min_size=1, max_size=5))))
        rules.append(Rule(f"r{i}", flist, action, auth))
    return Policy("p", Local(LOCAL), KeyExchange(()), tuple(rules))


Packet = tuple[IpAddress, IpAddress, int, int | None, int | None, Direction]


@st.composite
def packets(draw: st.DrawFn) -> Packet:
    pool = draw(st.sampled_from([PACKET_V4, PACKET_V6]))
    src = ipaddress.ip_address(draw(st.sampled_from(pool)))
    dst = ipaddress.ip_address(draw(st.sampled_from(pool)))
    protocol = draw(st.sampled_from([1, 6, 17, 50]))
    ports = st.sampled_from(PACKET_PORTS) if protocol in (6, 17) else st.just(None)
    return src, dst, protocol, draw(ports), draw(ports), draw(st.sampled_from(list(Direction)))


# ---- the linear reference -----------------------------------------------------------------


def end_networks(address: Address) -> list[IpNetwork]:
    """What one end of a filter covers, straight from the definition."""
    if address.kind is AddressKind.ANY:
        return [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
    if address.kind is AddressKind.ME:
        return [ipaddress.ip_network(a) for a in LOCAL]
    if address.kind is AddressKind.NETWORK:
        assert address.network is not None
        return [address.network]
    assert address.dns_name is not None
    return [ipaddress.ip_network(a) for a in RESOLVE.get(address.dns_name, [])]


def matched_length(address: Address, packet_address: IpAddress) -> int | None:
    """The prefix length by which ``address`` holds ``packet_address``, if it does."""
    for net in end_networks(address):
        if net.version == packet_address.version and packet_address in net:
            return net.prefixlen
    return None


def port_ok(ports: PortRange, port: int | None) -> bool:
    return ports.is_any if port is None else port in ports


def size(ports: PortRange) -> int:
    return ports.high - ports.low + 1


def reference_lookup(policy: Policy, packet: Packet) -> tuple[int, int, bool] | None:
    """Scan every filter in both orientations; keep the least specificity key."""
    src, dst, protocol, sport, dport, _ = packet
    best: tuple[tuple[int, bool, int, int, int, int, bool], tuple[int, int, bool]] | None = None
    for ri, rule in enumerate(policy.rules):
        for fi, f in enumerate(rule.filter_list.filters):
            for mirrored in (False, True) if f.mirrored else (False,):
                a, b = (f.destination, f.source) if mirrored else (f.source, f.destination)
                pa, pb = (
                    (f.destination_port, f.source_port) if mirrored else (f.source_port, f.destination_port)
                )
                la, lb = matched_length(a, src), matched_length(b, dst)
                if la is None or lb is None:
                    continue
                if f.protocol is not None and f.protocol != protocol:
                    continue
                if not (port_ok(pa, sport) and port_ok(pb, dport)):
                    continue
                key = (
                    -(la + lb),
                    f.protocol is None,
                    size(pa) * size(pb),
                    BEHAVIOR_ORDER[rule.filter_action.behavior],
                    ri,
                    fi,
                    mirrored,
                )
                if best is None or key < best[0]:
                    best = (key, (ri, fi, mirrored))
    return None if best is None else best[1]


@settings(max_examples=300, deadline=None)
@given(policies(), st.lists(packets(), min_size=1, max_size=25))
def test_lookup_agrees_with_the_linear_reference(policy: Policy, pkts: list[Packet]) -> None:
    db = Spd(policy, RESOLVE)
    never = {(c.loser.rule_index, c.loser.filter_index) for c in find_conflicts(db) if c.loser_never_matches}
    for packet in pkts:
        m = db.lookup(*packet[:5], direction=packet[5])
        got = None if m is None else (m.rule_index, m.filter_index, m.mirrored)
        assert got == reference_lookup(policy, packet)
        if m is not None:
            assert m.rule is policy.rules[m.rule_index]
            assert m.filter is m.rule.filter_list.filters[m.filter_index]
            assert m.direction is packet[5]
            assert (m.rule_index, m.filter_index) not in never


# ---- the all-pairs conflict reference -----------------------------------------------------

Oriented = tuple[IpNetwork, IpNetwork, int | None, PortRange, PortRange]


def oriented(f: Filter) -> list[tuple[Oriented, bool]]:
    out = []
    for mirrored in (False, True) if f.mirrored else (False,):
        a, b = (f.destination, f.source) if mirrored else (f.source, f.destination)
        pa, pb = (f.destination_port, f.source_port) if mirrored else (f.source_port, f.destination_port)
        for s in dict.fromkeys(end_networks(a)):
            for d in dict.fromkeys(end_networks(b)):
                if s.version == d.version:
                    out.append(((s, d, f.protocol, pa, pb), mirrored))
    return out


ConflictRow = tuple[str, tuple[int, int], tuple[int, int], bool, Oriented]
Key = tuple[int, bool, int, int, int, int, bool]


def reference_conflicts(policy: Policy) -> set[ConflictRow]:
    """Pairs (group winner, other filter) over identical selectors, all pairs compared."""
    entries: list[tuple[Key, Oriented, tuple[int, int], FilterAction]] = []
    for ri, rule in enumerate(policy.rules):
        for fi, f in enumerate(rule.filter_list.filters):
            for sel, mirrored in oriented(f):
                key = (
                    -(sel[0].prefixlen + sel[1].prefixlen),
                    sel[2] is None,
                    size(sel[3]) * size(sel[4]),
                    BEHAVIOR_ORDER[rule.filter_action.behavior],
                    ri,
                    fi,
                    mirrored,
                )
                entries.append((key, sel, (ri, fi), rule.filter_action))
    # loser -> [(winner, winner's action, loser entry's key, selector)]
    beaten: dict[tuple[int, int], list[tuple[tuple[int, int], FilterAction, Key, Oriented]]] = {}
    for key, sel, ref, _action in entries:
        top = min(e for e in entries if e[1] == sel)
        if top[2] != ref:
            beaten.setdefault(ref, []).append((top[2], top[3], key, sel))
    counts: dict[tuple[int, int], int] = {}
    for e in entries:
        counts[e[2]] = counts.get(e[2], 0) + 1
    out = set()
    for loser, lost in beaten.items():
        never = len(lost) == counts[loser]
        action = policy.rules[loser[0]].filter_action
        for winner, winner_action, _, _ in lost:
            # the pair is reported with its most specific shared selector
            first = min((x for x in lost if x[0] == winner), key=lambda x: x[2])
            if winner_action != action:
                out.add((ConflictKind.CONFLICTING.value, winner, loser, never, first[3]))
            elif never:
                out.add((ConflictKind.SHADOWED.value, winner, loser, never, first[3]))
    return out


@settings(max_examples=200, deadline=None)
@given(policies())
def test_conflicts_agree_with_the_all_pairs_reference(policy: Policy) -> None:
    found = find_conflicts(Spd(policy, RESOLVE))
    got = {
        (
            c.kind.value,
            (c.winner.rule_index, c.winner.filter_index),
            (c.loser.rule_index, c.loser.filter_index),
            c.loser_never_matches,
            (
                c.selector.source,
                c.selector.destination,
                c.selector.protocol,
                c.selector.source_port,
                c.selector.destination_port,
            ),
        )
        for c in found
    }
    assert len(got) == len(found)
    assert got == reference_conflicts(policy)
