"""The IOS export's peers: a site gateway running secpath (``gateway_os =
"secpath"``) gets a tunnel-mode policy whose rule to an IOS router's site
negotiates IKEv1 (the IOS export is ``crypto isakmp``), with identities and
suites the IOS configuration agrees with; two secpath gateways use IKEv2."""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from secpath.plan.exporters.ios import plan_to_ios
from secpath.plan.planner import Plan, plan_deployment
from secpath.plan.profiles import PROFILES, Profile
from secpath.plan.topology_loader import TopologyError, parse_topology
from secpath.plan.writer import build_output
from secpath.policy.audit import Severity, audit_policy
from secpath.policy.loader import parse_policy
from secpath.policy.model import KeyExchange, KeyExchangeMethod

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "topology.toml"


def _topology(**gateway_os: str) -> dict[str, Any]:
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    for site in data["site"]:
        if site["name"] in gateway_os:
            site["gateway_os"] = gateway_os[site["name"]]
    return data


def _plan(**gateway_os: str) -> Plan:
    return plan_deployment(parse_topology(_topology(**gateway_os)))


def test_a_secpath_gateway_peering_with_an_ios_router_uses_ikev1() -> None:
    plan = _plan(**{"remote-pg-1": "secpath"})
    assert set(plan.gateways) == {"remote-pg-1"}
    policy = plan.gateways["remote-pg-1"]
    (rule,) = policy.rules
    assert rule.ike_version == 1 and rule.mode == "tunnel"
    # the central IOS router is reached at its gateway address, identified by its certificate DN
    assert rule.peer == rule.tunnel_endpoint == ipaddress.ip_address("203.0.113.1")
    assert rule.remote_id == "CN=central-gw.icm.example.com"
    assert policy.local.identity == "CN=remote-pg-1-gw.icm.example.com"
    (flt,) = rule.filter_list.filters
    assert (str(flt.source), str(flt.destination)) == ("192.168.50.0/24", "10.10.1.0/24")
    # only the IOS site gets an IOS configuration, and it agrees with the secpath gateway
    configs = plan_to_ios(plan)
    assert set(configs) == {"central"}
    central = configs["central"]
    assert f" subject-name {rule.remote_id}" in central
    assert "crypto isakmp identity dn" in central  # IOS sends the DN the rule expects
    assert " set peer 198.51.100.7" in central  # the gateway behind NAT, at its outside address
    isakmp = re.findall(r" encryption (\S+ ?\d*)\n hash (\S+)\n authentication rsa-sig\n group (\d+)",
                        central)
    ios_names = {"aes 128": "aes128", "sha256": "sha256"}
    assert [(ios_names[e], ios_names[h], int(g)) for e, h, g in isakmp] == [
        (m.encryption, m.integrity, m.dh_group) for m in policy.key_exchange.methods]
    # the secpath file keeps IKEv1 and tunnel mode through the loader
    out = build_output(plan, formats=("secpath", "ios"))
    assert out.sites["remote-pg-1"] == {"secpath": "gateways/remote-pg-1.toml"}
    assert out.sites["central"] == {"ios": "ios/central.cfg"}
    loaded = parse_policy(tomllib.loads(out.texts["gateways/remote-pg-1.toml"]))
    back = loaded.rule(rule.name)
    assert back.ike_version == 1 and back.tunnel_endpoint == rule.tunnel_endpoint
    # the plan says which rules are IKEv1 and with which suites; nothing is an error
    note = next(f for f in out.findings if f.code == "ikev1-rules")
    assert rule.name in note.where and "AEAD" in note.reason
    assert "aes128-sha256-ecp256" in note.message or "aes128" in note.message
    assert not [f for f in out.findings if f.severity is Severity.ERROR]


def test_two_secpath_gateways_use_ikev2_and_no_ios_file() -> None:
    plan = _plan(**{"remote-pg-1": "secpath", "central": "secpath"})
    assert set(plan.gateways) == {"remote-pg-1", "central"}
    assert {r.ike_version for p in plan.gateways.values() for r in p.rules} == {2}
    assert plan_to_ios(plan) == {}
    out = build_output(plan, formats=("secpath", "ios"))
    assert not [f for f in out.findings if f.code == "ikev1-rules"]


def test_ios_sites_only_get_no_gateway_policy() -> None:
    plan = _plan()
    assert plan.gateways == {} and set(plan_to_ios(plan)) == {"central", "remote-pg-1"}


def test_aead_ike_proposals_are_left_out_of_ikev1_policies() -> None:
    gcm = Profile("gcm", KeyExchange((KeyExchangeMethod("sha256", "aes128gcm", 19),
                                      KeyExchangeMethod("sha256", "aes128", 19))),
                  PROFILES["modern"].security_methods, "IKE AES-GCM first")
    data = _topology(**{"remote-pg-1": "secpath"})
    data["server"][0]["os"] = "windows-2008r2"  # rtr-a: IKEv1-only
    topology = parse_topology(data)
    PROFILES["gcm"] = gcm
    try:
        plan = plan_deployment(replace(topology, deployment=replace(topology.deployment,
                                                                    profile="gcm")))  # type: ignore[arg-type]
    finally:
        del PROFILES["gcm"]
    encryptions = {m.encryption for m in plan.gateways["remote-pg-1"].key_exchange.methods}
    assert encryptions == {"aes128"}
    assert {m.encryption for m in plan.policies["rtr-a"].key_exchange.methods} == {"aes128"}
    # a server without an IKEv1 path keeps the profile's AES-GCM proposal
    ikev2 = [p for p in plan.policies.values() if p.rules and {r.ike_version for r in p.rules} == {2}]
    assert ikev2
    for policy in ikev2:
        assert {m.encryption for m in policy.key_exchange.methods} == {"aes128gcm", "aes128"}
    for policy in (plan.gateways["remote-pg-1"], plan.policies["rtr-a"]):
        assert not [f for f in audit_policy(policy) if f.code == "ikev1-aead"]


def test_gateway_os_is_checked() -> None:
    data = _topology(**{"central": "vyos"})
    with pytest.raises(TopologyError) as info:
        parse_topology(data)
    assert any(i.key.endswith(".gateway_os") for i in info.value.issues)
    data = _topology()
    del data["site"][0]["gateway"]
    data["site"][0]["gateway_os"] = "secpath"
    with pytest.raises(TopologyError) as info:
        parse_topology(data)
    assert any(i.key.endswith(".gateway") for i in info.value.issues)
