"""SA lifetimes (RFC 4301 §4.4.2.1), per-SA counters and the events an SA
reports to the daemon."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "EspCounters",
    "HardLifetimeExpired",
    "Lifetime",
    "SaEvent",
    "SoftLifetimeExpired",
]

Direction = Literal["inbound", "outbound"]


@dataclass(frozen=True, slots=True)
class Lifetime:
    """Byte and packet limits of one SA direction; ``None`` is unlimited.

    Past a soft limit the SA reports :class:`SoftLifetimeExpired` once (the
    daemon rekeys); past a hard limit it refuses traffic (RFC 4301
    §4.4.2.1).  Bytes are the IP packets protected (tunnel mode) or the
    transport payloads (transport mode), before padding.
    """

    soft_bytes: int | None = None
    hard_bytes: int | None = None
    soft_packets: int | None = None
    hard_packets: int | None = None

    def __post_init__(self) -> None:
        for soft, hard, what in (
            (self.soft_bytes, self.hard_bytes, "bytes"),
            (self.soft_packets, self.hard_packets, "packets"),
        ):
            for value in (soft, hard):
                if value is not None and value <= 0:
                    raise ValueError(f"lifetime {what} must be positive")
            if soft is not None and hard is not None and soft > hard:
                raise ValueError(f"soft lifetime {what} above the hard limit")


@dataclass(frozen=True, slots=True)
class SoftLifetimeExpired:
    """A soft limit passed: negotiate a replacement SA (RFC 7296 §2.8)."""

    spi: int
    direction: Direction


@dataclass(frozen=True, slots=True)
class HardLifetimeExpired:
    """A hard limit passed: the SA refuses traffic in this direction."""

    spi: int
    direction: Direction


SaEvent = SoftLifetimeExpired | HardLifetimeExpired


@dataclass(frozen=True, slots=True)
class EspCounters:
    """A snapshot of one SA's counters, for the monitor.

    ``bytes_*`` count protected IP packets (tunnel) or payloads (transport);
    ``confidential_bytes_*`` the bytes encrypted (0 for ``null-*``);
    ``authenticated_bytes_*`` the bytes the ICV covers (ESP header, IV and
    ciphertext, RFC 4303 §2.8).  Inbound drops are counted by cause.
    """

    packets_in: int
    packets_out: int
    bytes_in: int
    bytes_out: int
    confidential_bytes_in: int
    confidential_bytes_out: int
    authenticated_bytes_in: int
    authenticated_bytes_out: int
    replays: int
    integrity_failures: int
    bad_padding: int
    decrypt_failures: int
    parse_errors: int
    unknown_spi: int
    ecn_drops: int
    nat_keepalives: int
    non_esp: int
    dummy_packets: int
    lifetime_refusals: int
