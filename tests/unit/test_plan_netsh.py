"""The ``netsh ipsec static`` export: every generated line parses against the
documented command grammar (``netsh ipsec static add policy|filterlist|
filter|filteraction|rule``, ``set policy``, Windows Server 2008 R2 help
text), names are defined before they are used, and the script does the
guide's wizard steps."""

from __future__ import annotations

import ipaddress
import re
import shlex
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from secpath.plan.exporters.netsh import NetshUnsupported, policy_to_netsh
from secpath.plan.isolation import isolation_policy
from secpath.plan.planner import Plan, plan_deployment
from secpath.plan.synthetic import synthetic_topology
from secpath.plan.topology_loader import load_topology, parse_topology

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CA = "CN=ICM Example Root CA, DC=icm, DC=example, DC=com"

Check = Callable[[str], bool]


def _choice(*values: str) -> Check:
    return lambda v: v.lower() in {x.lower() for x in values}


def _int(v: str) -> bool:
    return v.isdigit()


def _text(v: str) -> bool:
    return bool(v) and '"' not in v


def _address(v: str) -> bool:
    # ipv4 | ipv6 | dns name | server type | me | any
    if v.lower() in {"me", "any", "wins", "dns", "dhcp", "gateway"}:
        return True
    try:
        ipaddress.ip_address(v)
        return True
    except ValueError:
        return re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*", v) is not None


def _mask(v: str) -> bool:
    if v.isdigit():
        return 0 <= int(v) <= 128
    try:
        ipaddress.ip_network(f"0.0.0.0/{v}")
        return True
    except ValueError:
        return False


def _protocol(v: str) -> bool:
    return v.upper() in {"ANY", "ICMP", "TCP", "UDP", "RAW"} or (v.isdigit() and int(v) <= 255)


# "ConfAlg-HashAlg-GroupNum": ConfAlg DES | 3DES, HashAlg MD5 | SHA1, GroupNum 1 | 2 | 3
_MM = re.compile(r"(DES|3DES)-(MD5|SHA1)-(1|2|3)", re.IGNORECASE)
# ESP[ConfAlg,AuthAlg]:k/s | AH[HashAlg]:k/s | AH[HashAlg]+ESP[ConfAlg,AuthAlg]:k/s
_QM = re.compile(r"((AH\[(MD5|SHA1)\])|(ESP\[(DES|3DES|None),(MD5|SHA1|None)\])|"
                 r"(AH\[(MD5|SHA1)\]\+ESP\[(DES|3DES|None),(MD5|SHA1|None)\])):\d+k/\d+s",
                 re.IGNORECASE)


def _methods(pattern: re.Pattern[str]) -> Check:
    return lambda v: all(pattern.fullmatch(m) for m in v.split()) and bool(v.split())


def _rootca(v: str) -> bool:
    return re.fullmatch(r".+ certmap:(yes|no) excludecaname:(yes|no)", v) is not None


YES_NO = _choice("yes", "no")
GRAMMAR: dict[str, tuple[dict[str, Check], set[str]]] = {
    "add policy": ({
        "name": _text, "description": _text, "mmpfs": YES_NO, "qmpermm": _int,
        "mmlifetime": _int, "activatedefaultrule": YES_NO, "pollinginterval": _int,
        "assign": YES_NO, "mmsecmethods": _methods(_MM)}, {"name"}),
    "add filterlist": ({"name": _text, "description": _text}, {"name"}),
    "add filter": ({
        "filterlist": _text, "srcaddr": _address, "dstaddr": _address, "description": _text,
        "protocol": _protocol, "mirrored": YES_NO, "srcmask": _mask, "dstmask": _mask,
        "srcport": _int, "dstport": _int}, {"filterlist", "srcaddr", "dstaddr"}),
    "add filteraction": ({
        "name": _text, "description": _text, "qmpfs": YES_NO, "inpass": YES_NO, "soft": YES_NO,
        "action": _choice("permit", "block", "negotiate"), "qmsecmethods": _methods(_QM)},
        {"name"}),
    "add rule": ({
        "name": _text, "policy": _text, "filterlist": _text, "filteraction": _text,
        "tunnel": _address, "conntype": _choice("lan", "dialup", "all"), "activate": YES_NO,
        "description": _text, "kerberos": YES_NO, "psk": _text, "rootca": _rootca},
        {"name", "policy", "filterlist", "filteraction"}),
    "set policy": ({
        "name": _text, "guid": _text, "newname": _text, "description": _text, "mmpfs": YES_NO,
        "qmpermm": _int, "mmlifetime": _int, "activatedefaultrule": YES_NO,
        "pollinginterval": _int, "assign": YES_NO, "gponame": _text,
        "mmsecmethods": _methods(_MM)}, {"name"}),
}


