"""What an ESP SA counts and how its lifetime runs out (RFC 4301 §4.4.2.1).

:class:`SaAccounting` is the base of
:class:`~secpath.esp.sa.SecurityAssociation`: the sequence counter, the
packet and octet counters of both directions, the drops by cause, the
soft/hard lifetime limits and the events they raise.  The per-packet side
is kept to a few integer operations for the SA's hot paths:

* packets sent are the sequence number (RFC 4303 §3.3.3: it starts at 1);
* the two octet counters of a direction (the IP packets or transport
  payloads protected, and the padded plaintext) are one integer,
  ``bytes << 64 | plaintext bytes``: a packet adds ``(n << 64) + plain``
  and the byte limit is one comparison with ``limit << 64`` (the
  plaintext sum stays far below 2**64);
* crossing a limit calls :meth:`SaAccounting._lifetime_passed`, which
  reports the event, moves the limits on and calls
  :meth:`SaAccounting._set_fast_limits` so the SA can re-derive what its
  fast paths may skip.
"""

from __future__ import annotations

from typing import Final, Literal

from secpath.esp.errors import (
    DecryptError,
    DummyPacket,
    EcnError,
    EspDrop,
    EspParseError,
    IntegrityError,
    LifetimeExpiredError,
    NatKeepalive,
    NonEspMarker,
    PaddingError,
    ReplayError,
    SequenceOverflowError,
    UnknownSpiError,
)
from secpath.esp.lifetime import (
    EspCounters,
    HardLifetimeExpired,
    Lifetime,
    SaEvent,
    SoftLifetimeExpired,
)

__all__ = ["DROP_COUNTERS", "OCTETS_SHIFT", "SaAccounting"]

Direction = Literal["inbound", "outbound"]

OCTETS_SHIFT: Final = 64  # bytes << 64 | plaintext bytes, in one integer
_LOW: Final = (1 << OCTETS_SHIFT) - 1
_UNLIMITED: Final = 1 << 62
DROP_COUNTERS: Final[dict[type[EspDrop], str]] = {
    EspParseError: "parse_errors",
    UnknownSpiError: "unknown_spi",
    ReplayError: "replays",
    IntegrityError: "integrity_failures",
    PaddingError: "bad_padding",
    DecryptError: "decrypt_failures",
    EcnError: "ecn_drops",
    NatKeepalive: "nat_keepalives",
    NonEspMarker: "non_esp",
    DummyPacket: "dummy_packets",
}


