"""The PowerShell export: every line is a call of a NetSecurity cmdlet with
parameters and enumeration values its documentation lists
(New-NetIPsecMainModeCryptoProposal/-Set, New-NetIPsecQuickModeCryptoProposal/
-Set, New-NetIPsecAuthProposal, New-NetIPsecPhase1AuthSet,
New-NetIPsecMainModeRule, New-NetIPsecRule, New-NetFirewallRule), and every
set is created before a rule names it."""

from __future__ import annotations

import ipaddress
import re
import shlex
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from secpath.plan.exporters.powershell import PowershellUnsupported, policy_to_powershell
from secpath.plan.isolation import isolation_policy
from secpath.plan.planner import plan_deployment
from secpath.plan.synthetic import synthetic_topology
from secpath.plan.topology_loader import load_topology, parse_topology
from secpath.policy.model import Address, AddressKind, Filter, FilterList, Local, Policy, Rule

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CA = "CN=ICM Example Root CA, DC=icm, DC=example, DC=com"

Check = Callable[[str], bool]
FLAG = "<switch>"


def _enum(*values: str) -> Check:
    return lambda v: v in values


def _int(v: str) -> bool:
    return v.isdigit()


def _text(v: str) -> bool:
    return bool(v)


def _addresses(v: str) -> bool:
    if v == "Any":
        return True
    try:
        ipaddress.ip_network(v, strict=False)
        return True
    except ValueError:
        return False


def _ports(v: str) -> bool:
    return re.fullmatch(r"\d+(-\d+)?", v) is not None


def _protocol(v: str) -> bool:
    return v in {"Any", "TCP", "UDP", "ICMPv4", "ICMPv6"} or (v.isdigit() and int(v) <= 255)


def _switch(v: str) -> bool:
    return v == FLAG


GROUPS = ("None", "DH1", "DH2", "DH14", "DH19", "DH20", "DH24")
CMDLETS: dict[str, tuple[dict[str, Check], set[str]]] = {
    "New-NetIPsecMainModeCryptoProposal": ({
        "Encryption": _enum("None", "DES", "DES3", "AES128", "AES192", "AES256"),
        "Hash": _enum("None", "MD5", "SHA1", "SHA256", "SHA384"),
        "KeyExchange": _enum(*GROUPS)}, set()),
    "New-NetIPsecMainModeCryptoSet": ({
        "Name": _text, "DisplayName": _text, "Proposal": _text, "MaxMinutes": _int,
        "MaxSessions": _int, "Description": _text}, {"DisplayName", "Proposal"}),
    "New-NetIPsecQuickModeCryptoProposal": ({
        "Encapsulation": _enum("None", "AH", "ESP"),
        "AHHash": _enum("None", "MD5", "SHA1", "SHA256", "AESGMAC128", "AESGMAC192",
                        "AESGMAC256"),
        "ESPHash": _enum("None", "MD5", "SHA1", "SHA256", "SHA384", "AESGMAC128", "AESGMAC192",
                         "AESGMAC256", "AESGCM128", "AESGCM192", "AESGCM256"),
        "Encryption": _enum("None", "DES", "DES3", "AES128", "AES192", "AES256", "AESGCM128",
                            "AESGCM192", "AESGCM256"),
        "MaxKilobytes": _int, "MaxMinutes": _int}, set()),
    "New-NetIPsecQuickModeCryptoSet": ({
        "Name": _text, "DisplayName": _text, "Proposal": _text,
        "PerfectForwardSecrecyGroup": _enum(*GROUPS, "SameAsMainMode")},
        {"DisplayName", "Proposal"}),
    "New-NetIPsecAuthProposal": ({
        "Machine": _switch, "User": _switch, "Kerberos": _switch, "Cert": _switch,
        "PreSharedKey": _text, "Authority": _text, "AuthorityType": _enum("Root", "Intermediate"),
        "NTLM": _switch, "Anonymous": _switch}, set()),
    "New-NetIPsecPhase1AuthSet": ({"Name": _text, "DisplayName": _text, "Proposal": _text},
                                  {"DisplayName", "Proposal"}),
    "New-NetIPsecMainModeRule": ({
        "Name": _text, "DisplayName": _text, "MainModeCryptoSet": _text,
        "Phase1AuthSet": _text, "LocalAddress": _addresses, "RemoteAddress": _addresses},
        {"DisplayName"}),
    "New-NetIPsecRule": ({
        "IPsecRuleName": _text, "DisplayName": _text, "Mode": _enum("None", "Tunnel", "Transport"),
        "InboundSecurity": _enum("None", "Request", "Require"),
        "OutboundSecurity": _enum("None", "Request", "Require"),
        "QuickModeCryptoSet": _text, "Phase1AuthSet": _text, "Phase2AuthSet": _text,
        "KeyModule": _enum("Default", "IKEv1", "AuthIP", "IKEv2"),
        "LocalTunnelEndpoint": _addresses, "RemoteTunnelEndpoint": _addresses,
        "LocalAddress": _addresses, "RemoteAddress": _addresses, "Protocol": _protocol,
        "LocalPort": _ports, "RemotePort": _ports}, {"DisplayName"}),
    "New-NetFirewallRule": ({
        "Name": _text, "DisplayName": _text, "Direction": _enum("Inbound", "Outbound"),
        "Action": _enum("NotConfigured", "Allow", "Block"), "LocalAddress": _addresses,
        "RemoteAddress": _addresses, "Protocol": _protocol, "LocalPort": _ports,
        "RemotePort": _ports}, {"DisplayName"}),
}
_READ_KEY = re.compile(r"\(Get-Content -Raw -LiteralPath '([^']+)'\)\.Trim\(\)")


