"""The ESP security association: RFC 4303 processing of one SA.

``encapsulate`` takes a whole IPv4/IPv6 packet and returns the whole outer
packet (tunnel or transport mode, optionally ESP-in-UDP per RFC 3948);
``decapsulate`` reverses it or raises a typed :class:`EspDrop`, counted on
the SA.  ``encapsulate_udp_payload``/``decapsulate_udp_payload`` are the
same for a UDP socket, which sends and receives the ESP packet alone
(:mod:`secpath.esp.datagram`).  Sans-IO: no sockets, no clock; randomness only through ``rng``.
"""

from __future__ import annotations

import struct
from typing import Final, Literal

from cryptography.exceptions import InvalidTag

from secpath.errors import LocalError
from secpath.esp import datagram as _datagram
from secpath.esp import ip as _ip
from secpath.esp import transport as _transport
from secpath.esp.accounting import OCTETS_SHIFT, SaAccounting
from secpath.esp.errors import (
    DummyPacket,
    EspDrop,
    EspParseError,
    IntegrityError,
    NatKeepalive,
    NonEspMarker,
    PaddingError,
    UnknownSpiError,
)
from secpath.esp.ip import (
    CE,
    IPPROTO_ESP,
    IPPROTO_IPV4,
    IPPROTO_IPV6,
    IPPROTO_NONE,
    IPPROTO_UDP,
)
from secpath.esp.lifetime import Lifetime
from secpath.esp.modes import (
    PADDING,
    V4_AEAD_TRAILERS,
    V4_TRAILERS,
    ecn_decapsulate_packet,
    inner_packet,
    rebuild_transport,
    trailers,
    transport_header,
)
from secpath.esp.modes import aead_aad as _aad
from secpath.esp.modes import aead_nonce as _nonce
from secpath.esp.modes import inner_v4_length as _inner_v4_length
from secpath.esp.replay import ReplayWindow
from secpath.esp.transforms import AeadFunction, AeadTransform, Rng, make_transform
from secpath.esp.udp import NON_ESP_MARKER, udp_checksum_ipv6
from secpath.secret import Secret

__all__ = ["SecurityAssociation"]

Mode = Literal["tunnel", "transport"]

_H = struct.Struct("!H")
_II = struct.Struct("!II")
_V4_ESP = struct.Struct("!BBHHHBBH4s4sII")
# outer IPv4 (TTL and protocol as one word, both addresses as one field),
# ESP header, 8-octet IV
_V4_ESP_IV = struct.Struct("!BBHHHHH8sIIQ")
_V4_UDP_IV = struct.Struct("!BBHHHHH4s4sHHHHIIQ")
# The fast paths call these bound methods (one global load each).
# The inner IPv4 header's version/IHL, TOS, total length and flags/fragment
# offset; struct.error below 20 octets.
_inner_v4_head = struct.Struct("!BBH2xH12x").unpack_from
# an outer IPv4 header without options (first word, total length; flags,
# fragment offset, TTL and protocol as one word), the ESP header and the IV
_outer_v4_esp = struct.Struct("!HH2xI10xIIQ").unpack_from
_v4_esp_iv = _V4_ESP_IV.pack
# the fast paths' outer IPv4 + ESP header + IV + ICV, and the shortest outer
# packet they take: an IPv4 header inside, Pad Length and Next Header
_V4_AEAD_OVERHEAD: Final = 20 + 8 + 8 + 16
_V4_AEAD_MIN: Final = _V4_AEAD_OVERHEAD + 20 + 2
_NEVER: Final = 1 << 64  # a limit no packet count or length reaches
_V4_UDP = struct.Struct("!BBHHHBBH4s4sHHHHII")
_V6_ESP = struct.Struct("!IHBB16s16sII")
_V6_UDP = struct.Struct("!IHBB16s16sHHHHII")
_DEFAULT_TTL: Final = 64  # RFC 4301 §5.1.2.1: the outer TTL is constructed

