"""One-line descriptions of ISAKMP datagrams for the negotiation log (the
IKEv1 counterpart of the agent's IKEv2 ``describe_message``)."""

from __future__ import annotations

from secpath.errors import ParseError
from secpath.ike.v1.codec import HEADER_BYTES, decode_chain, decode_header
from secpath.ike.v1.constants import ExchangeType, Flag
from secpath.ike.v1.fragments import FRAGMENT_PAYLOAD, decode_fragment

__all__ = ["describe_message"]

_NAMES = {ExchangeType.IDENTITY_PROTECTION: "MAIN_MODE", ExchangeType.QUICK_MODE: "QUICK_MODE",
          ExchangeType.INFORMATIONAL: "INFORMATIONAL_V1", ExchangeType.AGGRESSIVE: "AGGRESSIVE"}


def describe_message(data: bytes, level: int) -> tuple[str, int, str, str] | None:
    """(exchange, message ID, cookies, detail), or ``None`` if it is not ISAKMP."""
    try:
        header = decode_header(data)
    except ParseError:
        return None
    exchange = _NAMES.get(ExchangeType(header.exchange_type), "") if header.exchange_type in _NAMES \
        else f"exchange {header.exchange_type}"
    cookies = f"{header.spi_i.hex()}_i {header.spi_r.hex()}_r"
    detail = f"{len(data)} bytes"
    if level >= 3:
        if header.next_payload == FRAGMENT_PAYLOAD:
            try:
                _, frag = decode_fragment(data)
            except ParseError:
                return exchange, header.message_id, cookies, detail + ", malformed"
            last = ", last" if frag.last else ""
            detail += f" [fragment {frag.number} of message {frag.fragment_id}{last}]"
        elif header.flags & Flag.ENCRYPTION:
            detail += " [encrypted]"
        else:
            try:
                payloads = decode_chain(header.next_payload, data[HEADER_BYTES:])
            except ParseError:
                return exchange, header.message_id, cookies, detail + ", malformed"
            names = [type(p.payload).__name__.removesuffix("Payload") for p in payloads]
            detail += " [" + " ".join(names) + "]"
    return exchange, header.message_id, cookies, detail
