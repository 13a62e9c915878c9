"""tshark on a fragmented IKEv1 main mode between two engines (RSA
certificates, a small fragment size): it names the vendor ID and the
fragment payloads, finds nothing malformed, and — given the exported
``ikev1_decryption_table`` — reassembles message 5 and 6 and decrypts them
into the identities and signatures they carry."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw
from scapy.utils import wrpcap

from secpath.monitor.wireshark import ikev1_table_row, write_key_files
from tests.sans_io.harness import A_ADDR, B_ADDR
from tests.sans_io.ikev1_harness import make_pair

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(
    TSHARK is None and not os.environ.get("CI"),
    reason="tshark is not installed (CI installs it; there this test must run)")


def test_tshark_reassembles_and_decrypts_fragmented_main_mode(tmp_path: Path) -> None:
    pair = make_pair(auth="rsa", fragment_size=300)
    log: list[tuple[str, bytes, int, int]] = []

    def record(d: object, src: str) -> bool:
        assert hasattr(d, "data")
        log.append((src, d.data, d.source_port, d.destination[1]))  # type: ignore[attr-defined]
        return False

    pair.drop = record
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    packets = [IP(src=src, dst=B_ADDR if src == A_ADDR else A_ADDR) / UDP(sport=sport, dport=dport)
               / Raw(data) for src, data, sport, dport in log]
    pcap = tmp_path / "fragments.pcap"
    wrpcap(str(pcap), packets)
    (km,) = pair.a.engine.key_material()
    write_key_files(tmp_path / "keys", [], [], [ikev1_table_row(km)])
    (tmp_path / "empty").mkdir()

    def tshark(config: Path, *args: str) -> str:
        assert TSHARK is not None
        env = dict(os.environ, WIRESHARK_CONFIG_DIR=str(config))
        return subprocess.run([TSHARK, "-n", "-r", str(pcap), *args], env=env, capture_output=True,
                              text=True, timeout=60, check=True).stdout

    rows = tshark(tmp_path / "keys", "-T", "fields", "-E", "separator=|", "-e", "_ws.malformed",
                  "-e", "_ws.expert.severity").splitlines()
    assert len(rows) == len(log) and all(r == "|" for r in rows), rows
    with_keys = tshark(tmp_path / "keys", "-V", "-O", "isakmp")
    without = tshark(tmp_path / "empty", "-V", "-O", "isakmp")
    assert "Payload: Vendor ID (13) : Cisco Fragmentation" in with_keys
    fragments = sum(1 for _, data, _, _ in log if data[16] == 132)
    assert fragments >= 4 and with_keys.count("Payload: Cisco-Fragmentation (132)") == fragments
    # message 5 and 6, put together and decrypted: CERT and SIG of each side (and the
    # IDs, with quick mode's IDci/IDcr)
    for name, count in (("Certificate (6)", 2), ("Signature (9)", 2), ("Identification (5)", 2 + 4)):
        assert with_keys.count(f"Payload: {name}") == count, name
        assert without.count(f"Payload: {name}") == 0, name
