"""Informational exchanges (RFC 2409 §5.7): Delete and Notify under
``HASH(1) = prf(SKEYID_a, M-ID | N/D)``, and Dead Peer Detection
(RFC 3706 §5: R-U-THERE / R-U-THERE-ACK with a sequence number)."""

from __future__ import annotations

from collections.abc import Sequence

from secpath.errors import ParseError, RemoteError
from secpath.ike.events import ChildSaFailed
from secpath.ike.v1.codec import (
    DeletePayload,
    Header,
    NotifyPayload,
    Payload,
    RawPayload,
    decode_chain,
)
from secpath.ike.v1.constants import ExchangeType, Flag, NotifyType, ProtocolId
from secpath.ike.v1.sa import Child, Phase1Sa, State

__all__ = ["handle_info", "send_delete_esp", "send_delete_isakmp", "send_dpd", "send_info"]

INFO = ExchangeType.INFORMATIONAL


def send_info(sa: Phase1Sa, payloads: Sequence[Payload]) -> None:
    if sa.keys is None or sa.cipher is None:
        return
    mid = sa.new_message_id()
    data, _ = sa.seal_hashed(INFO, mid, payloads, sa.phase2_iv(mid))
    sa.send_once(data)


def send_delete_esp(sa: Phase1Sa, children: Sequence[Child], now: float) -> None:
    """RFC 2408 §3.15: the SPIs are those the peer sends to (our inbound)."""
    spis = tuple(c.inbound_spi.to_bytes(4, "big") for c in children)
    if spis:
        send_info(sa, [DeletePayload(ProtocolId.IPSEC_ESP, 4, spis)])


def send_delete_isakmp(sa: Phase1Sa) -> None:
    send_info(sa, [DeletePayload(ProtocolId.ISAKMP, 16, (sa.cky_i + sa.cky_r,))])


def send_dpd(sa: Phase1Sa, now: float) -> None:
    """RFC 3706 §5.4: R-U-THERE with the next sequence number."""
    if sa.dpd_outstanding is None:
        sa.dpd_seq = (sa.dpd_seq + 1) & 0xFFFFFFFF or 1
        sa.dpd_outstanding = sa.dpd_seq
        sa.dpd_tries = 0
    sa.dpd_tries += 1
    sa.dpd_sent_at = now
    send_info(sa, [NotifyPayload(NotifyType.R_U_THERE, ProtocolId.ISAKMP, sa.cky_i + sa.cky_r,
                                 sa.dpd_outstanding.to_bytes(4, "big"))])


def handle_info(sa: Phase1Sa, data: bytes, header: Header, now: float) -> None:
    from secpath.ike.v1.main_mode import fail

    if not header.flags & Flag.ENCRYPTION:
        # before the keys exist the peer can only say why it gives up (RFC 2408 §5.5)
        if sa.state is State.ESTABLISHED:
            return
        try:
            payloads = decode_chain(header.next_payload, data[28:])
        except ParseError:
            return
        for p in payloads:
            if isinstance(p.payload, NotifyPayload) and p.payload.notify_type < 8192:
                kind = p.payload.notify_type
                name = NotifyType(kind).name if kind in NotifyType.__members__.values() else kind
                fail(sa, f"the peer refused main mode: {name}", kind)
                return
        return
    if sa.keys is None:
        return
    mid = header.message_id
    payloads, _ = sa.open(data, header, sa.phase2_iv(mid))
    sa.check_hash(payloads, mid)
    _act(sa, payloads, now)


def _act(sa: Phase1Sa, payloads: Sequence[RawPayload], now: float) -> None:
    for p in payloads:
        x = p.payload
        if isinstance(x, DeletePayload):
            if x.protocol == ProtocolId.ISAKMP:
                if any(spi == sa.cky_i + sa.cky_r for spi in x.spis):
                    # RFC 2409 §5: IPsec SAs outlive their ISAKMP SA; a newer
                    # ISAKMP SA with the peer takes them over
                    if not sa.ctx.adopt(sa):
                        sa.close("deleted by the peer")
                    return
            elif x.protocol == ProtocolId.IPSEC_ESP and x.spi_size == 4:
                gone = {int.from_bytes(s, "big") for s in x.spis}
                for child in [c for c in sa.children.values() if c.outbound_spi in gone]:
                    sa.drop_child(child, "deleted by the peer")
        elif isinstance(x, NotifyPayload):
            if x.notify_type == NotifyType.R_U_THERE and len(x.data) == 4:
                send_info(sa, [NotifyPayload(NotifyType.R_U_THERE_ACK, ProtocolId.ISAKMP,
                                             sa.cky_i + sa.cky_r, x.data)])
            elif x.notify_type == NotifyType.R_U_THERE_ACK and len(x.data) == 4:
                if int.from_bytes(x.data, "big") == sa.dpd_outstanding:
                    sa.dpd_outstanding = None
            elif x.notify_type < 8192:
                _quick_refused(sa, x.notify_type)


def _quick_refused(sa: Phase1Sa, kind: int) -> None:
    """An error notify while our quick modes wait: they failed (RFC 2408 §3.14.1)."""
    name = NotifyType(kind).name if kind in NotifyType.__members__.values() else str(kind)
    for mid, qm in list(sa.quick.items()):
        if qm.initiator and qm.finished is None:
            del sa.quick[mid]
            reason = RemoteError(f"the peer refused quick mode: {name}", notify=kind)
            sa.ctx.emit(ChildSaFailed(sa.handle, sa.config.name, str(reason), kind,
                                      tuple(s.name for s in qm.suites)))
