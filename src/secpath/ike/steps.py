"""The handlers named by :class:`secpath.ike.state.Step` (h2-style dispatch:
the table in :mod:`secpath.ike.state` says *when*, this says *who*)."""

from __future__ import annotations

from collections.abc import Callable

from secpath.ike.exchange_auth import auth_request_step, auth_response_step
from secpath.ike.exchange_child import child_request_step
from secpath.ike.exchange_info import info_request_step, unhandled_response_step
from secpath.ike.exchange_init import init_response_step
from secpath.ike.message import Message
from secpath.ike.sa import IkeSa
from secpath.ike.state import State, Step

__all__ = ["STEPS"]

StepHandler = Callable[[IkeSa, Message, float], State | None]

STEPS: dict[Step, StepHandler] = {
    Step.INIT_RESPONSE: init_response_step,
    Step.AUTH_REQUEST: auth_request_step,
    Step.AUTH_RESPONSE: auth_response_step,
    Step.CHILD_REQUEST: child_request_step,
    # responses to CREATE_CHILD_SA and INFORMATIONAL requests go to the
    # request's own handler (sa.Request.on_response); these see none
    Step.CHILD_RESPONSE: unhandled_response_step,
    Step.INFO_REQUEST: info_request_step,
    Step.INFO_RESPONSE: unhandled_response_step,
}
