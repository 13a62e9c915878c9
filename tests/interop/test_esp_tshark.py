"""tshark (Wireshark's dissectors) reads secpath's ESP as valid ESP and,
given the keys in its ``esp_sa`` table, decrypts it and verifies the ICV.

The packets are synthesized into a pcap (no capture needed).  Wireshark 4.0
cannot decrypt ChaCha20-Poly1305 ESP, so that transform is only dissected.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from secpath.esp import SecurityAssociation
from secpath.esp.transforms import parse_transform
from secpath.esp.wireshark import esp_sa_row
from secpath.secret import Secret

pytestmark = pytest.mark.skipif(
    shutil.which("tshark") is None and not os.environ.get("CI"),
    reason="tshark is not installed (Debian package tshark); CI installs it",
)

CASES = [
    # (transform, mode, udp, family)
    ("3des-sha1", "tunnel", False, 4),
    ("aes128-sha1", "transport", False, 4),
    ("aes128-sha256", "tunnel", True, 4),
    ("aes256-sha256", "transport", True, 4),
    ("aes256-sha384", "tunnel", False, 6),
    ("aes256-sha512", "tunnel", False, 4),
    ("aes128gcm16", "tunnel", True, 4),
    ("aes256gcm16", "transport", False, 6),
    ("aes128gcm16", "transport", False, 4),  # the fast path of raw transport mode
    ("null-sha256", "tunnel", False, 4),
]
PORT = 40999


def ether() -> Ether:
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def tshark(config: Path, pcap: Path, *fields: str) -> list[list[str]]:
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-T", "fields", "-E", "separator=|", "-E", "occurrence=a",
         *[arg for f in fields for arg in ("-e", f)]],
        env={**os.environ, "WIRESHARK_CONFIG_DIR": str(config)},
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    return [line.split("|") for line in out.splitlines()]


def build(tmp_path: Path, tamper: bool = False) -> tuple[Path, Path, list[tuple[int, bytes]]]:
    rows, frames, expected = [], [], []
    for index, (name, mode, udp, family) in enumerate(CASES):
        encryption, integrity = parse_transform(name)
        enc = os.urandom(encryption.key_bytes + encryption.salt_bytes)
        integ = os.urandom(integrity.key_bytes) if integrity else None
        spi = 0x5EC0 + index
        if family == 4:
            outer = ("192.0.2.1", "192.0.2.2")
            inner_ip: IP | IPv6 = IP(src="10.0.0.1", dst="10.0.0.2")
        else:
            outer = ("2001:db8::1", "2001:db8::2")
            inner_ip = IPv6(src="2001:db8:a::1", dst="2001:db8:b::1")
        sa = SecurityAssociation(spi, name, enc, integ, mode=mode,  # type: ignore[arg-type]
                                 tunnel=outer if mode == "tunnel" else None,
                                 udp_encapsulation=(4500, 4500) if udp else None)
        if mode == "transport":  # the packet's own addresses are the SA's
            inner_ip = (IP if family == 4 else IPv6)(src=outer[0], dst=outer[1])
        # a first octet of 0 keeps heuristic dissectors (RTP/RTCP: version 2) off
        # the decrypted payload: one that throws hides the ICV verdict
        payload = b"\x00" + os.urandom(39)
        packet = bytes(inner_ip / UDP(sport=40000 + index, dport=PORT) / Raw(payload))
        wire = bytearray(sa.encapsulate(packet))
        if tamper:
            wire[-1] ^= 0x01  # last ICV octet
        frames.append(ether() / (IP if family == 4 else IPv6)(bytes(wire)))
        rows.append(esp_sa_row(outer[0], outer[1], spi, name, Secret(enc),
                               Secret(integ) if integ else None))
        expected.append((spi, payload))
    config = tmp_path / "wireshark"
    config.mkdir()
    (config / "esp_sa").write_text("\n".join(rows) + "\n")
    (config / "preferences").write_text(
        "esp.enable_encryption_decode: TRUE\nesp.enable_authentication_check: TRUE\n")
    pcap = tmp_path / "esp.pcap"
    wrpcap(str(pcap), frames)
    return config, pcap, expected


def test_tshark_decrypts_and_authenticates(tmp_path: Path) -> None:
    config, pcap, expected = build(tmp_path)
    rows = tshark(config, pcap, "esp.spi", "esp.sequence", "esp.icv_good", "esp.protocol",
                  "udp.dstport", "udp.payload")
    assert len(rows) == len(CASES)
    for row, (spi, payload), case in zip(rows, expected, CASES, strict=True):
        spi_field, sequence, icv_good, _next_header, ports, data = row
        assert int(spi_field, 16) == spi, case
        assert sequence == "1", case
        assert icv_good == "1", case  # Wireshark recomputed the ICV
        assert str(PORT) in ports.split(","), case  # the inner UDP header, decrypted
        assert data.split(",")[-1] == payload.hex(), case  # the inner payload, decrypted


def test_tshark_flags_a_tampered_icv(tmp_path: Path) -> None:
    # the control: the same check fails when one ICV bit is flipped
    config, pcap, _ = build(tmp_path, tamper=True)
    rows = tshark(config, pcap, "esp.icv_good", "esp.icv_bad")
    assert [row[:2] for row in rows] == [["0", "1"]] * len(CASES)


def test_tshark_dissects_chacha20poly1305(tmp_path: Path) -> None:
    sa = SecurityAssociation(0xCC20, "chacha20poly1305", os.urandom(36),
                             tunnel=("192.0.2.1", "192.0.2.2"), udp_encapsulation=(4500, 4500))
    inner = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / Raw(b"x" * 30))
    pcap = tmp_path / "chacha.pcap"
    wrpcap(str(pcap), [ether() / IP(sa.encapsulate(inner)) for _ in range(3)])
    config = tmp_path / "wireshark"
    config.mkdir()
    rows = tshark(config, pcap, "esp.spi", "esp.sequence", "udp.dstport")
    assert rows == [["0x0000cc20", str(seq), "4500"] for seq in (1, 2, 3)]
