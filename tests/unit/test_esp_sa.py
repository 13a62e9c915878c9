"""secpath.esp.sa: one security association, encapsulate/decapsulate,
typed and counted drops, lifetimes, sequence numbers, outer headers."""

from __future__ import annotations

import os
import struct

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw

from secpath.errors import LocalError, RemoteError
from secpath.esp import (
    DecryptError,
    DummyPacket,
    EcnError,
    EspDrop,
    EspParseError,
    HardLifetimeExpired,
    IntegrityError,
    Lifetime,
    LifetimeExpiredError,
    NatKeepalive,
    NonEspMarker,
    PaddingError,
    ParseError,
    ReplayError,
    SecurityAssociation,
    SequenceOverflowError,
    SoftLifetimeExpired,
    UnknownSpiError,
)
from secpath.esp.ip import checksum
from secpath.esp.transforms import make_transform
from secpath.secret import Secret

GCM_KEY = bytes(range(20))
SHA256_KEY = bytes(range(32))
TUNNEL = ("192.0.2.1", "192.0.2.2")


def gcm(**kwargs: object) -> SecurityAssociation:
    kwargs.setdefault("tunnel", TUNNEL)
    return SecurityAssociation(0x1000, "aes128gcm16", GCM_KEY, **kwargs)  # type: ignore[arg-type]


def packet(tos: int = 0, size: int = 64, flags: str = "DF") -> bytes:
    return bytes(IP(src="10.0.0.1", dst="10.0.0.2", tos=tos, flags=flags)
                 / UDP(sport=1000, dport=2000) / Raw(b"\x42" * size))


def ipv4(payload: bytes, proto: int, tos: int = 0) -> bytes:
    header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + len(payload), 7, 0, 64,
                                   proto, 0, bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])))
    header[10:12] = struct.pack("!H", checksum(header))
    return bytes(header) + payload


def null_esp(plaintext: bytes, seq: int = 1, spi: int = 0x1000) -> bytes:
    """An ESP packet with a valid ICV around an arbitrary plaintext (null-sha256)."""
    t = make_transform("null-sha256", spi=spi, esn=False, encryption_key=None,
                       integrity_key=Secret(SHA256_KEY))
    return t.seal(struct.pack("!II", spi, seq), seq, plaintext)


def null_sa(mode: str = "transport") -> SecurityAssociation:
    return SecurityAssociation(0x1000, "null-sha256", None, SHA256_KEY, mode=mode,  # type: ignore[arg-type]
                               tunnel=TUNNEL if mode == "tunnel" else None)


class TestConstruction:
    @pytest.mark.parametrize("kwargs", [
        dict(spi=0, transform="aes128gcm16", encryption_key=GCM_KEY, tunnel=TUNNEL),
        dict(spi=255, transform="aes128gcm16", encryption_key=GCM_KEY, tunnel=TUNNEL),
        dict(spi=1 << 32, transform="aes128gcm16", encryption_key=GCM_KEY, tunnel=TUNNEL),
        dict(spi=0x1000, transform="rot13", encryption_key=GCM_KEY, tunnel=TUNNEL),
        dict(spi=0x1000, transform="aes128gcm16", encryption_key=bytes(16), tunnel=TUNNEL),
        dict(spi=0x1000, transform="aes128gcm16", encryption_key=GCM_KEY,
             integrity_key=SHA256_KEY, tunnel=TUNNEL),
        dict(spi=0x1000, transform="aes128-sha256", encryption_key=bytes(16), tunnel=TUNNEL),
        dict(spi=0x1000, transform="aes128-sha256", encryption_key=bytes(16),
             integrity_key=bytes(20), tunnel=TUNNEL),
        dict(spi=0x1000, transform="null-sha256", encryption_key=bytes(16),
             integrity_key=SHA256_KEY, tunnel=TUNNEL),
        dict(spi=0x1000, transform="aes128gcm16", encryption_key=GCM_KEY),
        dict(spi=0x1000, transform="aes128gcm16", encryption_key=GCM_KEY, mode="transport",
             tunnel=TUNNEL),
        dict(spi=0x1000, transform="aes128gcm16", encryption_key=GCM_KEY, mode="beet",
             tunnel=TUNNEL),
        dict(spi=0x1000, transform="aes128gcm16", encryption_key=GCM_KEY,
             tunnel=("192.0.2.1", "2001:db8::1")),
        dict(spi=0x1000, transform="aes128gcm16", encryption_key=GCM_KEY,
             tunnel=("192.0.2.1", "not-an-address")),
        dict(spi=0x1000, transform="aes128gcm16", encryption_key=GCM_KEY, tunnel=TUNNEL,
             udp_encapsulation=(0, 4500)),
        dict(spi=0x1000, transform="aes128gcm16", encryption_key=GCM_KEY, tunnel=TUNNEL,
             replay_window=-1),
    ])
    def test_bad_settings_are_local_errors(self, kwargs: dict[str, object]) -> None:
        with pytest.raises(LocalError):
            SecurityAssociation(**kwargs)  # type: ignore[arg-type]

    def test_repr_and_errors_never_show_keys(self) -> None:
        key = bytes.fromhex("5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7")
        sa = SecurityAssociation(0x1000, "aes128gcm16", key, tunnel=TUNNEL)
        assert key.hex() not in repr(sa)
        assert "5ec7" not in repr(sa)
        with pytest.raises(LocalError) as info:
            SecurityAssociation(0x1000, "aes128gcm16", key[:-1], tunnel=TUNNEL)
        assert key[:-1].hex()[:8] not in str(info.value)

    def test_accepts_secret_keys(self) -> None:
        sa = SecurityAssociation(0x1000, "aes128-sha256", Secret(bytes(16)),
                                 Secret(SHA256_KEY), tunnel=TUNNEL)
        peer = SecurityAssociation(0x1000, "aes128-sha256", bytes(16), SHA256_KEY, tunnel=TUNNEL)
        assert peer.decapsulate(sa.encapsulate(packet())) == packet()


