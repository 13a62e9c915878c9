"""IKEv2 messages: the header (RFC 7296 §3.1), the payload chain (§3.2), the
Encrypted payload (§3.14) and the Encrypted Fragment payload (RFC 7383 §2.5).

Pure functions:

- :func:`encode_message` / :func:`decode_message`: a whole datagram.  With
  ``Message.encrypted`` the payloads travel inside one SK payload sealed by
  a :class:`~secpath.crypto.sk.SkCipher`.
- :func:`decode_header`: the 28-byte header alone (SPIs, exchange, IDs), to
  find the IKE SA before decrypting.
- An SKF datagram decodes to a :class:`Message` whose ``fragment`` holds
  the decrypted piece; :mod:`secpath.ike.fragment` reassembles them.

Decoders raise only :class:`~secpath.errors.ParseError` (its subclass
:class:`~secpath.crypto.sk.IntegrityError` when an ICV fails: drop silently,
RFC 7296 §2.21.1).  An unknown payload with the Critical bit set is kept as
an :class:`UnknownPayload` and listed in :attr:`Message.unknown_critical`: the
engine answers UNSUPPORTED_CRITICAL_PAYLOAD (§2.5).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from secpath._frozen import fast_init
from secpath.crypto.sk import SkCipher
from secpath.errors import LocalError, ParseError
from secpath.ike.constants import IKE_HEADER_BYTES, HeaderFlag, NotifyType, PayloadType
from secpath.ike.payloads import (
    _DECODERS,
    _ENCODERS,
    NotifyPayload,
    Payload,
    UnknownPayload,
    encode_payload_body,
)

__all__ = [
    "MAX_PAYLOADS",
    "Fragment",
    "Header",
    "Message",
    "decode_header",
    "decode_message",
    "decode_payload_chain",
    "encode_header",
    "encode_message",
    "encode_payload_chain",
    "seal_payloads",
]

Rng = Callable[[int], bytes]
P = TypeVar("P")

MAX_PAYLOADS = 128  # bound on the payloads of one message
_HEADER = struct.Struct("!8s8sBBBBII")
_GENERIC = struct.Struct("!BBH")  # RFC 7296 §3.2: generic payload header
_CRITICAL = 0x80  # RFC 7296 §3.2: C bit
# HeaderFlag as plain ints: IntFlag arithmetic is slow on the hot path
_INITIATOR = int(HeaderFlag.INITIATOR)
_RESPONSE = int(HeaderFlag.RESPONSE)
_VERSION = int(HeaderFlag.VERSION)
_SK = int(PayloadType.SK)
_SKF = int(PayloadType.SKF)
_FRAGMENT_NUMBERS = struct.Struct("!HH")  # RFC 7383 §2.5


@fast_init
@dataclass(frozen=True, slots=True)
class Header:
    """The IKE header (RFC 7296 §3.1) without Next Payload and Length, which
    the encoder computes."""

    spi_i: bytes
    spi_r: bytes
    exchange_type: int
    message_id: int
    initiator: bool  # I flag: sent by the original initiator of the IKE SA
    response: bool  # R flag
    major_version: int = 2
    minor_version: int = 0
    version_flag: bool = False  # V flag: MUST be 0 in IKEv2

    @property
    def flags(self) -> int:
        return (
            (_INITIATOR if self.initiator else 0)
            | (_RESPONSE if self.response else 0)
            | (_VERSION if self.version_flag else 0)
        )


@fast_init
@dataclass(frozen=True, slots=True)
class Fragment:
    """The decrypted content of one Encrypted Fragment payload (RFC 7383 §2.5).

    ``first_payload`` is the Next Payload of the SKF payload: the type of the
    first inner payload in fragment 1, zero in the others.
    """

    number: int
    total: int
    first_payload: int
    data: bytes


@fast_init
@dataclass(frozen=True, slots=True)
class Message:
    """One IKE message.  ``encrypted``: the payloads are (or were) carried in
    an SK payload (or SKF fragments).  ``fragment`` is set only for a decoded
    SKF datagram, whose ``payloads`` are then the ones before the SKF."""

    header: Header
    payloads: tuple[Payload, ...]
    encrypted: bool = False
    fragment: Fragment | None = None

    def get(self, cls: type[P]) -> P | None:
        """The first payload of class ``cls``, or ``None``."""
        for p in self.payloads:
            if isinstance(p, cls):
                return p
        return None

    def all(self, cls: type[P]) -> tuple[P, ...]:
        """Every payload of class ``cls``, in order."""
        return tuple([p for p in self.payloads if isinstance(p, cls)])

    def notify(self, notify_type: int) -> NotifyPayload | None:
        """The first Notify payload of ``notify_type``, or ``None``."""
        for p in self.payloads:
            if isinstance(p, NotifyPayload) and p.notify_type == notify_type:
                return p
        return None

    @property
    def unknown_critical(self) -> tuple[int, ...]:
        """Types of unrecognised payloads with the Critical bit set (RFC 7296
        §2.5): if not empty, reject the message with UNSUPPORTED_CRITICAL_PAYLOAD
        carrying the first type as its one-byte data."""
        return tuple(
            p.payload_type for p in self.payloads if isinstance(p, UnknownPayload) and p.critical
        )

    def unsupported_critical_notify(self) -> NotifyPayload | None:
        """The Notify payload that answers :attr:`unknown_critical`, if any."""
        for p in self.payloads:  # the first of unknown_critical, without building it
            if isinstance(p, UnknownPayload) and p.critical:
                return NotifyPayload(NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD,
                                     bytes((p.payload_type,)))
        return None


# --- header --------------------------------------------------------------------


def encode_header(header: Header, next_payload: int, length: int) -> bytes:
    """The 28 header bytes (RFC 7296 §3.1)."""
    if len(header.spi_i) != 8 or len(header.spi_r) != 8:
        raise LocalError("IKE SPIs are 8 bytes")
    if not 0 <= header.message_id <= 0xFFFFFFFF:
        raise LocalError("message ID does not fit in 32 bits")
    version = (header.major_version << 4) | header.minor_version
    return _HEADER.pack(
        header.spi_i, header.spi_r, next_payload, version, header.exchange_type,
        header.flags, header.message_id, length,
    )


def _decode_header(data: bytes) -> tuple[Header, int, int]:
    if len(data) < IKE_HEADER_BYTES:
        raise ParseError(f"IKE header: {len(data)} bytes, needs {IKE_HEADER_BYTES}")
    spi_i, spi_r, next_payload, version, exchange_type, flags, message_id, length = (
        _HEADER.unpack_from(data)
    )
    header = Header(spi_i, spi_r, exchange_type, message_id, bool(flags & _INITIATOR),
                    bool(flags & _RESPONSE), version >> 4, version & 0x0F,
                    bool(flags & _VERSION))
    return header, next_payload, length


def decode_header(data: bytes) -> Header:
    """Parse the IKE header only; ParseError if ``data`` is shorter than 28
    bytes or its Length field disagrees with ``len(data)``."""
    header, _, length = _decode_header(data)
    if length != len(data):
        raise ParseError(f"IKE header: Length {length}, datagram has {len(data)} bytes")
    return header


# --- payload chains ----------------------------------------------------------------


def encode_payload_chain(payloads: Sequence[Payload], last_next: int = 0) -> tuple[int, bytes]:
    """``(type of the first payload, the chain's bytes)``; the last payload's
    Next Payload is ``last_next`` (the SK payload's type when it follows)."""
    if not payloads:
        return last_next, b""
    parts: list[bytes] = []
    last = len(payloads) - 1
    for i, payload in enumerate(payloads):
        encoder = _ENCODERS.get(type(payload))  # encode_payload_body, without a call per payload
        if encoder is None:
            body = encode_payload_body(payload)
        else:
            try:
                body = encoder(payload)
            except struct.error as exc:
                raise LocalError(f"{type(payload).__name__}: a field does not fit: {exc}") from exc
        nxt = payloads[i + 1].payload_type if i < last else last_next
        critical = _CRITICAL if isinstance(payload, UnknownPayload) and payload.critical else 0
        if len(body) > 0xFFFF - 4:
            raise LocalError(f"{type(payload).__name__} exceeds 65535 bytes")
        parts.append(_GENERIC.pack(nxt, critical, 4 + len(body)))
        parts.append(body)
    return payloads[0].payload_type, b"".join(parts)


def decode_payload_chain(first: int, data: bytes) -> tuple[Payload, ...]:
    """Parse a chain of payloads that must end exactly at the end of ``data``
    and must not contain SK or SKF (an inner chain)."""
    payloads, tail, _ = _walk(first, data if type(data) is bytes else bytes(data), 0)
    if tail is not None:
        raise ParseError(f"payload type {tail[0]} is not allowed inside an encrypted payload")
    return payloads


def _walk(first: int, data: bytes, pos: int
          ) -> tuple[tuple[Payload, ...], tuple[int, int, int] | None, int]:
    """Walk generic headers from ``pos``.  Stops at SK/SKF and returns ``(its
    type, its Next Payload, its length)`` and the offset after its 4-byte
    header; otherwise the chain must end exactly at the end of ``data``."""
    payloads: list[Payload] = []
    end = len(data)
    ptype = first
    while ptype:  # PayloadType.NONE ends the chain
        if len(payloads) >= MAX_PAYLOADS:
            raise ParseError(f"more than {MAX_PAYLOADS} payloads")
        if pos + 4 > end:
            raise ParseError(f"generic payload header: {end - pos} bytes left, needs 4")
        nxt, flags, length = _GENERIC.unpack_from(data, pos)
        if length < 4:
            raise ParseError(f"payload length {length} < 4")
        if ptype in (_SK, _SKF):
            return tuple(payloads), (ptype, nxt, length), pos + 4
        body_end = pos + length
        if body_end > end:
            raise ParseError(f"payload length {length} runs past the message")
        decoder = _DECODERS.get(ptype)  # decode_payload_body, without a call per payload
        if decoder is None:
            payloads.append(UnknownPayload(ptype, data[pos + 4 : body_end],
                                           bool(flags & _CRITICAL)))
        else:
            payloads.append(decoder(data[pos + 4 : body_end]))
        pos = body_end
        ptype = nxt
    if pos != end:
        raise ParseError(f"payloads: {end - pos} trailing bytes")
    return tuple(payloads), None, pos


# --- messages ----------------------------------------------------------------------


def encode_message(message: Message, sk: SkCipher | None = None, rng: Rng | None = None) -> bytes:
    """The datagram for ``message``.  When ``message.encrypted``, every payload
    goes inside one SK payload (RFC 7296 §3.14) sealed with ``sk`` and an IV
    from ``rng``."""
    if message.fragment is not None:
        raise LocalError("encode fragments with secpath.ike.fragment.encode_fragments")
    if not message.encrypted:
        first, chain = encode_payload_chain(message.payloads)
        return encode_header(message.header, first, IKE_HEADER_BYTES + len(chain)) + chain
    if sk is None or rng is None:
        raise LocalError("an encrypted message needs an SkCipher and an rng")
    first, inner = encode_payload_chain(message.payloads)
    return seal_payloads(message.header, PayloadType.SK, first, inner, sk=sk, rng=rng)


def seal_payloads(
    header: Header,
    payload_type: int,
    first: int,
    inner: bytes,
    *,
    sk: SkCipher,
    rng: Rng,
    extra: bytes = b"",
) -> bytes:
    """Header | SK or SKF generic header | ``extra`` (SKF fragment fields) |
    IV | sealed ``inner`` | ICV, all lengths final before sealing."""
    sk_len = 4 + len(extra) + sk.sealed_length(len(inner))
    if sk_len > 0xFFFF:
        raise LocalError("encrypted payload exceeds 65535 bytes: fragment it")
    prefix = encode_header(header, payload_type, IKE_HEADER_BYTES + sk_len) \
        + _GENERIC.pack(first, 0, sk_len) + extra
    return prefix + sk.seal(prefix, inner, rng)


def decode_message(data: bytes, sk: SkCipher | None = None, *,
                   header: Header | None = None) -> Message:
    """Parse a datagram.  An SK or SKF payload is verified and decrypted with
    ``sk`` (the peer's direction); without ``sk`` it is a ParseError.
    ``header``, if given, is what :func:`decode_header` returned for this
    same ``data`` (the engine reads it first to find the IKE SA)."""
    if type(data) is not bytes:
        data = bytes(data)
    if header is None:
        header, first, length = _decode_header(data)
        if length != len(data):
            raise ParseError(f"IKE header: Length {length}, datagram has {len(data)} bytes")
    else:
        first = data[16]  # decode_header checked the length
    if header.major_version > 2:
        # RFC 7296 §2.5: answered with INVALID_MAJOR_VERSION
        raise ParseError(
            f"IKE major version {header.major_version}", notify=NotifyType.INVALID_MAJOR_VERSION
        )
    outer, tail, pos = _walk(first, data, IKE_HEADER_BYTES)
    if tail is None:
        return Message(header, outer)
    ptype, inner_first, sk_length = tail
    if sk is None:
        raise ParseError("encrypted payload received without IKE SA keys")
    if pos - 4 + sk_length != len(data):
        raise ParseError("the encrypted payload must be the last payload (RFC 7296 §3.14)")
    if ptype == _SKF:
        if pos + 4 > len(data):
            raise ParseError("Encrypted Fragment payload: no fragment numbers")
        number, total = _FRAGMENT_NUMBERS.unpack_from(data, pos)
        pos += 4
        if not 1 <= number <= total:
            raise ParseError(f"fragment {number} of {total}")
        plain = sk.open(data[:pos], data[pos:])
        return Message(header, outer, True, Fragment(number, total, inner_first, plain))
    plain = sk.open(data[:pos], data[pos:])
    return Message(header, outer + decode_payload_chain(inner_first, plain), True)
