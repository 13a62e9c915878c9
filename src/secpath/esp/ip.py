"""IPv4/IPv6 header facts the ESP engine needs: parsing, checksums, the
outer header of tunnel mode and ECN per RFC 6040.

Pure functions over bytes.  Parsers raise only :class:`EspParseError`.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Final

from secpath.esp.errors import EcnError, EspParseError

__all__ = [
    "CE",
    "ECT0",
    "ECT1",
    "IPPROTO_ESP",
    "IPPROTO_IPV4",
    "IPPROTO_IPV6",
    "IPPROTO_NONE",
    "IPPROTO_TCP",
    "IPPROTO_UDP",
    "NOT_ECT",
    "IpHeader",
    "address_bytes",
    "checksum",
    "ecn_decapsulate",
    "ecn_encapsulate",
    "ipv4_header_checksum",
    "parse_ip",
    "transport_checksum",
]

IPPROTO_IPV4: Final = 4
IPPROTO_TCP: Final = 6
IPPROTO_UDP: Final = 17
IPPROTO_IPV6: Final = 41
IPPROTO_ESP: Final = 50
IPPROTO_NONE: Final = 59  # RFC 8200 §4.7; a dummy ESP packet, RFC 4303 §2.6

# IPv6 extension headers that precede ESP in transport mode (RFC 4303 §3.1.1):
# hop-by-hop options, routing, and destination options before a routing header.
_V6_HOP_BY_HOP: Final = 0
_V6_ROUTING: Final = 43
_V6_FRAGMENT: Final = 44
_V6_DEST_OPTS: Final = 60

_U16 = struct.Struct("!H")

# ECN codepoints (RFC 3168 §5)
NOT_ECT: Final = 0
ECT1: Final = 1
ECT0: Final = 2
CE: Final = 3


def checksum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """Internet checksum (RFC 1071) of ``data`` plus a partial sum ``initial``.

    The ones' complement sum of 16-bit words equals the value of the whole
    buffer modulo 0xFFFF (2**16 ≡ 1), which one big-int operation computes.
    """
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    value = int.from_bytes(data, "big")
    total = value % 0xFFFF
    if total == 0 and value:
        total = 0xFFFF  # a nonzero sum is never "+0" in ones' complement
    total += initial
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_header_checksum(header: bytes | bytearray | memoryview) -> int:
    """RFC 791 header checksum of ``header`` (its checksum field zeroed)."""
    return checksum(header)


def address_bytes(address: str) -> bytes:
    """Packed form of an IPv4 or IPv6 address literal."""
    return ipaddress.ip_address(address).packed


@dataclass(frozen=True, slots=True)
class IpHeader:
    """Where the parts of an IP packet are.

    ``header_end`` is where ESP goes in transport mode (after IPv4 options or
    the IPv6 extension headers of RFC 4303 §3.1.1); ``next_header`` is the
    protocol found there and ``next_header_at`` the offset of the octet that
    names it (IPv4 protocol field, or the last preceding extension header).
    """

    version: int
    header_end: int
    total_length: int
    next_header: int
    next_header_at: int
    traffic_class: int
    source: bytes
    destination: bytes


def parse_ip(packet: bytes | bytearray | memoryview, *, transport: bool = False) -> IpHeader:
    """Parse the IP header at the start of ``packet`` (bounded, total).

    With ``transport`` the IPv6 extension headers that stay in front of ESP
    are walked; a fragment refuses (ESP applies to whole datagrams,
    RFC 4303 §3.3.4 — the fragment is reassembled first).
    """
    n = len(packet)
    if n < 1:
        raise EspParseError("empty IP packet")
    version = packet[0] >> 4
    if version == 4:
        if n < 20:
            raise EspParseError(f"IPv4 header needs 20 bytes, {n} given")
        ihl = (packet[0] & 0x0F) * 4
        total = _U16.unpack_from(packet, 2)[0]
        if ihl < 20 or total < ihl or total > n:
            raise EspParseError(f"IPv4 header length {ihl}/total length {total} of {n} bytes")
        if _U16.unpack_from(packet, 6)[0] & 0x3FFF:
            raise EspParseError("IPv4 fragment: ESP needs the reassembled datagram")
        return IpHeader(4, ihl, total, packet[9], 9, packet[1],
                        bytes(packet[12:16]), bytes(packet[16:20]))
    if version == 6:
        if n < 40:
            raise EspParseError(f"IPv6 header needs 40 bytes, {n} given")
        total = 40 + _U16.unpack_from(packet, 4)[0]
        if total > n:
            raise EspParseError(f"IPv6 payload length {total - 40} of {n - 40} bytes")
        traffic_class = ((packet[0] & 0x0F) << 4) | (packet[1] >> 4)
        nh, nh_at, end = packet[6], 6, 40
        if transport:
            seen_routing = False
            while nh in (_V6_HOP_BY_HOP, _V6_ROUTING, _V6_DEST_OPTS, _V6_FRAGMENT):
                if nh == _V6_FRAGMENT:
                    raise EspParseError("IPv6 fragment: ESP needs the reassembled datagram")
                if end + 2 > total:
                    raise EspParseError("IPv6 extension header truncated")
                if nh == _V6_DEST_OPTS and (seen_routing or packet[end] != _V6_ROUTING):
                    break  # RFC 4303 §3.1.1: these destination options follow ESP
                seen_routing = seen_routing or nh == _V6_ROUTING
                ext_len = (packet[end + 1] + 1) * 8
                if end + ext_len > total:
                    raise EspParseError("IPv6 extension header truncated")
                nh, nh_at, end = packet[end], end, end + ext_len
        return IpHeader(6, end, total, nh, nh_at, traffic_class,
                        bytes(packet[8:24]), bytes(packet[24:40]))
    raise EspParseError(f"IP version {version}")


def ecn_encapsulate(inner_tos: int) -> int:
    """Outer TOS/traffic class from the inner one (RFC 6040 §4.1, normal
    mode): DSCP copied (RFC 4301 §5.1.2.1), ECN copied except CE → ECT(0)."""
    if inner_tos & 3 == CE:
        return (inner_tos & 0xFC) | ECT0
    return inner_tos


def ecn_decapsulate(inner_ecn: int, outer_ecn: int) -> int:
    """Inner ECN after decapsulation (RFC 6040 §4.2, Figure 4).

    Raises :class:`EcnError` for the one drop cell: outer CE, inner Not-ECT.
    """
    if outer_ecn == CE:
        if inner_ecn == NOT_ECT:
            raise EcnError("outer CE on a Not-ECT inner packet (RFC 6040 §4.2)")
        return CE
    if outer_ecn == ECT1 and inner_ecn == ECT0:
        return ECT1
    return inner_ecn


def pseudo_header_sum(source: bytes, destination: bytes, protocol: int, length: int) -> int:
    """Partial sum of the TCP/UDP pseudo-header (RFC 768, RFC 8200 §8.1)."""
    s = int.from_bytes(source + destination, "big") % 0xFFFF
    return s + protocol + (length & 0xFFFF) + (length >> 16)


def transport_checksum(
    source: bytes, destination: bytes, protocol: int, segment: bytes | bytearray
) -> int:
    """TCP/UDP checksum of ``segment`` (its checksum field zeroed) between
    ``source`` and ``destination``; a UDP result of 0 is sent as 0xFFFF."""
    value = checksum(segment, pseudo_header_sum(source, destination, protocol, len(segment)))
    if protocol == IPPROTO_UDP and value == 0:
        return 0xFFFF
    return value
