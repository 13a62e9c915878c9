"""The sans-IO IKEv2 engine of one host (RFC 7296), driven like aioquic's
``QuicConnection``:

* ``receive_datagram(data, addr, now, local_port=500)`` for every UDP
  datagram that arrived on port 500 or 4500 (on 4500 with its non-ESP
  marker, RFC 3948 §2.2);
* ``handle_timer(now)`` when ``next_timer()`` is due;
* API calls: :meth:`initiate`, :meth:`rekey_child`, :meth:`rekey_ike`,
  :meth:`delete`, :meth:`dpd`;
* then :meth:`datagrams_to_send` and :meth:`next_event` give what to do.

No sockets, clock or ``os.urandom``: ``now`` is POSIX time in seconds (it
also dates certificate validation) and ``rng(n)`` is injected.

Lifetimes here are in seconds (``KeyExchange.lifetime_s`` for the IKE SA,
``SecurityMethod.lifetime_s`` for Child SAs; soft = ``rekey_fraction``).
IKEv2 does not negotiate lifetimes (RFC 7296 §2.8), and kilobyte lifetimes
are counted where the bytes are: the ESP SAs the agent builds
(``secpath.agent.child.esp_lifetime``) raise soft/hard lifetime events, on
which the agent calls :meth:`IkeEngine.rekey_child` / :meth:`IkeEngine.expire_child`.

A request for an IKE SA this engine does not know (not an IKE_SA_INIT) gets
an unprotected INVALID_IKE_SPI answer, rate-limited (RFC 7296 §2.21.4); an
ESP packet with an unknown SPI from a peer makes :meth:`IkeEngine.invalid_spi`
send INVALID_SPI over its IKE SA (§1.5).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from secpath._frozen import fast_init
from secpath.errors import LocalError, ParseError, RemoteError
from secpath.ike.config import IkeConfig
from secpath.ike.constants import ExchangeType, NotifyType
from secpath.ike.events import Event, IkeSaFailed
from secpath.ike.exchange_child import request_child
from secpath.ike.exchange_info import (
    drop_invalid_spi,
    expire_ike,
    request_delete_child,
    request_delete_ike,
    request_delete_spis,
    request_dpd,
    request_invalid_spi,
)
from secpath.ike.exchange_init import choose, cookie_value, respond_init, start_initiator
from secpath.ike.exchange_rekey import request_rekey_ike
from secpath.ike.message import Header, Message, decode_header, decode_message, encode_message
from secpath.ike.payloads import NotifyPayload
from secpath.ike.proposal import describe, ike_suites, select_ike
from secpath.ike.ratelimit import TokenBucket
from secpath.ike.sa import NAT_T_PORT, IkeSa
from secpath.ike.state import State
from secpath.secret import Secret

__all__ = ["IKE_PORT", "NAT_T_PORT", "Datagram", "IkeEngine"]

IKE_PORT = 500
NON_ESP_MARKER = bytes(4)  # RFC 3948 §2.2
Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class IkeKeyMaterial:
    """One IKE SA's SPIs, algorithms and SK_e/SK_a keys (RFC 7296 §2.14)."""

    spi_i: bytes
    spi_r: bytes
    encryption: str  # registry name
    integrity: str | None  # None with an AEAD cipher
    sk_ei: Secret
    sk_er: Secret
    sk_ai: Secret
    sk_ar: Secret


@fast_init
@dataclass(frozen=True, slots=True)
class Datagram:
    """A UDP datagram to send from ``source_port`` to ``destination``."""

    data: bytes
    destination: Address
    source_port: int


