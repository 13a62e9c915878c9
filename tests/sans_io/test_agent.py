"""Two policy agents paired in memory: the policy decides, IKE negotiates on
the first packet, ESP carries it, and the other side delivers it intact."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from typing import Any

import pytest

from secpath.agent import Outgoing, PolicyAgent, RuleState
from secpath.ike.config import Credentials, Timing
from secpath.policy.loader import parse_policy
from secpath.policy.model import Policy
from secpath.secret import Secret

A, B = "10.0.0.1", "10.0.0.2"
PSK = Secret(b"agent test shared secret, long enough")


def policy(
    me: str,
    peer: str,
    *,
    behavior: str = "negotiate",
    tunnel: str = "none",
    fallback: bool = False,
    esp: str = "aes128gcm",
    ike: tuple[str, str, int] = ("sha256", "aes128gcm", 19),
    extra_rules: list[dict[str, Any]] | None = None,
) -> Policy:
    action: dict[str, Any] = {"name": "act", "behavior": behavior}
    if behavior == "negotiate":
        action["allow_unsecured_fallback"] = fallback
        action["security_method"] = [
            {"encryption": esp}
            if esp.endswith("gcm") or esp.startswith("chacha")
            else {"encryption": esp, "integrity": "sha256"}
        ]
    rule: dict[str, Any] = {
        "name": "path",
        "filter_list": "path",
        "filter_action": "act",
        "tunnel_endpoint": tunnel,
    }
    if behavior == "negotiate":
        rule["authentication"] = [{"method": "psk", "secret_file": "/nonexistent/psk"}]
        if tunnel != "none":
            rule["peer"] = tunnel
    data: dict[str, Any] = {
        "policy": {"name": f"host {me}"},
        "local": {"addresses": [me]},
        "key_exchange": {"method": [{"integrity": ike[0], "encryption": ike[1], "dh_group": ike[2]}]},
        "filter_list": [{"name": "path", "filter": [{"source": "me", "destination": peer}]}],
        "filter_action": [action],
        "rule": [rule, *(extra_rules or [])],
    }
    return parse_policy(data)


def agent(p: Policy, seed: int, psk: Secret = PSK, **kw: Any) -> PolicyAgent:
    creds = {r.name: Credentials(psk=psk) for r in p.rules if r.filter_action.behavior.value == "negotiate"}
    return PolicyAgent(
        p, random.Random(seed).randbytes, credentials=creds, timing=Timing(dpd_interval=None), **kw
    )


def udp_packet(src: str, dst: str, payload: bytes, sport: int = 40000, dport: int = 7) -> bytes:
    s = bytes(int(x) for x in src.split("."))
    d = bytes(int(x) for x in dst.split("."))
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0x4000, 64, 17, 0, s, d))
    total = sum(struct.unpack("!10H", header))
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    header[10:12] = struct.pack("!H", ~total & 0xFFFF)
    return bytes(header) + udp


def same_but_id(packet: bytes) -> bytes:
    return packet[:4] + packet[6:10] + packet[12:]


class Net:
    """Carries what each agent transmits to the other; counts what it sees."""

    def __init__(self, agents: dict[str, PolicyAgent],
                 drop: Callable[[Outgoing], bool] = lambda out: False) -> None:
        self.agents = agents
        self.drop = drop  # loses what it says (and counts it in ``lost``)
        self.lost = 0
        self.now = 0.0
        self.seen: list[tuple[str, Outgoing]] = []
        self.delivered: dict[str, list[bytes]] = {name: [] for name in agents}

    def run(self, rounds: int = 50) -> None:
        for _ in range(rounds):
            moved = False
            for name, ag in self.agents.items():
                for out in ag.transmit():
                    moved = True
                    self.seen.append((name, out))
                    if self.drop(out):
                        self.lost += 1
                        continue
                    dst = self.agents[out.destination[0]]
                    if out.source_port:
                        dst.receive_datagram(out.data, (name, out.source_port), out.destination[1], self.now)
                    else:
                        dst.receive_packet(out.data, self.now)
            for name, ag in self.agents.items():
                self.delivered[name].extend(ag.deliver())
            if not moved:
                return
            self.now += 0.01

    def events(self, name: str) -> list[str]:
        out = []
        while (e := self.agents[name].next_event()) is not None:
            out.append(f"{e.kind}: {e.detail}")
        return out


@pytest.mark.parametrize("tunnel", [False, True])
@pytest.mark.parametrize("encap", [False, True])
def test_first_packet_negotiates_and_is_delivered(tunnel: bool, encap: bool) -> None:
    pa = policy(A, B, tunnel=B if tunnel else "none")
    pb = policy(B, A, tunnel=A if tunnel else "none")
    a, b = agent(pa, 1, force_udp_encapsulation=encap), agent(pb, 2, force_udp_encapsulation=encap)
    net = Net({A: a, B: b})
    pkt = udp_packet(A, B, b"hello over IPsec")
    a.send_packet(pkt, 0.0)
    assert a.rule_state("path") is RuleState.NEGOTIATING
    assert a.stats.main_mode["acquire_heap_size"] == 1
    net.run()
    # transport mode through a UDP socket: the receiver rebuilds the IP header
    # from the socket's addresses (RFC 3948 §3.1.2), so its ID field is new
    assert [same_but_id(p) for p in net.delivered[B]] == [same_but_id(pkt)], net.events(A) + net.events(B)
    assert a.rule_state("path") is RuleState.UP and b.rule_state("path") is RuleState.UP
    # the reply goes back through the SA B already has
    reply = udp_packet(B, A, b"hello back", 7, 40000)
    b.send_packet(reply, net.now)
    net.run()
    assert [same_but_id(p) for p in net.delivered[A]] == [same_but_id(reply)]
    # nothing went in clear text: ESP, or ESP in UDP 4500
    data_out = [o for _, o in net.seen if o.source_port in (0, 4500) and o.data[:4] != b"\0\0\0\0"]
    assert len(data_out) == 2
    assert all(o.source_port == (4500 if encap else 0) for o in data_out)
    assert all(b"hello" not in o.data for _, o in net.seen)
    mode = "bytes_sent_in_tunnels" if tunnel else "transport_bytes_sent"
    assert a.stats.quick_mode[mode] == len(pkt) and a.stats.quick_mode["confidential_bytes_sent"] == len(pkt)
    assert b.stats.rule("path").packets_in == 1 and b.stats.rule("path").bytes_in == len(pkt)
    assert a.stats.main_mode["main_mode_sas"] == 1 and a.stats.main_mode["quick_mode_sas"] == 1
    kinds = [e.split(":")[0] for e in net.events(A)]
    assert kinds[:3] == ["acquire", "ike-up", "child-up"]


def test_permit_and_block() -> None:
    pa = policy(A, B, behavior="permit")
    pb = policy(B, A, behavior="block")
    a, b = agent(pa, 1), agent(pb, 2)
    assert a.engine is None and b.engine is None
    net = Net({A: a, B: b})
    pkt = udp_packet(A, B, b"in the clear")
    a.send_packet(pkt, 0.0)
    net.run()
    assert net.seen[0][1] == Outgoing(pkt, (B, 0), 0)  # sent clear
    assert net.delivered[B] == []  # B blocks it
    assert [e.split(":")[0] for e in net.events(B)] == ["dropped"]
    b.send_packet(udp_packet(B, A, b"x"), 0.0)
    assert b.transmit() == []


def test_clear_text_on_a_secured_path_is_refused() -> None:
    """The guide's "Do not communicate with computers that do not support IPsec"."""
    a = agent(policy(A, B, behavior="permit"), 1)
    b = agent(policy(B, A), 2)
    net = Net({A: a, B: b})
    a.send_packet(udp_packet(A, B, b"clear"), 0.0)
    net.run()
    assert net.delivered[B] == []
    assert any("clear text on a secured path" in e for e in net.events(B))


