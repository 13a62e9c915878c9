"""IKEv2 message fragmentation (RFC 7383).

:func:`encode_fragments` splits the inner payloads of an encrypted message
into Encrypted Fragment (SKF) payloads, each sealed on its own so that every
datagram fits ``max_datagram`` bytes (RFC 7383 §2.5).
:class:`FragmentReassembler` collects decoded fragments (from
:func:`secpath.ike.message.decode_message`) and returns the whole message,
bounded in fragments and bytes (RFC 7383 §2.6, §5).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from secpath.crypto.sk import SkCipher
from secpath.errors import LocalError, ParseError
from secpath.ike.constants import IKE_HEADER_BYTES, ExchangeType, PayloadType
from secpath.ike.message import (
    Fragment,
    Message,
    decode_payload_chain,
    encode_payload_chain,
    seal_payloads,
)

__all__ = ["FragmentReassembler", "encode_fragments"]

Rng = Callable[[int], bytes]

_SKF_HEADER_BYTES = 8  # generic header + Fragment Number + Total Fragments
_MAX_TOTAL = 0xFFFF


def _max_chunk(sk: SkCipher, max_datagram: int) -> int:
    room = max_datagram - IKE_HEADER_BYTES - _SKF_HEADER_BYTES
    chunk = room - sk.iv_bytes - sk.icv_bytes - 1  # 1: Pad Length
    # shrink until the padded chunk fits (block ciphers pad up to a block)
    while chunk > 0 and sk.sealed_length(chunk) > room:
        chunk -= 1
    return chunk


def encode_fragments(
    message: Message, sk: SkCipher, rng: Rng, max_datagram: int
) -> list[bytes]:
    """The datagrams carrying ``message`` (encrypted) as SKF fragments, each at
    most ``max_datagram`` bytes (RFC 7383 §2.5: every fragment has the same
    header, fragment 1 names the first inner payload, the others 0)."""
    if not message.encrypted or message.fragment is not None:
        raise LocalError("only an encrypted, unfragmented message can be fragmented")
    if message.header.exchange_type == ExchangeType.IKE_SA_INIT:
        raise LocalError("IKE_SA_INIT is never fragmented (RFC 7383 §2.5)")
    first, inner = encode_payload_chain(message.payloads)
    chunk = _max_chunk(sk, max_datagram)
    if chunk <= 0:
        raise LocalError(f"max_datagram {max_datagram} leaves no room for a fragment")
    pieces = [inner[i : i + chunk] for i in range(0, len(inner), chunk)] or [b""]
    if len(pieces) > _MAX_TOTAL:
        raise LocalError("message needs more than 65535 fragments")
    out = []
    for number, piece in enumerate(pieces, start=1):
        extra = struct.pack("!HH", number, len(pieces))
        out.append(
            seal_payloads(
                message.header, PayloadType.SKF, first if number == 1 else 0, piece,
                sk=sk, rng=rng, extra=extra,
            )
        )
    return out


@dataclass(slots=True)
class _Pending:
    total: int
    pieces: dict[int, Fragment] = field(default_factory=dict)
    size: int = 0


class FragmentReassembler:
    """Reassembles SKF fragments per (message ID, response flag).

    ``add`` returns the whole :class:`Message` once every fragment arrived,
    else ``None``.  Bounds (RFC 7383 §5): at most ``max_fragments`` fragments
    and ``max_bytes`` of decrypted data per message, at most ``max_messages``
    messages in progress (the oldest is dropped).  A fragment with a larger
    Total Fragments than the stored ones restarts the collection; one with a
    smaller total is ignored (RFC 7383 §2.6.1).
    """

    __slots__ = ("_pending", "max_bytes", "max_fragments", "max_messages")

    def __init__(
        self, max_fragments: int = 64, max_bytes: int = 65536, max_messages: int = 4
    ) -> None:
        self.max_fragments = max_fragments
        self.max_bytes = max_bytes
        self.max_messages = max_messages
        self._pending: dict[tuple[int, bool], _Pending] = {}

    def clear(self) -> None:
        self._pending.clear()

    @property
    def in_progress(self) -> int:
        """Messages with fragments received and others still missing."""
        return len(self._pending)

    def add(self, message: Message) -> Message | None:
        """Take one decoded SKF message.  ParseError if it breaks a bound or
        the reassembled payloads do not parse (the partial message is dropped)."""
        frag = message.fragment
        if frag is None:
            raise LocalError("FragmentReassembler.add takes SKF messages only")
        if frag.total > self.max_fragments:
            raise ParseError(f"{frag.total} fragments exceed the limit of {self.max_fragments}")
        key = (message.header.message_id, message.header.response)
        pending = self._pending.get(key)
        if pending is None or frag.total > pending.total:
            pending = _Pending(frag.total)
            self._pending.pop(key, None)
            self._pending[key] = pending
            while len(self._pending) > self.max_messages:
                del self._pending[next(iter(self._pending))]
        elif frag.total < pending.total or frag.number in pending.pieces:
            return None
        if pending.size + len(frag.data) > self.max_bytes:
            del self._pending[key]
            raise ParseError(f"fragmented message exceeds {self.max_bytes} bytes")
        pending.pieces[frag.number] = frag
        pending.size += len(frag.data)
        if len(pending.pieces) < pending.total:
            return None
        del self._pending[key]
        first = pending.pieces[1].first_payload
        data = b"".join(pending.pieces[n].data for n in range(1, pending.total + 1))
        payloads = decode_payload_chain(first, data)
        return Message(message.header, message.payloads + payloads, encrypted=True)