class TestTunnelOuterHeader:
    def test_ipv4_outer_header_fields(self) -> None:
        sa = gcm(udp_encapsulation=(4500, 4500))
        wire = sa.encapsulate(packet(tos=0xB8 | 0x03))  # DSCP EF, ECN CE
        outer = IP(wire)
        assert (outer.src, outer.dst) == TUNNEL
        assert outer.tos == 0xB8 | 0x02  # RFC 6040 §4.1: CE → ECT(0), DSCP copied
        assert outer.flags == "DF"  # copied (RFC 4301 §8.1)
        assert outer.ttl == 64
        assert outer.proto == 17
        assert checksum(wire[:20]) == 0  # header checksum verifies
        assert outer[UDP].sport == 4500 and outer[UDP].chksum == 0

    def test_df_clear_copied(self) -> None:
        assert IP(gcm().encapsulate(packet(flags=""))).flags == 0

    def test_ipv6_outer_traffic_class(self) -> None:
        sa = gcm(tunnel=("2001:db8::1", "2001:db8::2"), udp_encapsulation=(4500, 4500))
        inner = bytes(IPv6(src="2001:db8:1::1", dst="2001:db8:2::1", tc=0x2A)
                      / UDP() / Raw(b"x" * 10))
        outer = IPv6(sa.encapsulate(inner))
        assert outer.tc == 0x2A and outer.nh == 17 and outer.hlim == 64
        # RFC 8200 §8.1: the UDP checksum over IPv6 is computed and verifies
        sent = outer[UDP].chksum
        del outer[UDP].chksum
        assert IPv6(bytes(outer))[UDP].chksum == sent != 0

    def test_ipv4_in_ipv6_and_back(self) -> None:
        six = ("2001:db8::1", "2001:db8::2")
        out, inn = gcm(tunnel=six), gcm(tunnel=six)
        assert inn.decapsulate(out.encapsulate(packet())) == packet()

    def test_not_ip_refused(self) -> None:
        for junk in (b"", b"\x00" * 40, packet()[:-1], b"\x45" + bytes(10)):
            with pytest.raises(LocalError):
                gcm().encapsulate(junk)


