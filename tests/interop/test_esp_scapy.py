"""secpath's ESP against scapy's, an independent implementation.

For every transform, both modes, with and without RFC 3948 UDP
encapsulation, over IPv4 and IPv6: scapy decrypts what secpath
encapsulates, and secpath decapsulates what scapy encrypts.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from scapy.layers import ipsec as scapy_ipsec
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import ESP
from scapy.packet import Raw

from secpath.esp import SecurityAssociation
from secpath.esp.transforms import parse_transform

# strongSwan name → (scapy crypt_algo, scapy auth_algo)
SCAPY_NAMES = {
    "3des-sha1": ("3DES", "HMAC-SHA1-96"),
    "aes128-sha1": ("AES-CBC", "HMAC-SHA1-96"),
    "aes128-sha256": ("AES-CBC", "SHA2-256-128"),
    "aes256-sha256": ("AES-CBC", "SHA2-256-128"),
    "aes256-sha384": ("AES-CBC", "SHA2-384-192"),
    "aes256-sha512": ("AES-CBC", "SHA2-512-256"),
    "aes128gcm16": ("AES-GCM", None),
    "aes256gcm16": ("AES-GCM", None),
    "chacha20poly1305": ("CHACHA20-POLY1305", None),
    "null-sha256": ("NULL", "SHA2-256-128"),
}
SPI = 0x0000C0DE
ScapySA: Any = scapy_ipsec.SecurityAssociation  # untyped in scapy


def keys(name: str) -> tuple[bytes, bytes | None]:
    encryption, integrity = parse_transform(name)
    enc = os.urandom(encryption.key_bytes + encryption.salt_bytes)
    return enc, (os.urandom(integrity.key_bytes) if integrity else None)


def inner_packet(family: int, size: int = 100) -> bytes:
    payload = Raw(os.urandom(size))
    if family == 4:
        return bytes(IP(src="10.1.0.1", dst="10.2.0.1", tos=0xB8) / TCP(sport=5060, dport=443)
                     / payload)
    return bytes(IPv6(src="2001:db8:1::1", dst="2001:db8:2::1", tc=0xB8)
                 / UDP(sport=5060, dport=5061) / payload)


def pair(name: str, mode: str, udp: bool, family: int, esn: bool = False
         ) -> tuple[SecurityAssociation, Any]:
    enc, integ = keys(name)
    outer = ("192.0.2.1", "198.51.100.2") if family == 4 else ("2001:db8::1", "2001:db8::2")
    ports = (4500, 4500) if udp else None
    ours = SecurityAssociation(SPI, name, enc, integ, mode=mode,  # type: ignore[arg-type]
                               tunnel=outer if mode == "tunnel" else None,
                               udp_encapsulation=ports, esn=esn)
    crypt, auth = SCAPY_NAMES[name]
    ip_cls = IP if family == 4 else IPv6
    theirs = ScapySA(
        ESP, spi=SPI, crypt_algo=crypt, crypt_key=enc, auth_algo=auth, auth_key=integ,
        tunnel_header=ip_cls(src=outer[0], dst=outer[1]) if mode == "tunnel" else None,
        nat_t_header=UDP(sport=4500, dport=4500) if udp else None,
        esn_en=esn, esn=0,
    )
    return ours, theirs


def parse(wire: bytes) -> IP | IPv6:
    return IP(wire) if wire[0] >> 4 == 4 else IPv6(wire)


MATRIX = [
    pytest.param(name, mode, udp, family, id=f"{name}-{mode}-{'udp' if udp else 'esp'}-v{family}")
    for name in SCAPY_NAMES
    for mode in ("tunnel", "transport")
    for udp in (False, True)
    for family in (4, 6)
]


@pytest.mark.parametrize(("name", "mode", "udp", "family"), MATRIX)
def test_scapy_decrypts_secpath(name: str, mode: str, udp: bool, family: int) -> None:
    ours, theirs = pair(name, mode, udp, family)
    for size in (0, 1, 100, 1300):
        packet = inner_packet(family, size)
        wire = ours.encapsulate(packet)
        outer = parse(wire)
        assert outer.haslayer(ESP)
        if udp:
            assert outer[UDP].dport == 4500
            if family == 4:
                assert outer[UDP].chksum == 0  # RFC 3948 §2.1
        assert bytes(theirs.decrypt(outer)) == packet


@pytest.mark.parametrize(("name", "mode", "udp", "family"), MATRIX)
def test_secpath_decapsulates_scapy(name: str, mode: str, udp: bool, family: int) -> None:
    ours, theirs = pair(name, mode, udp, family)
    for size in (0, 1, 100, 1300):
        packet = inner_packet(family, size)
        wire = bytes(theirs.encrypt(parse(packet)))
        assert ours.decapsulate(wire) == packet
    assert ours.counters.packets_in == 4


@pytest.mark.parametrize("name", ["aes128gcm16", "chacha20poly1305", "aes128-sha256",
                                  "3des-sha1"])
def test_extended_sequence_numbers_both_ways(name: str) -> None:
    # RFC 4303 §2.2.1: the high-order 32 bits are in the ICV / AAD, never sent
    ours, theirs = pair(name, "tunnel", False, 4, esn=True)
    packet = inner_packet(4)
    assert bytes(theirs.decrypt(parse(ours.encapsulate(packet)))) == packet
    assert ours.decapsulate(bytes(theirs.encrypt(parse(packet)))) == packet


@pytest.mark.parametrize("name", ["aes128gcm16", "aes256gcm16", "chacha20poly1305", "aes128-sha256"])
@pytest.mark.parametrize("mode", ["tunnel", "transport"])
def test_through_a_udp_socket_both_ways(name: str, mode: str) -> None:
    # what a socket on port 4500 sends and receives: the ESP packet alone
    # (RFC 3948 §2.1); scapy sees it inside the IP and UDP headers the
    # kernel would write
    ours, theirs = pair(name, mode, True, 4)
    outer = ("192.0.2.1", "198.51.100.2") if mode == "tunnel" else ("10.1.0.1", "10.2.0.1")
    for size in (0, 1, 100, 1300):
        packet = inner_packet(4, size)
        esp = ours.encapsulate_udp_payload(packet)
        datagram = IP(src=outer[0], dst=outer[1], tos=0xB8) / UDP(sport=4500, dport=4500) / Raw(esp)
        opened = bytes(theirs.decrypt(IP(bytes(datagram))))
        assert opened == packet if mode == "tunnel" else opened[20:] == packet[20:]
        sent = IP(bytes(theirs.encrypt(parse(packet))))
        got = ours.decapsulate_udp_payload(bytes(sent[UDP].payload), outer[0], outer[1])
        assert got == packet if mode == "tunnel" else (got[12:20], got[20:]) == (packet[12:20], packet[20:])
    assert ours.counters.packets_in == 4
