"""One ISAKMP SA (IKEv1 phase 1) with its quick-mode exchanges and the
IPsec SA pairs made under it: state, keys, IV chains, retransmission.

The handlers live in :mod:`main_mode`, :mod:`quick_mode` and
:mod:`informational`; this module sends and opens their messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal, Protocol

from secpath.crypto.dh import DhPrivateKey
from secpath.crypto.prf import prf
from secpath.errors import ParseError, RemoteError
from secpath.ike.auth import Identity
from secpath.ike.config import IkeConfig
from secpath.ike.events import ChildSaDeleted, EspSaParameters, Event, IkeSaDeleted
from secpath.ike.selectors import TrafficSelector
from secpath.ike.v1.codec import (
    HEADER_BYTES,
    HashPayload,
    Header,
    Payload,
    RawPayload,
    decode_chain,
    encode_chain,
    encode_header,
)
from secpath.ike.v1.constants import ExchangeType, Flag
from secpath.ike.v1.fragments import Reassembly, encode_fragments
from secpath.ike.v1.keys import Phase1Cipher, Phase1Keys, phase2_iv
from secpath.ike.v1.proposals import Phase1Suite, Phase2Suite
from secpath.secret import Secret

__all__ = ["Child", "Context", "Phase1Sa", "QuickMode", "State"]

NAT_T_PORT = 4500
Address = tuple[str, int]


class Context(Protocol):
    rng: Callable[[int], bytes]

    def emit(self, event: Event) -> None: ...

    def send(self, data: bytes, peer: Address, local_port: int) -> None: ...

    def child_spi(self) -> int: ...

    def adopt(self, old: Phase1Sa) -> bool: ...

    def initial_contact(self, sa: Phase1Sa) -> None: ...

    def first_contact(self, sa: Phase1Sa) -> bool: ...


class State(Enum):
    """Main mode (RFC 2409 §5): I1/I3/I5 after the initiator's messages 1/3/5,
    R2/R4 after the responder's 2/4."""

    MM_I1 = "mm-sa-sent"
    MM_I3 = "mm-ke-sent"
    MM_I5 = "mm-id-sent"
    MM_R2 = "mm-sa-answered"
    MM_R4 = "mm-ke-answered"
    ESTABLISHED = "established"
    CLOSED = "closed"


@dataclass
class Child:
    """An IPsec SA pair from one quick mode."""

    inbound_spi: int
    outbound_spi: int
    suite: Phase2Suite
    keys: tuple[Secret, Secret, Secret, Secret]  # in enc, in integ, out enc, out integ
    local_ts: TrafficSelector
    remote_ts: TrafficSelector
    initiator: bool
    pair_index: int
    soft_at: float
    hard_at: float
    replaced: bool = False


@dataclass
class QuickMode:
    """A quick-mode exchange in progress (RFC 2409 §5.5)."""

    message_id: int
    initiator: bool
    iv: bytes
    nonce_i: bytes = b""
    nonce_r: bytes = b""
    spi: int = 0  # our inbound SPI
    suites: tuple[Phase2Suite, ...] = ()
    dh: DhPrivateKey | None = None
    local_ts: TrafficSelector | None = None
    remote_ts: TrafficSelector | None = None
    pair_index: int = 0
    old: int | None = None  # the Child SA this one rekeys
    child: Child | None = None  # the responder's, installed at HASH(3)
    last_in: bytes = b""
    last_out: bytes = b""
    sent_at: float = 0.0
    tries: int = 0
    retransmit_at: float = float("inf")
    finished: float | None = None  # the initiator's: HASH(3) sent, kept to resend it