class TestTransportMode:
    @pytest.mark.parametrize("udp", [None, (4500, 4500)])
    def test_ipv4_protocol_length_checksum(self, udp: tuple[int, int] | None) -> None:
        sa = gcm(tunnel=None, mode="transport", udp_encapsulation=udp)
        original = bytes(IP(src="192.0.2.1", dst="192.0.2.2", id=99)
                         / TCP(sport=1, dport=2) / Raw(b"y" * 33))
        wire = sa.encapsulate(original)
        outer = IP(wire)
        assert outer.proto == (17 if udp else 50)
        assert outer.len == len(wire)
        assert outer.id == 99
        assert checksum(wire[:20]) == 0
        assert gcm(tunnel=None, mode="transport", udp_encapsulation=udp).decapsulate(
            wire) == original

    def test_ipv6_keeps_hop_by_hop_in_front(self) -> None:
        from scapy.layers.inet6 import IPv6ExtHdrHopByHop

        sa = gcm(tunnel=None, mode="transport")
        original = bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrHopByHop()
                         / UDP() / Raw(b"z" * 20))
        wire = sa.encapsulate(original)
        parsed = IPv6(wire)
        assert parsed.nh == 0 and parsed[IPv6ExtHdrHopByHop].nh == 50
        assert parsed.plen == len(wire) - 40
        assert gcm(tunnel=None, mode="transport").decapsulate(wire) == original

    def test_nat_traversal_fixes_the_transport_checksum(self) -> None:
        # RFC 3948 §3.1.2: a NAT rewrote the source address on the way
        for inner in (TCP(sport=1, dport=2), UDP(sport=1, dport=2)):
            sa = gcm(tunnel=None, mode="transport", udp_encapsulation=(4500, 4500))
            original = bytes(IP(src="10.0.0.1", dst="192.0.2.2") / inner / Raw(b"q" * 21))
            natted = IP(sa.encapsulate(original))
            natted.src = "203.0.113.7"
            del natted.chksum
            received = gcm(tunnel=None, mode="transport",
                           udp_encapsulation=(4500, 4500)).decapsulate(bytes(natted))
            check = IP(received)
            assert check.src == "203.0.113.7"
            layer = check[TCP] if check.proto == 6 else check[UDP]
            sent = layer.chksum
            del layer.chksum
            recomputed = IP(bytes(check)).getlayer(type(layer))
            assert recomputed is not None and recomputed.chksum == sent


