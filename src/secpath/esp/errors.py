"""Typed errors of the ESP data plane.

Every packet ``SecurityAssociation.decapsulate`` refuses raises one of the
:class:`EspDrop` subclasses below, and the SA counts it.  ``silent`` drops
(a NAT-keepalive, a dummy packet, an IKE message on port 4500) are normal
traffic the caller discards without logging.  Misuse of an outbound SA
(hard lifetime passed, sequence counter exhausted, a packet that is not IP)
raises :class:`~secpath.errors.LocalError` subclasses.
"""

from __future__ import annotations

from secpath.errors import LocalError, ParseError, RemoteError

__all__ = [
    "DecryptError",
    "DummyPacket",
    "EcnError",
    "EspDrop",
    "EspParseError",
    "IntegrityError",
    "LifetimeExpiredError",
    "NatKeepalive",
    "NonEspMarker",
    "PaddingError",
    "ParseError",
    "ReplayError",
    "SequenceOverflowError",
    "UnknownSpiError",
]


class EspDrop(RemoteError):
    """An inbound packet was dropped; the SA counted it."""

    silent: bool = False


class EspParseError(EspDrop, ParseError):
    """The outer packet is not a well-formed IP/UDP/ESP packet."""


class UnknownSpiError(EspDrop):
    """No SA for this SPI (RFC 4303 §3.4.2)."""

    def __init__(self, spi: int) -> None:
        super().__init__(f"no SA for SPI 0x{spi:08x}")
        self.spi = spi


class ReplayError(EspDrop):
    """Duplicate or too old for the anti-replay window (RFC 4303 §3.4.3)."""


class IntegrityError(EspDrop):
    """ICV verification failed (RFC 4303 §3.4.4)."""


class PaddingError(EspDrop):
    """Pad Length or Padding contents are wrong (RFC 4303 §2.4)."""


class DecryptError(EspDrop):
    """Ciphertext of a bad length, or the decrypted payload is not a packet
    of the type Next Header announces (RFC 4303 §3.4.2)."""


class EcnError(EspDrop):
    """Outer header CE on a Not-ECT inner packet: drop (RFC 6040 §4.2)."""


class NatKeepalive(EspDrop):
    """A one-octet 0xFF NAT-keepalive (RFC 3948 §2.3): dropped silently."""

    silent = True


class NonEspMarker(EspDrop):
    """Four zero octets on port 4500: an IKE message, not ESP (RFC 3948 §2.2).

    Not an error: hand ``payload`` to the IKE engine."""

    silent = True

    def __init__(self, payload: bytes) -> None:
        super().__init__("non-ESP marker: IKE message on the NAT-T port")
        self.payload = payload


class DummyPacket(EspDrop):
    """Next Header 59: a dummy packet, discarded silently (RFC 4303 §2.6)."""

    silent = True


class LifetimeExpiredError(LocalError):
    """The SA passed its hard lifetime (RFC 4301 §4.4.2.1): rekey."""


class SequenceOverflowError(LocalError):
    """The sequence counter would cycle: the SA must be rekeyed
    (RFC 4303 §3.3.3)."""