def test_no_ipsec_peer_drops_or_falls_back() -> None:
    for fallback in (False, True):
        a = agent(policy(A, B, fallback=fallback), 1, acquire_timeout=5.0)
        b = agent(policy(B, A, behavior="permit"), 2)
        net = Net({A: a, B: b})
        pkt = udp_packet(A, B, b"anyone there?")
        a.send_packet(pkt, 0.0)
        net.run()
        assert net.delivered[B] == []  # the peer ignores IKE
        a.handle_timer(6.0)
        net.run()
        assert net.delivered[B] == ([pkt] if fallback else [])
        assert a.rule_state("path") is RuleState.DOWN
        assert a.stats.rule("path").last_failure
        assert a.stats.main_mode["soft_associations"] == (1 if fallback else 0)


def test_wrong_psk_fails_with_reason_and_counts() -> None:
    a = agent(policy(A, B), 1)
    b = agent(policy(B, A), 2, psk=Secret(b"a different secret entirely"))
    net = Net({A: a, B: b})
    a.send_packet(udp_packet(A, B, b"x"), 0.0)
    net.run()
    assert net.delivered[B] == []
    assert a.rule_state("path") is RuleState.DOWN
    assert "AUTHENTICATION_FAILED" in a.stats.rule("path").last_failure
    assert a.stats.main_mode["authentication_failures"] == 1
    assert a.stats.main_mode["acquire_failures"] == 1


def test_replayed_and_forged_esp_counted() -> None:
    a, b = (
        agent(policy(A, B), 1, force_udp_encapsulation=True),
        agent(policy(B, A), 2, force_udp_encapsulation=True),
    )
    net = Net({A: a, B: b})
    a.send_packet(udp_packet(A, B, b"once"), 0.0)
    net.run()
    esp = [o for _, o in net.seen if o.source_port == 4500 and o.data[:4] != b"\0\0\0\0"]
    assert len(esp) == 1
    b.receive_datagram(esp[0].data, (A, 4500), 4500, net.now)  # replay
    forged = bytearray(esp[0].data)
    forged[7] ^= 2  # a new sequence number: passes the replay check, fails the ICV
    b.receive_datagram(bytes(forged), (A, 4500), 4500, net.now)
    b.receive_datagram(b"\x01\x02\x03\x04" + bytes(20), (A, 4500), 4500, net.now)  # unknown SPI
    b.receive_datagram(b"\xff", (A, 4500), 4500, net.now)  # NAT keepalive: silent
    q = b.stats.quick_mode
    assert q["packets_with_replay_detection"] == 1
    assert q["packets_not_authenticated"] == 1
    assert q["bad_spi_packets"] == 1
    assert len(b.deliver()) == 0
    assert [same_but_id(p) for p in net.delivered[B]] == [same_but_id(udp_packet(A, B, b"once"))]


