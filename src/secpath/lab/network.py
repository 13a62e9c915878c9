"""The lab network: real UDP sockets on loopback addresses (127.0.0.0/8), an
in-process NAPT for sites behind NAT, and a fault injector.

Every lab host owns one loopback address and binds two sockets on it: its
"port 500" and its "port 4500", mapped to unprivileged ports
(``port_base + 500`` and ``port_base + 4500``) so no root is needed.  Ports
are translated at the socket boundary only: the agents see 500 and 4500.

A host behind NAT sends to other sites through its site's :class:`NatBox`,
which owns the site's public address: each (private address, port) gets
its own socket there (port translation, as the guide's NAT routers do), and
what comes back to that socket is handed to the private host with the
outside source intact.  Replies only: nothing reaches a private host unless
it sent first, so hosts behind NAT are the initiators.

The fault injector drops, duplicates, delays and reorders datagrams on
every real send, with an injected random generator.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from secpath.agent import Outgoing
from secpath.errors import LocalError

__all__ = ["FaultInjector", "Faults", "LabHostLink", "LabNetwork", "NatBox"]

Receive = Callable[[bytes, tuple[str, int], int], None]  # data, (source address, port), local port
AGENT_PORTS = (500, 4500)


@dataclass(frozen=True, slots=True)
class Faults:
    loss: float = 0.0  # probability a datagram is dropped
    duplicate: float = 0.0  # probability it is sent twice
    reorder: float = 0.0  # probability it is held back behind later ones
    delay: float = 0.0  # extra delay of a held-back datagram, seconds (max)

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise LocalError(f"--{name} must be in [0, 1), got {value}")
        if self.delay < 0:
            raise LocalError("delay must be >= 0")


@dataclass(slots=True)
class FaultInjector:
    faults: Faults
    rng: random.Random
    loop: asyncio.AbstractEventLoop
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0

    def send(self, do_send: Callable[[], None]) -> None:
        f = self.faults
        if f.loss and self.rng.random() < f.loss:
            self.dropped += 1
            return
        copies = 2 if f.duplicate and self.rng.random() < f.duplicate else 1
        self.duplicated += copies - 1
        for _ in range(copies):
            if f.reorder and self.rng.random() < f.reorder:
                self.reordered += 1
                self.loop.call_later(0.002 + self.rng.random() * max(f.delay, 0.02), do_send)
            else:
                do_send()


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None
        self.errors = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.on_datagram(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        self.errors += 1


@dataclass(slots=True)
class LabHostLink:
    """A host's attachment: its address, its sockets, its NAT (if any)."""

    address: str
    site: str
    receive: Receive
    nat: NatBox | None
    sockets: dict[int, _Socket] = field(default_factory=dict)  # agent port -> socket


class NatBox:
    """A NAPT router's outside address for one site."""

    def __init__(self, network: LabNetwork, public_address: str, site: str) -> None:
        self.network = network
        self.public_address = public_address
        self.site = site
        self._mappings: dict[tuple[str, int], _Socket] = {}  # (private addr, agent port)
        self.translations = 0

    async def map(self, link: LabHostLink, agent_port: int) -> None:
        """Open the outside socket for (``link``, ``agent_port``): a new port
        on the public address, chosen by the system as a NAPT would."""

        def back(
            data: bytes, source: tuple[str, int], link: LabHostLink = link, port: int = agent_port
        ) -> None:
            self.network.deliver(link, data, source, port)

        self._mappings[(link.address, agent_port)] = await self.network.bind(self.public_address, 0, back)

    def unmap(self, link: LabHostLink) -> list[_Socket]:
        gone = [
            self._mappings.pop((link.address, p)) for p in AGENT_PORTS if (link.address, p) in self._mappings
        ]
        return gone

    def socket_for(self, link: LabHostLink, agent_port: int) -> _Socket:
        self.translations += 1
        return self._mappings[(link.address, agent_port)]


