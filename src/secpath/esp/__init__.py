"""ESP, the RFC 4303 data plane: every packet secpath protects.

Sans-IO.  The public surface is re-exported here; the modules behind it are
``transforms`` (ciphers and ICVs), ``sa`` (one security association),
``replay`` (sequence numbers and the anti-replay window), ``ip`` (headers,
checksums, ECN), ``udp`` (RFC 3948 encapsulation), ``lifetime`` and
``errors``; ``modes`` (transport/tunnel packet surgery), ``accounting``
(counters and lifetimes of an SA), ``datagram`` (an SA through a UDP
socket), ``transport`` (the fast paths of raw IPv4 transport mode), ``sad``
(SPI lookup) and ``wireshark`` (the ``esp_sa`` key table).
"""

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
    ParseError,
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
from secpath.esp.replay import ReplayWindow
from secpath.esp.sa import SecurityAssociation
from secpath.esp.sad import SecurityAssociationDatabase
from secpath.esp.transforms import TRANSFORM_NAMES, key_lengths
from secpath.esp.udp import NAT_KEEPALIVE, NAT_T_PORT, UdpPayload, classify_udp_payload
from secpath.esp.wireshark import esp_sa_row

__all__ = [
    "NAT_KEEPALIVE",
    "NAT_T_PORT",
    "TRANSFORM_NAMES",
    "DecryptError",
    "DummyPacket",
    "EcnError",
    "EspCounters",
    "EspDrop",
    "EspParseError",
    "HardLifetimeExpired",
    "IntegrityError",
    "Lifetime",
    "LifetimeExpiredError",
    "NatKeepalive",
    "NonEspMarker",
    "PaddingError",
    "ParseError",
    "ReplayError",
    "ReplayWindow",
    "SaEvent",
    "SecurityAssociation",
    "SecurityAssociationDatabase",
    "SequenceOverflowError",
    "SoftLifetimeExpired",
    "UdpPayload",
    "UnknownSpiError",
    "classify_udp_payload",
    "esp_sa_row",
    "key_lengths",
]
