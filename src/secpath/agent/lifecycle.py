"""What the policy agent does with the IKE engines' events (SAs up,
rekeyed, down, failed), duplicate IKE SAs, and the monitor's gauges: the
control half of :class:`~secpath.agent.agent.PolicyAgent`, apart from its
data path."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from secpath.agent.child import build_child
from secpath.agent.explain import explain_failure
from secpath.agent.methods import auth_note, method_failed, next_method, round_reason
from secpath.agent.types import ChildInfo
from secpath.errors import LocalError
from secpath.ike.constants import NotifyType
from secpath.ike.events import (
    ChildSaDeleted,
    ChildSaFailed,
    ChildSaInstalled,
    ChildSaRekeyed,
    Event,
    IkeSaDeleted,
    IkeSaEstablished,
    IkeSaFailed,
    IkeSaRekeyed,
)

if TYPE_CHECKING:
    from secpath.agent.agent import PolicyAgent

__all__ = [
    "drop_duplicate",
    "forget_closed",
    "initiator_of",
    "install_child",
    "on_engine_event",
    "remove_child",
    "report_invalid_spi",
    "update_gauges",
]


def on_engine_event(agent: PolicyAgent, event: Event, now: float) -> None:
    """Count, install, remove and explain what an IKE engine reports."""
    if isinstance(event, IkeSaEstablished):
        agent.ike_sas[event.ike_sa] = event
        if event.nat_local and agent.keepalive_interval > 0:
            agent._keepalive_at.setdefault(event.peer, now + agent.keepalive_interval)
        nat = (
            "NAT detected: " + ("local " if event.nat_local else "") + ("remote" if event.nat_remote else "")
        )
        agent._emit(
            "ike-up",
            None,
            event.peer[0],
            f"IKE SA {event.proposal} {event.local_id} <-> {event.remote_id}"
            + auth_note(agent, event)
            + (f"; {nat.strip()}" if event.nat_local or event.nat_remote else ""),
            event,
        )
    elif isinstance(event, IkeSaRekeyed):
        old = agent.ike_sas.pop(event.old_ike_sa, None)
        if old is not None:
            agent.ike_sas[event.new_ike_sa] = old
        for c in agent.children.values():
            if c.ike_sa == event.old_ike_sa:
                c.ike_sa = event.new_ike_sa
        agent.stats.inc("main_mode", "key_updates")
        agent._emit(
            "ike-rekeyed", None, old.peer[0] if old else None, f"IKE SA rekeyed ({event.proposal})", event
        )
    elif isinstance(event, IkeSaDeleted):
        gone = agent.ike_sas.pop(event.ike_sa, None)
        for c in [c for c in agent.children.values() if c.ike_sa == event.ike_sa]:
            remove_child(agent, c.handle, event.reason)
        if gone is not None and not any(p.peer == gone.peer for p in agent.ike_sas.values()):
            agent._keepalive_at.pop(gone.peer, None)
        agent._emit("ike-down", None, gone.peer[0] if gone else None, event.reason, event)
    elif isinstance(event, IkeSaFailed):
        agent.stats.inc("main_mode", "negotiation_failures")
        if event.notify == NotifyType.AUTHENTICATION_FAILED:
            agent.stats.inc("main_mode", "authentication_failures")
        initiator = any(p.peer == event.peer[0] for p in agent._pending.values())
        agent.stats.inc("main_mode", "acquire_failures" if initiator else "receive_failures")
        why = explain_failure(event.reason, event.local_proposals, event.remote_proposals)
        rule_name = None
        for key, pending in list(agent._pending.items()):
            if pending.peer != event.peer[0] or pending.ticket is not None:
                continue
            rule_name = pending.rule.name
            reason = why
            if pending.ike_sa == event.ike_sa and method_failed(event):
                if next_method(agent, pending, why, now):
                    continue  # a new IKE SA with the rule's next method
                reason = round_reason(pending, why)
            elif pending.tried:  # a later method failed otherwise (no answer…)
                reason = "; ".join([*pending.tried, why])
            del agent._pending[key]
            agent._give_up(pending, reason)
            why = reason
        if rule_name is None:  # a negotiation the peer started: the rule by its address
            rule_name = next((n for n, c in agent._configs.items() if str(c.peer) == event.peer[0]), None)
            if rule_name is not None:
                agent._failed(rule_name, why)
        agent._emit("ike-failed", rule_name, event.peer[0], why, event)
    elif isinstance(event, ChildSaInstalled):
        install_child(agent, event, now)
    elif isinstance(event, ChildSaRekeyed):
        agent.stats.inc("quick_mode", "rekeys")
        install_child(agent, event.new, now, rekey_of=event.old_child_sa)
    elif isinstance(event, ChildSaDeleted):
        child = agent.children.get(event.child_sa)
        if child is not None:
            remove_child(agent, event.child_sa, event.reason)
    elif isinstance(event, ChildSaFailed):
        agent.stats.inc("main_mode", "negotiation_failures")
        why = explain_failure(event.reason, event.local_proposals, event.remote_proposals)
        totals = agent.stats.rule(event.rule)
        totals.last_failure = why
        for key, pending in list(agent._pending.items()):
            if key[0] == event.rule:
                del agent._pending[key]
                agent._give_up(pending, why)
        agent._emit("child-failed", event.rule, None, why, event)


def drop_duplicate(agent: PolicyAgent, child: ChildInfo, now: float) -> None:
    """Two IKE SAs for one path, from negotiations that crossed or from a
    retry after a lost answer.  Both ends pick the same loser:

    * started by different ends: the one whose initiator has the greater
      IKE identity (identities are the same at both ends, NAT or not),
      deleted by its initiator;
    * started by the same end: the older one (its initiator gave up on it
      or will), deleted by whichever end sees the pair.

    Exactly one pair of SAs stays; traffic keeps flowing on the newest."""
    for other in list(agent.children.values()):
        if (
            other is child
            or (other.rule, other.peer) != (child.rule, child.peer)
            or other.ike_sa == child.ike_sa
        ):
            continue
        new_by, old_by = initiator_of(agent, child.ike_sa), initiator_of(agent, other.ike_sa)
        if new_by == old_by:
            loser, ours = other.ike_sa, True
        else:
            loser = child.ike_sa if new_by > old_by else other.ike_sa
            established = agent.ike_sas.get(loser)
            ours = established is not None and established.initiator
        if ours and agent.engine is not None:
            with contextlib.suppress(LocalError):
                agent.engine.delete(loser, now)
            agent._emit("ike-duplicate", child.rule, child.peer, f"deleting duplicate IKE SA {loser:016x}")
        return


def install_child(agent: PolicyAgent, event: ChildSaInstalled, now: float, *,
                  rekey_of: int | None = None) -> None:
    """A negotiated Child SA: its ESP SAs built, indexed and counted; what
    waited for it in the acquire queue sent (make-before-break on a rekey)."""
    rule = agent.policy.rule(event.rule)
    if event.inbound.spi in agent._inbound:
        agent.stats.inc("main_mode", "get_spi_failures")
        agent._emit("child-failed", rule.name, None, f"inbound SPI 0x{event.inbound.spi:08x} is in use")
        return
    try:
        child = build_child(rule, event, agent.ike_sas.get(event.ike_sa), now)
    except LocalError as exc:
        # the inbound SA is made first: a failure there is a key update failure
        failed = "key_addition_failures" if "outbound" in str(exc) else "key_update_failures"
        agent.stats.inc("main_mode", failed)
        agent._emit("child-failed", rule.name, None, f"cannot install the Child SA: {exc}")
        return
    for mode, key in (
        ("main_mode", "total_get_spi"),
        ("main_mode", "key_updates"),
        ("main_mode", "key_additions"),
        ("quick_mode", "key_additions"),
    ):
        agent.stats.inc(mode, key)  # type: ignore[arg-type]
    agent.children[event.child_sa] = child
    agent._inbound[child.inbound.spi] = child
    # make-before-break: the new SA sends at once, the old one still receives
    agent._outbound[(rule.name, child.peer)] = event.child_sa
    totals = agent.stats.rule(rule.name)
    totals.state = "up"
    totals.last_failure = ""
    encap = "ESP-in-UDP" if event.outbound.udp_encapsulation else "ESP"
    agent._emit(
        "child-rekeyed" if rekey_of is not None else "child-up",
        rule.name,
        child.peer,
        f"{event.outbound.mode} mode {encap} {event.outbound.transform} "
        f"SPIs in {event.inbound.spi:08x} out {event.outbound.spi:08x}",
        event,
    )
    pending = agent._pending.pop((rule.name, child.peer), None)
    if pending is not None:
        while pending.packets:
            agent._protect(child, pending.packets.popleft(), now)
    if rekey_of is None:
        drop_duplicate(agent, child, now)

def remove_child(agent: PolicyAgent, handle: int, reason: str) -> None:
    """A Child SA gone: its SPI unindexed, the newest other SA of its path sends."""
    child = agent.children.pop(handle, None)
    if child is None:
        return
    agent._inbound.pop(child.inbound.spi, None)
    key = (child.rule, child.peer)
    if agent._outbound.get(key) == handle:
        replacement = max(
            (c.handle for c in agent.children.values() if (c.rule, c.peer) == key),
            key=lambda h: agent.children[h].installed_at,
            default=None,
        )
        if replacement is None:
            del agent._outbound[key]
        else:
            agent._outbound[key] = replacement
    agent.stats.inc("quick_mode", "key_deletions")
    if not any(c.rule == child.rule for c in agent.children.values()):
        agent.stats.rule(child.rule).state = "down"
    agent._emit("child-down", child.rule, child.peer, reason)


def forget_closed(agent: PolicyAgent) -> None:
    """IKE SAs the engine closed without a Delete event (a responder SA
    its initiator abandoned, a rekeyed one): drop them and their Child SAs."""
    if agent.engine is None:
        return
    for handle in [h for h in agent.ike_sas if agent.engine.ike_sa_state(h) is None]:
        agent.ike_sas.pop(handle, None)
        for c in [c for c in agent.children.values() if c.ike_sa == handle]:
            remove_child(agent, c.handle, "IKE SA closed")


def initiator_of(agent: PolicyAgent, ike_sa: int) -> str:
    """The identity of the end that started an IKE SA (the same at both ends)."""
    ev = agent.ike_sas.get(ike_sa)
    if ev is None:
        return ""
    return ev.local_id if ev.initiator else ev.remote_id


def update_gauges(agent: PolicyAgent) -> None:
    """The monitor's gauges (SAs, queues, negotiations in progress) from the present state."""
    forget_closed(agent)
    m, q = agent.stats.main_mode, agent.stats.quick_mode
    m["active_acquire"] = len(agent._pending)
    m["acquire_heap_size"] = sum(len(p.packets) for p in agent._pending.values())
    if agent.engine is not None:
        m["active_receive"] = agent.engine.negotiations()[1]
        m["receive_heap_size"] = agent.engine.fragments_waiting()
        dropped = agent.engine.counters
        m["invalid_packets_received"] = agent._own_invalid + dropped["invalid_packets"]
        m["invalid_cookies_received"] = dropped["invalid_spis"] + dropped["invalid_cookies"]
    m["main_mode_sas"] = len(agent.ike_sas)
    m["quick_mode_sas"] = len(agent.children)
    m["connection_list_size"] = len({p.peer[0] for p in agent.ike_sas.values()})
    q["active_security_associations"] = 2 * len(agent.children)
    q["active_tunnels"] = sum(1 for c in agent.children.values() if c.parameters.mode == "tunnel")
    q["pending_key_operations"] = len(agent._pending)
    for rule in agent.policy.rules:
        totals = agent.stats.rule(rule.name)
        if totals.state != "up" and any(p.rule.name == rule.name for p in agent._pending.values()):
            totals.state = "negotiating"


def report_invalid_spi(agent: PolicyAgent, peer: str, spi: int, now: float) -> None:
    """An ESP packet from ``peer`` named an SPI we do not know: if ``peer`` is
    the peer of one of our IKE SAs, ask the engine to send INVALID_SPI there
    (RFC 7296 §1.5; the engine rate-limits it)."""
    if agent.engine is None:
        return
    ike_sa = next((h for h, ev in reversed(agent.ike_sas.items()) if ev.peer[0] == peer), None)
    if ike_sa is not None and agent.engine.invalid_spi(ike_sa, spi, now):
        agent.timer_version += 1  # a request with its retransmission timer
