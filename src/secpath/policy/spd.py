"""Security Policy Database lookup: which rule and filter action apply to a packet.

An :class:`Spd` is compiled once from a :class:`~secpath.policy.model.Policy`
and answers :meth:`Spd.lookup` for a packet's addresses, protocol, ports and
direction.  It is sans-IO: ``me`` is ``policy.local.addresses`` and DNS-name
filters use the ``resolve`` mapping the caller injects (no lookups here).

Compilation
-----------
Every filter of every rule becomes one or more *entries*, each an oriented,
resolved :class:`Selector` (source network, destination network, protocol,
source ports, destination ports):

* ``me`` is each local address as a host network (/32 or /128); ``any`` is
  ``0.0.0.0/0`` and ``::/0``; a DNS name is each address ``resolve`` gives it
  (names compared case-insensitively, without a trailing dot), as host networks.
* Only same-family source/destination pairs make entries.  A filter with no
  entry at all (a DNS name missing from ``resolve``, ``me`` without local
  addresses, or only mixed-family pairs) never matches and is listed in
  :attr:`Spd.unresolved` — never silently matching anything.
* A mirrored filter also gives the reverse entry: source and destination
  swapped, source and destination ports swapped; a match through it has
  ``SpdMatch.mirrored`` set.

Matching
--------
An entry matches a packet when both addresses are inside its networks, its
protocol is unset or equal to the packet's, and both ports are inside its
ranges.  Ports are selectors only for tcp (6) and udp (17); other packets
carry none.  A tcp/udp packet whose ports are unknown (a non-initial
fragment) has them OPAQUE and matches only ``any`` port ranges
(RFC 4301 §4.4.1.1).

Specificity order
-----------------
Of all entries matching a packet, the first in this order wins (RFC 4301
§4.4.1: the SPD is ordered and the first match applies); each key is compared
only when all the previous ones are equal:

1. the larger sum of source and destination prefix lengths (``me`` and DNS
   names count as host lengths, ``any`` as 0);
2. a specific protocol before ``any`` protocol;
3. the fewer (source port, destination port) pairs covered, i.e. the smaller
   product of the two range sizes (``any`` is 65536);
4. the filter action's behaviour: block, then permit, then negotiate;
5. the rule's position in the policy, then the filter's position in its list;
6. the filter as written before its mirror.

This is a total order on the entries that can match one packet (one filter
gives at most one direct and one mirrored entry per packet), so the result
is unique.  The direction (outbound or inbound, from this host's point of
view) does not change which filter wins — filters are written in packet
header terms, as the guide's filter wizard does; it decides
:attr:`SpdMatch.cleartext_allowed`.  No match returns ``None``: the traffic is
outside the policy.

Index
-----
Entries are grouped by *shape* (address family, source and destination
prefix lengths, whether the protocol is set); each shape is a hash table
keyed by (masked source, masked destination, protocol) whose buckets hold
entries in specificity order.  Shapes are grouped in *tiers* with equal keys
1 and 2, visited best first; the first tier with a match decides (within a
tier the best-ranked bucket hit wins; within a bucket the first entry whose
ports match).  A lookup costs one hash probe per shape visited plus the
bucket scan, independent of the number of filters for a fixed set of shapes
(at most 33 x 33 x 2 shapes for IPv4, 129 x 129 x 2 for IPv6).  A bucket holds
the entries with the same addresses and protocol, differing only by ports or
tie-breaks, so it grows only with port filters for one host pair.
Compiling sorts the entries: O(E log E) for E entries.  The :class:`SpdMatch`
records are made on first use and then reused.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from secpath.errors import LocalError
from secpath.policy.model import (
    Address,
    AddressKind,
    Behavior,
    Filter,
    FilterAction,
    IpAddress,
    IpNetwork,
    Policy,
    PortRange,
    Rule,
)

__all__ = [
    "Direction",
    "FilterRef",
    "Selector",
    "Spd",
    "SpdEntry",
    "SpdMatch",
    "UnresolvedFilter",
    "UnresolvedReason",
]

_TCP, _UDP = 6, 17
_ANY_PROTOCOL = 256  # protocol slot of a hash key for "any protocol"
_BEHAVIOR_ORDER = {Behavior.BLOCK: 0, Behavior.PERMIT: 1, Behavior.NEGOTIATE: 2}
_ANY_NETWORKS: tuple[IpNetwork, ...] = (
    ipaddress.IPv4Network("0.0.0.0/0"),
    ipaddress.IPv6Network("::/0"),
)


class Direction(Enum):
    """Which way a packet goes, from this host's point of view."""

    OUTBOUND = "outbound"
    INBOUND = "inbound"


