"""ESP data-plane throughput (issue 3), packets per second.

For ``aes128gcm16``, ``chacha20poly1305``, ``aes128-sha256`` and
``3des-sha1`` at 64, 512 and 1400-byte packets (the inner IPv4 packet):
``encapsulate`` (tunnel mode) and ``decapsulate`` (anti-replay on, window
1024).  Baselines measured in the same run, on the same packets:

* encapsulate against a bare ``cryptography`` ``AESGCM.encrypt`` loop (one
  long-lived object, fixed nonce, 8-byte AAD) over the same inner packet:
  the ceiling for any AES-GCM ESP in Python;
* decapsulate against a bare ``AESGCM.decrypt`` loop over the same fresh
  ESP packets, nonce, ciphertext and AAD cut out beforehand (decrypting one
  ciphertext over and over would be about 10 % faster than any receiver
  can be: the packets are 1.4 MB apart in memory);
* scapy's ESP ``SecurityAssociation.encrypt`` / ``decrypt``, bytes in and
  bytes out like secpath (parse with ``IP(...)``, serialize with ``bytes``);
* for reference, the interpreter's floor: the least any ESP in Python does
  per packet, with no checks, counters or state.  Encapsulation: one
  function call, one ``struct.pack`` of the outer IPv4 + ESP header + IV,
  the nonce and the AAD packed, the AEAD call, the padding and the
  concatenations.  Decapsulation: one call, one ``unpack_from`` of the
  headers, the nonce packed, the ciphertext and AAD sliced, the AEAD call,
  the trailer cut off.

The AES-GCM baselines are the yardstick of every row (for the other
transforms they say how far from AES-GCM's ceiling they are).  The machine
may be shared, so time is CPU time (``time.process_time``) and every round
times all loops back to back: the ``x`` ratios are the median of the
per-round ratios, the packet rates the best round.  Decapsulate rounds use
fresh packets, encapsulated outside the timed region.  Targets (issue 3,
aes128gcm16, 1400 B): encapsulate >= 0.6 x bare encrypt, decapsulate
>= 0.5 x bare decrypt, and >= 200 x scapy.

Then the UDP-socket API a daemon uses for ESP in UDP 4500 (RFC 3948),
aes128gcm16, 1400 B, tunnel and transport mode (the receiver behind a NAT:
transport mode recomputes the inner UDP checksum, RFC 3948 §3.1.2):
``encapsulate_udp_payload`` / ``decapsulate_udp_payload`` against the same
bare AES-GCM loops, and against the path the policy agent took before it
(``encapsulate`` of an ESP-in-UDP SA and the outer IP + UDP header cut off;
a synthetic IP + UDP header in front of the datagram and ``decapsulate``).

Last, raw ESP (IP protocol 50, no UDP) in transport mode, the default
between servers on one network, aes128gcm16, 1400 B: ``encapsulate`` /
``decapsulate`` against the same bare AES-GCM loops and against the same
SA with its fast paths switched off (the general code, which this mode
took before it had fast paths).

Run: ``python -m bench esp`` (or ``python -m bench.bench_esp``).
"""

from __future__ import annotations

import os
import statistics
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from scapy.layers import ipsec as scapy_ipsec
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw
from tests.udp_reference import UdpHeaders, strip_outer_udp

from secpath.esp import SecurityAssociation
from secpath.esp.transforms import parse_transform

TRANSFORMS = ("aes128gcm16", "chacha20poly1305", "aes128-sha256", "3des-sha1")
SIZES = (64, 512, 1400)
SCAPY_NAMES = {
    "aes128gcm16": ("AES-GCM", None),
    "chacha20poly1305": ("CHACHA20-POLY1305", None),
    "aes128-sha256": ("AES-CBC", "SHA2-256-128"),
    "3des-sha1": ("3DES", "HMAC-SHA1-96"),
}
SCAPY_SA: Any = scapy_ipsec.SecurityAssociation  # untyped in scapy
TUNNEL = ("192.0.2.1", "192.0.2.2")
BATCH = 1000
ROUNDS = 15
SCAPY_BATCH = 50
SCAPY_ROUNDS = 3


@dataclass
class Result:
    bare_encrypt: float  # packets/s, best round
    bare_decrypt: float
    encapsulate: float
    decapsulate: float
    encapsulate_ratio: float  # median over rounds of encapsulate / bare encrypt
    decapsulate_ratio: float  # median over rounds of decapsulate / bare decrypt
    scapy_encrypt: float
    scapy_decrypt: float
    floor_encapsulate_ratio: float  # median over rounds of the Python floors / bare
    floor_decapsulate_ratio: float


