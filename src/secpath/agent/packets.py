"""The few facts the agent needs of an IP packet."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from secpath.esp import ip as _ip
from secpath.esp.errors import EspParseError
from secpath.policy.model import IpAddress

__all__ = ["PacketInfo", "flow_key", "packet_info", "source_address"]

_PORTS = struct.Struct("!HH")
_V4 = struct.Struct("!BBHHHBBH4s4s")
_V6 = struct.Struct("!IHBB16s16s")
_UDP = struct.Struct("!HHHH")


@dataclass(frozen=True, slots=True)
class PacketInfo:
    source: IpAddress
    destination: IpAddress
    protocol: int
    source_port: int | None
    destination_port: int | None


def packet_info(packet: bytes) -> PacketInfo:
    """Addresses, protocol and (tcp/udp) ports; raises ``EspParseError``."""
    h = _ip.parse_ip(packet, transport=True)
    src: IpAddress = ipaddress.ip_address(h.source)
    dst: IpAddress = ipaddress.ip_address(h.destination)
    sport = dport = None
    if h.next_header in (_ip.IPPROTO_TCP, _ip.IPPROTO_UDP):
        if h.total_length - h.header_end < 4:
            raise EspParseError("transport header truncated")
        sport, dport = _PORTS.unpack_from(packet, h.header_end)
    return PacketInfo(src, dst, h.next_header, sport, dport)


def flow_key(packet: bytes) -> bytes | None:
    """The bytes that decide an outbound SPD lookup of an IPv4 packet without
    options: protocol, addresses and (tcp/udp) ports; ``None`` otherwise."""
    if len(packet) < 24 or packet[0] != 0x45:
        return None
    if packet[9] in (6, 17):
        return packet[9:10] + packet[12:24]
    return packet[9:10] + packet[12:20]


def source_address(packet: bytes) -> str | None:
    """The source address of an IPv4 or IPv6 packet, or None if it is too
    short to have one."""
    if len(packet) < 20:
        return None
    raw = packet[12:16] if packet[0] >> 4 == 4 else packet[8:24]
    if len(raw) not in (4, 16):
        return None
    return str(ipaddress.ip_address(raw))