class SecurityAssociation(SaAccounting):
    """One ESP SA (RFC 4303), keyed from IKEv2 KEYMAT (RFC 7296 §2.17).

    ``transform`` is a strongSwan ESP proposal name (see
    :data:`secpath.esp.transforms.TRANSFORM_NAMES`); for AEAD transforms
    ``encryption_key`` is key || 4-octet salt (RFC 4106 §8.1).  One object
    can both encapsulate (outbound state: the sequence counter) and
    decapsulate (inbound state: the replay window); in a real deployment
    each direction has its own SA and SPI.  ``lifetime`` applies to each
    direction separately.  ``rng`` seeds the CBC IV generator; without it
    the seed is derived from the key (see ``CbcHmacTransform``).
    """

    __slots__ = (
        "_aead", "_aead_decrypt", "_aead_encrypt", "_aead_salt", "_align_mask", "_fast_in_min",
        "_fast_out_until", "_fast_overhead", "_fast_udp_in_min", "_fast_udp_out_until", "_fast_v4",
        "_outer", "_overhead", "_replay", "_sum", "_trailer_v4", "_trailer_v6", "_transform",
        "_transport_trailers", "_ttl", "_ttl_proto", "_tunnel_addresses", "_tunnel_dst",
        "_tunnel_mode", "_tunnel_src", "_udp", "_udp_peer", "_udp_ports", "_v6_udp_checksum", "esn",
        "mode", "transform", "tunnel", "udp_encapsulation",
    )

    def __init__(
        self,
        spi: int,
        transform: str,
        encryption_key: bytes | Secret | None = None,
        integrity_key: bytes | Secret | None = None,
        mode: Mode = "tunnel",
        tunnel: tuple[str, str] | None = None,
        udp_encapsulation: tuple[int, int] | None = None,
        esn: bool = False,
        replay_window: int = 1024,
        *,
        lifetime: Lifetime | None = None,
        rng: Rng | None = None,
        ttl: int = _DEFAULT_TTL,
    ) -> None:
        if not 256 <= spi <= 0xFFFFFFFF:
            raise LocalError(f"SPI 0x{spi:x}: 0-255 are reserved (RFC 4303 §2.1), max 2**32-1")
        if mode not in ("tunnel", "transport"):
            raise LocalError(f"mode {mode!r}: expected 'tunnel' or 'transport'")
        if replay_window < 0:
            raise LocalError("replay_window must be >= 0 (0 disables anti-replay)")
        if not 1 <= ttl <= 255:
            raise LocalError("ttl must be 1..255")
        self.transform = transform
        self.mode = mode
        self.tunnel = tunnel
        self.udp_encapsulation = udp_encapsulation
        self.esn = esn
        enc_key = Secret(encryption_key) if isinstance(encryption_key, bytes) else encryption_key
        int_key = Secret(integrity_key) if isinstance(integrity_key, bytes) else integrity_key
        t = make_transform(transform, spi=spi, esn=esn, encryption_key=enc_key,
                           integrity_key=int_key, rng=rng)
        self._transform = t
        # AEAD without ESN: seal/open inlined on the hot path (RFC 4106 §3-§5)
        self._aead = isinstance(t, AeadTransform) and not esn
        self._aead_encrypt: AeadFunction | None = None
        self._aead_decrypt: AeadFunction | None = None
        self._aead_salt = b""
        if isinstance(t, AeadTransform):
            self._aead_encrypt, self._aead_decrypt, self._aead_salt = t.primitives()
        self._overhead = 8 + t.iv_bytes + t.icv_bytes  # ESP header, IV, ICV (RFC 4303 §2)
        self._init_accounting(spi, lifetime, seq_max=(1 << 64) - 1 if esn else (1 << 32) - 1,
                              confidential=t.confidential, authenticated_overhead=8 + t.iv_bytes)
        self._align_mask = t.align - 1
        self._trailer_v4 = trailers(IPPROTO_IPV4, t.align)
        self._trailer_v6 = trailers(IPPROTO_IPV6, t.align)
        self._transport_trailers: dict[int, tuple[bytes, ...]] = {}
        self._ttl = ttl
        self._replay = ReplayWindow(replay_window, esn=esn)

        if udp_encapsulation is not None:
            sport, dport = udp_encapsulation
            if not (0 < sport <= 0xFFFF and 0 < dport <= 0xFFFF):
                raise LocalError(f"UDP encapsulation ports {udp_encapsulation} out of range")
        self._udp = udp_encapsulation is not None
        self._udp_ports = udp_encapsulation or (0, 0)

        self._tunnel_mode = mode == "tunnel"
        self._tunnel_src = self._tunnel_dst = self._tunnel_addresses = b""
        self._sum = self._ttl_proto = 0
        self._v6_udp_checksum = False
        if self._tunnel_mode:
            self._setup_tunnel(tunnel)
        elif tunnel is not None:
            raise LocalError("tunnel endpoints given for a transport-mode SA")
        # the hot paths: AEAD, 32-bit sequence numbers, IPv4 in an IPv4 tunnel;
        # raw ESP in transport mode (IPv4: secpath.esp.transport)
        self._fast_v4 = self._aead and self._tunnel_mode and len(self._tunnel_src) == 4
        self._fast_overhead = 20 + (8 if self._udp else 0) + self._overhead + 2
        self._fast_out_until = self._fast_in_min = self._fast_udp_out_until = 0
        self._fast_udp_in_min = 0
        # the last outer addresses decapsulate_udp_payload was given, packed
        self._udp_peer: tuple[str, str, bytes, bytes, int] = ("", "", b"", b"", 0)
        self._set_fast_limits()

    def _set_fast_limits(self) -> None:
        """Who takes the fast paths of :meth:`encapsulate`,
        :meth:`decapsulate` and their UDP-socket forms: folds the SA's kind,
        the sequence number and packet limits and a hard lifetime passed
        into one number each."""
        fast_out = (self._fast_v4 or (self._aead and not self._tunnel_mode)) and not self._udp
        until = min(self._seq_limit + 1, self._limit_packets_out)
        self._fast_out_until = until if fast_out else 0
        self._fast_udp_out_until = until if self._aead else 0
        fast_in = self._aead and not self._closed_in
        if not fast_in:
            self._fast_in_min = _NEVER
        elif self._tunnel_mode:
            self._fast_in_min = _V4_AEAD_MIN
        else:
            self._fast_in_min = _NEVER if self._udp else _transport.TRANSPORT_V4_MIN
        self._fast_udp_in_min = (
            (_datagram.UDP_TUNNEL_MIN if self._tunnel_mode else _datagram.UDP_TRANSPORT_MIN)
            if fast_in else _NEVER
        )

    def _setup_tunnel(self, tunnel: tuple[str, str] | None) -> None:
        if tunnel is None:
            raise LocalError("tunnel mode needs tunnel=(outer source, outer destination)")
        try:
            src, dst = (_ip.address_bytes(a) for a in tunnel)
        except ValueError as exc:
            raise LocalError(f"tunnel endpoints {tunnel}: {exc}") from None
        if len(src) != len(dst):
            raise LocalError(f"tunnel endpoints {tunnel} mix IPv4 and IPv6")
        self._tunnel_src, self._tunnel_dst = src, dst
        self._tunnel_addresses = src + dst
        if len(src) == 4:
            proto = IPPROTO_UDP if self._udp else IPPROTO_ESP
            self._ttl_proto = self._ttl << 8 | proto
            # RFC 791 checksum: the constant words, summed once per SA
            self._sum = 0x4500 + self._ttl_proto + sum(
                _H.unpack_from(src + dst, i)[0] for i in range(0, 8, 2)
            )
            self._outer = self._outer_v4_udp if self._udp else self._outer_v4
        else:
            self._outer = self._outer_v6_udp if self._udp else self._outer_v6
            self._v6_udp_checksum = self._udp

    # -- outer headers of tunnel mode (RFC 4301 §5.1.2.1) -----------------

    def _outer_v4(self, tos: int, df: int, esp_len: int, seq: int) -> bytes:
        total = 20 + esp_len
        ident = seq & 0xFFFF  # RFC 6864 §4.1: unique enough; DF copied below
        flags = df << 8
        s = self._sum + tos + total + ident + flags
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        return _V4_ESP.pack(0x45, tos, total, ident, flags, self._ttl, IPPROTO_ESP,
                            ~s & 0xFFFF, self._tunnel_src, self._tunnel_dst, self.spi,
                            seq & 0xFFFFFFFF)

    def _outer_v4_udp(self, tos: int, df: int, esp_len: int, seq: int) -> bytes:
        total = 28 + esp_len
        ident = seq & 0xFFFF
        flags = df << 8
        s = self._sum + tos + total + ident + flags
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        sport, dport = self._udp_ports
        # RFC 3948 §2.1: UDP checksum transmitted as zero
        return _V4_UDP.pack(0x45, tos, total, ident, flags, self._ttl, IPPROTO_UDP,
                            ~s & 0xFFFF, self._tunnel_src, self._tunnel_dst, sport, dport,
                            8 + esp_len, 0, self.spi, seq & 0xFFFFFFFF)

    def _outer_v6(self, tos: int, df: int, esp_len: int, seq: int) -> bytes:
        return _V6_ESP.pack(0x60000000 | tos << 20, esp_len, IPPROTO_ESP, self._ttl,
                            self._tunnel_src, self._tunnel_dst, self.spi, seq & 0xFFFFFFFF)

    def _outer_v6_udp(self, tos: int, df: int, esp_len: int, seq: int) -> bytes:
        sport, dport = self._udp_ports
        return _V6_UDP.pack(0x60000000 | tos << 20, 8 + esp_len, IPPROTO_UDP, self._ttl,
                            self._tunnel_src, self._tunnel_dst, sport, dport, 8 + esp_len, 0,
                            self.spi, seq & 0xFFFFFFFF)

    # -- outbound ---------------------------------------------------------

    def encapsulate(self, packet: bytes) -> bytes:
        """Protect one whole IPv4/IPv6 packet; return the whole outer packet.

        Raises :class:`LifetimeExpiredError` past the hard lifetime,
        :class:`SequenceOverflowError` when the counter is exhausted and
        :class:`~secpath.errors.LocalError` for a packet that is not IP.
        """
        seq = self._seq_out + 1
        n = len(packet)
        # The hot path: AEAD, 32-bit sequence numbers, IPv4 in an IPv4 tunnel
        # without UDP, below every limit (see _set_fast_limits).  One struct
        # for the outer IPv4 header (RFC 4301 §5.1.2.1), ESP header and IV
        # (RFC 4106 §3.1: the IV is the sequence number).  Raw ESP in
        # transport mode: secpath.esp.transport.
        if seq < self._fast_out_until:
            if not self._tunnel_mode:
                return _transport.encapsulate_v4(self, packet, seq, n)
            try:
                version, tos, length, flags = _inner_v4_head(packet)
            except struct.error:  # not even an IPv4 header
                return self._encapsulate(packet, seq, n)
            if version >> 4 == 4 and length == n:
                if tos & 3 == 3:
                    tos ^= 1  # RFC 6040 §4.1: CE is copied as ECT(0)
                trailer, trailer_len = V4_AEAD_TRAILERS[n & 3]
                plain_len = n + trailer_len
                total = plain_len + _V4_AEAD_OVERHEAD
                ident = seq & 0xFFFF  # RFC 6864 §4.1: unique enough
                flags &= 0x4000  # DF copied (RFC 4301 §8.1)
                self._seq_out = seq
                wire = _v4_esp_iv(
                    0x45, tos, total, ident, flags, self._ttl_proto,
                    # RFC 1071: the ones' complement sum is the plain sum modulo 0xFFFF
                    0xFFFF - (self._sum + tos + total + ident + flags) % 0xFFFF,
                    self._tunnel_addresses, self.spi, seq, seq,
                ) + self._aead_encrypt(  # type: ignore[misc]
                    _nonce(self._aead_salt, seq), packet + trailer, _aad(self.spi, seq))
                octets = self._octets_out + (n << OCTETS_SHIFT) + plain_len
                self._octets_out = octets
                if octets >= self._limit_octets_out:
                    self._lifetime_passed("outbound")
                return wire
        return self._encapsulate(packet, seq, n)

    def _encapsulate(self, packet: bytes, seq: int, n: int) -> bytes:
        if seq > self._seq_limit:  # 0 once the hard lifetime passed
            self._refuse_outbound()
        if self._fast_v4 and n >= 20 and packet[0] >> 4 == 4 and packet[2] << 8 | packet[3] == n:
            # the rest of AEAD IPv4 in IPv4: UDP, or the last packet before a limit
            tos = packet[1]
            if tos & 3 == CE:
                tos ^= 1  # RFC 6040 §4.1: CE is copied as ECT(0)
            pad = (-n - 2) & 3  # RFC 4106 §3.2: 4-octet alignment
            plaintext = packet + self._trailer_v4[pad]
            total = self._fast_overhead + n + pad
            ident = seq & 0xFFFF
            flags = (packet[6] & 0x40) << 8  # DF copied (RFC 4301 §8.1)
            header_checksum = 0xFFFF - (self._sum + tos + total + ident + flags) % 0xFFFF
            self._seq_out = seq
            if self._udp:
                sport, dport = self._udp_ports
                prefix = _V4_UDP_IV.pack(
                    0x45, tos, total, ident, flags, self._ttl_proto, header_checksum,
                    self._tunnel_src, self._tunnel_dst, sport, dport, total - 20, 0, self.spi,
                    seq, seq)
            else:
                prefix = _V4_ESP_IV.pack(
                    0x45, tos, total, ident, flags, self._ttl_proto, header_checksum,
                    self._tunnel_addresses, self.spi, seq, seq)
            wire = prefix + self._aead_encrypt(  # type: ignore[misc]
                _nonce(self._aead_salt, seq), plaintext, _aad(self.spi, seq))
        elif self._tunnel_mode:
            version = packet[0] >> 4 if n else 0
            if version == 4 and n >= 20 and packet[2] << 8 | packet[3] == n:
                tos = packet[1]
                df = packet[6] & 0x40
                trailer = self._trailer_v4[(-n - 2) & self._align_mask]
            elif version == 6 and n >= 40 and 40 + (packet[4] << 8 | packet[5]) == n:
                tos = (packet[0] & 0x0F) << 4 | packet[1] >> 4
                df = 0
                trailer = self._trailer_v6[(-n - 2) & self._align_mask]
            else:
                raise LocalError(f"not a whole IPv4/IPv6 packet ({n} bytes)")
            if tos & 3 == CE:
                tos ^= 1  # RFC 6040 §4.1: CE is copied as ECT(0)
            plaintext = packet + trailer
            self._seq_out = seq
            wire = self._transform.seal(
                self._outer(tos, df, self._overhead + len(plaintext), seq), seq, plaintext
            )
            if self._v6_udp_checksum:
                wire = udp_checksum_ipv6(wire, 40)
        else:
            wire, plaintext = self._encapsulate_transport(packet, seq)
        # packets sent == the sequence number (RFC 4303 §3.3.3: it starts at 1)
        self._octets_out += (n << OCTETS_SHIFT) + len(plaintext)
        if seq >= self._limit_packets_out or self._octets_out >= self._limit_octets_out:
            self._lifetime_passed("outbound")
        return wire

    def _encapsulate_transport(self, packet: bytes, seq: int) -> tuple[bytes, bytes]:
        # RFC 4303 §3.1.1: ESP goes after the IP header (and the IPv6
        # extension headers that must precede it)
        try:
            h = _ip.parse_ip(packet, transport=True)
        except EspParseError as exc:
            raise LocalError(f"not an IP packet to protect: {exc}") from None
        if h.total_length != len(packet):
            raise LocalError(f"IP length {h.total_length} but {len(packet)} bytes given")
        end = h.header_end
        payload = packet[end:]
        plaintext = payload + self._trailer(h.next_header, (-len(payload) - 2) & self._align_mask)
        header = transport_header(packet, h, esp_len=self._overhead + len(plaintext),
                                  udp_ports=self._udp_ports if self._udp else None,
                                  spi=self.spi, seq=seq)
        self._seq_out = seq
        wire = self._transform.seal(header, seq, plaintext)
        if self._udp and h.version == 6:
            wire = udp_checksum_ipv6(wire, end)
        return wire, plaintext

    def _trailer(self, next_header: int, pad: int) -> bytes:
        table = self._transport_trailers.get(next_header)
        if table is None:
            table = self._transport_trailers[next_header] = trailers(
                next_header, self._align_mask + 1
            )
        return table[pad]

    # -- through a UDP socket (RFC 3948; see secpath.esp.datagram) ---------

    encapsulate_udp_payload = _datagram.encapsulate_udp_payload
    decapsulate_udp_payload = _datagram.decapsulate_udp_payload

    # -- inbound ----------------------------------------------------------

    def decapsulate(self, packet: bytes) -> bytes:
        """Verify and strip ESP from one whole outer packet; return the inner
        packet (tunnel mode) or the rebuilt packet (transport mode).

        Raises an :class:`EspDrop` subclass (counted on the SA) for every
        packet it refuses, :class:`LifetimeExpiredError` past the hard
        lifetime.
        """
        n = len(packet)
        # The hot path: a tunnel-mode AEAD SA without ESN, an outer IPv4
        # header without options, ECN or fragmentation, as long as the buffer,
        # ESP (not in UDP), a sequence number above the window (RFC 4303
        # §3.4.3: checked before the ICV), an IPv4 packet inside without TFC
        # padding.  Raw ESP in transport mode: secpath.esp.transport.
        if n >= self._fast_in_min:
            if not self._tunnel_mode:
                return _transport.decapsulate_v4(self, packet, n)
            first, end, fragment_proto, spi, seq, iv = _outer_v4_esp(packet)
            replay = self._replay
            top = replay.top
            if (first & 0xFF03 == 0x4500 and fragment_proto & 0x3FFF00FF == IPPROTO_ESP
                    and end == n and spi == self.spi and top < seq):
                try:
                    plain = self._aead_decrypt(  # type: ignore[misc]
                        _nonce(self._aead_salt, iv), packet[36:end], packet[20:28])
                except InvalidTag:
                    drop = IntegrityError(f"{self.transform}: ICV mismatch")
                    self._count_drop(drop)
                    raise drop from None
                # RFC 4303 §2.4: the padding is 1, 2, 3, ...; Next Header IPv4
                pad = plain[-2]
                length = n - _V4_AEAD_OVERHEAD  # len(plain), since end == n
                payload_end = length - 2 - pad
                version, inner_length = _inner_v4_length(plain)
                if (plain.endswith(V4_TRAILERS[pad]) and version >> 4 == 4
                        and inner_length == payload_end >= 20):
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
                    return plain[:payload_end]
                return self._accept(packet, plain, seq, 20, 9, 4, 0, False)
        return self._decapsulate(packet)

    def _decapsulate(self, packet: bytes) -> bytes:
        if self._closed_in:
            self._refuse_inbound()
        if type(packet) is not bytes:
            packet = bytes(packet)
        try:
            n = len(packet)
            if n >= 20 and packet[0] == 0x45 and not packet[6] & 0x3F and not packet[7]:
                # IPv4 without options, not a fragment: the common case
                end = packet[2] << 8 | packet[3]
                if end > n or end < 28:
                    raise EspParseError(f"IPv4 total length {end} of {n} bytes")
                start = 20
                proto = packet[9]
                outer_tos = packet[1]
                version = 4
                proto_at = 9
            else:
                h = _ip.parse_ip(packet, transport=True)
                start, end, proto = h.header_end, h.total_length, h.next_header
                outer_tos, version, proto_at = h.traffic_class, h.version, h.next_header_at
            udp = proto == IPPROTO_UDP
            if udp:
                # RFC 3948 §2.1-§2.3: UDP header, then a keepalive, a non-ESP
                # marker (IKE on port 4500) or ESP
                if end - start < 8:
                    raise EspParseError("UDP header truncated")
                start += 8
                if end - start == 1 and packet[start] == 0xFF:
                    raise NatKeepalive("NAT-keepalive")
                if packet[start : start + 4] == NON_ESP_MARKER:
                    raise NonEspMarker(packet[start:end])
            elif proto != IPPROTO_ESP:
                raise EspParseError(f"protocol {proto} is neither ESP nor ESP-in-UDP")
            if end - start < self._overhead + 2:
                raise EspParseError(f"ESP packet of {end - start} bytes is too short")
            spi, seq = _II.unpack_from(packet, start)
            if spi != self.spi:
                raise UnknownSpiError(spi)
            replay = self._replay
            # RFC 4303 §3.4.3: the replay check comes before the ICV check
            if self.esn or seq <= replay.top:
                seq = replay.check(seq)
            if self._aead:
                try:
                    plain = self._aead_decrypt(  # type: ignore[misc]
                        self._aead_salt + packet[start + 8 : start + 16],
                        packet[start + 16 : end], packet[start : start + 8])
                except InvalidTag:
                    raise IntegrityError(f"{self.transform}: ICV mismatch") from None
            else:
                plain = self._transform.open(packet, start, end, seq)
        except EspDrop as drop:
            self._count_drop(drop)
            raise
        return self._accept(packet, plain, seq, start, proto_at, version, outer_tos, udp)

    def _accept(self, packet: bytes, plain: bytes, seq: int, start: int, proto_at: int,
                version: int, outer_tos: int, udp: bool) -> bytes:
        """The rest of :meth:`decapsulate` once the ICV of the ESP packet at
        ``start`` verified (``plain`` is its decrypted payload): the window,
        the padding, the inner or rebuilt packet, the counters."""
        try:
            # RFC 4303 §3.4.3: the window moves only after the ICV verified;
            # inline for the usual next-in-the-same-block case (RFC 6479 §2)
            replay = self._replay
            top = replay.top
            if replay.size and seq > top and seq >> 6 == top >> 6:
                replay.blocks[(seq >> 6) & replay.index_mask] |= 1 << (seq & 63)
                replay.top = seq
            else:
                replay.update(seq)
            length = len(plain)
            pad = plain[-2]
            next_header = plain[-1]
            payload_end = length - 2 - pad
            if payload_end < 0 or (pad and plain[payload_end : length - 1] != PADDING[pad]):
                raise PaddingError("padding is not 1, 2, 3, ... (RFC 4303 §2.4)")
            if self._tunnel_mode:
                if (next_header == IPPROTO_IPV4 and payload_end >= 20
                        and plain[0] >> 4 == 4 and plain[2] << 8 | plain[3] == payload_end):
                    inner = plain[:payload_end]  # the common case: no TFC padding
                else:
                    inner = inner_packet(plain, payload_end, next_header)
                if outer_tos & 3:
                    inner = ecn_decapsulate_packet(inner, outer_tos & 3)
            elif next_header == IPPROTO_NONE:
                raise DummyPacket("dummy packet (RFC 4303 §2.6)")
            else:
                inner = rebuild_transport(
                    packet, start - (8 if udp else 0), proto_at, version=version,
                    payload=plain[:payload_end], next_header=next_header, nat_traversal=udp)
        except EspDrop as drop:
            self._count_drop(drop)
            raise
        self._packets_in += 1
        self._octets_in += (payload_end << OCTETS_SHIFT) + length
        if self._packets_in >= self._limit_packets_in or self._octets_in >= self._limit_octets_in:
            self._lifetime_passed("inbound")
        return inner

    # -- what the daemon and the monitor read -----------------------------

    @property
    def lifetime(self) -> Lifetime:
        """The limits this SA was built with."""
        return self._lifetime

    @property
    def replay_window(self) -> ReplayWindow:
        return self._replay

    def __repr__(self) -> str:
        return (f"SecurityAssociation(spi=0x{self.spi:08x}, transform={self.transform!r}, "
                f"mode={self.mode!r}, udp_encapsulation={self.udp_encapsulation!r}, "
                f"esn={self.esn!r})")