def inner_packet(size: int) -> bytes:
    return bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5060, dport=5060)
                 / Raw(os.urandom(size - 28)))


def keys(name: str) -> tuple[bytes, bytes | None]:
    enc, integ = parse_transform(name)
    return (os.urandom(enc.key_bytes + enc.salt_bytes),
            os.urandom(integ.key_bytes) if integ else None)


def cpu_seconds(run: Callable[[], None]) -> float:
    start = time.process_time()
    run()
    return time.process_time() - start


def median_ratio(base: list[float], other: list[float]) -> float:
    return statistics.median(b / o for b, o in zip(base, other, strict=True))


def measure(name: str, packet: bytes) -> Result:
    enc, integ = keys(name)
    sender = SecurityAssociation(0x1000, name, enc, integ, tunnel=TUNNEL)
    source = SecurityAssociation(0x1000, name, enc, integ, tunnel=TUNNEL)
    receiver = SecurityAssociation(0x1000, name, enc, integ, tunnel=TUNNEL,
                                   replay_window=1024)
    key = os.urandom(16)
    aead = AESGCM(key)
    nonce, aad = os.urandom(12), os.urandom(8)
    encrypt, decrypt = aead.encrypt, aead.decrypt
    encapsulate, decapsulate = sender.encapsulate, receiver.decapsulate
    # the decrypt baselines open AES-GCM ESP packets of the same size
    aes_salt = os.urandom(4)
    aes_source = SecurityAssociation(0x1000, "aes128gcm16", key + aes_salt, None, tunnel=TUNNEL)

    def run_bare_encrypt() -> None:
        for _ in range(BATCH):
            encrypt(nonce, packet, aad)

    def run_encapsulate() -> None:
        for _ in range(BATCH):
            encapsulate(packet)

    floor_pack = struct.Struct("!BBHHHHH8sIIQ").pack
    nonce_pack = struct.Struct("!4sQ").pack
    aad_pack = struct.Struct("!II").pack
    unpack_headers = struct.Struct("!HH2xHxB10xIIQ").unpack_from
    salt, trailer, addresses = os.urandom(4), b"\x01\x02\x04", bytes(8)

    def floor_encapsulate(seq: int) -> bytes:
        return floor_pack(0x45, 0, 1440, seq & 0xFFFF, 0, 0x4032, 0, addresses, 0x1000, seq,
                          seq) + encrypt(nonce_pack(salt, seq), packet + trailer,
                                         aad_pack(0x1000, seq))

    def run_floor_encapsulate() -> None:
        for seq in range(1, BATCH + 1):
            floor_encapsulate(seq)

    def floor_decapsulate(wire: bytes) -> bytes:
        _, end, _, _, _, _, iv = unpack_headers(wire)
        plain = decrypt(nonce_pack(aes_salt, iv), wire[36:end], wire[20:28])
        return plain[: len(plain) - 2 - plain[-2]]

    bare_e: list[float] = []
    bare_d: list[float] = []
    encap: list[float] = []
    decap: list[float] = []
    floor_e: list[float] = []
    floor_d: list[float] = []
    for _ in range(ROUNDS):
        wires = [source.encapsulate(packet) for _ in range(BATCH)]
        aes_wires = [aes_source.encapsulate(packet) for _ in range(BATCH)]
        opened = [(aes_salt + w[28:36], w[36:], w[20:28]) for w in aes_wires]

        def run_decapsulate(wires: list[bytes] = wires) -> None:
            for wire in wires:
                decapsulate(wire)

        def run_bare_decrypt(opened: list[tuple[bytes, bytes, bytes]] = opened) -> None:
            for n, ciphertext, a in opened:
                decrypt(n, ciphertext, a)

        def run_floor_decapsulate(wires: list[bytes] = aes_wires) -> None:
            for wire in wires:
                floor_decapsulate(wire)

        bare_e.append(cpu_seconds(run_bare_encrypt))
        encap.append(cpu_seconds(run_encapsulate))
        floor_e.append(cpu_seconds(run_floor_encapsulate))
        bare_d.append(cpu_seconds(run_bare_decrypt))
        decap.append(cpu_seconds(run_decapsulate))
        floor_d.append(cpu_seconds(run_floor_decapsulate))
    assert receiver.counters.packets_in == BATCH * ROUNDS
    scapy_encrypt, scapy_decrypt = scapy_rates(name, packet)
    return Result(
        bare_encrypt=BATCH / min(bare_e), bare_decrypt=BATCH / min(bare_d),
        encapsulate=BATCH / min(encap), decapsulate=BATCH / min(decap),
        encapsulate_ratio=median_ratio(bare_e, encap),
        decapsulate_ratio=median_ratio(bare_d, decap),
        scapy_encrypt=scapy_encrypt, scapy_decrypt=scapy_decrypt,
        floor_encapsulate_ratio=median_ratio(bare_e, floor_e),
        floor_decapsulate_ratio=median_ratio(bare_d, floor_d),
    )


