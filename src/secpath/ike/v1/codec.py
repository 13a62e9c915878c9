"""The ISAKMP message codec (RFC 2408 §3): header, the generic payload
chain and every payload IKEv1 main mode, quick mode and informational
exchanges use, with NAT-T's NAT-D and NAT-OA (RFC 3947 §3.2, §5.2).

Pure functions over frozen dataclasses.  Decoders are total: bad bytes raise
:class:`~secpath.errors.ParseError` only.  Encrypted bodies are opaque here
(:mod:`secpath.ike.v1.keys` seals and opens them).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

from secpath._wire import Reader
from secpath.errors import LocalError, ParseError, RemoteError
from secpath.ike.v1.constants import DOI_IPSEC, ISAKMP_VERSION, PayloadType

__all__ = [
    "HEADER_BYTES",
    "Attribute",
    "CertPayload",
    "CertReqPayload",
    "DeletePayload",
    "HashPayload",
    "Header",
    "IdPayload",
    "KePayload",
    "NatDPayload",
    "NatOaPayload",
    "NoncePayload",
    "NotifyPayload",
    "Payload",
    "Proposal",
    "RawPayload",
    "SaPayload",
    "SigPayload",
    "Transform",
    "UnknownPayload",
    "VendorIdPayload",
    "attribute_int",
    "decode_attributes",
    "decode_chain",
    "decode_header",
    "decode_message",
    "encode_attributes",
    "encode_chain",
    "encode_header",
    "encode_message",
    "encode_sa_body",
    "maybe_payload",
    "one_payload",
]

HEADER_BYTES = 28  # RFC 2408 §3.1
_HEADER = struct.Struct("!8s8sBBBBII")
_GENERIC = struct.Struct("!BBH")  # RFC 2408 §3.2
_MAX_ITEMS = 256  # bound on proposals, transforms, attributes, SPIs, payloads


@dataclass(frozen=True, slots=True)
class Header:
    """RFC 2408 §3.1.  ``next_payload`` and ``length`` are filled in by the
    encoder; when decoded they are the wire values."""

    spi_i: bytes  # Initiator Cookie
    spi_r: bytes  # Responder Cookie
    exchange_type: int
    flags: int
    message_id: int
    next_payload: int = 0
    length: int = 0
    version: int = ISAKMP_VERSION


def encode_header(h: Header, next_payload: int, body_bytes: int) -> bytes:
    if len(h.spi_i) != 8 or len(h.spi_r) != 8:
        raise LocalError("ISAKMP cookies are 8 bytes")
    return _HEADER.pack(h.spi_i, h.spi_r, next_payload, h.version, h.exchange_type, h.flags,
                        h.message_id, HEADER_BYTES + body_bytes)


def decode_header(data: bytes) -> Header:
    """The header; checks that the length field matches the datagram."""
    r = Reader(data, "ISAKMP header")
    spi_i, spi_r = r.bytes(8, "initiator cookie"), r.bytes(8, "responder cookie")
    next_payload, version, exchange = r.u8("next payload"), r.u8("version"), r.u8("exchange")
    flags, message_id, length = r.u8("flags"), r.u32("message ID"), r.u32("length")
    if length != len(data):
        raise ParseError(f"ISAKMP header: length {length} but the datagram has {len(data)} bytes")
    return Header(spi_i, spi_r, exchange, flags, message_id, next_payload, length, version)


# --- data attributes (RFC 2408 §3.3) -------------------------------------------


@dataclass(frozen=True, slots=True)
class Attribute:
    """``int`` below 2**16 is TV (AF = 1); larger ``int`` and ``bytes`` are
    TLV (a long Life Duration, RFC 2409 Appendix A: "variable")."""

    type: int
    value: int | bytes


def attribute_int(value: int | bytes) -> int:
    return value if isinstance(value, int) else int.from_bytes(value, "big")


def encode_attributes(attrs: Sequence[Attribute]) -> bytes:
    out = bytearray()
    for a in attrs:
        if not 0 <= a.type < 0x8000:
            raise LocalError(f"attribute type {a.type} out of range")
        if isinstance(a.value, int) and 0 <= a.value < 0x10000:
            out += struct.pack("!HH", 0x8000 | a.type, a.value)
            continue
        raw = a.value if isinstance(a.value, bytes) else \
            a.value.to_bytes(max(4, (a.value.bit_length() + 7) // 8), "big")
        if len(raw) > 0xFFFF:
            raise LocalError("attribute value too long")
        out += struct.pack("!HH", a.type, len(raw)) + raw
    return bytes(out)


def decode_attributes(r: Reader) -> tuple[Attribute, ...]:
    attrs: list[Attribute] = []
    while r.remaining:
        if len(attrs) >= _MAX_ITEMS:
            raise ParseError("too many data attributes")
        word = r.u16("attribute type")
        if word & 0x8000:
            attrs.append(Attribute(word & 0x7FFF, r.u16("attribute value")))
        else:
            attrs.append(Attribute(word, r.bytes(r.u16("attribute length"), "attribute value")))
    return tuple(attrs)


# --- payloads -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transform:
    """RFC 2408 §3.6."""

    number: int
    transform_id: int
    attributes: tuple[Attribute, ...]

    def attribute(self, kind: int) -> int | bytes | None:
        return next((a.value for a in self.attributes if a.type == kind), None)


@dataclass(frozen=True, slots=True)
class Proposal:
    """RFC 2408 §3.5."""

    number: int
    protocol: int
    spi: bytes
    transforms: tuple[Transform, ...]


@dataclass(frozen=True, slots=True)
class SaPayload:
    """RFC 2408 §3.4 with the IPsec DOI's situation (RFC 2407 §4.6.1)."""

    proposals: tuple[Proposal, ...]
    doi: int = DOI_IPSEC
    situation: int = 1


