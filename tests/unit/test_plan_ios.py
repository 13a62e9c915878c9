"""The Cisco IOS export: site-to-site tunnel mode between the routers of
sites joined over a WAN — ISAKMP policies, transform sets, a crypto map with
the sites' subnets, NAT keepalives and ``qos pre-classify`` — with every
line one of the IOS commands the guide's tested configuration uses, and the
two sites' configurations mirroring each other."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from secpath.plan.exporters.ios import IosUnsupported, plan_to_ios, site_pairs
from secpath.plan.planner import plan_deployment
from secpath.plan.profiles import PROFILES, Profile
from secpath.plan.synthetic import synthetic_topology
from secpath.plan.topology_loader import load_topology, parse_topology
from secpath.policy.model import KeyExchange, KeyExchangeMethod

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

_IP = r"\d+\.\d+\.\d+\.\d+"
_NET = rf"(host {_IP}|{_IP} {_IP}|any)"
GLOBAL = {
    "trustpoint": re.compile(r"crypto pki trustpoint \S+"),
    "isakmp": re.compile(r"crypto isakmp policy \d+"),
    "keepalive": re.compile(r"crypto isakmp nat keepalive \d+"),
    "identity": re.compile(r"crypto isakmp identity (address|dn|hostname)"),
    "transform-set": re.compile(r"crypto ipsec transform-set (\S+)( (esp-3des|esp-aes 128|"
                                r"esp-aes 256|esp-gcm 128|esp-gcm 256|esp-sha-hmac|"
                                r"esp-sha256-hmac|esp-sha384-hmac|esp-sha512-hmac))+"),
    "acl": re.compile(r"ip access-list extended (\S+)"),
    "crypto-map": re.compile(r"crypto map (\S+) \d+ ipsec-isakmp"),
    "interface": re.compile(r"interface \S+"),
}
SUB = {
    "trustpoint": re.compile(r" (enrollment terminal|subject-name CN=\S+|revocation-check crl)"),
    "isakmp": re.compile(r" (encryption (3des|aes 128|aes 192|aes 256)|hash (sha|sha256|sha384|"
                         r"sha512)|authentication (rsa-sig|pre-share)|group (2|5|14|15|16|19|20|"
                         r"21)|lifetime \d+)"),
    "transform-set": re.compile(r" mode (tunnel|transport)"),
    "acl": re.compile(rf" permit ip {_NET} {_NET}"),
    "crypto-map": re.compile(rf" (description .+|set peer {_IP}|set transform-set( \S+)+|"
                             r"set security-association lifetime (seconds|kilobytes) \d+|"
                             r"match address \S+|qos pre-classify|set pfs group\d+)"),
    "interface": re.compile(r" crypto map \S+"),
}


def parse(config: str) -> list[tuple[str, str, list[str]]]:
    """(kind, header, sub-commands) of every block; fails on an unknown line."""
    blocks: list[tuple[str, str, list[str]]] = []
    current: tuple[str, str, list[str]] | None = None
    lines = config.rstrip("\n").split("\n")
    assert lines[-1] == "end"
    for line in lines[:-1]:
        if line.startswith("!"):
            current = None
            continue
        if line.startswith(" "):
            assert current is not None and current[0] in SUB, line
            assert SUB[current[0]].fullmatch(line), line
            current[2].append(line.strip())
            continue
        kind = next((k for k, rx in GLOBAL.items() if rx.fullmatch(line)), None)
        assert kind is not None, line
        current = (kind, line, [])
        blocks.append(current)
    return blocks


def _acl(blocks: list[tuple[str, str, list[str]]], name: str) -> list[str]:
    return next(sub for kind, head, sub in blocks if kind == "acl" and head.endswith(name))


def test_the_example_sites_mirror_each_other() -> None:
    plan = plan_deployment(load_topology(EXAMPLES / "topology.toml"))
    configs = plan_to_ios(plan)
    assert set(configs) == {"central", "remote-pg-1"}
    central, remote = parse(configs["central"]), parse(configs["remote-pg-1"])
    assert _acl(central, "SECPATH-REMOTE-PG-1") == [
        "permit ip 10.10.1.0 0.0.0.255 192.168.50.0 0.0.0.255"]
    assert _acl(remote, "SECPATH-CENTRAL") == [
        "permit ip 192.168.50.0 0.0.0.255 10.10.1.0 0.0.0.255"]
    central_map = next(sub for kind, _, sub in central if kind == "crypto-map")
    remote_map = next(sub for kind, _, sub in remote if kind == "crypto-map")
    # the remote site is reached at its NAT outside address, the central one at its gateway
    assert "set peer 198.51.100.7" in central_map and "set peer 203.0.113.1" in remote_map
    for config, blocks in ((configs["central"], central), (configs["remote-pg-1"], remote)):
        crypto_map = next(sub for kind, _, sub in blocks if kind == "crypto-map")
        assert "qos pre-classify" in crypto_map  # classify before encryption
        assert "crypto isakmp nat keepalive 20" in config  # NAT transparency keepalives
        sets = {GLOBAL["transform-set"].fullmatch(h).group(1)  # type: ignore[union-attr]
                for k, h, _ in blocks if k == "transform-set"}
        used = next(s for s in crypto_map if s.startswith("set transform-set")).split()[2:]
        assert set(used) <= sets
        modes = [sub for kind, _, sub in blocks if kind == "transform-set"]
        assert all(m == ["mode tunnel"] for m in modes)
        acl = next(s for s in crypto_map if s.startswith("match address")).split()[2]
        assert any(k == "acl" and h.endswith(acl) for k, h, _ in blocks)
        interface = [sub for kind, _, sub in blocks if kind == "interface"]
        assert interface == [["crypto map SECPATH"]]


def test_modern_and_guide_suites() -> None:
    modern = plan_to_ios(plan_deployment(load_topology(EXAMPLES / "topology.toml")))["central"]
    assert "crypto ipsec transform-set SECPATH-TS1 esp-gcm 128" in modern
    assert " encryption aes 128\n hash sha256\n authentication rsa-sig\n group 19" in modern
    doc = synthetic_topology(30, profile="guide")
    guide = plan_to_ios(plan_deployment(parse_topology(doc)))
    assert set(guide) == {"central", "remote-0", "remote-1"}  # PG pairs 4 and 9 are remote
    text = guide["central"]
    maps = [h for k, h, _ in parse(text) if k == "crypto-map"]
    assert maps == ["crypto map SECPATH 10 ipsec-isakmp", "crypto map SECPATH 20 ipsec-isakmp"]
    assert "crypto ipsec transform-set SECPATH-TS1 esp-3des esp-sha-hmac" in text
    assert " encryption 3des\n hash sha\n authentication rsa-sig\n group 2" in text


def test_sites_without_a_gateway_or_a_shared_path_get_nothing() -> None:
    plan = plan_deployment(load_topology(EXAMPLES / "topology-guide.toml"))
    assert site_pairs(plan) == [] and plan_to_ios(plan) == {}
    plan = plan_deployment(load_topology(EXAMPLES / "topology-nam-cicm.toml"))
    assert plan_to_ios(plan) == {}  # two sites, but no gateways


def test_an_algorithm_ios_lacks_is_refused() -> None:
    plan = plan_deployment(load_topology(EXAMPLES / "topology.toml"))
    x25519 = Profile("x", KeyExchange((KeyExchangeMethod("sha256", "aes128", 31),)),
                     PROFILES["modern"].security_methods, "curve25519")
    with pytest.raises(IosUnsupported, match="curve25519"):
        plan_to_ios(type(plan)(plan.topology, x25519, plan.paths, plan.policies, plan.paths_of))


def test_the_parser_rejects_unknown_lines() -> None:
    for bad in ["crypto isakmp policy 10\n encryption blowfish\nend\n",
                "crypto map M 10 ipsec-manual\nend\n", "router bgp 1\nend\n"]:
        with pytest.raises(AssertionError):
            parse(bad)