class TestDecapsulateDrops:
    def test_integrity_failure_typed_and_counted(self) -> None:
        out, inn = gcm(), gcm()
        wire = bytearray(out.encapsulate(packet()))
        wire[-1] ^= 1
        with pytest.raises(IntegrityError):
            inn.decapsulate(bytes(wire))
        assert inn.counters.integrity_failures == 1
        assert inn.decapsulate(out.encapsulate(packet())) == packet()  # window untouched

    def test_cbc_integrity_checked_before_decryption(self) -> None:
        keys = (bytes(16), SHA256_KEY)
        out = SecurityAssociation(0x1000, "aes128-sha256", *keys, tunnel=TUNNEL)
        inn = SecurityAssociation(0x1000, "aes128-sha256", *keys, tunnel=TUNNEL)
        wire = bytearray(out.encapsulate(packet()))
        wire[40] ^= 0x80  # inside the ciphertext
        with pytest.raises(IntegrityError):
            inn.decapsulate(bytes(wire))
        # the long-lived decryptor was not disturbed
        assert inn.decapsulate(out.encapsulate(packet())) == packet()

    def test_cbc_ciphertext_not_whole_blocks(self) -> None:
        keys = (bytes(16), SHA256_KEY)
        out = SecurityAssociation(0x1000, "aes128-sha256", *keys, tunnel=TUNNEL)
        inn = SecurityAssociation(0x1000, "aes128-sha256", *keys, tunnel=TUNNEL)
        wire = out.encapsulate(packet())
        cut = ipv4(wire[20:-17] + wire[-16:], 50)  # one ciphertext octet removed
        with pytest.raises(DecryptError):
            inn.decapsulate(cut)
        assert inn.counters.decrypt_failures == 1

    def test_replay_typed_and_counted(self) -> None:
        out, inn = gcm(), gcm()
        wire = out.encapsulate(packet())
        inn.decapsulate(wire)
        with pytest.raises(ReplayError):
            inn.decapsulate(wire)
        assert inn.counters.replays == 1
        assert inn.counters.packets_in == 1

    def test_unknown_spi(self) -> None:
        other = SecurityAssociation(0x2000, "aes128gcm16", GCM_KEY, tunnel=TUNNEL)
        sa = gcm()
        with pytest.raises(UnknownSpiError) as info:
            sa.decapsulate(other.encapsulate(packet()))
        assert info.value.spi == 0x2000
        assert sa.counters.unknown_spi == 1

    @pytest.mark.parametrize("junk", [b"", b"\x45", bytes(19), b"\x60" + bytes(30),
                                      ipv4(b"", 50), ipv4(bytes(12), 50), ipv4(bytes(40), 6),
                                      ipv4(bytes(4), 17), b"\x75" + bytes(40)])
    def test_malformed_is_parse_error(self, junk: bytes) -> None:
        sa = gcm()
        with pytest.raises(EspParseError):
            sa.decapsulate(junk)
        assert sa.counters.parse_errors == 1
        assert issubclass(EspParseError, ParseError)

    def test_bad_padding(self) -> None:
        inner = packet()
        bad = inner + b"\x01\x03" + b"\x02\x04"  # padding must be 1, 2
        sa = null_sa("tunnel")
        with pytest.raises(PaddingError):
            sa.decapsulate(ipv4(null_esp(bad), 50))
        too_long = inner[:2] + b"\x09\x04"  # Pad Length beyond the payload
        with pytest.raises(PaddingError):
            sa.decapsulate(ipv4(null_esp(too_long, seq=2), 50))
        assert sa.counters.bad_padding == 2

    def test_good_padding_accepted(self) -> None:
        inner = packet()
        sa = null_sa("tunnel")
        assert sa.decapsulate(ipv4(null_esp(inner + b"\x01\x02\x02\x04"), 50)) == inner

    def test_tfc_padding_after_inner_packet_is_removed(self) -> None:
        # RFC 4303 §2.7: the inner header's length says where the packet ends
        inner = packet()
        sa = null_sa("tunnel")
        assert sa.decapsulate(ipv4(null_esp(inner + bytes(30) + b"\x00\x04"), 50)) == inner

    def test_next_header_mismatch_is_decrypt_error(self) -> None:
        sa = null_sa("tunnel")
        with pytest.raises(DecryptError):
            sa.decapsulate(ipv4(null_esp(packet() + b"\x00\x29"), 50))  # claims IPv6
        assert sa.counters.decrypt_failures == 1

    def test_dummy_packet_dropped_silently(self) -> None:
        # RFC 4303 §2.6: Next Header 59
        sa = null_sa("tunnel")
        with pytest.raises(DummyPacket) as info:
            sa.decapsulate(ipv4(null_esp(b"\x00\x00\x00\x3b"), 50))
        assert info.value.silent
        assert sa.counters.dummy_packets == 1

    def test_nat_keepalive_dropped_silently(self) -> None:
        sa = gcm(udp_encapsulation=(4500, 4500))
        keepalive = bytes(IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=4500, dport=4500)
                          / Raw(b"\xff"))
        with pytest.raises(NatKeepalive) as info:
            sa.decapsulate(keepalive)
        assert info.value.silent
        assert sa.counters.nat_keepalives == 1
        assert sa.counters.parse_errors == 0

    def test_non_esp_marker_hands_ike_back(self) -> None:
        sa = gcm(udp_encapsulation=(4500, 4500))
        ike = b"\x00\x00\x00\x00" + os.urandom(40)
        datagram = bytes(IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=4500, dport=4500)
                         / Raw(ike))
        with pytest.raises(NonEspMarker) as info:
            sa.decapsulate(datagram)
        assert info.value.payload == ike
        assert sa.counters.non_esp == 1

    def test_ecn_ce_on_not_ect_inner_is_dropped(self) -> None:
        # RFC 6040 §4.2: outer CE, inner Not-ECT → drop
        out, inn = gcm(), gcm()
        wire = bytearray(out.encapsulate(packet(tos=0)))
        wire[1] |= 3
        wire[10:12] = b"\x00\x00"
        wire[10:12] = struct.pack("!H", checksum(wire[:20]))
        with pytest.raises(EcnError):
            inn.decapsulate(bytes(wire))
        assert inn.counters.ecn_drops == 1

    def test_ecn_ce_propagates_to_ect_inner(self) -> None:
        out, inn = gcm(), gcm()
        wire = bytearray(out.encapsulate(packet(tos=0xB8 | 2)))  # ECT(0)
        wire[1] |= 3  # a router marked CE on the outer header
        wire[10:12] = b"\x00\x00"
        wire[10:12] = struct.pack("!H", checksum(wire[:20]))
        inner = inn.decapsulate(bytes(wire))
        assert inner[1] == 0xB8 | 3
        assert checksum(inner[:20]) == 0  # the inner header checksum was fixed

    def test_every_drop_is_a_remote_error(self) -> None:
        for cls in (EspParseError, UnknownSpiError, ReplayError, IntegrityError, PaddingError,
                    DecryptError, EcnError, NatKeepalive, NonEspMarker, DummyPacket):
            assert issubclass(cls, EspDrop) and issubclass(cls, RemoteError)