@dataclass(frozen=True, slots=True)
class KePayload:
    data: bytes  # RFC 2408 §3.7


@dataclass(frozen=True, slots=True)
class IdPayload:
    """RFC 2407 §4.6.2: ID type, protocol, port, identification data."""

    id_type: int
    data: bytes
    protocol: int = 0
    port: int = 0


@dataclass(frozen=True, slots=True)
class CertPayload:
    encoding: int  # RFC 2408 §3.9
    data: bytes


@dataclass(frozen=True, slots=True)
class CertReqPayload:
    encoding: int  # RFC 2408 §3.10
    data: bytes  # Certificate Authority: a DER distinguished name, or empty


@dataclass(frozen=True, slots=True)
class HashPayload:
    data: bytes  # RFC 2408 §3.11


@dataclass(frozen=True, slots=True)
class SigPayload:
    data: bytes  # RFC 2408 §3.12


@dataclass(frozen=True, slots=True)
class NoncePayload:
    data: bytes  # RFC 2408 §3.13


@dataclass(frozen=True, slots=True)
class NotifyPayload:
    """RFC 2408 §3.14."""

    notify_type: int
    protocol: int = 0
    spi: bytes = b""
    data: bytes = b""
    doi: int = DOI_IPSEC


@dataclass(frozen=True, slots=True)
class DeletePayload:
    """RFC 2408 §3.15: ``spis`` all of ``spi_size`` bytes."""

    protocol: int
    spi_size: int
    spis: tuple[bytes, ...]
    doi: int = DOI_IPSEC


@dataclass(frozen=True, slots=True)
class VendorIdPayload:
    data: bytes  # RFC 2408 §3.16


@dataclass(frozen=True, slots=True)
class NatDPayload:
    data: bytes  # RFC 3947 §3.2: HASH(CKY-I | CKY-R | IP | Port)


@dataclass(frozen=True, slots=True)
class NatOaPayload:
    """RFC 3947 §5.2: the original address (ID_IPV4_ADDR or ID_IPV6_ADDR)."""

    id_type: int
    data: bytes


@dataclass(frozen=True, slots=True)
class UnknownPayload:
    payload_type: int
    data: bytes


Payload: TypeAlias = (
    SaPayload | KePayload | IdPayload | CertPayload | CertReqPayload | HashPayload | SigPayload
    | NoncePayload | NotifyPayload | DeletePayload | VendorIdPayload | NatDPayload | NatOaPayload
    | UnknownPayload
)

_SIMPLE: dict[type, PayloadType] = {
    KePayload: PayloadType.KE, HashPayload: PayloadType.HASH, SigPayload: PayloadType.SIG,
    NoncePayload: PayloadType.NONCE, VendorIdPayload: PayloadType.VID,
    NatDPayload: PayloadType.NAT_D,
}


