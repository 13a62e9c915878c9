"""The agent's data: what it transmits, the events it reports, the Child SAs
it holds."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from secpath.esp import SecurityAssociation
from secpath.ike.events import EspSaParameters, Event
from secpath.ike.selectors import TrafficSelector
from secpath.policy.model import IpAddress, Rule

__all__ = ["AgentEvent", "ChildInfo", "Outgoing", "RuleState", "in_selectors"]

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """Something to put on the network.

    ``source_port`` 500 or 4500 with ``destination`` (address, port): a UDP
    datagram (IKE, ESP-in-UDP, NAT keepalive).  ``source_port`` 0: a whole
    IP packet for a raw socket (clear text, or ESP as IP protocol 50), and
    ``destination`` is (address, 0).
    """

    data: bytes
    destination: Address
    source_port: int


class RuleState(Enum):
    DOWN = "down"
    NEGOTIATING = "negotiating"
    UP = "up"


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """What the agent did, for the negotiation log and the monitor.

    ``kind``: "ike-up", "ike-down", "ike-failed", "child-up", "child-rekeyed",
    "child-down", "child-failed", "dropped", "fallback", "acquire",
    "ticket" (a Kerberos ticket fetch handed to the driver), "auth-fallback"
    (the rule's next authentication method is tried), and with tracing on
    "ike-in" / "ike-out" (one per IKE message).
    """

    kind: str
    rule: str | None
    peer: str | None
    detail: str
    ike_event: Event | None = None
    # for "ike-in" / "ike-out" (traced IKE messages)
    exchange: str | None = None
    message_id: int | None = None
    ike_sa: str | None = None


@dataclass(slots=True)
class ChildInfo:
    """One installed Child SA pair, as the status command shows it."""

    rule: str
    ike_sa: int
    handle: int  # our inbound SPI
    peer: str
    inbound: SecurityAssociation
    outbound: SecurityAssociation
    parameters: EspSaParameters  # outbound parameters (transform, mode, encapsulation)
    inbound_parameters: EspSaParameters
    local_ts: tuple[TrafficSelector, ...]
    remote_ts: tuple[TrafficSelector, ...]
    installed_at: float
    peer_port: int = 0  # where ESP-in-UDP goes; follows the peer's NAT mapping
    # the monitor's quick-mode byte counters each protected packet adds to
    sent_keys: tuple[str, ...] = ()
    received_keys: tuple[str, ...] = ()


@dataclass(slots=True)
class _Pending:
    """Packets waiting for a negotiation (the acquire queue)."""

    rule: Rule
    peer: str
    deadline: float
    packets: deque[bytes] = field(default_factory=deque)
    ike_sa: int = 0
    method: int = 0  # which of the rule's methods is tried (secpath.agent.methods)
    tried: list[str] = field(default_factory=list)  # "<method> failed: <why>" this round
    ticket: object | None = None  # the TicketRequest in flight before the IKE SA starts


def in_selectors(address: IpAddress, selectors: Sequence[TrafficSelector]) -> bool:
    return any(
        ts.start.version == address.version and int(ts.start) <= int(address) <= int(ts.end)
        for ts in selectors
    )
