"""The UDP-socket API of an SA (``encapsulate_udp_payload``,
``decapsulate_udp_payload``) against what the policy agent did before it:
``encapsulate`` with the outer IP and UDP headers cut, ``decapsulate`` of
the datagram behind a synthetic IP + UDP header (agent/packets.py).  The
same ESP bytes, inner packets, typed drops, counters, window and lifetime
events, in tunnel and transport mode (NAT: the checksums over the
addresses received, RFC 3948 §3.1.2), on the fast paths and off them."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secpath.errors import LocalError
from secpath.esp import EspDrop, Lifetime, LifetimeExpiredError, SecurityAssociation
from secpath.esp.datagram import _nat_checksum
from secpath.esp.ip import checksum, pseudo_header_sum, transport_checksum
from secpath.esp.modes import nat_checksum
from tests.udp_reference import UdpHeaders, strip_outer_udp
from tests.unit.test_esp_fastpath import KEY, General, gcm_esp, ipv4

PEER, ME = "198.51.100.7", "192.0.2.2"  # the outer addresses the socket reports
TUNNEL = ("192.0.2.1", "192.0.2.2")
TUNNEL6 = ("2001:db8::1", "2001:db8::2")
KINDS = [
    ("aes128gcm16", "tunnel", TUNNEL),
    ("chacha20poly1305", "tunnel", TUNNEL),
    ("aes256gcm16", "tunnel", TUNNEL6),
    ("aes128gcm16", "transport", None),
    ("chacha20poly1305", "transport", None),
    ("aes128-sha256", "tunnel", TUNNEL),  # not AEAD: the general path
    ("aes128-sha256", "transport", None),
]
HEADERS = UdpHeaders()


def key(transform: str) -> bytes:
    return {"aes128gcm16": KEY, "aes256gcm16": bytes(range(36)),
            "chacha20poly1305": bytes(range(36))}.get(transform, bytes(range(16)))


def make(cls: type[SecurityAssociation], transform: str, mode: str,
         tunnel: tuple[str, str] | None, **kwargs: object) -> SecurityAssociation:
    integrity = None if "gcm" in transform or "chacha" in transform else bytes(range(32))
    return cls(0x1000, transform, key(transform), integrity, mode=mode,  # type: ignore[arg-type]
               tunnel=tunnel, udp_encapsulation=(4500, 4500), **kwargs)  # type: ignore[arg-type]


def pair(transform: str, mode: str, tunnel: tuple[str, str] | None,
         **kwargs: object) -> tuple[SecurityAssociation, SecurityAssociation]:
    return (make(SecurityAssociation, transform, mode, tunnel, **kwargs),
            make(General, transform, mode, tunnel, **kwargs))


def with_checksum(packet: bytes, proto: int) -> bytes:
    """``packet`` with its TCP/UDP checksum filled in over its own addresses."""
    at = {6: 36, 17: 26}.get(proto)
    if at is None or len(packet) < at + 2 + (12 if proto == 6 else 0):
        return packet
    fixed = bytearray(packet)
    fixed[at : at + 2] = struct.pack("!H", transport_checksum(packet[12:16], packet[16:20], proto,
                                                               packet[20:]))
    return bytes(fixed)


def inner(size: int, proto: int = 17, tos: int = 0) -> bytes:
    payload = bytearray((i * 7 + size) & 0xFF for i in range(size))
    if proto == 17 and size >= 8:
        payload[4:6] = struct.pack("!H", size)
    return with_checksum(ipv4(bytes(payload), proto=proto, tos=tos), proto)


def old_send(sa: SecurityAssociation, packet: bytes) -> bytes:
    """The agent's send path before the UDP-socket API."""
    return strip_outer_udp(sa.encapsulate(packet))


def send(sa: SecurityAssociation, packet: bytes) -> bytes:
    return sa.encapsulate_udp_payload(packet)


def old_receive(sa: SecurityAssociation, esp: bytes, source: str = PEER,
                destination: str = ME) -> bytes | str:
    """The agent's receive path before the UDP-socket API."""
    header = HEADERS.header(source, destination, 4500, 4500, len(esp))
    try:
        return sa.decapsulate(header + esp)
    except (EspDrop, LifetimeExpiredError) as exc:
        return type(exc).__name__


