"""The agent's former ESP-in-UDP path, kept as the reference that the
SA's UDP-socket API (``encapsulate_udp_payload`` /
``decapsulate_udp_payload``) is tested and benchmarked against: the whole
outer packet built and its IP/UDP header cut off to send; on receive, an
IP/UDP header put back in front of the datagram for ``decapsulate``."""

from __future__ import annotations

import ipaddress
import struct

from secpath.esp import ip as _ip

__all__ = ["UdpHeaders", "outer_udp_header", "strip_outer_udp"]

_V4 = struct.Struct("!BBHHHBBH4s4s")
_V6 = struct.Struct("!IHBB16s16s")
_UDP = struct.Struct("!HHHH")


class UdpHeaders:
    """IPv4 + UDP headers for ESP-in-UDP payloads that came through a UDP
    socket (the kernel removed them; the SA wants the whole packet).  The
    packed addresses are cached per peer; the IPv4 checksum is left 0, as the
    SA does not read it (what it rebuilds in transport mode gets a new one)."""

    __slots__ = ("_packed",)
    _V4UDP = struct.Struct("!BBHHHBBH4s4sHHHH")

    def __init__(self) -> None:
        self._packed: dict[str, bytes] = {}

    def _pack(self, address: str) -> bytes:
        packed = self._packed.get(address)
        if packed is None:
            if len(self._packed) > 4096:
                self._packed.clear()
            packed = self._packed[address] = ipaddress.ip_address(address).packed
        return packed

    def header(
        self, source: str, destination: str, source_port: int, destination_port: int, length: int
    ) -> bytes:
        src, dst = self._pack(source), self._pack(destination)
        if len(src) == 4 and len(dst) == 4:
            return self._V4UDP.pack(
                0x45,
                0,
                28 + length,
                0,
                0x4000,
                64,
                _ip.IPPROTO_UDP,
                0,
                src,
                dst,
                source_port,
                destination_port,
                8 + length,
                0,
            )
        return outer_udp_header(source, destination, source_port, destination_port, length)


def outer_udp_header(
    source: str, destination: str, source_port: int, destination_port: int, length: int
) -> bytes:
    """An IPv4/IPv6 + UDP header for ``length`` bytes of UDP payload, as the
    packet arrived before the socket stripped it (RFC 3948 §2.1: checksum 0)."""
    src = ipaddress.ip_address(source)
    dst = ipaddress.ip_address(destination)
    udp = _UDP.pack(source_port, destination_port, 8 + length, 0)
    if src.version == 4:
        header = bytearray(
            _V4.pack(0x45, 0, 28 + length, 0, 0x4000, 64, _ip.IPPROTO_UDP, 0, src.packed, dst.packed)
        )
        header[10:12] = struct.pack("!H", _ip.ipv4_header_checksum(header))
        return bytes(header) + udp
    return _V6.pack(0x60000000, 8 + length, _ip.IPPROTO_UDP, 64, src.packed, dst.packed) + udp


def strip_outer_udp(wire: bytes) -> bytes:
    """The UDP payload of an ESP-in-UDP packet built by an SA (what a UDP
    socket sends; the kernel writes the IP and UDP headers again)."""
    if wire[0] >> 4 == 4:
        return wire[(wire[0] & 0x0F) * 4 + 8 :]
    h = _ip.parse_ip(wire, transport=True)
    return wire[h.header_end + 8 :]
