"""Fault scenarios on the lab network (``secpath lab --scenario NAME``), each
a list of checks that must hold:

- ``loss``: 30 % datagram loss and reordering — every path comes up
  (retransmissions) and traffic is verified;
- ``restart``: a host dies mid-run — its peers' dead-peer detection notices,
  SAs are re-established, traffic resumes, nothing is left behind;
- ``rekey``: Child and IKE SA rekeys forced every second under continuous
  traffic — zero lost or duplicated payloads (no resends);
- ``flood``: 10,000 IKE_SA_INIT requests from spoofed loopback sources
  against one host — cookies engage, half-open state stays bounded, a
  legitimate peer still establishes;
- ``replay``: a capture of ESP packets replayed — all dropped and counted;
- ``wrong-ca``: one server's certificate comes from another CA — its paths
  are down with AUTHENTICATION_FAILED, all others up.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from secpath.crypto.dh import generate_dh
from secpath.errors import ParseError
from secpath.ike.config import Credentials, Timing
from secpath.ike.constants import ExchangeType, NotifyType
from secpath.ike.message import Header, Message, decode_message, encode_message
from secpath.ike.payloads import KePayload, NoncePayload, SaPayload
from secpath.ike.proposal import ike_proposals, ike_suites
from secpath.lab.lab import Lab, LabHost, Progress
from secpath.lab.network import Faults
from secpath.lab.pki import LabCa
from secpath.lab.results import LabOptions, LabResult
from secpath.plan.topology import Topology

__all__ = ["SCENARIOS", "Check", "ScenarioResult", "run_scenario"]


@dataclass(frozen=True, slots=True)
class Check:
    what: str
    ok: bool
    detail: str = ""


@dataclass(slots=True)
class ScenarioResult:
    name: str
    description: str
    checks: list[Check] = field(default_factory=list)
    lab: LabResult | None = None
    seconds: float = 0.0
    subject: str = ""  # the server a scenario singles out

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def check(self, what: str, ok: bool, detail: str = "") -> None:
        self.checks.append(Check(what, bool(ok), detail))

    def as_dict(self) -> dict[str, object]:
        return {
            "scenario": self.name,
            "description": self.description,
            "ok": self.ok,
            "seconds": round(self.seconds, 2),
            "checks": [{"what": c.what, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "lab": self.lab.as_dict() if self.lab is not None else None,
        }


async def _up(lab: Lab, result: ScenarioResult, *, expect_all: bool = True) -> None:
    await lab.start()
    await lab.negotiate()
    if expect_all:
        up = sum(1 for r in lab.results.values() if r.established)
        result.check("every path established", up == len(lab.results), f"{up}/{len(lab.results)}")


def _verified(lab: Lab, result: ScenarioResult, what: str = "traffic verified on every path") -> None:
    lab.count()
    missing = len(lab.missing())
    result.check(what, missing == 0, f"{missing} payload(s) missing")


async def _loss(lab: Lab, result: ScenarioResult) -> None:
    await _up(lab, result)
    lab.send_round()
    await lab.settle()
    _verified(lab, result)
    n = lab.network.injector
    result.check(
        "faults were injected",
        n.dropped > 0 and n.reordered > 0,
        f"{n.dropped} dropped, {n.reordered} reordered",
    )


def _busiest(lab: Lab) -> LabHost:
    """The host with the most paths, not behind NAT (its peers can reach it)."""
    counts: dict[str, int] = {}
    for path in lab.plan.paths:
        for end in (path.a, path.b):
            if not lab.behind_nat(end):
                address = str(path.view(end.name)[0])
                counts[address] = counts.get(address, 0) + 1
    return lab.hosts[max(counts, key=lambda a: counts[a])]


def _clean(lab: Lab, result: ScenarioResult) -> None:
    """Nothing left behind: one Child SA and one IKE SA per path end."""
    stale = []
    for host in lab.hosts.values():
        agent = host.agent
        rules = sum(1 for r in host.policy.rules if r.filter_action.behavior.value == "negotiate")
        if len(agent.children) != rules or len(agent.ike_sas) != rules:
            stale.append(
                f"{host.server.name}@{host.address}: {len(agent.ike_sas)} IKE/{len(agent.children)} "
                f"Child SAs for {rules} path(s)"
            )
    result.check("nothing left behind in the monitor", not stale, "; ".join(stale))


async def _restart(lab: Lab, result: ScenarioResult) -> None:
    await _up(lab, result)
    lab.send_round()
    await lab.settle()
    victim = _busiest(lab)
    rules = {r.name for r in victim.policy.rules}
    peers = [
        h for h in lab.hosts.values() if h is not victim and any(r.name in rules for r in h.policy.rules)
    ]
    lab.crash(victim)
    crashed = time.monotonic()
    dpd = lab.timing.dpd_interval or 0.0

    def noticed() -> bool:
        return all(not any(c.rule in rules for c in p.agent.children.values()) for p in peers)

    while not noticed() and time.monotonic() - crashed < 30:
        await asyncio.sleep(0.05)
    took = time.monotonic() - crashed
    # DPD fires after the interval, then retransmissions (RFC 7296 §2.4) give up
    t = lab.timing
    bound = dpd + sum(t.retransmit_timeout * t.retransmit_base**i for i in range(t.retransmit_tries)) + 1.0
    result.check(
        f"{len(peers)} peer(s) of {victim.server.name} noticed it died (dead-peer detection)",
        noticed() and took <= bound,
        f"after {took:.1f} s (interval {dpd:g} s, bound {bound:.1f} s)",
    )
    await lab.restart(victim)
    victim.delivered.clear()
    lab.send_round()
    await lab.settle()
    _verified(lab, result, "traffic resumed on every path")
    await asyncio.sleep(0.5)
    _clean(lab, result)


async def _rekey(lab: Lab, result: ScenarioResult) -> None:
    await _up(lab, result)
    ends = [(lab.host_of(p, p.a), lab.host_of(p, p.b), p.rule) for p in lab.plan.paths]
    started = time.monotonic()
    rekeys = 0
    next_rekey = started + 0.5
    while time.monotonic() - started < 5.0:
        lab.send_round()
        if time.monotonic() >= next_rekey:
            for i, (a, b, rule) in enumerate(ends):
                host = a if (i + rekeys) % 2 == 0 else b
                if host.driver is not None:
                    rekeys += host.driver.rekey(rule, ike=rekeys % 3 == 2)
            next_rekey = time.monotonic() + 1.0
        await asyncio.sleep(0.1)
    await lab.settle(resend=False)
    lab.count()
    sent = sum(r.sent for r in lab.results.values())
    missing = len(lab.missing())
    result.check(f"{rekeys} rekeys (Child and IKE SAs) under traffic", rekeys >= 2 * len(ends), "")
    result.check("zero lost payloads (no resends)", missing == 0, f"{missing} of {sent} lost")
    result.check("zero duplicated payloads", lab.duplicates() == 0, f"{lab.duplicates()} duplicated")
    totals = lab.result().totals
    result.check(
        "the monitor counted the rekeys",
        totals.quick_mode["rekeys"] >= rekeys // 2,
        f"Rekeys {totals.quick_mode['rekeys']}",
    )


class _Flooder(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.cookies = 0
        self.replies = 0

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.replies += 1
        try:
            message = decode_message(data)
        except ParseError:
            return
        if message.notify(NotifyType.COOKIE) is not None:
            self.cookies += 1


async def _flood(lab: Lab, result: ScenarioResult) -> None:
    await _up(lab, result)
    target = _busiest(lab)
    engine = target.agent.engine
    assert engine is not None
    threshold = lab.timing.half_open_threshold
    # one valid IKE_SA_INIT body; each request gets its own SPI and source
    suites = ike_suites(target.policy.key_exchange)
    dh = generate_dh(suites[0].dh_group, os.urandom)
    payloads = (
        SaPayload(ike_proposals(suites)),
        KePayload(suites[0].dh_group, dh.public_bytes),
        NoncePayload(os.urandom(32)),
    )
    loop = asyncio.get_running_loop()
    flooders = []
    sources = 200
    for i in range(sources):
        transport, proto = await loop.create_datagram_endpoint(
            _Flooder, local_addr=(f"127.66.{i // 250}.{i % 250 + 1}", 0), family=socket.AF_INET
        )
        flooders.append((transport, proto))
    # a legitimate peer renegotiates its path with the target during the flood
    path = next(p for p in lab.plan.paths if lab.host_of(p, p.a) is target or lab.host_of(p, p.b) is target)
    peer = lab.host_of(path, path.b) if lab.host_of(path, path.a) is target else lab.host_of(path, path.a)
    port = lab.network.lab_port(500)
    max_half_open = 0
    requests = 10_000
    for n in range(requests):
        transport, _ = flooders[n % sources]
        header = Header(os.urandom(8), bytes(8), ExchangeType.IKE_SA_INIT, 0, initiator=True, response=False)
        transport.sendto(encode_message(Message(header, payloads)), (target.address, port))
        if n % 200 == 199:
            await asyncio.sleep(0)  # let the target answer
            max_half_open = max(max_half_open, engine.negotiations()[1])
        if n == requests // 2:
            assert peer.driver is not None
            peer.driver.terminate(path.rule)
            await asyncio.sleep(0.05)
            peer.driver.initiate(path.rule)
    await asyncio.sleep(1.0)
    max_half_open = max(max_half_open, engine.negotiations()[1])
    cookies = sum(p.cookies for _, p in flooders)
    for transport, _ in flooders:
        transport.close()
    result.check(f"{requests} spoofed IKE_SA_INIT requests from {sources} loopback sources sent", True)
    result.check("cookies engaged (RFC 7296 §2.6)", cookies > 0, f"{cookies} COOKIE answers")
    result.check(
        f"half-open IKE SAs bounded by the threshold ({threshold})",
        max_half_open <= threshold,
        f"at most {max_half_open}",
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not any(c.rule == path.rule for c in peer.agent.children.values()):
        await asyncio.sleep(0.05)
    result.check(
        f"legitimate peer {peer.server.name} established {path.rule} during the flood",
        any(c.rule == path.rule for c in peer.agent.children.values()),
    )


async def _replay(lab: Lab, result: ScenarioResult) -> None:
    await _up(lab, result)
    lab.network.capture = []
    lab.send_round()
    await lab.settle(resend=False)
    captured = [
        (a, o)
        for a, o in lab.network.capture
        if o.source_port == 4500 and len(o.data) > 8 and o.data[:4] != b"\0\0\0\0"
    ]
    lab.network.capture = None
    before = sum(h.agent.stats.quick_mode["packets_with_replay_detection"] for h in lab.hosts.values())
    delivered = sum(len(h.delivered) for h in lab.hosts.values())
    for address, out in captured:
        link = lab.hosts[address].link
        assert link is not None
        lab.network.send(link, out)
    await asyncio.sleep(1.0)
    after = sum(h.agent.stats.quick_mode["packets_with_replay_detection"] for h in lab.hosts.values())
    result.check(f"{len(captured)} captured ESP packets replayed", len(captured) > 0)
    result.check(
        "every replay dropped and counted (Packets With Replay Detection)",
        after - before == len(captured),
        f"{after - before} counted",
    )
    result.check("nothing delivered twice", sum(len(h.delivered) for h in lab.hosts.values()) == delivered)


async def _wrong_ca(lab: Lab, result: ScenarioResult) -> None:
    await _up(lab, result, expect_all=False)
    bad = result.subject
    await asyncio.sleep(0.5)  # the notifications that follow a failed IKE_AUTH (RFC 7296 §2.21.2)

    def installed(rule: str) -> bool:
        return any(c.rule == rule for h in lab.hosts.values() for c in h.agent.children.values())

    down = [r for r in lab.results.values() if bad in (r.a, r.b)]
    up = [r for r in lab.results.values() if bad not in (r.a, r.b)]
    result.check(
        f"every path of {bad} is down",
        bool(down) and not any(installed(r.rule) for r in down),
        ", ".join(r.rule for r in down),
    )
    reasons = {r.rule: r.failure for r in down}
    result.check(
        "with the right reason (AUTHENTICATION_FAILED)",
        all("AUTHENTICATION_FAILED" in why for why in reasons.values()),
        "; ".join(f"{k}: {v}" for k, v in reasons.items()),
    )
    result.check(
        "all other paths up",
        all(installed(r.rule) for r in up),
        f"{sum(installed(r.rule) for r in up)}/{len(up)}",
    )
    totals = lab.result().totals
    result.check(
        "Authentication Failures counted",
        totals.main_mode["authentication_failures"] > 0,
        str(totals.main_mode["authentication_failures"]),
    )


Scenario = Callable[[Lab, ScenarioResult], Awaitable[None]]

SCENARIOS: dict[str, tuple[str, Scenario]] = {
    "loss": ("30% datagram loss and 20% reordering", _loss),
    "restart": ("a host dies mid-run and comes back", _restart),
    "rekey": ("Child and IKE SA rekeys every second under continuous traffic", _rekey),
    "flood": ("10,000 spoofed IKE_SA_INIT requests against one host", _flood),
    "replay": ("a capture of ESP packets replayed", _replay),
    "wrong-ca": ("one server's certificate from another CA", _wrong_ca),
}


async def run_scenario(
    name: str, topology: Topology, options: LabOptions | None = None, progress: Progress | None = None
) -> ScenarioResult:
    description, scenario = SCENARIOS[name]
    options = options or LabOptions()
    timing = Timing(retransmit_timeout=0.5, retransmit_base=1.5, retransmit_tries=8, dpd_interval=None)
    hook = None
    bad_server = ""
    if name == "loss":
        options = replace(options, faults=Faults(loss=0.3, reorder=0.2, delay=0.05))
    elif name == "restart":
        timing = Timing(retransmit_timeout=0.3, retransmit_base=1.5, retransmit_tries=3, dpd_interval=1.0)
    elif name == "rekey":
        options = replace(options, packets_per_direction=1)
    elif name == "wrong-ca":
        other = LabCa("another CA", datetime.datetime.now(datetime.UTC))
        servers = [s for s in topology.servers if s.role.value == "unified-cm"] or list(topology.servers)
        bad_server = servers[-1].name
        bad_cert = other.issue(
            topology.fqdn(servers[-1]),
            [str(a) for a in (servers[-1].visible, servers[-1].private) if a is not None],
        )

        def hook_fn(rule: str, server: str, creds: Credentials) -> Credentials:
            if server != bad_server or creds.certificate is None:
                return creds
            return Credentials(
                certificate=bad_cert.certificate,
                private_key=bad_cert.private_key,
                trust_anchors=creds.trust_anchors,
            )

        hook = hook_fn
        options = replace(options, negotiate_timeout=15.0, retry_failed=False)
    lab = Lab(topology, options, progress, timing=timing, credential_hook=hook)
    result = ScenarioResult(name, description, subject=bad_server)
    started = time.monotonic()
    try:
        await scenario(lab, result)
        result.lab = lab.result()
    finally:
        lab.close()
    result.seconds = time.monotonic() - started
    return result
