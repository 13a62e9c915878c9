"""Independent decode: tshark's ISAKMP dissector parses every message secpath
encodes, and decrypts the SK payloads given the IKE keys in an
``ikev2_decryption_table`` (the format of /work/shared/lab/ss-keys.py),
verifying the integrity checksum.

Wireshark 4.0's IKEv2 decryption table has no ChaCha20-Poly1305 entry, so
that suite is checked for the outer structure only.  RFC 7383 fragments are
reassembled and decrypted by tshark too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw
from scapy.utils import wrpcap

from secpath.crypto.sk import SkCipher
from secpath.ike.constants import PayloadType
from secpath.ike.fragment import encode_fragments
from secpath.ike.payloads import IdiPayload, NotifyPayload, TsiPayload, TsrPayload
from tests.unit.test_ike_codec_scapy import SUITE_IDS, SUITES, Handshake, handshake

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(
    TSHARK is None and not os.environ.get("CI"),
    reason="tshark is not installed (CI installs it; there this test must run)",
)

# names of Wireshark's ikev2_decryption_table (packet-isakmp.c), as in ss-keys.py
_ENC = {"3des": "3DES [RFC2451]", "aes128": "AES-CBC-128 [RFC3602]",
        "aes256gcm": "AES-GCM-256 with 16 octet ICV [RFC5282]"}
_INT = {"sha1": "HMAC_SHA1_96 [RFC2404]", "sha256": "HMAC_SHA2_256_128 [RFC4868]",
        None: "NONE [RFC4306]"}
_FIELDS = ["isakmp.ispi", "isakmp.rspi", "isakmp.exchangetype", "isakmp.messageid",
           "isakmp.typepayload", "isakmp.notify.msgtype", "isakmp.ts.start_ipv4",
           "isakmp.id.data.fqdn", "_ws.malformed", "_ws.expert.severity"]


def _write_capture(hs: Handshake, directory: Path) -> Path:
    packets = []
    for i, dg in enumerate(hs.datagrams):
        src, dst = ("192.0.2.1", "192.0.2.2") if dg.from_initiator else ("192.0.2.2", "192.0.2.1")
        if i < 2:  # IKE_SA_INIT on 500
            packets.append(IP(src=src, dst=dst) / UDP(sport=500, dport=500) / Raw(dg.data))
        else:  # after NAT detection: port 4500 with the non-ESP marker (RFC 3948 §2.2)
            packets.append(IP(src=src, dst=dst) / UDP(sport=4500, dport=4500)
                           / Raw(b"\x00\x00\x00\x00" + dg.data))
    pcap = directory / "ike.pcap"
    wrpcap(str(pcap), packets)
    if hs.encryption in _ENC:
        k = hs.keys
        row = (f'{hs.spi_i.hex()},{hs.spi_r.hex()},{k.sk_ei.reveal().hex()},'
               f'{k.sk_er.reveal().hex()},"{_ENC[hs.encryption]}",{k.sk_ai.reveal().hex()},'
               f'{k.sk_ar.reveal().hex()},"{_INT[hs.integrity]}"\n')
        (directory / "ikev2_decryption_table").write_text(row)
    return pcap


def _tshark(pcap: Path, config: Path, *args: str) -> str:
    assert TSHARK is not None
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=str(config))
    result = subprocess.run([TSHARK, "-n", "-r", str(pcap), *args], env=env,
                            capture_output=True, text=True, timeout=60, check=True)
    return result.stdout


@pytest.mark.parametrize(("name", "enc", "integ", "prf", "group"), SUITES, ids=SUITE_IDS)
def test_tshark_dissects_and_decrypts(
    tmp_path: Path, name: str, enc: str, integ: str | None, prf: str, group: int
) -> None:
    hs = handshake(enc, integ, prf, group)
    pcap = _write_capture(hs, tmp_path)
    decrypts = enc in _ENC
    fields = _tshark(pcap, tmp_path, "-T", "fields", "-E", "occurrence=a", "-E", "separator=|",
                     *[x for f in _FIELDS for x in ("-e", f)])
    rows = [line.split("|") for line in fields.splitlines()]
    assert len(rows) == len(hs.datagrams)
    for row, dg in zip(rows, hs.datagrams, strict=True):
        ispi, rspi, exch, msgid, types, notifies, ts4, fqdn, malformed, severity = row
        h = dg.message.header
        assert (ispi, rspi) == (h.spi_i.hex(), h.spi_r.hex())
        assert (int(exch), int(msgid, 16)) == (h.exchange_type, h.message_id)
        assert malformed == "" and severity == "", f"tshark flagged frame of {dg.message}"
        # Proposal (2) and Transform (3) substructures are listed too: drop them
        seen = [int(t) for t in types.split(",") if t not in ("2", "3")]
        expected = [p.payload_type for p in dg.message.payloads]
        if not dg.message.encrypted:
            assert seen == expected
            continue
        if not decrypts:
            assert seen == [PayloadType.SK]
            continue
        assert seen == [PayloadType.SK, *expected]
        want_notifies = [str(p.notify_type) for p in dg.message.all(NotifyPayload)]
        assert (notifies.split(",") if notifies else []) == want_notifies
        want_ts = [str(ts.start) for p in dg.message.payloads
                   if isinstance(p, TsiPayload | TsrPayload) for ts in p.selectors]
        assert (ts4.split(",") if ts4 else []) == want_ts
        idi = dg.message.get(IdiPayload)
        assert fqdn == (idi.data.decode() if idi is not None else "")
    if decrypts:
        text = _tshark(pcap, tmp_path, "-V", "-O", "isakmp")
        icd = [line for line in text.splitlines() if "Integrity Checksum Data" in line]
        encrypted = sum(dg.message.encrypted for dg in hs.datagrams)
        # tshark recomputes the HMAC ICV or the AEAD tag
        assert len(icd) == encrypted
        assert all(line.rstrip().endswith("[correct]") for line in icd), icd
        assert text.count("Decrypted Data") == encrypted


@pytest.mark.parametrize(("name", "enc", "integ", "prf", "group"),
                         [s for s in SUITES if s[1] in _ENC], ids=[s[0] for s in SUITES
                                                                   if s[1] in _ENC])
def test_tshark_reassembles_and_decrypts_fragments(
    tmp_path: Path, name: str, enc: str, integ: str | None, prf: str, group: int
) -> None:
    """RFC 7383: IKE_AUTH split into SKF fragments of at most 200 bytes."""
    hs = handshake(enc, integ, prf, group)
    _write_capture(hs, tmp_path)  # writes the decryption table
    auth = hs.datagrams[2]
    sk = SkCipher(enc, integ, hs.keys.sk_ei, hs.keys.sk_ai)
    fragments = encode_fragments(auth.message, sk, os.urandom, 200)
    assert len(fragments) > 2
    pcap = tmp_path / "fragments.pcap"
    wrpcap(str(pcap), [IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=4500, dport=4500)
                       / Raw(b"\x00\x00\x00\x00" + f) for f in fragments])
    text = _tshark(pcap, tmp_path, "-V", "-O", "isakmp")
    icd = [line for line in text.splitlines() if "Integrity Checksum Data" in line]
    assert len(icd) == len(fragments)
    assert all(line.rstrip().endswith("[correct]") for line in icd), icd
    assert f"Total Fragments: {len(fragments)}" in text
    fields = _tshark(pcap, tmp_path, "-T", "fields", "-E", "occurrence=a",
                     "-e", "isakmp.typepayload", "-e", "_ws.malformed")
    rows = [line.split("\t") for line in fields.splitlines()]
    assert all(malformed == "" for _, malformed in rows)
    last = [int(t) for t in rows[-1][0].split(",") if t not in ("2", "3")]
    assert last == [PayloadType.SKF, *(p.payload_type for p in auth.message.payloads)]
