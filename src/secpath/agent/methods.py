"""A rule's authentication methods at run time (docs/kerberos.md §6).

A rule lists its methods in order (the guide's wizard: Kerberos first,
certificates next).  Every method that can be used on this host gets its
own :class:`~secpath.ike.config.IkeConfig` in the engine, so a responder
accepts whichever of them the initiator uses.  An initiator starts with the
first; when that negotiation fails for a reason of its method (the peer
answers AUTHENTICATION_FAILED, no Kerberos ticket can be had, a GSS-API
error), the agent starts a new IKE SA to the same peer with the next
method.  Each method is tried once per round; after the last one the
usual failure handling applies (the acquire gives up, the rule shows the
reasons of all methods).

Kerberos tickets: when the driver offloads them (``agent.offload_tickets``),
an initiator's Kerberos attempt first asks for the service ticket through a
:class:`TicketRequest` that the driver runs in a worker thread; the IKE SA
starts when the ticket is in the credential cache, so the KDC round trip
never runs on the event loop (docs/kerberos.md §8).  Without offloading
(in-memory tests) the engine's GSS-API call fetches it itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from secpath.errors import LocalError
from secpath.ike.auth import AUTHENTICATION_FAILED
from secpath.ike.config import Credentials, IkeConfig, Timing
from secpath.ike.credentials import load_all_credentials
from secpath.ike.events import IkeSaEstablished, IkeSaFailed
from secpath.ike.kerberos import TicketSource, target_principal
from secpath.policy.model import Behavior, Policy, Rule

if TYPE_CHECKING:
    from secpath.agent.agent import PolicyAgent
    from secpath.agent.types import _Pending

__all__ = [
    "TicketRequest",
    "auth_note",
    "method_failed",
    "next_method",
    "round_reason",
    "rule_configs",
    "rule_credentials",
    "start_attempt",
    "ticket_done",
]

IKE_PORT = 500


@dataclass(frozen=True, slots=True, eq=False)
class TicketRequest:
    """Blocking work for the driver: :meth:`fetch` in a worker thread, then
    :meth:`PolicyAgent.ticket_done` with its outcome on the loop."""

    rule: str
    peer: str
    target: str  # the service principal
    source: TicketSource

    def fetch(self) -> str | None:
        """The ticket fetched: ``None``; else why not (KerberosError's text)."""
        try:
            self.source.fetch_ticket(self.target)
        except LocalError as exc:
            return str(exc)
        return None


def rule_credentials(rule: Rule, given: Credentials | Sequence[Credentials] | None
                     ) -> tuple[Credentials, ...]:
    """The credentials of each usable method of ``rule``, in its order:
    ``given`` (one or several), else loaded from the files the rule names.
    IKEv1 rules keep the first (secpath's IKEv1 tries no second method)."""
    if given is None:
        creds = load_all_credentials(rule)
    elif isinstance(given, Credentials):
        creds = (given,)
    else:
        creds = tuple(given)
    if not creds:
        raise LocalError(f"rule {rule.name!r}: no credentials given")
    return creds[:1] if rule.ike_version == 1 else creds


def rule_configs(policy: Policy, credentials: Mapping[str, Credentials | Sequence[Credentials]], *,
                 timing: Timing, replay_window: int, force_udp_encapsulation: bool
                 ) -> dict[str, tuple[IkeConfig, ...]]:
    """Every negotiating rule's configurations, one per usable method in the
    rule's order (``credentials`` given by rule name, else loaded)."""
    out: dict[str, tuple[IkeConfig, ...]] = {}
    for rule in policy.rules:
        if rule.filter_action.behavior is not Behavior.NEGOTIATE:
            continue
        out[rule.name] = tuple(
            IkeConfig.from_policy(policy, rule, creds, timing=timing, replay_window=replay_window,
                                  force_udp_encapsulation=force_udp_encapsulation)
            for creds in rule_credentials(rule, credentials.get(rule.name)))
    return out


def _methods(agent: PolicyAgent, rule: str) -> tuple[IkeConfig, ...]:
    """One configuration per method kind of the rule, in the rule's order."""
    out: list[IkeConfig] = []
    for cfg in agent._rule_configs.get(rule, ()):
        if all(c.credentials.method != cfg.credentials.method for c in out):
            out.append(cfg)
    return tuple(out)


def start_attempt(agent: PolicyAgent, pending: _Pending, now: float) -> None:
    """Start negotiating ``pending`` with its current method: a new IKE SA,
    or first a ticket request for a Kerberos method when tickets are
    offloaded.  LocalError when the engine cannot start it."""
    assert agent.engine is not None
    cfg = _methods(agent, pending.rule.name)[pending.method]
    creds = cfg.credentials.kerberos
    pending.ike_sa = 0
    if creds is not None and agent.offload_tickets and isinstance(creds.provider, TicketSource):
        target = target_principal(creds, cfg.remote_id)
        pending.ticket = TicketRequest(pending.rule.name, pending.peer, target, creds.provider)
        agent._tickets.append(pending.ticket)
        agent._emit("ticket", pending.rule.name, pending.peer, f"fetching a Kerberos ticket for {target}")
        return
    pending.ticket = None
    pending.ike_sa = agent.engine.initiate(
        pending.rule.name, now, (pending.peer, IKE_PORT), method=cfg.credentials.method
    )


def method_failed(event: IkeSaFailed) -> bool:
    """Whether a failed IKE SA failed because of its authentication method
    (another method may work): the peer or we refused the authentication,
    or the GSS-API failed."""
    return event.notify == AUTHENTICATION_FAILED or event.reason.startswith("Kerberos")


def next_method(agent: PolicyAgent, pending: _Pending, why: str, now: float) -> bool:
    """The current method of ``pending`` failed for ``why``: start the next
    one (a new IKE SA, a fresh acquire deadline).  False when none is left
    (the caller gives up with :func:`round_reason`)."""
    methods = _methods(agent, pending.rule.name)
    name = methods[pending.method].credentials.method
    pending.tried.append(f"{name} failed: {why}")
    while pending.method + 1 < len(methods):
        pending.method += 1
        following = methods[pending.method].credentials.method
        pending.deadline = now + agent.acquire_timeout
        agent.timer_version += 1
        try:
            start_attempt(agent, pending, now)
        except LocalError as exc:
            pending.tried.append(f"{following} failed: cannot start: {exc}")
            continue
        agent._emit("auth-fallback", pending.rule.name, pending.peer,
                    f"{name} failed: {why}; trying {following}")
        return True
    return False


def round_reason(pending: _Pending, why: str) -> str:
    """Why a negotiation gave up: every method's failure of this round."""
    return "; ".join(pending.tried) if pending.tried else why


def ticket_done(agent: PolicyAgent, request: TicketRequest, error: str | None, now: float) -> None:
    """The driver's worker finished ``request``: start the IKE SA, or go on
    with the next method (or give up) when no ticket could be had."""
    pending = agent._pending.get((request.rule, request.peer))
    if pending is None or pending.ticket is not request:
        return  # given up (or restarted) meanwhile
    pending.ticket = None
    why = f"Kerberos: {error}" if error is not None else ""
    if error is None:
        assert agent.engine is not None
        cfg = _methods(agent, request.rule)[pending.method]
        try:
            pending.ike_sa = agent.engine.initiate(
                request.rule, now, (request.peer, IKE_PORT), method=cfg.credentials.method
            )
            return
        except LocalError as exc:
            why = f"cannot start negotiation: {exc}"
    agent.stats.inc("main_mode", "negotiation_failures")
    agent.stats.inc("main_mode", "acquire_failures")
    if next_method(agent, pending, why, now):
        return
    del agent._pending[(request.rule, request.peer)]
    reason = round_reason(pending, why)
    agent._give_up(pending, reason)
    agent._emit("ike-failed", request.rule, request.peer, reason)


def auth_note(agent: PolicyAgent, event: IkeSaEstablished) -> str:
    """`` authenticated by certificate (kerberos failed: …)``: the method
    of a new IKE SA and, for ours, why the methods before it were not used."""
    if not event.auth_method:
        return ""
    notes: list[str] = []
    pending = next((p for p in agent._pending.values() if p.ike_sa == event.ike_sa), None)
    if pending is not None:
        cfg = _methods(agent, pending.rule.name)[pending.method]
        for skipped in cfg.credentials.skipped:
            method, _, reason = skipped.partition(": ")
            notes.append(f"{method} not usable here: {reason}")
        notes += pending.tried
    return f", authenticated by {event.auth_method}" + (f" ({'; '.join(notes)})" if notes else "")
