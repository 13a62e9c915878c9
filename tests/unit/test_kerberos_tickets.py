"""The daemon's driver fetches Kerberos tickets off the event loop
(docs/kerberos.md §8): while the KDC is slow to answer, the loop goes on
serving another peer; the IKE SA starts once the ticket is in the cache, and
the engine's own GSS-API call then needs no KDC.

The KDC is reached through a relay on loopback that holds every request
until the test opens its gate: the test opens it only after the other peer
was served, so a loop blocked on the KDC could never get there.  Proved by
the order of events, not by time."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from secpath.agent import AgentEvent, Outgoing, PolicyAgent
from secpath.agent.methods import TicketRequest
from secpath.daemon.driver import AgentDriver
from secpath.ike.config import Credentials, Timing
from secpath.ike.credentials import load_kerberos_auth
from secpath.policy.loader import parse_policy
from secpath.policy.model import KerberosAuth, Policy
from secpath.secret import Secret

from ..kdc import Kdc, needs_kdc

pytestmark = needs_kdc

A, B, C = "10.0.0.1", "10.0.0.2", "10.0.0.3"
PSK = Secret(b"the other peer's shared secret, long enough")


class GatedKdc:
    """A UDP relay to the real KDC that holds each request until ``gate``
    is set; ``requests`` counts what it received."""

    def __init__(self, kdc_port: int) -> None:
        self.kdc = ("127.0.0.1", kdc_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.gate = threading.Event()
        self.stop = threading.Event()
        self.requests = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                data, client = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            self.requests += 1
            while not self.gate.wait(0.1):
                if self.stop.is_set():
                    return
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
                up.settimeout(5.0)
                up.sendto(data, self.kdc)
                with contextlib.suppress(TimeoutError):
                    self.sock.sendto(up.recv(65535), client)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def gated(realm: Kdc, monkeypatch: pytest.MonkeyPatch) -> Iterator[GatedKdc]:
    relay = GatedKdc(realm.realm.portbase)
    env = realm.realm.special_env(
        "gated", False, krb5_conf={"realms": {"$realm": {"kdc": f"127.0.0.1:{relay.port}"}},
                                   "libdefaults": {"udp_preference_limit": "1465"}})
    monkeypatch.setenv("KRB5_CONFIG", env["KRB5_CONFIG"])
    try:
        yield relay
    finally:
        relay.close()


def policy(me: str, rules: dict[str, tuple[str, dict[str, Any]]]) -> Policy:
    """``rules``: name -> (peer, authentication method)."""
    return parse_policy(_raw(me, rules))


def _raw(me: str, rules: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    return {
        "policy": {"name": f"host {me}"},
        "local": {"addresses": [me]},
        "key_exchange": {"method": [{"integrity": "sha256", "encryption": "aes128gcm",
                                     "dh_group": 19}]},
        "filter_list": [{"name": n, "filter": [{"source": "me", "destination": peer}]}
                        for n, (peer, _) in rules.items()],
        "filter_action": [{"name": "act", "behavior": "negotiate",
                           "security_method": [{"encryption": "aes128gcm"}]}],
        "rule": [{"name": n, "filter_list": n, "filter_action": "act", "peer": peer,
                  "authentication": [method]} for n, (peer, method) in rules.items()],
    }


def _drivers(agents: dict[str, PolicyAgent], order: list[str]) -> dict[str, AgentDriver]:
    """A driver per agent on the running loop, datagrams carried in memory;
    what the first agent reports goes to ``order``."""
    loop = asyncio.get_running_loop()
    drivers: dict[str, AgentDriver] = {}

    def sender(src: str) -> Callable[[Outgoing], None]:
        def send(out: Outgoing) -> None:
            dst = drivers.get(out.destination[0])
            if dst is not None and out.source_port:
                loop.call_soon(dst.datagram, out.data, (src, out.source_port), out.destination[1])

        return send

    def on_event(e: AgentEvent) -> None:
        if e.kind in ("ticket", "ike-up", "ike-failed", "auth-fallback"):
            order.append(f"{e.kind} {e.peer}: {e.detail}")

    first = next(iter(agents))
    for name, ag in agents.items():
        drivers[name] = AgentDriver(ag, sender(name), lambda p: None,
                                    on_event if name == first else None, loop=loop)
    return drivers


def agent(p: Policy, seed: int) -> PolicyAgent:
    creds: dict[str, Credentials] = {}
    for rule in p.rules:
        m = rule.authentication[0]
        creds[rule.name] = load_kerberos_auth(m) if isinstance(m, KerberosAuth) else Credentials(psk=PSK)
    return PolicyAgent(p, random.Random(seed).randbytes, credentials=creds,
                       timing=Timing(dpd_interval=None))


async def until(what: Callable[[], bool], limit: int = 400) -> bool:
    """Let the loop run until ``what`` holds (a bounded number of turns)."""
    for _ in range(limit):
        if what():
            return True
        await asyncio.sleep(0.025)
    return what()


def _closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_kdc_falls_back_to_the_next_method(realm: Kdc,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The ticket fetch fails in the worker (nothing listens where the KDC
    should be): the agent goes on with the rule's next method."""
    env = realm.realm.special_env(
        "unreachable", False,
        krb5_conf={"realms": {"$realm": {"kdc": f"127.0.0.1:{_closed_udp_port()}"}},
                   "libdefaults": {"udp_preference_limit": "1465", "max_retries": "1"}})
    monkeypatch.setenv("KRB5_CONFIG", env["KRB5_CONFIG"])
    kerberos = {"method": "kerberos", "keytab": str(realm.host("alpha.example")),
                "service_principal": realm.principal("beta.example")}
    psk = {"method": "psk", "secret_file": "/nonexistent/psk"}
    p_a = parse_policy({**_raw(A, {"to-b": (B, kerberos)}),
                        "rule": [{"name": "to-b", "filter_list": "to-b", "filter_action": "act",
                                  "peer": B, "authentication": [kerberos, psk]}]})
    first = p_a.rules[0].authentication[0]
    assert isinstance(first, KerberosAuth)
    a = PolicyAgent(p_a, random.Random(11).randbytes, timing=Timing(dpd_interval=None),
                    credentials={"to-b": [load_kerberos_auth(first), Credentials(psk=PSK)]})
    agents = {A: a, B: agent(policy(B, {"to-b": (A, psk)}), 12)}
    order: list[str] = []

    async def scenario() -> None:
        drivers = _drivers(agents, order)
        try:
            drivers[A].initiate("to-b")
            assert await until(lambda: any(o.startswith(f"ike-up {B}") for o in order)), order
        finally:
            for d in drivers.values():
                d.close()

    asyncio.run(scenario())
    kinds = [o.split(":")[0] for o in order]
    assert kinds == [f"ticket {B}", f"auth-fallback {B}", f"ike-up {B}"], order
    assert "authenticated by psk (kerberos failed: Kerberos: no ticket for host/beta.example@" in order[-1]
    assert a.stats.rule("to-b").last_failure == ""


