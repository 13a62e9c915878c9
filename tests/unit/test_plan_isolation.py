"""Network isolation: all traffic of a server secured, with only the listed
exemptions (domain controllers, DNS, DHCP) in clear, and its audit."""

from __future__ import annotations

import copy
import ipaddress
import tomllib
from pathlib import Path
from typing import Any

from secpath.plan.exporters.secpath import policy_to_toml
from secpath.plan.isolation import SECURE_ALL, audit_isolation, isolation_policy
from secpath.plan.planner import plan_deployment
from secpath.plan.topology_loader import load_topology, parse_topology
from secpath.plan.writer import build_output
from secpath.policy.audit import Severity
from secpath.policy.loader import load_policy
from secpath.policy.model import AddressKind, Behavior, KerberosAuth, PortRange
from secpath.policy.spd import Direction, Spd

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_DOC = tomllib.loads((EXAMPLES / "topology.toml").read_text())


def test_the_isolation_policy() -> None:
    plan = plan_deployment(load_topology(EXAMPLES / "topology.toml"))
    base = plan.policies["aw-1"]
    policy = isolation_policy(plan, "aw-1")
    names = [r.name for r in policy.rules]
    assert names == ["exempt-domain-controllers", "exempt-dns", "exempt-dhcp",
                     *[r.name for r in base.rules], SECURE_ALL]
    for rule in policy.rules[:3]:
        assert rule.filter_action.behavior is Behavior.PERMIT and not rule.authentication
    dcs = [str(f.destination) for f in policy.rules[0].filter_list.filters]
    assert dcs == ["10.10.1.2", "10.10.1.3"]
    dns = policy.rules[1].filter_list.filters
    assert {(f.protocol, f.destination_port) for f in dns} == {(17, PortRange(53, 53)),
                                                              (6, PortRange(53, 53))}
    (dhcp,) = policy.rules[2].filter_list.filters
    assert (dhcp.protocol, dhcp.source_port, dhcp.destination_port) == (
        17, PortRange(68, 68), PortRange(67, 67))
    last = policy.rules[-1]
    (f,) = last.filter_list.filters
    assert f.source.kind is AddressKind.ME and f.destination.kind is AddressKind.ANY
    assert last.filter_action.behavior is Behavior.NEGOTIATE
    assert not last.filter_action.allow_unsecured_fallback
    assert isinstance(last.authentication[0], KerberosAuth)


def test_the_isolated_policy_matches_as_intended(tmp_path: Path) -> None:
    plan = plan_deployment(load_topology(EXAMPLES / "topology.toml"))
    path = tmp_path / "aw-1.toml"
    path.write_text(policy_to_toml(isolation_policy(plan, "aw-1")))
    policy = load_policy(path)  # the exported file is a valid policy
    spd = Spd(policy)
    me = ipaddress.ip_address("10.10.1.30")

    def rule_for(dst: str, protocol: int, sport: int, dport: int) -> tuple[str, bool]:
        match = spd.lookup(me, ipaddress.ip_address(dst), protocol, sport, dport,
                           direction=Direction.OUTBOUND)
        assert match is not None
        return match.rule.name, match.cleartext_allowed

    assert rule_for("10.10.1.2", 6, 40000, 88) == ("exempt-domain-controllers", True)
    # the DNS filter (a port) is more specific than the domain controller's (any)
    assert rule_for("10.10.1.3", 17, 5353, 53) == ("exempt-dns", True)
    assert rule_for("10.10.1.4", 17, 68, 67) == ("exempt-dhcp", True)
    assert rule_for("10.10.1.10", 6, 40000, 1433) == ("rtr-a--aw-1--visible", False)
    assert rule_for("10.99.9.9", 6, 40000, 443) == (SECURE_ALL, False)


def test_the_isolation_audit() -> None:
    plan = plan_deployment(load_topology(EXAMPLES / "topology.toml"))
    findings = audit_isolation(plan.topology, isolation_policy(plan, "aw-1"))
    assert [f.code for f in findings] == ["isolation"]
    bare: dict[str, Any] = copy.deepcopy(_DOC)
    del bare["isolation"]
    plan = plan_deployment(parse_topology(bare))
    codes = {f.code: f for f in audit_isolation(plan.topology, isolation_policy(plan, "aw-1"))}
    assert codes["isolation-no-domain-controller"].severity is Severity.ERROR
    assert "Kerberos" in codes["isolation-no-domain-controller"].reason
    assert codes["isolation-no-dns"].severity is Severity.WARNING
    assert codes["isolation-no-dhcp"].severity is Severity.INFO


def test_isolation_from_the_topology_and_the_command_line() -> None:
    d: dict[str, Any] = copy.deepcopy(_DOC)
    d["isolation"]["servers"] = ["aw-2"]
    plan = plan_deployment(parse_topology(d))
    out = build_output(plan, ["secpath"], ["aw-1"])
    assert out.isolated == ("aw-2", "aw-1")
    for name in ("aw-1", "aw-2"):
        assert out.policies[name].rules[-1].name == SECURE_ALL
    assert out.policies["rtr-a"] == plan.policies["rtr-a"]
    assert [f.code for f in out.findings].count("isolation") == 2
