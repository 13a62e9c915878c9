"""ESP through a UDP socket (RFC 3948): what the socket sends and receives.

A daemon carrying ESP in UDP 4500 hands the kernel only the UDP payload,
the ESP packet itself (RFC 3948 §2.1), and receives only that: the kernel
writes and strips the IP and UDP headers.  These two functions are
:meth:`SecurityAssociation.encapsulate_udp_payload
<secpath.esp.sa.SecurityAssociation.encapsulate_udp_payload>` and
:meth:`~secpath.esp.sa.SecurityAssociation.decapsulate_udp_payload`; they
behave exactly as :meth:`~secpath.esp.sa.SecurityAssociation.encapsulate`
with the outer IP (and UDP) header stripped, and as
:meth:`~secpath.esp.sa.SecurityAssociation.decapsulate` of the datagram
with an IP + UDP header put back (TOS 0, DF, TTL 64): the same bytes, inner
packets, typed drops, counters, replay window and lifetime events.

The common case (AEAD without ESN, an IPv4 packet inside, tunnel or
transport mode, IPv4 outer addresses for the latter) is straight-line code;
everything else goes through the SA's general code.  Sans-IO.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Final

from cryptography.exceptions import InvalidTag

from secpath.errors import LocalError
from secpath.esp import ip as _ip
from secpath.esp.accounting import OCTETS_SHIFT
from secpath.esp.errors import EspParseError, IntegrityError
from secpath.esp.ip import IPPROTO_NONE, IPPROTO_TCP, IPPROTO_UDP
from secpath.esp.modes import PADDING, V4_AEAD_TRAILERS, V4_TRAILERS, nat_checksum
from secpath.esp.modes import aead_aad as _aad
from secpath.esp.modes import aead_nonce as _nonce
from secpath.esp.modes import inner_v4_length as _inner_v4_length
from secpath.esp.udp import NAT_T_PORT

if TYPE_CHECKING:
    from secpath.esp.sa import SecurityAssociation

__all__ = ["UDP_TRANSPORT_MIN", "UDP_TUNNEL_MIN", "decapsulate_udp_payload",
           "encapsulate_udp_payload", "received_header"]

# the shortest ESP packets the inbound fast paths take: ESP header, IV,
# ICV, Pad Length and Next Header, and in tunnel mode an IPv4 header inside
UDP_TRANSPORT_MIN: Final = 8 + 8 + 16 + 2
UDP_TUNNEL_MIN: Final = UDP_TRANSPORT_MIN + 20

_esp_head = struct.Struct("!IIQ").pack  # SPI, sequence number, IV = sequence number
_esp_fields = struct.Struct("!IIQ").unpack_from
# an IPv4 packet's version/IHL, total length, flags/fragment offset and
# protocol; struct.error below 20 octets
_inner_v4 = struct.Struct("!BxH2xH1xB10x").unpack_from
_V4 = struct.Struct("!BBHHHBBH4s4s")
_v4_transport = struct.Struct("!HHIHH8s").pack  # the rebuilt IPv4 header, by words
_V4_UDP = struct.Struct("!BBHHHBBH4s4sHHHH")
_V6_UDP = struct.Struct("!IHBB16s16sHHHH")
_checksum = struct.Struct("!H").pack
_RECEIVED_TTL: Final = 64
# the constant words of the IPv4 header put back in front of a datagram
# (version/IHL/TOS, DF, TTL): RFC 1071 sums, without the protocol
_RECEIVED_SUM: Final = 0x4500 + 0x4000 + (_RECEIVED_TTL << 8)


def received_header(source: bytes, destination: bytes, length: int) -> bytes:
    """The IP + UDP header of a datagram of ``length`` octets of payload from
    ``source`` to ``destination`` (packed addresses) on port 4500, as it
    arrived before the socket stripped it (TOS 0, DF, TTL 64; checksums 0:
    the SA reads neither).  :class:`EspParseError` when no such datagram
    exists."""
    if len(source) == 4:
        if 28 + length > 0xFFFF:
            raise EspParseError(f"a {length}-octet UDP payload does not fit IPv4")
        return _V4_UDP.pack(0x45, 0, 28 + length, 0, 0x4000, _RECEIVED_TTL, IPPROTO_UDP, 0,
                            source, destination, NAT_T_PORT, NAT_T_PORT, 8 + length, 0)
    if 8 + length > 0xFFFF:
        raise EspParseError(f"a {length}-octet UDP payload does not fit IPv6 without jumbograms")
    return _V6_UDP.pack(0x60000000, 8 + length, IPPROTO_UDP, _RECEIVED_TTL, source,
                        destination, NAT_T_PORT, NAT_T_PORT, 8 + length, 0)


def encapsulate_udp_payload(self: SecurityAssociation, packet: bytes) -> bytes:
    """Protect one whole IPv4/IPv6 packet; return the ESP packet (header,
    IV, ciphertext, ICV) a UDP socket sends (RFC 3948 §2.1): what
    :meth:`encapsulate` returns without its outer IP and UDP headers.

    Raises as :meth:`encapsulate` does.  The ESP packet does not depend on
    the SA's ``udp_encapsulation`` ports (the socket's are used).
    """
    seq = self._seq_out + 1
    n = len(packet)
    # AEAD without ESN below every limit (see _set_fast_limits), a whole
    # IPv4 packet: the ESP header, the IV (the sequence number, RFC 4106
    # §3.1) and the sealed packet + trailer
    if seq < self._fast_udp_out_until:
        try:
            first, length, fragment, proto = _inner_v4(packet)
        except struct.error:  # not even an IPv4 header
            return _encapsulate(self, packet, seq, n)
        if length == n:
            if self._tunnel_mode:
                if first >> 4 == 4:
                    trailer, trailer_len = V4_AEAD_TRAILERS[n & 3]
                    plaintext = packet + trailer
                else:
                    return _encapsulate(self, packet, seq, n)
            elif first == 0x45 and not fragment & 0x3FFF:
                # RFC 4303 §3.1.1: ESP after the IPv4 header; 20 ≡ 0 (mod 4)
                table = self._transport_trailers.get(proto)
                pad = (-n - 2) & 3
                trailer = table[pad] if table is not None else self._trailer(proto, pad)
                plaintext = packet[20:] + trailer
                trailer_len = pad + 2 - 20
            else:
                return _encapsulate(self, packet, seq, n)
            self._seq_out = seq
            spi = self.spi
            esp = _esp_head(spi, seq, seq) + self._aead_encrypt(  # type: ignore[misc]
                _nonce(self._aead_salt, seq), plaintext, _aad(spi, seq))
            octets = self._octets_out + (n << OCTETS_SHIFT) + n + trailer_len
            self._octets_out = octets
            if octets >= self._limit_octets_out:
                self._lifetime_passed("outbound")
            return esp
    return _encapsulate(self, packet, seq, n)


def _encapsulate(self: SecurityAssociation, packet: bytes, seq: int, n: int) -> bytes:
    """The general path: the whole outer packet, its IP (and UDP) header cut."""
    wire = self._encapsulate(packet, seq, n)
    if self._tunnel_mode:
        start = 20 if len(self._tunnel_src) == 4 else 40
    elif wire[0] >> 4 == 4:
        start = (wire[0] & 0x0F) * 4
    else:  # where ESP went: after the extension headers (RFC 4303 §3.1.1)
        start = _ip.parse_ip(wire, transport=True).header_end
    return wire[start + 8 if self._udp else start :]


def _nat_checksum(src: bytes, dst: bytes, addresses: int, next_header: int, payload: bytes) -> bytes:
    """:func:`~secpath.esp.modes.nat_checksum` over IPv4 addresses whose
    RFC 1071 sum is ``addresses``, with one copy of the payload fewer: the
    sum of the segment with its checksum field zeroed is the sum of the
    segment less that field (2**16 ≡ 1 modulo 0xFFFF)."""
    n = len(payload)
    if next_header == IPPROTO_TCP and n >= 20:
        at = 16
    elif next_header == IPPROTO_UDP and n >= 8:
        at = 6
        if not payload[6] and not payload[7]:
            return payload  # RFC 768: no checksum was sent
    else:
        return payload
    r = int.from_bytes(payload, "big") % 0xFFFF
    if n & 1:  # a zero octet pads the last word
        r = (r << 8) % 0xFFFF
    r = (r - (payload[at] << 8 | payload[at + 1])) % 0xFFFF
    if not r:  # the general code tells a zero segment from a sum of 0xFFFF
        return nat_checksum(src, dst, next_header, payload, 4)
    total = r + addresses + next_header + n  # the pseudo-header (RFC 768, RFC 793)
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    value = ~total & 0xFFFF
    if not value and next_header == IPPROTO_UDP:
        value = 0xFFFF  # RFC 768: 0 means no checksum
    return payload[:at] + _checksum(value) + payload[at + 2 :]


def _peer(self: SecurityAssociation, source: str,
          destination: str) -> tuple[str, str, bytes, bytes, int]:
    """The packed outer addresses of a datagram and their RFC 1071 sum,
    remembered per SA."""
    try:
        src, dst = _ip.address_bytes(source), _ip.address_bytes(destination)
    except ValueError as exc:
        raise LocalError(f"datagram addresses {source}, {destination}: {exc}") from None
    if len(src) != len(dst):
        raise LocalError(f"datagram addresses {source}, {destination} mix IPv4 and IPv6")
    peer = self._udp_peer = (source, destination, src, dst,
                             int.from_bytes(src + dst, "big") % 0xFFFF)
    return peer


def decapsulate_udp_payload(self: SecurityAssociation, esp: bytes, source: str,
                            destination: str) -> bytes:
    """Verify and strip the ESP packet a UDP socket received from ``source``
    on ``destination`` (the outer addresses, which transport mode puts in
    the rebuilt IP header and its TCP/UDP checksum, RFC 3948 §3.1.2);
    return the inner packet (tunnel mode) or the rebuilt packet (transport
    mode), as :meth:`decapsulate` of the datagram with its IP and UDP
    headers put back.

    Raises what :meth:`decapsulate` raises (a NAT-keepalive or an IKE
    message behind the non-ESP marker too, RFC 3948 §2.2-§2.3), and
    :class:`~secpath.errors.LocalError` for addresses that are not IP
    addresses of one family.
    """
    peer = self._udp_peer
    if peer[0] != source or peer[1] != destination:
        peer = _peer(self, source, destination)
    n = len(esp)
    # The hot path: AEAD without ESN, the SPI of this SA, a sequence number
    # above the window (RFC 4303 §3.4.3: checked before the ICV)
    if n >= self._fast_udp_in_min:
        spi, seq, iv = _esp_fields(esp)
        replay = self._replay
        top = replay.top
        src = peer[2]
        if spi == self.spi and top < seq and (self._tunnel_mode or len(src) == 4):
            try:
                plain = self._aead_decrypt(  # type: ignore[misc]
                    _nonce(self._aead_salt, iv), esp[16:], esp[:8])
            except InvalidTag:
                drop = IntegrityError(f"{self.transform}: ICV mismatch")
                self._count_drop(drop)
                raise drop from None
            # RFC 4303 §2.4: the padding is 1, 2, 3, ...
            length = n - 32  # len(plain): ESP header, IV and ICV off
            pad = plain[-2]
            payload_end = length - 2 - pad
            if self._tunnel_mode:
                version, inner_length = _inner_v4_length(plain)
                if not (plain.endswith(V4_TRAILERS[pad]) and version >> 4 == 4
                        and inner_length == payload_end >= 20):
                    # TFC padding, IPv6, a bad trailer: the general code
                    return self._accept(esp, plain, seq, 8, 9, 4, 0, True)
                inner = plain[:payload_end]
            else:
                next_header = plain[-1]
                if (payload_end < 0 or next_header == IPPROTO_NONE
                        or (pad and plain[payload_end : length - 1] != PADDING[pad])):
                    header = received_header(src, peer[3], n)
                    return self._accept(header + esp, plain, seq, 28, 9, 4, 0, True)
                # RFC 4303 §3.4.4.2 (transport mode): the IP header the
                # datagram came in, its protocol restored; RFC 3948 §3.1.2:
                # the TCP/UDP checksum over the addresses received
                addresses = peer[4]
                payload = _nat_checksum(src, peer[3], addresses, next_header, plain[:payload_end])
                total = 20 + payload_end
                words = (_RECEIVED_SUM + total + next_header + addresses) % 0xFFFF
                inner = _v4_transport(0x4500, total, 0x4000, _RECEIVED_TTL << 8 | next_header,
                                      0xFFFF - words if words else 0, src + peer[3]) + payload
            # RFC 4303 §3.4.3: the window moves once the ICV verified
            if seq ^ top < 64:  # the same block (RFC 6479 §2)
                replay.blocks[(seq >> 6) & replay.index_mask] |= 1 << (seq & 63)
                replay.top = seq
            else:
                replay.update(seq)
            packets = self._packets_in + 1
            self._packets_in = packets
            octets = self._octets_in + (payload_end << OCTETS_SHIFT) + length
            self._octets_in = octets
            if packets >= self._limit_packets_in or octets >= self._limit_octets_in:
                self._lifetime_passed("inbound")
            return inner
    try:
        header = received_header(peer[2], peer[3], n)
    except EspParseError as drop:
        self._count_drop(drop)
        raise
    return self._decapsulate(header + esp)
