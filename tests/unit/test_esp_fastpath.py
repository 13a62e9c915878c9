"""secpath.esp.sa's fast paths (AEAD, IPv4 in an IPv4 tunnel; the UDP-socket
forms in tests/unit/test_esp_fastpath_udp.py) against the
general code they shortcut: the same bytes out, the same inner packets and
typed drops, the same counters, window and lifetime events, for packets
that take the fast path and for those that leave it half-way (ECN, TFC
padding, bad padding, block boundaries of the window, limits)."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secpath.errors import LocalError
from secpath.esp import EspDrop, Lifetime, LifetimeExpiredError, SecurityAssociation
from secpath.esp.ip import checksum
from secpath.esp.sa import _NEVER
from secpath.esp.transforms import make_transform
from secpath.secret import Secret

KEY = bytes(range(20))
TUNNEL = ("192.0.2.1", "192.0.2.2")


class General(SecurityAssociation):
    """The same SA with its fast paths switched off, whatever the limits do."""

    __slots__ = ()

    def _set_fast_limits(self) -> None:
        self._fast_out_until = self._fast_udp_out_until = 0
        self._fast_in_min = self._fast_udp_in_min = _NEVER


def pair(transform: str = "aes128gcm16", **kwargs: object) -> tuple[SecurityAssociation,
                                                                     SecurityAssociation]:
    key = KEY if transform == "aes128gcm16" else bytes(range(36))
    fast = SecurityAssociation(0x1000, transform, key, tunnel=TUNNEL, **kwargs)  # type: ignore[arg-type]
    general = General(0x1000, transform, key, tunnel=TUNNEL, **kwargs)  # type: ignore[arg-type]
    return fast, general


def ipv4(payload: bytes, *, tos: int = 0, df: bool = True, proto: int = 17,
         length: int | None = None) -> bytes:
    header = bytearray(struct.pack(
        "!BBHHHBBH4s4s", 0x45, tos, 20 + len(payload) if length is None else length, 7,
        0x4000 if df else 0, 64, proto, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])))
    header[10:12] = struct.pack("!H", checksum(header))
    return bytes(header) + payload


def outcome(sa: SecurityAssociation, packet: bytes) -> bytes | str:
    try:
        return sa.decapsulate(packet)
    except (EspDrop, LifetimeExpiredError) as exc:
        return type(exc).__name__


def outer(tos: int, esp: bytes) -> bytes:
    """An outer IPv4 header (no options) around an ESP packet."""
    return ipv4(esp, tos=tos, proto=50)


def gcm_esp(plaintext: bytes, seq: int) -> bytes:
    """An AES-GCM ESP packet (IV = sequence number) around any plaintext."""
    t = make_transform("aes128gcm16", spi=0x1000, esn=False, encryption_key=Secret(KEY),
                       integrity_key=None)
    return t.seal(struct.pack("!II", 0x1000, seq), seq, plaintext)


@settings(max_examples=150, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=1480), min_size=1, max_size=12),
       tos=st.integers(min_value=0, max_value=255), df=st.booleans())
def test_encapsulate_same_bytes_and_counters(sizes: list[int], tos: int, df: bool) -> None:
    fast, general = pair()
    for size in sizes:
        packet = ipv4(bytes(size), tos=tos, df=df)
        assert fast.encapsulate(packet) == general.encapsulate(packet)
    assert fast.counters == general.counters
    assert fast.sequence_number == general.sequence_number == len(sizes)


@pytest.mark.parametrize("packet", [b"", b"\x45", bytes(19), ipv4(bytes(10), length=29),
                                    b"\x60" + bytes(45), b"\x50" + bytes(30)])
def test_encapsulate_refuses_the_same(packet: bytes) -> None:
    for sa in pair():
        with pytest.raises(LocalError):
            sa.encapsulate(packet)


@settings(max_examples=150, deadline=None)
@given(
    window=st.sampled_from([0, 32, 64, 1024]),
    steps=st.lists(st.tuples(st.integers(min_value=0, max_value=199),
                             st.sampled_from(["as-is", "flip", "ect0", "ce"])),
                   min_size=1, max_size=60),
)
def test_decapsulate_same_outcomes(window: int, steps: list[tuple[int, str]]) -> None:
    # 200 packets across several 64-bit window blocks, delivered in any
    # order, duplicated, tampered with or ECN-marked on the way
    sender = SecurityAssociation(0x1000, "aes128gcm16", KEY, tunnel=TUNNEL)
    inner = [ipv4(bytes(i % 97), tos=i % 4) for i in range(200)]
    wires = [sender.encapsulate(p) for p in inner]
    fast, general = pair(replay_window=window)
    for index, change in steps:
        wire = bytearray(wires[index])
        if change == "flip":
            wire[-1] ^= 1
        elif change in ("ect0", "ce"):
            wire[1] |= 2 if change == "ect0" else 3
        assert outcome(fast, bytes(wire)) == outcome(general, bytes(wire))
    assert fast.counters == general.counters
    assert fast.replay_window.top == general.replay_window.top


@pytest.mark.parametrize("plaintext", [
    ipv4(bytes(40)) + bytes(30) + b"\x00\x04",  # TFC padding (RFC 4303 §2.7)
    ipv4(bytes(40)) + b"\x01\x03\x02\x04",  # padding not 1, 2
    ipv4(bytes(40)) + b"\x00\x29",  # claims IPv6
    ipv4(bytes(40), length=80) + b"\x00\x04",  # inner longer than the payload
    ipv4(bytes(40), length=19) + b"\x00\x04",
    b"\x45\x00\x00\x10" + bytes(12) + b"\x01\x02\x03\x04\x04\x04",  # a 16-octet "IPv4 packet"
    b"\x00" * 60 + b"\x00\x3b",  # dummy packet (RFC 4303 §2.6)
    b"\x60" + bytes(59) + b"\x00\x04",  # not IPv4 although Next Header says so
])
def test_leaving_the_fast_path_after_the_icv(plaintext: bytes) -> None:
    fast, general = pair()
    for seq in (1, 2):
        wire = outer(0, gcm_esp(plaintext, seq))
        assert outcome(fast, wire) == outcome(general, wire)
    assert fast.counters == general.counters
    assert fast.replay_window.top == general.replay_window.top


def test_bytes_after_the_outer_packet() -> None:
    # a buffer longer than the IPv4 total length (link-layer padding): the
    # general path reads the length from the header
    sender = SecurityAssociation(0x1000, "aes128gcm16", KEY, tunnel=TUNNEL)
    fast, general = pair()
    for seq in range(1, 4):
        wire = sender.encapsulate(ipv4(bytes(seq * 10))) + bytes(seq)
        assert outcome(fast, wire) == outcome(general, wire) == ipv4(bytes(seq * 10))
    assert fast.counters == general.counters


def test_buffers_other_than_bytes() -> None:
    sender = SecurityAssociation(0x1000, "aes128gcm16", KEY, tunnel=TUNNEL)
    fast, _ = pair()
    packet = ipv4(bytes(100))
    # typed bytes, but a receive buffer is taken as it is (as before the fast path)
    assert fast.decapsulate(bytearray(sender.encapsulate(packet))) == packet  # type: ignore[arg-type]
    assert fast.decapsulate(memoryview(sender.encapsulate(packet))) == packet  # type: ignore[arg-type]


@pytest.mark.parametrize("lifetime", [
    Lifetime(soft_packets=3, hard_packets=5),
    Lifetime(hard_packets=1),
    Lifetime(soft_bytes=300, hard_bytes=700),
    Lifetime(soft_bytes=100, hard_packets=6),
])
def test_lifetimes_both_directions(lifetime: Lifetime) -> None:
    sender = SecurityAssociation(0x1000, "aes128gcm16", KEY, tunnel=TUNNEL)
    assert_same_lifetimes(sender, *pair(lifetime=lifetime), ipv4)


def assert_same_lifetimes(sender: SecurityAssociation, fast: SecurityAssociation,
                          general: SecurityAssociation, make_packet: Callable[[bytes], bytes]) -> None:
    """Both SAs send and receive the same packets across their lifetimes:
    the same bytes or refusals, events, counters and expiry (shared with the
    other fast-path tests)."""
    for size in (80, 120, 60, 200, 100, 90, 70):
        packet = make_packet(bytes(size))
        wire = sender.encapsulate(packet)
        results = []
        for sa in (fast, general):
            try:
                results.append((sa.encapsulate(packet), sa.decapsulate(wire)))
            except LifetimeExpiredError as exc:
                results.append(str(exc))  # type: ignore[arg-type]
        assert results[0] == results[1]
        assert fast.take_events() == general.take_events()
        assert fast.counters == general.counters
        assert (fast.soft_expired, fast.hard_expired) == (general.soft_expired,
                                                          general.hard_expired)


def test_32_bit_counter_stops_on_the_fast_path_too() -> None:
    assert_counter_stops(*pair(), ipv4(bytes(20)))


def assert_counter_stops(fast: SecurityAssociation, general: SecurityAssociation, packet: bytes) -> None:
    """RFC 4303 §3.3.3: the last 32-bit sequence number is sent, then the SA refuses."""
    for sa in (fast, general):
        sa._seq_out = 0xFFFFFFFE
        sa._set_fast_limits()
        sa.encapsulate(packet)
    assert fast.sequence_number == general.sequence_number == 0xFFFFFFFF
    for sa in (fast, general):
        with pytest.raises(LocalError, match="exhausted"):
            sa.encapsulate(packet)
