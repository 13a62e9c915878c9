"""IKEv1 proposals: phase-1 transforms and phase-2 ESP proposals from the
policy, their attributes, and the responder's choice."""

from __future__ import annotations

import ipaddress

import pytest

from secpath.ike.selectors import TrafficSelector
from secpath.ike.v1.codec import Attribute, IdPayload, Proposal, Transform
from secpath.ike.v1.constants import AuthenticationMethod, EncapsulationMode
from secpath.ike.v1.proposals import (
    Phase2Suite,
    parse_phase1,
    parse_phase2,
    phase1_proposal,
    phase1_suites,
    phase2_proposals,
    phase2_suites,
    select_phase1,
    select_phase2,
)
from secpath.ike.v1.quick_mode import id_of_selector, selector_of_id
from secpath.policy.model import KeyExchange, KeyExchangeMethod, SecurityMethod

PSK = AuthenticationMethod.PRE_SHARED_KEY


def test_phase1_transforms_carry_the_oakley_attributes() -> None:
    kx = KeyExchange((KeyExchangeMethod("sha1", "3des", 2), KeyExchangeMethod("sha256", "aes256", 14),
                      KeyExchangeMethod("sha256", "aes128gcm", 19)), lifetime_s=28800)
    suites = phase1_suites(kx, PSK)
    assert [s.name for s in suites] == ["3des-sha1-modp1024", "aes256-sha256-modp2048"]
    p = phase1_proposal(suites)
    assert p.transforms[1].attributes == (
        Attribute(1, 7), Attribute(14, 256), Attribute(2, 4), Attribute(3, 1), Attribute(4, 14),
        Attribute(11, 1), Attribute(12, 28800))
    assert [parse_phase1(t) for t in p.transforms] == list(suites)


def test_responder_picks_its_first_suite_and_the_shorter_lifetime() -> None:
    theirs = phase1_suites(KeyExchange((KeyExchangeMethod("sha1", "3des", 2),
                                        KeyExchangeMethod("sha256", "aes128", 14)),
                                       lifetime_s=3600), PSK)
    ours = phase1_suites(KeyExchange((KeyExchangeMethod("sha256", "aes128", 14),),
                                     lifetime_s=28800), PSK)
    picked = select_phase1([phase1_proposal(theirs)], ours)
    assert picked is not None
    chosen, suite = picked
    assert [t.number for t in chosen.transforms] == [2]
    assert suite.name == "aes128-sha256-modp2048" and suite.lifetime_s == 3600
    rsa = phase1_suites(KeyExchange((KeyExchangeMethod("sha256", "aes128", 14),)),
                        AuthenticationMethod.RSA_SIGNATURES)
    assert select_phase1([phase1_proposal(theirs)], rsa) is None


def test_phase2_attributes_and_choice() -> None:
    mine = phase2_suites([SecurityMethod("aes256gcm", "none", lifetime_kb=5000, lifetime_s=600),
                          SecurityMethod("3des", "sha1")], 14, EncapsulationMode.TUNNEL)
    offered = phase2_proposals(mine, b"\x00\x00\x10\x01")
    gcm = offered[0].transforms[0]
    assert gcm.transform_id == 20 and gcm.attribute(5) is None and gcm.attribute(6) == 256
    assert parse_phase2(gcm) == mine[0]
    # the responder behind a NAT wants UDP-encapsulated tunnel mode, shorter lifetimes
    ours = (Phase2Suite("3des", "sha1", 14, EncapsulationMode.UDP_TUNNEL, 300, 0),)
    picked = select_phase2(offered, ours)
    assert picked is not None
    chosen, use, theirs = picked
    assert chosen.number == 2 and use.lifetime_s == 300 and theirs.lifetime_s == 3600
    assert use.mode is EncapsulationMode.TUNNEL  # the initiator's offer, as sent
    no_pfs = (Phase2Suite("3des", "sha1", None, EncapsulationMode.TUNNEL, 300, 0),)
    assert select_phase2(offered, no_pfs) is None


def test_phase2_transform_without_lifetimes_defaults_to_28800_seconds() -> None:
    t = Transform(1, 3, (Attribute(4, 1), Attribute(5, 2)))
    suite = parse_phase2(t)
    assert suite is not None and suite.lifetime_s == 28800 and suite.integrity == "sha1"
    assert parse_phase2(Proposal(1, 3, b"", (t,)).transforms[0]) == suite


@pytest.mark.parametrize(("ts", "id_type"), [
    (TrafficSelector(ipaddress.ip_address("10.1.2.3"), ipaddress.ip_address("10.1.2.3")), 1),
    (TrafficSelector.of_network(ipaddress.ip_network("10.1.0.0/16")), 4),
    (TrafficSelector(ipaddress.ip_address("10.0.0.5"), ipaddress.ip_address("10.0.0.9")), 7),
    (TrafficSelector.of_network(ipaddress.ip_network("2001:db8::/48"), 6,), 6),
    (TrafficSelector(ipaddress.ip_address("2001:db8::1"), ipaddress.ip_address("2001:db8::1"),
                     17, 500, 500), 5),
])
def test_quick_mode_ids_round_trip(ts: TrafficSelector, id_type: int) -> None:
    p = id_of_selector(ts)
    assert p.id_type == id_type
    assert selector_of_id(p) == ts


def test_subnet_id_layout() -> None:
    """RFC 2407 §4.6.2.5: ID_IPV4_ADDR_SUBNET is address then mask."""
    p = id_of_selector(TrafficSelector.of_network(ipaddress.ip_network("192.0.2.0/24")))
    assert p == IdPayload(4, bytes((192, 0, 2, 0, 255, 255, 255, 0)))
