"""Two policy agents paired in memory: ESP on an SPI the receiver lost is
answered with INVALID_SPI and the sender re-makes the SA (RFC 7296 §1.5);
kilobyte lifetimes rekey the Child SA at the soft limit and end it at the
hard one (RFC 4301 §4.4.2.1; IKEv2 does not negotiate them, RFC 7296 §2.8)."""

from __future__ import annotations

from typing import Any

from secpath.agent import Outgoing, PolicyAgent
from secpath.ike.config import Credentials, Timing
from secpath.ike.constants import ExchangeType
from secpath.policy.loader import parse_policy
from secpath.policy.model import Policy

from .test_agent import PSK, Net, udp_packet

A, B = "10.0.0.1", "10.0.0.2"


def policy(me: str, peer: str, lifetime_kb: int = 100_000) -> Policy:
    data: dict[str, Any] = {
        "policy": {"name": f"host {me}"},
        "local": {"addresses": [me]},
        "key_exchange": {"method": [{"integrity": "sha256", "encryption": "aes128", "dh_group": 14}]},
        "filter_list": [{"name": "path", "filter": [{"source": "me", "destination": peer}]}],
        "filter_action": [{
            "name": "act", "behavior": "negotiate",
            "security_method": [{"encryption": "aes128gcm", "lifetime_kb": lifetime_kb}],
        }],
        "rule": [{"name": "path", "filter_list": "path", "filter_action": "act",
                  "tunnel_endpoint": "none",
                  "authentication": [{"method": "psk", "secret_file": "/nonexistent/psk"}]}],
    }
    return parse_policy(data)


def agent(p: Policy, seed: int) -> PolicyAgent:
    import random

    return PolicyAgent(p, random.Random(seed).randbytes, credentials={"path": Credentials(psk=PSK)},
                       timing=Timing(dpd_interval=None))


def esp_spi(out: Outgoing) -> int | None:
    """The SPI of a raw ESP packet (IPv4, protocol 50), else None."""
    if out.source_port == 0 and len(out.data) >= 28 and out.data[9] == 50:
        return int.from_bytes(out.data[20:24], "big")
    return None


def ike_exchange(out: Outgoing) -> int | None:
    return out.data[18] if out.source_port == 500 and len(out.data) >= 28 else None


def test_lost_inbound_sa_is_reported_and_remade() -> None:
    a, b = agent(policy(A, B), 1), agent(policy(B, A), 2)
    net = Net({A: a, B: b})
    a.send_packet(udp_packet(A, B, b"first"), net.now)
    net.run()
    (child,) = a.children.values()
    # A loses its inbound SA (say the IKE_AUTH answer that told it was lost
    # and its retry made another): B's packets on it find no SA at A
    del a._inbound[child.inbound.spi]
    net.events(A), net.events(B)
    b.send_packet(udp_packet(B, A, b"lost", 7, 40000), net.now)
    net.run()
    assert a.stats.quick_mode["bad_spi_packets"] == 1 and net.delivered[A] == []
    assert a.engine is not None and a.engine.counters["invalid_spi_sent"] == 1
    # B dropped the pair on A's INVALID_SPI and deleted its half at A
    assert not b.children and not a.children
    assert any("child-down" in e and "INVALID_SPI" in e for e in net.events(B))
    # B's next packet makes a new Child SA and gets through
    b.send_packet(udp_packet(B, A, b"again", 7, 40000), net.now)
    net.run()
    assert [p[-5:] for p in net.delivered[A]] == [b"again"]
    (new,) = b.children.values()
    assert new.outbound.spi != child.inbound.spi


def test_kilobyte_lifetime_rekeys_at_the_soft_limit() -> None:
    """2 KB: soft at 1843 bytes (90 %), hard at 2048; 100-byte packets."""
    a, b = agent(policy(A, B, lifetime_kb=2), 1), agent(policy(B, A, lifetime_kb=2), 2)
    net = Net({A: a, B: b})
    sent = []
    for i in range(60):
        pkt = udp_packet(A, B, b"%03d" % i + bytes(69))
        assert len(pkt) == 100
        sent.append(pkt)
        a.send_packet(pkt, net.now)
        net.run()
    assert net.delivered[B] == sent  # nothing lost across the rekeys
    spis = [s for name, o in net.seen if name == A and (s := esp_spi(o)) is not None]
    runs = [s for i, s in enumerate(spis) if i == 0 or spis[i - 1] != s]
    assert len(runs) == len(set(runs)) >= 3  # 60 × 100 bytes: a new SA every ~19 packets
    for spi in runs:
        assert spis.count(spi) * 100 <= 2048  # no SA carried more than its hard limit
    assert a.stats.quick_mode["rekeys"] + b.stats.quick_mode["rekeys"] >= 2
    assert len(a.children) == 1 and len(b.children) == 1  # the old pairs were deleted


def test_kilobyte_lifetime_hard_limit_ends_the_sa() -> None:
    """The rekey never completes (CREATE_CHILD_SA is lost): past 2048 bytes the
    SA sends nothing more and is deleted."""
    a, b = agent(policy(A, B, lifetime_kb=2), 1), agent(policy(B, A, lifetime_kb=2), 2)
    net = Net({A: a, B: b}, lambda o: ike_exchange(o) == ExchangeType.CREATE_CHILD_SA)
    a.send_packet(udp_packet(A, B, b"000" + bytes(69)), net.now)
    net.run()
    (child,) = a.children.values()
    first = child.outbound.spi
    for i in range(1, 25):
        a.send_packet(udp_packet(A, B, b"%03d" % i + bytes(69)), net.now)
        net.run()
    assert net.lost >= 1  # the rekey was tried
    on_first = [o for name, o in net.seen if name == A and esp_spi(o) == first]
    assert len(on_first) * 100 <= 2048 + 100  # the packet that crossed it, then nothing
    assert first not in {c.outbound.spi for c in a.children.values()}
    events = net.events(A)
    assert any(e.startswith("child-down") and "hard lifetime passed" in e for e in events), events
    # the next packets made a new Child SA (a new IKE SA: the old one's
    # window is still held by the lost rekey) and got through
    assert a.children and net.delivered[B][-1][-72:-69] == b"024"
