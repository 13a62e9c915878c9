"""UDP encapsulation of ESP (RFC 3948) and what arrives on port 4500.

A datagram on the NAT-T port is one of: a NAT-keepalive (one 0xFF octet,
RFC 3948 §2.3), an IKE message behind the non-ESP marker (four zero octets,
RFC 3948 §2.2), or ESP (a non-zero SPI, RFC 3948 §2.1).
"""

from __future__ import annotations

import enum
import struct
from typing import Final

from secpath.esp import ip as _ip
from secpath.esp.errors import EspParseError

__all__ = [
    "NAT_KEEPALIVE",
    "NAT_T_PORT",
    "NON_ESP_MARKER",
    "UdpPayload",
    "classify_udp_payload",
    "udp_checksum_ipv6",
]

NAT_T_PORT: Final = 4500  # RFC 3948 §2.1 (IKEv2 floats to it: RFC 7296 §2.23)
NON_ESP_MARKER: Final = b"\x00\x00\x00\x00"  # RFC 3948 §2.2
NAT_KEEPALIVE: Final = b"\xff"  # RFC 3948 §2.3

_H = struct.Struct("!H")


class UdpPayload(enum.Enum):
    """What a UDP payload on port 4500 carries."""

    NAT_KEEPALIVE = "nat-keepalive"
    IKE = "ike"
    ESP = "esp"


def classify_udp_payload(payload: bytes) -> UdpPayload:
    """Demultiplex a port-4500 UDP payload (RFC 3948 §2.1-§2.3)."""
    if payload == NAT_KEEPALIVE:
        return UdpPayload.NAT_KEEPALIVE
    if len(payload) < 8:
        raise EspParseError(f"{len(payload)}-byte UDP payload is neither keepalive, IKE nor ESP")
    if payload[:4] == NON_ESP_MARKER:
        return UdpPayload.IKE
    return UdpPayload.ESP


def udp_checksum_ipv6(packet: bytes, udp_at: int) -> bytes:
    """``packet`` with the checksum of the UDP datagram at ``udp_at`` filled in.

    RFC 3948 §2.1 sends a zero checksum over IPv4; over IPv6 a zero UDP
    checksum is not allowed by default (RFC 8200 §8.1), so it is computed.
    """
    segment = bytearray(packet[udp_at:])
    segment[6:8] = b"\x00\x00"
    value = _ip.transport_checksum(packet[8:24], packet[24:40], _ip.IPPROTO_UDP, segment)
    return packet[: udp_at + 6] + _H.pack(value) + packet[udp_at + 8 :]