def parse_script(script: str) -> list[tuple[str, dict[str, str]]]:
    """(command, parameters) for every netsh line; fails on any line that is
    not a comment, ``@echo off``, a ``set /p`` of the key variable, or a
    grammatical netsh ipsec static command."""
    assert script.endswith("\r\n")
    commands: list[tuple[str, dict[str, str]]] = []
    psk_var_set = False
    for line in script.split("\r\n")[:-1]:
        if line.startswith("@rem ") or line == "@echo off":
            continue
        if line.startswith("set /p "):
            assert re.fullmatch(r'set /p SECPATH_PSK=<"[^"%<>|&]+"', line), line
            psk_var_set = True
            continue
        words = shlex.split(line)
        assert words[:3] == ["netsh", "ipsec", "static"], line
        command = " ".join(words[3:5])
        assert command in GRAMMAR, line
        allowed, required = GRAMMAR[command]
        params: dict[str, str] = {}
        for word in words[5:]:
            key, sep, value = word.partition("=")
            assert sep and key in allowed, (line, word)
            assert key not in params, (line, key)
            assert allowed[key](value), (line, key, value)
            params[key] = value
        assert required <= params.keys(), (line, required - params.keys())
        if params.get("psk") is not None:
            assert params["psk"] == "%SECPATH_PSK%" and psk_var_set, line
        commands.append((command, params))
    return commands


def _check_order(commands: list[tuple[str, dict[str, str]]]) -> None:
    policies: set[str] = set()
    lists: set[str] = set()
    actions: set[str] = set()
    for command, p in commands:
        if command == "add policy":
            policies.add(p["name"])
        elif command == "add filterlist":
            lists.add(p["name"])
        elif command == "add filter":
            assert p["filterlist"] in lists
        elif command == "add filteraction":
            actions.add(p["name"])
        elif command == "add rule":
            assert p["policy"] in policies
            assert p["filterlist"] in lists and p["filteraction"] in actions
        else:
            assert p["name"] in policies


def _guide_plan() -> Plan:
    return plan_deployment(load_topology(EXAMPLES / "topology-guide.toml"))


def test_every_line_of_every_script_parses() -> None:
    plan = _guide_plan()
    scripts = {name: policy_to_netsh(p, ca_subject=CA) for name, p in plan.policies.items()}
    scripts["rtr-a (isolated)"] = policy_to_netsh(isolation_policy(plan, "rtr-a"), ca_subject=CA)
    synthetic = plan_deployment(parse_topology(synthetic_topology(60, profile="guide")))
    scripts |= {f"syn-{n}": policy_to_netsh(p, ca_subject=CA)
                for n, p in synthetic.policies.items()}
    for name, script in scripts.items():
        commands = parse_script(script)
        _check_order(commands)
        assert commands[0][0] == "add policy", name
        assert commands[-1] == ("set policy", {"name": commands[0][1]["name"], "assign": "yes"})


