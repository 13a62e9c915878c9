"""secpath.esp.sad: the inbound SAD picks the SA by SPI (RFC 4303 §3.4.2)."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw

from secpath.errors import LocalError
from secpath.esp import (
    NatKeepalive,
    SecurityAssociation,
    SecurityAssociationDatabase,
    UnknownSpiError,
)
from secpath.esp.sad import esp_spi

TUNNEL = ("192.0.2.1", "192.0.2.2")


def sa(spi: int) -> SecurityAssociation:
    return SecurityAssociation(spi, "aes128gcm16", bytes([spi & 0xFF]) * 20, tunnel=TUNNEL,
                               udp_encapsulation=(4500, 4500))


def test_dispatch_by_spi() -> None:
    inner = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / Raw(b"hello"))
    sad = SecurityAssociationDatabase()
    for spi in (0x1000, 0x2000):
        sad.add(sa(spi))
    assert len(sad) == 2 and 0x1000 in sad
    for spi in (0x2000, 0x1000):
        wire = sa(spi).encapsulate(inner)
        assert esp_spi(wire) == spi
        assert sad.decapsulate(wire) == inner
        counters = sad.get(spi)
        assert counters is not None and counters.counters.packets_in == 1


def test_unknown_spi_counted_on_the_database() -> None:
    sad = SecurityAssociationDatabase()
    sad.add(sa(0x1000))
    with pytest.raises(UnknownSpiError):
        sad.decapsulate(sa(0x3000).encapsulate(bytes(IP() / UDP())))
    assert sad.unknown_spi == 1


def test_keepalive_before_lookup() -> None:
    sad = SecurityAssociationDatabase()
    with pytest.raises(NatKeepalive):
        sad.decapsulate(bytes(IP(src="192.0.2.1", dst="192.0.2.2") / UDP(dport=4500)
                              / Raw(b"\xff")))


def test_duplicate_and_missing_spi() -> None:
    sad = SecurityAssociationDatabase()
    sad.add(sa(0x1000))
    with pytest.raises(LocalError):
        sad.add(sa(0x1000))
    assert sad.remove(0x1000).spi == 0x1000
    with pytest.raises(LocalError):
        sad.remove(0x1000)
