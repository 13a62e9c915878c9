"""IKEv1 fragmentation, the de-facto format Windows, Cisco, strongSwan,
racoon and libreswan share (no RFC; RFC 7383 is IKEv2's).

Support is announced with a vendor ID, MD5("FRAGMENTATION") followed by
four bytes of capability flags (0x80000000: main mode; Windows sends the 16
bytes alone).  A large message is cut into datagrams, each the original
ISAKMP header (next payload 132, the encryption flag cleared, its own
length) and one fragment payload::

    next payload (0) | reserved | payload length (2) |
    fragment ID (2) | fragment number (1, from 1) | flags (1, LAST = 1) |
    a slice of the whole original message (header and encrypted body)

The receiver joins the slices in number order once it holds 1..LAST and
handles the result as if it had come whole.  Reassembly is bounded: at most
``max_fragments`` fragments and ``max_bytes`` per message, one message per
SA at a time, dropped after ``timeout`` seconds.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

from secpath.errors import ParseError
from secpath.ike.v1.codec import HEADER_BYTES, Header, decode_header, encode_header
from secpath.ike.v1.constants import Flag

__all__ = [
    "FRAGMENTATION_VENDOR_ID",
    "FRAGMENT_PAYLOAD",
    "LAST_FRAGMENT",
    "Fragment",
    "Reassembly",
    "decode_fragment",
    "encode_fragments",
    "is_fragmentation_vendor_id",
]

FRAGMENT_PAYLOAD = 132  # ISAKMP_NEXT_FRAG / ISAKMP_NPTYPE_FRAG
LAST_FRAGMENT = 0x01
FRAGMENT_HEADER_BYTES = 8
_FRAG = struct.Struct("!BBHHBB")
_VID_HASH = hashlib.md5(b"FRAGMENTATION", usedforsecurity=False).digest()  # a name, not a MAC
FRAGMENTATION_VENDOR_ID = _VID_HASH + (0x80000000).to_bytes(4, "big")  # capability: main mode
MAX_FRAGMENTS = 16  # what libreswan accepts; strongSwan and Windows send far fewer


def is_fragmentation_vendor_id(data: bytes) -> bool:
    """The fragmentation vendor ID, with or without its capability flags."""
    return data[:16] == _VID_HASH and len(data) in (16, 20)


@dataclass(frozen=True, slots=True)
class Fragment:
    fragment_id: int
    number: int  # from 1
    last: bool
    data: bytes


def encode_fragments(message: bytes, size: int, fragment_id: int) -> list[bytes]:
    """``message`` (a whole ISAKMP message) as fragment datagrams of at most
    ``size`` bytes each — more if it would need over :data:`MAX_FRAGMENTS`."""
    header = decode_header(message)
    room = max(size - HEADER_BYTES - FRAGMENT_HEADER_BYTES, 1)
    room = max(room, -(-len(message) // MAX_FRAGMENTS))
    pieces = [message[i:i + room] for i in range(0, len(message), room)]
    out: list[bytes] = []
    for number, piece in enumerate(pieces, start=1):
        flags = LAST_FRAGMENT if number == len(pieces) else 0
        body = _FRAG.pack(0, 0, FRAGMENT_HEADER_BYTES + len(piece), fragment_id & 0xFFFF, number,
                          flags) + piece
        h = Header(header.spi_i, header.spi_r, header.exchange_type,
                   header.flags & ~Flag.ENCRYPTION, header.message_id, header.version)
        out.append(encode_header(h, FRAGMENT_PAYLOAD, len(body)) + body)
    return out


def decode_fragment(data: bytes) -> tuple[Header, Fragment]:
    """One fragment datagram; ParseError for anything else."""
    header = decode_header(data)
    if header.next_payload != FRAGMENT_PAYLOAD:
        raise ParseError("not an IKEv1 fragment")
    body = data[HEADER_BYTES:]
    if len(body) < FRAGMENT_HEADER_BYTES:
        raise ParseError("IKEv1 fragment: truncated fragment header")
    next_payload, _, length, fragment_id, number, flags = _FRAG.unpack_from(body)
    if next_payload != 0:
        raise ParseError("IKEv1 fragment: the fragment must be the only payload")
    if length != len(body):
        raise ParseError(f"IKEv1 fragment: payload length {length}, {len(body)} bytes present")
    if not 1 <= number <= MAX_FRAGMENTS:
        raise ParseError(f"IKEv1 fragment: number {number} outside 1..{MAX_FRAGMENTS}")
    if length == FRAGMENT_HEADER_BYTES:
        raise ParseError("IKEv1 fragment: empty")
    return header, Fragment(fragment_id, number, bool(flags & LAST_FRAGMENT),
                            body[FRAGMENT_HEADER_BYTES:])


@dataclass
class Reassembly:
    """The fragments of one message at a time (a new fragment ID restarts it).

    ``add`` returns the whole message once fragments 1..LAST are all held,
    else ``None``; ParseError when a bound is broken (the partial message is
    dropped)."""

    max_fragments: int = MAX_FRAGMENTS
    max_bytes: int = 65536
    timeout: float = 30.0
    fragment_id: int | None = None
    started: float = 0.0
    total: int | None = None
    pieces: dict[int, bytes] = field(default_factory=dict)
    size: int = 0

    @property
    def in_progress(self) -> bool:
        return self.fragment_id is not None

    @property
    def deadline(self) -> float:
        """When the message in progress is dropped (infinity if none)."""
        return self.started + self.timeout if self.fragment_id is not None else float("inf")

    def expire(self, now: float) -> None:
        if now >= self.deadline:
            self.clear()

    def clear(self) -> None:
        self.fragment_id, self.total, self.size = None, None, 0
        self.pieces = {}

    def add(self, frag: Fragment, now: float) -> bytes | None:
        self.expire(now)
        if frag.number > self.max_fragments:
            self.clear()
            raise ParseError(f"IKEv1 fragment {frag.number} exceeds the limit of {self.max_fragments}")
        if self.fragment_id != frag.fragment_id:
            self.clear()
            self.fragment_id, self.started = frag.fragment_id, now
        if frag.number in self.pieces:
            return None  # a retransmission
        if self.total is not None and (frag.number > self.total or frag.last):
            self.clear()
            raise ParseError("IKEv1 fragment: a second last fragment or one past it")
        if frag.last and any(n > frag.number for n in self.pieces):
            self.clear()
            raise ParseError("IKEv1 fragment: fragments past the last one")
        if self.size + len(frag.data) > self.max_bytes:
            self.clear()
            raise ParseError(f"IKEv1 fragmented message exceeds {self.max_bytes} bytes")
        self.pieces[frag.number] = frag.data
        self.size += len(frag.data)
        if frag.last:
            self.total = frag.number
        if self.total is None or len(self.pieces) < self.total:
            return None
        message = b"".join(self.pieces[n] for n in range(1, self.total + 1))
        self.clear()
        return message