def test_the_wizard_steps_for_a_path() -> None:
    plan = _guide_plan()
    commands = parse_script(policy_to_netsh(plan.policies["rtr-a"], ca_subject=CA))
    policy = commands[0][1]
    assert policy["activatedefaultrule"] == "no"  # "Do not Activate the default response rule"
    assert policy["mmsecmethods"] == "3DES-SHA1-2"  # "SHA1 ... 3DES ... Medium (DH Group 2)"
    rule = "rtr-a--lgr-a--visible"
    filters = [p for c, p in commands if c == "add filter" and p["filterlist"] == rule]
    assert filters == [{"filterlist": rule, "srcaddr": "10.10.1.10", "dstaddr": "10.10.1.20",
                        "srcmask": "32", "dstmask": "32", "protocol": "ANY", "mirrored": "yes"}]
    action = next(p for c, p in commands if c == "add filteraction")
    assert (action["action"], action["soft"], action["inpass"]) == ("negotiate", "no", "no")
    assert action["qmsecmethods"] == "ESP[3DES,SHA1]:100000k/3600s"
    rules = {p["name"]: p for c, p in commands if c == "add rule"}
    assert rules[rule]["kerberos"] == "yes" and rules[rule]["conntype"] == "all"
    assert "tunnel" not in rules[rule]  # "Tunnel Endpoint (do not specify a tunnel)"


def test_psk_and_certificate_rules() -> None:
    plan = _guide_plan()
    script = policy_to_netsh(plan.policies["ucm-1"], ca_subject=CA)
    assert "not-secret" not in script
    commands = parse_script(script)
    rules = [p for c, p in commands if c == "add rule"]
    assert all(r["psk"] == "%SECPATH_PSK%" and r["kerberos"] == "no" for r in rules)
    assert 'set /p SECPATH_PSK=<"secrets\\pg1-a--ucm-1--visible.psk"' in script
    synthetic = plan_deployment(parse_topology(synthetic_topology(12, profile="guide")))
    cert = [p for c, p in parse_script(policy_to_netsh(synthetic.policies["ucm-0"],
                                                        ca_subject=CA)) if c == "add rule"]
    assert cert and all(r["rootca"] == f"{CA} certmap:no excludecaname:no" for r in cert)


def test_isolation_exemptions_are_permit_filters() -> None:
    doc = tomllib.loads((EXAMPLES / "topology-guide.toml").read_text())
    doc["isolation"] = {"domain_controllers": ["10.10.1.2"], "dns": ["10.10.1.3"],
                        "dhcp": ["10.10.1.4"]}
    plan = plan_deployment(parse_topology(doc))
    commands = parse_script(policy_to_netsh(isolation_policy(plan, "aw-1"), ca_subject=CA))
    actions = {p["name"]: p["action"] for c, p in commands if c == "add filteraction"}
    assert actions == {"isolation-exempt": "permit", "require-security": "negotiate"}
    rules = [p["name"] for c, p in commands if c == "add rule"]
    assert rules[:3] == ["exempt-domain-controllers", "exempt-dns", "exempt-dhcp"]
    assert rules[-1] == "isolation-secure-all"
    dns = [p for c, p in commands if c == "add filter" and p["filterlist"] == "exempt-dns"]
    assert [(p["protocol"], p["dstport"]) for p in dns] == [("UDP", "53"), ("TCP", "53")]
    secure_all = [p for c, p in commands if c == "add filter"
                  and p["filterlist"] == "isolation-secure-all"]
    assert secure_all == [{"filterlist": "isolation-secure-all", "srcaddr": "me",
                           "dstaddr": "any", "protocol": "ANY", "mirrored": "yes"}]


def test_the_grammar_check_rejects_what_netsh_would() -> None:
    for bad in ['netsh ipsec static add filter filterlist="x" srcaddr=me dstaddr=any protocol=ESP',
                'netsh ipsec static add policy name="p" mmsecmethods="AES128-SHA256-14"',
                'netsh ipsec static add rule name="r" policy="p" filterlist="x"',
                'netsh ipsec static add filteraction name="a" qmsecmethods="ESP[AES,SHA1]:1k/1s"',
                'netsh ipsec dynamic add rule srcaddr=me']:
        with pytest.raises(AssertionError):
            parse_script(bad + "\r\n")


def test_modern_profile_is_refused_with_the_reason() -> None:
    plan = plan_deployment(load_topology(EXAMPLES / "topology.toml"))
    with pytest.raises(NetshUnsupported, match="DES/3DES, MD5/SHA1 and DH groups 1, 2, 2048"):
        policy_to_netsh(plan.policies["rtr-a"], ca_subject=CA)
