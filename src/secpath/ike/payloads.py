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
from typing import ClassVar, TypeAlias

from secpath._wire import Reader
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

_TRANSFORM_HEAD = struct.Struct("!BBH")
_TS_HEAD = struct.Struct("!BBHHH")  # RFC 7296 §3.13.1
_MAX_ITEMS = 256  # bound on proposals, transforms, attributes, selectors, SPIs


# --- SA (RFC 7296 §3.3) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransformAttribute:
    """RFC 7296 §3.3.5.  An ``int`` value is TV format (AF = 1, 16 bits);
    ``bytes`` is TLV."""

    type: int
    value: int | bytes


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


@dataclass(frozen=True, slots=True)
class Proposal:
    """RFC 7296 §3.3.1: ``number`` starts at 1; ``spi`` is empty for the first
    IKE_SA_INIT, 8 bytes for an IKE SA rekey, 4 bytes for ESP/AH."""

    number: int
    protocol_id: int
    spi: bytes
    transforms: tuple[Transform, ...]


@dataclass(frozen=True, slots=True)
class SaPayload:
    payload_type: ClassVar[int] = PayloadType.SA
    proposals: tuple[Proposal, ...]


# --- simple payloads ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KePayload:
    """RFC 7296 §3.4."""

    payload_type: ClassVar[int] = PayloadType.KE
    dh_group: int
    data: bytes


@dataclass(frozen=True, slots=True)
class IdPayload:
    """RFC 7296 §3.5: ``id_type`` is an IdType, ``data`` the identification."""

    payload_type: ClassVar[int] = PayloadType.IDI
    id_type: int
    data: bytes


@dataclass(frozen=True, slots=True)
class IdiPayload(IdPayload):
    payload_type: ClassVar[int] = PayloadType.IDI


@dataclass(frozen=True, slots=True)
class IdrPayload(IdPayload):
    payload_type: ClassVar[int] = PayloadType.IDR


@dataclass(frozen=True, slots=True)
class CertPayload:
    """RFC 7296 §3.6: ``encoding`` is a CertEncoding (4 = X.509 DER)."""

    payload_type: ClassVar[int] = PayloadType.CERT
    encoding: int
    data: bytes


@dataclass(frozen=True, slots=True)
class CertReqPayload:
    """RFC 7296 §3.7: for X.509, ``data`` is SHA-1 hashes of trusted CAs'
    SubjectPublicKeyInfo, concatenated (20 bytes each)."""

    payload_type: ClassVar[int] = PayloadType.CERTREQ
    encoding: int
    data: bytes


@dataclass(frozen=True, slots=True)
class AuthPayload:
    """RFC 7296 §3.8: ``method`` is an AuthMethod."""

    payload_type: ClassVar[int] = PayloadType.AUTH
    method: int
    data: bytes


@dataclass(frozen=True, slots=True)
class NoncePayload:
    """RFC 7296 §3.9: 16 to 256 bytes."""

    payload_type: ClassVar[int] = PayloadType.NONCE
    data: bytes


@dataclass(frozen=True, slots=True)
class NotifyPayload:
    """RFC 7296 §3.10: ``notify_type`` (see NotifyType), an optional SPI of
    ``protocol_id`` and the notification data."""

    payload_type: ClassVar[int] = PayloadType.NOTIFY
    notify_type: int
    data: bytes = b""
    protocol_id: int = ProtocolId.NONE
    spi: bytes = b""


@dataclass(frozen=True, slots=True)
class DeletePayload:
    """RFC 7296 §3.11: no SPI for the IKE SA, 4-byte SPIs for ESP/AH."""

    payload_type: ClassVar[int] = PayloadType.DELETE
    protocol_id: int
    spis: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class VendorIdPayload:
    """RFC 7296 §3.12."""

    payload_type: ClassVar[int] = PayloadType.VENDOR_ID
    data: bytes


@dataclass(frozen=True, slots=True)
class TsPayload:
    """RFC 7296 §3.13."""

    payload_type: ClassVar[int] = PayloadType.TSI
    selectors: tuple[TrafficSelector, ...]


@dataclass(frozen=True, slots=True)
class TsiPayload(TsPayload):
    payload_type: ClassVar[int] = PayloadType.TSI


@dataclass(frozen=True, slots=True)
class TsrPayload(TsPayload):
    payload_type: ClassVar[int] = PayloadType.TSR


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


def _u8(v: int, what: str) -> bytes:
    if not 0 <= v <= 0xFF:
        raise LocalError(f"{what}={v} does not fit in 8 bits")
    return bytes((v,))


def _u16(v: int, what: str) -> bytes:
    if not 0 <= v <= 0xFFFF:
        raise LocalError(f"{what}={v} does not fit in 16 bits")
    return struct.pack("!H", v)


def _encode_attribute(attr: TransformAttribute) -> bytes:
    if isinstance(attr.value, int):  # TV, AF bit set
        return _u16(0x8000 | attr.type, "attribute type") + _u16(attr.value, "attribute value")
    return _u16(attr.type & 0x7FFF, "attribute type") + _u16(len(attr.value), "length") + attr.value