@dataclass
class Phase1Sa:
    ctx: Context
    configs: tuple[IkeConfig, ...]
    initiator: bool
    cky_i: bytes
    cky_r: bytes
    peer: Address
    local_address: str
    local_port: int
    state: State
    created: float
    last_received: float
    suite: Phase1Suite | None = None
    sai_b: bytes = b""  # the initiator's SA payload body (RFC 2409 §5)
    dh: DhPrivateKey | None = None
    gxi: bytes = b""
    gxr: bytes = b""
    ni: bytes = b""
    nr: bytes = b""
    gxy: Secret | None = None
    keys: Phase1Keys | None = None
    cipher: Phase1Cipher | None = None
    iv: bytes = b""  # the phase-1 CBC chain: last ciphertext block
    peer_dpd: bool = False
    peer_nat_t: bool = False
    nat_local: bool = False
    nat_remote: bool = False
    remote_id: Identity | None = None
    local_id_str: str = ""
    quick: dict[int, QuickMode] = field(default_factory=dict)
    children: dict[int, Child] = field(default_factory=dict)
    used_message_ids: set[int] = field(default_factory=set)
    last_in: bytes = b""
    last_out: bytes = b""
    sent_at: float = 0.0
    tries: int = 0
    retransmit_at: float = float("inf")
    soft_at: float = float("inf")
    hard_at: float = float("inf")
    dpd_seq: int = 0
    dpd_outstanding: int | None = None
    dpd_sent_at: float = 0.0
    dpd_tries: int = 0
    replaced_by: int | None = None
    replaces: int | None = None
    closed_reason: str = ""
    peer_fragmentation: bool = False  # the peer sent the FRAGMENTATION vendor ID
    fragment_id: int = 0  # of the last message we fragmented
    reassembly: Reassembly = field(default_factory=Reassembly)

    @property
    def config(self) -> IkeConfig:
        return self.configs[0]

    @property
    def our_cookie(self) -> bytes:
        return self.cky_i if self.initiator else self.cky_r

    @property
    def handle(self) -> int:
        return int.from_bytes(self.our_cookie, "big")

    @property
    def udp_encapsulated(self) -> bool:
        return self.local_port == NAT_T_PORT

    # -- messages ---------------------------------------------------------------

    def _transmit(self, data: bytes) -> None:
        limit = self.config.fragment_size - (4 if self.udp_encapsulated else 0)  # non-ESP marker
        if self.peer_fragmentation and len(data) > limit and len(data) > HEADER_BYTES \
                and data[18] == ExchangeType.IDENTITY_PROTECTION and data[19] & Flag.ENCRYPTION:
            # main mode 5/6 (certificates) in fragments both ends announced
            self.fragment_id = self.fragment_id % 0xFFFF + 1
            for piece in encode_fragments(data, limit, self.fragment_id):
                self.ctx.send(piece, self.peer, self.local_port)
            return
        self.ctx.send(data, self.peer, self.local_port)

    def send_plain(self, exchange: int, payloads: Sequence[Payload], now: float) -> None:
        first, body = encode_chain(payloads)
        data = encode_header(Header(self.cky_i, self.cky_r, exchange, 0, 0), first, len(body)) + body
        self.last_out = data
        self._transmit(data)
        self._arm(now)

    def seal(self, exchange: int, message_id: int, payloads: Sequence[Payload], iv: bytes
             ) -> tuple[bytes, bytes]:
        """The encrypted message and the IV that follows it (RFC 2409 Appendix B)."""
        assert self.cipher is not None
        first, body = encode_chain(payloads)
        sealed = self.cipher.encrypt(body, iv)
        header = Header(self.cky_i, self.cky_r, exchange, Flag.ENCRYPTION, message_id)
        return encode_header(header, first, len(sealed)) + sealed, sealed[-self.cipher.block:]

    def open(self, data: bytes, header: Header, iv: bytes) -> tuple[tuple[RawPayload, ...], bytes]:
        """Decrypt and decode; returns the payloads and the next IV."""
        if self.cipher is None or not header.flags & Flag.ENCRYPTION:
            raise ParseError("expected an encrypted message")
        body = data[HEADER_BYTES:]
        plain = self.cipher.decrypt(body, iv)
        return decode_chain(header.next_payload, plain, padded=True), body[-self.cipher.block:]

    def seal_hashed(self, exchange: int, message_id: int, payloads: Sequence[Payload], iv: bytes,
                    prefix: bytes = b"") -> tuple[bytes, bytes]:
        """``HDR*, HASH, payloads`` with ``HASH = prf(SKEYID_a, M-ID | prefix |
        payloads)`` (RFC 2409 §5.5 HASH(1)/(2), §5.7)."""
        assert self.keys is not None and self.suite is not None
        _, tail = encode_chain(payloads)
        digest = prf(self.suite.hash, self.keys.skeyid_a,
                     message_id.to_bytes(4, "big") + prefix + tail)
        return self.seal(exchange, message_id, (HashPayload(digest), *payloads), iv)

    def check_hash(self, payloads: Sequence[RawPayload], message_id: int, prefix: bytes = b""
                   ) -> None:
        """The first payload must be HASH over what follows (RFC 2409 §5.5, §5.7)."""
        assert self.keys is not None and self.suite is not None
        if not payloads or not isinstance(payloads[0].payload, HashPayload):
            raise RemoteError("no HASH payload first", notify=23)
        tail = b"".join(p.raw for p in payloads[1:])
        want = prf(self.suite.hash, self.keys.skeyid_a,
                   message_id.to_bytes(4, "big") + prefix + tail)
        if payloads[0].payload.data != want:
            raise RemoteError("HASH does not verify", notify=23)  # INVALID-HASH-INFORMATION

    def phase2_iv(self, message_id: int) -> bytes:
        assert self.suite is not None
        return phase2_iv(self.suite.hash, self.iv, message_id)

    def new_message_id(self) -> int:
        while True:
            mid = int.from_bytes(self.ctx.rng(4), "big")
            if mid and mid not in self.used_message_ids:
                self.used_message_ids.add(mid)
                return mid

    # -- retransmission (RFC 2408 §5: the sender of a request resends it) --------

    def _arm(self, now: float) -> None:
        self.sent_at = now
        self.tries = 1
        self.retransmit_at = now + self.config.timing.retransmit_timeout

    def disarm(self) -> None:
        self.retransmit_at = float("inf")

    def retransmit_due(self, now: float) -> bool:
        """Resend what is due; False when the tries are used up."""
        timing = self.config.timing
        if now >= self.retransmit_at:
            if self.tries >= timing.retransmit_tries:
                return False
            self._transmit(self.last_out)
            self.retransmit_at = now + timing.retransmit_timeout * timing.retransmit_base ** self.tries
            self.tries += 1
        for qm in list(self.quick.values()):
            if qm.finished is not None and now >= qm.finished + timing.half_open_timeout:
                del self.quick[qm.message_id]
            elif now >= qm.retransmit_at:
                if qm.tries >= timing.retransmit_tries:
                    del self.quick[qm.message_id]
                    continue
                self._transmit(qm.last_out)
                qm.retransmit_at = now + timing.retransmit_timeout * timing.retransmit_base ** qm.tries
                qm.tries += 1
        return True

    def send_quick(self, qm: QuickMode, data: bytes, now: float, *, expect_reply: bool) -> None:
        qm.last_out = data
        self._transmit(data)
        qm.sent_at = now
        qm.tries = 1
        qm.retransmit_at = (now + self.config.timing.retransmit_timeout) if expect_reply \
            else float("inf")

    def send_once(self, data: bytes) -> None:
        self._transmit(data)

    # -- Child SAs --------------------------------------------------------------

    def esp_parameters(self, child: Child) -> tuple[EspSaParameters, EspSaParameters]:
        peer_host, peer_port = self.peer
        tunnel = child.suite.mode.name.endswith("TUNNEL")
        udp = self.udp_encapsulated
        mode: Literal["tunnel", "transport"] = "tunnel" if tunnel else "transport"
        window = self.config.replay_window
        inbound = EspSaParameters(
            spi=child.inbound_spi, transform=child.suite.transform,
            encryption_key=child.keys[0], integrity_key=child.keys[1], mode=mode,
            tunnel=(peer_host, self.local_address) if tunnel else None,
            udp_encapsulation=(peer_port, NAT_T_PORT) if udp else None,
            esn=False, replay_window=window,
            lifetime_s=child.suite.lifetime_s, lifetime_kb=child.suite.lifetime_kb or None)
        outbound = EspSaParameters(
            spi=child.outbound_spi, transform=child.suite.transform,
            encryption_key=child.keys[2], integrity_key=child.keys[3], mode=mode,
            tunnel=(self.local_address, peer_host) if tunnel else None,
            udp_encapsulation=(NAT_T_PORT, peer_port) if udp else None,
            esn=False, replay_window=window,
            lifetime_s=child.suite.lifetime_s, lifetime_kb=child.suite.lifetime_kb or None)
        return inbound, outbound

    def drop_child(self, child: Child, reason: str) -> None:
        if self.children.pop(child.inbound_spi, None) is not None:
            self.ctx.emit(ChildSaDeleted(self.handle, child.inbound_spi, child.inbound_spi,
                                         child.outbound_spi, reason))

    def close(self, reason: str, *, emit: bool = True) -> None:
        if self.state is State.CLOSED:
            return
        for child in list(self.children.values()):
            self.drop_child(child, reason)
        self.state = State.CLOSED
        self.closed_reason = reason
        self.quick.clear()
        self.disarm()
        if emit:
            self.ctx.emit(IkeSaDeleted(self.handle, reason))
