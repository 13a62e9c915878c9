"""IKEv2 payloads as frozen dataclasses, with the pure body codecs.

Each class has ``payload_type``; :func:`encode_payload_body` and
:func:`decode_payload_body` turn the bytes after the 4-byte generic payload
header (RFC 7296 §3.2) into a payload and back.  The chain of generic
headers, the SK payload and fragments live in :mod:`secpath.ike.message`.

Decoders are total: bad bytes raise :class:`~secpath.errors.ParseError` only.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

from secpath._frozen import fast_init
from secpath.errors import LocalError, ParseError
from secpath.ike.constants import PayloadType, ProtocolId, TransformAttributeType, TsType
from secpath.ike.selectors import TrafficSelector

__all__ = [
    "AuthPayload",
    "CertPayload",
    "CertReqPayload",
    "DeletePayload",
    "IdPayload",
    "IdiPayload",
    "IdrPayload",
    "KePayload",
    "NoncePayload",
    "NotifyPayload",
    "Payload",
    "Proposal",
    "SaPayload",
    "Transform",
    "TransformAttribute",
    "TsPayload",
    "TsiPayload",
    "TsrPayload",
    "UnknownPayload",
    "VendorIdPayload",
    "decode_payload_body",
    "encode_payload_body",
]

_MAX_ITEMS = 256  # bound on proposals, transforms, attributes, selectors, SPIs


# --- SA (RFC 7296 §3.3) -------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class TransformAttribute:
    """RFC 7296 §3.3.5.  An ``int`` value is TV format (AF = 1, 16 bits);
    ``bytes`` is TLV."""

    type: int
    value: int | bytes


@fast_init
@dataclass(frozen=True, slots=True)
class Transform:
    """RFC 7296 §3.3.2: ``type`` is a TransformType, ``id`` the Transform ID."""

    type: int
    id: int
    attributes: tuple[TransformAttribute, ...] = ()

    @property
    def key_length(self) -> int | None:
        """The Key Length attribute in bits (RFC 7296 §3.3.5), if present."""
        for attr in self.attributes:
            if attr.type == TransformAttributeType.KEY_LENGTH and isinstance(attr.value, int):
                return attr.value
        return None


@fast_init
@dataclass(frozen=True, slots=True)
class Proposal:
    """RFC 7296 §3.3.1: ``number`` starts at 1; ``spi`` is empty for the first
    IKE_SA_INIT, 8 bytes for an IKE SA rekey, 4 bytes for ESP/AH."""

    number: int
    protocol_id: int
    spi: bytes
    transforms: tuple[Transform, ...]


@fast_init
@dataclass(frozen=True, slots=True)
class SaPayload:
    payload_type: ClassVar[int] = PayloadType.SA
    proposals: tuple[Proposal, ...]


# --- simple payloads ------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class KePayload:
    """RFC 7296 §3.4."""

    payload_type: ClassVar[int] = PayloadType.KE
    dh_group: int
    data: bytes


@fast_init
@dataclass(frozen=True, slots=True)
class IdPayload:
    """RFC 7296 §3.5: ``id_type`` is an IdType, ``data`` the identification."""

    payload_type: ClassVar[int] = PayloadType.IDI
    id_type: int
    data: bytes


@fast_init
@dataclass(frozen=True, slots=True)
class IdiPayload(IdPayload):
    payload_type: ClassVar[int] = PayloadType.IDI


@fast_init
@dataclass(frozen=True, slots=True)
class IdrPayload(IdPayload):
    payload_type: ClassVar[int] = PayloadType.IDR


@fast_init
@dataclass(frozen=True, slots=True)
class CertPayload:
    """RFC 7296 §3.6: ``encoding`` is a CertEncoding (4 = X.509 DER)."""

    payload_type: ClassVar[int] = PayloadType.CERT
    encoding: int
    data: bytes


@fast_init
@dataclass(frozen=True, slots=True)
class CertReqPayload:
    """RFC 7296 §3.7: for X.509, ``data`` is SHA-1 hashes of trusted CAs'
    SubjectPublicKeyInfo, concatenated (20 bytes each)."""

    payload_type: ClassVar[int] = PayloadType.CERTREQ
    encoding: int
    data: bytes


@fast_init
@dataclass(frozen=True, slots=True)
class AuthPayload:
    """RFC 7296 §3.8: ``method`` is an AuthMethod."""

    payload_type: ClassVar[int] = PayloadType.AUTH
    method: int
    data: bytes


@fast_init
@dataclass(frozen=True, slots=True)
class NoncePayload:
    """RFC 7296 §3.9: 16 to 256 bytes."""

    payload_type: ClassVar[int] = PayloadType.NONCE
    data: bytes


@fast_init
@dataclass(frozen=True, slots=True)
class NotifyPayload:
    """RFC 7296 §3.10: ``notify_type`` (see NotifyType), an optional SPI of
    ``protocol_id`` and the notification data."""

    payload_type: ClassVar[int] = PayloadType.NOTIFY
    notify_type: int
    data: bytes = b""
    protocol_id: int = ProtocolId.NONE
    spi: bytes = b""


@fast_init
@dataclass(frozen=True, slots=True)
class DeletePayload:
    """RFC 7296 §3.11: no SPI for the IKE SA, 4-byte SPIs for ESP/AH."""

    payload_type: ClassVar[int] = PayloadType.DELETE
    protocol_id: int
    spis: tuple[bytes, ...] = ()


@fast_init
@dataclass(frozen=True, slots=True)
class VendorIdPayload:
    """RFC 7296 §3.12."""

    payload_type: ClassVar[int] = PayloadType.VENDOR_ID
    data: bytes


@fast_init
@dataclass(frozen=True, slots=True)
class TsPayload:
    """RFC 7296 §3.13."""

    payload_type: ClassVar[int] = PayloadType.TSI
    selectors: tuple[TrafficSelector, ...]


@fast_init
@dataclass(frozen=True, slots=True)
class TsiPayload(TsPayload):
    payload_type: ClassVar[int] = PayloadType.TSI


@fast_init
@dataclass(frozen=True, slots=True)
class TsrPayload(TsPayload):
    payload_type: ClassVar[int] = PayloadType.TSR


@fast_init
@dataclass(frozen=True, slots=True)
class UnknownPayload:
    """A payload this codec does not parse (CP, EAP, or an unknown type).

    ``critical`` is the Critical bit (RFC 7296 §2.5): an unknown payload with it
    set makes the whole message unacceptable (UNSUPPORTED_CRITICAL_PAYLOAD).
    """

    payload_type: int
    data: bytes
    critical: bool = False


Payload: TypeAlias = (
    SaPayload
    | KePayload
    | IdiPayload
    | IdrPayload
    | CertPayload
    | CertReqPayload
    | AuthPayload
    | NoncePayload
    | NotifyPayload
    | DeletePayload
    | VendorIdPayload
    | TsiPayload
    | TsrPayload
    | UnknownPayload
)


# --- encoders --------------------------------------------------------------------
#
# Precompiled structs; a value that does not fit its field makes struct.error,
# which encode_payload_body turns into LocalError (our own bad input).

_U8 = struct.Struct("!B")
_U16 = struct.Struct("!H")
_U16X2 = struct.Struct("!HH")
_HEAD4 = struct.Struct("!BBH")  # Notify and Delete heads: u8, u8, u16
_TYPED = struct.Struct("!B3x")  # ID, AUTH: a type and 3 reserved bytes (§3.5, §3.8)
_KE_HEAD = struct.Struct("!H2x")  # RFC 7296 §3.4: DH group, 2 reserved bytes
_TS_COUNT = struct.Struct("!B3x")  # RFC 7296 §3.13: number of TSs, 3 reserved bytes
_TS_HEAD = struct.Struct("!BBHHH")  # RFC 7296 §3.13.1
_TRANSFORM = struct.Struct("!BBHBBH")  # RFC 7296 §3.3.2, up to the Transform ID
_PROPOSAL = struct.Struct("!BBHBBBB")  # RFC 7296 §3.3.1, up to the transform count
_TS_V4 = int(TsType.TS_IPV4_ADDR_RANGE)
_TS_V6 = int(TsType.TS_IPV6_ADDR_RANGE)

# Transform lists repeat (one per policy, one per peer implementation): their
# encodings and decodings are kept, keyed by value, in small caches emptied
# when full.  Entries are immutable (bytes, frozen dataclasses): sharing them
# is safe, and a hit gives what decoding the same bytes again would.
_CACHE_MAX = 256
_CACHE_KEY_BYTES = 512  # longer transform lists are not kept
_transforms_wire: dict[tuple[Transform, ...], bytes] = {}
_transforms_seen: dict[tuple[int, bytes], tuple[Transform, ...]] = {}
_selectors_seen: dict[bytes, TrafficSelector] = {}  # the same for selectors


def _encode_attribute(attr: TransformAttribute) -> bytes:
    value = attr.value
    if isinstance(value, int):  # TV, AF bit set
        return _U16X2.pack(0x8000 | attr.type, value)
    return _U16X2.pack(attr.type & 0x7FFF, len(value)) + value


def _encode_transforms(transforms: tuple[Transform, ...]) -> bytes:
    wire = _transforms_wire.get(transforms)
    if wire is not None:
        return wire
    parts: list[bytes] = []
    last = len(transforms) - 1
    for i, t in enumerate(transforms):
        attrs = b"".join([_encode_attribute(a) for a in t.attributes]) if t.attributes else b""
        # RFC 7296 §3.3.2: Last Substruc 0 = last, 3 = more transforms follow
        parts.append(_TRANSFORM.pack(0 if i == last else 3, 0, 8 + len(attrs), t.type, 0, t.id)
                     + attrs)
    wire = b"".join(parts)
    if len(wire) <= _CACHE_KEY_BYTES:
        if len(_transforms_wire) >= _CACHE_MAX:
            _transforms_wire.clear()
        _transforms_wire[transforms] = wire
    return wire


def _encode_proposal(p: Proposal, last: bool) -> bytes:
    body = _encode_transforms(p.transforms)
    spi = p.spi
    # RFC 7296 §3.3.1: Last Substruc 0 = last, 2 = more proposals follow
    return _PROPOSAL.pack(0 if last else 2, 0, 8 + len(spi) + len(body), p.number,
                          p.protocol_id, len(spi), len(p.transforms)) + spi + body


def _encode_selector(ts: TrafficSelector) -> bytes:
    addrs = ts.start.packed + ts.end.packed
    ts_type = _TS_V4 if ts.start.version == 4 else _TS_V6
    return _TS_HEAD.pack(ts_type, ts.protocol, 8 + len(addrs), ts.start_port, ts.end_port) + addrs


def _encode_sa(p: SaPayload) -> bytes:
    proposals = p.proposals
    last = len(proposals) - 1
    return b"".join([_encode_proposal(x, i == last) for i, x in enumerate(proposals)])


def _encode_notify(p: NotifyPayload) -> bytes:
    # RFC 7296 §3.10: Protocol ID | SPI Size | Notify Message Type | SPI | data
    return _HEAD4.pack(p.protocol_id, len(p.spi), p.notify_type) + p.spi + p.data


def _encode_delete(p: DeletePayload) -> bytes:
    spis = p.spis
    size = len(spis[0]) if spis else (0 if p.protocol_id == ProtocolId.IKE else 4)
    if any(len(s) != size for s in spis):
        raise LocalError("Delete payload: SPIs of different sizes")
    return _HEAD4.pack(p.protocol_id, size, len(spis)) + b"".join(spis)


def _encode_ts(p: TsPayload) -> bytes:
    return _TS_COUNT.pack(len(p.selectors)) + b"".join(
        [_encode_selector(ts) for ts in p.selectors])


def _encode_typed(p: IdPayload | AuthPayload) -> bytes:
    return _TYPED.pack(p.id_type if isinstance(p, IdPayload) else p.method) + p.data


def _encode_cert(p: CertPayload | CertReqPayload) -> bytes:
    return _U8.pack(p.encoding) + p.data


def _encode_data(p: NoncePayload | VendorIdPayload | UnknownPayload) -> bytes:
    return p.data


_ENCODERS: dict[type, Callable[[Any], bytes]] = {
    SaPayload: _encode_sa,
    KePayload: lambda p: _KE_HEAD.pack(p.dh_group) + p.data,
    IdiPayload: _encode_typed,
    IdrPayload: _encode_typed,
    IdPayload: _encode_typed,
    CertPayload: _encode_cert,
    CertReqPayload: _encode_cert,
    AuthPayload: _encode_typed,
    NoncePayload: _encode_data,
    NotifyPayload: _encode_notify,
    DeletePayload: _encode_delete,
    VendorIdPayload: _encode_data,
    TsiPayload: _encode_ts,
    TsrPayload: _encode_ts,
    TsPayload: _encode_ts,
    UnknownPayload: _encode_data,
}


def encode_payload_body(payload: Payload) -> bytes:
    """The bytes after the generic payload header (RFC 7296 §3.2)."""
    encoder = _ENCODERS.get(type(payload))
    if encoder is None:  # a subclass of a payload class
        encoder = next((e for cls, e in _ENCODERS.items() if isinstance(payload, cls)), None)
        if encoder is None:
            raise LocalError(f"cannot encode {type(payload).__name__}")
    try:
        return encoder(payload)
    except struct.error as exc:
        raise LocalError(f"{type(payload).__name__}: a field does not fit: {exc}") from exc


# --- decoders --------------------------------------------------------------------
#
# Each decoder takes the whole body (bytes) and checks every offset against
# its length before it unpacks: bad bytes are ParseError, never IndexError
# or struct.error.


def _decode_attributes(b: bytes, pos: int, end: int) -> tuple[TransformAttribute, ...]:
    attrs: list[TransformAttribute] = []
    while pos < end:
        if len(attrs) >= _MAX_ITEMS:
            raise ParseError("transform: too many attributes")
        if pos + 4 > end:
            raise ParseError(f"transform attribute: {end - pos} bytes, needs 4")
        head, value = _U16X2.unpack_from(b, pos)
        pos += 4
        if head & 0x8000:
            attrs.append(TransformAttribute(head & 0x7FFF, value))
        else:
            if pos + value > end:
                raise ParseError(f"transform attribute: value of {value} bytes, {end - pos} left")
            attrs.append(TransformAttribute(head, b[pos : pos + value]))
            pos += value
    return tuple(attrs)


def _decode_transforms(b: bytes, pos: int, end: int, count: int) -> tuple[Transform, ...]:
    transforms: list[Transform] = []
    for _ in range(count):
        if pos + 8 > end:
            raise ParseError(f"transform: {end - pos} bytes left in the proposal, needs 8")
        last, _reserved, t_length, ttype, _reserved2, tid = _TRANSFORM.unpack_from(b, pos)
        if last not in (0, 3):
            raise ParseError(f"transform: Last Substruc {last}, expected 0 or 3")
        if t_length < 8:
            raise ParseError(f"transform length {t_length} < 8")
        t_end = pos + t_length
        if t_end > end:
            raise ParseError(f"transform length {t_length} runs past the proposal")
        attrs = _decode_attributes(b, pos + 8, t_end) if t_length > 8 else ()
        transforms.append(Transform(ttype, tid, attrs))
        if (last == 0) != (len(transforms) == count):
            raise ParseError("proposal: Last Substruc disagrees with the transform count")
        pos = t_end
    if pos != end:
        raise ParseError(f"proposal: {end - pos} trailing bytes")
    return tuple(transforms)


def _decode_sa(b: bytes) -> SaPayload:
    proposals: list[Proposal] = []
    pos, end = 0, len(b)
    more = True
    while more:
        if len(proposals) >= _MAX_ITEMS:
            raise ParseError("SA: too many proposals")
        if pos + 8 > end:
            raise ParseError(f"SA: proposal of {end - pos} bytes, needs 8")
        last, _reserved, length, number, protocol_id, spi_size, count = (
            _PROPOSAL.unpack_from(b, pos))
        if last not in (0, 2):
            raise ParseError(f"proposal: Last Substruc {last}, expected 0 or 2")
        if length < 8:
            raise ParseError(f"proposal length {length} < 8")
        p_end = pos + length
        if p_end > end:
            raise ParseError(f"proposal length {length} runs past the SA payload")
        t_start = pos + 8 + spi_size
        if t_start > p_end:
            raise ParseError(f"proposal: SPI of {spi_size} bytes runs past the proposal")
        key = (count, b[t_start:p_end])
        transforms = _transforms_seen.get(key)
        if transforms is None:
            transforms = _decode_transforms(b, t_start, p_end, count)
            if p_end - t_start <= _CACHE_KEY_BYTES:
                if len(_transforms_seen) >= _CACHE_MAX:
                    _transforms_seen.clear()
                _transforms_seen[key] = transforms
        proposals.append(Proposal(number, protocol_id, b[pos + 8 : t_start], transforms))
        more = last == 2
        pos = p_end
    if pos != end:
        raise ParseError(f"SA: {end - pos} trailing bytes")
    return SaPayload(tuple(proposals))


def _decode_ts(b: bytes, cls: type[TsiPayload] | type[TsrPayload]) -> TsiPayload | TsrPayload:
    end = len(b)
    if end < 4:
        raise ParseError(f"TS payload of {end} bytes, needs 4")
    selectors: list[TrafficSelector] = []
    pos = 4
    for _ in range(b[0]):
        if pos + 8 > end:
            raise ParseError("traffic selector header: truncated")
        ts_type, protocol, length, start_port, end_port = _TS_HEAD.unpack_from(b, pos)
        raw = b[pos : pos + length]
        known = _selectors_seen.get(raw)
        if known is not None:  # equal bytes decode to an equal selector
            selectors.append(known)
            pos += length
            continue
        address: type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address]
        if ts_type == _TS_V4:
            size, address = 4, ipaddress.IPv4Address
        elif ts_type == _TS_V6:
            size, address = 16, ipaddress.IPv6Address
        else:
            raise ParseError(f"traffic selector type {ts_type} is not supported")
        if length != 8 + 2 * size:
            raise ParseError(f"traffic selector length {length}, expected {8 + 2 * size}")
        mid = pos + 8 + size
        pos += length
        if pos > end:
            raise ParseError("traffic selector addresses: truncated")
        ts = TrafficSelector(address(b[mid - size : mid]), address(b[mid:pos]), protocol,
                             start_port, end_port)
        if len(_selectors_seen) >= _CACHE_MAX:
            _selectors_seen.clear()
        _selectors_seen[raw] = ts
        selectors.append(ts)
    if pos != end:
        raise ParseError(f"TS payload: {end - pos} trailing bytes")
    return cls(tuple(selectors))


def _decode_notify(b: bytes) -> NotifyPayload:
    if len(b) < 4:
        raise ParseError(f"Notify payload of {len(b)} bytes, needs 4")
    proto, spi_size, ntype = _HEAD4.unpack_from(b)
    if 4 + spi_size > len(b):
        raise ParseError(f"Notify payload: SPI of {spi_size} bytes, {len(b) - 4} left")
    return NotifyPayload(ntype, b[4 + spi_size :], proto, b[4 : 4 + spi_size])


def _decode_delete(b: bytes) -> DeletePayload:
    if len(b) < 4:
        raise ParseError(f"Delete payload of {len(b)} bytes, needs 4")
    proto, size, count = _HEAD4.unpack_from(b)
    if size == 0 and count:
        raise ParseError("Delete payload: SPIs of size 0")
    if 4 + size * count != len(b):
        raise ParseError(f"Delete payload: {count} SPIs of {size} bytes in {len(b) - 4} bytes")
    return DeletePayload(proto, tuple(b[i : i + size] for i in range(4, len(b), size)) if size
                         else ())


def _decode_nonce(b: bytes) -> NoncePayload:
    # RFC 7296 §3.9: "at least 128 bits in size ... MUST NOT exceed 2048 bits"
    if not 16 <= len(b) <= 256:
        raise ParseError(f"Nonce of {len(b)} bytes, must be 16 to 256")
    return NoncePayload(b)


def _decode_ke(b: bytes) -> KePayload:
    if len(b) < 4:
        raise ParseError(f"KE payload of {len(b)} bytes, needs 4")
    return KePayload(_U16.unpack_from(b)[0], b[4:])


def _typed(b: bytes, what: str, reserved: int) -> tuple[int, bytes]:
    if len(b) < 1 + reserved:
        raise ParseError(f"{what} payload of {len(b)} bytes, needs {1 + reserved}")
    return b[0], b[1 + reserved :]


_DECODERS: dict[int, Callable[[bytes], Payload]] = {
    PayloadType.SA: _decode_sa,
    PayloadType.KE: _decode_ke,
    PayloadType.IDI: lambda b: IdiPayload(*_typed(b, "IDi", 3)),
    PayloadType.IDR: lambda b: IdrPayload(*_typed(b, "IDr", 3)),
    PayloadType.CERT: lambda b: CertPayload(*_typed(b, "CERT", 0)),
    PayloadType.CERTREQ: lambda b: CertReqPayload(*_typed(b, "CERTREQ", 0)),
    PayloadType.AUTH: lambda b: AuthPayload(*_typed(b, "AUTH", 3)),
    PayloadType.NONCE: _decode_nonce,
    PayloadType.NOTIFY: _decode_notify,
    PayloadType.DELETE: _decode_delete,
    PayloadType.VENDOR_ID: VendorIdPayload,
    PayloadType.TSI: lambda b: _decode_ts(b, TsiPayload),
    PayloadType.TSR: lambda b: _decode_ts(b, TsrPayload),
}


def decode_payload_body(payload_type: int, body: bytes, critical: bool = False) -> Payload:
    """Parse a payload body; types not in the list above come back as
    :class:`UnknownPayload`."""
    decoder = _DECODERS.get(payload_type)
    if decoder is None:
        return UnknownPayload(payload_type, bytes(body), critical)
    return decoder(bytes(body) if type(body) is not bytes else body)