def _encode_transform(t: Transform, last: bool) -> bytes:
    attrs = b"".join(_encode_attribute(a) for a in t.attributes)
    # RFC 7296 §3.3.2: Last Substruc 0 = last, 3 = more transforms follow
    return (b"\x00" if last else b"\x03") + b"\x00" + _u16(8 + len(attrs), "transform length") \
        + _u8(t.type, "transform type") + b"\x00" + _u16(t.id, "transform id") + attrs


def _encode_proposal(p: Proposal, last: bool) -> bytes:
    body = b"".join(
        _encode_transform(t, i == len(p.transforms) - 1) for i, t in enumerate(p.transforms)
    )
    head = _u8(p.number, "proposal number") + _u8(p.protocol_id, "protocol id") \
        + _u8(len(p.spi), "SPI size") + _u8(len(p.transforms), "transform count")
    # RFC 7296 §3.3.1: Last Substruc 0 = last, 2 = more proposals follow
    return (b"\x00" if last else b"\x02") + b"\x00" \
        + _u16(8 + len(p.spi) + len(body), "proposal length") + head + p.spi + body


def _encode_selector(ts: TrafficSelector) -> bytes:
    ts_type = TsType.TS_IPV4_ADDR_RANGE if ts.version == 4 else TsType.TS_IPV6_ADDR_RANGE
    addrs = ts.start.packed + ts.end.packed
    return _u8(ts_type, "TS type") + _u8(ts.protocol, "IP protocol") \
        + _u16(8 + len(addrs), "selector length") + _u16(ts.start_port, "start port") \
        + _u16(ts.end_port, "end port") + addrs


def encode_payload_body(payload: Payload) -> bytes:
    """The bytes after the generic payload header (RFC 7296 §3.2)."""
    match payload:
        case SaPayload(proposals=proposals):
            return b"".join(
                _encode_proposal(p, i == len(proposals) - 1) for i, p in enumerate(proposals)
            )
        case KePayload(dh_group=group, data=data):
            return _u16(group, "DH group") + b"\x00\x00" + data
        case IdPayload(id_type=id_type, data=data):
            return _u8(id_type, "ID type") + b"\x00\x00\x00" + data
        case CertPayload(encoding=enc, data=data) | CertReqPayload(encoding=enc, data=data):
            return _u8(enc, "cert encoding") + data
        case AuthPayload(method=method, data=data):
            return _u8(method, "auth method") + b"\x00\x00\x00" + data
        case NoncePayload(data=data) | VendorIdPayload(data=data) | UnknownPayload(data=data):
            return data
        case NotifyPayload(notify_type=ntype, data=data, protocol_id=proto, spi=spi):
            # RFC 7296 §3.10: Protocol ID | SPI Size | Notify Message Type | SPI | data
            return _u8(proto, "protocol id") + _u8(len(spi), "SPI size") \
                + _u16(ntype, "notify type") + spi + data
        case DeletePayload(protocol_id=proto, spis=spis):
            size = len(spis[0]) if spis else (0 if proto == ProtocolId.IKE else 4)
            if any(len(s) != size for s in spis):
                raise LocalError("Delete payload: SPIs of different sizes")
            return _u8(proto, "protocol id") + _u8(size, "SPI size") \
                + _u16(len(spis), "SPI count") + b"".join(spis)
        case TsPayload(selectors=selectors):
            return _u8(len(selectors), "TS count") + b"\x00\x00\x00" + b"".join(
                _encode_selector(ts) for ts in selectors
            )
    raise LocalError(f"cannot encode {type(payload).__name__}")


# --- decoders --------------------------------------------------------------------


def _decode_attributes(r: Reader) -> tuple[TransformAttribute, ...]:
    attrs: list[TransformAttribute] = []
    while r.remaining:
        if len(attrs) >= _MAX_ITEMS:
            raise ParseError("transform: too many attributes")
        head = r.u16("attribute type")
        if head & 0x8000:
            attrs.append(TransformAttribute(head & 0x7FFF, r.u16("attribute value")))
        else:
            attrs.append(TransformAttribute(head, r.bytes(r.u16("attribute length"), "value")))
    return tuple(attrs)


def _decode_proposal(r: Reader) -> tuple[Proposal, bool]:
    more = r.u8("last substruc")
    if more not in (0, 2):
        raise ParseError(f"proposal: Last Substruc {more}, expected 0 or 2")
    r.u8("reserved")
    length = r.u16("proposal length")
    if length < 8:
        raise ParseError(f"proposal length {length} < 8")
    body = r.sub(length - 4, "proposal")
    number = body.u8("proposal number")
    protocol_id = body.u8("protocol id")
    spi_size = body.u8("SPI size")
    count = body.u8("transform count")
    spi = body.bytes(spi_size, "SPI")
    transforms: list[Transform] = []
    for _ in range(count):
        last, _reserved, t_length = _TRANSFORM_HEAD.unpack(body.bytes(4, "transform header"))
        if last not in (0, 3):
            raise ParseError(f"transform: Last Substruc {last}, expected 0 or 3")
        if t_length < 8:
            raise ParseError(f"transform length {t_length} < 8")
        t = body.sub(t_length - 4, "transform")
        ttype, _reserved, tid = _TRANSFORM_HEAD.unpack(t.bytes(4, "transform type and id"))
        transforms.append(Transform(ttype, tid, _decode_attributes(t)))
        if (last == 0) != (len(transforms) == count):
            raise ParseError("proposal: Last Substruc disagrees with the transform count")
    body.expect_end()
    return Proposal(number, protocol_id, spi, tuple(transforms)), more == 2


