"""Every validation error path of the policy loader, and what a valid file becomes."""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from secpath.policy.loader import PolicyFileError, load_policy, parse_policy
from secpath.policy.model import (
    AddressKind,
    Behavior,
    CertificateAuth,
    ConnectionType,
    KerberosAuth,
    PskAuth,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

BASE: dict[str, Any] = {
    "policy": {"name": "Router A", "description": "Side A", "default_response_rule": False},
    "local": {"id": "rtr-a.icm.example.com", "addresses": ["10.10.1.10"]},
    "key_exchange": {
        "lifetime_s": 28800,
        "master_key_pfs": False,
        "method": [
            {"integrity": "sha256", "encryption": "aes128", "dh_group": 14},
            {"integrity": "sha1", "encryption": "3des", "dh_group": "medium"},
        ],
    },
    "filter_list": [
        {
            "name": "rtr-a-to-lgr-a",
            "description": "visible path",
            "filter": [
                {
                    "source": "me",
                    "destination": "10.10.1.20",
                    "protocol": "any",
                    "source_port": "any",
                    "destination_port": "any",
                    "mirrored": True,
                }
            ],
        }
    ],
    "filter_action": [
        {
            "name": "require-security",
            "behavior": "negotiate",
            "allow_unsecured_fallback": False,
            "accept_unsecured_inbound": False,
            "pfs": False,
            "security_method": [
                {"encryption": "aes128gcm", "integrity": "none", "lifetime_kb": 100000, "lifetime_s": 3600},
                {"encryption": "3des", "integrity": "sha1"},
            ],
        }
    ],
    "rule": [
        {
            "filter_list": "rtr-a-to-lgr-a",
            "filter_action": "require-security",
            "connection_type": "all",
            "tunnel_endpoint": "none",
            "authentication": [
                {
                    "method": "certificate",
                    "ca": "pki/ca.pem",
                    "certificate": "pki/rtr-a.pem",
                    "private_key": "pki/rtr-a.key",
                },
                {"method": "psk", "secret_file": "secrets/lgr-a.psk"},
            ],
        }
    ],
}


def base() -> dict[str, Any]:
    return copy.deepcopy(BASE)


def errors_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(PolicyFileError) as info:
        parse_policy(data, source=Path("/etc/secpath/policy.toml"))
    return [str(i) for i in info.value.issues]


def test_valid_policy_becomes_the_model() -> None:
    p = parse_policy(base(), source=Path("/etc/secpath/policy.toml"))
    assert p.name == "Router A"
    assert p.local.identity == "rtr-a.icm.example.com"
    assert p.local.addresses == (ipaddress.ip_address("10.10.1.10"),)
    assert [m.proposal for m in p.key_exchange.methods] == ["aes128-sha256-modp2048", "3des-sha1-modp1024"]
    rule = p.rules[0]
    assert rule.name == "rtr-a-to-lgr-a"
    assert rule.mode == "transport"
    assert rule.connection_type is ConnectionType.ALL
    assert rule.filter_action.behavior is Behavior.NEGOTIATE
    assert [m.proposal for m in rule.filter_action.security_methods] == ["aes128gcm16", "3des-sha1"]
    f = rule.filter_list.filters[0]
    assert f.source.kind is AddressKind.ME
    assert str(f.destination) == "10.10.1.20"
    assert f.protocol is None and f.mirrored
    cert, psk = rule.authentication
    assert isinstance(cert, CertificateAuth) and cert.ca == Path("/etc/secpath/pki/ca.pem")
    assert isinstance(psk, PskAuth) and psk.secret_file == Path("/etc/secpath/secrets/lgr-a.psk")


def test_defaults_and_optional_keys() -> None:
    d = base()
    del d["local"]["id"]
    d["filter_action"][0]["security_method"] = [{"encryption": "aes256gcm"}]
    d["rule"][0].update(
        {
            "name": "r1",
            "tunnel_endpoint": "192.0.2.1",
            "peer": "192.0.2.1",
            "remote_id": "gw",
            "start": "start",
        }
    )
    d["rule"][0]["authentication"] = [{"method": "kerberos", "realm": "ICM.EXAMPLE.COM", "keytab": "/k"}]
    d["filter_list"][0]["filter"][0] = {
        "source": "10.10.0.0/16",
        "destination": "lgr-a.icm.example.com",
        "protocol": "tcp",
        "destination_port": "1024-2048",
        "source_port": 443,
    }
    p = parse_policy(d)
    assert p.local.identity == "10.10.1.10"
    sm = p.rules[0].filter_action.security_methods[0]
    assert (sm.integrity, sm.lifetime_kb, sm.lifetime_s) == ("none", 100000, 3600)
    r = p.rules[0]
    assert r.mode == "tunnel" and r.start == "start" and r.remote_id == "gw"
    assert isinstance(r.authentication[0], KerberosAuth) and r.authentication[0].keytab == Path("/k")
    f = r.filter_list.filters[0]
    assert f.destination.kind is AddressKind.DNS and f.destination.dns_name == "lgr-a.icm.example.com"
    assert f.protocol == 6 and str(f.destination_port) == "1024-2048" and str(f.source_port) == "443"


def test_monitor_settings() -> None:
    d = base()
    d["monitor"] = {"prometheus": "127.0.0.1:9505", "log_file": "log/oakley.log", "log_level": 2}
    m = parse_policy(d, source=Path("/etc/secpath/policy.toml")).monitor
    assert m.prometheus == ("127.0.0.1", 9505)
    assert m.log_file == Path("/etc/secpath/log/oakley.log") and m.log_level == 2
    assert parse_policy(base()).monitor.prometheus is None


def test_permit_and_block_need_no_authentication() -> None:
    d = base()
    d["filter_action"].append({"name": "block", "behavior": "block"})
    d["rule"].append({"name": "b", "filter_list": "rtr-a-to-lgr-a", "filter_action": "block"})
    p = parse_policy(d)
    assert p.rules[1].filter_action.behavior is Behavior.BLOCK
    assert p.rules[1].authentication == ()


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        node: Any = d
        parts = path.split(".")
        for part in parts[:-1]:
            node = node[int(part)] if part.isdigit() else node[part]
        last = parts[-1]
        if value is _DELETE:
            del node[int(last) if last.isdigit() else last]
        elif last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


_DELETE = object()

CASES: list[tuple[str, Mutation, str, str]] = [
    ("missing policy", _set("policy", _DELETE), "[policy]", "missing section"),
    ("policy not a table", _set("policy", 3), "policy", "must be a table"),
    ("missing name", _set("policy.name", _DELETE), "policy.name", "missing"),
    ("name not a string", _set("policy.name", 7), "policy.name", "must be a string"),
    ("unknown key", _set("policy.nmae", "x"), "policy.nmae", "unknown key"),
    ("unknown section", _set("polcy", {}), "polcy", "unknown section"),
    (
        "bool expected",
        _set("policy.default_response_rule", "no"),
        "policy.default_response_rule",
        "true or false",
    ),
    ("bad local address", _set("local.addresses", ["10.0.0.300"]), "local.addresses[0]", "not an IP address"),
    ("empty local addresses", _set("local.addresses", []), "local.addresses", "empty"),
    ("addresses not a list", _set("local.addresses", "10.0.0.1"), "local.addresses", "list of strings"),
    ("empty identity", _set("local.id", " "), "local.id", "empty identity"),
    ("missing local", _set("local", _DELETE), "[local]", "missing section"),
    ("missing key_exchange", _set("key_exchange", _DELETE), "[key_exchange]", "missing section"),
    ("lifetime too short", _set("key_exchange.lifetime_s", 5), "key_exchange.lifetime_s", "at least 60"),
    ("lifetime not int", _set("key_exchange.lifetime_s", "8h"), "key_exchange.lifetime_s", "integer"),
    ("lifetime bool", _set("key_exchange.lifetime_s", True), "key_exchange.lifetime_s", "integer"),
    ("method not tables", _set("key_exchange.method", [1]), "key_exchange.method", "array of tables"),
    ("bad integrity", _set("key_exchange.method.0.integrity", "md5"), "method[0].integrity", "not accepted"),
    (
        "bad encryption",
        _set("key_exchange.method.0.encryption", "des"),
        "method[0].encryption",
        "not accepted",
    ),
    ("missing dh", _set("key_exchange.method.0.dh_group", _DELETE), "method[0].dh_group", "missing"),
    ("bad dh number", _set("key_exchange.method.0.dh_group", 17), "method[0].dh_group", "unknown DH group"),
    (
        "bad dh name",
        _set("key_exchange.method.0.dh_group", "ultra"),
        "method[0].dh_group",
        "unknown DH group name",
    ),
    ("dh float", _set("key_exchange.method.0.dh_group", 1.5), "method[0].dh_group", "integer or a string"),
    (
        "dh group 1",
        _set("key_exchange.method.0.dh_group", 1),
        "method[0].dh_group",
        "DH group 1 (768-bit) is refused",
    ),
    ("dh low", _set("key_exchange.method.0.dh_group", "low"), "method[0].dh_group", "refused"),
    ("filter_list not tables", _set("filter_list", {"name": "x"}), "filter_list", "array of tables"),
    ("filter list no name", _set("filter_list.0.name", _DELETE), "filter_list[0].name", "missing"),
    ("no filters", _set("filter_list.0.filter", []), "filter_list[0].filter", "empty"),
    ("missing filters", _set("filter_list.0.filter", _DELETE), "filter_list[0].filter", "missing"),
    ("bad source", _set("filter_list.0.filter.0.source", "10.1.1"), "filter[0].source", "bad address"),
    (
        "bad cidr",
        _set("filter_list.0.filter.0.destination", "10.10.1.0/16"),
        "filter[0].destination",
        "did you mean 10.10.0.0/16",
    ),
    (
        "bad ipv6",
        _set("filter_list.0.filter.0.destination", "2001:db8::zz"),
        "filter[0].destination",
        "bad address",
    ),
    (
        "bad dns",
        _set("filter_list.0.filter.0.destination", "-bad-.example"),
        "filter[0].destination",
        "not an address, subnet or DNS name",
    ),
    (
        "missing destination",
        _set("filter_list.0.filter.0.destination", _DELETE),
        "filter[0].destination",
        "missing",
    ),
    (
        "bad protocol",
        _set("filter_list.0.filter.0.protocol", "sctpx"),
        "filter[0].protocol",
        "unknown protocol",
    ),
    ("protocol range", _set("filter_list.0.filter.0.protocol", 300), "filter[0].protocol", "out of range"),
    (
        "bad port",
        _set("filter_list.0.filter.0.destination_port", "80-20"),
        "filter[0].destination_port",
        "bad port",
    ),
    (
        "port range",
        _set("filter_list.0.filter.0.source_port", 70000),
        "filter[0].source_port",
        "out of range",
    ),
    (
        "ports without tcp/udp",
        _set("filter_list.0.filter.0.destination_port", 80),
        "filter[0].protocol",
        "ports are given",
    ),
    ("me to me", _set("filter_list.0.filter.0.destination", "me"), "filter[0]", "both 'me'"),
    (
        "mixed families",
        _set("filter_list.0.filter.0.source", "2001:db8::1"),
        "filter[0]",
        "different IP versions",
    ),
    (
        "duplicate filter list",
        lambda d: d["filter_list"].append(copy.deepcopy(d["filter_list"][0])),
        "filter_list[1].name",
        "duplicate filter list name",
    ),
    ("bad behavior", _set("filter_action.0.behavior", "allow"), "filter_action[0].behavior", "not accepted"),
    (
        "negotiate without methods",
        _set("filter_action.0.security_method", _DELETE),
        "filter_action[0].security_method",
        "at least one security method",
    ),
    (
        "permit with methods",
        _set("filter_action.0.behavior", "permit"),
        "filter_action[0]",
        "security settings given",
    ),
    (
        "duplicate filter action",
        lambda d: d["filter_action"].append(copy.deepcopy(d["filter_action"][0])),
        "filter_action[1].name",
        "duplicate filter action name",
    ),
    (
        "esp bad encryption",
        _set("filter_action.0.security_method.0.encryption", "rc4"),
        "security_method[0].encryption",
        "not accepted",
    ),
    (
        "esp aead with integrity",
        _set("filter_action.0.security_method.0.integrity", "sha256"),
        "security_method[0].integrity",
        "AEAD",
    ),
    (
        "esp cbc without integrity",
        _set("filter_action.0.security_method.1.integrity", "none"),
        "security_method[1].integrity",
        "needs an integrity",
    ),
    (
        "esp cbc integrity missing",
        _set("filter_action.0.security_method.1.integrity", _DELETE),
        "security_method[1].integrity",
        "needs an integrity",
    ),
    (
        "esp bad integrity",
        _set("filter_action.0.security_method.1.integrity", "md5"),
        "security_method[1].integrity",
        "not accepted",
    ),
    (
        "esp lifetime",
        _set("filter_action.0.security_method.0.lifetime_kb", 0),
        "security_method[0].lifetime_kb",
        "at least 1",
    ),
    (
        "rule unknown filter list",
        _set("rule.0.filter_list", "nope"),
        "rule[0].filter_list",
        "no [[filter_list]] has this name",
    ),
    (
        "rule unknown action",
        _set("rule.0.filter_action", "nope"),
        "rule[0].filter_action",
        "no [[filter_action]] has this name",
    ),
    ("rule missing filter list", _set("rule.0.filter_list", _DELETE), "rule[0].filter_list", "missing"),
    (
        "rule connection type",
        _set("rule.0.connection_type", "wifi"),
        "rule[0].connection_type",
        "not accepted",
    ),
    (
        "rule tunnel endpoint",
        _set("rule.0.tunnel_endpoint", "gw"),
        "rule[0].tunnel_endpoint",
        "not an IP address",
    ),
    ("rule peer", _set("rule.0.peer", "none"), "rule[0].peer", "not an IP address"),
    ("rule start", _set("rule.0.start", "later"), "rule[0].start", "not accepted"),
    ("rule ike version", _set("rule.0.ike_version", 3), "rule[0].ike_version", "not accepted"),
    (
        "rule duplicate name",
        lambda d: d["rule"].append(copy.deepcopy(d["rule"][0])),
        "rule[1].name",
        "duplicate rule name",
    ),
    (
        "negotiate without auth",
        _set("rule.0.authentication", _DELETE),
        "rule[0].authentication",
        "needs an authentication",
    ),
    (
        "auth unknown method",
        _set("rule.0.authentication.0.method", "ntlm"),
        "authentication[0].method",
        "unknown authentication method",
    ),
    (
        "auth inline secret",
        _set("rule.0.authentication.1.secret", "hunter2"),
        "authentication[1].secret",
        "never written",
    ),
    (
        "auth psk missing file",
        _set("rule.0.authentication.1.secret_file", _DELETE),
        "authentication[1].secret_file",
        "missing",
    ),
    ("auth cert missing ca", _set("rule.0.authentication.0.ca", _DELETE), "authentication[0].ca", "missing"),
    (
        "auth cert without key",
        _set("rule.0.authentication.0.private_key", _DELETE),
        "authentication[0]",
        "go together",
    ),
    (
        "auth unknown key",
        _set("rule.0.authentication.0.realm", "X"),
        "authentication[0].realm",
        "unknown key",
    ),
]


@pytest.mark.parametrize(("mutate", "key", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_error_names_file_key_and_problem(mutate: Mutation, key: str, message: str) -> None:
    d = base()
    mutate(d)
    errors = errors_of(d)
    assert any(key in e and message in e for e in errors), errors
    assert all(e.startswith("/etc/secpath/policy.toml: ") for e in errors)


def test_secret_value_never_appears_in_errors() -> None:
    d = base()
    d["rule"][0]["authentication"][1]["secret"] = "hunter2-very-secret"
    errors = errors_of(d)
    assert not any("hunter2" in e for e in errors)


def test_all_errors_reported_at_once() -> None:
    d = base()
    d["policy"]["name"] = 1
    d["local"]["addresses"] = ["x"]
    d["key_exchange"]["method"][0]["integrity"] = "md5"
    d["filter_list"][0]["filter"][0]["destination"] = "10.0.0.0/8x"
    d["rule"][0]["connection_type"] = "wifi"
    assert len(errors_of(d)) == 5


def test_reference_to_an_invalid_section_is_not_reported_twice() -> None:
    d = base()
    d["filter_action"][0]["security_method"][0]["encryption"] = "rc4"
    errors = errors_of(d)
    assert len(errors) == 1 and "encryption" in errors[0]


def test_dh_group_1_allowed_explicitly() -> None:
    d = base()
    d["key_exchange"]["allow_dh_group1"] = True
    d["key_exchange"]["method"][0]["dh_group"] = "low"
    p = parse_policy(d)
    assert p.key_exchange.methods[0].dh_group == 1


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="No such file"):
        load_policy(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[policy\nname = 1\n")
    with pytest.raises(PolicyFileError, match=r"invalid TOML.*line 1"):
        load_policy(bad)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b"[policy]\nname = '\xe9'\n")
    with pytest.raises(PolicyFileError, match="not UTF-8"):
        load_policy(latin)


def test_example_files_load() -> None:
    for name in ("router-a.toml", "guide-profile.toml"):
        p = load_policy(EXAMPLES / name)
        assert p.rules and p.source == EXAMPLES / name


def test_bad_example_reports_each_problem() -> None:
    with pytest.raises(PolicyFileError) as info:
        load_policy(EXAMPLES / "bad" / "broken-references.toml")
    keys = {i.key for i in info.value.issues}
    assert {
        "local.addresses[0]",
        "key_exchange.method[0].integrity",
        "key_exchange.method[0].dh_group",
        "filter_list[0].filter[0].destination",
        "filter_action[0].security_method[0].integrity",
        "rule[0].filter_list",
        "rule[0].tunnel_endpoint",
        "rule[0].authentication[0].secret",
    } <= keys
