"""The policy agent (see the package docstring)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence

from secpath.agent.engines import IkeEngines
from secpath.agent.explain import describe_message
from secpath.agent.lifecycle import on_engine_event, report_invalid_spi, update_gauges
from secpath.agent.methods import TicketRequest, rule_configs, start_attempt, ticket_done
from secpath.agent.packets import flow_key, packet_info, source_address
from secpath.agent.types import AgentEvent, ChildInfo, Outgoing, RuleState, _Pending, in_selectors
from secpath.errors import LocalError
from secpath.esp import (
    EspDrop,
    HardLifetimeExpired,
    IntegrityError,
    LifetimeExpiredError,
    PaddingError,
    ReplayError,
    SequenceOverflowError,
    SoftLifetimeExpired,
)
from secpath.esp.errors import DecryptError, EspParseError, NatKeepalive, NonEspMarker
from secpath.esp.sad import esp_spi
from secpath.esp.udp import NAT_KEEPALIVE, NAT_T_PORT, NON_ESP_MARKER
from secpath.ike.config import Credentials, Timing
from secpath.ike.events import (
    Event,
    IkeSaEstablished,
)
from secpath.monitor.stats import Statistics
from secpath.policy.model import Behavior, IpAddress, Policy, Rule
from secpath.policy.spd import Direction, Spd

__all__ = ["PolicyAgent"]

_FLOW_CACHE = 4096  # outbound SPD verdicts remembered per flow (the policy never changes)
Address = tuple[str, int]


class PolicyAgent:
    """All IPsec state of one host, driven by the caller's I/O.

    Inputs: :meth:`send_packet` (an outbound IP packet from the host),
    :meth:`receive_datagram` (UDP on 500/4500), :meth:`receive_packet` (a
    whole IP packet from the network: clear text or raw ESP),
    :meth:`handle_timer`, :meth:`initiate`, :meth:`terminate`.
    Outputs: :meth:`transmit` (what to send), :meth:`deliver` (packets for
    the host), :meth:`next_event`, :meth:`next_timer`.
    """

    def __init__(
        self,
        policy: Policy,
        rng: Callable[[int], bytes],
        *,
        credentials: Mapping[str, Credentials | Sequence[Credentials]] | None = None,
        timing: Timing | None = None,
        local_address: str | None = None,
        force_udp_encapsulation: bool = False,
        queue_limit: int = 64,
        acquire_timeout: float = 30.0,
        keepalive_interval: float = 20.0,
        replay_window: int = 1024,
    ) -> None:
        if not policy.local.addresses and local_address is None:
            raise LocalError(f"policy {policy.name!r} has no local address")
        self.policy = policy
        self.local_address = local_address or str(policy.local.addresses[0])
        self.spd = Spd(policy)
        self.stats = Statistics()
        self.queue_limit = queue_limit
        self.acquire_timeout = acquire_timeout
        self.keepalive_interval = keepalive_interval
        for rule in policy.rules:
            self.stats.rule(rule.name)
        # one configuration per usable method of each rule, in the rule's order
        self._rule_configs = rule_configs(
            policy,
            credentials or {},
            timing=timing or Timing(),
            replay_window=replay_window,
            force_udp_encapsulation=force_udp_encapsulation,
        )
        configs = [c for cs in self._rule_configs.values() for c in cs]
        self._configs = {name: cs[0] for name, cs in self._rule_configs.items()}
        # set by a driver that runs Kerberos ticket fetches in a worker thread
        self.offload_tickets = False
        self._tickets: deque[TicketRequest] = deque()
        # IKEv2 and IKEv1 rules each get their engine; datagrams go by header version
        self.engine = IkeEngines(configs, rng, local_address=self.local_address) if configs else None
        self._inbound: dict[int, ChildInfo] = {}  # our inbound SPI -> Child SA
        self._allowed_inner: set[tuple[int, bytes]] = set()
        self.children: dict[int, ChildInfo] = {}
        self._outbound: dict[tuple[str, str], int] = {}  # (rule, peer) -> newest child
        self._pending: dict[tuple[str, str], _Pending] = {}
        self.ike_sas: dict[int, IkeSaEstablished] = {}
        self._keepalive_at: dict[Address, float] = {}  # peer (address, port) -> next NAT keepalive
        self.keepalives_sent = 0
        self._flows: dict[bytes, tuple[Behavior, Rule | None, str]] = {}
        # bumped whenever next_timer() may have changed: the data path leaves it alone
        self.timer_version = 0
        # 0/1: SA events only; 2: an event per IKE message; 3: with its payloads
        self.trace_level = 0
        self._own_invalid = 0
        self._transmit: list[Outgoing] = []
        self._deliver: list[bytes] = []
        self._events: deque[AgentEvent] = deque()
        self.now = 0.0

    # -- outputs -------------------------------------------------------------

    def transmit(self) -> list[Outgoing]:
        """Everything to send, IKE first (a flush may depend on it)."""
        ike: list[Outgoing] = []
        if self.engine is not None:
            for d in self.engine.datagrams_to_send():
                ike.append(Outgoing(d.data, d.destination, d.source_port))
                if self.trace_level >= 2:
                    self._trace("ike-out", d.data, d.destination, d.source_port)
        # IKE before ESP: an IKEv1 initiator's HASH(3) must reach the responder
        # before the first packet on the SA it installs (RFC 2409 §5.5)
        out, self._transmit = ike + self._transmit, []
        return out

    def deliver(self) -> list[bytes]:
        out, self._deliver = self._deliver, []
        return out

    def next_event(self) -> AgentEvent | None:
        return self._events.popleft() if self._events else None

    def next_timer(self) -> float | None:
        times = [p.deadline for p in self._pending.values()]
        times.extend(self._keepalive_at.values())
        if self.engine is not None and (t := self.engine.next_timer()) is not None:
            times.append(t)
        return min(times) if times else None

    def next_ticket_request(self) -> TicketRequest | None:
        """A Kerberos ticket to fetch off the event loop (``offload_tickets``):
        run its ``fetch`` in a worker, then :meth:`ticket_done`."""
        return self._tickets.popleft() if self._tickets else None

    def ticket_done(self, request: TicketRequest, error: str | None, now: float) -> None:
        self.now = now
        self.timer_version += 1
        ticket_done(self, request, error, now)
        self._gauges()

    def rule_state(self, rule: str) -> RuleState:
        if any(c.rule == rule for c in self.children.values()):
            return RuleState.UP
        if any(key[0] == rule for key in self._pending):
            return RuleState.NEGOTIATING
        return RuleState.DOWN

    # -- outbound ------------------------------------------------------------

    def send_packet(self, packet: bytes, now: float) -> None:
        """An IP packet from this host: pass, drop, protect or queue it."""
        self.now = now
        key = flow_key(packet)
        decision = self._flows.get(key) if key is not None else None
        if decision is None:
            decision = self._decide(packet)
            if decision is None:
                return
            if key is not None:
                if len(self._flows) >= _FLOW_CACHE:
                    self._flows.clear()
                self._flows[key] = decision
        behavior, rule, peer = decision
        if behavior is Behavior.NEGOTIATE:
            assert rule is not None
            child = self._outbound.get((rule.name, peer))
            if child is not None:
                info = self.children.get(child)
                if info is not None:
                    self._protect(info, packet, now)
                    return
            self._acquire(rule, peer, packet, now)
        elif behavior is Behavior.PERMIT:
            self._transmit.append(Outgoing(packet, (peer, 0), 0))
        else:
            self._emit("dropped", rule.name if rule else None, peer, "blocked by the filter action")

    def _decide(self, packet: bytes) -> tuple[Behavior, Rule | None, str] | None:
        """The SPD's verdict for an outbound packet: (behavior, rule, peer);
        no matching filter is a permit (the host's traffic outside the policy)."""
        try:
            info = packet_info(packet)
        except EspParseError as exc:
            self._emit("dropped", None, None, f"outbound packet not IP: {exc}")
            return None
        match = self.spd.lookup(
            info.source,
            info.destination,
            info.protocol,
            info.source_port,
            info.destination_port,
            direction=Direction.OUTBOUND,
        )
        if match is None:
            return Behavior.PERMIT, None, str(info.destination)
        if match.behavior is Behavior.NEGOTIATE:
            return Behavior.NEGOTIATE, match.rule, self._peer_of(match.rule, info.destination)
        return match.behavior, match.rule, str(info.destination)

    def _peer_of(self, rule: Rule, destination: IpAddress) -> str:
        cfg = self._configs[rule.name]
        return str(cfg.peer) if cfg.peer is not None else str(destination)

    def _acquire(self, rule: Rule, peer: str, packet: bytes | None, now: float) -> None:
        self.timer_version += 1
        key = (rule.name, peer)
        pending = self._pending.get(key)
        if pending is None:
            assert self.engine is not None
            pending = self._pending[key] = _Pending(rule, peer, now + self.acquire_timeout)
            self.stats.inc("main_mode", "total_acquire")
            try:
                start_attempt(self, pending, now)
            except LocalError as exc:
                del self._pending[key]
                self._failed(rule.name, f"cannot start negotiation: {exc}")
                return
            self._emit("acquire", rule.name, peer, "negotiating security")
        if packet is not None:
            if len(pending.packets) >= self.queue_limit:
                pending.packets.popleft()
                self._emit("dropped", rule.name, peer, f"acquire queue full ({self.queue_limit})")
            pending.packets.append(packet)
        self._gauges()

    def _protect(self, child: ChildInfo, packet: bytes, now: float) -> None:
        sa = child.outbound
        udp = child.parameters.udp_encapsulation is not None
        try:
            # ESP in UDP: only the ESP packet, the socket adds IP and UDP (RFC 3948)
            wire = sa.encapsulate_udp_payload(packet) if udp else sa.encapsulate(packet)
        except (LifetimeExpiredError, SequenceOverflowError) as exc:
            self._emit("dropped", child.rule, child.peer, str(exc))
            self._sa_events(child, now)
            return
        if udp:
            self._transmit.append(Outgoing(wire, (child.peer, child.peer_port), NAT_T_PORT))
        else:
            self._transmit.append(Outgoing(wire, (child.peer, 0), 0))
        totals = self.stats.rule(child.rule)
        totals.packets_out += 1
        n = len(packet)
        totals.bytes_out += n
        q = self.stats.quick_mode
        for key in child.sent_keys:
            q[key] += n
        self._sa_events(child, now)

    # -- inbound -------------------------------------------------------------

    def receive_datagram(self, data: bytes, source: Address, local_port: int, now: float) -> None:
        """A UDP datagram that arrived on port 500 or 4500."""
        self.now = now
        if local_port != NAT_T_PORT:
            self._to_ike(data, source, local_port, now)
            return
        if data == NAT_KEEPALIVE:
            return  # RFC 3948 §2.3: dropped silently
        if data[:4] == NON_ESP_MARKER:
            self._to_ike(data, source, local_port, now)
            return
        if len(data) < 8:
            self.stats.inc("quick_mode", "packets_not_decrypted")
            return
        spi = int.from_bytes(data[:4], "big")
        child = self._open(data, now, spi, source)
        if child is not None and child.peer_port != source[1]:
            # RFC 7296 §2.23: the NAT mapping changed; follow it, but only
            # after a packet that authenticated
            child.peer_port = source[1]

    def receive_packet(self, packet: bytes, now: float) -> None:
        """A whole IP packet from the network: raw ESP, or clear text."""
        self.now = now
        if packet and packet[0] >> 4 == 4 and len(packet) > 9 and packet[9] == 50:
            self._open(packet, now, None)
            return
        if packet and packet[0] >> 4 == 6 and len(packet) > 6 and packet[6] == 50:
            self._open(packet, now, None)
            return
        try:
            info = packet_info(packet)
        except EspParseError as exc:
            self._emit("dropped", None, None, f"inbound packet not IP: {exc}")
            return
        match = self.spd.lookup(
            info.source,
            info.destination,
            info.protocol,
            info.source_port,
            info.destination_port,
            direction=Direction.INBOUND,
        )
        if match is None or match.behavior is Behavior.PERMIT:
            self._deliver.append(packet)
            return
        if match.behavior is Behavior.BLOCK:
            self._emit("dropped", match.rule.name, str(info.source), "blocked by the filter action")
            return
        if not match.cleartext_allowed:
            # the guide: "Do not communicate with computers that do not support IPsec"
            self._emit("dropped", match.rule.name, str(info.source), "clear text on a secured path")
            return
        self.stats.inc("main_mode", "soft_associations")
        self._deliver.append(packet)
        if match.filter_action.accept_unsecured_inbound:
            # "accept unsecured communication, but always respond using IPsec"
            peer = self._peer_of(match.rule, info.source)
            if (match.rule.name, peer) not in self._outbound:
                self._acquire(match.rule, peer, None, now)

    def _to_ike(self, data: bytes, source: Address, local_port: int, now: float) -> None:
        if self.engine is None:
            self._own_invalid += 1  # IKE for a policy that negotiates nothing
            self.stats.main_mode["invalid_packets_received"] = self._own_invalid
            return
        if self.trace_level >= 2:
            self._trace("ike-in", data, source, local_port)
        self.engine.receive_datagram(data, source, now, local_port)
        self._drain_engine(now)

    def _trace(self, kind: str, data: bytes, peer: Address, local_port: int) -> None:
        described = describe_message(data[4:] if local_port == NAT_T_PORT else data, self.trace_level)
        if described is not None:
            exchange, message_id, spis, detail = described
            self._events.append(
                AgentEvent(kind, None, f"{peer[0]}:{peer[1]}", detail, None, exchange, message_id, spis)
            )

    def _open(
        self, packet: bytes, now: float, spi: int | None, udp_source: Address | None = None
    ) -> ChildInfo | None:
        """Decapsulate an ESP (or ESP-in-UDP) packet and deliver what is inside;
        the Child SA it authenticated for, if it did.  With ``udp_source``,
        ``packet`` is the payload of a datagram from there to port 4500."""
        q = self.stats.quick_mode
        if spi is None:
            try:
                spi = esp_spi(packet)
            except (NatKeepalive, NonEspMarker):
                return None
            except EspParseError:
                q["packets_not_decrypted"] += 1
                return None
        child = self._inbound.get(spi)
        if child is None:
            q["bad_spi_packets"] += 1
            sender = udp_source[0] if udp_source is not None else source_address(packet)
            if sender is not None:
                report_invalid_spi(self, sender, spi, now)
            return None
        try:
            if udp_source is None:
                inner = child.inbound.decapsulate(packet)
            else:
                inner = child.inbound.decapsulate_udp_payload(packet, udp_source[0], self.local_address)
        except ReplayError:
            q["packets_with_replay_detection"] += 1
            return None
        except IntegrityError:
            q["packets_not_authenticated"] += 1
            return None
        except (PaddingError, DecryptError, EspParseError):
            q["packets_not_decrypted"] += 1
            return None
        except (EspDrop, LifetimeExpiredError) as exc:
            self._emit("dropped", child.rule, child.peer, f"ESP packet refused: {exc}")
            self._sa_events(child, now)
            return None
        if not inner:
            return child  # a dummy packet (RFC 4303 §2.6): it authenticated
        if not self._selectors_allow(child, inner):
            return None
        totals = self.stats.rule(child.rule)
        totals.packets_in += 1
        n = len(inner)
        totals.bytes_in += n
        for key in child.received_keys:
            q[key] += n
        self._deliver.append(inner)
        self._sa_events(child, now)
        return child

    def _selectors_allow(self, child: ChildInfo, inner: bytes) -> bool:
        """RFC 4301 §5.2: the inner packet must match the SA's selectors
        (remembered per SA and address pair)."""
        key = (child.handle, inner[12:20]) if len(inner) >= 20 and inner[0] >> 4 == 4 else None
        if key is not None and key in self._allowed_inner:
            return True
        try:
            info = packet_info(inner)
        except EspParseError:
            self.stats.quick_mode["packets_not_decrypted"] += 1
            return False
        if not (
            in_selectors(info.source, child.remote_ts) and in_selectors(info.destination, child.local_ts)
        ):
            self._emit(
                "dropped",
                child.rule,
                child.peer,
                f"inner packet {info.source} -> {info.destination} outside the SA's selectors",
            )
            return False
        if key is not None:
            if len(self._allowed_inner) >= _FLOW_CACHE:
                self._allowed_inner.clear()
            self._allowed_inner.add(key)
        return True

    # -- control -------------------------------------------------------------

    def initiate(self, rule_name: str, now: float) -> None:
        """Negotiate ``rule_name`` now (``secpath initiate``; ``start = "start"``)."""
        self.now = now
        rule = self.policy.rule(rule_name)
        if rule.name not in self._configs:
            raise LocalError(
                f"rule {rule_name!r} does not negotiate (behavior {rule.filter_action.behavior.value})"
            )
        cfg = self._configs[rule.name]
        if cfg.peer is None:
            raise LocalError(f"rule {rule_name!r} has no single peer address: set rule.peer")
        self._acquire(rule, str(cfg.peer), None, now)

    def terminate(self, rule_name: str | None, now: float) -> int:
        """Delete the IKE SAs of ``rule_name`` (or of every rule); returns how many."""
        self.now = now
        if self.engine is None:
            return 0
        doomed = {c.ike_sa for c in self.children.values() if rule_name is None or c.rule == rule_name}
        for ike_sa in doomed:
            try:
                self.engine.delete(ike_sa, now)
            except LocalError:
                continue
        self._drain_engine(now)
        return len(doomed)

    def rekey(self, rule_name: str, now: float, *, ike: bool = False) -> int:
        """Rekey the Child SAs of ``rule_name`` (or their IKE SAs with ``ike``);
        returns how many rekeys started."""
        self.now = now
        if self.engine is None:
            return 0
        started = 0
        children = [c for c in self.children.values() if c.rule == rule_name]
        targets = {c.ike_sa for c in children} if ike else {(c.ike_sa, c.handle) for c in children}
        for target in targets:
            try:
                if isinstance(target, tuple):
                    self.engine.rekey_child(target[0], target[1], now)
                else:
                    self.engine.rekey_ike(target, now)
                started += 1
            except LocalError:
                continue
        self._drain_engine(now)
        return started

    def start_rules(self, now: float) -> None:
        """Negotiate every rule with ``start = "start"`` (at load)."""
        for rule in self.policy.rules:
            if rule.start == "start" and rule.name in self._configs:
                self.initiate(rule.name, now)

    # -- time ----------------------------------------------------------------

    def handle_timer(self, now: float) -> None:
        self.timer_version += 1
        self.now = now
        if self.engine is not None:
            self.engine.handle_timer(now)
            self._drain_engine(now)
        for key, pending in list(self._pending.items()):
            if now >= pending.deadline:
                del self._pending[key]
                self._give_up(pending, f"no SA within {self.acquire_timeout:g} s")
        for peer, at in list(self._keepalive_at.items()):
            if now >= at:
                # RFC 3948 §2.3: keep the NAT mapping alive
                self._transmit.append(Outgoing(NAT_KEEPALIVE, peer, NAT_T_PORT))
                self._keepalive_at[peer] = now + self.keepalive_interval
                self.keepalives_sent += 1
        self._gauges()

    # -- engine events -------------------------------------------------------

    def _drain_engine(self, now: float) -> None:
        self.timer_version += 1
        assert self.engine is not None
        while (event := self.engine.next_event()) is not None:
            self._on_event(event, now)
        self._gauges()

    def _on_event(self, event: Event, now: float) -> None:
        on_engine_event(self, event, now)

    def _sa_events(self, child: ChildInfo, now: float) -> None:
        events = child.outbound.take_events() + child.inbound.take_events()
        if not events:
            return
        for ev in events:
            if self.engine is None or child.handle not in self.children:
                continue
            try:
                if isinstance(ev, SoftLifetimeExpired):
                    self.engine.rekey_child(child.ike_sa, child.handle, now)
                elif isinstance(ev, HardLifetimeExpired):
                    self.engine.expire_child(child.ike_sa, child.handle, now,
                                             f"hard lifetime passed ({ev.direction} bytes)")
            except LocalError:
                continue
        if self.engine is not None:
            self._drain_engine(now)

    # -- failures ------------------------------------------------------------

    def _give_up(self, pending: _Pending, reason: str) -> None:
        rule = pending.rule
        self._failed(rule.name, reason)
        if rule.filter_action.allow_unsecured_fallback:
            # the peer does not support IPsec: fall back to clear text (a "soft" SA)
            self.stats.inc("main_mode", "soft_associations")
            for packet in pending.packets:
                self._transmit.append(Outgoing(packet, (pending.peer, 0), 0))
            self._emit("fallback", rule.name, pending.peer, "unsecured fallback: sending in clear text")
        elif pending.packets:
            self._emit(
                "dropped",
                rule.name,
                pending.peer,
                f"{len(pending.packets)} packet(s) dropped: no SA and no unsecured fallback",
            )

    def _failed(self, rule: str, reason: str) -> None:
        totals = self.stats.rule(rule)
        totals.last_failure = reason
        if not any(c.rule == rule for c in self.children.values()):
            totals.state = "down"

    def _gauges(self) -> None:
        update_gauges(self)

    def _emit(
        self, kind: str, rule: str | None, peer: str | None, detail: str, ike_event: Event | None = None
    ) -> None:
        self._events.append(AgentEvent(kind, rule, peer, detail, ike_event))