def _decode_sa(r: Reader) -> SaPayload:
    proposals: list[Proposal] = []
    more = True
    while more:
        if len(proposals) >= _MAX_ITEMS:
            raise ParseError("SA: too many proposals")
        proposal, more = _decode_proposal(r)
        proposals.append(proposal)
    r.expect_end()
    return SaPayload(tuple(proposals))


def _decode_selector(r: Reader) -> TrafficSelector:
    ts_type, protocol, length, start_port, end_port = _TS_HEAD.unpack(
        r.bytes(8, "traffic selector header")
    )
    address: type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address]
    if ts_type == TsType.TS_IPV4_ADDR_RANGE:
        size, address = 4, ipaddress.IPv4Address
    elif ts_type == TsType.TS_IPV6_ADDR_RANGE:
        size, address = 16, ipaddress.IPv6Address
    else:
        raise ParseError(f"traffic selector type {ts_type} is not supported")
    if length != 8 + 2 * size:
        raise ParseError(f"traffic selector length {length}, expected {8 + 2 * size}")
    addresses = r.bytes(2 * size, "addresses")
    return TrafficSelector(
        address(addresses[:size]), address(addresses[size:]), protocol, start_port, end_port
    )


def _decode_ts(r: Reader, cls: type[TsiPayload] | type[TsrPayload]) -> TsiPayload | TsrPayload:
    count = r.u8("TS count")
    r.bytes(3, "reserved")
    selectors = tuple(_decode_selector(r) for _ in range(count))
    r.expect_end()
    return cls(selectors)


def _decode_notify(r: Reader) -> NotifyPayload:
    proto = r.u8("protocol id")
    spi_size = r.u8("SPI size")
    ntype = r.u16("notify type")
    spi = r.bytes(spi_size, "SPI")
    return NotifyPayload(ntype, r.rest(), proto, spi)


def _decode_delete(r: Reader) -> DeletePayload:
    proto = r.u8("protocol id")
    size = r.u8("SPI size")
    count = r.u16("SPI count")
    if size == 0 and count:
        raise ParseError("Delete payload: SPIs of size 0")
    spis = tuple(r.bytes(size, "SPI") for _ in range(count))
    r.expect_end()
    return DeletePayload(proto, spis)


def _nonce(data: bytes) -> NoncePayload:
    # RFC 7296 §3.9: "at least 128 bits in size ... MUST NOT exceed 2048 bits"
    if not 16 <= len(data) <= 256:
        raise ParseError(f"Nonce of {len(data)} bytes, must be 16 to 256")
    return NoncePayload(data)


def _ke(r: Reader) -> tuple[int, bytes]:
    group = r.u16("DH group")
    r.bytes(2, "reserved")
    return group, r.rest()


def _typed(r: Reader, field: str, reserved: int) -> tuple[int, bytes]:
    value = r.u8(field)
    r.bytes(reserved, "reserved")
    return value, r.rest()


_DECODERS: dict[int, Callable[[Reader], Payload]] = {
    PayloadType.SA: _decode_sa,
    PayloadType.KE: lambda r: KePayload(*_ke(r)),
    PayloadType.IDI: lambda r: IdiPayload(*_typed(r, "ID type", 3)),
    PayloadType.IDR: lambda r: IdrPayload(*_typed(r, "ID type", 3)),
    PayloadType.CERT: lambda r: CertPayload(*_typed(r, "cert encoding", 0)),
    PayloadType.CERTREQ: lambda r: CertReqPayload(*_typed(r, "cert encoding", 0)),
    PayloadType.AUTH: lambda r: AuthPayload(*_typed(r, "auth method", 3)),
    PayloadType.NONCE: lambda r: _nonce(r.rest()),
    PayloadType.NOTIFY: _decode_notify,
    PayloadType.DELETE: _decode_delete,
    PayloadType.VENDOR_ID: lambda r: VendorIdPayload(r.rest()),
    PayloadType.TSI: lambda r: _decode_ts(r, TsiPayload),
    PayloadType.TSR: lambda r: _decode_ts(r, TsrPayload),
}


_NAMES = {int(t): t.name for t in PayloadType}


def decode_payload_body(payload_type: int, body: bytes, critical: bool = False) -> Payload:
    """Parse a payload body; types not in the list above come back as
    :class:`UnknownPayload`."""
    decoder = _DECODERS.get(payload_type)
    if decoder is None:
        return UnknownPayload(payload_type, body, critical)
    return decoder(Reader(body, _NAMES[payload_type]))
