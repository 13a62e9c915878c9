"""Two secpath daemons over IPv6, in namespaces of the test's own: ping6 and
a UDP exchange through transport and tunnel mode SAs, the SAs in
``secpath status``, the nftables mirror refusing clear text on the secured
path, nothing left behind; and secpath against strongSwan (kernel-libipsec) over
IPv6."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.daemon import psk_file, secpath_daemon, write_policy
from tests.netns import namespaces, needs_root, run_in, veth
from tests.strongswan import charon, needs_strongswan

A, B = "fd00:77::1", "fd00:77::2"
INNER_A, INNER_B = "fd00:78:1::1", "fd00:78:2::1"

ECHO = textwrap.dedent(
    """
    import socket, sys
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind((sys.argv[1], 9999)); s.settimeout(10)
    try:
        data, peer = s.recvfrom(2000)
    except TimeoutError:
        print("nothing"); sys.exit()
    s.sendto(data[::-1], peer)
    print(data.decode(), peer[0])
    """
)
ASK = textwrap.dedent(
    """
    import socket, sys
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind((sys.argv[1], 0)); s.settimeout(5)
    s.sendto(sys.argv[3].encode(), (sys.argv[2], 9999))
    try:
        print(s.recv(2000).decode())
    except TimeoutError:
        print("nothing")
    """
)


def udp_exchange(ns_server: str, server: str, ns_client: str, client: str, text: str) -> tuple[str, str]:
    """The client's text as the server saw it (with the sender), and the echo."""
    echo = subprocess.Popen(
        ["ip", "netns", "exec", ns_server, sys.executable, "-c", ECHO, server],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.5)
        answer = run_in(ns_client, [sys.executable, "-c", ASK, client, server, text]).stdout.strip()
        seen, _ = echo.communicate(timeout=15)
    finally:
        if echo.poll() is None:
            echo.kill()
    return seen.strip(), answer


@needs_root
@pytest.mark.parametrize("mode", ["transport", "tunnel"])
def test_secpath_to_secpath_over_ipv6(tmp_path: Path, mode: str) -> None:
    key = psk_file(tmp_path / "path.psk")
    tunnel = mode == "tunnel"
    inner_a, inner_b = (INNER_A, INNER_B) if tunnel else (A, B)
    with namespaces("s6a", "s6b") as ns:
        veth(ns["s6a"], f"{A}/64", ns["s6b"], f"{B}/64")
        if tunnel:
            run_in(ns["s6a"], ["ip", "addr", "add", f"{inner_a}/128", "dev", "lo", "nodad"])
            run_in(ns["s6b"], ["ip", "addr", "add", f"{inner_b}/128", "dev", "lo", "nodad"])
        policies = {}
        for name, me, peer, local, remote in (("a", A, B, inner_a, inner_b), ("b", B, A, inner_b, inner_a)):
            policies[name] = write_policy(
                tmp_path / f"{name}.toml",
                me=me,
                peer=peer,
                psk_file=key,
                tunnel=tunnel,
                local_ts=local if tunnel else None,
                remote_ts=remote if tunnel else None,
            )
        with (
            secpath_daemon(ns["s6a"], policies["a"], tmp_path / "da") as da,
            secpath_daemon(ns["s6b"], policies["b"], tmp_path / "db") as db,
        ):
            ping = run_in(
                ns["s6a"],
                ["ping", "-6", "-c", "3", "-i", "0.2", "-W", "3", "-I", inner_a, inner_b],
                check=False,
            )
            assert ping.returncode == 0, ping.stdout + da.log.read_text() + db.log.read_text()
            seen, answer = udp_exchange(ns["s6b"], inner_b, ns["s6a"], inner_a, "over ipv6 esp")
            assert seen == f"over ipv6 esp {inner_a}"
            assert answer == "pse 6vpi revo"
            for daemon, peer in ((da, B), (db, A)):
                (host,) = daemon.status()["hosts"]
                (child,) = host["child_sas"]
                assert child["mode"] == mode and child["transform"] == "aes128gcm16"
                assert child["packets_in"] >= 4 and child["packets_out"] >= 4
                assert host["rules"][0]["state"] == "up"
                assert peer in str(host)
            # A's nftables mirror of the SPD covers the IPv6 path (its refusal of
            # clear text is checked by the test below)
            table = run_in(ns["s6a"], ["nft", "list", "table", "inet", "secpath"]).stdout
            assert f"ip6 saddr {inner_b}" in table or f"ip6 daddr {inner_b}" in table
            da.cli("down")
            db.cli("down")
        for name in ("s6a", "s6b"):
            assert "1516" not in run_in(ns[name], ["ip", "-6", "rule"]).stdout
            assert "secpath0" not in run_in(ns[name], ["ip", "link"]).stdout
            assert "secpath" not in run_in(ns[name], ["nft", "list", "tables"]).stdout


