"""Independent decode of what the *engine* sends in a whole session —
IKE_SA_INIT, IKE_AUTH (PSK and certificates), Child SA rekey with PFS, IKE SA
rekey, DPD, Delete: scapy's ``scapy.contrib.ikev2`` parses every datagram,
and tshark's ISAKMP dissector decrypts every SK payload (ICV checked) given
the keys of both IKE SAs in an ``ikev2_decryption_table``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from scapy.contrib.ikev2 import IKEv2
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw
from scapy.utils import wrpcap

from secpath.ike.engine import Datagram
from secpath.ike.events import ChildSaInstalled, IkeSaEstablished
from secpath.ike.message import decode_header
from secpath.ike.sa import IkeSa
from tests.sans_io.harness import A_ADDR, B_ADDR, Pair, make_pair

TSHARK = shutil.which("tshark")

# Wireshark's ikev2_decryption_table names (packet-isakmp.c, as in ss-keys.py)
_ENC = {"3des": "3DES [RFC2451]", "aes128": "AES-CBC-128 [RFC3602]",
        "aes256gcm": "AES-GCM-256 with 16 octet ICV [RFC5282]"}
_INT = {"sha1": "HMAC_SHA1_96 [RFC2404]", "sha256": "HMAC_SHA2_256_128 [RFC4868]",
        None: "NONE [RFC4306]"}
SUITES = ["3des-sha1-modp1024", "aes128-sha256-modp2048", "aes256gcm16-prfsha384-ecp384"]


def session(suite: str, auth: str) -> tuple[list[tuple[str, Datagram]], list[IkeSa]]:
    """A whole session; returns every datagram (with its sender) and every
    IKE SA (original and rekeyed) of the initiator."""
    pair: Pair = make_pair(suite=suite, auth=auth, pfs=True, mode="tunnel")
    log: list[tuple[str, Datagram]] = []
    sas: list[IkeSa] = []

    def record(d: Datagram, src: str) -> list[Datagram]:
        log.append((src, d))
        for sa in pair.a.engine._sas.values():
            if sa not in sas and sa.keys is not None:
                sas.append(sa)
        return [d]

    pair.network = record
    handle = pair.a.engine.initiate("path", pair.now)
    pair.run()
    (child,) = pair.a.of(ChildSaInstalled)
    pair.a.engine.rekey_child(handle, child.child_sa, pair.now)
    pair.run()
    pair.b.engine.rekey_ike(pair.b.of(IkeSaEstablished)[0].ike_sa, pair.now)
    pair.run()
    (new,) = pair.a.engine.ike_sas()
    pair.a.engine.dpd(new, pair.now)
    pair.run()
    pair.a.engine.delete(new, pair.now)
    pair.run()
    for sa in pair.a.engine._sas.values():
        if sa not in sas:
            sas.append(sa)
    return log, sas


@pytest.mark.parametrize("auth", ["psk", "rsa"])
def test_scapy_parses_every_engine_datagram(auth: str) -> None:
    log, _ = session("aes128-sha256-modp2048", auth)
    assert len(log) >= 12
    for _, d in log:
        data = d.data[4:] if d.source_port == 4500 else d.data
        pkt = IKEv2(data)
        h = decode_header(data)
        assert (pkt.init_SPI, pkt.resp_SPI) == (h.spi_i, h.spi_r)
        assert (pkt.exch_type, pkt.id) == (h.exchange_type, h.message_id)
        assert pkt.length == len(data)
        assert Raw not in pkt or pkt.next_payload == 46  # only SK content stays opaque


def _capture(log: list[tuple[str, Datagram]], sas: list[IkeSa], directory: Path) -> Path:
    packets = []
    for src, d in log:
        dst = B_ADDR if src == A_ADDR else A_ADDR
        packets.append(IP(src=src, dst=dst) / UDP(sport=d.source_port,
                                                  dport=d.destination[1]) / Raw(d.data))
    pcap = directory / "session.pcap"
    wrpcap(str(pcap), packets)
    rows = []
    for sa in sas:
        assert sa.keys is not None and sa.suite is not None
        k = sa.keys
        rows.append(f'{sa.spi_i.hex()},{sa.spi_r.hex()},{k.sk_ei.reveal().hex()},'
                    f'{k.sk_er.reveal().hex()},"{_ENC[sa.suite.encryption]}",'
                    f'{k.sk_ai.reveal().hex()},{k.sk_ar.reveal().hex()},'
                    f'"{_INT[sa.suite.integrity]}"\n')
    (directory / "ikev2_decryption_table").write_text("".join(rows))
    return pcap


@pytest.mark.skipif(TSHARK is None and not os.environ.get("CI"),
                    reason="tshark is not installed (CI installs it; there this test must run)")
@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("auth", ["psk", "ecdsa"])
def test_tshark_decrypts_a_whole_engine_session(tmp_path: Path, suite: str, auth: str) -> None:
    assert TSHARK is not None
    log, sas = session(suite, auth)
    assert len(sas) == 2  # the original IKE SA and its rekeyed successor
    pcap = _capture(log, sas, tmp_path)
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=str(tmp_path))

    def tshark(*args: str) -> str:
        return subprocess.run([TSHARK, "-n", "-r", str(pcap), *args], env=env,
                              capture_output=True, text=True, timeout=60, check=True).stdout

    fields = tshark("-T", "fields", "-E", "occurrence=a", "-E", "separator=|",
                    "-e", "isakmp.exchangetype", "-e", "_ws.malformed",
                    "-e", "_ws.expert.severity", "-d", "udp.port==4500,isakmp")
    rows = [line.split("|") for line in fields.splitlines()]
    assert len(rows) == len(log)
    assert all(r[1] == "" and r[2] == "" for r in rows), rows
    text = tshark("-V", "-O", "isakmp")
    encrypted = sum(1 for _, d in log if decode_header(
        d.data[4:] if d.source_port == 4500 else d.data).exchange_type != 34)
    icd = [line for line in text.splitlines() if "Integrity Checksum Data" in line]
    assert len(icd) == encrypted
    assert all(line.rstrip().endswith("[correct]") for line in icd), icd
    assert text.count("Decrypted Data") == encrypted
    for name in ("Authentication", "Traffic Selector - Initiator", "Delete",
                 "Key Exchange", "Nonce"):
        assert f"Payload: {name} (" in text, name