@dataclass
class UdpResult:
    encapsulate: float  # packets/s, best round
    decapsulate: float
    encapsulate_ratio: float  # median over rounds of encapsulate_udp_payload / bare encrypt
    decapsulate_ratio: float  # median over rounds of decapsulate_udp_payload / bare decrypt
    encapsulate_speedup: float  # median over rounds of the new / the agent's former path
    decapsulate_speedup: float


def measure_udp(mode: str, packet: bytes) -> UdpResult:
    """The UDP-socket API of an aes128gcm16 SA in ``mode``, ESP in UDP 4500."""
    enc, _ = keys("aes128gcm16")
    tunnel = TUNNEL if mode == "tunnel" else None

    def sa() -> SecurityAssociation:
        return SecurityAssociation(0x1000, "aes128gcm16", enc, None, mode=mode,  # type: ignore[arg-type]
                                   tunnel=tunnel, udp_encapsulation=(4500, 4500))

    sender, old_sender, source, receiver, old_receiver = (sa() for _ in range(5))
    aead = AESGCM(enc[:16])
    encrypt, decrypt = aead.encrypt, aead.decrypt
    nonce, aad, salt = os.urandom(12), os.urandom(8), enc[16:]
    encapsulate, old_encapsulate = sender.encapsulate_udp_payload, old_sender.encapsulate
    decapsulate, old_decapsulate = receiver.decapsulate_udp_payload, old_receiver.decapsulate
    header = UdpHeaders().header
    peer, me = "198.51.100.7", "192.0.2.2"

    def run_bare_encrypt() -> None:
        for _ in range(BATCH):
            encrypt(nonce, packet, aad)

    def run_encapsulate() -> None:
        for _ in range(BATCH):
            encapsulate(packet)

    def run_old_encapsulate() -> None:
        for _ in range(BATCH):
            strip_outer_udp(old_encapsulate(packet))

    bare_e: list[float] = []
    bare_d: list[float] = []
    encap: list[float] = []
    decap: list[float] = []
    old_e: list[float] = []
    old_d: list[float] = []
    for _ in range(ROUNDS):
        datagrams = [source.encapsulate_udp_payload(packet) for _ in range(BATCH)]
        opened = [(salt + d[8:16], d[16:], d[:8]) for d in datagrams]

        def run_decapsulate(datagrams: list[bytes] = datagrams) -> None:
            for datagram in datagrams:
                decapsulate(datagram, peer, me)

        def run_old_decapsulate(datagrams: list[bytes] = datagrams) -> None:
            for datagram in datagrams:
                old_decapsulate(header(peer, me, 4500, 4500, len(datagram)) + datagram)

        def run_bare_decrypt(opened: list[tuple[bytes, bytes, bytes]] = opened) -> None:
            for n, ciphertext, a in opened:
                decrypt(n, ciphertext, a)

        bare_e.append(cpu_seconds(run_bare_encrypt))
        encap.append(cpu_seconds(run_encapsulate))
        old_e.append(cpu_seconds(run_old_encapsulate))
        bare_d.append(cpu_seconds(run_bare_decrypt))
        decap.append(cpu_seconds(run_decapsulate))
        old_d.append(cpu_seconds(run_old_decapsulate))
    assert receiver.counters.packets_in == old_receiver.counters.packets_in == BATCH * ROUNDS
    return UdpResult(
        encapsulate=BATCH / min(encap), decapsulate=BATCH / min(decap),
        encapsulate_ratio=median_ratio(bare_e, encap),
        decapsulate_ratio=median_ratio(bare_d, decap),
        encapsulate_speedup=median_ratio(old_e, encap),
        decapsulate_speedup=median_ratio(old_d, decap),
    )


class _General(SecurityAssociation):
    """An SA with its fast paths switched off: the general code."""

    __slots__ = ()

    def _set_fast_limits(self) -> None:
        self._fast_out_until = self._fast_udp_out_until = 0
        self._fast_in_min = self._fast_udp_in_min = 1 << 64


