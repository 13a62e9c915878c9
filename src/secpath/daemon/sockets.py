"""The daemon's sockets for IPv4 and IPv6: IKE/NAT-T over UDP, and raw
sockets for ESP (IP protocol 50) and for packets the agent sends in clear.

The agent works on whole IP packets.  IPv4 raw sockets hand them over as
they are (``IPPROTO_RAW`` implies ``IP_HDRINCL``; an ESP socket receives the
IPv4 header).  IPv6 raw sockets do not: an ``AF_INET6`` ESP socket delivers
the payload after the IPv6 header, so :class:`RawSockets` builds that header
again from the source (``recvfrom``) and destination (``IPV6_PKTINFO``)
addresses; for sending, an ``AF_INET6``/``IPPROTO_RAW`` socket takes the
whole IPv6 packet (the kernel's ``hdrincl`` path for IPv6).  Every socket
carries the daemon's firewall mark so it bypasses the routes into the TUN
device.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterator

from secpath.errors import LocalError

__all__ = ["IPPROTO_ESP", "RawSockets", "ipv6_header", "udp_socket"]

IPPROTO_ESP = 50
_V6 = struct.Struct("!IHBB16s16s")
_PKTINFO = struct.Struct("16sI")  # struct in6_pktinfo


def udp_socket(address: str, port: int, mark: int) -> socket.socket:
    """A non-blocking UDP socket bound to ``address:port``, marked; IPv6 only
    for an IPv6 address (its IPv4 twin, if any, has a socket of its own)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
    except OSError as exc:
        sock.close()
        raise LocalError(f"cannot bind UDP {address}:{port}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


def ipv6_header(source: bytes, destination: bytes, next_header: int, payload_length: int) -> bytes:
    """A fixed IPv6 header (RFC 8200 §3) for a payload a raw socket stripped."""
    return _V6.pack(0x60000000, payload_length, next_header, 64, source, destination)


class RawSockets:
    """The raw sockets of one address family: ESP in, whole packets out."""

    def __init__(self, family: int, mark: int) -> None:
        self.family = family
        out = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_RAW)
        try:
            out.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
            esp = socket.socket(family, socket.SOCK_RAW, IPPROTO_ESP)
        except OSError:
            out.close()
            raise
        try:
            esp.setblocking(False)
            if family == socket.AF_INET6:
                esp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        except OSError:
            out.close()
            esp.close()
            raise
        self.out = out
        self.esp = esp

    def fileno(self) -> int:
        """The descriptor to wait on for ESP."""
        return self.esp.fileno()

    def send(self, packet: bytes, destination: str) -> None:
        """Send a whole IP packet (its header included) to ``destination``."""
        self.out.sendto(packet, (destination, 0))

    def receive(self, limit: int = 64) -> Iterator[tuple[bytes, bytes]]:
        """Up to ``limit`` waiting ESP packets as (packed local address,
        whole IP packet); stops when none is waiting."""
        if self.family == socket.AF_INET:
            for _ in range(limit):
                try:
                    packet = self.esp.recv(65535)
                except BlockingIOError:
                    return
                if len(packet) >= 20:
                    yield packet[16:20], packet
            return
        space = socket.CMSG_SPACE(_PKTINFO.size)
        for _ in range(limit):
            try:
                payload, ancillary, _flags, source = self.esp.recvmsg(65535, space)
            except BlockingIOError:
                return
            destination = b""
            for level, kind, data in ancillary:
                if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO and len(data) >= 16:
                    destination = data[:16]
            if not destination:
                continue
            src = ipaddress.IPv6Address(source[0].split("%", 1)[0]).packed
            yield destination, ipv6_header(src, destination, IPPROTO_ESP, len(payload)) + payload

    def close(self) -> None:
        self.out.close()
        self.esp.close()
