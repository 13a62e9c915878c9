"""The lab's topologies: the built-in reference deployment, or a user's
topology moved onto loopback addresses."""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import replace
from importlib import resources
from pathlib import Path

from secpath.errors import LocalError
from secpath.plan.topology import Topology
from secpath.plan.topology_loader import load_topology, parse_topology

__all__ = ["load_lab_topology", "reference_topology"]


def reference_topology() -> Topology:
    text = resources.files("secpath").joinpath("data/lab-topology.toml").read_text(encoding="utf-8")
    return parse_topology(tomllib.loads(text), Path("<secpath lab reference topology>"))


def load_lab_topology(path: Path | None) -> Topology:
    return reference_topology() if path is None else _to_loopback(load_topology(path))


def _to_loopback(topology: Topology) -> Topology:
    """Move every address of a user topology into 127.0.0.0/8 (IPv4 only)."""
    mapping: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, ipaddress.IPv4Address] = {}
    used: set[ipaddress.IPv4Address] = set()

    def to_lab(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> ipaddress.IPv4Address | None:
        if address is None:
            return None
        if address.version != 4:
            raise LocalError(f"lab: IPv6 address {address} is not supported on the lab network")
        assert isinstance(address, ipaddress.IPv4Address)
        if address in mapping:
            return mapping[address]
        if address.is_loopback:
            new = address
        else:
            octets = address.packed
            new = ipaddress.IPv4Address(bytes([127, *octets[1:]]))
            while new in used or new.packed[3] in (0, 255):
                new = ipaddress.IPv4Address(
                    int(new) + 1
                    if int(new) < int(ipaddress.IPv4Address("127.255.255.254"))
                    else int(ipaddress.IPv4Address("127.200.0.1"))
                )
        mapping[address] = new
        used.add(new)
        return new

    servers = tuple(
        replace(
            s,
            visible=to_lab(s.visible) or s.visible,
            private=to_lab(s.private),
            nat_address=to_lab(s.nat_address),
        )
        for s in topology.servers
    )
    sites = tuple(
        replace(s, public_address=to_lab(s.public_address), gateway=to_lab(s.gateway)) for s in topology.sites
    )
    return Topology(topology.deployment, sites, servers, topology.isolation, topology.source)