def receive(sa: SecurityAssociation, esp: bytes, source: str = PEER,
            destination: str = ME) -> bytes | str:
    try:
        return sa.decapsulate_udp_payload(esp, source, destination)
    except (EspDrop, LifetimeExpiredError) as exc:
        return type(exc).__name__


def same_state(fast: SecurityAssociation, general: SecurityAssociation) -> None:
    assert fast.counters == general.counters
    assert fast.replay_window.top == general.replay_window.top
    if general.replay_window.size:  # window 0 keeps one block nobody reads
        assert fast.replay_window.blocks == general.replay_window.blocks
    assert fast.take_events() == general.take_events()


@pytest.mark.parametrize(("transform", "mode", "tunnel"), KINDS)
@settings(max_examples=40, deadline=None)
@given(packets=st.lists(st.tuples(st.integers(min_value=0, max_value=1400),
                                  st.sampled_from([6, 17, 1, 47]),
                                  st.integers(min_value=0, max_value=255)),
                        min_size=1, max_size=8))
def test_encapsulate_udp_payload_is_encapsulate_without_headers(
        transform: str, mode: str, tunnel: tuple[str, str] | None,
        packets: list[tuple[int, int, int]]) -> None:
    fast, general = pair(transform, mode, tunnel)
    for size, proto, tos in packets:
        packet = inner(size, proto, tos)
        assert fast.encapsulate_udp_payload(packet) == old_send(general, packet)
    same_state(fast, general)


@pytest.mark.parametrize(("transform", "mode", "tunnel"), KINDS)
@pytest.mark.parametrize("packet", [
    b"", b"\x45", bytes(19), ipv4(bytes(10), length=29), b"\x60" + bytes(45), b"\x50" + bytes(30),
    ipv4(bytes(10), length=20),  # a buffer longer than the packet
])
def test_encapsulate_udp_payload_refuses_the_same(transform: str, mode: str,
                                                  tunnel: tuple[str, str] | None,
                                                  packet: bytes) -> None:
    for sa in pair(transform, mode, tunnel):
        with pytest.raises(LocalError):
            sa.encapsulate_udp_payload(packet)
        assert sa.sequence_number == 0


def test_encapsulate_udp_payload_leaves_the_fast_path_the_same() -> None:
    # transport mode: IPv4 options, a fragment, IPv6; tunnel mode: IPv6 inside
    options = bytearray(ipv4(bytes(24)))
    options[0], options[2:4] = 0x46, struct.pack("!H", 44)
    fragment = bytearray(ipv4(bytes(24), df=False))
    fragment[6] = 0x20  # more fragments
    v6 = struct.pack("!IHBB16s16s", 0x60000000, 12, 17, 64, bytes(16), bytes(15) + b"\x01") + bytes(12)
    for mode, tunnel in (("transport", None), ("tunnel", TUNNEL)):
        fast, general = pair("aes128gcm16", mode, tunnel)
        for packet in (bytes(options), bytes(fragment), v6, inner(100)):
            results = []
            for sa, out in ((fast, send), (general, old_send)):
                try:
                    results.append(out(sa, packet))
                except LocalError as exc:
                    results.append(str(exc).encode())
                assert sa.sequence_number == fast.sequence_number
            assert results[0] == results[1]
        same_state(fast, general)


def wires(transform: str, mode: str, tunnel: tuple[str, str] | None, count: int) -> list[bytes]:
    """``count`` ESP packets a general-path sender puts in UDP datagrams."""
    sender = make(General, transform, mode, tunnel)
    return [strip_outer_udp(sender.encapsulate(inner(i % 97 + (30 if i % 3 else 0), (6, 17, 1)[i % 3],
                                                     tos=i % 4)))
            for i in range(count)]


