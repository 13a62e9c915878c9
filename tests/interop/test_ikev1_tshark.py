"""tshark's ISAKMP dissector on everything the IKEv1 engine sends in whole
sessions — main mode (PSK and RSA signatures), quick mode with PFS, a
quick-mode rekey, DPD, Delete, and a session behind a NAT on port 4500:
no message is malformed, and given the phase-1 keys in Wireshark's
``ikev1_decryption_table`` every encrypted payload decrypts into the
payloads we sent."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw
from scapy.utils import wrpcap

from secpath.ike.engine import Datagram
from secpath.ike.events import ChildSaInstalled
from secpath.ike.v1.sa import Phase1Sa
from tests.sans_io.harness import A_ADDR, B_ADDR
from tests.sans_io.ikev1_harness import NAT_ADDR, make_pair

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(
    TSHARK is None and not os.environ.get("CI"),
    reason="tshark is not installed (CI installs it; there this test must run)")


def session(auth: str, nat: bool) -> tuple[list[tuple[str, Datagram]], list[Phase1Sa]]:
    pair = make_pair(suite="3des-sha1-modp1024" if auth == "psk" else "aes128-sha256-modp2048",
                     auth=auth, pfs=True, mode="tunnel")
    pair.nat = nat
    log: list[tuple[str, Datagram]] = []
    sas: list[Phase1Sa] = []

    def record(d: Datagram, src: str) -> bool:
        log.append((src, d))
        for sa in pair.a.engine._sas.values():
            if sa not in sas and sa.keys is not None:
                sas.append(sa)
        return False

    pair.drop = record
    handle = pair.a.engine.initiate("path", pair.now)
    pair.run()
    (child,) = pair.a.of(ChildSaInstalled)
    pair.a.engine.rekey_child(handle, child.child_sa, pair.now)
    pair.run()
    pair.a.engine.dpd(handle, pair.now)
    pair.run()
    pair.a.engine.delete(handle, pair.now)
    pair.run()
    return log, sas


def _capture(log: list[tuple[str, Datagram]], sas: list[Phase1Sa], directory: Path,
             nat: bool) -> Path:
    packets = []
    for sender, d in log:
        src, dst = (sender, B_ADDR) if sender == A_ADDR else (sender, A_ADDR)
        if nat:  # as seen between the NAT and B
            src = NAT_ADDR if src == A_ADDR else src
            dst = NAT_ADDR if dst == A_ADDR else dst
        packets.append(IP(src=src, dst=dst) / UDP(sport=d.source_port, dport=d.destination[1])
                       / Raw(d.data))
    pcap = directory / "session.pcap"
    wrpcap(str(pcap), packets)
    rows = []
    for sa in sas:
        assert sa.keys is not None
        rows.append(f"{sa.cky_i.hex()},{sa.keys.encryption_key.reveal().hex()}\n")
    (directory / "ikev1_decryption_table").write_text("".join(rows))
    return pcap


@pytest.mark.parametrize(("auth", "nat"), [("psk", False), ("rsa", False), ("psk", True)])
def test_tshark_parses_and_decrypts_every_message(tmp_path: Path, auth: str, nat: bool) -> None:
    assert TSHARK is not None
    log, sas = session(auth, nat)
    assert len(sas) == 1
    pcap = _capture(log, sas, tmp_path, nat)
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=str(tmp_path))

    def tshark(*args: str) -> str:
        return subprocess.run([TSHARK, "-n", "-r", str(pcap), *args], env=env,
                              capture_output=True, text=True, timeout=60, check=True).stdout

    fields = tshark("-T", "fields", "-E", "occurrence=a", "-E", "separator=|",
                    "-e", "isakmp.exchangetype", "-e", "_ws.malformed", "-e", "_ws.expert.severity")
    rows = [line.split("|") for line in fields.splitlines()]
    assert len(rows) == len(log)
    assert all(r[0] and r[1] == "" and r[2] == "" for r in rows), rows
    exchanges = {r[0] for r in rows}
    assert {"2", "32", "5"} <= exchanges, exchanges  # main, quick, informational
    text = tshark("-V", "-O", "isakmp")
    for name in ("Identification", "Hash", "Security Association", "Nonce", "Key Exchange",
                 "Delete", "Notification"):
        assert f"Payload: {name}" in text, name
    if auth == "rsa":
        assert "Payload: Certificate" in text and "Payload: Signature" in text
    if nat:
        assert "Payload: NAT-D (RFC 3947)" in text
        assert "UDP-Encapsulated-Tunnel" in text
    assert "R-U-THERE-ACK" in text