@dataclass(frozen=True, slots=True)
class FilterRef:
    """One filter of one rule, by position: ``policy.rules[rule_index]``'s
    ``filter_list.filters[filter_index]``."""

    rule: Rule
    rule_index: int
    filter: Filter
    filter_index: int

    def __str__(self) -> str:
        f = self.filter
        arrow = "<->" if f.mirrored else "->"
        text = f"rule {self.rule.name!r} filter #{self.filter_index}: "
        text += f"{f.source} {arrow} {f.destination}"
        if f.protocol is not None:
            text += f" protocol {f.protocol}"
        if not (f.source_port.is_any and f.destination_port.is_any):
            text += f" ports {f.source_port} {arrow} {f.destination_port}"
        return text


@dataclass(frozen=True, slots=True)
class Selector:
    """An oriented, resolved filter: what one SPD entry matches."""

    source: IpNetwork
    destination: IpNetwork
    protocol: int | None
    source_port: PortRange
    destination_port: PortRange

    def __str__(self) -> str:
        proto = "any" if self.protocol is None else str(self.protocol)
        return (
            f"{self.source} -> {self.destination} protocol {proto} "
            f"ports {self.source_port} -> {self.destination_port}"
        )


@dataclass(frozen=True, slots=True)
class SpdMatch:
    """The answer to a lookup: the winning rule and filter and what to do.

    ``cleartext_allowed`` says whether the packet may pass without IPsec
    under this action in this direction: permit yes, block no; negotiate —
    inbound when the action accepts unsecured inbound traffic or allows the
    unsecured fallback, outbound only with the fallback (and then only once
    negotiation has failed, which the caller knows).
    """

    rule: Rule
    rule_index: int
    filter: Filter
    filter_index: int
    filter_action: FilterAction
    behavior: Behavior
    mirrored: bool
    direction: Direction
    cleartext_allowed: bool


@dataclass(frozen=True, slots=True)
class SpdEntry:
    """One compiled entry; ``rank`` is its place in the specificity order."""

    selector: Selector
    ref: FilterRef
    mirrored: bool
    rank: int


class UnresolvedReason(Enum):
    DNS_NAME = "dns-name"  # a DNS name absent from (or empty in) ``resolve``
    NO_LOCAL_ADDRESS = "no-local-address"  # ``me`` while local.addresses is empty
    FAMILY_MISMATCH = "family-mismatch"  # only IPv4-to-IPv6 pairs


@dataclass(frozen=True, slots=True)
class UnresolvedFilter:
    """A filter that compiled to no entry and so never matches."""

    ref: FilterRef
    reason: UnresolvedReason
    detail: str


def _cleartext_allowed(action: FilterAction, direction: Direction) -> bool:
    if action.behavior is Behavior.PERMIT:
        return True
    if action.behavior is Behavior.BLOCK:
        return False
    if direction is Direction.INBOUND:
        return action.accept_unsecured_inbound or action.allow_unsecured_fallback
    return action.allow_unsecured_fallback


def _dns_key(name: str) -> str:
    return name.lower().rstrip(".")


def _host(address: IpAddress) -> IpNetwork:
    return ipaddress.ip_network(address)


def _port_pairs(selector: Selector) -> int:
    sp, dp = selector.source_port, selector.destination_port
    return (sp.high - sp.low + 1) * (dp.high - dp.low + 1)


def _order_key(
    selector: Selector, behavior: Behavior, rule_index: int, filter_index: int, mirrored: bool
) -> tuple[int, bool, int, int, int, int, bool]:
    """The specificity order of the module docstring, smallest first."""
    return (
        -(selector.source.prefixlen + selector.destination.prefixlen),
        selector.protocol is None,
        _port_pairs(selector),
        _BEHAVIOR_ORDER[behavior],
        rule_index,
        filter_index,
        mirrored,
    )


class _Resolver:
    """Turns a filter's ``me`` / ``any`` / network / DNS ends into networks."""

    def __init__(self, policy: Policy, resolve: Mapping[str, Sequence[IpAddress]]) -> None:
        self.me = tuple(dict.fromkeys(_host(a) for a in policy.local.addresses))
        self.names: dict[str, tuple[IpNetwork, ...]] = {}
        for name, addresses in resolve.items():
            key = _dns_key(name)
            merged = self.names.get(key, ()) + tuple(_host(a) for a in addresses)
            self.names[key] = tuple(dict.fromkeys(merged))

    def networks(self, address: Address) -> tuple[IpNetwork, ...]:
        if address.kind is AddressKind.ANY:
            return _ANY_NETWORKS
        if address.kind is AddressKind.ME:
            return self.me
        if address.kind is AddressKind.NETWORK:
            assert address.network is not None
            return (address.network,)
        assert address.dns_name is not None
        return self.names.get(_dns_key(address.dns_name), ())


