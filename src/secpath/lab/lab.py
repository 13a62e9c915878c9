"""A planned deployment running on the lab network: hosts, negotiation,
traffic with end-to-end checks, clear-text probes — the steps that
``secpath lab`` and the fault scenarios are made of.

Phases: plan (the planner's own code) → hosts (a lab CA, one policy agent
per server address, bound to its loopback address, the sites behind NAT
behind their NAT boxes) → negotiate (every path initiated by one end: the
end behind NAT when there is one) → traffic (both ends of every path send
payloads through their ESP SAs; each must arrive intact at the other end) →
clear-text probes (refused on every secured path).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from secpath.agent import AgentEvent, Outgoing, PolicyAgent
from secpath.agent.split import split_policy
from secpath.daemon.driver import AgentDriver
from secpath.errors import LocalError
from secpath.ike.config import Credentials, Timing
from secpath.ike.events import ChildSaInstalled, IkeSaEstablished
from secpath.ike.gss import GssapiProvider
from secpath.ike.kerberos import KerberosCredentials
from secpath.lab.kdc import LabRealm
from secpath.lab.kdc import missing_reason as kdc_missing
from secpath.lab.network import LabHostLink, LabNetwork, NatBox
from secpath.lab.pki import LabCa, LabCertificate
from secpath.lab.results import LabOptions, LabResult, PathResult
from secpath.monitor.stats import Statistics
from secpath.plan.planner import CommunicationPath, Plan, plan_deployment
from secpath.plan.topology import AuthKind, Server, Topology
from secpath.policy.model import CertificateAuth, KerberosAuth, Policy
from secpath.secret import Secret

__all__ = ["Lab", "Progress"]

Progress = Callable[[str, int, int], None]  # phase, done, total
# (rule, server name, credentials) -> the credentials that server uses for the rule
CredentialHook = Callable[[str, str, Credentials], Credentials]


@dataclass(slots=True)
class LabHost:
    server: Server
    address: str
    policy: Policy
    credentials: dict[str, Credentials]
    driver: AgentDriver | None = None
    link: LabHostLink | None = None
    delivered: list[bytes] = field(default_factory=list)
    ike: dict[int, IkeSaEstablished] = field(default_factory=dict)

    @property
    def agent(self) -> PolicyAgent:
        assert self.driver is not None
        return self.driver.agent


def _lab_auth(policy: Policy, kerberos: bool) -> Policy:
    """Kerberos rules keep Kerberos when the lab runs its own realm, else
    they use the lab CA."""
    if kerberos:
        return policy
    rules = []
    for r in policy.rules:
        auth = tuple(
            CertificateAuth(ca=Path("<lab CA>")) if isinstance(a, KerberosAuth) else a
            for a in r.authentication
        )
        rules.append(replace(r, authentication=auth))
    return replace(policy, rules=tuple(rules))


def lab_packet(src: str, dst: str, payload: bytes) -> bytes:
    """A UDP/IPv4 packet from ``src`` to ``dst`` (port 40000 → 7)."""
    s, d = ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed
    udp = struct.pack("!HHHH", 40000, 7, 8 + len(payload), 0) + payload
    header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, s, d))
    total = sum(struct.unpack("!10H", header))
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    header[10:12] = struct.pack("!H", ~total & 0xFFFF)
    return bytes(header) + udp


class Lab:
    def __init__(
        self,
        topology: Topology,
        options: LabOptions | None = None,
        progress: Progress | None = None,
        *,
        timing: Timing | None = None,
        credential_hook: CredentialHook | None = None,
    ) -> None:
        self.topology = topology
        self.options = options or LabOptions()
        self.report: Progress = progress or (lambda phase, done, total: None)
        self.timing = timing or Timing(
            retransmit_timeout=0.5, retransmit_base=1.5, retransmit_tries=8, dpd_interval=None
        )
        self.credential_hook = credential_hook
        self.plan: Plan = plan_deployment(topology)
        if not self.plan.paths:
            raise LocalError("lab: the topology has no path to secure")
        self.notes: list[str] = []
        self.realm: LabRealm | None = None
        self.kerberos = False
        if any(p.authentication is AuthKind.KERBEROS for p in self.plan.paths):
            why = kdc_missing()
            self.kerberos = why is None
            self.notes.append(
                "Kerberos paths use Kerberos V5 with the lab's own realm (an MIT KDC on loopback)"
                if why is None
                else f"Kerberos paths use certificates from the lab CA: {why}"
            )
        used_kerberos = "kerberos" if self.kerberos else "certificate"
        self.results = {
            p.rule: PathResult(
                p.rule,
                p.a.name,
                p.b.name,
                p.network.value,
                p.authentication.value,
                used_kerberos if p.authentication is AuthKind.KERBEROS else p.authentication.value,
                self.initiator(p).name,
                nat=self._nat_text(p),
            )
            for p in self.plan.paths
        }
        seed = self.options.seed if self.options.seed is not None else int.from_bytes(os.urandom(4), "big")
        self.network = LabNetwork(port_base=self.options.port_base, faults=self.options.faults, seed=seed)
        self.hosts: dict[str, LabHost] = {}  # by address
        self.ca = LabCa(f"secpath lab CA {topology.deployment.name}", datetime.datetime.now(datetime.UTC))
        self._certs: dict[str, LabCertificate] = {}
        self._psks: dict[str, Secret] = {p.rule: Secret(secrets.token_bytes(32)) for p in self.plan.paths}
        self._expected: dict[str, dict[bytes, str]] = {}  # receiving address -> payload -> rule
        self._outbox: dict[bytes, tuple[str, bytes]] = {}  # payload -> (sending address, packet)
        self._token = secrets.token_hex(4)
        self._round = 0
        self._installed: dict[str, set[str]] = {}  # rule -> addresses with its Child SA
        self.resent = 0
        self.started = time.monotonic()

    # -- topology helpers ------------------------------------------------------

    def behind_nat(self, s: Server) -> bool:
        return any(site.name == s.site and site.behind_nat for site in self.topology.sites)

    def initiator(self, path: CommunicationPath) -> Server:
        return path.b if self.behind_nat(path.b) and not self.behind_nat(path.a) else path.a

    def _nat_text(self, path: CommunicationPath) -> str:
        if not path.crosses_nat:
            return ""
        return ", ".join(f"{s.name} behind NAT ({s.site})" for s in (path.a, path.b) if self.behind_nat(s))

    def host_of(self, path: CommunicationPath, server: Server) -> LabHost:
        return self.hosts[str(path.view(server.name)[0])]

    # -- hosts -----------------------------------------------------------------

    async def start(self) -> None:
        servers = [s for s in self.topology.servers if self.plan.paths_of.get(s.name)]
        if self.kerberos and self.realm is None:
            self.realm = LabRealm()
            self.notes[-1] += f" {self.realm.realm} on 127.0.0.1:{self.realm.port}"
        for i, server in enumerate(servers):
            policy = _lab_auth(self.plan.policies[server.name], self.kerberos)
            cert = self._certs[server.name] = self.ca.issue(
                self.topology.fqdn(server), [str(a) for a in policy.local.addresses]
            )
            for address, sub in split_policy(policy).items():
                creds = {}
                for rule in sub.rules:
                    if any(a.method == "psk" for a in rule.authentication):
                        c = Credentials(psk=self._psks[rule.name])
                    elif self.realm is not None and any(
                        isinstance(a, KerberosAuth) for a in rule.authentication
                    ):
                        provider = GssapiProvider(keytab=self.realm.host(self.topology.fqdn(server)))
                        c = Credentials(kerberos=KerberosCredentials(provider, realm=self.realm.realm))
                    else:
                        c = Credentials(
                            certificate=cert.certificate,
                            private_key=cert.private_key,
                            trust_anchors=(self.ca.certificate,),
                        )
                    creds[rule.name] = (
                        self.credential_hook(rule.name, server.name, c) if self.credential_hook else c
                    )
                host = LabHost(server, address, sub, creds)
                self.hosts[address] = host
                await self._bring_up(host)
            self.report("hosts", i + 1, len(servers))

    async def _bring_up(self, host: LabHost) -> None:
        agent = PolicyAgent(
            host.policy,
            os.urandom,
            credentials=host.credentials,
            timing=self.timing,
            local_address=host.address,
            force_udp_encapsulation=True,
            acquire_timeout=self.options.negotiate_timeout,
            keepalive_interval=5.0,
        )
        nat = self._nat_for(host.server)
        link = await self.network.attach(host.address, host.server.site, self._receiver(host.address), nat)
        host.link = link

        def send(out: Outgoing) -> None:
            self.network.send(link, out)

        host.ike = {}
        host.driver = AgentDriver(
            agent, send, host.delivered.append, self._events(host), loop=asyncio.get_running_loop()
        )

    def crash(self, host: LabHost) -> None:
        """The host dies: no Delete is sent, its sockets close, its state is gone."""
        if host.driver is not None:
            host.driver.close()
        self.network.detach(host.address)
        host.driver = None

    async def restart(self, host: LabHost) -> None:
        await self._bring_up(host)

    def _nat_for(self, server: Server) -> NatBox | None:
        site = next(s for s in self.topology.sites if s.name == server.site)
        if not site.behind_nat:
            return None
        public = server.nat_address or site.public_address
        if public is None:
            raise LocalError(f"lab: site {site.name!r} is behind NAT but has no public address")
        return self.network.add_nat(f"{site.name}/{public}", str(public))

    def _receiver(self, address: str) -> Callable[[bytes, tuple[str, int], int], None]:
        def receive(data: bytes, source: tuple[str, int], local_port: int) -> None:
            host = self.hosts.get(address)
            if host is not None and host.driver is not None:
                host.driver.datagram(data, source, local_port)

        return receive

    def _events(self, host: LabHost) -> Callable[[AgentEvent], None]:
        results = self.results

        def on_event(event: AgentEvent) -> None:
            ev = event.ike_event
            if isinstance(ev, IkeSaEstablished):
                host.ike[ev.ike_sa] = ev
            elif isinstance(ev, ChildSaInstalled) and ev.rule in results:
                r = results[ev.rule]
                # a path is up when both ends have its Child SA: a responder
                # installs first, and its initiator may still lose the answer
                ends = self._installed.setdefault(ev.rule, set())
                ends.add(host.address)
                r.established = len(ends) >= 2
                r.failure = ""
                r.esp_transform = ev.outbound.transform
                r.mode = ev.outbound.mode
                r.encapsulation = "ESP-in-UDP" if ev.outbound.udp_encapsulation else "ESP"
                ike = host.ike.get(ev.ike_sa)
                if ike is not None:
                    r.ike_proposal = ike.proposal
            elif event.kind == "child-down" and event.rule in results and host.driver is not None:
                if not any(c.rule == event.rule for c in host.agent.children.values()):
                    self._installed.get(event.rule, set()).discard(host.address)
            elif event.kind in ("ike-failed", "child-failed") and event.rule in results:
                results[event.rule].failure = event.detail

        return on_event

    # -- negotiation -----------------------------------------------------------

    async def negotiate(self) -> None:
        """Initiate every path and wait for all of them; a path whose
        negotiation failed (all retransmissions lost, say) is tried again until
        the deadline, as strongSwan's ``keyingtries`` would."""
        starters = {path.rule: self.host_of(path, self.initiator(path)) for path in self.plan.paths}
        for rule, host in starters.items():
            assert host.driver is not None
            host.driver.initiate(rule)
        deadline = time.monotonic() + self.options.negotiate_timeout
        retried: dict[str, float] = {}
        while True:
            up = sum(1 for r in self.results.values() if r.established)
            self.report("negotiate", up, len(self.results))
            if up == len(self.results) or time.monotonic() > deadline:
                break
            for rule, r in self.results.items():
                host = starters[rule]
                if r.established or not r.failure or host.driver is None:
                    continue
                if (
                    host.agent.rule_state(rule).value == "down"
                    and time.monotonic() - retried.get(rule, 0) > 1.0
                ):
                    if not self.options.retry_failed:
                        continue
                    retried[rule] = time.monotonic()
                    host.driver.initiate(rule)
            if not self.options.retry_failed:
                settled = all(r.established or r.failure for r in self.results.values())
                if settled and not self._negotiating():
                    break
            await asyncio.sleep(0.02)
        for r in self.results.values():
            if not r.established and not r.failure:
                r.failure = self._last_failure(r.rule) or "not established in time"

    def _negotiating(self) -> bool:
        return any(
            h.driver is not None and h.agent.stats.main_mode["active_acquire"] for h in self.hosts.values()
        )

    def _last_failure(self, rule: str) -> str:
        for host in self.hosts.values():
            if host.driver is None:
                continue
            totals = host.agent.stats.rules.get(rule)
            if totals is not None and totals.last_failure:
                return f"{host.server.name}: {totals.last_failure}"
        return ""

    # -- traffic ---------------------------------------------------------------

    def send_round(self, paths: list[CommunicationPath] | None = None) -> int:
        """Every end of every established path sends its payloads; returns how many."""
        sent = 0
        for path in paths or self.plan.paths:
            r = self.results[path.rule]
            if not r.established:
                continue
            for end in (path.a, path.b):
                own, peer_addr, peer = path.view(end.name)
                sender, receiver = self.hosts[str(own)], self.hosts[str(path.view(peer.name)[0])]
                if sender.driver is None:
                    continue
                for n in range(self.options.packets_per_direction):
                    payload = f"secpath-lab|{path.rule}|{end.name}|{self._round}.{n}|{self._token}".encode()
                    self._expected.setdefault(receiver.address, {})[payload] = path.rule
                    packet = lab_packet(str(own), str(peer_addr), payload)
                    self._outbox[payload] = (sender.address, packet)
                    r.sent += 1
                    sent += 1
                    sender.driver.packet_from_host(packet)
        self._round += 1
        return sent

    async def settle(self, timeout: float | None = None, *, resend: bool = True) -> None:
        """Wait for what was sent; resend what the network lost, as an
        application over UDP would (unless ``resend`` is off: then a loss
        stays a loss).  Each payload counts once."""
        if timeout is None:  # without resends, 3 s is plenty for what is in flight
            timeout = self.options.settle_timeout if resend else 3.0
        deadline = time.monotonic() + timeout
        next_resend = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            if not self.missing():
                break
            if resend and time.monotonic() >= next_resend:
                for payload in self.missing():
                    address, packet = self._outbox[payload]
                    sender = self.hosts[address]
                    if sender.driver is not None:
                        sender.driver.packet_from_host(packet)
                        self.resent += 1
                next_resend = time.monotonic() + 0.3
            await asyncio.sleep(0.02)
        self.count()

    def missing(self) -> set[bytes]:
        out: set[bytes] = set()
        for address, wanted in self._expected.items():
            got = {packet[28:] for packet in self.hosts[address].delivered}
            out.update(p for p in wanted if p not in got)
        return out

    def duplicates(self) -> int:
        """Payloads delivered more than once (anti-replay should make this 0)."""
        extra = 0
        for address, wanted in self._expected.items():
            seen: dict[bytes, int] = {}
            for packet in self.hosts[address].delivered:
                payload = packet[28:]
                if payload in wanted:
                    seen[payload] = seen.get(payload, 0) + 1
            extra += sum(n - 1 for n in seen.values())
        return extra

    def count(self) -> None:
        verified: dict[str, int] = {}
        for address, wanted in self._expected.items():
            seen: set[bytes] = set()
            for packet in self.hosts[address].delivered:
                payload = packet[28:]
                rule = wanted.get(payload)
                if rule is not None and payload not in seen:
                    seen.add(payload)
                    verified[rule] = verified.get(rule, 0) + 1
        for rule, r in self.results.items():
            r.verified = verified.get(rule, 0)

    def probe_clear(self) -> None:
        """A clear-text packet on every secured path, from the peer's address
        as the receiver sees it (through NAT), must be refused at both ends."""
        for path in self.plan.paths:
            self.results[path.rule].clear_probes_refused = 0
            for end in (path.a, path.b):
                own, peer_seen, _ = path.view(end.name)
                receiver = self.hosts[str(own)]
                if receiver.driver is None:
                    continue
                before = len(receiver.delivered)
                receiver.driver.packet_from_network(lab_packet(str(peer_seen), str(own), b"clear probe"))
                if len(receiver.delivered) == before:
                    self.results[path.rule].clear_probes_refused += 1

    # -- result ----------------------------------------------------------------

    def result(self) -> LabResult:
        totals = Statistics()
        for host in self.hosts.values():
            if host.driver is None:
                continue
            for k, v in host.agent.stats.main_mode.items():
                totals.main_mode[k] += v
            for k, v in host.agent.stats.quick_mode.items():
                totals.quick_mode[k] += v
        injector = self.network.injector
        return LabResult(
            self.topology.deployment.name,
            list(self.results.values()),
            len(self.hosts),
            time.monotonic() - self.started,
            self.notes,
            totals,
            {
                "datagrams_sent": self.network.sent,
                "datagrams_received": self.network.received,
                "dropped_by_fault_injector": injector.dropped,
                "duplicated_by_fault_injector": injector.duplicated,
                "reordered_by_fault_injector": injector.reordered,
                "nat_translations": sum(n.translations for n in self.network.nats.values()),
                "application_resends": self.resent,
            },
        )

    def close(self) -> None:
        for host in self.hosts.values():
            if host.driver is not None:
                host.driver.close()
        self.network.close()
        if self.realm is not None:
            self.realm.close()
            self.realm = None
