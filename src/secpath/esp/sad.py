"""The inbound Security Association Database: SPI → SA (RFC 4301 §4.4.2).

The daemon hands every ESP or ESP-in-UDP packet here; the SPI picks the SA
(RFC 4303 §3.4.2), which decapsulates and counts.  A packet with no SA is
counted here and refused with :class:`UnknownSpiError`.
"""

from __future__ import annotations

import struct

from secpath.errors import LocalError
from secpath.esp import ip as _ip
from secpath.esp.errors import EspParseError, NatKeepalive, NonEspMarker, UnknownSpiError
from secpath.esp.sa import SecurityAssociation
from secpath.esp.udp import NAT_KEEPALIVE, NON_ESP_MARKER

__all__ = ["SecurityAssociationDatabase", "esp_spi"]

_I = struct.Struct("!I")
# an IPv4 packet's version/IHL, total length, flags/fragment offset,
# protocol and the first word after a header without options (an SPI)
_v4_spi = struct.Struct("!BxH2xHxB10xI").unpack_from


def esp_spi(packet: bytes) -> int:
    """The SPI of an ESP or ESP-in-UDP packet; keepalives and IKE behind the
    non-ESP marker raise their silent drops (RFC 3948 §2.2, §2.3)."""
    if len(packet) >= 28:
        # the common case: ESP after an IPv4 header without options, not a
        # fragment, the ESP header inside the total length
        first, total, fragment, proto, spi = _v4_spi(packet)
        if (first == 0x45 and proto == _ip.IPPROTO_ESP and not fragment & 0x3FFF
                and 28 <= total <= len(packet)):
            return int(spi)
    return _esp_spi(packet)


def _esp_spi(packet: bytes) -> int:
    """:func:`esp_spi` in general: IPv4 options, IPv6 extension headers, UDP."""
    h = _ip.parse_ip(packet, transport=True)
    start, end = h.header_end, h.total_length
    if h.next_header == _ip.IPPROTO_UDP:
        start += 8
        if start > end:
            raise EspParseError("UDP header truncated")
        if packet[start:end] == NAT_KEEPALIVE:
            raise NatKeepalive("NAT-keepalive")
        if packet[start : start + 4] == NON_ESP_MARKER:
            raise NonEspMarker(packet[start:end])
    elif h.next_header != _ip.IPPROTO_ESP:
        raise EspParseError(f"protocol {h.next_header} is neither ESP nor ESP-in-UDP")
    if end - start < 8:
        raise EspParseError("ESP header truncated")
    return int(_I.unpack_from(packet, start)[0])


class SecurityAssociationDatabase:
    """Inbound SAs by SPI."""

    __slots__ = ("_by_spi", "unknown_spi")

    def __init__(self) -> None:
        self._by_spi: dict[int, SecurityAssociation] = {}
        self.unknown_spi = 0

    def add(self, sa: SecurityAssociation) -> None:
        if sa.spi in self._by_spi:
            raise LocalError(f"SPI 0x{sa.spi:08x} is already in use")
        self._by_spi[sa.spi] = sa

    def remove(self, spi: int) -> SecurityAssociation:
        try:
            return self._by_spi.pop(spi)
        except KeyError:
            raise LocalError(f"no SA with SPI 0x{spi:08x}") from None

    def get(self, spi: int) -> SecurityAssociation | None:
        return self._by_spi.get(spi)

    def __len__(self) -> int:
        return len(self._by_spi)

    def __contains__(self, spi: object) -> bool:
        return spi in self._by_spi

    def decapsulate(self, packet: bytes) -> bytes:
        """Decapsulate with the SA the packet's SPI names."""
        spi = esp_spi(packet)
        sa = self._by_spi.get(spi)
        if sa is None:
            self.unknown_spi += 1
            raise UnknownSpiError(spi)
        return sa.decapsulate(packet)