class SaAccounting:
    """Counters, drops and lifetimes of one SA, both directions."""

    __slots__ = (
        "_authenticated_overhead", "_closed_in", "_closed_out", "_confidential", "_drops",
        "_events", "_lifetime", "_lifetime_refusals", "_limit_octets_in", "_limit_octets_out",
        "_limit_packets_in", "_limit_packets_out", "_octets_in", "_octets_out", "_packets_in",
        "_seq_limit", "_seq_out", "_soft_reported", "spi",
    )

    def _init_accounting(self, spi: int, lifetime: Lifetime | None, *, seq_max: int,
                         confidential: bool, authenticated_overhead: int) -> None:
        self.spi = spi
        self._confidential = confidential
        self._authenticated_overhead = authenticated_overhead
        self._seq_out = 0
        # RFC 4303 §3.3.3: the counter never cycles; the SA must be rekeyed
        self._seq_limit = seq_max
        self._lifetime = lifetime or Lifetime()
        self._limit_packets_out, self._limit_octets_out = self._first_limits()
        self._limit_packets_in, self._limit_octets_in = self._first_limits()
        self._closed_out = self._closed_in = False
        self._events: list[SaEvent] = []
        self._soft_reported: set[str] = set()
        self._drops = dict.fromkeys(DROP_COUNTERS.values(), 0)
        self._packets_in = self._octets_in = self._octets_out = self._lifetime_refusals = 0

    def _set_fast_limits(self) -> None:
        """Called whenever a limit moved; the SA re-derives its fast paths."""

    def _first_limits(self) -> tuple[int, int]:
        lt = self._lifetime
        packets = lt.soft_packets or lt.hard_packets or _UNLIMITED
        octets = lt.soft_bytes or lt.hard_bytes or _UNLIMITED
        return packets, octets << OCTETS_SHIFT

    def _count_drop(self, drop: EspDrop) -> None:
        self._drops[DROP_COUNTERS[type(drop)]] += 1

    def _refuse_outbound(self) -> None:
        if self._closed_out:
            self._lifetime_refusals += 1
            raise LifetimeExpiredError(f"SA 0x{self.spi:08x} outbound: hard lifetime passed")
        raise SequenceOverflowError(
            f"SA 0x{self.spi:08x}: sequence number space exhausted, rekey"
        )

    def _refuse_inbound(self) -> None:
        self._lifetime_refusals += 1
        raise LifetimeExpiredError(f"SA 0x{self.spi:08x} inbound: hard lifetime passed")

    def _lifetime_passed(self, direction: Direction) -> None:
        lt = self._lifetime
        hard_packets = lt.hard_packets or _UNLIMITED
        hard_bytes = lt.hard_bytes or _UNLIMITED
        if direction == "outbound":
            packets, octets = self._seq_out, self._octets_out >> OCTETS_SHIFT
        else:
            packets, octets = self._packets_in, self._octets_in >> OCTETS_SHIFT
        if direction not in self._soft_reported and (
            packets >= (lt.soft_packets or _UNLIMITED) or octets >= (lt.soft_bytes or _UNLIMITED)
        ):
            self._soft_reported.add(direction)
            self._events.append(SoftLifetimeExpired(self.spi, direction))
        if packets >= hard_packets or octets >= hard_bytes:
            self._events.append(HardLifetimeExpired(self.spi, direction))
            hard_packets = hard_bytes = _UNLIMITED
            if direction == "outbound":
                self._closed_out = True
                self._seq_limit = 0
            else:
                self._closed_in = True
        if direction == "outbound":
            self._limit_packets_out = hard_packets
            self._limit_octets_out = hard_bytes << OCTETS_SHIFT
        else:
            self._limit_packets_in = hard_packets
            self._limit_octets_in = hard_bytes << OCTETS_SHIFT
        self._set_fast_limits()

    # -- what the daemon and the monitor read -----------------------------

    @property
    def soft_expired(self) -> bool:
        """A soft lifetime passed in either direction: time to rekey."""
        lt = self._lifetime
        soft_p = lt.soft_packets or _UNLIMITED
        soft_b = lt.soft_bytes or _UNLIMITED
        return (max(self._packets_in, self._seq_out) >= soft_p
                or max(self._octets_in, self._octets_out) >> OCTETS_SHIFT >= soft_b)

    @property
    def hard_expired(self) -> bool:
        """A hard lifetime passed in either direction."""
        return self._closed_in or self._closed_out

    @property
    def sequence_number(self) -> int:
        """The last outbound sequence number sent (RFC 4303 §3.3.3)."""
        return self._seq_out

    def take_events(self) -> list[SaEvent]:
        """Lifetime events since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    @property
    def counters(self) -> EspCounters:
        confidential = self._confidential
        overhead = self._authenticated_overhead
        drops = self._drops
        plain_in = self._octets_in & _LOW
        plain_out = self._octets_out & _LOW
        return EspCounters(
            packets_in=self._packets_in,
            packets_out=self._seq_out,
            bytes_in=self._octets_in >> OCTETS_SHIFT,
            bytes_out=self._octets_out >> OCTETS_SHIFT,
            confidential_bytes_in=plain_in if confidential else 0,
            confidential_bytes_out=plain_out if confidential else 0,
            authenticated_bytes_in=plain_in + overhead * self._packets_in,
            authenticated_bytes_out=plain_out + overhead * self._seq_out,
            replays=drops["replays"],
            integrity_failures=drops["integrity_failures"],
            bad_padding=drops["bad_padding"],
            decrypt_failures=drops["decrypt_failures"],
            parse_errors=drops["parse_errors"],
            unknown_spi=drops["unknown_spi"],
            ecn_drops=drops["ecn_drops"],
            nat_keepalives=drops["nat_keepalives"],
            non_esp=drops["non_esp"],
            dummy_packets=drops["dummy_packets"],
            lifetime_refusals=self._lifetime_refusals,
        )