def test_a_slow_kdc_does_not_stop_the_loop(realm: Kdc, gated: GatedKdc) -> None:
    kerberos = {"method": "kerberos", "keytab": str(realm.host("alpha.example")),
                "service_principal": realm.principal("beta.example")}
    b_kerberos = {"method": "kerberos", "keytab": str(realm.host("beta.example"))}
    psk = {"method": "psk", "secret_file": "/nonexistent/psk"}
    agents = {
        A: agent(policy(A, {"to-b": (B, kerberos), "to-c": (C, psk)}), 1),
        B: agent(policy(B, {"to-b": (A, b_kerberos)}), 2),
        C: agent(policy(C, {"to-c": (A, psk)}), 3),
    }
    order: list[str] = []  # what A reported, and when the gate opened
    fetched_with: list[int] = []  # KDC requests seen when A's ticket fetch returned

    async def scenario() -> None:
        drivers = _drivers(agents, order)
        a = agents[A]
        ticket_done = a.ticket_done

        def record(request: TicketRequest, error: str | None, now: float) -> None:
            fetched_with.append(gated.requests)
            gated.gate.clear()  # from now on a KDC request would hang
            ticket_done(request, error, now)

        a.ticket_done = record  # type: ignore[method-assign]
        try:
            drivers[A].initiate("to-b")  # the ticket fetch starts, the KDC holds it
            assert await until(lambda: gated.requests >= 1), order
            assert drivers[A].tickets_in_flight == 1
            drivers[C].initiate("to-c")  # meanwhile another peer negotiates with A
            assert await until(lambda: any(o.startswith(f"ike-up {C}") for o in order)), order
            order.append("gate opened")
            gated.gate.set()
            assert await until(lambda: any(o.startswith(f"ike-up {B}") for o in order)), order
        finally:
            for d in drivers.values():
                d.close()

    asyncio.run(scenario())
    kinds = [o.split(":")[0] for o in order]
    assert kinds == [f"ticket {B}", f"ike-up {C}", "gate opened", f"ike-up {B}"], order
    assert order[-1].endswith("authenticated by kerberos"), order
    # the engine's GSS_Init_sec_context found the ticket in the cache: no KDC request after the fetch
    assert fetched_with and gated.requests == fetched_with[0], (fetched_with, gated.requests)
    assert os.environ["KRB5_CONFIG"].endswith("krb5.conf.gated")
