"""``secpath keys --wireshark`` for IKEv1: two agents with an ``ike_version
= 1`` rule negotiate main mode and quick mode in memory, the capture goes to
a pcap, and the files :func:`agent_keys` / :func:`write_key_files` produce
(``ikev1_decryption_table`` and ``esp_sa``) let tshark read the encrypted
main-mode and quick-mode payloads and the ESP traffic; without them it
cannot."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw
from scapy.utils import wrpcap

from secpath.agent.status import agent_keys
from secpath.monitor.wireshark import write_key_files
from tests.sans_io.test_agent import A, B, Net, agent, policy, udp_packet
from tests.sans_io.test_ikev1_agent import v1

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(
    TSHARK is None and not os.environ.get("CI"),
    reason="tshark is not installed (CI installs it; there this test must run)")
MARK = b"ikev1 keys capture \x01\x02\x03"


def _session(tmp_path: Path, ike: tuple[str, str, int], esp: str) -> tuple[Path, list[str], Net]:
    kw: dict[str, Any] = {"esp": esp, "ike": ike}
    a, b = agent(v1(policy(A, B, **kw)), 11), agent(v1(policy(B, A, **kw)), 12)
    net = Net({A: a, B: b})
    a.send_packet(udp_packet(A, B, MARK), 0.0)
    net.run()
    assert net.delivered[B], "the packet did not get through"
    packets = []
    for sender, out in net.seen:
        if out.source_port:
            packets.append(IP(src=sender, dst=out.destination[0])
                           / UDP(sport=out.source_port, dport=out.destination[1]) / Raw(out.data))
        else:
            packets.append(IP(out.data))
    pcap = tmp_path / "ikev1.pcap"
    wrpcap(str(pcap), packets)
    ike_rows, esp_rows, ikev1_rows = agent_keys(a)
    assert ike_rows == [] and len(ikev1_rows) == 1 and len(esp_rows) == 2
    # both ends export the same ISAKMP SA: one cookie, one key
    assert agent_keys(b)[2] == ikev1_rows
    write_key_files(tmp_path / "keys", ike_rows, esp_rows, ikev1_rows)
    return pcap, ikev1_rows, net


def _tshark(pcap: Path, config: Path, *args: str) -> str:
    config.mkdir(exist_ok=True)
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=str(config))
    assert TSHARK is not None
    return subprocess.run([TSHARK, "-n", "-r", str(pcap), *args], env=env, capture_output=True,
                          text=True, timeout=60, check=True).stdout


@pytest.mark.parametrize(("ike", "esp"), [(("sha1", "3des", 2), "3des"),
                                          (("sha256", "aes128", 14), "aes128")])
def test_exported_isakmp_keys_decrypt_main_and_quick_mode(tmp_path: Path, ike: tuple[str, str, int],
                                                          esp: str) -> None:
    pcap, rows, net = _session(tmp_path, ike, esp)
    keys = tmp_path / "keys"
    cookie, key = rows[0].split(",")
    assert len(cookie) == 16 and oct((keys / "ikev1_decryption_table").stat().st_mode & 0o777) == "0o600"
    with_keys = _tshark(pcap, keys, "-V", "-O", "isakmp,esp")
    without = _tshark(pcap, tmp_path / "empty", "-V", "-O", "isakmp,esp")
    # main mode 5/6 (ID, HASH) and quick mode 1-3 (HASH, SA, Nonce, IDs) are encrypted
    assert with_keys.count("Payload: Identification") >= 2 + 4  # MM5, MM6 and QM1, QM2 (IDci, IDcr)
    assert with_keys.count("Payload: Hash") >= 2 + 3
    assert with_keys.count("Payload: Security Association") == 2 + 2  # MM1, MM2 and QM1, QM2
    assert without.count("Payload: Identification") == 0
    assert without.count("Payload: Hash") == 0
    assert without.count("Payload: Security Association") == 2  # only the clear MM1, MM2
    # and the ESP traffic of the quick-mode SAs, with the esp_sa the same call wrote
    assert MARK.hex() in _tshark(pcap, keys, "-x").replace(" ", "").replace("\n", "") or \
        MARK.hex() in _tshark(pcap, keys, "-T", "fields", "-e", "data.data", "-e", "udp.payload")
    # the key never appears in the negotiation log the agents wrote
    events = net.events(A) + net.events(B)
    assert events and all(key not in e for e in events)