@needs_root
def test_clear_ipv6_from_a_peer_without_ipsec_is_refused(tmp_path: Path) -> None:
    """B runs no IPsec: its clear UDP to A is dropped while A's policy runs,
    and answered once A's daemon is down (so the drop was secpath's)."""
    key = psk_file(tmp_path / "path.psk")
    with namespaces("c6a", "c6b") as ns:
        veth(ns["c6a"], f"{A}/64", ns["c6b"], f"{B}/64")
        pa = write_policy(tmp_path / "a.toml", me=A, peer=B, psk_file=key)
        with secpath_daemon(ns["c6a"], pa, tmp_path / "da") as da:
            seen, answer = udp_exchange(ns["c6a"], A, ns["c6b"], B, "clear text")
            assert (seen, answer) == ("nothing", "nothing")
            da.cli("down")
        seen, answer = udp_exchange(ns["c6a"], A, ns["c6b"], B, "clear text")
        assert seen == f"clear text {B}" and answer == "txet raelc"


SWANCTL = """connections {{
  sp {{
    version = 2
    local_addrs = {W}
    remote_addrs = {S}
    proposals = aes128-sha256-modp2048
    dpd_delay = 0
    local {{
      auth = psk
      id = {W}
    }}
    remote {{
      auth = psk
      id = {S}
    }}
    children {{
      net {{
        local_ts = {W_IN}/128
        remote_ts = {S_IN}/128
        esp_proposals = aes128gcm16
      }}
    }}
  }}
}}
secrets {{
  ike-sp {{
    id-1 = {S}
    id-2 = {W}
    secret = "{PSK}"
  }}
}}
"""


@needs_root
@needs_strongswan
@pytest.mark.parametrize("secpath_initiates", [True, False], ids=["secpath-init", "strongswan-init"])
def test_secpath_to_strongswan_over_ipv6(tmp_path: Path, secpath_initiates: bool) -> None:
    """strongSwan's kernel-libipsec does tunnel mode in UDP 4500 only: the
    IPv6 path of ESP in UDP, both ways, either end initiating."""
    key = psk_file(tmp_path / "path.psk")
    secret = key.read_text().strip()
    policy = write_policy(
        tmp_path / "secpath.toml",
        me=A,
        peer=B,
        local_ts=INNER_A,
        remote_ts=INNER_B,
        tunnel=True,
        psk_file=key,
        start="trap" if secpath_initiates else "none",
    )
    with namespaces("s6s", "s6w") as ns:
        veth(ns["s6s"], f"{A}/64", ns["s6w"], f"{B}/64")
        run_in(ns["s6s"], ["ip", "addr", "add", f"{INNER_A}/128", "dev", "lo", "nodad"])
        run_in(ns["s6w"], ["ip", "addr", "add", f"{INNER_B}/128", "dev", "lo", "nodad"])
        with (
            charon(ns["s6w"], tmp_path / "charon") as c,
            secpath_daemon(ns["s6s"], policy, tmp_path / "d") as d,
        ):
            c.load(SWANCTL.format(W=B, S=A, W_IN=INNER_B, S_IN=INNER_A, PSK=secret))
            if not secpath_initiates:
                out = c.swanctl("--initiate", "--child", "net", timeout=30)
                assert "initiate completed successfully" in out, out + d.log.read_text()
            ping = run_in(
                ns["s6s"],
                ["ping", "-6", "-c", "3", "-i", "0.3", "-W", "3", "-I", INNER_A, INNER_B],
                check=False,
            )
            assert ping.returncode == 0, ping.stdout + d.log.read_text() + c.log.read_text()[-3000:]
            seen, answer = udp_exchange(ns["s6w"], INNER_B, ns["s6s"], INNER_A, "to strongswan")
            assert (seen, answer) == (f"to strongswan {INNER_A}", "nawsgnorts ot")
            sas = c.swanctl("--list-sas")
            assert "ESTABLISHED" in sas and "TUNNEL-in-UDP" in sas, sas
            (child,) = d.status()["hosts"][0]["child_sas"]
            assert child["mode"] == "tunnel" and child["packets_in"] >= 4
            d.cli("down")