def test_terminate_and_renegotiate() -> None:
    a, b = agent(policy(A, B), 1), agent(policy(B, A), 2)
    net = Net({A: a, B: b})
    a.send_packet(udp_packet(A, B, b"1"), 0.0)
    net.run()
    assert a.terminate(None, net.now) == 1
    net.run()
    assert a.rule_state("path") is RuleState.DOWN and b.rule_state("path") is RuleState.DOWN
    assert a.stats.quick_mode["key_deletions"] == 1 and b.stats.main_mode["main_mode_sas"] == 0
    a.send_packet(udp_packet(A, B, b"2"), net.now)
    net.run()
    assert [p[-1:] for p in net.delivered[B]] == [b"1", b"2"]
    assert a.stats.rule("path").packets_out == 2


def test_child_rekey_loses_nothing() -> None:
    a, b = agent(policy(A, B), 1), agent(policy(B, A), 2)
    net = Net({A: a, B: b})
    sent = []
    for i in range(30):
        pkt = udp_packet(A, B, b"payload %d" % i)
        sent.append(pkt)
        a.send_packet(pkt, net.now)
        if i == 10:
            child = next(iter(a.children.values()))
            assert a.engine is not None
            a.engine.rekey_child(child.ike_sa, child.handle, net.now)
        net.run()
    assert net.delivered[B] == sent
    assert a.stats.quick_mode["rekeys"] == 1 or b.stats.quick_mode["rekeys"] == 1
    assert a.stats.rule("path").packets_out == 30


def test_engine_drops_are_counted_as_the_guide_names_them() -> None:
    a, b = agent(policy(A, B), 1), agent(policy(B, A), 2)
    net = Net({A: a, B: b})
    b.receive_datagram(b"\x00" * 10, (A, 500), 500, 0.0)  # not an IKE message
    header = bytes(8) + b"\x11" * 8 + bytes([46, 0x20, 37, 0x08]) + bytes(4) + (28).to_bytes(4, "big")
    b.receive_datagram(header, (A, 500), 500, 0.0)  # an INFORMATIONAL for no IKE SA
    m = b.stats.main_mode
    assert m["invalid_packets_received"] == 1 and m["invalid_cookies_received"] == 1
    # while a negotiation the peer started is half done, it is an Active Receive
    a.send_packet(udp_packet(A, B, b"x"), 0.0)
    for out in a.transmit():  # only IKE_SA_INIT, delivered by hand
        b.receive_datagram(out.data, (A, out.source_port), out.destination[1], 0.0)
    assert b.stats.main_mode["active_receive"] == 1
    assert a.stats.main_mode["active_acquire"] == 1 and a.stats.main_mode["total_acquire"] == 1
    net.run()
    assert b.stats.main_mode["active_receive"] == 0 and b.stats.main_mode["main_mode_sas"] == 1
    assert b.stats.main_mode["total_get_spi"] == 1 and b.stats.quick_mode["key_additions"] == 1


def test_esp_follows_a_nat_rebinding_only_after_authentication() -> None:
    a, b = (
        agent(policy(A, B), 1, force_udp_encapsulation=True),
        agent(policy(B, A), 2, force_udp_encapsulation=True),
    )
    net = Net({A: a, B: b})
    a.send_packet(udp_packet(A, B, b"first"), 0.0)
    net.run()
    # A's NAT mapping changes: its next ESP arrives from port 4600
    a.send_packet(udp_packet(A, B, b"second"), 1.0)
    (esp,) = [o for o in a.transmit() if o.source_port == 4500]
    b.receive_datagram(b"\x00\x00\x01\x00" + bytes(40), (A, 4700), 4500, 1.0)  # forged: ignored
    b.receive_datagram(esp.data, (A, 4600), 4500, 1.0)
    assert b.deliver()[0].endswith(b"second")
    b.send_packet(udp_packet(B, A, b"reply", 7, 40000), 1.0)
    ike, (out,) = partition(b.transmit())
    assert len(ike) == 1  # INVALID_SPI for the forged SPI, over the IKE SA (RFC 7296 §1.5)
    assert out.destination == (A, 4600)


def partition(out: list[Outgoing]) -> tuple[list[Outgoing], list[Outgoing]]:
    """(IKE on 4500, with its non-ESP marker; the rest)."""
    ike = [o for o in out if o.source_port == 4500 and o.data[:4] == b"\0\0\0\0"]
    return ike, [o for o in out if o not in ike]
