"""The planner: one policy per server, one rule per path it takes part in,
and both ends of every path in agreement (mirrored filters, the same
proposals, the same authentication)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from secpath.plan.exporters.secpath import policy_to_toml
from secpath.plan.planner import Plan, plan_deployment
from secpath.plan.profiles import PROFILES
from secpath.plan.synthetic import synthetic_topology
from secpath.plan.topology import AuthKind, Network
from secpath.plan.topology_loader import load_topology, parse_topology
from secpath.policy.loader import load_policy
from secpath.policy.model import (
    AddressKind,
    Behavior,
    CertificateAuth,
    ConnectionType,
    KerberosAuth,
    Policy,
    PskAuth,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TOPOLOGIES = ["topology.toml", "topology-guide.toml", "topology-nam-cicm.toml"]


def _plan(name: str) -> Plan:
    if name.startswith("synthetic-"):
        return plan_deployment(parse_topology(synthetic_topology(int(name.split("-")[1]))))
    return plan_deployment(load_topology(EXAMPLES / name))


def _host(policy: Policy, rule: str, end: str) -> str:
    f = policy.rule(rule).filter_list.filters[0]
    address = f.source if end == "source" else f.destination
    assert address.kind is AddressKind.NETWORK and address.is_host
    return str(address)


@pytest.mark.parametrize("name", [*TOPOLOGIES, "synthetic-120"])
def test_both_ends_of_every_path_agree(name: str) -> None:
    plan = _plan(name)
    topology = plan.topology
    assert plan.paths
    for path in plan.paths:
        a, b = plan.policies[path.a.name], plan.policies[path.b.name]
        ra, rb = a.rule(path.rule), b.rule(path.rule)
        # mirrored filters, protocol any: a's own address <-> where a reaches b
        fa, fb = ra.filter_list.filters, rb.filter_list.filters
        assert len(fa) == len(fb) == 1
        assert fa[0].mirrored and fb[0].mirrored
        assert fa[0].protocol is None and fb[0].protocol is None
        assert _host(a, path.rule, "source") == str(path.a_address)
        assert _host(b, path.rule, "source") == str(path.b_address)
        assert _host(a, path.rule, "destination") == str(topology.address_seen_from(
            path.b, path.a) if path.network is Network.VISIBLE else path.b_address)
        assert _host(b, path.rule, "destination") == str(topology.address_seen_from(
            path.a, path.b) if path.network is Network.VISIBLE else path.a_address)
        # each end's local addresses hold its filter's source
        assert ipaddress.ip_address(_host(a, path.rule, "source")) in a.local.addresses
        assert ipaddress.ip_address(_host(b, path.rule, "source")) in b.local.addresses
        # the peer and the identity each end expects are the other end's
        assert ra.peer == path.b_seen_by_a and rb.peer == path.a_seen_by_b
        assert ra.remote_id == b.local.id and rb.remote_id == a.local.id
        # the same proposals and the same authentication method
        assert a.key_exchange == b.key_exchange == plan.profile.key_exchange
        assert ra.filter_action == rb.filter_action
        assert ra.filter_action.security_methods == plan.profile.security_methods
        assert [m.method for m in ra.authentication] == [m.method for m in rb.authentication]
        assert ra.authentication[0].method == path.authentication.value
        assert ra.mode == rb.mode == "transport"


@pytest.mark.parametrize("name", TOPOLOGIES)
def test_every_server_gets_one_rule_per_path_and_the_wizard_settings(name: str) -> None:
    plan = _plan(name)
    for server in plan.topology.servers:
        policy = plan.policies[server.name]
        expected = [p.rule for p in plan.paths if server.name in (p.a.name, p.b.name)]
        assert [r.name for r in policy.rules] == expected
        assert policy.default_response_rule is False  # "Do not Activate the default response rule"
        for rule in policy.rules:
            assert rule.connection_type is ConnectionType.ALL  # "All network connections"
            assert rule.tunnel_endpoint is None  # "do not specify a tunnel"
            action = rule.filter_action
            assert action.behavior is Behavior.NEGOTIATE  # "Negotiate security"
            assert not action.allow_unsecured_fallback  # "Do not communicate with computers..."
            assert not action.accept_unsecured_inbound


def test_authentication_per_path() -> None:
    plan = _plan("topology.toml")
    by_rule = {p.rule: p for p in plan.paths}
    assert by_rule["rtr-a--lgr-a--visible"].authentication is AuthKind.KERBEROS
    # the Unified CM is in another domain: Kerberos cannot work, certificates are used
    ucm = [p for p in plan.paths if p.b.name == "ucm-1"]
    assert ucm and all(p.authentication is AuthKind.CERTIFICATE for p in ucm)
    rule = plan.policies["pg1-a"].rule("pg1-a--ucm-1--visible")
    auth = rule.authentication[0]
    assert isinstance(auth, CertificateAuth)
    assert auth.certificate == Path("pki/pg1-a.pem") and auth.ca == Path("pki/ca.pem")
    kerberos = plan.policies["rtr-a"].rule("rtr-a--lgr-a--visible").authentication[0]
    assert isinstance(kerberos, KerberosAuth) and kerberos.realm == "ICM.EXAMPLE.COM"
    guide = _plan("topology-guide.toml")
    psk = guide.policies["ucm-1"].rule("pg1-a--ucm-1--visible").authentication[0]
    assert isinstance(psk, PskAuth)
    assert psk.secret_file == Path("secrets/pg1-a--ucm-1--visible.psk")


def test_nat_addresses() -> None:
    plan = _plan("topology.toml")
    rtr_a = plan.policies["rtr-a"]
    # pg2-a is reached through its site's NAT address, pg2-b through its static NAT address
    assert _host(rtr_a, "rtr-a--pg2-a--visible", "destination") == "198.51.100.7"
    assert _host(rtr_a, "rtr-a--pg2-b--visible", "destination") == "198.51.100.8"
    pg2a = plan.policies["pg2-a"]
    assert _host(pg2a, "rtr-a--pg2-a--visible", "source") == "192.168.50.10"
    assert _host(pg2a, "rtr-a--pg2-a--visible", "destination") == "10.10.1.10"
    # the two PGs of the remote site see each other directly
    assert _host(pg2a, "pg2-a--pg2-b--visible", "destination") == "192.168.50.11"
    crossing = {p.rule for p in plan.paths if p.crosses_nat}
    assert crossing == {"rtr-a--pg2-a--visible", "rtr-a--pg2-b--visible",
                        "rtr-b--pg2-a--visible", "rtr-b--pg2-b--visible",
                        "pg2-a--ucm-1--visible", "pg2-b--ucm-1--visible"}


def test_profiles() -> None:
    assert _plan("topology.toml").profile is PROFILES["modern"]
    guide = _plan("topology-guide.toml")
    kx = guide.policies["rtr-a"].key_exchange
    assert [(m.encryption, m.integrity, m.dh_group) for m in kx.methods] == [("3des", "sha1", 2)]
    methods = guide.policies["rtr-a"].rules[0].filter_action.security_methods
    assert [(m.encryption, m.integrity) for m in methods] == [("3des", "sha1")]
    modern = PROFILES["modern"]
    assert [m.encryption for m in modern.security_methods] == ["aes128gcm", "aes256gcm"]
    assert [m.dh_group for m in modern.key_exchange.methods] == [19, 14]


@pytest.mark.parametrize("name", TOPOLOGIES)
def test_every_secpath_export_loads_back_as_the_same_policy(name: str, tmp_path: Path) -> None:
    plan = _plan(name)
    for server, policy in plan.policies.items():
        path = tmp_path / f"{server}.toml"
        path.write_text(policy_to_toml(policy))
        loaded = load_policy(path)
        assert loaded.name == policy.name and loaded.local == policy.local
        assert loaded.key_exchange == policy.key_exchange
        assert len(loaded.rules) == len(policy.rules)
        for got, want in zip(loaded.rules, policy.rules, strict=True):
            assert got.filter_list == want.filter_list
            assert got.filter_action == want.filter_action
            assert (got.name, got.peer, got.remote_id, got.start, got.tunnel_endpoint) == (
                want.name, want.peer, want.remote_id, want.start, want.tunnel_endpoint)
            # relative credential paths are relative to the policy file
            for g, w in zip(got.authentication, want.authentication, strict=True):
                assert g.method == w.method
                if isinstance(g, CertificateAuth) and isinstance(w, CertificateAuth):
                    assert g.ca == tmp_path / w.ca
                if isinstance(g, PskAuth) and isinstance(w, PskAuth):
                    assert g.secret_file == tmp_path / w.secret_file
