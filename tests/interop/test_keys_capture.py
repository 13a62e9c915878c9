"""A capture of a secpath <-> secpath transfer, decrypted by tshark with the
keys `secpath keys --wireshark` wrote: the payload that was sent is there;
without the keys it is not."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.daemon import secpath_daemon, write_policy
from tests.netns import namespaces, needs_root, run_in, veth

A, B = "10.77.0.1", "10.77.0.2"
SEND = (
    "import socket,sys; "
    "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(bytes.fromhex(sys.argv[2]), (sys.argv[1], 7777))"
)
MARK = b"secpath capture test \x01\x02\x03 payload".hex()


@needs_root
def test_capture_decrypts_with_exported_keys(tmp_path: Path) -> None:
    key = tmp_path / "psk"
    key.write_text("capture-test-psk")
    key.chmod(0o600)
    pcap = tmp_path / "cap.pcap"
    with namespaces("ka", "kb") as ns:
        veth(ns["ka"], f"{A}/24", ns["kb"], f"{B}/24", tag="cap")
        pa = write_policy(tmp_path / "a.toml", me=A, peer=B, psk_file=key, esp=("aes128", "sha256"))
        pa.write_text(
            pa.read_text() + f'\n[monitor]\nlog_file = "{tmp_path / "oakley.log"}"\nlog_level = 3\n'
        )
        pb = write_policy(tmp_path / "b.toml", me=B, peer=A, psk_file=key, esp=("aes128", "sha256"))
        with (
            secpath_daemon(ns["ka"], pa, tmp_path / "da") as da,
            secpath_daemon(ns["kb"], pb, tmp_path / "db"),
        ):
            capture = subprocess.Popen(
                ["ip", "netns", "exec", ns["ka"], "tshark", "-i", "vacap", "-w", str(pcap), "-q"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                time.sleep(1.5)
                assert run_in(ns["ka"], ["ping", "-c", "2", "-W", "3", B], check=False).returncode == 0
                run_in(ns["ka"], [sys.executable, "-c", SEND, B, MARK])
                time.sleep(0.5)
                out = da.cli("keys", "--wireshark", str(tmp_path / "keys"))
            finally:
                capture.terminate()
                capture.wait(timeout=10)
        assert "esp_sa" in out
        assert oct((tmp_path / "keys" / "esp_sa").stat().st_mode & 0o777) == "0o600"
        # no key at any log level: every key's hex is absent from the daemon's
        # output and from the negotiation log at its most detailed level
        logs = da.log.read_text() + (tmp_path / "oakley.log").read_text()
        assert "IKE_AUTH" in logs
        secrets = [
            f.strip('"').removeprefix("0x")
            for f in (tmp_path / "keys" / "esp_sa").read_text().replace("\n", ",").split(",")
        ]
        secrets += (tmp_path / "keys" / "ikev2_decryption_table").read_text().replace("\n", ",").split(",")
        secrets = [x for x in secrets if len(x) >= 32 and all(c in "0123456789abcdef" for c in x)]
        assert len(secrets) >= 6
        for hexkey in secrets:
            assert hexkey not in logs

    def fields(config: Path | None) -> str:
        env = {**os.environ}
        if config is not None:
            env["WIRESHARK_CONFIG_DIR"] = str(config)
        else:
            env["WIRESHARK_CONFIG_DIR"] = str(tmp_path / "empty")
            (tmp_path / "empty").mkdir(exist_ok=True)
        return subprocess.run(
            [
                "tshark",
                "-r",
                str(pcap),
                "-Y",
                "udp.dstport == 7777",
                "-T",
                "fields",
                "-e",
                "udp.payload",
                "-e",
                "esp.icv_good",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    decrypted = fields(tmp_path / "keys")
    assert MARK in decrypted.replace(":", ""), decrypted
    assert MARK not in fields(None).replace(":", "")
    # and the IKE_AUTH exchange decrypts with the exported IKE keys
    ike = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "isakmp", "-V"],
        env={**os.environ, "WIRESHARK_CONFIG_DIR": str(tmp_path / "keys")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Identification - Initiator" in ike and "Traffic Selector - Initiator" in ike