_SIMPLE_BY_TYPE: dict[int, type[KePayload | HashPayload | SigPayload | NoncePayload
                                 | VendorIdPayload | NatDPayload]] = {
    PayloadType.KE: KePayload, PayloadType.HASH: HashPayload, PayloadType.SIG: SigPayload,
    PayloadType.NONCE: NoncePayload, PayloadType.VID: VendorIdPayload,
    PayloadType.NAT_D: NatDPayload,
}


def payload_type(p: Payload) -> int:
    simple = _SIMPLE.get(type(p))
    if simple is not None:
        return int(simple)
    match p:
        case SaPayload():
            return PayloadType.SA
        case IdPayload():
            return PayloadType.ID
        case CertPayload():
            return PayloadType.CERT
        case CertReqPayload():
            return PayloadType.CR
        case NotifyPayload():
            return PayloadType.N
        case DeletePayload():
            return PayloadType.D
        case NatOaPayload():
            return PayloadType.NAT_OA
        case UnknownPayload():
            return p.payload_type
    raise LocalError(f"not a payload: {p!r}")


def _generic(next_payload: int, body: bytes) -> bytes:
    if len(body) + 4 > 0xFFFF:
        raise LocalError("payload too long")
    return _GENERIC.pack(next_payload, 0, len(body) + 4) + body


def encode_sa_body(sa: SaPayload) -> bytes:
    """The SA payload body (DOI, situation, proposals): SAi_b of RFC 2409 §5."""
    out = bytearray(struct.pack("!II", sa.doi, sa.situation))
    for i, p in enumerate(sa.proposals):
        transforms = bytearray()
        for j, t in enumerate(p.transforms):
            body = struct.pack("!BBH", t.number, t.transform_id, 0) + encode_attributes(t.attributes)
            transforms += _generic(PayloadType.T if j + 1 < len(p.transforms) else 0, body)
        head = struct.pack("!BBBB", p.number, p.protocol, len(p.spi), len(p.transforms))
        last = i + 1 == len(sa.proposals)
        out += _generic(0 if last else PayloadType.P, head + p.spi + bytes(transforms))
    return bytes(out)


def _body(p: Payload) -> bytes:
    match p:
        case SaPayload():
            return encode_sa_body(p)
        case IdPayload():
            return struct.pack("!BBH", p.id_type, p.protocol, p.port) + p.data
        case CertPayload() | CertReqPayload():
            return bytes((p.encoding,)) + p.data
        case NotifyPayload():
            return struct.pack("!IBBH", p.doi, p.protocol, len(p.spi), p.notify_type) \
                + p.spi + p.data
        case DeletePayload():
            if any(len(s) != p.spi_size for s in p.spis):
                raise LocalError("Delete: every SPI must have spi_size bytes")
            return struct.pack("!IBBH", p.doi, p.protocol, p.spi_size, len(p.spis)) \
                + b"".join(p.spis)
        case NatOaPayload():
            return bytes((p.id_type, 0, 0, 0)) + p.data
        case _:
            return p.data


def encode_chain(payloads: Sequence[Payload]) -> tuple[int, bytes]:
    """The payloads with their generic headers chained; returns the type of
    the first (for the header or the payload before) and the bytes."""
    out = bytearray()
    for i, p in enumerate(payloads):
        nxt = payload_type(payloads[i + 1]) if i + 1 < len(payloads) else 0
        out += _generic(nxt, _body(p))
    return (payload_type(payloads[0]) if payloads else 0), bytes(out)


def encode_message(header: Header, payloads: Sequence[Payload]) -> bytes:
    first, body = encode_chain(payloads)
    return encode_header(header, first, len(body)) + body


# --- decoding -------------------------------------------------------------------


def _decode_sa(r: Reader) -> SaPayload:
    doi, situation = r.u32("DOI"), r.u32("situation")
    proposals: list[Proposal] = []
    more = r.remaining > 0
    while more:
        if len(proposals) >= _MAX_ITEMS:
            raise ParseError("SA: too many proposals")
        nxt, _, length = r.u8("next"), r.u8("reserved"), r.u16("proposal length")
        if nxt not in (0, PayloadType.P) or length < 8:
            raise ParseError("SA: bad proposal header")
        pr = r.sub(length - 4, "proposal")
        number, protocol, spi_size, count = (pr.u8("number"), pr.u8("protocol"),
                                             pr.u8("SPI size"), pr.u8("transforms"))
        spi = pr.bytes(spi_size, "SPI")
        transforms: list[Transform] = []
        for k in range(count):
            tn, _, tlen = pr.u8("next"), pr.u8("reserved"), pr.u16("transform length")
            if tn != (PayloadType.T if k + 1 < count else 0) or tlen < 8:
                raise ParseError("SA: bad transform header")
            tr = pr.sub(tlen - 4, "transform")
            t_number, t_id = tr.u8("transform number"), tr.u8("transform ID")
            tr.u16("reserved")
            transforms.append(Transform(t_number, t_id, decode_attributes(tr)))
        pr.expect_end()
        proposals.append(Proposal(number, protocol, spi, tuple(transforms)))
        more = nxt == PayloadType.P
    r.expect_end()
    return SaPayload(tuple(proposals), doi, situation)


