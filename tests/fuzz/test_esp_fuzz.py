"""Hypothesis over ESP decoding: random bytes and mutations of valid packets
only ever raise the typed drops (``EspDrop``); nothing else escapes."""

from __future__ import annotations

import contextlib
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw

from secpath.esp import EspDrop, EspParseError, SecurityAssociation, classify_udp_payload
from secpath.esp.ip import parse_ip
from secpath.esp.sad import SecurityAssociationDatabase
from secpath.esp.transforms import parse_transform

TRANSFORMS = ["aes128gcm16", "chacha20poly1305", "aes128-sha256", "3des-sha1", "null-sha256"]
KEYS = {}
for _name in TRANSFORMS:
    _enc, _integ = parse_transform(_name)
    KEYS[_name] = (os.urandom(_enc.key_bytes + _enc.salt_bytes),
                   os.urandom(_integ.key_bytes) if _integ else None)

CONFIGS = [
    (name, mode, udp, family)
    for name in TRANSFORMS
    for mode in ("tunnel", "transport")
    for udp in (False, True)
    for family in (4, 6)
]


def make(config: tuple[str, str, bool, int], esn: bool = False) -> SecurityAssociation:
    name, mode, udp, family = config
    outer = ("192.0.2.1", "192.0.2.2") if family == 4 else ("2001:db8::1", "2001:db8::2")
    return SecurityAssociation(0x1000, name, *KEYS[name], mode=mode,  # type: ignore[arg-type]
                               tunnel=outer if mode == "tunnel" else None,
                               udp_encapsulation=(4500, 4500) if udp else None,
                               esn=esn, replay_window=64)


def inner(family: int, size: int) -> bytes:
    if family == 4:
        return bytes(IP(src="192.0.2.1", dst="192.0.2.2") / UDP() / Raw(b"p" * size))
    return bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP() / Raw(b"p" * size))


def decapsulate_only_drops(sa: SecurityAssociation, data: bytes) -> None:
    try:
        result = sa.decapsulate(data)
    except EspDrop:
        return
    assert isinstance(result, bytes)


@settings(max_examples=300, deadline=None)
@given(config=st.sampled_from(CONFIGS), data=st.binary(max_size=200))
def test_random_bytes(config: tuple[str, str, bool, int], data: bytes) -> None:
    decapsulate_only_drops(make(config), data)


@settings(max_examples=300, deadline=None)
@given(config=st.sampled_from(CONFIGS), version=st.sampled_from([0x45, 0x46, 0x60]),
       proto=st.sampled_from([50, 17]), body=st.binary(max_size=120))
def test_random_esp_behind_a_plausible_header(
    config: tuple[str, str, bool, int], version: int, proto: int, body: bytes
) -> None:
    # a header that passes the first checks, so the fuzzer reaches ESP
    if version == 0x60:
        header = bytes([0x60, 0, 0, 0]) + (len(body)).to_bytes(2, "big") + bytes([proto, 64])
        header += bytes(32)
    else:
        ihl = (version & 0x0F) * 4
        header = bytes([version, 0]) + (ihl + len(body)).to_bytes(2, "big") + bytes(5)
        header += bytes([proto]) + bytes(ihl - 10)
    decapsulate_only_drops(make(config), header + body)


@st.composite
def mutation(draw: st.DrawFn) -> tuple[tuple[str, str, bool, int], bytes, bool]:
    config = draw(st.sampled_from(CONFIGS))
    esn = draw(st.booleans())
    wire = bytearray(make(config, esn).encapsulate(inner(config[3],
                                                         draw(st.integers(0, 80)))))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "extend", "set"]))
        if kind == "flip" and wire:
            i = draw(st.integers(0, len(wire) - 1))
            wire[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate" and wire:
            del wire[draw(st.integers(0, len(wire) - 1)):]
        elif kind == "extend":
            wire += draw(st.binary(min_size=1, max_size=20))
        elif kind == "set" and wire:
            wire[draw(st.integers(0, len(wire) - 1))] = draw(st.integers(0, 255))
    return config, bytes(wire), esn


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutation())
def test_mutated_packets(case: tuple[tuple[str, str, bool, int], bytes, bool]) -> None:
    config, wire, esn = case
    decapsulate_only_drops(make(config, esn), wire)


@st.composite
def udp_payload(draw: st.DrawFn) -> tuple[tuple[str, str, bool, int], bytes, bool]:
    """What a UDP socket on port 4500 may hand over: random bytes, or a
    valid ESP packet cut, extended or with bits flipped."""
    config = draw(st.sampled_from(CONFIGS))
    esn = draw(st.booleans())
    if draw(st.booleans()):
        return config, draw(st.binary(max_size=200)), esn
    esp = bytearray(make(config, esn).encapsulate_udp_payload(inner(config[3],
                                                                    draw(st.integers(0, 80)))))
    kind = draw(st.sampled_from(["flip", "truncate", "extend"]))
    if kind == "flip":
        esp[draw(st.integers(0, len(esp) - 1))] ^= 1 << draw(st.integers(0, 7))
    elif kind == "truncate":
        del esp[draw(st.integers(0, len(esp) - 1)):]
    else:
        esp += draw(st.binary(min_size=1, max_size=20))
    return config, bytes(esp), esn


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=udp_payload(), v6=st.booleans())
def test_udp_payloads_through_a_socket(case: tuple[tuple[str, str, bool, int], bytes, bool],
                                       v6: bool) -> None:
    config, esp, esn = case
    source, destination = ("2001:db8::7", "2001:db8::1") if v6 else ("198.51.100.7", "192.0.2.2")
    try:
        result = make(config, esn).decapsulate_udp_payload(esp, source, destination)
    except EspDrop:
        return
    assert isinstance(result, bytes)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=120), transport=st.booleans())
def test_parse_ip_raises_only_parse_error(data: bytes, transport: bool) -> None:
    with contextlib.suppress(EspParseError):
        parse_ip(data, transport=transport)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=40))
def test_udp_demultiplexing_and_sad(data: bytes) -> None:
    with contextlib.suppress(EspParseError):
        classify_udp_payload(data)
    sad = SecurityAssociationDatabase()
    sad.add(make(CONFIGS[0]))
    with contextlib.suppress(EspDrop):
        sad.decapsulate(bytes(IP(src="192.0.2.1", dst="192.0.2.2") / UDP(dport=4500)
                              / Raw(data)))
