"""Packet surgery of the two ESP modes (RFC 4303 §3.1).

Transport mode keeps the IP header, with protocol, length and checksum
fixed around ESP; tunnel mode carries a whole inner packet, whose end and
ECN field are settled at decapsulation.  Pure functions over bytes.
"""

from __future__ import annotations

import struct
from typing import Final

from secpath.esp import ip as _ip
from secpath.esp.errors import DecryptError, DummyPacket
from secpath.esp.ip import (
    IPPROTO_ESP,
    IPPROTO_IPV4,
    IPPROTO_IPV6,
    IPPROTO_NONE,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IpHeader,
)

__all__ = [
    "PADDING",
    "V4_AEAD_TRAILERS",
    "V4_TRAILERS",
    "aead_aad",
    "aead_nonce",
    "ecn_decapsulate_packet",
    "inner_packet",
    "inner_v4_length",
    "nat_checksum",
    "rebuild_transport",
    "trailers",
    "transport_header",
]

_H = struct.Struct("!H")
_II = struct.Struct("!II")
_HHHH = struct.Struct("!HHHH")

# The AEAD fast paths' packers (bound methods: one global load each)
aead_nonce = struct.Struct("!4sQ").pack  # salt || IV (RFC 4106 §4, RFC 7634 §2)
aead_aad = _II.pack  # SPI || sequence number (RFC 4106 §5, RFC 7634 §2.2)
inner_v4_length = struct.Struct("!BxH").unpack_from  # version/IHL, total length

# RFC 4303 §2.4: padding octets are 1, 2, 3, ...; Pad Length follows them
PADDING: Final = tuple(bytes(range(1, n + 1)) + bytes((n,)) for n in range(256))
# every valid trailer of an IPv4 packet, by Pad Length
V4_TRAILERS: Final = tuple(padding + bytes((IPPROTO_IPV4,)) for padding in PADDING)
# an AEAD's 4-octet alignment (RFC 4106 §3.2): trailer and its length, by
# the packet length modulo 4
V4_AEAD_TRAILERS: Final = tuple(
    (V4_TRAILERS[(-r - 2) & 3], ((-r - 2) & 3) + 2) for r in range(4)
)


def trailers(next_header: int, align: int) -> tuple[bytes, ...]:
    """Padding + Pad Length + Next Header for every pad length below ``align``."""
    return tuple(PADDING[n] + bytes((next_header,)) for n in range(align))


def transport_header(packet: bytes, h: IpHeader, *, esp_len: int,
                     udp_ports: tuple[int, int] | None, spi: int, seq: int) -> bytes:
    """The IP header of ``packet`` (``h``) rewritten to carry ESP of
    ``esp_len`` octets, then the UDP header (RFC 3948 §2.1) and the ESP
    header (RFC 4303 §3.1.1: ESP follows the IP header and the extension
    headers that must precede it)."""
    end = h.header_end
    header = bytearray(packet[:end])
    header[h.next_header_at] = IPPROTO_UDP if udp_ports else IPPROTO_ESP
    extra = 8 if udp_ports else 0
    if h.version == 4:
        header[2:4] = _H.pack(end + extra + esp_len)
        header[10:12] = b"\x00\x00"
        header[10:12] = _H.pack(_ip.ipv4_header_checksum(header))
    else:
        header[4:6] = _H.pack(end - 40 + extra + esp_len)
    if udp_ports:
        header += _HHHH.pack(udp_ports[0], udp_ports[1], 8 + esp_len, 0)  # zero checksum
    header += _II.pack(spi, seq & 0xFFFFFFFF)
    return bytes(header)


def rebuild_transport(packet: bytes, esp_at: int, proto_at: int, *, version: int,
                      payload: bytes, next_header: int, nat_traversal: bool) -> bytes:
    """The transport-mode packet after ESP: the received IP header up to
    ``esp_at`` with Next Header restored at ``proto_at`` and the length and
    checksum fixed (RFC 4303 §3.4), then the decrypted payload."""
    header = bytearray(packet[:esp_at])
    header[proto_at] = next_header
    if version == 4:
        header[2:4] = _H.pack(esp_at + len(payload))
        header[10:12] = b"\x00\x00"
        header[10:12] = _H.pack(_ip.ipv4_header_checksum(header))
        src, dst = packet[12:16], packet[16:20]
    else:
        header[4:6] = _H.pack(esp_at - 40 + len(payload))
        src, dst = packet[8:24], packet[24:40]
    if nat_traversal:
        payload = nat_checksum(src, dst, next_header, payload, version)
    return bytes(header) + payload


def nat_checksum(src: bytes, dst: bytes, next_header: int, payload: bytes,
                 version: int) -> bytes:
    """RFC 3948 §3.1.2: behind a NAT the TCP/UDP checksum covers addresses
    that changed on the way; it is recomputed over the ones received."""
    if next_header == IPPROTO_TCP and len(payload) >= 20:
        at = 16
    elif next_header == IPPROTO_UDP and len(payload) >= 8:
        at = 6
        if version == 4 and payload[6:8] == b"\x00\x00":
            return payload  # RFC 768: no checksum was sent
    else:
        return payload
    segment = bytearray(payload)
    segment[at : at + 2] = b"\x00\x00"
    segment[at : at + 2] = _H.pack(_ip.transport_checksum(src, dst, next_header, segment))
    return bytes(segment)


def inner_packet(plain: bytes, payload_end: int, next_header: int) -> bytes:
    """The inner packet of a tunnel-mode payload: Next Header says IPv4 or
    IPv6, the inner header's length says where it ends (RFC 4303 §2.7: TFC
    padding may follow).  Next Header 59 is a dummy packet (§2.6)."""
    if next_header == IPPROTO_NONE:
        raise DummyPacket("dummy packet (RFC 4303 §2.6)")
    if next_header == IPPROTO_IPV4 and payload_end >= 20 and plain[0] >> 4 == 4:
        inner_len = plain[2] << 8 | plain[3]
    elif next_header == IPPROTO_IPV6 and payload_end >= 40 and plain[0] >> 4 == 6:
        inner_len = 40 + (plain[4] << 8 | plain[5])
    else:
        raise DecryptError(f"tunnel mode payload is not the IP packet next header "
                           f"{next_header} announces")
    if inner_len > payload_end or inner_len < 20:
        raise DecryptError(f"inner packet length {inner_len} of {payload_end} bytes")
    return plain[:inner_len]


def ecn_decapsulate_packet(inner: bytes, outer_ecn: int) -> bytes:
    """``inner`` with its ECN field combined with the outer one (RFC 6040
    §4.2) and, for IPv4, its header checksum fixed."""
    version = inner[0] >> 4
    inner_ecn = inner[1] & 3 if version == 4 else (inner[1] >> 4) & 3
    ecn = _ip.ecn_decapsulate(inner_ecn, outer_ecn)
    if ecn == inner_ecn:
        return inner
    fixed = bytearray(inner)
    if version == 4:
        fixed[1] = (inner[1] & 0xFC) | ecn
        ihl = (inner[0] & 0x0F) * 4
        fixed[10:12] = b"\x00\x00"
        fixed[10:12] = _H.pack(_ip.ipv4_header_checksum(fixed[:ihl]))
    else:
        fixed[1] = (inner[1] & 0xCF) | ecn << 4
    return bytes(fixed)
