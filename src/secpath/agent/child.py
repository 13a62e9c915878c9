"""Turning a negotiated Child SA (an IKE engine event) into the two ESP SAs
the agent protects traffic with."""

from __future__ import annotations

from typing import Literal

from secpath.agent.types import ChildInfo
from secpath.errors import LocalError
from secpath.esp import Lifetime, SecurityAssociation
from secpath.ike.events import ChildSaInstalled, EspSaParameters, IkeSaEstablished
from secpath.policy.model import Rule

__all__ = ["build_child", "byte_counters", "esp_lifetime"]


def esp_lifetime(rule: Rule, transform: str, negotiated_kb: int | None = None) -> Lifetime:
    """The byte lifetime the peers negotiated (IKEv1: the responder's shorter
    one), else that of the security method that was chosen (RFC 4301
    §4.4.2.1): soft at 90 %, when the rekey starts; hard at 100 %."""
    methods = rule.filter_action.security_methods
    sm = next((s for s in methods if s.proposal == transform), methods[0])
    hard = (negotiated_kb or sm.lifetime_kb) * 1024
    return Lifetime(soft_bytes=hard * 9 // 10, hard_bytes=hard)


def byte_counters(way: Literal["sent", "received"], p: EspSaParameters) -> tuple[str, ...]:
    """The quick-mode byte counters of the guide a packet of this SA adds to
    (confidential unless the cipher is null, authenticated, tunnel or transport)."""
    return (
        *(() if p.transform.startswith("null") else (f"confidential_bytes_{way}",)),
        f"authenticated_bytes_{way}",
        f"bytes_{way}_in_tunnels" if p.mode == "tunnel" else f"transport_bytes_{way}",
    )


def _sa(p: EspSaParameters, lifetime: Lifetime) -> SecurityAssociation:
    return SecurityAssociation(
        spi=p.spi,
        transform=p.transform,
        encryption_key=p.encryption_key,
        integrity_key=p.integrity_key if len(p.integrity_key) else None,
        mode=p.mode,
        tunnel=p.tunnel,
        udp_encapsulation=p.udp_encapsulation,
        esn=p.esn,
        replay_window=p.replay_window,
        lifetime=lifetime,
    )


def build_child(rule: Rule, event: ChildSaInstalled, ike: IkeSaEstablished | None, now: float) -> ChildInfo:
    """Both SAs of the pair; raises ``LocalError`` for parameters ESP refuses.
    The peer is the IKE SA's (where NAT put it), else the tunnel's far end,
    else the remote selector's address."""
    lifetime = esp_lifetime(rule, event.outbound.transform, event.outbound.lifetime_kb)
    inbound = _sa(event.inbound, lifetime)
    try:
        outbound = _sa(event.outbound, lifetime)
    except LocalError as exc:
        raise LocalError(f"outbound SA: {exc}") from None
    if ike is not None:
        peer = ike.peer[0]
    elif event.outbound.tunnel:
        peer = event.outbound.tunnel[1]
    else:
        peer = str(event.remote_ts[0].start) if event.remote_ts else ""
    return ChildInfo(
        rule=rule.name,
        ike_sa=event.ike_sa,
        handle=event.child_sa,
        peer=peer,
        inbound=inbound,
        outbound=outbound,
        parameters=event.outbound,
        inbound_parameters=event.inbound,
        local_ts=event.local_ts,
        remote_ts=event.remote_ts,
        installed_at=now,
        peer_port=event.outbound.udp_encapsulation[1] if event.outbound.udp_encapsulation else 0,
        sent_keys=byte_counters("sent", event.outbound),
        received_keys=byte_counters("received", event.outbound),
    )
