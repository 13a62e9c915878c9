"""Two IKE engines paired in memory: policies, credentials and a network
that can drop, duplicate and reorder datagrams."""

from __future__ import annotations

import abc
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from secpath.ike.config import Credentials, IkeConfig, Timing
from secpath.ike.engine import Datagram, IkeEngine
from secpath.ike.events import Event
from secpath.policy.model import (
    CertificateAuth,
    Filter,
    KeyExchangeMethod,
    PskAuth,
    SecurityMethod,
)
from secpath.secret import Secret

from ..policies import one_rule_config
from . import pki

A_ADDR = "10.0.0.1"
B_ADDR = "10.0.0.2"

# name -> (IKE method, ESP method): the four suites and AES-XCBC
SUITES: dict[str, tuple[KeyExchangeMethod, SecurityMethod]] = {
    "3des-sha1-modp1024": (KeyExchangeMethod("sha1", "3des", 2), SecurityMethod("3des", "sha1")),
    "aes128-sha256-modp2048": (
        KeyExchangeMethod("sha256", "aes128", 14), SecurityMethod("aes128", "sha256")),
    "aes256gcm16-prfsha384-ecp384": (
        KeyExchangeMethod("sha384", "aes256gcm", 20), SecurityMethod("aes256gcm", "none")),
    "chacha20poly1305-prfsha256-x25519": (
        KeyExchangeMethod("sha256", "chacha20poly1305", 31),
        SecurityMethod("chacha20poly1305", "none")),
    # AES-XCBC as IKE PRF and integrity (RFC 4434, RFC 3566); ESP has no XCBC here
    "aes128-aesxcbc-modp2048": (
        KeyExchangeMethod("aesxcbc", "aes128", 14), SecurityMethod("aes128", "sha256")),
}

DEFAULT_TIMING = Timing()
E = TypeVar("E")
AuthKind = Literal["psk", "rsa", "ecdsa"]
PSK = Secret(b"a shared secret of the contact center")


def seeded_rng(seed: int) -> Callable[[int], bytes]:
    r = random.Random(seed)
    return r.randbytes


def credentials(kind: AuthKind, me: str, ca_name: str = "A", **leaf: object) -> Credentials:
    if kind == "psk":
        return Credentials(psk=PSK)
    ca = pki.make_ca(ca_name)
    key: pki.PrivateKey = pki.rsa_key(me) if kind == "rsa" else pki.ec_key(me)
    cert = pki.make_leaf(ca, key, ip=me, **leaf)  # type: ignore[arg-type]
    return Credentials(certificate=cert, private_key=key,
                       trust_anchors=(pki.make_ca("A").cert,))


def make_config(
    me: str,
    peer: str,
    *,
    suite: str = "aes128-sha256-modp2048",
    auth: AuthKind = "psk",
    mode: Literal["tunnel", "transport"] = "transport",
    pfs: bool = False,
    ike_methods: tuple[KeyExchangeMethod, ...] | None = None,
    esp_methods: tuple[SecurityMethod, ...] | None = None,
    creds: Credentials | None = None,
    timing: Timing = DEFAULT_TIMING,
    esn: tuple[bool, ...] = (False, True),
    force_udp_encapsulation: bool = False,
    remote_id: str | None = None,
    local_id: str | None = None,
    filters: tuple[Filter, ...] | None = None,
    fragment_size: int = 1280,
) -> IkeConfig:
    ike_m, esp_m = SUITES[suite]
    creds = creds or credentials(auth, me)
    return one_rule_config(
        me, peer, ike_methods or (ike_m,), esp_methods or (esp_m,), creds,
        auth=PskAuth(Path("/nonexistent/psk")) if auth == "psk"
        else CertificateAuth(Path("/nonexistent/ca.pem")),
        filters=filters, pfs=pfs, tunnel=peer if mode == "tunnel" else None,
        remote_id=remote_id, local_id=local_id, timing=timing, esn=esn,
        force_udp_encapsulation=force_udp_encapsulation, fragment_size=fragment_size,
    )


@dataclass
class Side:
    engine: IkeEngine
    address: str
    events: list[Event] = field(default_factory=list)

    def drain(self) -> None:
        while (ev := self.engine.next_event()) is not None:
            self.events.append(ev)

    def of(self, cls: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, cls)]


Filter_ = Callable[[Datagram, str], list[Datagram]]


class Clocked(abc.ABC):
    """Two engines exchanging datagrams on a simulated clock: what the IKEv2
    and IKEv1 pairs share.  ``a``/``b`` have ``engine`` and ``drain()``."""

    a: Any
    b: Any
    now: float

    @abc.abstractmethod
    def _deliver(self, src: Any, dst: Any) -> bool:
        """Carry what ``src`` sends to ``dst``; True if anything moved."""

    def run(self, max_rounds: int = 200) -> None:
        """Exchange datagrams until both sides are quiet."""
        for _ in range(max_rounds):
            moved = self._deliver(self.a, self.b) | self._deliver(self.b, self.a)
            self.a.drain()
            self.b.drain()
            if not moved:
                return
        raise AssertionError("no convergence")

    def advance(self, seconds: float) -> None:
        """Move the clock to the next timers, up to ``seconds`` ahead."""
        end = self.now + seconds
        while True:
            timers = [t for t in (self.a.engine.next_timer(), self.b.engine.next_timer())
                      if t is not None and t <= end]
            if not timers:
                break
            self.now = max(self.now, min(timers))
            self.a.engine.handle_timer(self.now)
            self.b.engine.handle_timer(self.now)
            self.run()
        self.now = end
        self.a.engine.handle_timer(self.now)
        self.b.engine.handle_timer(self.now)
        self.run()


@dataclass
class Pair(Clocked):
    a: Side
    b: Side
    now: float = pki.NOW
    # maps (sender address, datagram) to what arrives: [] drops, [d, d] duplicates
    network: Filter_ | None = None
    delivered: int = 0
    nat: bool = False  # A is behind a NAT: B sees A as 192.0.2.100:<mapped port>

    def _deliver(self, src: Side, dst: Side) -> bool:
        moved = False
        for d in src.engine.datagrams_to_send():
            copies = self.network(d, src.address) if self.network else [d]
            for c in copies:
                moved = True
                self.delivered += 1
                src_addr = src.address
                src_port = c.source_port
                if self.nat and src is self.a:
                    src_addr, src_port = "192.0.2.100", 40000 + c.source_port
                dst.engine.receive_datagram(c.data, (src_addr, src_port), self.now,
                                            local_port=c.destination[1] if not (
                                                self.nat and dst is self.a)
                                            else c.destination[1] - 40000)
        return moved

def make_pair(
    *,
    seed: int = 1,
    a_config: IkeConfig | None = None,
    b_config: IkeConfig | None = None,
    **kwargs: object,
) -> Pair:
    a_cfg = a_config or make_config(A_ADDR, B_ADDR, **kwargs)  # type: ignore[arg-type]
    b_cfg = b_config or make_config(B_ADDR, A_ADDR, **kwargs)  # type: ignore[arg-type]
    a = Side(IkeEngine([a_cfg], seeded_rng(seed)), A_ADDR)
    b = Side(IkeEngine([b_cfg], seeded_rng(seed + 1000)), B_ADDR)
    return Pair(a, b)