class TestSequenceNumbers:
    def test_counter_starts_at_one_and_increments(self) -> None:
        sa = gcm()
        for expected in (1, 2, 3):
            wire = sa.encapsulate(packet())
            assert struct.unpack_from("!I", wire, 24)[0] == expected
        assert sa.sequence_number == 3

    def test_32_bit_counter_never_wraps(self) -> None:
        sa = gcm()
        sa._seq_out = 0xFFFFFFFE
        sa.encapsulate(packet())  # 0xFFFFFFFF is the last one
        with pytest.raises(SequenceOverflowError):
            sa.encapsulate(packet())
        assert sa.sequence_number == 0xFFFFFFFF

    def test_esn_crosses_32_bits_then_stops_at_64(self) -> None:
        out, inn = gcm(esn=True), gcm(esn=True)
        out._seq_out = 0xFFFFFFFE
        inn.replay_window.top = 0xFFFFFFF0
        for _ in range(3):  # ...FFFF, 1_00000000, 1_00000001
            assert inn.decapsulate(out.encapsulate(packet())) == packet()
        assert inn.replay_window.top == (1 << 32) | 1
        out._seq_out = (1 << 64) - 1
        with pytest.raises(SequenceOverflowError):
            out.encapsulate(packet())


class TestLifetime:
    def test_packet_limits_soft_then_hard(self) -> None:
        out = gcm(lifetime=Lifetime(soft_packets=3, hard_packets=5))
        for _ in range(2):
            out.encapsulate(packet())
        assert not out.soft_expired and out.take_events() == []
        out.encapsulate(packet())
        assert out.soft_expired
        assert out.take_events() == [SoftLifetimeExpired(0x1000, "outbound")]
        out.encapsulate(packet())
        out.encapsulate(packet())
        assert out.take_events() == [HardLifetimeExpired(0x1000, "outbound")]
        assert out.hard_expired
        with pytest.raises(LifetimeExpiredError):
            out.encapsulate(packet())
        assert out.counters.lifetime_refusals == 1
        assert out.counters.packets_out == 5

    def test_byte_limits_inbound(self) -> None:
        size = len(packet())
        out = gcm()
        inn = gcm(lifetime=Lifetime(soft_bytes=size * 2, hard_bytes=size * 3))
        for _ in range(3):
            inn.decapsulate(out.encapsulate(packet()))
        assert inn.take_events() == [SoftLifetimeExpired(0x1000, "inbound"),
                                     HardLifetimeExpired(0x1000, "inbound")]
        with pytest.raises(LifetimeExpiredError):
            inn.decapsulate(out.encapsulate(packet()))

    def test_hard_only(self) -> None:
        out = gcm(lifetime=Lifetime(hard_packets=1))
        out.encapsulate(packet())
        assert out.take_events() == [HardLifetimeExpired(0x1000, "outbound")]

    def test_invalid_lifetimes(self) -> None:
        with pytest.raises(ValueError):
            Lifetime(soft_bytes=10, hard_bytes=5)
        with pytest.raises(ValueError):
            Lifetime(hard_packets=0)


class TestCounters:
    def test_confidential_and_authenticated_bytes(self) -> None:
        out, inn = gcm(), gcm()
        inner = packet()
        inn.decapsulate(out.encapsulate(inner))
        padded = len(inner) + 2 + (-(len(inner) + 2)) % 4
        for direction in ("out", "in"):
            c = out.counters if direction == "out" else inn.counters
            assert getattr(c, f"bytes_{direction}") == len(inner)
            assert getattr(c, f"confidential_bytes_{direction}") == padded
            assert getattr(c, f"authenticated_bytes_{direction}") == padded + 16  # hdr + IV

    def test_integrity_only_has_no_confidential_bytes(self) -> None:
        sa = null_sa("tunnel")
        sa.encapsulate(packet())
        assert sa.counters.confidential_bytes_out == 0
        assert sa.counters.authenticated_bytes_out > 0