def _call(text: str) -> tuple[str, dict[str, str]]:
    text = _READ_KEY.sub(lambda m: "'<key file " + m.group(1) + ">'", text)
    words = shlex.split(text)
    cmdlet, rest = words[0], words[1:]
    assert cmdlet in CMDLETS, text
    allowed, required = CMDLETS[cmdlet]
    params: dict[str, str] = {}
    i = 0
    while i < len(rest):
        word = rest[i]
        assert word.startswith("-") and word[1:] in allowed, (text, word)
        name = word[1:]
        takes_value = allowed[name] is not _switch
        value = rest[i + 1] if takes_value else FLAG
        assert allowed[name](value), (text, name, value)
        assert name not in params, (text, name)
        params[name] = value
        i += 2 if takes_value else 1
    assert required <= params.keys(), (text, required - params.keys())
    return cmdlet, params


def parse_script(script: str) -> list[tuple[str, dict[str, str]]]:
    assert script.endswith("\r\n")
    calls: list[tuple[str, dict[str, str]]] = []
    variable: str | None = None
    assigned: set[str] = set()
    for line in script.split("\r\n")[:-1]:
        if line.startswith("# ") or line == "$ErrorActionPreference = 'Stop'":
            continue
        if m := re.fullmatch(r"\$(mm|qm|auth) = @\(", line):
            variable = m.group(1)
            continue
        if line == ")":
            assert variable is not None
            assigned.add(variable)
            variable = None
            continue
        if variable is not None:
            m = re.fullmatch(r"  \((.+)\)", line)
            assert m, line
            cmdlet, _ = _call(m.group(1))
            assert cmdlet.endswith("Proposal"), line
            continue
        assert line.endswith(" | Out-Null"), line
        cmdlet, params = _call(line.removesuffix(" | Out-Null"))
        if "Proposal" in params:
            assert params["Proposal"].startswith("$") and params["Proposal"][1:] in assigned
        calls.append((cmdlet, params))
    return calls


def _check_references(calls: list[tuple[str, dict[str, str]]]) -> None:
    sets: set[str] = set()
    for cmdlet, p in calls:
        if cmdlet.endswith("Set"):
            sets.add(p["Name"])
        for ref in ("MainModeCryptoSet", "QuickModeCryptoSet", "Phase1AuthSet"):
            if ref in p:
                assert p[ref] in sets, (cmdlet, ref, p[ref])


