"""The fast paths of raw ESP in transport mode over IPv4
(secpath.esp.transport, and esp_spi's in secpath.esp.sad) against the
general code they shortcut: the same wire bytes and rebuilt packets (IPv4
header fields, checksum included), the same typed refusals and drops, the
same counters, window and lifetime events, for packets that take the fast
paths and for those that leave them (IPv4 options, fragments, lengths,
padding, dummy packets, replays, tampering)."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secpath.errors import LocalError
from secpath.esp import EspDrop, Lifetime, LifetimeExpiredError, SecurityAssociation
from secpath.esp.errors import EspParseError, NatKeepalive, NonEspMarker
from secpath.esp.ip import checksum
from secpath.esp.sad import _esp_spi, esp_spi
from secpath.esp.transforms import make_transform
from secpath.secret import Secret
from tests.unit.test_esp_fastpath import KEY, General, assert_counter_stops, assert_same_lifetimes

TRANSFORMS = {"aes128gcm16": KEY, "aes256gcm16": bytes(range(36)),
              "chacha20poly1305": bytes(range(36))}


def make(cls: type[SecurityAssociation], transform: str = "aes128gcm16",
         **kwargs: object) -> SecurityAssociation:
    return cls(0x1000, transform, TRANSFORMS[transform], mode="transport",
               **kwargs)  # type: ignore[arg-type]


def pair(transform: str = "aes128gcm16",
         **kwargs: object) -> tuple[SecurityAssociation, SecurityAssociation]:
    return make(SecurityAssociation, transform, **kwargs), make(General, transform, **kwargs)


def packet_v4(payload: bytes, *, proto: int = 17, tos: int = 0, ident: int = 7,
              flags: int = 0x4000, ttl: int = 64, src: bytes = bytes([10, 0, 0, 1]),
              dst: bytes = bytes([10, 0, 0, 2]), options: bytes = b"",
              length: int | None = None) -> bytes:
    ihl = 5 + len(options) // 4
    total = ihl * 4 + len(payload) if length is None else length
    header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, total, ident, flags, ttl,
                                   proto, 0, src, dst) + options)
    header[10:12] = struct.pack("!H", checksum(header))
    return bytes(header) + payload


def outcome(sa: SecurityAssociation, packet: bytes) -> bytes | str:
    try:
        return sa.decapsulate(packet)
    except (EspDrop, LifetimeExpiredError) as exc:
        return f"{type(exc).__name__}: {exc}"


def gcm_esp(plaintext: bytes, seq: int, *, ident: int = 9, flags: int = 0x4000,
            src: bytes = bytes([10, 0, 0, 2]), dst: bytes = bytes([10, 0, 0, 1])) -> bytes:
    """A raw AES-GCM ESP packet (IV = sequence number) around any plaintext."""
    t = make_transform("aes128gcm16", spi=0x1000, esn=False, encryption_key=Secret(KEY),
                       integrity_key=None)
    esp = t.seal(struct.pack("!II", 0x1000, seq), seq, plaintext)
    return packet_v4(esp, proto=50, ident=ident, flags=flags, src=src, dst=dst)


def checksum_ok(packet: bytes) -> bool:
    ihl = (packet[0] & 0x0F) * 4
    return checksum(packet[:ihl]) == 0


headers = st.fixed_dictionaries({
    "proto": st.sampled_from([6, 17, 1, 47, 59, 132, 255, 0]),
    "tos": st.integers(0, 255),
    "ident": st.integers(0, 0xFFFF),
    "flags": st.sampled_from([0, 0x4000, 0x8000, 0xC000]),
    "ttl": st.integers(0, 255),
    "src": st.binary(min_size=4, max_size=4),
    "dst": st.binary(min_size=4, max_size=4),
})


@settings(max_examples=150, deadline=None)
@given(transform=st.sampled_from(sorted(TRANSFORMS)),
       packets=st.lists(st.tuples(st.integers(0, 1480), headers), min_size=1, max_size=10),
       window=st.sampled_from([0, 64, 1024]))
def test_both_directions_same_bytes_and_counters(
        transform: str, packets: list[tuple[int, dict[str, object]]], window: int) -> None:
    fast, general = pair(transform, replay_window=window)
    fast_rx, general_rx = pair(transform, replay_window=window)
    for size, fields in packets:
        packet = packet_v4(bytes((i * 13 + size) & 0xFF for i in range(size)),
                           **fields)  # type: ignore[arg-type]
        wire = fast.encapsulate(packet)
        assert wire == general.encapsulate(packet)
        assert checksum_ok(wire) and wire[9] == 50
        inner = outcome(fast_rx, wire)
        assert inner == outcome(general_rx, wire)
        # Next Header 59 is a dummy packet (RFC 4303 §2.6), dropped
        assert inner == (packet if fields["proto"] != 59 else
                         "DummyPacket: dummy packet (RFC 4303 §2.6)")
    for a, b in ((fast, general), (fast_rx, general_rx)):
        assert a.counters == b.counters
        assert a.replay_window.top == b.replay_window.top
        if window:
            assert a.replay_window.blocks == b.replay_window.blocks


@pytest.mark.parametrize("packet", [
    b"", b"\x45", bytes(19),
    packet_v4(bytes(10), length=29),  # longer than given
    packet_v4(bytes(10), length=25),  # shorter than given
    packet_v4(bytes(10), flags=0x2000),  # more fragments
    packet_v4(bytes(10), flags=0x0001),  # a fragment offset
    packet_v4(bytes(10), length=19),
    b"\x50" + bytes(30), b"\x44" + bytes(30), b"\x60" + bytes(45),
])
def test_encapsulate_refuses_the_same(packet: bytes) -> None:
    messages = []
    for sa in pair():
        with pytest.raises(LocalError) as info:
            sa.encapsulate(packet)
        messages.append(str(info.value))
        assert sa.sequence_number == 0
    assert messages[0] == messages[1]


@pytest.mark.parametrize("packet", [
    packet_v4(bytes(40), options=b"\x01\x01\x01\x00"),  # IPv4 options (NOP NOP NOP EOL)
    packet_v4(bytes(40), options=bytes([7, 7, 4, 0, 0, 0, 0, 1])),  # record route
    packet_v4(bytes(3)), packet_v4(b""),
    bytes.fromhex("6000000000081140") + bytes(32) + bytes(8),  # IPv6 UDP
])
def test_off_the_fast_path_both_directions(packet: bytes) -> None:
    fast, general = pair()
    fast_rx, general_rx = pair()
    for _ in range(3):
        wire = fast.encapsulate(packet)
        assert wire == general.encapsulate(packet)
        assert outcome(fast_rx, wire) == outcome(general_rx, wire) == packet
    assert fast.counters == general.counters
    assert fast_rx.counters == general_rx.counters


def test_checksum_of_a_zero_sum() -> None:
    # RFC 1071: a header whose words sum to 0xFFFF (≡ 0) has checksum 0 in
    # the general code, never 0xFFFF; both directions
    fast, general = pair()
    probe = packet_v4(bytes(100), ident=0)
    c0 = struct.unpack_from("!H", General(0x1000, "aes128gcm16", KEY,
                                          mode="transport").encapsulate(probe), 10)[0]
    r0 = 0xFFFF - c0 if c0 else 0  # the sum of the header words for ident 0
    ident = -r0 % 0xFFFF
    packet = packet_v4(bytes(100), ident=ident)
    wire = fast.encapsulate(packet)
    assert wire == general.encapsulate(packet)
    assert wire[10:12] == b"\x00\x00"
    # the rebuilt header: a received packet whose rebuilt header sums to 0
    receiver, general_rx = pair()
    plain_header = packet_v4(bytes(20), ident=0)[:20]
    c0 = struct.unpack_from("!H", plain_header, 10)[0]
    r0 = 0xFFFF - c0 if c0 else 0
    received = gcm_esp(bytes(20) + b"\x01\x02\x02\x11", 1, ident=-r0 % 0xFFFF, src=bytes([10, 0, 0, 1]),
                       dst=bytes([10, 0, 0, 2]))
    rebuilt = receiver.decapsulate(received)
    assert rebuilt == general_rx.decapsulate(received)
    assert rebuilt[10:12] == b"\x00\x00" and checksum_ok(rebuilt)


@pytest.mark.parametrize("plaintext", [
    bytes(40) + b"\x01\x03\x02\x11",  # padding not 1, 2
    bytes(40) + b"\x01\x02\x02\x11",  # good padding
    bytes(40) + b"\x00\x06",
    bytes(3) + b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0c\x06",
    b"\x00\xff",  # pad longer than the payload
    b"\x00" + b"\x01\x01",  # pad 1 of 1 octet: payload_end 0, bad padding octet
    b"\x01\x01\x11",  # pad 1, empty payload
    b"\x00\x11",  # empty payload, no padding
    bytes(60) + b"\x00\x3b",  # dummy packet (RFC 4303 §2.6)
    bytes(16) + b"\x01\x02\x02\x3b",  # dummy packet with padding
    bytes(58) + b"\x00\x04",  # Next Header IPv4 in transport mode: taken as it is
    bytes(256) + bytes(range(1, 256)) + b"\xff\x06",  # the longest padding
])
def test_decapsulate_odd_payloads(plaintext: bytes) -> None:
    fast, general = pair()
    for seq in (1, 2, 2, 70):
        wire = gcm_esp(plaintext, seq)
        assert outcome(fast, wire) == outcome(general, wire)
    assert fast.counters == general.counters
    assert fast.replay_window.top == general.replay_window.top


@settings(max_examples=150, deadline=None)
@given(
    window=st.sampled_from([0, 32, 64, 1024]),
    steps=st.lists(st.tuples(st.integers(min_value=0, max_value=199),
                             st.sampled_from(["as-is", "flip", "ce", "mf", "offset", "long",
                                              "short", "pad", "options", "proto", "spi",
                                              "ttl", "trunc"])),
                   min_size=1, max_size=60),
)
def test_decapsulate_same_outcomes(window: int, steps: list[tuple[int, str]]) -> None:
    # 200 packets across several 64-bit window blocks, delivered in any
    # order, duplicated, tampered with or mangled on the way
    sender = make(SecurityAssociation)
    wires = [sender.encapsulate(packet_v4(bytes(i % 97), ident=i, tos=i % 4)) for i in range(200)]
    fast, general = pair(replay_window=window)
    for index, change in steps:
        wire = bytearray(wires[index])
        if change == "flip":
            wire[-1] ^= 1
        elif change == "ce":
            wire[1] |= 3
        elif change == "mf":
            wire[6] |= 0x20
        elif change == "offset":
            wire[7] |= 1
        elif change == "long":
            wire[2:4] = struct.pack("!H", len(wire) + 1)
        elif change == "short":
            wire[2:4] = struct.pack("!H", len(wire) - 1)
        elif change == "pad":
            wire += bytes(3)  # link-layer padding after the packet
        elif change == "options":
            wire[0] = 0x46
        elif change == "proto":
            wire[9] = 51
        elif change == "spi":
            wire[23] ^= 1
        elif change == "ttl":
            wire[8] = 1
        elif change == "trunc":
            wire = wire[: 20 + index % 40]
        assert outcome(fast, bytes(wire)) == outcome(general, bytes(wire))
    assert fast.counters == general.counters
    assert fast.replay_window.top == general.replay_window.top


@pytest.mark.parametrize("window", [64, 128])
def test_window_ring_wraps(window: int) -> None:
    # RFC 6479: jumping ahead into a block of the ring that still holds bits
    # of an older block clears it first (2 or 4 blocks of 64 here)
    sender = make(SecurityAssociation)
    wires = [sender.encapsulate(packet_v4(bytes(i % 50))) for i in range(400)]
    fast, general = pair(replay_window=window)
    for seq in (71, 130, 200, 199, 260, 263, 330, 327, 391, 392, 390, 7, 200):
        assert outcome(fast, wires[seq - 1]) == outcome(general, wires[seq - 1])
    assert fast.counters == general.counters
    assert fast.replay_window.blocks == general.replay_window.blocks


def test_buffers_other_than_bytes() -> None:
    sender = make(SecurityAssociation)
    fast, _ = pair()
    packet = packet_v4(bytes(100))
    assert fast.decapsulate(bytearray(sender.encapsulate(packet))) == packet  # type: ignore[arg-type]
    assert fast.decapsulate(memoryview(sender.encapsulate(packet))) == packet  # type: ignore[arg-type]


def test_udp_encapsulated_and_non_aead_sas_stay_general() -> None:
    # an ESP-in-UDP SA or an HMAC one keeps the general code; same bytes
    for kwargs in ({"udp_encapsulation": (4500, 4500)}, {}):
        transform = "aes128gcm16" if kwargs else "aes128-sha256"
        enc = KEY if kwargs else bytes(range(16))
        integrity = None if kwargs else bytes(range(32))
        sas = [cls(0x1000, transform, enc, integrity, mode="transport", **kwargs)  # type: ignore[arg-type]
               for cls in (SecurityAssociation, General, SecurityAssociation)]
        packet = packet_v4(bytes(200))
        wire = sas[0].encapsulate(packet)
        assert wire == sas[1].encapsulate(packet)
        assert sas[2].decapsulate(wire) == packet


@pytest.mark.parametrize("lifetime", [
    Lifetime(soft_packets=3, hard_packets=5),
    Lifetime(hard_packets=1),
    Lifetime(soft_bytes=300, hard_bytes=700),
    Lifetime(soft_bytes=100, hard_packets=6),
])
def test_lifetimes_both_directions(lifetime: Lifetime) -> None:
    assert_same_lifetimes(make(SecurityAssociation), *pair(lifetime=lifetime), packet_v4)


def test_32_bit_counter_stops_on_the_fast_path_too() -> None:
    assert_counter_stops(*pair(), packet_v4(bytes(20)))


# -- esp_spi: the IPv4 shortcut against the general parser ---------------------

def spi_outcome(function: Callable[[bytes], int], packet: bytes) -> int | str:
    try:
        return function(packet)
    except (EspParseError, NatKeepalive, NonEspMarker) as exc:
        return f"{type(exc).__name__}: {exc}"


@settings(max_examples=300, deadline=None)
@given(size=st.integers(0, 40), edits=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 255)),
                                                max_size=4),
       cut=st.integers(0, 100))
def test_esp_spi_same_as_the_general_parser(size: int, edits: list[tuple[int, int]],
                                            cut: int) -> None:
    packet = bytearray(gcm_esp(bytes(size) + b"\x00\x11", 5))
    for at, value in edits:
        if at < len(packet):
            packet[at] = value
    data = bytes(packet[: len(packet) - cut % 60])
    assert spi_outcome(esp_spi, data) == spi_outcome(_esp_spi, data)


@pytest.mark.parametrize("packet", [
    gcm_esp(b"\x00\x11", 1),
    gcm_esp(b"\x00\x11", 1) + bytes(4),  # link-layer padding
    packet_v4(struct.pack("!II", 0x1000, 1), proto=50),  # exactly an ESP header
    packet_v4(struct.pack("!I", 0x1000), proto=50),  # truncated
    packet_v4(struct.pack("!II", 0x1000, 1), proto=50, flags=0x2000),  # fragment
    packet_v4(struct.pack("!II", 0x1000, 1), proto=50, options=b"\x01\x01\x01\x00"),
    packet_v4(struct.pack("!HHHH", 4500, 4500, 9, 0) + b"\xff", proto=17),  # keepalive
    packet_v4(struct.pack("!HHHH", 4500, 4500, 16, 0) + bytes(8), proto=17),  # non-ESP marker
    packet_v4(struct.pack("!HHHH", 4500, 4500, 16, 0) + struct.pack("!II", 7, 1), proto=17),
])
def test_esp_spi_examples(packet: bytes) -> None:
    assert spi_outcome(esp_spi, packet) == spi_outcome(_esp_spi, packet)