def measure_raw_transport(packet: bytes) -> UdpResult:
    """Raw ESP in transport mode, aes128gcm16: ``encapsulate`` and
    ``decapsulate`` (the ``*_speedup`` fields: against the general code)."""
    enc, _ = keys("aes128gcm16")

    def sa(cls: type[SecurityAssociation] = SecurityAssociation) -> SecurityAssociation:
        return cls(0x1000, "aes128gcm16", enc, None, mode="transport")

    sender, general_sender, source, receiver, general_receiver = (
        sa(), sa(_General), sa(), sa(), sa(_General))
    aead = AESGCM(enc[:16])
    encrypt, decrypt = aead.encrypt, aead.decrypt
    nonce, aad, salt = os.urandom(12), os.urandom(8), enc[16:]
    encapsulate, general_encapsulate = sender.encapsulate, general_sender.encapsulate
    decapsulate, general_decapsulate = receiver.decapsulate, general_receiver.decapsulate

    def run_bare_encrypt() -> None:
        for _ in range(BATCH):
            encrypt(nonce, packet, aad)

    def run_encapsulate() -> None:
        for _ in range(BATCH):
            encapsulate(packet)

    def run_general_encapsulate() -> None:
        for _ in range(BATCH):
            general_encapsulate(packet)

    times: dict[str, list[float]] = {k: [] for k in ("bare_e", "e", "old_e", "bare_d", "d", "old_d")}
    for _ in range(ROUNDS):
        wires = [source.encapsulate(packet) for _ in range(BATCH)]
        opened = [(salt + w[28:36], w[36:], w[20:28]) for w in wires]

        def run_decapsulate(wires: list[bytes] = wires) -> None:
            for wire in wires:
                decapsulate(wire)

        def run_general_decapsulate(wires: list[bytes] = wires) -> None:
            for wire in wires:
                general_decapsulate(wire)

        def run_bare_decrypt(opened: list[tuple[bytes, bytes, bytes]] = opened) -> None:
            for n, ciphertext, a in opened:
                decrypt(n, ciphertext, a)

        times["bare_e"].append(cpu_seconds(run_bare_encrypt))
        times["e"].append(cpu_seconds(run_encapsulate))
        times["old_e"].append(cpu_seconds(run_general_encapsulate))
        times["bare_d"].append(cpu_seconds(run_bare_decrypt))
        times["d"].append(cpu_seconds(run_decapsulate))
        times["old_d"].append(cpu_seconds(run_general_decapsulate))
    assert receiver.counters.packets_in == general_receiver.counters.packets_in == BATCH * ROUNDS
    return UdpResult(
        encapsulate=BATCH / min(times["e"]), decapsulate=BATCH / min(times["d"]),
        encapsulate_ratio=median_ratio(times["bare_e"], times["e"]),
        decapsulate_ratio=median_ratio(times["bare_d"], times["d"]),
        encapsulate_speedup=median_ratio(times["old_e"], times["e"]),
        decapsulate_speedup=median_ratio(times["old_d"], times["d"]),
    )


def scapy_rates(name: str, packet: bytes) -> tuple[float, float]:
    enc, integ = keys(name)
    crypt, auth = SCAPY_NAMES[name]
    sa = SCAPY_SA(scapy_ipsec.ESP, spi=0x1000, crypt_algo=crypt, crypt_key=enc,
                  auth_algo=auth, auth_key=integ, tunnel_header=IP(src=TUNNEL[0], dst=TUNNEL[1]))

    def run_encrypt() -> None:
        for _ in range(SCAPY_BATCH):
            bytes(sa.encrypt(IP(packet)))

    wires = [bytes(sa.encrypt(IP(packet))) for _ in range(SCAPY_BATCH)]

    def run_decrypt() -> None:
        for wire in wires:
            bytes(sa.decrypt(IP(wire)))

    encrypt = min(cpu_seconds(run_encrypt) for _ in range(SCAPY_ROUNDS))
    decrypt = min(cpu_seconds(run_decrypt) for _ in range(SCAPY_ROUNDS))
    return SCAPY_BATCH / encrypt, SCAPY_BATCH / decrypt


