"""A rule's authentication methods at run time (docs/kerberos.md §6): when a
Kerberos negotiation fails, the initiator starts a new IKE SA with the
rule's next method, the responder accepts any method of its rule, each
method is tried once per round, and the negotiation log says which method
authenticated the IKE SA and why the ones before it did not."""

from __future__ import annotations

import random

from rich.console import Console

from secpath.agent import PolicyAgent, RuleState
from secpath.agent.status import agent_status
from secpath.ike.config import Credentials, Timing
from secpath.ike.credentials import load_kerberos_auth
from secpath.monitor.view import sa_tables
from secpath.policy.model import KerberosAuth, Policy

from ..kdc import Kdc, needs_kdc
from . import pki
from .harness import credentials as cert_credentials
from .test_agent import Net, same_but_id, udp_packet
from .test_kerberos_agent import NAMES, A, B, kerberos, policy

pytestmark = needs_kdc

CERT = {"method": "certificate", "ca": "/nonexistent/ca.pem"}


def agent(p: Policy, me: str, seed: int) -> PolicyAgent:
    """The rule's methods in its order: Kerberos from the keytab the rule
    names, certificates from the test CA (the files in the policy are not read)."""
    rule = p.rules[0]
    creds: list[Credentials] = []
    for m in rule.authentication:
        if isinstance(m, KerberosAuth):
            creds.append(load_kerberos_auth(m))
        else:
            creds.append(cert_credentials("ecdsa", me))
    return PolicyAgent(p, random.Random(seed).randbytes, credentials={rule.name: creds},
                       timing=Timing(dpd_interval=None))


def events(net: Net, name: str) -> list[str]:
    return net.events(name)


def ike_sa_inits(net: Net, sender: str) -> int:
    """IKE_SA_INIT requests ``sender`` sent (RFC 7296 §3.1: exchange type 34)."""
    return sum(1 for name, o in net.seen if name == sender and o.source_port
               and o.data[18] == 34 and not o.data[19] & 0x20)


def run(a: PolicyAgent, b: PolicyAgent, payload: bytes) -> tuple[Net, bytes]:
    net = Net({A: a, B: b})
    net.now = pki.NOW  # the test certificates are valid then
    pkt = udp_packet(A, B, payload)
    a.send_packet(pkt, net.now)
    net.run()
    return net, pkt


def test_peer_without_kerberos_gets_the_certificate_method(realm: Kdc) -> None:
    """The peer's rule has certificates only: it refuses our AP-REQ
    (AUTHENTICATION_FAILED), and a second IKE SA authenticates by certificate."""
    realm.host(NAMES[B])  # the ticket can be had; the peer's rule does not use it
    a = agent(policy(A, B, [kerberos(realm, A, B), CERT]), A, 1)
    b = agent(policy(B, A, [CERT]), B, 2)
    net, pkt = run(a, b, b"after the fallback")
    log_a = events(net, A)
    assert [same_but_id(p) for p in net.delivered[B]] == [same_but_id(pkt)], log_a
    assert a.rule_state("path") is RuleState.UP
    assert ike_sa_inits(net, A) == 2  # one IKE SA per method
    fallback = [e for e in log_a if e.startswith("auth-fallback")]
    assert len(fallback) == 1 and "kerberos failed" in fallback[0] and "trying certificate" in fallback[0]
    up = [e for e in log_a if e.startswith("ike-up")]
    assert len(up) == 1, log_a
    assert "authenticated by certificate (kerberos failed: IKE_AUTH refused by the peer: " \
           "AUTHENTICATION_FAILED" in up[0], up
    status = agent_status(a, net.now)
    assert [s["auth_method"] for s in status["ike_sas"]] == ["certificate"]
    console = Console(record=True, width=200)
    _, main, _ = sa_tables({"hosts": [status]})
    console.print(main)
    row = next(line for line in console.export_text().splitlines() if B in line)
    assert "certificate" in row and "initiator" in row, row


def test_no_ticket_obtainable_falls_back_and_the_responder_accepts_it(realm: Kdc) -> None:
    """The ticket cannot be had (a realm without a KDC): no AP-REQ leaves;
    the peer, whose rule lists Kerberos first too, accepts the certificate."""
    a = agent(policy(A, B, [kerberos(realm, A, B, service="host/beta.example@NOKDC.TEST"), CERT]),
              A, 3)
    b = agent(policy(B, A, [kerberos(realm, B, A), CERT]), B, 4)
    net, pkt = run(a, b, b"certificate when Kerberos cannot")
    log_a, log_b = events(net, A), events(net, B)
    assert [same_but_id(p) for p in net.delivered[B]] == [same_but_id(pkt)], log_a
    up_a = next(e for e in log_a if e.startswith("ike-up"))
    assert "authenticated by certificate (kerberos failed: Kerberos: no AP-REQ" in up_a, up_a
    assert "NOKDC.TEST" in up_a
    up_b = [e for e in log_b if e.startswith("ike-up")]
    assert len(up_b) == 1 and "authenticated by certificate" in up_b[0], log_b
    # the responder saw no Kerberos attempt: the initiator's failed before IKE_AUTH
    assert not any(e.startswith("ike-failed") for e in log_b), log_b
    assert agent_status(b, net.now)["ike_sas"][0]["auth_method"] == "certificate"


def test_kerberos_first_when_it_works(realm: Kdc) -> None:
    a = agent(policy(A, B, [kerberos(realm, A, B), CERT]), A, 5)
    b = agent(policy(B, A, [kerberos(realm, B, A), CERT]), B, 6)
    net, _ = run(a, b, b"kerberos")
    log_a = events(net, A)
    assert ike_sa_inits(net, A) == 1
    up = [e for e in log_a if e.startswith("ike-up")]
    assert len(up) == 1 and up[0].endswith("authenticated by kerberos"), up
    assert not any(e.startswith("auth-fallback") for e in log_a)


def test_every_method_fails_once_then_the_acquire_gives_up(realm: Kdc) -> None:
    """The peer knows neither our Kerberos principal nor our CA: two IKE SAs
    (one per method), no third; the rule's last failure names both."""
    realm.host(NAMES[B])
    a = agent(policy(A, B, [kerberos(realm, A, B), CERT]), A, 7)
    b_policy = policy(B, A, [CERT])
    other_ca = cert_credentials("ecdsa", B, ca_name="B")
    b = PolicyAgent(b_policy, random.Random(8).randbytes,
                    credentials={"path": Credentials(certificate=other_ca.certificate,
                                                     private_key=other_ca.private_key,
                                                     trust_anchors=(pki.make_ca("B").cert,))},
                    timing=Timing(dpd_interval=None))
    net, _ = run(a, b, b"never delivered")
    log_a = events(net, A)
    assert net.delivered[B] == []
    assert ike_sa_inits(net, A) == 2, log_a
    assert a.rule_state("path") is RuleState.DOWN
    last = a.stats.rule("path").last_failure
    assert last.startswith("kerberos failed: ") and "; certificate failed: " in last, last
    assert a.stats.main_mode["authentication_failures"] == 2
    # a new acquire is a new round: Kerberos first again
    a.send_packet(udp_packet(A, B, b"again"), net.now)
    net.run()
    assert ike_sa_inits(net, A) == 4
