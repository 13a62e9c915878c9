"""INFORMATIONAL (RFC 7296 §1.4): Delete of Child SAs and of the IKE SA,
liveness checks (§2.4), error notifies (INVALID_SPI both ways, §1.5)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from secpath.ike.constants import ExchangeType, NotifyType, ProtocolId
from secpath.ike.message import Header, Message
from secpath.ike.payloads import DeletePayload, NotifyPayload, Payload
from secpath.ike.sa import ChildSa, IkeSa, Request
from secpath.ike.state import State

__all__ = [
    "drop_invalid_spi",
    "expire_ike",
    "info_request_step",
    "request_delete_child",
    "request_delete_ike",
    "request_delete_spis",
    "request_dpd",
    "request_invalid_spi",
]


def request_dpd(sa: IkeSa, now: float) -> None:
    """An empty INFORMATIONAL request: the peer is alive if it answers (§2.4)."""
    if any(r.kind == "dpd" for r in sa.queue):
        return

    def on_response(message: Message, now: float) -> None:
        return  # receiving it (any authenticated response) is the proof of life

    sa.request(Request(ExchangeType.INFORMATIONAL, "dpd", list, on_response), now)


def request_delete_child(sa: IkeSa, child: ChildSa, now: float) -> None:
    """Delete a Child SA pair: we name our inbound SPI (RFC 7296 §1.4.1)."""
    if child.deleting:
        return
    child.deleting = True
    child.soft_at = float("inf")

    def build() -> list[Payload]:
        return [DeletePayload(ProtocolId.ESP, (child.inbound_spi.to_bytes(4, "big"),))]

    def on_response(message: Message, now: float) -> None:
        sa.drop_child(child, "deleted")

    sa.request(Request(ExchangeType.INFORMATIONAL, "delete-child", build, on_response), now)


def request_delete_spis(sa: IkeSa, spis: Sequence[bytes], now: float) -> None:
    """Delete ESP SAs the peer created for us that we refuse (no local state)."""
    def build() -> list[Payload]:
        return [DeletePayload(ProtocolId.ESP, tuple(spis))]

    def on_response(message: Message, now: float) -> None:
        return

    sa.request(Request(ExchangeType.INFORMATIONAL, "delete-child", build, on_response), now)


def request_invalid_spi(sa: IkeSa, spi: int, now: float) -> None:
    """An ESP packet from this peer named an SPI we do not know (RFC 7296
    §1.5): INVALID_SPI with that SPI as the notification data (§3.10.1).  The
    SPI field stays empty, so the Protocol ID is zero (§3.10)."""
    data = spi.to_bytes(4, "big")

    def build() -> list[Payload]:
        return [NotifyPayload(NotifyType.INVALID_SPI, data)]

    def on_response(message: Message, now: float) -> None:
        return

    sa.request(Request(ExchangeType.INFORMATIONAL, "invalid-spi", build, on_response), now)


def drop_invalid_spi(sas: Iterable[IkeSa], spi: int, now: float) -> bool:
    """The peer has no inbound SA for our outbound ``spi`` (its INVALID_SPI,
    RFC 7296 §1.5): the Child SA sending on it is dead.  Drop it
    (ChildSaDeleted) and Delete our inbound half, which the peer may still
    send on (§1.4.1).  ``sas`` are the IKE SAs with that peer, the one the
    notification came on first.  True if a Child SA was dropped."""
    for sa in sas:
        child = next((c for c in sa.children.values() if c.outbound_spi == spi), None)
        if child is None:
            continue
        sa.drop_child(child, f"peer reports INVALID_SPI for {spi:08x}")
        if sa.state is State.ESTABLISHED:
            request_delete_spis(sa, [child.inbound_spi.to_bytes(4, "big")], now)
        return True
    return False


def request_delete_ike(sa: IkeSa, now: float, reason: str = "deleted") -> None:
    """Delete the IKE SA and, with it, its Child SAs (RFC 7296 §1.4.1)."""
    if sa.state in (State.DELETING, State.CLOSED) or any(
        r.kind == "delete-ike" for r in sa.queue
    ):
        return
    silent = sa.state is State.REKEYED

    def build() -> list[Payload]:
        if sa.state is not State.REKEYED:
            sa.state = State.DELETING
        return [DeletePayload(ProtocolId.IKE)]

    def on_response(message: Message, now: float) -> None:
        sa.close(reason, emit=not silent)

    def on_timeout() -> None:
        sa.close(reason, emit=not silent)

    # A Delete goes before anything else still queued (§1.4.1)
    sa.queue.insert(0, Request(ExchangeType.INFORMATIONAL, "delete-ike", build, on_response,
                               on_timeout))
    sa.pump(now)


def expire_ike(sa: IkeSa, reason: str) -> None:
    """Hard lifetime (RFC 7296 §2.8): the SA ends now.  One Delete goes out
    as a courtesy, without waiting for (or retransmitting) it."""
    if sa.state is State.ESTABLISHED and sa.sk_out is not None:
        # past an unanswered request, the peer (if it got that one) expects the next ID
        message_id = sa.next_request_id + (1 if sa.outstanding is not None else 0)
        header = Header(sa.spi_i, sa.spi_r, ExchangeType.INFORMATIONAL, message_id,
                        initiator=sa.initiator, response=False)
        sa.transmit(*sa.encode(header, [DeletePayload(ProtocolId.IKE)]))
    sa.close(reason)


def info_request_step(sa: IkeSa, message: Message, now: float) -> None:
    header = message.header
    answer: list[Payload] = []
    for d in message.all(DeletePayload):
        if d.protocol_id == ProtocolId.IKE:
            sa.respond(header, [])
            if sa.peer_rekey is not None:
                # RFC 7296 §2.8.2: the peer's rekey won while ours was out
                from secpath.ike.exchange_rekey import adopt

                adopt(sa, sa.peer_rekey)
            sa.close("deleted by peer", emit=sa.state is not State.REKEYED)
            return
        if d.protocol_id != ProtocolId.ESP:
            continue
        ours: list[bytes] = []
        for raw in d.spis:
            spi = int.from_bytes(raw, "big")
            child = next((c for c in sa.children.values() if c.outbound_spi == spi), None)
            if child is None:
                continue
            if not child.deleting:  # §1.4.1: simultaneous deletes are not repeated
                ours.append(child.inbound_spi.to_bytes(4, "big"))
            sa.drop_child(child, "deleted by peer")
        if ours:
            answer.append(DeletePayload(ProtocolId.ESP, tuple(ours)))
    for n in message.all(NotifyPayload):
        if n.notify_type == NotifyType.AUTHENTICATION_FAILED:
            sa.respond(header, [])
            sa.fail("peer reports AUTHENTICATION_FAILED", n.notify_type)
            return
        if n.notify_type == NotifyType.INVALID_SPI and len(n.data) == 4:
            # RFC 7296 §3.10: the Protocol ID is ignored when the SPI field is empty
            sa.ctx.invalid_spi_reported(sa, int.from_bytes(n.data, "big"), now)
    sa.respond(header, answer)


def unhandled_response_step(sa: IkeSa, message: Message, now: float) -> None:
    """A CREATE_CHILD_SA or INFORMATIONAL response is handled by its
    request's ``on_response``; one without a request object is dropped."""
    return
