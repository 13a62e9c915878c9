"""The daemon's per-family sockets: the IPv6 header an ESP socket stripped is
rebuilt, whole IPv6 packets go out, IPv6 UDP sockets are IPv6 only; and the
nftables mirror lets IPv6 neighbour discovery through."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

from secpath.daemon.firewall import ruleset
from secpath.daemon.service import _routes
from secpath.daemon.sockets import IPPROTO_ESP, ipv6_header
from secpath.esp.ip import parse_ip
from secpath.policy.loader import load_policy
from tests.daemon import write_policy
from tests.netns import namespaces, needs_root, run_in

SRC = ipaddress.IPv6Address("fd00:77::1").packed
DST = ipaddress.IPv6Address("fd00:77::2").packed


def test_ipv6_header_is_parsed_back() -> None:
    payload = bytes(range(37))
    packet = ipv6_header(SRC, DST, IPPROTO_ESP, len(payload)) + payload
    h = parse_ip(packet, transport=True)
    assert (h.version, h.next_header, h.header_end, h.total_length) == (6, IPPROTO_ESP, 40, 77)
    assert (h.source, h.destination) == (SRC, DST)


def _policy(tmp_path: Path, *, tunnel: bool) -> Path:
    key = tmp_path / "k.psk"
    key.write_text("not-a-secret-unit-test\n")
    key.chmod(0o600)
    return write_policy(
        tmp_path / "p.toml",
        me="fd00:77::1",
        peer="fd00:77::2",
        psk_file=key,
        tunnel=tunnel,
        local_ts="fd00:78:1::/64" if tunnel else None,
        remote_ts="fd00:78:2::/64" if tunnel else None,
    )


def test_ipv6_remote_sides_are_routed_into_the_tun(tmp_path: Path) -> None:
    transport = load_policy(_policy(tmp_path, tunnel=False))
    assert [str(n) for n in _routes(transport)] == ["fd00:77::2/128"]
    tunnel = load_policy(_policy(tmp_path, tunnel=True))
    assert [str(n) for n in _routes(tunnel)] == ["fd00:78:2::/64"]


def test_the_mirror_lets_neighbour_discovery_through(tmp_path: Path) -> None:
    text = ruleset(
        [load_policy(_policy(tmp_path, tunnel=False))], tun="secpath0", fwmark=0x5EC, ports=(500, 4500)
    )
    input_chain, output_chain = text.split("chain output")
    for chain in (input_chain, output_chain):
        nd = chain.index("nd-neighbor-advert")
        assert nd < chain.index("ip6 saddr fd00:77::2") or nd < chain.index("ip6 daddr fd00:77::2")


@needs_root
def test_raw_ipv6_esp_arrives_as_a_whole_packet_and_leaves_as_one() -> None:
    with namespaces("u6") as ns:
        name = ns["u6"]
        for address in ("fd00:77::1", "fd00:77::2"):
            run_in(name, ["ip", "addr", "add", f"{address}/128", "dev", "lo", "nodad"])
        payload = b"\x00\x00\x10\x00" + bytes(range(28))  # an SPI, a sequence number, ...
        # the raw sockets must live in the namespace: the check runs there
        script = f"""
import socket, time
from secpath.daemon.sockets import RawSockets
raw = RawSockets(socket.AF_INET6, 0x5EC)
sender = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 50)
sender.bind(("fd00:77::2", 0))
sender.sendto(bytes.fromhex("{payload.hex()}"), ("fd00:77::1", 0))
deadline = time.monotonic() + 5
got = []
while not got and time.monotonic() < deadline:
    got = list(raw.receive())
    time.sleep(0.01)
(local, packet), = got
print(local.hex(), packet.hex())
raw.send(packet[:8] + packet[24:40] + packet[8:24] + packet[40:], "fd00:77::2")
sender.settimeout(5)
print(sender.recv(2000).hex())
"""
        out = run_in(name, [sys.executable, "-c", script]).stdout.split()
        local, packet, echoed = bytes.fromhex(out[0]), bytes.fromhex(out[1]), bytes.fromhex(out[2])
        assert local == SRC
        h = parse_ip(packet, transport=True)
        assert (h.source, h.destination, h.next_header) == (DST, SRC, IPPROTO_ESP)
        assert packet[40:] == payload
        assert echoed == payload  # the whole packet sent back, header and all


@needs_root
def test_ipv6_udp_sockets_are_ipv6_only() -> None:
    with namespaces("u6u") as ns:
        script = """
import socket
from secpath.daemon.sockets import udp_socket
s = udp_socket("::1", 500, 0x5EC)
print(s.family == socket.AF_INET6, s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
t = udp_socket("127.0.0.1", 500, 0x5EC)
print(t.family == socket.AF_INET)
"""
        out = run_in(ns["u6u"], [sys.executable, "-c", script]).stdout.split()
        assert out == ["True", "1", "True"]