def _decode_body(kind: int, r: Reader) -> Payload:
    if kind == PayloadType.SA:
        return _decode_sa(r)
    if kind == PayloadType.ID:
        id_type, protocol, port = r.u8("ID type"), r.u8("protocol"), r.u16("port")
        return IdPayload(id_type, r.rest(), protocol, port)
    if kind in (PayloadType.CERT, PayloadType.CR):
        encoding = r.u8("encoding")
        if kind == PayloadType.CERT:
            return CertPayload(encoding, r.rest())
        return CertReqPayload(encoding, r.rest())
    if kind == PayloadType.N:
        doi, protocol, spi_size, ntype = r.u32("DOI"), r.u8("protocol"), r.u8("SPI size"), \
            r.u16("notify type")
        return NotifyPayload(ntype, protocol, r.bytes(spi_size, "SPI"), r.rest(), doi)
    if kind == PayloadType.D:
        doi, protocol, spi_size, count = r.u32("DOI"), r.u8("protocol"), r.u8("SPI size"), \
            r.u16("SPI count")
        if count > _MAX_ITEMS * 16:
            raise ParseError("Delete: too many SPIs")
        spis = tuple(r.bytes(spi_size, "SPI") for _ in range(count))
        r.expect_end()
        return DeletePayload(protocol, spi_size, spis, doi)
    if kind == PayloadType.NAT_OA:
        id_type = r.u8("ID type")
        r.bytes(3, "reserved")
        return NatOaPayload(id_type, r.rest())
    simple = _SIMPLE_BY_TYPE.get(kind)
    if simple is not None:
        return simple(r.rest())
    return UnknownPayload(kind, r.rest())


@dataclass(frozen=True, slots=True)
class RawPayload:
    """A decoded payload with its bytes on the wire (generic header
    included), which the quick-mode HASHes cover (RFC 2409 §5.5)."""

    payload: Payload
    raw: bytes


def decode_chain(first: int, data: bytes, *, padded: bool = False) -> tuple[RawPayload, ...]:
    """The payload chain starting with type ``first``.  ``padded``: bytes
    after the last payload are the encryption padding (RFC 2409 Appendix B)
    and are ignored; otherwise they are an error."""
    r = Reader(data, "ISAKMP payloads")
    out: list[RawPayload] = []
    kind = first
    while kind != PayloadType.NONE:
        if len(out) >= _MAX_ITEMS:
            raise ParseError("too many payloads")
        if kind in (PayloadType.P, PayloadType.T):
            raise ParseError("proposal/transform payload outside an SA")
        start = r.position
        nxt, _, length = r.u8("next payload"), r.u8("reserved"), r.u16("payload length")
        if length < 4:
            raise ParseError(f"payload {kind}: length {length} < 4")
        body = r.sub(length - 4, f"payload {kind}")
        payload = _decode_body(kind, body)
        out.append(RawPayload(payload, data[start : start + length]))
        kind = nxt
    if not padded:
        r.expect_end()
    return tuple(out)


T = TypeVar("T")


def one_payload(payloads: Sequence[RawPayload], kind: type[T]) -> T:
    """The first payload of ``kind``; PAYLOAD-MALFORMED when there is none."""
    for p in payloads:
        if isinstance(p.payload, kind):
            return p.payload
    raise RemoteError(f"missing {kind.__name__}", notify=16)  # PAYLOAD-MALFORMED


def maybe_payload(payloads: Sequence[RawPayload], kind: type[T]) -> T | None:
    return next((p.payload for p in payloads if isinstance(p.payload, kind)), None)


def decode_message(data: bytes) -> tuple[Header, tuple[RawPayload, ...]]:
    """A plaintext message (no E flag)."""
    header = decode_header(data)
    return header, decode_chain(header.next_payload, data[HEADER_BYTES:])
