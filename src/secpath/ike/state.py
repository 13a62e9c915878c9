"""The IKE SA state machine as data (STYLE.md habit 2, h11's ``_state.py``).

``TRANSITIONS[(state, exchange, is_response)]`` names the step that handles
a message that passed the message-ID and integrity checks, and the state
the SA moves to when the step succeeds.  A missing key means the message is
not legal in that state: the engine drops it (fail closed).  A step may end
the SA early (``CLOSED``) on failure; that is the only other move.

    INIT_SENT ──IKE_SA_INIT resp──▶ AUTH_SENT ──IKE_AUTH resp──▶ ESTABLISHED
    (responder) IKE_SA_INIT req ──▶ INIT_DONE ──IKE_AUTH req───▶ ESTABLISHED
    ESTABLISHED ──delete(IKE) sent──▶ DELETING ──resp──▶ CLOSED
    ESTABLISHED ──rekeyed by a new IKE SA──▶ REKEYED ──delete──▶ CLOSED
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from secpath.ike.constants import ExchangeType

__all__ = ["TRANSITIONS", "State", "Step", "Transition", "diagram", "lookup"]


class State(Enum):
    INIT_SENT = "init-sent"  # initiator: IKE_SA_INIT request out
    INIT_DONE = "init-done"  # responder: IKE_SA_INIT answered, waiting for IKE_AUTH
    AUTH_SENT = "auth-sent"  # initiator: IKE_AUTH request out
    ESTABLISHED = "established"
    REKEYED = "rekeyed"  # replaced by a new IKE SA, waiting for its deletion (§2.18)
    DELETING = "deleting"  # our Delete of the IKE SA is out
    CLOSED = "closed"


class Step(Enum):
    INIT_RESPONSE = "init-response"
    AUTH_REQUEST = "auth-request"
    AUTH_RESPONSE = "auth-response"
    CHILD_REQUEST = "create-child-request"
    CHILD_RESPONSE = "create-child-response"
    INFO_REQUEST = "informational-request"
    INFO_RESPONSE = "informational-response"


@dataclass(frozen=True, slots=True)
class Transition:
    step: Step
    next_state: State | None  # None: stay (the step may still close the SA)


_I = ExchangeType.IKE_SA_INIT
_A = ExchangeType.IKE_AUTH
_C = ExchangeType.CREATE_CHILD_SA
_N = ExchangeType.INFORMATIONAL
REQUEST, RESPONSE = False, True

TRANSITIONS: dict[tuple[State, ExchangeType, bool], Transition] = {
    # RFC 7296 §1.2: IKE_SA_INIT then IKE_AUTH
    (State.INIT_SENT, _I, RESPONSE): Transition(Step.INIT_RESPONSE, State.AUTH_SENT),
    (State.INIT_DONE, _A, REQUEST): Transition(Step.AUTH_REQUEST, State.ESTABLISHED),
    (State.AUTH_SENT, _A, RESPONSE): Transition(Step.AUTH_RESPONSE, State.ESTABLISHED),
    # RFC 7296 §1.3: CREATE_CHILD_SA, only on an established SA
    (State.ESTABLISHED, _C, REQUEST): Transition(Step.CHILD_REQUEST, None),
    (State.ESTABLISHED, _C, RESPONSE): Transition(Step.CHILD_RESPONSE, None),
    # RFC 7296 §2.18: the old IKE SA still answers while its Child SAs move
    # (a request gets TEMPORARY_FAILURE, §2.25)
    (State.REKEYED, _C, REQUEST): Transition(Step.CHILD_REQUEST, None),
    (State.REKEYED, _C, RESPONSE): Transition(Step.CHILD_RESPONSE, None),
    # RFC 7296 §1.4: INFORMATIONAL
    (State.ESTABLISHED, _N, REQUEST): Transition(Step.INFO_REQUEST, None),
    (State.ESTABLISHED, _N, RESPONSE): Transition(Step.INFO_RESPONSE, None),
    (State.REKEYED, _N, REQUEST): Transition(Step.INFO_REQUEST, None),
    (State.REKEYED, _N, RESPONSE): Transition(Step.INFO_RESPONSE, None),
    (State.DELETING, _N, REQUEST): Transition(Step.INFO_REQUEST, None),
    (State.DELETING, _N, RESPONSE): Transition(Step.INFO_RESPONSE, State.CLOSED),
}


# the same table keyed by the Exchange Type number: no enum conversion per
# message, and an exchange type the table does not name finds nothing
_BY_NUMBER: dict[tuple[State, int, bool], Transition] = {
    (state, int(exchange), response): t for (state, exchange, response), t in TRANSITIONS.items()
}


def lookup(state: State, exchange: int, is_response: bool) -> Transition | None:
    return _BY_NUMBER.get((state, exchange, bool(is_response)))


def diagram() -> str:
    """The table as text, one transition a line (docs/ike.md quotes it)."""
    lines = []
    for (state, exchange, response), t in TRANSITIONS.items():
        kind = "response" if response else "request"
        target = t.next_state.value if t.next_state is not None else "(same)"
        lines.append(f"{state.value:<12} {exchange.name:<16} {kind:<8} -> {target:<12} "
                     f"[{t.step.value}]")
    return "\n".join(lines)