def _unresolved_reason(ref: FilterRef, resolver: _Resolver) -> tuple[UnresolvedReason, str] | None:
    """Why ``ref``'s filter yields no entry, or ``None`` if it yields some."""
    f = ref.filter
    ends = (f.source, f.destination)
    missing = [a for a in ends if not resolver.networks(a)]
    if any(a.kind is AddressKind.DNS for a in missing):
        names = ", ".join(str(a) for a in missing if a.kind is AddressKind.DNS)
        return UnresolvedReason.DNS_NAME, f"unresolved DNS name(s): {names}"
    if missing:
        return UnresolvedReason.NO_LOCAL_ADDRESS, "'me' but the policy has no local address"
    families_src = {n.version for n in resolver.networks(f.source)}
    families_dst = {n.version for n in resolver.networks(f.destination)}
    if not families_src & families_dst:
        return UnresolvedReason.FAMILY_MISMATCH, "source and destination are of different families"
    return None


def _selectors(f: Filter, resolver: _Resolver) -> list[tuple[Selector, bool]]:
    """The filter's (selector, mirrored) entries, direct ones first."""
    out: list[tuple[Selector, bool]] = []
    sources, destinations = resolver.networks(f.source), resolver.networks(f.destination)
    for mirrored in (False, True) if f.mirrored else (False,):
        srcs, dsts = (destinations, sources) if mirrored else (sources, destinations)
        sp, dp = (f.destination_port, f.source_port) if mirrored else (f.source_port, f.destination_port)
        for s in srcs:
            for d in dsts:
                if s.version == d.version:
                    out.append((Selector(s, d, f.protocol, sp, dp), mirrored))
    return out


# A bucket item: (rank, src low, src high, dst low, dst high); "any" port ranges
# start at -1 so that an OPAQUE port (-1) matches them only.
_Item = tuple[int, int, int, int, int]
_BITS = {4: 32, 6: 128}


class _Shape:
    __slots__ = ("dst_mask", "proto_set", "shift", "src_mask", "table")

    def __init__(self, bits: int, src_len: int, dst_len: int, proto_set: bool) -> None:
        full = (1 << bits) - 1
        self.src_mask = full ^ (full >> src_len)
        self.dst_mask = full ^ (full >> dst_len)
        self.shift = bits + 9
        self.proto_set = proto_set
        self.table: dict[int, list[_Item]] = {}


def _low(port_range: PortRange) -> int:
    return -1 if port_range.is_any else port_range.low


def _index(entries: Sequence[SpdEntry]) -> dict[int, tuple[tuple[_Shape, ...], ...]]:
    """Per address family, the tiers of shapes (module docstring, "Index")."""
    shapes: dict[tuple[int, int, int, bool], _Shape] = {}
    for e in entries:  # in rank order, so every bucket is sorted
        sel = e.selector
        version = sel.source.version
        src_len, dst_len = sel.source.prefixlen, sel.destination.prefixlen
        proto_set = sel.protocol is not None
        shape = shapes.get((version, src_len, dst_len, proto_set))
        if shape is None:
            shape = _Shape(_BITS[version], src_len, dst_len, proto_set)
            shapes[version, src_len, dst_len, proto_set] = shape
        proto = _ANY_PROTOCOL if sel.protocol is None else sel.protocol
        key = (
            (int(sel.source.network_address) << shape.shift)
            | (int(sel.destination.network_address) << 9)
            | proto
        )
        sp, dp = sel.source_port, sel.destination_port
        item = (e.rank, _low(sp), sp.high, _low(dp), dp.high)
        shape.table.setdefault(key, []).append(item)
    out: dict[int, tuple[tuple[_Shape, ...], ...]] = {}
    for family in _BITS:
        tiers: dict[tuple[int, bool], list[_Shape]] = {}
        for (v, src_len, dst_len, proto_set), shape in shapes.items():
            if v == family:
                tiers.setdefault((src_len + dst_len, proto_set), []).append(shape)
        order = sorted(tiers, key=lambda t: (-t[0], not t[1]))
        out[family] = tuple(tuple(tiers[t]) for t in order)
    return out


