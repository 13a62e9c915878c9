"""Two policy agents (the daemon's path: policies parsed, credentials loaded
from the files the rules name) secure a path with Kerberos against a real
MIT KDC; failures are counted; methods are tried in the rule's order."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from secpath.agent import PolicyAgent, RuleState
from secpath.errors import LocalError
from secpath.ike.config import Timing
from secpath.ike.credentials import load_all_credentials, load_credentials
from secpath.policy.loader import parse_policy
from secpath.policy.model import Policy

from ..kdc import Kdc, needs_kdc
from .test_agent import Net, same_but_id, udp_packet

pytestmark = needs_kdc

A, B = "10.0.0.1", "10.0.0.2"
NAMES = {A: "alpha.example", B: "beta.example"}


def policy(me: str, peer: str, methods: list[dict[str, Any]]) -> Policy:
    return parse_policy({
        "policy": {"name": f"host {me}"},
        "local": {"addresses": [me]},
        "key_exchange": {"method": [{"integrity": "sha256", "encryption": "aes128gcm",
                                     "dh_group": 19}]},
        "filter_list": [{"name": "path", "filter": [{"source": "me", "destination": peer}]}],
        "filter_action": [{"name": "act", "behavior": "negotiate",
                           "security_method": [{"encryption": "aes128gcm"}]}],
        "rule": [{"name": "path", "filter_list": "path", "filter_action": "act",
                  "authentication": methods}],
    })


def kerberos(realm: Kdc, me: str, peer: str, keytab: Path | None = None,
             service: str | None = None) -> dict[str, Any]:
    return {"method": "kerberos", "keytab": str(keytab or realm.host(NAMES[me])),
            "service_principal": service or realm.principal(NAMES[peer])}


def agent(p: Policy, seed: int) -> PolicyAgent:
    return PolicyAgent(p, random.Random(seed).randbytes, timing=Timing(dpd_interval=None))


def test_agents_secure_a_path_with_kerberos(realm: Kdc) -> None:
    a = agent(policy(A, B, [kerberos(realm, A, B)]), 1)
    b = agent(policy(B, A, [kerberos(realm, B, A)]), 2)
    net = Net({A: a, B: b})
    pkt = udp_packet(A, B, b"hello over Kerberos-keyed ESP")
    a.send_packet(pkt, 0.0)
    net.run()
    assert [same_but_id(p) for p in net.delivered[B]] == [same_but_id(pkt)], \
        net.events(A) + net.events(B)
    assert a.rule_state("path") is RuleState.UP and b.rule_state("path") is RuleState.UP
    assert all(b"hello" not in o.data for _, o in net.seen)
    up = [e for e in net.events(B) if e.startswith("ike-up")]
    assert up and realm.principal(NAMES[A]) in up[0], up


def test_wrong_keytab_counts_an_authentication_failure(realm: Kdc) -> None:
    wrong = realm.host("gamma.example")
    a = agent(policy(A, B, [kerberos(realm, A, B)]), 3)
    b = agent(policy(B, A, [kerberos(realm, B, A, keytab=wrong)]), 4)
    net = Net({A: a, B: b})
    a.send_packet(udp_packet(A, B, b"never delivered"), 0.0)
    net.run()
    assert net.delivered[B] == []
    assert a.stats.main_mode["authentication_failures"] == 1
    assert b.stats.main_mode["authentication_failures"] == 1
    failed = [e for e in net.events(B) if "AP-REQ refused" in e]
    assert failed and "not found in keytab" in failed[0], failed


def test_methods_are_tried_in_order(realm: Kdc, tmp_path: Path) -> None:
    psk = tmp_path / "psk"
    psk.write_bytes(b"a fallback shared secret for the path\n")
    psk.chmod(0o600)
    missing = tmp_path / "no.keytab"
    p = policy(A, B, [kerberos(realm, A, B, keytab=missing),
                      {"method": "psk", "secret_file": str(psk)}])
    creds = load_credentials(p.rules[0])
    assert creds.method == "psk"
    assert len(creds.skipped) == 1 and creds.skipped[0].startswith("kerberos: keytab")
    assert "cannot read" in creds.skipped[0]
    first = load_credentials(policy(A, B, [kerberos(realm, A, B),
                                           {"method": "psk", "secret_file": str(psk)}]).rules[0])
    assert first.method == "kerberos" and first.skipped == ()
    with pytest.raises(LocalError, match=r"no usable authentication method.*kerberos: keytab"):
        load_credentials(policy(A, B, [kerberos(realm, A, B, keytab=missing)]).rules[0])


def test_every_usable_method_is_loaded_in_order(realm: Kdc, tmp_path: Path) -> None:
    """The responder accepts any usable method of its rule; the initiator
    tries them in order (docs/kerberos.md §6): each one's ``skipped`` names
    the unusable methods before it."""
    psk = tmp_path / "psk"
    psk.write_bytes(b"a fallback shared secret for the path\n")
    psk.chmod(0o600)
    rule = policy(A, B, [kerberos(realm, A, B), {"method": "psk", "secret_file": str(tmp_path / "none")},
                         {"method": "psk", "secret_file": str(psk)}]).rules[0]
    loaded = load_all_credentials(rule)
    assert [c.method for c in loaded] == ["kerberos", "psk"]
    assert loaded[0].skipped == ()
    assert len(loaded[1].skipped) == 1 and loaded[1].skipped[0].startswith("psk: PSK file")
    assert load_credentials(rule).method == "kerberos"