class IkeEngine:
    """All IKE SAs of one host, for the rules in ``configs``."""

    def __init__(self, configs: Sequence[IkeConfig], rng: Callable[[int], bytes], *,
                 local_address: str | None = None) -> None:
        if not configs:
            raise LocalError("IkeEngine: at least one rule configuration is needed")
        self.rng = rng
        self._configs = tuple(configs)
        first = self._configs[0]
        if local_address is None:
            if not first.local_addresses:
                raise LocalError("IkeEngine: no local address in the policy")
            local_address = str(first.local_addresses[0])
        self.local_address = local_address
        self._timing = first.timing
        self._sas: dict[bytes, IkeSa] = {}
        # responder SAs by (initiator SPI, peer): a repeated IKE_SA_INIT is
        # answered (or dropped) by its SA, never starts a second one (§2.1)
        self._responders: dict[tuple[bytes, Address], IkeSa] = {}
        # how many of them are half-open (INIT_DONE): each SA tells when it
        # leaves that state (IkeSa.leave_half_open), no scan per IKE_SA_INIT
        self._half_open = 0
        self._child_spis: set[int] = set()
        self._out: list[Datagram] = []
        self._events: deque[Event] = deque()
        self._cookie_secret = rng(32)
        # what the engine drops before any IKE SA sees it, for the monitor
        self.counters = {"invalid_packets": 0, "invalid_spis": 0, "invalid_cookies": 0,
                         "invalid_ike_spi_sent": 0, "invalid_spi_sent": 0, "notifies_limited": 0}
        self._invalid_ike_spi_budget = TokenBucket(self._timing.notify_rate,
                                                   self._timing.notify_burst)
        self._invalid_spi_budgets: dict[bytes, TokenBucket] = {}  # per IKE SA

    # -- the Context the IKE SAs use ----------------------------------------------

    def emit(self, event: Event) -> None:
        self._events.append(event)

    def send(self, data: bytes, peer: Address, local_port: int) -> None:
        if local_port == NAT_T_PORT:
            data = NON_ESP_MARKER + data
        self._out.append(Datagram(data, peer, local_port))

    def child_spi(self) -> int:
        while True:
            spi = int.from_bytes(self.rng(4), "big")
            if spi >= 256 and spi not in self._child_spis:  # RFC 4303 §2.1: 1-255 reserved
                self._child_spis.add(spi)
                return spi

    def register(self, sa: IkeSa) -> None:
        self._sas[sa.our_spi] = sa

    def invalid_spi_reported(self, sa: IkeSa, spi: int, now: float) -> None:
        """The peer of ``sa`` sent INVALID_SPI: the Child SA may hang off
        another IKE SA with the same peer and identity (one it re-made)."""
        others = [o for o in self._sas.values() if o is not sa and o.peer[0] == sa.peer[0]
                  and o.remote_id == sa.remote_id and o.state is State.ESTABLISHED]
        drop_invalid_spi([sa, *others], spi, now)

    def _making_children(self, peer: str) -> bool:
        """An exchange with ``peer`` that installs Child SAs is under way: the
        peer may already send on an SPI its answer has not brought us yet."""
        return any(
            o.peer[0] == peer and (o.state in (State.INIT_SENT, State.AUTH_SENT) or (
                o.outstanding is not None and o.outstanding.request is not None
                and o.outstanding.request.kind in ("new-child", "rekey-child", "rekey-ike")))
            for o in self._sas.values())

    def _new_spi(self) -> bytes:
        while True:
            spi = self.rng(8)
            if spi != bytes(8) and spi not in self._sas:
                return spi

    # -- outputs -------------------------------------------------------------------

    def datagrams_to_send(self) -> list[Datagram]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def next_timer(self) -> float | None:
        times = [t for sa in self._sas.values() if (t := sa.next_timer()) is not None]
        return min(times) if times else None

    # -- introspection ------------------------------------------------------------

    def ike_sa_state(self, ike_sa: int) -> State | None:
        sa = self._sas.get(ike_sa.to_bytes(8, "big"))
        return sa.state if sa is not None else None

    def child_sas(self, ike_sa: int) -> tuple[int, ...]:
        sa = self._sas.get(ike_sa.to_bytes(8, "big"))
        return tuple(sorted(sa.children)) if sa is not None else ()

    def ike_sas(self) -> tuple[int, ...]:
        return tuple(sorted(sa.handle for sa in self._sas.values()
                            if sa.state is not State.CLOSED))

    def fragments_waiting(self) -> int:
        """IKE messages received in part (RFC 7383 fragments), waiting for the rest."""
        return sum(sa.reassembler.in_progress for sa in self._sas.values())

    def negotiations(self) -> tuple[int, int]:
        """IKE SAs being negotiated: (started by us, started by the peer)."""
        ours = theirs = 0
        for sa in self._sas.values():
            if sa.state in (State.INIT_SENT, State.AUTH_SENT):
                ours += 1
            elif sa.state is State.INIT_DONE:
                theirs += 1
        return ours, theirs

    def key_material(self) -> tuple[IkeKeyMaterial, ...]:
        """The keys of every IKE SA that has them, for ``secpath keys`` (the
        one way keys leave the process: Wireshark's ikev2_decryption_table)."""
        out = []
        for sa in self._sas.values():
            if sa.keys is None or sa.suite is None or sa.state is State.CLOSED:
                continue
            out.append(IkeKeyMaterial(sa.spi_i, sa.spi_r, sa.suite.encryption, sa.suite.integrity,
                                      sa.keys.sk_ei, sa.keys.sk_er, sa.keys.sk_ai, sa.keys.sk_ar))
        return tuple(out)

    # -- API -----------------------------------------------------------------------

    def _sa(self, ike_sa: int) -> IkeSa:
        sa = self._sas.get(ike_sa.to_bytes(8, "big"))
        if sa is None or sa.state is State.CLOSED:
            raise LocalError(f"no IKE SA {ike_sa:#018x}")
        return sa

    def initiate(self, rule: str, now: float, peer: Address | None = None, *,
                 method: str | None = None) -> int:
        """Start IKE_SA_INIT for ``rule``; returns the IKE SA's handle.
        ``method``: which of the rule's configurations authenticates
        (``Credentials.method``), default the first."""
        cfg = next((c for c in self._configs if c.name == rule
                    and method in (None, c.credentials.method)), None)
        if cfg is None:
            raise LocalError(f"no rule {rule!r} in this engine"
                             + (f" with the {method} method" if method else ""))
        if peer is None:
            if cfg.peer is None:
                raise LocalError(f"rule {rule!r}: no peer address; pass peer=")
            peer = (str(cfg.peer), IKE_PORT)
        sa = IkeSa(ctx=self, configs=(cfg,), initiator=True, spi_i=self._new_spi(),
                   spi_r=bytes(8), peer=peer, local_address=self.local_address,
                   local_port=IKE_PORT, state=State.INIT_SENT, created=now, last_received=now)
        self.register(sa)
        start_initiator(sa, now)
        return sa.handle

    def rekey_child(self, ike_sa: int, child_sa: int, now: float) -> None:
        sa = self._sa(ike_sa)
        child = sa.children.get(child_sa)
        if child is None:
            raise LocalError(f"no Child SA {child_sa:#010x} in IKE SA {ike_sa:#018x}")
        if not (child.rekeying or child.deleting or child.replaced):
            child.soft_at = float("inf")
            request_child(sa, child.pair_index, now, old=child)

    def rekey_ike(self, ike_sa: int, now: float) -> None:
        sa = self._sa(ike_sa)
        sa.soft_at = float("inf")
        request_rekey_ike(sa, now)

    def delete(self, ike_sa: int, now: float, child_sa: int | None = None) -> None:
        """Delete a Child SA, or the IKE SA with all its Child SAs."""
        sa = self._sa(ike_sa)
        if child_sa is None:
            request_delete_ike(sa, now)
            return
        child = sa.children.get(child_sa)
        if child is None:
            raise LocalError(f"no Child SA {child_sa:#010x} in IKE SA {ike_sa:#018x}")
        request_delete_child(sa, child, now)

    def expire_child(self, ike_sa: int, child_sa: int, now: float, reason: str) -> None:
        """A Child SA passed a hard lifetime counted elsewhere (bytes, in the
        ESP SA): gone here at once, whatever the peer answers to our Delete
        (RFC 7296 §2.8), as with a lifetime in seconds."""
        sa = self._sa(ike_sa)
        child = sa.children.get(child_sa)
        if child is None:
            raise LocalError(f"no Child SA {child_sa:#010x} in IKE SA {ike_sa:#018x}")
        sa.drop_child(child, reason)
        request_delete_spis(sa, [child.inbound_spi.to_bytes(4, "big")], now)

    def dpd(self, ike_sa: int, now: float) -> None:
        request_dpd(self._sa(ike_sa), now)

    def invalid_spi(self, ike_sa: int, spi: int, now: float) -> bool:
        """An ESP packet from the peer of ``ike_sa`` named ``spi``, which we do
        not know: send INVALID_SPI (RFC 7296 §1.5), at most as often as
        ``Timing.notify_rate`` allows per IKE SA.  True if one was queued."""
        sa = self._sas.get(ike_sa.to_bytes(8, "big"))
        if sa is None or sa.state is not State.ESTABLISHED or self._making_children(sa.peer[0]):
            return False
        budget = self._invalid_spi_budgets.get(sa.our_spi)
        if budget is None:
            timing = sa.config.timing
            budget = self._invalid_spi_budgets[sa.our_spi] = TokenBucket(timing.notify_rate,
                                                                         timing.notify_burst)
        if not budget.take(now):
            self.counters["notifies_limited"] += 1
            return False
        self.counters["invalid_spi_sent"] += 1
        request_invalid_spi(sa, spi, now)
        return True

    # -- input ---------------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: Address, now: float,
                         local_port: int = IKE_PORT) -> None:
        if local_port == NAT_T_PORT:
            if data[:4] != NON_ESP_MARKER:
                return  # ESP (or a NAT keepalive): not ours, RFC 3948 §2.2
            data = data[4:]
        try:
            header = decode_header(data)
        except ParseError:
            self.counters["invalid_packets"] += 1
            return
        if header.major_version != 2:
            self.counters["invalid_packets"] += 1
            if header.major_version > 2 and not header.response \
                    and header.exchange_type == ExchangeType.IKE_SA_INIT:
                # RFC 7296 §2.5: drop it, and say which version we speak
                self._stateless(header, addr, local_port,
                                NotifyPayload(NotifyType.INVALID_MAJOR_VERSION))
            return
        if (header.exchange_type == ExchangeType.IKE_SA_INIT and not header.response
                and header.initiator and header.spi_r == bytes(8) and header.message_id == 0):
            self._init_request(data, header, addr, local_port, now)
            return
        our = header.spi_r if header.initiator else header.spi_i
        sa = self._sas.get(our)
        if sa is None:
            self.counters["invalid_spis"] += 1  # the guide's "Invalid Cookies Received"
            if (not header.response and header.exchange_type != ExchangeType.IKE_SA_INIT
                    and header.spi_i not in self._sas and header.spi_r not in self._sas):
                # (SPIs of a known IKE SA with the wrong I flag are only dropped, §3.1)
                self._invalid_ike_spi(header, addr, local_port, now)
        else:
            sa.receive(data, header, addr, local_port, now)
            if sa.state is State.CLOSED:
                self._cleanup()

    def handle_timer(self, now: float) -> None:
        for sa in list(self._sas.values()):
            self._sa_timers(sa, now)
        self._cleanup()

    def _sa_timers(self, sa: IkeSa, now: float) -> None:
        sa.retransmit_due(now)
        timing = sa.config.timing
        if sa.state is State.INIT_DONE and now >= sa.created + timing.half_open_timeout:
            sa.close("half-open IKE SA timed out", emit=False)
            return
        if sa.state is State.REKEYED and now >= sa.hard_at:
            sa.close("rekeyed", emit=False)
            return
        if sa.state is not State.ESTABLISHED:
            return
        if now >= sa.hard_at:
            expire_ike(sa, "IKE SA lifetime expired")  # RFC 7296 §2.8
            return
        if now >= sa.soft_at:
            sa.soft_at = float("inf")
            request_rekey_ike(sa, now)
        for child in list(sa.children.values()):
            if now >= child.hard_at:
                # RFC 7296 §2.8: past its hard lifetime the SA is gone here,
                # whatever the peer answers to our Delete
                sa.drop_child(child, "hard lifetime expired")
                request_delete_spis(sa, [child.inbound_spi.to_bytes(4, "big")], now)
            elif now >= child.soft_at:
                child.soft_at = float("inf")
                if not (child.rekeying or child.deleting or child.replaced):
                    request_child(sa, child.pair_index, now, old=child)
        interval = timing.dpd_interval
        if (interval is not None and sa.outstanding is None and not sa.queue
                and now >= sa.last_received + interval):
            request_dpd(sa, now)  # RFC 7296 §2.4

    def _cleanup(self) -> None:
        for spi, sa in list(self._sas.items()):
            if sa.state is State.CLOSED:
                del self._sas[spi]
                self._invalid_spi_budgets.pop(spi, None)
                self._child_spis.difference_update(sa.children)
        for key, sa in list(self._responders.items()):
            if sa.state is State.CLOSED:
                del self._responders[key]

    # -- IKE_SA_INIT responder (stateless until a suite is chosen) ------------------

    def _stateless(self, header: Header, addr: Address, local_port: int,
                   notify: NotifyPayload) -> None:
        reply = Header(header.spi_i, bytes(8), ExchangeType.IKE_SA_INIT, 0,
                       initiator=False, response=True)
        self.send(encode_message(Message(reply, (notify,))), addr, local_port)

    def _invalid_ike_spi(self, header: Header, addr: Address, local_port: int,
                         now: float) -> None:
        """RFC 7296 §2.21.4: a request for an IKE SA we do not know may be
        answered, unprotected, to where it came from, with its SPIs and
        Message ID and an INVALID_IKE_SPI notify (a response never is)."""
        if not self._invalid_ike_spi_budget.take(now):
            self.counters["notifies_limited"] += 1
            return
        self.counters["invalid_ike_spi_sent"] += 1
        reply = Header(header.spi_i, header.spi_r, header.exchange_type, header.message_id,
                       initiator=not header.initiator, response=True)
        notify = NotifyPayload(NotifyType.INVALID_IKE_SPI)
        self.send(encode_message(Message(reply, (notify,))), addr, local_port)

    def _init_request(self, data: bytes, header: Header, addr: Address, local_port: int,
                      now: float) -> None:
        existing = self._responders.get((header.spi_i, addr))
        if existing is not None:
            existing.receive(data, header, addr, local_port, now)  # §2.1: resend
            return
        try:
            message = decode_message(data, header=header)  # the header is decoded already
        except ParseError:
            return
        critical = message.unsupported_critical_notify()
        if critical is not None:  # RFC 7296 §2.5
            self._stateless(header, addr, local_port, critical)
            return
        # rules for this peer address first; behind a NAT the address is not
        # the rule's, and IKE_AUTH picks the rule by identity (RFC 7296 §2.23)
        candidates = tuple(c for c in self._configs if c.peer is not None
                           and str(c.peer) == addr[0]) or self._configs
        try:
            sa_p, ke, nonce = choose(message)
        except RemoteError as exc:
            self._stateless(header, addr, local_port,
                            NotifyPayload(exc.notify or NotifyType.INVALID_SYNTAX))
            return
        if self._half_open >= self._timing.half_open_threshold:
            # RFC 7296 §2.6: answer with a COOKIE until the peer proves its address
            expected = cookie_value(self._cookie_secret, nonce.data, addr[0], header.spi_i)
            got = message.notify(NotifyType.COOKIE)
            if got is None or got.data != expected:
                if got is not None:
                    self.counters["invalid_cookies"] += 1
                self._stateless(header, addr, local_port,
                                NotifyPayload(NotifyType.COOKIE, expected))
                return
        suites = ike_suites(candidates[0].key_exchange)
        picked = select_ike(sa_p.proposals, suites)
        if picked is None:
            self.emit(IkeSaFailed(
                0, addr, "NO_PROPOSAL_CHOSEN: no proposal of the peer matches ours",
                NotifyType.NO_PROPOSAL_CHOSEN, tuple(s.name for s in suites),
                describe(sa_p.proposals)))
            self._stateless(header, addr, local_port,
                            NotifyPayload(NotifyType.NO_PROPOSAL_CHOSEN))
            return
        suite = picked[1]
        if ke.dh_group != suite.dh_group:
            # RFC 7296 §1.2: tell the initiator which group we want
            self._stateless(header, addr, local_port, NotifyPayload(
                NotifyType.INVALID_KE_PAYLOAD, suite.dh_group.to_bytes(2, "big")))
            return
        sa = IkeSa(ctx=self, configs=candidates, initiator=False, spi_i=header.spi_i,
                   spi_r=self._new_spi(), peer=addr, local_address=self.local_address,
                   local_port=local_port, state=State.INIT_DONE, created=now, suite=suite,
                   last_received=now)
        try:
            respond_init(sa, message, data, ke, nonce, picked[0])
        except RemoteError as exc:
            self._stateless(header, addr, local_port,
                            NotifyPayload(exc.notify or NotifyType.INVALID_SYNTAX))
            return
        self.register(sa)
        self._responders[(header.spi_i, addr)] = sa
        self._half_open += 1
        sa.leave_half_open = self._left_half_open

    def _left_half_open(self) -> None:
        self._half_open -= 1