def main() -> None:
    print("enc x bare: encapsulate / bare AESGCM.encrypt; dec x bare: decapsulate / bare "
          "AESGCM.decrypt (same packets);\nfloor: the least any Python ESP does, / the same "
          "bare loop; x scapy: secpath / scapy ESP")
    print(f"{'transform':<17} {'size':>5} {'encap pkt/s':>12} {'decap pkt/s':>12} "
          f"{'bare enc':>10} {'bare dec':>10} {'enc x bare':>10} {'dec x bare':>10} "
          f"{'scapy enc':>10} {'scapy dec':>10} {'enc x scapy':>11} {'dec x scapy':>11} "
          f"{'floor enc':>9} {'floor dec':>9}")
    verdicts: list[str] = []
    for name in TRANSFORMS:
        for size in SIZES:
            r = measure(name, inner_packet(size))
            enc_scapy = r.encapsulate / r.scapy_encrypt
            dec_scapy = r.decapsulate / r.scapy_decrypt
            print(f"{name:<17} {size:>5} {r.encapsulate:>12,.0f} {r.decapsulate:>12,.0f} "
                  f"{r.bare_encrypt:>10,.0f} {r.bare_decrypt:>10,.0f} "
                  f"{r.encapsulate_ratio:>9.2f}x {r.decapsulate_ratio:>9.2f}x "
                  f"{r.scapy_encrypt:>10,.0f} {r.scapy_decrypt:>10,.0f} "
                  f"{enc_scapy:>10,.0f}x {dec_scapy:>10,.0f}x "
                  f"{r.floor_encapsulate_ratio:>8.2f}x {r.floor_decapsulate_ratio:>8.2f}x",
                  flush=True)
            if name == "aes128gcm16" and size == 1400:
                verdicts = [
                    f"encapsulate / bare AESGCM.encrypt = {r.encapsulate_ratio:.2f} "
                    "(target >= 0.6): " + ("met" if r.encapsulate_ratio >= 0.6 else "MISSED"),
                    f"decapsulate / bare AESGCM.decrypt = {r.decapsulate_ratio:.2f} "
                    "(target >= 0.5): " + ("met" if r.decapsulate_ratio >= 0.5 else "MISSED"),
                    f"encapsulate / scapy = {enc_scapy:,.0f} (target >= 200): "
                    + ("met" if enc_scapy >= 200 else "MISSED"),
                    f"decapsulate / scapy = {dec_scapy:,.0f} (target >= 200): "
                    + ("met" if dec_scapy >= 200 else "MISSED"),
                    f"(the Python floors, no checks or state: encapsulate "
                    f"{r.floor_encapsulate_ratio:.2f} x bare encrypt, decapsulate "
                    f"{r.floor_decapsulate_ratio:.2f} x bare decrypt)",
                ]
    print("\naes128gcm16, 1400 B:")
    for line in verdicts:
        print("  " + line)
    print("\nESP in UDP through a socket, aes128gcm16, 1400 B: encapsulate_udp_payload / "
          "decapsulate_udp_payload;\nx bare as above; x old: / the agent's former path "
          "(encapsulate + strip IP/UDP; synthetic IP/UDP + decapsulate)")
    print(f"{'mode':<17} {'size':>5} {'encap pkt/s':>12} {'decap pkt/s':>12} "
          f"{'enc x bare':>10} {'dec x bare':>10} {'enc x old':>10} {'dec x old':>10}")
    for mode in ("tunnel", "transport"):
        u = measure_udp(mode, inner_packet(1400))
        print(f"{mode:<17} {1400:>5} {u.encapsulate:>12,.0f} {u.decapsulate:>12,.0f} "
              f"{u.encapsulate_ratio:>9.2f}x {u.decapsulate_ratio:>9.2f}x "
              f"{u.encapsulate_speedup:>9.2f}x {u.decapsulate_speedup:>9.2f}x", flush=True)
    main_raw_transport()


def main_raw_transport() -> None:
    """The raw transport-mode row alone: ``python -c 'from bench.bench_esp import
    main_raw_transport; main_raw_transport()'``."""
    print("\nRaw ESP (protocol 50) in transport mode, aes128gcm16: encapsulate / decapsulate;\n"
          "x bare as above; x general: / the same SA with its fast paths off")
    print(f"{'mode':<17} {'size':>5} {'encap pkt/s':>12} {'decap pkt/s':>12} "
          f"{'enc x bare':>10} {'dec x bare':>10} {'enc x gen':>10} {'dec x gen':>10}")
    r = measure_raw_transport(inner_packet(1400))
    print(f"{'transport (raw)':<17} {1400:>5} {r.encapsulate:>12,.0f} {r.decapsulate:>12,.0f} "
          f"{r.encapsulate_ratio:>9.2f}x {r.decapsulate_ratio:>9.2f}x "
          f"{r.encapsulate_speedup:>9.2f}x {r.decapsulate_speedup:>9.2f}x", flush=True)


if __name__ == "__main__":
    main()
