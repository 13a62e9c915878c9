"""The sans-IO IKEv1 engine of one host (RFC 2408, RFC 2409), driven
exactly like :class:`secpath.ike.engine.IkeEngine` and emitting the same
events (:mod:`secpath.ike.events`):

* ``receive_datagram(data, addr, now, local_port=500)`` for every UDP
  datagram on 500 or 4500 (on 4500 with its non-ESP marker, RFC 3948 §2.2);
* ``handle_timer(now)`` when ``next_timer()`` is due;
* :meth:`initiate`, :meth:`rekey_child`, :meth:`rekey_ike`, :meth:`delete`,
  :meth:`dpd`; then :meth:`datagrams_to_send` and :meth:`next_event`.

Handles: an ISAKMP SA is our cookie as an ``int``; an IPsec SA pair is our
inbound SPI.  Main mode is the only phase-1 exchange: aggressive mode is
refused (it sends the identity in clear and the PSK-keyed hash lets an
eavesdropper test passwords offline).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from secpath.errors import LocalError, ParseError, RemoteError
from secpath.ike.config import IkeConfig
from secpath.ike.engine import Datagram
from secpath.ike.events import Event, IkeSaFailed, IkeSaRekeyed
from secpath.ike.v1.codec import (
    HEADER_BYTES,
    Header,
    NotifyPayload,
    decode_chain,
    decode_header,
    encode_message,
)
from secpath.ike.v1.constants import ISAKMP_VERSION, ExchangeType, Flag, NotifyType
from secpath.ike.v1.fragments import FRAGMENT_PAYLOAD, decode_fragment
from secpath.ike.v1.informational import (
    handle_info,
    send_delete_esp,
    send_delete_isakmp,
    send_dpd,
)
from secpath.ike.v1.keys import IkeV1KeyMaterial
from secpath.ike.v1.main_mode import fail, handle_main, respond_first, start_main_mode
from secpath.ike.v1.quick_mode import handle_quick, initiate_quick
from secpath.ike.v1.sa import NAT_T_PORT, Phase1Sa, State

__all__ = ["AGGRESSIVE_MODE_REFUSED", "IKE_PORT", "IkeV1Engine", "is_ikev1"]

IKE_PORT = 500
NON_ESP_MARKER = bytes(4)  # RFC 3948 §2.2
Address = tuple[str, int]
AGGRESSIVE_MODE_REFUSED = (
    "aggressive mode refused: it sends the identities in clear and its PSK-keyed hash "
    "lets an eavesdropper test pre-shared keys offline; configure the peer for main mode"
)


def is_ikev1(data: bytes) -> bool:
    """An ISAKMP header of major version 1 (RFC 2408 §3.1): byte 17 is the
    version, 0x10 for IKEv1, 0x20 for IKEv2 (RFC 7296 §3.1)."""
    return len(data) >= HEADER_BYTES and data[17] >> 4 == 1


def _up(sa: Phase1Sa) -> bool:
    return sa.state is State.ESTABLISHED


class IkeV1Engine:
    """All ISAKMP SAs of one host, for the rules in ``configs``."""

    def __init__(self, configs: Sequence[IkeConfig], rng: Callable[[int], bytes], *,
                 local_address: str | None = None) -> None:
        if not configs:
            raise LocalError("IkeV1Engine: at least one rule configuration is needed")
        for c in configs:
            if c.credentials.method not in ("psk", "certificate"):
                raise LocalError(f"rule {c.name!r}: IKEv1 authenticates with a pre-shared key or "
                                 f"certificates here; {c.credentials.method} over IKEv1 is not "
                                 "implemented (use ike_version = 2 or another method)")
        self.rng = rng
        self._configs = tuple(configs)
        if local_address is None:
            if not self._configs[0].local_addresses:
                raise LocalError("IkeV1Engine: no local address in the policy")
            local_address = str(self._configs[0].local_addresses[0])
        self.local_address = local_address
        self._sas: dict[bytes, Phase1Sa] = {}
        self._responders: dict[tuple[bytes, Address], Phase1Sa] = {}
        self._child_spis: set[int] = set()
        self._out: list[Datagram] = []
        self._events: deque[Event] = deque()
        self.counters = {"invalid_packets": 0, "invalid_spis": 0, "invalid_cookies": 0}

    # -- the Context the SAs use ------------------------------------------------

    def emit(self, event: Event) -> None:
        self._events.append(event)

    def send(self, data: bytes, peer: Address, local_port: int) -> None:
        if local_port == NAT_T_PORT:
            data = NON_ESP_MARKER + data
        self._out.append(Datagram(data, peer, local_port))

    def child_spi(self) -> int:
        while True:
            spi = int.from_bytes(self.rng(4), "big")
            if spi >= 256 and spi not in self._child_spis:  # RFC 4303 §2.1
                self._child_spis.add(spi)
                return spi

    def adopt(self, old: Phase1Sa) -> bool:
        """Move ``old``'s IPsec SAs to the newest established ISAKMP SA with
        the same peer and rule, report it as a rekey and close ``old``."""
        heirs = [sa for sa in self._sas.values() if sa is not old and sa.state is State.ESTABLISHED
                 and sa.peer[0] == old.peer[0] and sa.config.name == old.config.name]
        if not heirs:
            return False
        heir = max(heirs, key=lambda sa: sa.created)
        heir.children.update(old.children)
        old.children.clear()
        self.emit(IkeSaRekeyed(old.handle, heir.handle, heir.suite.name if heir.suite else ""))
        old.close("replaced", emit=False)
        return True

    def initial_contact(self, sa: Phase1Sa) -> None:
        """RFC 2407 §4.6.3.3: the peer (restarted) holds no SA older than ``sa``
        with us: ours with the same peer address and identity are stale."""
        for other in list(self._sas.values()):
            if other is not sa and other.state is State.ESTABLISHED \
                    and other.peer[0] == sa.peer[0] and other.remote_id == sa.remote_id:
                other.close("INITIAL-CONTACT: the peer restarted")

    def first_contact(self, sa: Phase1Sa) -> bool:
        return not any(o is not sa and o.state is not State.CLOSED and o.peer[0] == sa.peer[0]
                       for o in self._sas.values())

    def _new_cookie(self) -> bytes:
        while True:
            c = self.rng(8)
            if c != bytes(8) and c not in self._sas:
                return c

    # -- outputs -----------------------------------------------------------------

    def datagrams_to_send(self) -> list[Datagram]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def next_timer(self) -> float | None:
        times: list[float] = []
        for sa in self._sas.values():
            timing = sa.config.timing
            times += [sa.retransmit_at, sa.soft_at, sa.hard_at]
            times += [q.retransmit_at if q.finished is None
                      else q.finished + timing.half_open_timeout for q in sa.quick.values()]
            times += [t for c in sa.children.values() for t in (c.soft_at, c.hard_at)]
            times.append(sa.reassembly.deadline)
            if sa.state is not State.ESTABLISHED:
                times.append(sa.created + timing.half_open_timeout)
            elif sa.peer_dpd and timing.dpd_interval is not None:
                times.append(self._dpd_due(sa))
        finite = [t for t in times if t != float("inf")]
        return min(finite) if finite else None

    # -- introspection ----------------------------------------------------------

    def _get(self, handle: int) -> Phase1Sa | None:
        return self._sas.get(handle.to_bytes(8, "big"))

    def ike_sa_state(self, ike_sa: int) -> State | None:
        sa = self._get(ike_sa)
        return sa.state if sa is not None else None

    def child_sas(self, ike_sa: int) -> tuple[int, ...]:
        sa = self._get(ike_sa)
        return tuple(sorted(sa.children)) if sa is not None else ()

    def ike_sas(self) -> tuple[int, ...]:
        return tuple(sorted(sa.handle for sa in self._sas.values() if sa.state is not State.CLOSED))

    def key_material(self) -> tuple[IkeV1KeyMaterial, ...]:
        """The encryption key of every ISAKMP SA that has one, for ``secpath
        keys`` (the one way keys leave the process: Wireshark's
        ikev1_decryption_table)."""
        return tuple(IkeV1KeyMaterial(sa.cky_i, sa.suite.encryption, sa.keys.encryption_key)
                     for sa in self._sas.values()
                     if sa.keys is not None and sa.suite is not None and sa.state is not State.CLOSED)

    def fragments_waiting(self) -> int:
        """ISAKMP SAs holding part of a fragmented message."""
        return sum(1 for sa in self._sas.values() if sa.reassembly.in_progress)

    def negotiations(self) -> tuple[int, int]:
        """Main modes in progress: (started by us, started by the peer)."""
        ours = sum(1 for sa in self._sas.values() if sa.state in (State.MM_I1, State.MM_I3,
                                                                   State.MM_I5))
        theirs = sum(1 for sa in self._sas.values() if sa.state in (State.MM_R2, State.MM_R4))
        return ours, theirs

    # -- API -----------------------------------------------------------------------

    def _sa(self, ike_sa: int) -> Phase1Sa:
        sa = self._get(ike_sa)
        if sa is None or sa.state is State.CLOSED:
            raise LocalError(f"no ISAKMP SA {ike_sa:#018x}")
        return sa

    def initiate(self, rule: str, now: float, peer: Address | None = None) -> int:
        """Start main mode for ``rule``; returns the ISAKMP SA's handle."""
        cfg = next((c for c in self._configs if c.name == rule), None)
        if cfg is None:
            raise LocalError(f"no rule {rule!r} in this engine")
        if peer is None:
            if cfg.peer is None:
                raise LocalError(f"rule {rule!r}: no peer address; pass peer=")
            peer = (str(cfg.peer), IKE_PORT)
        return self._start(cfg, peer, now).handle

    def _start(self, cfg: IkeConfig, peer: Address, now: float) -> Phase1Sa:
        sa = Phase1Sa(self, (cfg,), True, self._new_cookie(), bytes(8), peer, self.local_address,
                      IKE_PORT, State.MM_I1, now, now)
        self._sas[sa.cky_i] = sa
        start_main_mode(sa, now)
        return sa

    def rekey_child(self, ike_sa: int, child_sa: int, now: float) -> None:
        sa = self._sa(ike_sa)
        child = sa.children.get(child_sa)
        if child is None:
            raise LocalError(f"no IPsec SA {child_sa:#010x} in ISAKMP SA {ike_sa:#018x}")
        if not child.replaced and not any(q.old == child_sa and q.finished is None
                                          for q in sa.quick.values()):
            child.soft_at = float("inf")
            initiate_quick(sa, child.pair_index, now, old=child)

    def rekey_ike(self, ike_sa: int, now: float) -> None:
        """IKEv1 has no rekey exchange: a new main mode replaces the SA and its
        IPsec SAs move to it (reported as :class:`IkeSaRekeyed`)."""
        sa = self._sa(ike_sa)
        if sa.state is not State.ESTABLISHED or sa.replaced_by is not None:
            raise LocalError(f"ISAKMP SA {ike_sa:#018x} is not established")
        sa.soft_at = float("inf")
        new = self._start(sa.config, (sa.peer[0], IKE_PORT), now)
        new.replaces = sa.handle
        sa.replaced_by = new.handle

    def delete(self, ike_sa: int, now: float, child_sa: int | None = None) -> None:
        sa = self._sa(ike_sa)
        if child_sa is None:
            send_delete_esp(sa, list(sa.children.values()), now)
            send_delete_isakmp(sa)
            sa.close("deleted by us")
            self._cleanup()
            return
        child = sa.children.get(child_sa)
        if child is None:
            raise LocalError(f"no IPsec SA {child_sa:#010x} in ISAKMP SA {ike_sa:#018x}")
        send_delete_esp(sa, [child], now)
        sa.drop_child(child, "deleted by us")

    def dpd(self, ike_sa: int, now: float) -> None:
        send_dpd(self._sa(ike_sa), now)

    # -- input -----------------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: Address, now: float,
                         local_port: int = IKE_PORT) -> None:
        if local_port == NAT_T_PORT:
            if data[:4] != NON_ESP_MARKER:
                return  # ESP or a NAT keepalive, RFC 3948 §2.2
            data = data[4:]
        try:
            header = decode_header(data)
        except ParseError:
            self.counters["invalid_packets"] += 1
            return
        if header.version >> 4 != ISAKMP_VERSION >> 4:
            self.counters["invalid_packets"] += 1
            return
        try:
            self._dispatch(data, header, addr, local_port, now)
        except (ParseError, RemoteError):
            # undecryptable, malformed or unauthenticated: dropped (RFC 2408 §5.1)
            self.counters["invalid_packets"] += 1
        self._cleanup()

    def _dispatch(self, data: bytes, header: Header, addr: Address, local_port: int,
                  now: float) -> None:
        if header.exchange_type == ExchangeType.AGGRESSIVE:
            self.emit(IkeSaFailed(0, addr, AGGRESSIVE_MODE_REFUSED,
                                  NotifyType.INVALID_EXCHANGE_TYPE))
            self._notify_plain(header, addr, local_port, NotifyType.INVALID_EXCHANGE_TYPE)
            return
        if header.exchange_type == ExchangeType.IDENTITY_PROTECTION \
                and header.spi_r == bytes(8) and not header.flags & Flag.ENCRYPTION:
            self._first(data, header, addr, local_port, now)
            return
        sa = self._find(header)
        if sa is None:
            self.counters["invalid_spis"] += 1  # the guide's "Invalid Cookies Received"
            return
        if header.next_payload == FRAGMENT_PAYLOAD:
            self._fragment(sa, data, header, addr, local_port, now)
            return
        if sa.initiator and sa.cky_r == bytes(8):
            sa.cky_r = header.spi_r
        elif header.spi_r != sa.cky_r or header.spi_i != sa.cky_i:
            self.counters["invalid_cookies"] += 1
            return
        if local_port == NAT_T_PORT and (addr != sa.peer or sa.local_port != NAT_T_PORT):
            sa.peer, sa.local_port = addr, NAT_T_PORT  # RFC 3947 §4: the peer floated
        sa.last_received = now
        if header.exchange_type == ExchangeType.IDENTITY_PROTECTION:
            self._main(sa, data, header, now)
        elif header.exchange_type == ExchangeType.QUICK_MODE:
            if sa.state is State.ESTABLISHED:
                handle_quick(sa, data, header, now)
        elif header.exchange_type == ExchangeType.INFORMATIONAL:
            handle_info(sa, data, header, now)
        else:
            self.counters["invalid_packets"] += 1

    def _find(self, header: Header) -> Phase1Sa | None:
        sa = self._sas.get(header.spi_i)
        if sa is None or not sa.initiator:
            sa = self._sas.get(header.spi_r)
            if sa is not None and sa.initiator:
                sa = None
        return None if sa is None or sa.state is State.CLOSED else sa

    def _fragment(self, sa: Phase1Sa, data: bytes, header: Header, addr: Address, local_port: int,
                  now: float) -> None:
        """One IKEv1 fragment: kept until the message is whole, which is then
        handled as if it had come in one datagram."""
        _, frag = decode_fragment(data)
        # only main mode 5/6 are fragmented: both cookies are known by then
        if sa.cky_r == bytes(8) or (header.spi_i, header.spi_r) != (sa.cky_i, sa.cky_r) \
                or sa.state in (State.MM_I1, State.MM_R2):
            self.counters["invalid_cookies"] += 1
            return
        sa.reassembly.timeout = sa.config.timing.half_open_timeout
        whole = sa.reassembly.add(frag, now)
        if whole is None:
            return
        inner = decode_header(whole)
        if (inner.spi_i, inner.exchange_type) != (header.spi_i, header.exchange_type) \
                or inner.next_payload == FRAGMENT_PAYLOAD:
            raise ParseError("IKEv1 fragments: the reassembled message is not the fragments' own")
        self._dispatch(whole, inner, addr, local_port, now)

    def _main(self, sa: Phase1Sa, data: bytes, header: Header, now: float) -> None:
        if data == sa.last_in:
            if not sa.initiator and sa.last_out:
                sa.send_once(sa.last_out)  # RFC 2408 §5: our answer was lost
            return
        if sa.state is State.ESTABLISHED:
            return
        sa.last_in = data
        payloads = None
        if not header.flags & Flag.ENCRYPTION:
            payloads = decode_chain(header.next_payload, data[HEADER_BYTES:])
        handle_main(sa, data, payloads, now)
        if _up(sa) and sa.initiator:
            self._established(sa, now)

    def _established(self, sa: Phase1Sa, now: float) -> None:
        old = self._get(sa.replaces) if sa.replaces is not None else None
        if old is None or old.state is State.CLOSED:
            for index in range(len(sa.config.selectors)):
                initiate_quick(sa, index, now)
            return
        # the replacement of an ISAKMP SA: its IPsec SAs move over
        send_delete_isakmp(old)
        self.adopt(old)

    def _first(self, data: bytes, header: Header, addr: Address, local_port: int,
               now: float) -> None:
        existing = self._responders.get((header.spi_i, addr))
        if existing is not None:
            if data == existing.last_in and existing.last_out:
                existing.send_once(existing.last_out)
            return
        payloads = decode_chain(header.next_payload, data[HEADER_BYTES:])
        candidates = tuple(c for c in self._configs if c.peer is not None
                           and str(c.peer) == addr[0]) or self._configs
        sa = Phase1Sa(self, candidates, False, header.spi_i, self._new_cookie(), addr,
                      self.local_address, local_port, State.MM_R2, now, now)
        sa.last_in = data
        try:
            chosen = respond_first(sa, payloads, now)
        except RemoteError as exc:
            fail(sa, f"main mode: {exc}", exc.notify)
            chosen = False
        if not chosen:
            self._notify_plain(header, addr, local_port, NotifyType.NO_PROPOSAL_CHOSEN)
            return
        self._sas[sa.cky_r] = sa
        self._responders[(header.spi_i, addr)] = sa

    def _notify_plain(self, header: Header, addr: Address, local_port: int, kind: int) -> None:
        """An unprotected Informational (RFC 2408 §5.5: no SA yet)."""
        reply = Header(header.spi_i, header.spi_r, ExchangeType.INFORMATIONAL, 0, 0)
        self.send(encode_message(reply, [NotifyPayload(kind, 1)]), addr, local_port)

    # -- timers ------------------------------------------------------------------

    def _dpd_due(self, sa: Phase1Sa) -> float:
        timing = sa.config.timing
        if sa.dpd_outstanding is not None:
            return sa.dpd_sent_at + timing.retransmit_timeout * \
                timing.retransmit_base ** (sa.dpd_tries - 1)
        assert timing.dpd_interval is not None
        return max(sa.last_received, sa.dpd_sent_at) + timing.dpd_interval

    def handle_timer(self, now: float) -> None:
        for sa in list(self._sas.values()):
            self._timers(sa, now)
        self._cleanup()

    def _timers(self, sa: Phase1Sa, now: float) -> None:
        timing = sa.config.timing
        if sa.state is State.CLOSED:
            return
        sa.reassembly.expire(now)
        if not sa.retransmit_due(now):
            fail(sa, f"no answer from {sa.peer[0]} after {timing.retransmit_tries} tries")
            return
        if sa.state is not State.ESTABLISHED:
            if now >= sa.created + timing.half_open_timeout:
                if sa.initiator:
                    fail(sa, "main mode did not complete in time")
                else:
                    sa.close("half-open ISAKMP SA timed out", emit=False)
            return
        if now >= sa.hard_at:
            send_delete_esp(sa, list(sa.children.values()), now)
            send_delete_isakmp(sa)
            sa.close("ISAKMP SA lifetime expired")
            return
        if now >= sa.soft_at:
            sa.soft_at = float("inf")
            if sa.initiator and sa.replaced_by is None:
                self.rekey_ike(sa.handle, now)
        for child in list(sa.children.values()):
            if now >= child.hard_at:
                send_delete_esp(sa, [child], now)
                sa.drop_child(child, "hard lifetime expired")
            elif now >= child.soft_at:
                self.rekey_child(sa.handle, child.inbound_spi, now)
        if sa.peer_dpd and timing.dpd_interval is not None and now >= self._dpd_due(sa):
            if sa.dpd_outstanding is not None and sa.dpd_tries >= timing.retransmit_tries:
                fail(sa, f"dead peer: no R-U-THERE-ACK after {sa.dpd_tries} tries (RFC 3706)")
                return
            if sa.dpd_outstanding is not None or now >= sa.last_received + timing.dpd_interval:
                send_dpd(sa, now)

    def _cleanup(self) -> None:
        for cookie, sa in list(self._sas.items()):
            if sa.state is State.CLOSED:
                del self._sas[cookie]
                self._child_spis.difference_update(sa.children)
        for key, sa in list(self._responders.items()):
            if sa.state is State.CLOSED:
                del self._responders[key]
