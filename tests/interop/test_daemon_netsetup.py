"""TUN device, routes and policy rules of the daemon, in a namespace of the
test's own; cleanup removes exactly what secpath added."""

from __future__ import annotations

import json
import sys
import textwrap

from tests.netns import namespaces, needs_root, run_in

SCRIPT = textwrap.dedent(
    """
    import ipaddress, json, subprocess
    from secpath.daemon.netsetup import NetSetup
    from secpath.daemon.tun import TunDevice

    out = {}
    with NetSetup() as net:
        tun = TunDevice("secpath0")
        net.link_up(tun.name, 1400)
        nets = [ipaddress.ip_network("10.99.0.0/24"), ipaddress.ip_network("2001:db8:99::/64")]
        net.install_rules()
        net.install_rules()  # idempotent
        net.add_routes(tun.name, nets)
        net.add_routes(tun.name, nets)  # idempotent
        out["routes"] = sorted(str(n) for n in net.routes())
        out["rules4"] = subprocess.run(["ip", "rule"], capture_output=True, text=True).stdout
        out["rules6"] = subprocess.run(["ip", "-6", "rule"], capture_output=True, text=True).stdout
        # a packet routed into the TUN comes out of its file descriptor
        subprocess.run(["ip", "addr", "add", "10.98.0.1/32", "dev", tun.name], check=True)
        import socket, select
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"hello through tun", ("10.99.0.7", 9))
        pkt = None
        for _ in range(20):  # skip the IPv6 neighbour discovery the link up causes
            select.select([tun.fd], [], [], 2)
            got = tun.read()
            if got and got[0] >> 4 == 4:
                pkt = got
                break
        out["packet_dst"] = str(ipaddress.ip_address(pkt[16:20])) if pkt else None
        out["packet_tail"] = pkt[-17:].decode() if pkt else None
        # SO_MARK traffic bypasses the table
        m = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        m.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, net.config.fwmark)
        try:
            m.sendto(b"x", ("10.99.0.7", 9))
            out["marked"] = "sent"
        except OSError as exc:
            out["marked"] = exc.strerror  # no route outside the table: unreachable
        tun.close()
        out["removed"] = net.cleanup()
        out["after_routes"] = [str(n) for n in net.routes()]
        out["after_rules"] = subprocess.run(["ip", "rule"], capture_output=True, text=True).stdout
        out["second_cleanup"] = net.cleanup()
    print(json.dumps(out))
    """
)


@needs_root
def test_tun_routes_rules_and_cleanup() -> None:
    with namespaces("host") as ns:
        result = run_in(ns["host"], [sys.executable, "-c", SCRIPT])
        out = json.loads(result.stdout)
    assert out["routes"] == ["10.99.0.0/24", "2001:db8:99::/64"]
    assert "1516:\tnot from all fwmark 0x5ec lookup 1516" in out["rules4"]
    assert "not from all fwmark 0x5ec lookup 1516" in out["rules6"]
    assert out["packet_dst"] == "10.99.0.7" and out["packet_tail"] == "hello through tun"
    assert out["marked"] == "Network is unreachable"
    assert out["after_routes"] == [] and "1516" not in out["after_rules"]
    assert any(r.startswith("rule 1516") for r in out["removed"])
    assert out["second_cleanup"] == []


@needs_root
def test_bad_tun_name_is_refused() -> None:
    with namespaces("host") as ns:
        result = run_in(
            ns["host"],
            [
                sys.executable,
                "-c",
                "from secpath.daemon.tun import TunDevice\n"
                "try:\n TunDevice('x'*16)\nexcept Exception as e:\n print(type(e).__name__, e)",
            ],
        )
    assert result.stdout.startswith("LocalError bad interface name")
