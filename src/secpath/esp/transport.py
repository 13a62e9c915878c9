"""The fast paths of raw ESP (IP protocol 50, no UDP) in transport mode
over IPv4: :meth:`SecurityAssociation.encapsulate
<secpath.esp.sa.SecurityAssociation.encapsulate>` and
:meth:`~secpath.esp.sa.SecurityAssociation.decapsulate` call these for an
AEAD SA without ESN below every limit (see ``_set_fast_limits``).

They take an IPv4 header without options that is not a fragment and give
exactly what the general code gives (:func:`~secpath.esp.modes.transport_header`,
:func:`~secpath.esp.modes.rebuild_transport`): the received header kept
word for word but for the protocol, the total length and the RFC 791
checksum, which is summed from the header's fields rather than over a
copy.  Anything else goes through the SA's general code.  Sans-IO.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Final

from cryptography.exceptions import InvalidTag

from secpath.esp.accounting import OCTETS_SHIFT
from secpath.esp.errors import IntegrityError
from secpath.esp.ip import IPPROTO_ESP, IPPROTO_NONE
from secpath.esp.modes import PADDING
from secpath.esp.modes import aead_aad as _aad
from secpath.esp.modes import aead_nonce as _nonce

if TYPE_CHECKING:
    from secpath.esp.sa import SecurityAssociation

__all__ = ["TRANSPORT_V4_MIN", "decapsulate_v4", "encapsulate_v4"]

# IPv4 header, ESP header, IV, ICV (RFC 4303 §2, RFC 4106 §3), and the
# shortest packet the inbound fast path takes: Pad Length and Next Header
_OVERHEAD: Final = 20 + 8 + 8 + 16
TRANSPORT_V4_MIN: Final = _OVERHEAD + 2

# An IPv4 header by fields: version/IHL/TOS as one word, total length,
# identification, flags/fragment offset, TTL, protocol, checksum, and both
# addresses as one 64-bit number (whose value modulo 0xFFFF is their RFC
# 1071 sum, since 2**16 ≡ 1); struct.error below 20 octets.
_v4_header = struct.Struct("!HHHHBBHQ").unpack_from
# the same, then the ESP header and IV (outer IPv4 + ESP of a received packet)
_v4_esp = struct.Struct("!HHHHBBHQIIQ").unpack_from
# an IPv4 header by words (TTL and protocol as one), ESP header, IV
_v4_esp_iv = struct.Struct("!HHHHHHQIIQ").pack
_v4 = struct.Struct("!HHHHHHQ").pack


def encapsulate_v4(self: SecurityAssociation, packet: bytes, seq: int, n: int) -> bytes:
    """The outer packet of ``packet``, sequence number ``seq`` (below every
    limit), ``n`` its length: RFC 4303 §3.1.1, ESP after the IPv4 header,
    whose protocol becomes ESP; the IV is the sequence number (RFC 4106
    §3.1)."""
    try:
        first, length, ident, fragment, ttl, proto, _, addresses = _v4_header(packet)
    except struct.error:  # not even an IPv4 header
        return self._encapsulate(packet, seq, n)
    if first >> 8 != 0x45 or length != n or fragment & 0x3FFF:
        # options, another version, a wrong length, a fragment: the general code
        return self._encapsulate(packet, seq, n)
    pad = (-n - 2) & 3  # RFC 4106 §3.2: 4-octet alignment; 20 ≡ 0 (mod 4)
    table = self._transport_trailers.get(proto)
    trailer = table[pad] if table is not None else self._trailer(proto, pad)
    total = n + pad + 2 + _OVERHEAD - 20
    # RFC 791 / RFC 1071 over the header with its checksum field zero: the
    # ones' complement sum is the plain sum modulo 0xFFFF (never "-0": the
    # header is not all zeros)
    s = (first + total + ident + fragment + (ttl << 8) + IPPROTO_ESP + addresses) % 0xFFFF
    spi = self.spi
    self._seq_out = seq
    wire = _v4_esp_iv(
        first, total, ident, fragment, ttl << 8 | IPPROTO_ESP, 0xFFFF - s if s else 0, addresses,
        spi, seq, seq,
    ) + self._aead_encrypt(  # type: ignore[misc]
        _nonce(self._aead_salt, seq), packet[20:] + trailer, _aad(spi, seq))
    octets = self._octets_out + (n << OCTETS_SHIFT) + n - 20 + pad + 2
    self._octets_out = octets
    if octets >= self._limit_octets_out:
        self._lifetime_passed("outbound")
    return wire


def decapsulate_v4(self: SecurityAssociation, packet: bytes, n: int) -> bytes:
    """The rebuilt packet of ``packet`` (``n`` >= :data:`TRANSPORT_V4_MIN`
    octets): an IPv4 header without options, not a fragment, ESP, as long as
    the buffer, this SA's SPI and a sequence number above the window
    (RFC 4303 §3.4.3: checked before the ICV); anything else, or a payload
    the general code would refuse or treat apart, goes there."""
    first, end, ident, fragment, ttl, proto, _, addresses, spi, seq, iv = _v4_esp(packet)
    replay = self._replay
    top = replay.top
    if not (first >> 8 == 0x45 and proto == IPPROTO_ESP and not fragment & 0x3FFF and end == n
            and spi == self.spi and top < seq):
        return self._decapsulate(packet)
    try:
        plain = self._aead_decrypt(  # type: ignore[misc]
            _nonce(self._aead_salt, iv), packet[36:end], packet[20:28])
    except InvalidTag:
        drop = IntegrityError(f"{self.transform}: ICV mismatch")
        self._count_drop(drop)
        raise drop from None
    length = n - _OVERHEAD  # len(plain), since end == n
    pad = plain[-2]
    next_header = plain[-1]
    payload_end = length - 2 - pad
    # (a Pad Length beyond the payload fails the comparison: the slice is short)
    if next_header == IPPROTO_NONE or (pad and plain[payload_end : length - 1] != PADDING[pad]):
        # bad padding, a dummy packet (RFC 4303 §2.4, §2.6): the general code
        return self._accept(packet, plain, seq, 20, 9, 4, first & 0xFF, False)
    # RFC 4303 §3.4.4.2 (transport mode): the received IP header, its
    # protocol restored, length and checksum fixed
    total = 20 + payload_end
    s = (first + total + ident + fragment + (ttl << 8) + next_header + addresses) % 0xFFFF
    inner = _v4(first, total, ident, fragment, ttl << 8 | next_header, 0xFFFF - s if s else 0,
                addresses) + plain[:payload_end]
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