class LabNetwork:
    def __init__(self, *, port_base: int = 30000, faults: Faults | None = None, seed: int = 0) -> None:
        self.port_base = port_base
        self.faults = faults or Faults()
        self.rng = random.Random(seed)
        self.links: dict[str, LabHostLink] = {}
        self.nats: dict[str, NatBox] = {}
        self._sockets: list[_Socket] = []
        self._injector: FaultInjector | None = None
        self.sent = 0
        self.received = 0
        # when a list: every datagram sent, with its sender (the "replay" scenario)
        self.capture: list[tuple[str, Outgoing]] | None = None

    def lab_port(self, agent_port: int) -> int:
        return self.port_base + agent_port if agent_port in AGENT_PORTS else agent_port

    def agent_port(self, lab_port: int) -> int:
        for p in AGENT_PORTS:
            if lab_port == self.port_base + p:
                return p
        return lab_port

    @property
    def injector(self) -> FaultInjector:
        if self._injector is None:
            self._injector = FaultInjector(self.faults, self.rng, asyncio.get_running_loop())
        return self._injector

    async def bind(
        self, address: str, port: int, on_datagram: Callable[[bytes, tuple[str, int]], None]
    ) -> _Socket:
        loop = asyncio.get_running_loop()
        try:
            _, proto = await loop.create_datagram_endpoint(
                lambda: _Socket(on_datagram), local_addr=(address, port), family=socket.AF_INET
            )
        except OSError as exc:
            raise LocalError(
                f"lab: cannot bind {address}:{port}: {exc.strerror} (another lab running? try --port-base)"
            ) from None
        self._sockets.append(proto)
        return proto

    def add_nat(self, site: str, public_address: str) -> NatBox:
        box = self.nats.get(site)
        if box is None:
            box = self.nats[site] = NatBox(self, public_address, site)
        return box

    async def attach(
        self, address: str, site: str, receive: Receive, nat: NatBox | None = None
    ) -> LabHostLink:
        if address in self.links:
            raise LocalError(f"lab: address {address} is used twice")
        link = LabHostLink(address, site, receive, nat)
        for port in AGENT_PORTS:

            def on(data: bytes, source: tuple[str, int], link: LabHostLink = link, port: int = port) -> None:
                self.deliver(link, data, source, port)

            link.sockets[port] = await self.bind(address, self.lab_port(port), on)
            if nat is not None:
                await nat.map(link, port)
        self.links[address] = link
        return link

    def detach(self, address: str) -> None:
        """The host at ``address`` leaves: its sockets (and NAT mappings) close."""
        link = self.links.pop(address, None)
        if link is None:
            return
        closing = list(link.sockets.values())
        if link.nat is not None:
            closing += link.nat.unmap(link)
        for sock in closing:
            if sock.transport is not None:
                sock.transport.close()
            if sock in self._sockets:
                self._sockets.remove(sock)

    def deliver(self, link: LabHostLink, data: bytes, source: tuple[str, int], agent_port: int) -> None:
        self.received += 1
        link.receive(data, (source[0], self.agent_port(source[1])), agent_port)

    def send(self, link: LabHostLink, out: Outgoing) -> None:
        """Send ``out`` from ``link``: directly, or through its site's NAT."""
        if out.source_port == 0:
            raise LocalError("lab: raw IP packets cannot be sent without root (force UDP encapsulation)")
        destination = (out.destination[0], self.lab_port(out.destination[1]))
        dest_link = self.links.get(out.destination[0])
        same_site = dest_link is not None and dest_link.site == link.site
        if link.nat is not None and not same_site:
            sock = link.nat.socket_for(link, out.source_port)
        else:
            sock = link.sockets[out.source_port]
        transport = sock.transport
        if transport is None:
            return
        self.sent += 1
        if self.capture is not None:
            self.capture.append((link.address, out))

        def do_send() -> None:
            if not transport.is_closing():
                transport.sendto(out.data, destination)

        self.injector.send(do_send)

    def close(self) -> None:
        for sock in self._sockets:
            if sock.transport is not None:
                sock.transport.close()
        self._sockets.clear()
