"""secpath.esp.ip: checksums, header parsing, RFC 6040 ECN."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrRouting
from scapy.packet import Raw

from secpath.esp.errors import EcnError, EspParseError
from secpath.esp.ip import (
    CE,
    ECT0,
    ECT1,
    NOT_ECT,
    checksum,
    ecn_decapsulate,
    ecn_encapsulate,
    parse_ip,
    transport_checksum,
)


def reference_checksum(data: bytes) -> int:
    # RFC 1071 §4.1, word by word
    if len(data) % 2:
        data += b"\x00"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=100))
def test_checksum_matches_rfc1071(data: bytes) -> None:
    ours, ref = checksum(data), reference_checksum(data)
    # 0x0000 and 0xFFFF are the two zeros of ones' complement
    assert ours == ref or ({ours, ref} == {0, 0xFFFF} and not any(data))


def test_checksum_of_ffff_words() -> None:
    assert checksum(b"\xff\xff") == 0  # the sum is "-0": its complement is 0


def test_udp_checksum_agrees_with_scapy() -> None:
    for _ in range(20):
        pkt = IP(src="10.0.0.1", dst="10.9.8.7") / UDP(sport=1, dport=2) / Raw(os.urandom(33))
        built = IP(bytes(pkt))
        segment = bytearray(bytes(built[UDP]))
        segment[6:8] = b"\x00\x00"
        value = transport_checksum(bytes(built)[12:16], bytes(built)[16:20], 17, segment)
        assert value == built[UDP].chksum


def test_parse_ipv4_and_ipv6() -> None:
    v4 = bytes(IP(src="10.0.0.1", dst="10.0.0.2", tos=0x2A) / UDP() / Raw(b"x"))
    h = parse_ip(v4)
    assert (h.version, h.header_end, h.total_length, h.next_header, h.traffic_class) == (
        4, 20, len(v4), 17, 0x2A)
    v6 = bytes(IPv6(src="::1", dst="::2", tc=0x11) / UDP() / Raw(b"x"))
    h6 = parse_ip(v6)
    assert (h6.version, h6.header_end, h6.next_header, h6.traffic_class) == (6, 40, 17, 0x11)


def test_transport_split_point_follows_rfc4303_3_1_1() -> None:
    # destination options before a routing header stay in front of ESP,
    # destination options after it follow ESP
    pkt = bytes(IPv6(src="::1", dst="::2") / IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting()
                / IPv6ExtHdrDestOpt() / UDP())
    h = parse_ip(pkt, transport=True)
    assert h.header_end == 40 + 8 + 8 and h.next_header == 60
    only_dest = bytes(IPv6(src="::1", dst="::2") / IPv6ExtHdrDestOpt() / UDP())
    assert parse_ip(only_dest, transport=True).header_end == 40


@pytest.mark.parametrize("data", [
    bytes(IP(src="10.0.0.1", dst="10.0.0.2", flags="MF") / UDP()),
    bytes(IP(src="10.0.0.1", dst="10.0.0.2", frag=10) / UDP()),
    bytes(IPv6(src="::1", dst="::2") / IPv6ExtHdrFragment() / UDP()),
    bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP())[:-1],
    b"\x4f" + bytes(30),
    b"\x40" + bytes(30),
])
def test_fragments_and_bad_headers_refused(data: bytes) -> None:
    with pytest.raises(EspParseError):
        parse_ip(data, transport=True)


def test_ecn_encapsulation_rfc6040_4_1() -> None:
    assert ecn_encapsulate(0xB8 | CE) == 0xB8 | ECT0
    for ecn in (NOT_ECT, ECT0, ECT1):
        assert ecn_encapsulate(0xB8 | ecn) == 0xB8 | ecn


@pytest.mark.parametrize(("inner", "outer", "result"), [
    # RFC 6040 §4.2, Figure 4 (rows: arriving inner, columns: arriving outer)
    (NOT_ECT, NOT_ECT, NOT_ECT), (NOT_ECT, ECT0, NOT_ECT), (NOT_ECT, ECT1, NOT_ECT),
    (ECT0, NOT_ECT, ECT0), (ECT0, ECT0, ECT0), (ECT0, ECT1, ECT1), (ECT0, CE, CE),
    (ECT1, NOT_ECT, ECT1), (ECT1, ECT0, ECT1), (ECT1, ECT1, ECT1), (ECT1, CE, CE),
    (CE, NOT_ECT, CE), (CE, ECT0, CE), (CE, ECT1, CE), (CE, CE, CE),
])
def test_ecn_decapsulation_table(inner: int, outer: int, result: int) -> None:
    assert ecn_decapsulate(inner, outer) == result


def test_ecn_decapsulation_drop_cell() -> None:
    with pytest.raises(EcnError):
        ecn_decapsulate(NOT_ECT, CE)