@pytest.mark.parametrize(("transform", "mode", "tunnel"), KINDS)
@settings(max_examples=40, deadline=None)
@given(
    window=st.sampled_from([0, 32, 64, 1024]),
    steps=st.lists(st.tuples(st.integers(min_value=0, max_value=149),
                             st.sampled_from(["as-is", "as-is", "flip", "spi", "cut"])),
                   min_size=1, max_size=40),
)
def test_decapsulate_udp_payload_is_decapsulate_behind_a_header(
        transform: str, mode: str, tunnel: tuple[str, str] | None, window: int,
        steps: list[tuple[int, str]]) -> None:
    # 150 packets across several 64-bit window blocks, in any order,
    # duplicated, tampered with, cut short or for another SA
    sent = wires(transform, mode, tunnel, 150)
    fast, general = pair(transform, mode, tunnel, replay_window=window)
    general_api = make(General, transform, mode, tunnel, replay_window=window)
    for index, change in steps:
        esp = bytearray(sent[index])
        if change == "flip":
            esp[-1] ^= 1
        elif change == "spi":
            esp[3] ^= 1
        elif change == "cut":
            del esp[index % len(esp):]
        got = receive(fast, bytes(esp))
        assert got == old_receive(general, bytes(esp)) == receive(general_api, bytes(esp))
    same_state(fast, general)
    same_state(general_api, general)


@pytest.mark.parametrize(("transform", "mode", "tunnel"), KINDS)
def test_decapsulate_udp_payload_recomputes_nat_checksums(transform: str, mode: str,
                                                          tunnel: tuple[str, str] | None) -> None:
    sent = wires(transform, mode, tunnel, 6)
    fast, general = pair(transform, mode, tunnel)
    for i, esp in enumerate(sent):
        got = receive(fast, esp)
        assert got == old_receive(general, esp)
        assert isinstance(got, bytes)
        if mode == "transport":
            # the rebuilt header names the addresses received; TCP and UDP
            # checksums verify over them (RFC 3948 §3.1.2)
            assert got[12:20] == bytes([198, 51, 100, 7, 192, 0, 2, 2])
            assert checksum(got[:20]) == 0
            proto = (6, 17, 1)[i % 3]
            if proto != 1 and len(got) >= (40 if proto == 6 else 28):
                assert checksum(got[20:], pseudo_header_sum(got[12:16], got[16:20], proto,
                                                            len(got) - 20)) == 0
    same_state(fast, general)


@pytest.mark.parametrize(("transform", "mode", "tunnel"), KINDS)
@pytest.mark.parametrize("esp", [b"", b"\xff", b"\x00\x00\x00\x00" + bytes(40), bytes(20), bytes(60)])
def test_what_else_arrives_on_port_4500(transform: str, mode: str, tunnel: tuple[str, str] | None,
                                        esp: bytes) -> None:
    fast, general = pair(transform, mode, tunnel)
    assert receive(fast, esp) == old_receive(general, esp)
    same_state(fast, general)


@pytest.mark.parametrize("mode", ["tunnel", "transport"])
@pytest.mark.parametrize("plaintext", [
    ipv4(bytes(40)) + bytes(30) + b"\x00\x04",  # TFC padding (RFC 4303 §2.7)
    ipv4(bytes(40)) + b"\x01\x03\x02\x04",  # padding not 1, 2
    ipv4(bytes(40)) + b"\x00\x29",  # claims IPv6
    ipv4(bytes(40), length=80) + b"\x00\x04",
    b"\x00" * 60 + b"\x00\x3b",  # dummy packet (RFC 4303 §2.6)
    b"\x60" + bytes(59) + b"\x00\x04",
    bytes(30) + b"\x01\x02\x03\x04\x04\x06",  # padding 1..4, TCP
    bytes(30) + b"\x01\x02\x03\x05\x04\x06",  # padding not 1..4
    b"\x01\x02\x03\x04\x05\x06" + b"\x06\x11",  # Pad Length beyond the payload
    b"\x00\x11",  # nothing but the trailer: an empty UDP payload
    bytes(8) + b"\x00\x11",  # a UDP header with a zero checksum
])
def test_leaving_the_fast_path_after_the_icv(mode: str, plaintext: bytes) -> None:
    tunnel = TUNNEL if mode == "tunnel" else None
    fast, general = pair("aes128gcm16", mode, tunnel)
    for seq in (1, 2, 70):
        esp = gcm_esp(plaintext, seq)
        assert receive(fast, esp) == old_receive(general, esp)
    same_state(fast, general)


