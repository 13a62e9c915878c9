"""Run a planned deployment on the lab network and verify every path.

Phases: plan (the planner's own code) → hosts (a lab CA, one policy agent
per server address, bound to its loopback address, the sites behind NAT
behind their NAT boxes) → negotiate (every path initiated by one end: the
end behind NAT when there is one) → traffic (both ends of every path send
payloads through their ESP SAs; each must arrive once, intact, at the other
end; a clear-text probe on every path must be refused) → summary.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import secrets
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from secpath.agent import AgentEvent, Outgoing, PolicyAgent
from secpath.agent.split import split_policy
from secpath.daemon.driver import AgentDriver
from secpath.errors import LocalError
from secpath.ike.config import Credentials, Timing
from secpath.ike.events import ChildSaInstalled, IkeSaEstablished
from secpath.lab.network import Faults, LabHostLink, LabNetwork, NatBox
from secpath.lab.pki import LabCa
from secpath.monitor.stats import Statistics
from secpath.plan.planner import CommunicationPath, Plan, plan_deployment
from secpath.plan.topology import AuthKind, Server, Topology
from secpath.plan.topology_loader import load_topology, parse_topology
from secpath.policy.model import CertificateAuth, KerberosAuth, Policy
from secpath.secret import Secret

__all__ = ["LabOptions", "LabResult", "PathResult", "reference_topology", "run_lab"]

Progress = Callable[[str, int, int], None]  # phase, done, total


@dataclass(frozen=True, slots=True)
class LabOptions:
    faults: Faults = field(default_factory=Faults)
    packets_per_direction: int = 3
    duration: float = 0.0  # keep sending traffic this long (seconds), after the first round
    negotiate_timeout: float = 45.0
    settle_timeout: float = 15.0  # how long traffic may take to arrive (with resends)
    port_base: int = 30000
    seed: int | None = None


@dataclass(slots=True)
class PathResult:
    rule: str
    a: str
    b: str
    network: str
    authentication: str  # as planned
    used_authentication: str  # as run in the lab
    initiator: str
    established: bool = False
    ike_proposal: str = ""
    esp_transform: str = ""
    mode: str = ""
    encapsulation: str = ""
    nat: str = ""  # which end saw a NAT
    sent: int = 0
    verified: int = 0
    clear_probes_refused: int = 0
    failure: str = ""

    @property
    def ok(self) -> bool:
        return (
            self.established
            and self.sent > 0
            and self.verified == self.sent
            and self.clear_probes_refused == 2
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "a": self.a,
            "b": self.b,
            "network": self.network,
            "authentication": self.authentication,
            "used_authentication": self.used_authentication,
            "initiator": self.initiator,
            "established": self.established,
            "ike_proposal": self.ike_proposal,
            "esp_transform": self.esp_transform,
            "mode": self.mode,
            "encapsulation": self.encapsulation,
            "nat": self.nat,
            "sent": self.sent,
            "verified": self.verified,
            "clear_probes_refused": self.clear_probes_refused,
            "failure": self.failure,
            "ok": self.ok,
        }


@dataclass(slots=True)
class LabResult:
    deployment: str
    paths: list[PathResult]
    hosts: int
    seconds: float
    notes: list[str] = field(default_factory=list)
    totals: Statistics = field(default_factory=Statistics)
    network: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.paths) and all(p.ok for p in self.paths)

    def as_dict(self) -> dict[str, object]:
        snap = self.totals.snapshot()
        return {
            "deployment": self.deployment,
            "ok": self.ok,
            "hosts": self.hosts,
            "paths_total": len(self.paths),
            "paths_up": sum(1 for p in self.paths if p.established),
            "paths_verified": sum(1 for p in self.paths if p.ok),
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
            "paths": [p.as_dict() for p in self.paths],
            "main_mode": snap["main_mode"],
            "quick_mode": snap["quick_mode"],
            "network": self.network,
        }


def reference_topology() -> Topology:
    text = resources.files("secpath").joinpath("data/lab-topology.toml").read_text(encoding="utf-8")
    import tomllib

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


# --- hosts --------------------------------------------------------------------


@dataclass(slots=True)
class _Host:
    server: Server
    address: str
    policy: Policy
    driver: AgentDriver | None = None
    delivered: list[bytes] = field(default_factory=list)
    ike: dict[int, IkeSaEstablished] = field(default_factory=dict)


def _lab_auth(policy: Policy) -> Policy:
    """Kerberos is not available in the lab: its rules use the lab CA."""
    rules = []
    for r in policy.rules:
        auth = tuple(
            CertificateAuth(ca=Path("<lab CA>")) if isinstance(a, KerberosAuth) else a
            for a in r.authentication
        )
        rules.append(replace(r, authentication=auth))
    return replace(policy, rules=tuple(rules))


def _packet(src: str, dst: str, payload: bytes) -> bytes:
    s, d = ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed
    udp = struct.pack("!HHHH", 40000, 7, 8 + len(payload), 0) + payload
    header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, s, d))
    words = struct.unpack("!10H", header)
    total = sum(words)
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    header[10:12] = struct.pack("!H", ~total & 0xFFFF)
    return bytes(header) + udp


def _initiator(topology: Topology, path: CommunicationPath) -> Server:
    def behind_nat(s: Server) -> bool:
        return any(site.name == s.site and site.behind_nat for site in topology.sites)

    a_nat, b_nat = behind_nat(path.a), behind_nat(path.b)
    if b_nat and not a_nat:
        return path.b
    return path.a


async def run_lab(
    topology: Topology,
    options: LabOptions = LabOptions(),
    progress: Progress | None = None,
    on_ready: Callable[[LabResult], Awaitable[None]] | None = None,
) -> LabResult:
    """Run the lab; ``on_ready`` (if given) is awaited with the result while
    the hosts are still up (``secpath lab --keep``)."""
    started = time.monotonic()
    report = progress or (lambda phase, done, total: None)
    plan: Plan = plan_deployment(topology)
    if not plan.paths:
        raise LocalError("lab: the topology has no path to secure")
    notes: list[str] = []
    if any(p.authentication is AuthKind.KERBEROS for p in plan.paths):
        notes.append(
            "Kerberos paths use certificates from the lab CA: Kerberos V5 authentication is not "
            "implemented yet"
        )
    ca = LabCa(f"secpath lab CA {topology.deployment.name}", datetime.datetime.now(datetime.UTC))
    psks: dict[str, Secret] = {p.rule: Secret(secrets.token_bytes(32)) for p in plan.paths}
    results = {
        p.rule: PathResult(
            p.rule,
            p.a.name,
            p.b.name,
            p.network.value,
            p.authentication.value,
            "certificate" if p.authentication is AuthKind.KERBEROS else p.authentication.value,
            _initiator(topology, p).name,
            nat=_nat_text(topology, p),
        )
        for p in plan.paths
    }
    network = LabNetwork(
        port_base=options.port_base,
        faults=options.faults,
        seed=options.seed if options.seed is not None else int.from_bytes(os.urandom(4), "big"),
    )
    hosts: dict[str, _Host] = {}  # by address
    timing = Timing(retransmit_timeout=0.5, retransmit_base=1.5, retransmit_tries=8, dpd_interval=None)
    try:
        servers = [s for s in topology.servers if plan.paths_of.get(s.name)]
        for i, server in enumerate(servers):
            policy = _lab_auth(plan.policies[server.name])
            addresses = [str(a) for a in policy.local.addresses]
            cert = ca.issue(topology.fqdn(server), addresses)
            for address, sub in split_policy(policy).items():
                host = _Host(server, address, sub)
                creds = {}
                for rule in sub.rules:
                    if any(a.method == "psk" for a in rule.authentication):
                        creds[rule.name] = Credentials(psk=psks[rule.name])
                    else:
                        creds[rule.name] = Credentials(
                            certificate=cert.certificate,
                            private_key=cert.private_key,
                            trust_anchors=(ca.certificate,),
                        )
                agent = PolicyAgent(
                    sub,
                    os.urandom,
                    credentials=creds,
                    timing=timing,
                    local_address=address,
                    force_udp_encapsulation=True,
                    acquire_timeout=options.negotiate_timeout,
                    keepalive_interval=5.0,
                )
                nat = _nat_for(network, topology, server)
                link = await network.attach(address, server.site, _receiver(hosts, address), nat)

                def send(out: Outgoing, link: LabHostLink = link) -> None:
                    network.send(link, out)

                host.driver = AgentDriver(
                    agent,
                    send,
                    host.delivered.append,
                    _events(host, results),
                    loop=asyncio.get_running_loop(),
                )
                hosts[address] = host
            report("hosts", i + 1, len(servers))

        # -- negotiate ---------------------------------------------------------
        for path in plan.paths:
            starter = _initiator(topology, path)
            own, _, _ = path.view(starter.name)
            host = hosts[str(own)]
            assert host.driver is not None
            host.driver.initiate(path.rule)
        deadline = time.monotonic() + options.negotiate_timeout
        while True:
            up = sum(1 for r in results.values() if r.established)
            report("negotiate", up, len(results))
            settled = all(r.established or r.failure for r in results.values())
            if up == len(results) or time.monotonic() > deadline or (settled and not _negotiating(hosts)):
                break
            await asyncio.sleep(0.02)
        for r in results.values():
            if not r.established and not r.failure:
                r.failure = _last_failure(hosts, r.rule) or "not established in time"

        # -- traffic -----------------------------------------------------------
        token = secrets.token_hex(4)
        expected: dict[str, dict[bytes, str]] = {}  # receiving address -> payload -> rule
        outbox: dict[bytes, tuple[str, bytes]] = {}  # payload -> (sending address, packet)
        resent = 0
        rounds = 0
        until = time.monotonic() + options.duration
        while True:
            for path in plan.paths:
                r = results[path.rule]
                if not r.established:
                    continue
                for end in (path.a, path.b):
                    own, peer_addr, peer = path.view(end.name)
                    peer_own = path.view(peer.name)[0]
                    sender, receiver = hosts[str(own)], hosts[str(peer_own)]
                    for n in range(options.packets_per_direction):
                        payload = f"secpath-lab|{path.rule}|{end.name}|{rounds}.{n}|{token}".encode()
                        expected.setdefault(receiver.address, {})[payload] = path.rule
                        r.sent += 1
                        assert sender.driver is not None
                        packet = _packet(str(own), str(peer_addr), payload)
                        outbox[payload] = (sender.address, packet)
                        sender.driver.packet_from_host(packet)
            rounds += 1
            report("traffic", rounds, max(rounds, 1))
            if time.monotonic() >= until:
                break
            await asyncio.sleep(0.2)
        # like any application over UDP, the lab resends what did not arrive
        # (loss injected by the fault injector); each payload counts once
        settle = time.monotonic() + options.settle_timeout
        next_resend = time.monotonic() + 0.3
        while time.monotonic() < settle:
            if _count(hosts, expected, results, commit=False) == sum(r.sent for r in results.values()):
                break
            if time.monotonic() >= next_resend:
                missing = _missing(hosts, expected)
                for payload, (sender_addr, packet) in outbox.items():
                    if payload in missing:
                        sender = hosts[sender_addr]
                        assert sender.driver is not None
                        sender.driver.packet_from_host(packet)
                        resent += 1
                next_resend = time.monotonic() + 0.3
            await asyncio.sleep(0.02)
        _count(hosts, expected, results, commit=True)

        # a clear-text probe on every path must be refused at both ends: the
        # peer's address as the receiver sees it (through NAT), to its own
        for path in plan.paths:
            for end in (path.a, path.b):
                own, peer_seen, _ = path.view(end.name)
                receiver = hosts[str(own)]
                assert receiver.driver is not None
                before = len(receiver.delivered)
                receiver.driver.packet_from_network(_packet(str(peer_seen), str(own), b"clear probe"))
                if len(receiver.delivered) == before:
                    results[path.rule].clear_probes_refused += 1
        totals = Statistics()
        for host in hosts.values():
            assert host.driver is not None
            _add(totals, host.driver.agent.stats)
        injector = network.injector
        result = LabResult(
            topology.deployment.name,
            list(results.values()),
            len(hosts),
            time.monotonic() - started,
            notes,
            totals,
            {
                "datagrams_sent": network.sent,
                "datagrams_received": network.received,
                "dropped_by_fault_injector": injector.dropped,
                "duplicated_by_fault_injector": injector.duplicated,
                "reordered_by_fault_injector": injector.reordered,
                "nat_translations": sum(n.translations for n in network.nats.values()),
                "application_resends": resent,
            },
        )
        if on_ready is not None:
            await on_ready(result)
        return result
    finally:
        for host in hosts.values():
            if host.driver is not None:
                host.driver.close()
        network.close()


def _nat_text(topology: Topology, path: CommunicationPath) -> str:
    if not path.crosses_nat:
        return ""
    behind = [s for s in (path.a, path.b) if any(x.name == s.site and x.behind_nat for x in topology.sites)]
    return ", ".join(f"{s.name} behind NAT ({s.site})" for s in behind)


def _nat_for(network: LabNetwork, topology: Topology, server: Server) -> NatBox | None:
    site = next(s for s in topology.sites if s.name == server.site)
    if not site.behind_nat:
        return None
    public = server.nat_address or site.public_address
    if public is None:
        raise LocalError(f"lab: site {site.name!r} is behind NAT but has no public address")
    return network.add_nat(f"{site.name}/{public}", str(public))


def _receiver(hosts: dict[str, _Host], address: str) -> Callable[[bytes, tuple[str, int], int], None]:
    def receive(data: bytes, source: tuple[str, int], local_port: int) -> None:
        host = hosts.get(address)
        if host is not None and host.driver is not None:
            host.driver.datagram(data, source, local_port)

    return receive


def _events(host: _Host, results: dict[str, PathResult]) -> Callable[[AgentEvent], None]:
    def on_event(event: AgentEvent) -> None:
        ev = event.ike_event
        if isinstance(ev, IkeSaEstablished):
            host.ike[ev.ike_sa] = ev
        elif isinstance(ev, ChildSaInstalled) and ev.rule in results:
            r = results[ev.rule]
            r.established = True
            r.failure = ""
            r.esp_transform = ev.outbound.transform
            r.mode = ev.outbound.mode
            r.encapsulation = "ESP-in-UDP" if ev.outbound.udp_encapsulation else "ESP"
            ike = host.ike.get(ev.ike_sa)
            if ike is not None:
                r.ike_proposal = ike.proposal
        elif event.kind in ("ike-failed", "child-failed") and event.rule in results:
            results[event.rule].failure = event.detail

    return on_event


def _negotiating(hosts: dict[str, _Host]) -> bool:
    return any(
        h.driver is not None and h.driver.agent.stats.main_mode["active_acquire"] for h in hosts.values()
    )


def _last_failure(hosts: dict[str, _Host], rule: str) -> str:
    for host in hosts.values():
        assert host.driver is not None
        totals = host.driver.agent.stats.rules.get(rule)
        if totals is not None and totals.last_failure:
            return f"{host.server.name}: {totals.last_failure}"
    return ""


def _count(
    hosts: dict[str, _Host],
    expected: dict[str, dict[bytes, str]],
    results: dict[str, PathResult],
    *,
    commit: bool,
) -> int:
    verified: dict[str, int] = {}
    for address, wanted in expected.items():
        seen: set[bytes] = set()
        for packet in hosts[address].delivered:
            payload = packet[28:]
            rule = wanted.get(payload)
            if rule is not None and payload not in seen:
                seen.add(payload)
                verified[rule] = verified.get(rule, 0) + 1
    if commit:
        for rule, n in verified.items():
            results[rule].verified = n
    return sum(verified.values())


def _missing(hosts: dict[str, _Host], expected: dict[str, dict[bytes, str]]) -> set[bytes]:
    missing: set[bytes] = set()
    for address, wanted in expected.items():
        got = {packet[28:] for packet in hosts[address].delivered}
        missing.update(p for p in wanted if p not in got)
    return missing


def _add(totals: Statistics, stats: Statistics) -> None:
    for key, value in stats.main_mode.items():
        totals.main_mode[key] += value
    for key, value in stats.quick_mode.items():
        totals.quick_mode[key] += value
