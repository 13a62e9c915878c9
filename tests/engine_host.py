"""A sans-IO IKE engine (IKEv2 or IKEv1) on real UDP 500/4500 sockets in a
network namespace of the test's own, and the helpers the engine-level
strongSwan interop tests share."""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from secpath.ike.engine import Datagram
from secpath.ike.events import Event

E = TypeVar("E")


_CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run the block (socket creation) inside namespace ``name``."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(target, _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        yield
    finally:
        libc.setns(home, _CLONE_NEWNET)
        os.close(home)
        os.close(target)


class Engine(Protocol):
    def datagrams_to_send(self) -> list[Datagram]: ...
    def next_event(self) -> Event | None: ...
    def next_timer(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...
    def receive_datagram(
        self, data: bytes, addr: tuple[str, int], now: float, local_port: int = 500
    ) -> None: ...


EngineT = TypeVar("EngineT", bound=Engine)


class EngineHost(Generic[EngineT]):
    """``engine`` on UDP 500/4500 of ``address`` in namespace ``ns``."""

    def __init__(self, ns: str, engine: EngineT, address: str) -> None:
        self.socks: dict[int, socket.socket] = {}
        with in_netns(ns):
            for port in (500, 4500):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind((address, port))
                self.socks[port] = s
        self.address = address
        self.engine = engine
        self.events: list[Event] = []
        self.esp_in: list[bytes] = []  # ESP-in-UDP payloads received on 4500
        self.received: list[bytes] = []  # every IKE datagram, for tshark

    def close(self) -> None:
        for s in self.socks.values():
            s.close()

    def flush(self) -> None:
        for d in self.engine.datagrams_to_send():
            self.socks[d.source_port].sendto(d.data, d.destination)
        while (e := self.engine.next_event()) is not None:
            self.events.append(e)

    def pump(self, until: Callable[[], bool], timeout: float = 15.0, log: Path | None = None) -> None:
        deadline = time.monotonic() + timeout
        self.flush()
        while not until():
            left = deadline - time.monotonic()
            if left <= 0:
                tail = log.read_text(errors="replace")[-3000:] if log else ""
                raise AssertionError(f"timed out; events: {self.events}\n{tail}")
            ready, _, _ = select.select(list(self.socks.values()), [], [], min(left, 0.2))
            for s in ready:
                data, addr = s.recvfrom(65535)
                port = s.getsockname()[1]
                if port == 4500 and data[:4] != bytes(4) and len(data) > 8:
                    self.esp_in.append(data)
                    continue
                self.received.append(data[4:] if port == 4500 else data)
                self.engine.receive_datagram(data, addr, time.time(), local_port=port)
            now = time.time()
            timer = self.engine.next_timer()
            if timer is not None and timer <= now:
                self.engine.handle_timer(now)
            self.flush()

    def of(self, cls: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, cls)]


def checksum(data: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def icmp_echo(src: str, dst: str, ident: int) -> bytes:
    body = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"secpath-interop"
    body = body[:2] + struct.pack("!H", checksum(body + b"\x00" * (len(body) % 2))) + body[4:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), ident, 0, 64, 1, 0,
                         ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + body
