"""Drive a :class:`~secpath.agent.PolicyAgent` from asyncio: feed it what
arrives, send what it transmits, deliver what it decrypts, and wake it when
its timer is due.  The daemon and the lab both use this one driver; only the
``send`` and ``deliver`` callables differ (real sockets and a TUN device, or
the lab network)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from secpath.agent import AgentEvent, Outgoing, PolicyAgent
from secpath.agent.methods import TicketRequest

__all__ = ["AgentDriver"]


class AgentDriver:
    def __init__(
        self,
        agent: PolicyAgent,
        send: Callable[[Outgoing], None],
        deliver: Callable[[bytes], None],
        on_event: Callable[[AgentEvent], None] | None = None,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        offload_tickets: bool = True,
    ) -> None:
        self.agent = agent
        self._send = send
        self._deliver = deliver
        self._on_event = on_event
        self._loop = loop or asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._timer_version = -1
        self.closed = False
        # Kerberos ticket fetches (KDC round trips) run in the loop's default
        # executor, never on the loop (docs/kerberos.md §8)
        agent.offload_tickets = offload_tickets
        self.tickets_in_flight = 0

    def now(self) -> float:
        # wall-clock time: the engines check certificate validity with it
        return time.time()

    # -- inputs ----------------------------------------------------------------

    # Each input is followed by a flush unless ``flush=False``: a caller that
    # read a batch of packets flushes once at the end (fewer wake-ups).

    def datagram(self, data: bytes, source: tuple[str, int], local_port: int, *, flush: bool = True) -> None:
        if self.closed:
            return
        self.agent.receive_datagram(data, source, local_port, self.now())
        if flush:
            self.flush()

    def packet_from_network(self, packet: bytes, *, flush: bool = True) -> None:
        if self.closed:
            return
        self.agent.receive_packet(packet, self.now())
        if flush:
            self.flush()

    def packet_from_host(self, packet: bytes, *, flush: bool = True) -> None:
        if self.closed:
            return
        self.agent.send_packet(packet, self.now())
        if flush:
            self.flush()

    def initiate(self, rule: str) -> None:
        self.agent.initiate(rule, self.now())
        self.flush()

    def rekey(self, rule: str, *, ike: bool) -> int:
        n = self.agent.rekey(rule, self.now(), ike=ike)
        self.flush()
        return n

    def terminate(self, rule: str | None) -> int:
        n = self.agent.terminate(rule, self.now())
        self.flush()
        return n

    # -- outputs ---------------------------------------------------------------

    def flush(self) -> None:
        """Send, deliver and report everything the agent has, then re-arm the timer."""
        agent = self.agent
        for out in agent.transmit():
            self._send(out)
        for packet in agent.deliver():
            self._deliver(packet)
        while (event := agent.next_event()) is not None:
            if self._on_event is not None:
                self._on_event(event)
        while (request := agent.next_ticket_request()) is not None:
            self._fetch(request)
        self._arm()

    def _fetch(self, request: TicketRequest) -> None:
        self.tickets_in_flight += 1
        future = self._loop.run_in_executor(None, request.fetch)

        def done(f: asyncio.Future[str | None]) -> None:
            self.tickets_in_flight -= 1
            if self.closed or f.cancelled():
                return
            exc = f.exception()
            error = f.result() if exc is None else f"ticket fetch failed: {exc}"
            self.agent.ticket_done(request, error, self.now())
            self.flush()

        future.add_done_callback(done)

    def _arm(self) -> None:
        version = self.agent.timer_version
        if version == self._timer_version and self._timer is not None:
            return  # nothing that sets timers happened since the last arming
        self._timer_version = version
        when = self.agent.next_timer()
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None and not self.closed:
            self._timer = self._loop.call_later(max(when - self.now(), 0.0), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        if self.closed:
            return
        self.agent.handle_timer(self.now())
        self.flush()

    def close(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
