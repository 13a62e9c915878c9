"""The planner's IKE version: a server with ``os = "windows-2008r2"`` speaks
IKEv1 only, so every path to it is planned with ``ike_version = 1`` at both
ends, and the exported secpath policy and swanctl keep it."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from secpath.plan.exporters.secpath import policy_to_toml
from secpath.plan.planner import plan_deployment
from secpath.plan.topology import AuthKind
from secpath.plan.topology_loader import TopologyError, parse_topology
from secpath.policy.loader import parse_policy

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "topology.toml"


def _topology(**os_of: str) -> dict[str, Any]:
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    for server in data["server"]:
        if server["name"] in os_of:
            server["os"] = os_of[server["name"]]
    return data


def test_paths_to_a_windows_2008r2_server_use_ikev1_at_both_ends() -> None:
    data = _topology(**{"rtr-a": "windows-2008r2", "rtr-b": "windows-2019"})
    plan = plan_deployment(parse_topology(data))
    old = [p for p in plan.paths if "rtr-a" in (p.a.name, p.b.name)]
    assert old
    for path in plan.paths:
        want = 1 if path in old else 2
        for end in (path.a, path.b):
            assert plan.policies[end.name].rule(path.rule).ike_version == want, path.rule
    # the deployment's Kerberos becomes certificates on IKEv1 paths (no GSS-API method)
    assert parse_topology(data).deployment.authentication is AuthKind.KERBEROS
    assert all(p.authentication is AuthKind.CERTIFICATE for p in old)
    assert any(p.authentication is AuthKind.KERBEROS for p in plan.paths if p not in old)
    # the exported policy file carries it through the loader
    rule = old[0].rule
    text = policy_to_toml(plan.policies["rtr-a"])
    assert parse_policy(tomllib.loads(text)).rule(rule).ike_version == 1


def test_without_os_everything_is_ikev2() -> None:
    plan = plan_deployment(parse_topology(_topology()))
    assert {r.ike_version for p in plan.policies.values() for r in p.rules} == {2}


def test_an_unknown_os_is_a_located_error() -> None:
    with pytest.raises(TopologyError) as info:
        parse_topology(_topology(**{"rtr-a": "windows-nt4"}))
    issue = next(i for i in info.value.issues if i.key.endswith(".os"))
    assert "windows-2008r2" in issue.expected and "windows-nt4" in issue.value
