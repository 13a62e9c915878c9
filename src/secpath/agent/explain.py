"""Failures explained where they happen, for the negotiation log and
``secpath status``: which proposals each side offered and what they lacked
in common, and what an IKE message is (for the traced log levels)."""

from __future__ import annotations

from collections.abc import Sequence

from secpath.errors import ParseError
from secpath.ike.constants import ExchangeType
from secpath.ike.message import decode_header, decode_message
from secpath.ike.v1 import is_ikev1
from secpath.ike.v1.trace import describe_message as describe_ikev1

__all__ = ["describe_message", "explain_failure"]

_DH = ("modp", "ecp", "curve", "x25519")


def _parts(proposal: str) -> tuple[str, set[str]]:
    """(encryption, {every other token}) of a strongSwan-spelled proposal."""
    tokens = proposal.split("-")
    return tokens[0], set(tokens[1:])


def explain_failure(reason: str, local: Sequence[str], remote: Sequence[str]) -> str:
    """``reason`` with both sides' proposals and the component that had no
    match, e.g. ``NO_PROPOSAL_CHOSEN: we offered …; peer offered … — no
    common DH group``."""
    if not local and not remote:
        return reason
    ours_text = ", ".join(local) or "(nothing)"
    theirs_text = ", ".join(remote) or "(unknown)"
    text = f"{reason}: we offered {ours_text}; peer offered {theirs_text}"
    if local and remote:
        ours = [_parts(p) for p in local]
        theirs = [_parts(p) for p in remote]
        if not {e for e, _ in ours} & {e for e, _ in theirs}:
            return text + " — no common encryption"
        groups_ours = {t for _, rest in ours for t in rest if t.startswith(_DH)}
        groups_theirs = {t for _, rest in theirs for t in rest if t.startswith(_DH)}
        if groups_ours and groups_theirs and not groups_ours & groups_theirs:
            return text + " — no common DH group"
        rest_ours = {t for _, rest in ours for t in rest if not t.startswith(_DH)}
        rest_theirs = {t for _, rest in theirs for t in rest if not t.startswith(_DH)}
        if rest_ours and rest_theirs and not rest_ours & rest_theirs:
            return text + " — no common integrity/PRF"
    return text


def describe_message(data: bytes, level: int) -> tuple[str, int, str, str] | None:
    """(exchange, message ID, SA SPIs, detail) of an IKE datagram (without the
    non-ESP marker), or ``None`` if it is not one."""
    if is_ikev1(data):
        return describe_ikev1(data, level)
    try:
        header = decode_header(data)
    except ParseError:
        return None
    try:
        exchange = ExchangeType(header.exchange_type).name
    except ValueError:
        exchange = f"exchange {header.exchange_type}"
    spis = f"{header.spi_i.hex()}_i {header.spi_r.hex()}_r"
    detail = f"{'response' if header.response else 'request'}, {len(data)} bytes"
    if level >= 3 and header.exchange_type == ExchangeType.IKE_SA_INIT:
        try:
            message = decode_message(data)
        except ParseError:
            return exchange, header.message_id, spis, detail + ", malformed"
        names = [type(p).__name__.removesuffix("Payload") for p in message.payloads]
        detail += " [" + " ".join(names) + "]"
    elif level >= 3:
        detail += " [encrypted]"
    return exchange, header.message_id, spis, detail