def _make_match(entry: SpdEntry, direction: Direction) -> SpdMatch:
    ref = entry.ref
    action = ref.rule.filter_action
    return SpdMatch(
        rule=ref.rule,
        rule_index=ref.rule_index,
        filter=ref.filter,
        filter_index=ref.filter_index,
        filter_action=action,
        behavior=action.behavior,
        mirrored=entry.mirrored,
        direction=direction,
        cleartext_allowed=_cleartext_allowed(action, direction),
    )


class Spd:
    """The compiled Security Policy Database of one policy."""

    __slots__ = ("_matches", "_tiers", "entries", "policy", "unresolved")

    def __init__(self, policy: Policy, resolve: Mapping[str, Sequence[IpAddress]] | None = None) -> None:
        self.policy = policy
        resolver = _Resolver(policy, resolve or {})
        keyed: list[tuple[tuple[int, bool, int, int, int, int, bool], Selector, FilterRef]] = []
        unresolved: list[UnresolvedFilter] = []
        for rule_index, rule in enumerate(policy.rules):
            behavior = rule.filter_action.behavior
            for filter_index, f in enumerate(rule.filter_list.filters):
                ref = FilterRef(rule, rule_index, f, filter_index)
                selectors = _selectors(f, resolver)
                if not selectors:
                    why = _unresolved_reason(ref, resolver)
                    assert why is not None
                    unresolved.append(UnresolvedFilter(ref, why[0], why[1]))
                for sel, mirrored in selectors:
                    key = _order_key(sel, behavior, rule_index, filter_index, mirrored)
                    keyed.append((key, sel, ref))
        keyed.sort(key=lambda item: item[0])
        self.entries: tuple[SpdEntry, ...] = tuple(
            SpdEntry(sel, ref, key[-1], rank) for rank, (key, sel, ref) in enumerate(keyed)
        )
        self.unresolved: tuple[UnresolvedFilter, ...] = tuple(unresolved)
        self._tiers = _index(self.entries)
        # SpdMatch records, made on first use: [2 * rank] outbound, [2 * rank + 1] inbound
        self._matches: list[SpdMatch | None] = [None] * (2 * len(self.entries))

    def lookup(
        self,
        source: IpAddress,
        destination: IpAddress,
        protocol: int,
        source_port: int | None,
        destination_port: int | None,
        *,
        direction: Direction,
    ) -> SpdMatch | None:
        """The rule and filter that apply to a packet, or ``None`` if none does.

        ``source_port``/``destination_port`` are given for tcp and udp (``None``
        when unknown, e.g. a non-initial fragment) and must be ``None`` for
        any other protocol.
        """
        if not isinstance(source, ipaddress.IPv4Address | ipaddress.IPv6Address) or not (
            isinstance(destination, ipaddress.IPv4Address | ipaddress.IPv6Address)
        ):
            raise LocalError("Spd.lookup: source and destination must be IP addresses")
        if source.version != destination.version:
            raise LocalError("Spd.lookup: source and destination are of different families")
        if not 0 <= protocol <= 255:
            raise LocalError(f"Spd.lookup: protocol must be 0-255, got {protocol}")
        if protocol in (_TCP, _UDP):
            for port in (source_port, destination_port):
                if port is not None and not 0 <= port <= 65535:
                    raise LocalError(f"Spd.lookup: ports must be 0-65535 or None, got {port}")
            sport = -1 if source_port is None else source_port
            dport = -1 if destination_port is None else destination_port
        elif source_port is not None or destination_port is not None:
            raise LocalError(f"Spd.lookup: protocol {protocol} has no ports (only tcp and udp)")
        else:
            sport = dport = -1
        if not isinstance(direction, Direction):
            raise LocalError(f"Spd.lookup: direction must be a Direction, got {direction!r}")
        src, dst = int(source), int(destination)
        inbound = direction is Direction.INBOUND
        for tier in self._tiers[source.version]:
            best: _Item | None = None
            for shape in tier:
                key = (
                    ((src & shape.src_mask) << shape.shift)
                    | ((dst & shape.dst_mask) << 9)
                    | (protocol if shape.proto_set else _ANY_PROTOCOL)
                )
                bucket = shape.table.get(key)
                if bucket is None:
                    continue
                for item in bucket:
                    if item[1] <= sport <= item[2] and item[3] <= dport <= item[4]:
                        if best is None or item[0] < best[0]:
                            best = item
                        break
            if best is not None:
                slot = 2 * best[0] + inbound
                match = self._matches[slot]
                if match is None:
                    match = self._matches[slot] = _make_match(self.entries[best[0]], direction)
                return match
        return None
