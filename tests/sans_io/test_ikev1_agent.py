"""Policy agents with ``ike_version = 1`` rules: the agent runs them on the
IKEv1 engine, routes IKE datagrams by their header version, and ESP carries
the traffic exactly as with IKEv2; a host with IKEv1 and IKEv2 rules speaks
each to its peer."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from secpath.agent import RuleState
from secpath.agent.engines import IkeEngines
from secpath.esp import Lifetime
from secpath.ike.v1 import is_ikev1
from secpath.policy.model import Policy, Rule

from .test_agent import A, B, Net, agent, policy, same_but_id, udp_packet

C = "10.0.0.3"


def v1(p: Policy) -> Policy:
    return replace(p, rules=tuple(replace(r, ike_version=1) for r in p.rules))


@pytest.mark.parametrize("tunnel", [False, True])
@pytest.mark.parametrize("encap", [False, True])
def test_ikev1_rule_negotiates_on_the_first_packet(tunnel: bool, encap: bool) -> None:
    kw = {"esp": "3des", "ike": ("sha1", "3des", 2)}
    pa = v1(policy(A, B, tunnel=B if tunnel else "none", **kw))  # type: ignore[arg-type]
    pb = v1(policy(B, A, tunnel=A if tunnel else "none", **kw))  # type: ignore[arg-type]
    a, b = agent(pa, 1, force_udp_encapsulation=encap), agent(pb, 2, force_udp_encapsulation=encap)
    assert isinstance(a.engine, IkeEngines) and a.engine.v2 is None and a.engine.v1 is not None
    net = Net({A: a, B: b})
    pkt = udp_packet(A, B, b"hello over IKEv1")
    a.send_packet(pkt, 0.0)
    net.run()
    assert [same_but_id(p) for p in net.delivered[B]] == [same_but_id(pkt)], \
        net.events(A) + net.events(B)
    reply = udp_packet(B, A, b"hello back", 7, 40000)
    b.send_packet(reply, net.now)
    net.run()
    assert [same_but_id(p) for p in net.delivered[A]] == [same_but_id(reply)]
    assert a.rule_state("path") is RuleState.UP and b.rule_state("path") is RuleState.UP
    ike = [o for _, o in net.seen if o.source_port in (500, 4500) and
           (o.source_port == 500 or o.data[:4] == bytes(4))]
    assert ike and all(is_ikev1(o.data[4:] if o.source_port == 4500 else o.data) for o in ike)
    assert all(b"hello" not in o.data for _, o in net.seen)
    # the monitor's "Main Mode SAs" / "Quick Mode SAs" in their literal IKEv1 meaning
    assert a.stats.main_mode["main_mode_sas"] == 1 and a.stats.main_mode["quick_mode_sas"] == 1
    kinds = [e.split(":")[0] for e in net.events(A)]
    assert kinds[:3] == ["acquire", "ike-up", "child-up"]


def test_a_host_speaks_ikev1_and_ikev2_to_different_peers() -> None:
    ike = ("sha256", "aes128", 14)
    pa = policy(A, B, esp="aes128", ike=ike, extra_rules=[])
    to_c = policy(A, C, esp="aes128", ike=ike)
    pa = replace(pa, rules=(replace(pa.rules[0], ike_version=1),
                            replace(to_c.rules[0], name="to-c")))
    pb = v1(policy(B, A, esp="aes128", ike=ike))
    pc = policy(C, A, esp="aes128", ike=ike)
    a, b, c = agent(pa, 1), agent(pb, 2), agent(pc, 3)
    assert isinstance(a.engine, IkeEngines)
    assert a.engine.v1 is not None and a.engine.v2 is not None
    net = Net({A: a, B: b, C: c})
    a.send_packet(udp_packet(A, B, b"to B over IKEv1"), 0.0)
    a.send_packet(udp_packet(A, C, b"to C over IKEv2"), 0.0)
    net.run()
    assert len(net.delivered[B]) == 1 and len(net.delivered[C]) == 1, \
        net.events(A) + net.events(B) + net.events(C)
    to_b = [o for n, o in net.seen if n == A and o.destination[0] == B and o.source_port == 500]
    to_c_ike = [o for n, o in net.seen if n == A and o.destination[0] == C
                and o.source_port == 500]
    assert to_b and all(is_ikev1(o.data) for o in to_b)
    assert to_c_ike and not any(is_ikev1(o.data) for o in to_c_ike)
    assert a.stats.main_mode["main_mode_sas"] == 2
    # an IKEv2 datagram for a host whose rules are all IKEv1 is counted, not answered
    before = b.stats.main_mode["invalid_packets_received"]
    b.receive_datagram(to_c_ike[0].data, (A, 500), 500, net.now)
    assert b.transmit() == []
    b.handle_timer(net.now)
    assert b.stats.main_mode["invalid_packets_received"] == before + 1


def test_negotiation_log_names_ikev1_exchanges_and_payloads() -> None:
    kw = {"esp": "3des", "ike": ("sha1", "3des", 2)}
    a = agent(v1(policy(A, B, **kw)), 1)  # type: ignore[arg-type]
    b = agent(v1(policy(B, A, **kw)), 2)  # type: ignore[arg-type]
    a.trace_level = 3
    net = Net({A: a, B: b})
    a.send_packet(udp_packet(A, B, b"traced"), 0.0)
    net.run()
    traced = []
    while (e := a.next_event()) is not None:
        if e.kind in ("ike-out", "ike-in"):
            traced.append(e.detail)
    assert traced[0].endswith("[Sa VendorId VendorId VendorId]")  # NAT-T, DPD, FRAGMENTATION
    assert traced[2].endswith("[Ke Nonce NatD NatD]")
    assert any(t.endswith("[encrypted]") for t in traced)


def _lifetimes(p: Policy, kb: int, seconds: int) -> Policy:
    def rule(r: Rule) -> Rule:
        methods = tuple(replace(m, lifetime_kb=kb, lifetime_s=seconds)
                        for m in r.filter_action.security_methods)
        return replace(r, filter_action=replace(r.filter_action, security_methods=methods))
    return replace(p, rules=tuple(rule(r) for r in p.rules))


def test_the_responders_shorter_lifetime_reaches_both_esp_sas() -> None:
    """RFC 2407 §4.6.3.1: A proposes 100000 kB / 3600 s, B's policy says
    5000 kB / 900 s; B answers with RESPONDER-LIFETIME and both agents' ESP
    SAs (each direction) get B's byte lifetime, soft at 90 %."""
    kw: dict[str, Any] = {"esp": "3des", "ike": ("sha1", "3des", 2)}
    pa = _lifetimes(v1(policy(A, B, **kw)), 100_000, 3600)
    pb = _lifetimes(v1(policy(B, A, **kw)), 5000, 900)
    a, b = agent(pa, 1), agent(pb, 2)
    net = Net({A: a, B: b})
    a.send_packet(udp_packet(A, B, b"first"), 0.0)
    net.run()
    for host in (a, b):
        (child,) = host.children.values()
        for params in (child.parameters, child.inbound_parameters):
            assert (params.lifetime_kb, params.lifetime_s) == (5000, 900)
        for sa in (child.inbound, child.outbound):
            assert sa.lifetime == Lifetime(soft_bytes=5000 * 1024 * 9 // 10, hard_bytes=5000 * 1024)
    # the other way round the initiator's own shorter lifetime is kept at both ends
    a, b = agent(_lifetimes(v1(policy(A, B, **kw)), 5000, 900), 3), \
        agent(_lifetimes(v1(policy(B, A, **kw)), 100_000, 3600), 4)
    net = Net({A: a, B: b})
    a.send_packet(udp_packet(A, B, b"first"), 0.0)
    net.run()
    for host in (a, b):
        (child,) = host.children.values()
        assert child.outbound.lifetime.hard_bytes == child.inbound.lifetime.hard_bytes == 5000 * 1024


def test_ikev2_children_keep_the_rules_lifetime() -> None:
    pa = _lifetimes(policy(A, B), 5000, 900)
    pb = _lifetimes(policy(B, A), 7000, 900)
    a, b = agent(pa, 5), agent(pb, 6)
    net = Net({A: a, B: b})
    a.send_packet(udp_packet(A, B, b"first"), 0.0)
    net.run()
    for host, kb in ((a, 5000), (b, 7000)):
        (child,) = host.children.values()
        assert child.parameters.lifetime_kb is None
        assert child.outbound.lifetime.hard_bytes == kb * 1024
