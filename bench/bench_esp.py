"""ESP data-plane throughput (issue 3), packets per second.

For ``aes128gcm16``, ``chacha20poly1305``, ``aes128-sha256`` and
``3des-sha1`` at 64, 512 and 1400-byte packets (the inner IPv4 packet):
``encapsulate`` (tunnel mode) and ``decapsulate`` (anti-replay on, window
1024).  Baselines measured in the same run, on the same packets:

* a bare ``cryptography`` ``AESGCM.encrypt`` loop (one long-lived object,
  fixed nonce, 8-byte AAD): the ceiling for any AES-GCM ESP in Python;
* scapy's ESP ``SecurityAssociation.encrypt`` / ``decrypt``, bytes in and
  bytes out like secpath (parse with ``IP(...)``, serialize with ``bytes``);
* for reference, the interpreter's floor: the least any ESP encapsulation
  in Python does per packet (one function call, one ``struct.pack`` of the
  outer IPv4 + ESP header + IV, the AEAD call, the padding and the
  concatenations), with no checks, counters or state.

The machine may be shared, so time is CPU time (``time.process_time``) and
every round times the bare AESGCM loop, encapsulate and decapsulate back to
back: the ``x bare`` ratios are the median of the per-round ratios, the
packet rates the best round.  Decapsulate rounds use fresh packets,
encapsulated outside the timed region.  Targets (issue 3, aes128gcm16,
1400 B): encapsulate >= 0.6 x bare AESGCM, decapsulate >= 0.5 x, and
>= 200 x scapy.

Run: ``.venv/bin/python bench/bench_esp.py``.
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
    bare: float  # packets/s, best round
    encapsulate: float
    decapsulate: float
    encapsulate_ratio: float  # median over rounds of encapsulate / bare
    decapsulate_ratio: float
    scapy_encrypt: float
    scapy_decrypt: float
    floor_ratio: float  # median over rounds of the Python floor / bare


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


def measure(name: str, packet: bytes) -> Result:
    enc, integ = keys(name)
    sender = SecurityAssociation(0x1000, name, enc, integ, tunnel=TUNNEL)
    source = SecurityAssociation(0x1000, name, enc, integ, tunnel=TUNNEL)
    receiver = SecurityAssociation(0x1000, name, enc, integ, tunnel=TUNNEL,
                                   replay_window=1024)
    aead = AESGCM(os.urandom(16))
    nonce, aad = os.urandom(12), os.urandom(8)
    encrypt, encapsulate, decapsulate = aead.encrypt, sender.encapsulate, receiver.decapsulate

    def run_bare() -> None:
        for _ in range(BATCH):
            encrypt(nonce, packet, aad)

    def run_encapsulate() -> None:
        for _ in range(BATCH):
            encapsulate(packet)

    floor_pack = struct.Struct("!BBHHHHH4s4sIIQ").pack
    salt, trailer = os.urandom(4), b"\x01\x02\x04"
    src, dst = bytes(4), bytes(4)

    def floor_encapsulate(seq: int) -> bytes:
        prefix = floor_pack(0x45, 0, 1440, seq & 0xFFFF, 0, 0x4032, 0, src, dst, 0x1000,
                            seq & 0xFFFFFFFF, seq)
        return prefix + encrypt(salt + prefix[-8:], packet + trailer, prefix[-16:-8])

    def run_floor() -> None:
        for seq in range(1, BATCH + 1):
            floor_encapsulate(seq)

    bare, encap, decap, floor = [], [], [], []
    for _ in range(ROUNDS):
        wires = [source.encapsulate(packet) for _ in range(BATCH)]

        def run_decapsulate(wires: list[bytes] = wires) -> None:
            for wire in wires:
                decapsulate(wire)

        bare.append(cpu_seconds(run_bare))
        encap.append(cpu_seconds(run_encapsulate))
        decap.append(cpu_seconds(run_decapsulate))
        floor.append(cpu_seconds(run_floor))
    assert receiver.counters.packets_in == BATCH * ROUNDS
    scapy_encrypt, scapy_decrypt = scapy_rates(name, packet)
    return Result(
        bare=BATCH / min(bare), encapsulate=BATCH / min(encap), decapsulate=BATCH / min(decap),
        encapsulate_ratio=statistics.median(b / e for b, e in zip(bare, encap, strict=True)),
        decapsulate_ratio=statistics.median(b / d for b, d in zip(bare, decap, strict=True)),
        scapy_encrypt=scapy_encrypt, scapy_decrypt=scapy_decrypt,
        floor_ratio=statistics.median(b / f for b, f in zip(bare, floor, strict=True)),
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
    print(f"{'transform':<17} {'size':>5} {'encap pkt/s':>12} {'decap pkt/s':>12} "
          f"{'bare AESGCM':>12} {'enc x bare':>10} {'dec x bare':>10} "
          f"{'scapy enc':>10} {'scapy dec':>10} {'enc x scapy':>11} {'dec x scapy':>11} "
          f"{'floor x bare':>12}")
    verdicts: list[str] = []
    for name in TRANSFORMS:
        for size in SIZES:
            r = measure(name, inner_packet(size))
            enc_scapy = r.encapsulate / r.scapy_encrypt
            dec_scapy = r.decapsulate / r.scapy_decrypt
            print(f"{name:<17} {size:>5} {r.encapsulate:>12,.0f} {r.decapsulate:>12,.0f} "
                  f"{r.bare:>12,.0f} {r.encapsulate_ratio:>9.2f}x {r.decapsulate_ratio:>9.2f}x "
                  f"{r.scapy_encrypt:>10,.0f} {r.scapy_decrypt:>10,.0f} "
                  f"{enc_scapy:>10,.0f}x {dec_scapy:>10,.0f}x {r.floor_ratio:>11.2f}x", flush=True)
            if name == "aes128gcm16" and size == 1400:
                verdicts = [
                    f"encapsulate / bare AESGCM = {r.encapsulate_ratio:.2f} (target >= 0.6): "
                    + ("met" if r.encapsulate_ratio >= 0.6 else "MISSED"),
                    f"decapsulate / bare AESGCM = {r.decapsulate_ratio:.2f} (target >= 0.5): "
                    + ("met" if r.decapsulate_ratio >= 0.5 else "MISSED"),
                    f"encapsulate / scapy = {enc_scapy:,.0f} (target >= 200): "
                    + ("met" if enc_scapy >= 200 else "MISSED"),
                    f"decapsulate / scapy = {dec_scapy:,.0f} (target >= 200): "
                    + ("met" if dec_scapy >= 200 else "MISSED"),
                    f"(the Python floor, no checks or state: {r.floor_ratio:.2f} x bare AESGCM)",
                ]
    print("\naes128gcm16, 1400 B:")
    for line in verdicts:
        print("  " + line)


if __name__ == "__main__":
    main()