@pytest.mark.parametrize("mode", ["tunnel", "transport"])
def test_other_outer_addresses(mode: str) -> None:
    tunnel = TUNNEL if mode == "tunnel" else None
    sent = wires("aes128gcm16", mode, tunnel, 8)
    fast, general = pair("aes128gcm16", mode, tunnel)
    # IPv6 (transport mode: the general path), a peer whose NAT mapping moved
    for esp, (source, destination) in zip(sent, [(PEER, ME), ("2001:db8::7", "2001:db8::1"),
                                                   ("203.0.113.9", ME), (PEER, ME)] * 2, strict=False):
        assert receive(fast, esp, source, destination) == old_receive(general, esp, source, destination)
    same_state(fast, general)
    for source, destination in (("192.0.2.1", "2001:db8::1"), ("not an address", ME)):
        with pytest.raises(LocalError):
            fast.decapsulate_udp_payload(sent[0], source, destination)


@pytest.mark.parametrize("mode", ["tunnel", "transport"])
@pytest.mark.parametrize("lifetime", [
    Lifetime(soft_packets=3, hard_packets=5),
    Lifetime(hard_packets=1),
    Lifetime(soft_bytes=300, hard_bytes=700),
    Lifetime(soft_bytes=100, hard_packets=6),
])
def test_lifetimes_both_directions(mode: str, lifetime: Lifetime) -> None:
    tunnel = TUNNEL if mode == "tunnel" else None
    sender = make(General, "aes128gcm16", mode, tunnel)
    fast, general = pair("aes128gcm16", mode, tunnel, lifetime=lifetime)
    for size in (80, 120, 60, 200, 100, 90, 70):
        packet = inner(size)
        esp = strip_outer_udp(sender.encapsulate(packet))
        results: list[object] = []
        for sa, out, back in ((fast, send, receive), (general, old_send, old_receive)):
            try:
                results.append(out(sa, packet))
            except LifetimeExpiredError as exc:
                results.append(str(exc))
            results.append(back(sa, esp))
        assert results[:2] == results[2:]
        same_state(fast, general)
        assert (fast.soft_expired, fast.hard_expired) == (general.soft_expired, general.hard_expired)


def test_32_bit_counter_stops_on_the_fast_path_too() -> None:
    for mode, tunnel in (("tunnel", TUNNEL), ("transport", None)):
        fast, general = pair("aes128gcm16", mode, tunnel)
        for sa in (fast, general):
            sa._seq_out = 0xFFFFFFFE
            sa._set_fast_limits()
        assert fast.encapsulate_udp_payload(inner(20)) == strip_outer_udp(general.encapsulate(inner(20)))
        for sa in (fast, general):
            with pytest.raises(LocalError, match="exhausted"):
                sa.encapsulate_udp_payload(inner(20))
        same_state(fast, general)


@settings(max_examples=300, deadline=None)
@given(payload=st.one_of(
           st.binary(max_size=80),
           st.integers(min_value=0, max_value=40).map(bytes),  # all zero
           st.integers(min_value=0, max_value=40).map(lambda n: b"\xff" * n),  # sums to 0xFFFF
           st.tuples(st.integers(min_value=0, max_value=30), st.binary(min_size=2, max_size=2)).map(
               lambda t: bytes(16) + t[1] + bytes(t[0]))),  # zero but the checksum field
       next_header=st.sampled_from([6, 17, 1, 50]),
       addresses=st.binary(min_size=8, max_size=8))
def test_the_inlined_nat_checksum(payload: bytes, next_header: int, addresses: bytes) -> None:
    src, dst = addresses[:4], addresses[4:]
    total = int.from_bytes(addresses, "big") % 0xFFFF
    assert _nat_checksum(src, dst, total, next_header, payload) == nat_checksum(
        src, dst, next_header, payload, 4)
