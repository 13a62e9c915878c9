"""One IKE SA: its keys, message IDs, retransmission and response cache.

The exchange logic lives in the ``exchange_*`` modules; this module moves
messages in and out (RFC 7296 §2.1–2.3) and dispatches a received message
through :data:`secpath.ike.state.TRANSITIONS`:

* requests: window of one; the previous response is resent for a duplicate
  request (§2.1); anything else with a wrong message ID is dropped;
* responses: only for the outstanding request, anything else is dropped;
* our requests wait in a queue while one is outstanding, and are resent
  with exponential back-off until a bounded number of tries (§2.4).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Literal, Protocol, cast

from secpath.crypto.dh import DhPrivateKey
from secpath.crypto.kdf import ChildSaKeys, IkeSaKeys
from secpath.crypto.prf import prf
from secpath.crypto.sk import IntegrityError, SkCipher
from secpath.errors import LocalError, ParseError, RemoteError
from secpath.ike.auth import Identity
from secpath.ike.config import IkeConfig
from secpath.ike.constants import ExchangeType, NotifyType, PayloadType
from secpath.ike.events import (
    ChildSaDeleted,
    ChildSaInstalled,
    EspSaParameters,
    Event,
    IkeSaFailed,
)
from secpath.ike.fragment import FragmentReassembler, encode_fragments
from secpath.ike.message import Header, Message, decode_message, encode_message
from secpath.ike.payloads import NotifyPayload, Payload
from secpath.ike.proposal import EspSuite, IkeSuite
from secpath.ike.selectors import TrafficSelector
from secpath.ike.state import State, Step, lookup

if TYPE_CHECKING:
    from secpath.ike.exchange_kerberos import KerberosExchange

__all__ = ["NAT_T_PORT", "ChildSa", "Context", "IkeSa", "Outstanding", "Request"]

NAT_T_PORT = 4500  # RFC 3948 §2.2
Address = tuple[str, int]
Rng = Callable[[int], bytes]


@cache
def _steps() -> dict[Step, Callable[[IkeSa, Message, float], State | None]]:
    """The step handlers (:mod:`secpath.ike.steps` imports this module, so
    the table is fetched on first use, once, not imported per message)."""
    from secpath.ike.steps import STEPS

    return STEPS


class _Opener:
    """Opens SK payloads and remembers whether one verified: a parse error
    after that is the authenticated peer's, before it anyone's."""

    __slots__ = ("sk", "verified")

    def __init__(self, sk: SkCipher) -> None:
        self.sk = sk
        self.verified = False

    def open(self, prefix: bytes, sealed: bytes) -> bytes:
        plain = self.sk.open(prefix, sealed)
        self.verified = True
        return plain


class Context(Protocol):
    """What an IKE SA needs from its engine."""

    rng: Rng

    def emit(self, event: Event) -> None: ...
    def send(self, data: bytes, peer: Address, local_port: int) -> None: ...
    def child_spi(self) -> int: ...
    def register(self, sa: IkeSa) -> None: ...
    def invalid_spi_reported(self, sa: IkeSa, spi: int, now: float) -> None: ...


@dataclass(slots=True)
class ChildSa:
    """One Child SA pair, ours to track (RFC 7296 §1.3)."""

    inbound_spi: int
    outbound_spi: int
    suite: EspSuite
    keys: ChildSaKeys
    mode: Literal["tunnel", "transport"]
    local_ts: tuple[TrafficSelector, ...]
    remote_ts: tuple[TrafficSelector, ...]
    exchange_initiator: bool  # we sent the request that created it
    nonces: tuple[bytes, bytes]  # (Ni, Nr) of the exchange that created it
    pair_index: int  # which filter of the rule it serves
    soft_at: float
    hard_at: float
    rekeying: bool = False  # our CREATE_CHILD_SA rekey of it is outstanding
    deleting: bool = False  # our Delete of it is outstanding
    replaced: bool = False  # a rekey replaced it; its Delete is pending
    peer_rekey: ChildSa | None = None  # the peer's rekey of it, during our own (§2.8.1)
    announced: bool = True  # a ChildSaInstalled/Rekeyed event was emitted for it


@dataclass(slots=True)
class Request:
    """A request we want to send: ``build`` makes its payloads when it is
    its turn (window of one), ``on_response`` handles the answer."""

    exchange: int
    kind: str  # "dpd", "delete-ike", "delete-child", "rekey-child", "new-child", "rekey-ike"
    build: Callable[[], Sequence[Payload]]
    on_response: Callable[[Message, float], None]
    on_timeout: Callable[[], None] | None = None


@dataclass(slots=True)
class Outstanding:
    message_id: int
    datagrams: tuple[bytes, ...]
    request: Request | None
    sent_at: float
    next_at: float
    tries: int = 1


@dataclass(slots=True)
class IkeSa:
    """State of one IKE SA; ``initiator`` is the *original* initiator role."""

    ctx: Context
    configs: tuple[IkeConfig, ...]  # candidates; one after IKE_AUTH
    initiator: bool
    spi_i: bytes
    spi_r: bytes
    peer: Address
    local_address: str
    local_port: int
    state: State
    created: float
    suite: IkeSuite | None = None
    keys: IkeSaKeys | None = None
    sk_in: SkCipher | None = None
    sk_out: SkCipher | None = None
    ni: bytes = b""
    nr: bytes = b""
    dh: DhPrivateKey | None = None
    init_request: bytes = b""  # RealMessage1 (RFC 7296 §2.15)
    init_response: bytes = b""  # RealMessage2
    cookie: bytes = b""
    cookie_tries: int = 0
    ke_retries: int = 0
    nat_local: bool = False
    nat_remote: bool = False
    local_id: Identity | None = None
    remote_id: Identity | None = None
    peer_hashes: tuple[int, ...] = ()
    offered_esp: tuple[EspSuite, ...] = ()
    first_child_spi: int = 0
    next_request_id: int = 0
    outstanding: Outstanding | None = None
    queue: list[Request] = field(default_factory=list)
    peer_next_id: int = 0
    last_response: tuple[int, tuple[bytes, ...]] | None = None
    peer_fragmentation: bool = False  # IKEV2_FRAGMENTATION_SUPPORTED seen (RFC 7383 §2.3)
    reassembler: FragmentReassembler = field(default_factory=FragmentReassembler)
    last_received: float = 0.0
    children: dict[int, ChildSa] = field(default_factory=dict)
    soft_at: float = float("inf")
    hard_at: float = float("inf")
    rekeying: bool = False
    successor: IkeSa | None = None
    peer_rekey: IkeSa | None = None  # the peer's IKE rekey, during our own (§2.8.2)
    closed_reason: str = ""
    raw_in: bytes = b""  # the datagram being handled (RealMessage2 for §2.15)
    # the Kerberos IKE_AUTH round trips in progress (docs/kerberos.md)
    kerberos: KerberosExchange | None = None
    # set by the engine on a responder SA it counts as half-open (RFC 7296
    # §2.6): called once, when the SA leaves INIT_DONE for good
    # (authenticated, failed, timed out or deleted)
    leave_half_open: Callable[[], None] | None = None

    # -- identity ------------------------------------------------------------------

    @property
    def our_spi(self) -> bytes:
        return self.spi_i if self.initiator else self.spi_r

    @property
    def handle(self) -> int:
        return int.from_bytes(self.our_spi, "big")

    @property
    def config(self) -> IkeConfig:
        return self.configs[0]

    @property
    def udp_encapsulated(self) -> bool:
        return self.nat_local or self.nat_remote or self.config.force_udp_encapsulation

    def prf(self, key: bytes, data: bytes) -> bytes:
        assert self.suite is not None
        return prf(self.suite.prf, key, data)

    # -- sending --------------------------------------------------------------------

    def _header(self, exchange: int, message_id: int, response: bool) -> Header:
        return Header(self.spi_i, self.spi_r, exchange, message_id,
                      initiator=self.initiator, response=response)

    def _encode(self, header: Header, payloads: Sequence[Payload], encrypted: bool) -> bytes:
        message = Message(header, tuple(payloads), encrypted=encrypted)
        if encrypted:
            return encode_message(message, self.sk_out, self.ctx.rng)
        return encode_message(message)

    def encode(self, header: Header, payloads: Sequence[Payload],
               encrypted: bool = True) -> tuple[bytes, ...]:
        """The datagrams of one message: SKF fragments when both ends support
        RFC 7383 and the message is larger than ``fragment_size``."""
        data = self._encode(header, payloads, encrypted)
        limit = self.config.fragment_size
        if encrypted and self.peer_fragmentation and len(data) > limit \
                and self.sk_out is not None:
            message = Message(header, tuple(payloads), encrypted=True)
            return tuple(encode_fragments(message, self.sk_out, self.ctx.rng, limit))
        return (data,)

    def transmit(self, *datagrams: bytes) -> None:
        for data in datagrams:
            self.ctx.send(data, self.peer, self.local_port)

    def request(self, req: Request, now: float) -> None:
        """Queue ``req``; it goes out when no other request is outstanding."""
        self.queue.append(req)
        self.pump(now)

    def pump(self, now: float) -> None:
        if self.outstanding is not None or self.state not in (
            State.ESTABLISHED, State.REKEYED, State.DELETING
        ):
            return
        while self.queue and self.outstanding is None:
            req = self.queue.pop(0)
            payloads = req.build()
            header = self._header(req.exchange, self.next_request_id, response=False)
            self.send_request(self.encode(header, payloads), req, now)

    def send_request(self, datagrams: tuple[bytes, ...], req: Request | None,
                     now: float) -> None:
        timing = self.config.timing
        self.outstanding = Outstanding(
            self.next_request_id, datagrams, req, now, now + timing.retransmit_timeout
        )
        self.transmit(*datagrams)

    def respond(self, header: Header, payloads: Sequence[Payload], encrypted: bool = True) -> None:
        datagrams = self.encode(self._header(header.exchange_type, header.message_id, True),
                                payloads, encrypted)
        self.last_response = (header.message_id, datagrams)
        self.peer_next_id = header.message_id + 1
        self.transmit(*datagrams)

    # -- receiving ------------------------------------------------------------------

    def receive(self, data: bytes, header: Header, peer: Address, local_port: int,
                now: float) -> None:
        """A datagram for this SA (its SPIs matched).  Never raises."""
        if self.state is State.CLOSED:
            return
        if header.response:
            out = self.outstanding
            if out is None or header.message_id != out.message_id:
                return  # RFC 7296 §2.3: not a response to anything we sent
        else:
            cached = self.last_response
            if cached is not None and header.message_id == cached[0]:
                # RFC 7296 §2.1: duplicate request; RFC 7383 §2.6.1: a fragmented
                # one is answered once, on its first fragment
                if data[16] != PayloadType.SKF or data[32:34] == b"\x00\x01":
                    self.transmit(*cached[1])
                return
            if header.message_id != self.peer_next_id:
                return
        opener = _Opener(self.sk_in) if self.sk_in is not None else None
        try:
            message = decode_message(data, cast(SkCipher, opener), header=header)
        except IntegrityError:
            return  # RFC 7296 §2.21.1: silently discard
        except ParseError as exc:
            # RFC 7296 §2.21.2: only an authenticated request gets INVALID_SYNTAX
            if not header.response and opener is not None and opener.verified \
                    and exc.notify is not None:
                self.respond(header, [NotifyPayload(exc.notify)])
            return
        if header.initiator == self.initiator:
            return  # RFC 7296 §3.1: the I flag must be the peer's role
        if opener is not None and not message.encrypted:
            # past IKE_SA_INIT every message is protected (RFC 7296 §3.14); an
            # unprotected one (say INVALID_IKE_SPI, §2.21.4) proves nothing
            return
        self.last_received = now
        self.raw_in = data
        if local_port == NAT_T_PORT and (peer, local_port) != (self.peer, self.local_port):
            # RFC 7296 §2.23: the peer floated to 4500, or its NAT mapping changed
            self.peer, self.local_port = peer, local_port
        if message.fragment is not None:
            try:
                whole = self.reassembler.add(message)  # RFC 7383 §2.6
            except ParseError:
                return
            if whole is None:
                return
            message = whole
        critical = message.unsupported_critical_notify()
        if critical is not None:
            if not header.response:
                self.respond(header, [critical], encrypted=message.encrypted)
            return
        self.dispatch(message, now)

    def dispatch(self, message: Message, now: float) -> None:
        header = message.header
        transition = lookup(self.state, header.exchange_type, header.response)
        if transition is None:
            return  # fail closed: not legal in this state
        if header.response:
            out = self.outstanding
            self.outstanding = None
            self.next_request_id += 1
            if out is not None and out.request is not None:
                try:
                    out.request.on_response(message, now)
                except RemoteError as exc:
                    self.fail(str(exc), exc.notify)
                except LocalError as exc:  # e.g. a DH group our policy refuses
                    self.fail(str(exc), None)
                self.pump(now)
                return
        try:
            next_state = _steps()[transition.step](self, message, now)
        except RemoteError as exc:
            if not header.response:
                self.respond(header, [NotifyPayload(exc.notify or NotifyType.INVALID_SYNTAX)])
            elif exc.notify == NotifyType.AUTHENTICATION_FAILED and self.sk_out is not None:
                # RFC 7296 §2.21.2: the responder failed our check; tell it in
                # a separate INFORMATIONAL (not retransmitted: we are closing)
                info = self._header(ExchangeType.INFORMATIONAL, self.next_request_id, False)
                self.transmit(*self.encode(info, [NotifyPayload(exc.notify)]))
            self.fail(str(exc), exc.notify)
            return
        except LocalError as exc:
            if not header.response:
                self.respond(header, [NotifyPayload(NotifyType.NO_PROPOSAL_CHOSEN)])
            self.fail(str(exc), None)
            return
        if self.state is State.CLOSED:
            return
        if next_state is not None:
            self.state = next_state
        elif transition.next_state is not None:
            self.state = transition.next_state
        if self.leave_half_open is not None:
            self._settle_half_open()
        self.pump(now)

    def _settle_half_open(self) -> None:
        if self.state is not State.INIT_DONE and self.leave_half_open is not None:
            leave, self.leave_half_open = self.leave_half_open, None
            leave()

    # -- timers ---------------------------------------------------------------------

    def next_timer(self) -> float | None:
        if self.state is State.CLOSED:
            return None
        times = [self.soft_at, self.hard_at]
        if self.outstanding is not None:
            times.append(self.outstanding.next_at)
        elif self.state is State.ESTABLISHED and self.config.timing.dpd_interval is not None:
            times.append(self.last_received + self.config.timing.dpd_interval)
        if self.state is State.INIT_DONE:
            times.append(self.created + self.config.timing.half_open_timeout)
        for child in self.children.values():
            times.extend((child.soft_at, child.hard_at))
        finite = [t for t in times if t != float("inf")]
        return min(finite) if finite else None

    def retransmit_due(self, now: float) -> None:
        out = self.outstanding
        if out is None or now < out.next_at:
            return
        timing = self.config.timing
        if out.tries >= timing.retransmit_tries:
            self.outstanding = None
            if out.request is not None and out.request.on_timeout is not None:
                out.request.on_timeout()
            self.fail("peer did not answer (retransmissions exhausted)", None)
            return
        out.tries += 1
        out.next_at = now + timing.retransmit_timeout * timing.retransmit_base ** (out.tries - 1)
        self.transmit(*out.datagrams)

    # -- ending ---------------------------------------------------------------------

    def fail(self, reason: str, notify: int | None,
             local_proposals: tuple[str, ...] = (), remote_proposals: tuple[str, ...] = ()
             ) -> None:
        """Close the SA after an error; children go with it."""
        if self.state is State.CLOSED:
            return
        self.ctx.emit(IkeSaFailed(self.handle, self.peer, reason, notify,
                                  local_proposals, remote_proposals))
        self.close(reason, emit=False)

    def close(self, reason: str, *, emit: bool = True) -> None:
        from secpath.ike.events import IkeSaDeleted

        if self.state is State.CLOSED:
            return
        for child in list(self.children.values()):
            self.drop_child(child, reason)
        self.state = State.CLOSED
        self.closed_reason = reason
        if self.leave_half_open is not None:
            self._settle_half_open()
        self.outstanding = None
        self.queue.clear()
        if emit:
            self.ctx.emit(IkeSaDeleted(self.handle, reason))

    def drop_child(self, child: ChildSa, reason: str) -> None:
        if self.children.pop(child.inbound_spi, None) is not None and child.announced:
            self.ctx.emit(ChildSaDeleted(self.handle, child.inbound_spi, child.inbound_spi,
                                         child.outbound_spi, reason))

    # -- Child SA parameters -----------------------------------------------------

    def esp_parameters(self, child: ChildSa) -> tuple[EspSaParameters, EspSaParameters]:
        """(inbound, outbound) arguments of ``secpath.esp.SecurityAssociation``."""
        k = child.keys
        if child.exchange_initiator:
            out_keys, in_keys = (k.encryption_i, k.integrity_i), (k.encryption_r, k.integrity_r)
        else:
            out_keys, in_keys = (k.encryption_r, k.integrity_r), (k.encryption_i, k.integrity_i)
        peer_host, peer_port = self.peer
        tunnel = child.mode == "tunnel"
        udp = self.udp_encapsulated
        suite, window = child.suite, self.config.replay_window
        inbound = EspSaParameters(
            spi=child.inbound_spi, transform=suite.transform, encryption_key=in_keys[0],
            integrity_key=in_keys[1], mode=child.mode,
            tunnel=(peer_host, self.local_address) if tunnel else None,
            udp_encapsulation=(peer_port, NAT_T_PORT) if udp else None,
            esn=suite.esn, replay_window=window,
        )
        outbound = EspSaParameters(
            spi=child.outbound_spi, transform=suite.transform, encryption_key=out_keys[0],
            integrity_key=out_keys[1], mode=child.mode,
            tunnel=(self.local_address, peer_host) if tunnel else None,
            udp_encapsulation=(NAT_T_PORT, peer_port) if udp else None,
            esn=suite.esn, replay_window=window,
        )
        return inbound, outbound

    def installed(self, child: ChildSa) -> ChildSaInstalled:
        inbound, outbound = self.esp_parameters(child)
        return ChildSaInstalled(
            self.handle, child.inbound_spi, self.config.name, inbound, outbound,
            child.local_ts, child.remote_ts, child.exchange_initiator,
        )