def test_every_line_of_every_script_parses() -> None:
    plans = [plan_deployment(load_topology(EXAMPLES / name))
             for name in ("topology.toml", "topology-guide.toml", "topology-nam-cicm.toml")]
    plans.append(plan_deployment(parse_topology(synthetic_topology(60))))
    count = 0
    for plan in plans:
        policies = [*plan.policies.values(),
                    *(isolation_policy(plan, s.name) for s in plan.topology.servers[:2])]
        for policy in policies:
            calls = parse_script(policy_to_powershell(policy, ca_subject=CA))
            _check_references(calls)
            count += len(calls)
    assert count > 500


def test_the_rules_of_a_path() -> None:
    plan = plan_deployment(load_topology(EXAMPLES / "topology.toml"))
    script = policy_to_powershell(plan.policies["pg1-a"], ca_subject=CA)
    calls = parse_script(script)
    assert "-Encryption AES128 -Hash SHA256 -KeyExchange DH19" in script
    assert "-ESPHash AESGCM128 -Encryption AESGCM128" in script
    rules = {p["DisplayName"]: p for c, p in calls if c == "New-NetIPsecRule"}
    kerberos = rules["rtr-a--pg1-a--visible"]
    assert kerberos["Mode"] == "Transport"
    assert kerberos["InboundSecurity"] == kerberos["OutboundSecurity"] == "Require"
    assert (kerberos["LocalAddress"], kerberos["RemoteAddress"]) == ("10.10.1.40", "10.10.1.10")
    assert kerberos["Phase1AuthSet"] == "secpath-pg1-a-kerberos"
    assert rules["pg1-a--ucm-1--visible"]["Phase1AuthSet"] == "secpath-pg1-a-certificate"
    proposals = re.findall(r"New-NetIPsecAuthProposal [^\r]+", script)
    assert f"New-NetIPsecAuthProposal -Machine -Cert -Authority '{CA}' -AuthorityType Root)" \
        in proposals


def test_psk_is_read_from_its_file() -> None:
    plan = plan_deployment(load_topology(EXAMPLES / "topology-guide.toml"))
    script = policy_to_powershell(plan.policies["ucm-1"], ca_subject=CA)
    parse_script(script)
    assert ("-PreSharedKey (Get-Content -Raw -LiteralPath "
            "'secrets\\pg1-a--ucm-1--visible.psk').Trim()") in script


def test_exemptions_and_blocks() -> None:
    doc = tomllib.loads((EXAMPLES / "topology.toml").read_text())
    plan = plan_deployment(parse_topology(doc))
    calls = parse_script(policy_to_powershell(isolation_policy(plan, "aw-1"), ca_subject=CA))
    exempt = [p for c, p in calls if c == "New-NetIPsecRule" and p["InboundSecurity"] == "None"]
    assert {p["DisplayName"].split(" #")[0] for p in exempt} == {
        "exempt-domain-controllers", "exempt-dns", "exempt-dhcp"}
    dns = [p for p in exempt if p["DisplayName"].startswith("exempt-dns")]
    assert {(p["Protocol"], p["RemotePort"]) for p in dns} == {("UDP", "53"), ("TCP", "53")}


def test_the_grammar_check_rejects_what_powershell_would() -> None:
    for bad in ["New-NetIPsecRule -DisplayName 'x' -Mode Tunnelled | Out-Null",
                "New-NetIPsecRule -Name 'x' -DisplayName 'x' | Out-Null",
                "New-NetIPsecMainModeCryptoSet -DisplayName 'x' -Proposal $mm | Out-Null",
                "Set-NetIPsecRule -DisplayName 'x' | Out-Null"]:
        with pytest.raises(AssertionError):
            parse_script(bad + "\r\n")


def test_a_dns_name_filter_is_refused() -> None:
    plan = plan_deployment(load_topology(EXAMPLES / "topology.toml"))
    base = plan.policies["aw-1"]
    rule = base.rules[0]
    named = FilterList(rule.filter_list.name, (Filter(
        Address.me(), Address(AddressKind.DNS, dns_name="hds.example.com")),))
    policy = Policy(base.name, Local(base.local.addresses), base.key_exchange,
                    (Rule(rule.name, named, rule.filter_action, rule.authentication),))
    with pytest.raises(PowershellUnsupported, match="DNS name"):
        policy_to_powershell(policy, ca_subject=CA)
