"""Traffic selectors: from a rule's filter list, and narrowing (RFC 7296 §2.9).

A :class:`TrafficSelector` is one TS of a TSi/TSr payload (RFC 7296 §3.13.1):
an address range, an IP protocol (0 = any) and a port range.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from secpath.policy.model import ANY_PORT, Address, AddressKind, IpAddress, PortRange, Rule

__all__ = [
    "SelectorPair",
    "TrafficSelector",
    "intersect",
    "is_subset",
    "narrow",
    "rule_selectors",
]

_V4_ANY = (ipaddress.IPv4Address(0), ipaddress.IPv4Address("255.255.255.255"))
_V6_ANY = (ipaddress.IPv6Address("::"), ipaddress.IPv6Address("ffff:" * 7 + "ffff"))


@dataclass(frozen=True, slots=True, order=True)
class TrafficSelector:
    start: IpAddress
    end: IpAddress
    protocol: int = 0  # IP protocol, 0 = any
    start_port: int = 0
    end_port: int = 65535

    @property
    def version(self) -> int:
        return self.start.version

    @classmethod
    def of_network(
        cls, network: ipaddress.IPv4Network | ipaddress.IPv6Network, protocol: int = 0,
        ports: PortRange = ANY_PORT,
    ) -> TrafficSelector:
        return cls(network.network_address, network.broadcast_address, protocol,
                   ports.low, ports.high)

    def __str__(self) -> str:
        addr = str(self.start) if self.start == self.end else f"{self.start}-{self.end}"
        proto = "" if self.protocol == 0 else f"[{self.protocol}"
        if self.protocol and not (self.start_port == 0 and self.end_port == 65535):
            proto += f"/{self.start_port}" + (
                "" if self.start_port == self.end_port else f"-{self.end_port}"
            )
        return addr + (proto + "]" if proto else "")


def intersect(a: TrafficSelector, b: TrafficSelector) -> TrafficSelector | None:
    """The largest selector inside both, or ``None`` (RFC 7296 §2.9)."""
    if a.version != b.version:
        return None
    if a.protocol and b.protocol and a.protocol != b.protocol:
        return None
    a_start, a_end, b_start, b_end = int(a.start), int(a.end), int(b.start), int(b.end)
    start_i = max(a_start, b_start)
    end_i = min(a_end, b_end)
    low = max(a.start_port, b.start_port)
    high = min(a.end_port, b.end_port)
    if start_i > end_i or low > high:
        return None
    protocol = a.protocol or b.protocol
    # the result is often one of the two (equal selectors, or one inside the
    # other): return that one rather than build an equal copy
    for ts, first, last in ((a, a_start, a_end), (b, b_start, b_end)):
        if (first, last, ts.start_port, ts.end_port, ts.protocol) == (
                start_i, end_i, low, high, protocol):
            return ts
    make = ipaddress.IPv4Address if a.version == 4 else ipaddress.IPv6Address
    return TrafficSelector(make(start_i), make(end_i), protocol, low, high)


def is_subset(inner: Sequence[TrafficSelector], outer: Sequence[TrafficSelector]) -> bool:
    """Every selector of ``inner`` lies within one of ``outer``."""
    return all(any(intersect(ts, o) == ts for o in outer) for ts in inner)


@dataclass(frozen=True, slots=True)
class SelectorPair:
    """One filter of the rule as (our side, the peer's side)."""

    local: tuple[TrafficSelector, ...]
    remote: tuple[TrafficSelector, ...]


def _side(address: Address, local_addresses: Sequence[IpAddress],
          protocol: int, ports: PortRange) -> tuple[TrafficSelector, ...]:
    if address.kind is AddressKind.ME:
        return tuple(
            TrafficSelector(a, a, protocol, ports.low, ports.high) for a in local_addresses
        )
    if address.kind is AddressKind.ANY:
        return (
            TrafficSelector(*_V4_ANY, protocol, ports.low, ports.high),
            TrafficSelector(*_V6_ANY, protocol, ports.low, ports.high),
        )
    if address.kind is AddressKind.NETWORK and address.network is not None:
        return (TrafficSelector.of_network(address.network, protocol, ports),)
    return ()  # a DNS name is resolved by the policy layer before negotiation


def rule_selectors(rule: Rule, local_addresses: Sequence[IpAddress]) -> tuple[SelectorPair, ...]:
    """Each filter of the rule's filter list as (local, remote) selectors.

    A filter written from the peer towards ``me`` is turned around, so the
    local side is always ours."""
    pairs: list[SelectorPair] = []
    for f in rule.filter_list.filters:
        protocol = f.protocol or 0
        src = _side(f.source, local_addresses, protocol, f.source_port)
        dst = _side(f.destination, local_addresses, protocol, f.destination_port)
        if f.destination.kind is AddressKind.ME and f.source.kind is not AddressKind.ME:
            src, dst = dst, src
        if src and dst:
            pairs.append(SelectorPair(src, dst))
    return tuple(pairs)


def narrow(
    proposed_local: Sequence[TrafficSelector],
    proposed_remote: Sequence[TrafficSelector],
    pairs: Sequence[SelectorPair],
) -> tuple[tuple[TrafficSelector, ...], tuple[TrafficSelector, ...]] | None:
    """Narrow the peer's proposal (seen from our side: ``proposed_local`` is
    its TS for our end) to the first filter that overlaps both ends
    (RFC 7296 §2.9); ``None`` means TS_UNACCEPTABLE."""
    for pair in pairs:
        local = _dedupe(
            x for p in proposed_local for o in pair.local if (x := intersect(p, o)) is not None
        )
        remote = _dedupe(
            x for p in proposed_remote for o in pair.remote if (x := intersect(p, o)) is not None
        )
        if local and remote:
            return local, remote
    return None


def _dedupe(items: Iterable[TrafficSelector]) -> tuple[TrafficSelector, ...]:
    seen: list[TrafficSelector] = []
    for ts in items:
        if ts not in seen:
            seen.append(ts)
    return tuple(seen)
