"""The audit of a whole plan: the guide's profile flagged with reasons, PSK
flagged, Kerberos outside the domain an error, sites behind NAT noted and
transport mode through them flagged, uncovered servers and pairs reported,
both ends of every path checked with the foundation's audit_pair."""

from __future__ import annotations

import copy
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from secpath.plan.audit import audit_plan, merge_findings
from secpath.plan.planner import Plan, plan_deployment
from secpath.plan.topology_loader import load_topology, parse_topology
from secpath.policy.audit import Finding, Severity
from secpath.policy.model import KeyExchange, KeyExchangeMethod

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_DOC = tomllib.loads((EXAMPLES / "topology.toml").read_text())


def doc() -> dict[str, Any]:
    return copy.deepcopy(_DOC)


def _server(d: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in d["server"] if s["name"] == name)


def _codes(findings: list[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in findings:
        out.setdefault(f.code, []).append(f)
    return out


def _audit(d: dict[str, Any]) -> tuple[Plan, dict[str, list[Finding]]]:
    plan = plan_deployment(parse_topology(d))
    return plan, _codes(audit_plan(plan))


def test_the_modern_example_has_no_errors_and_notes_its_nat_site() -> None:
    findings = audit_plan(plan_deployment(load_topology(EXAMPLES / "topology.toml")))
    assert not [f for f in findings if f.severity is Severity.ERROR]
    codes = _codes(findings)
    assert set(codes) == {"nat-site", "transport-behind-nat"}
    nat = codes["transport-behind-nat"][0]
    assert nat.severity is Severity.WARNING and "6 transport-mode path(s)" in nat.message
    assert "RFC 3948" in nat.reason and "tunnel mode" in nat.reason
    assert codes["nat-site"][0].severity is Severity.INFO
    assert "198.51.100.7" in codes["nat-site"][0].message


def test_the_guide_profile_and_psk_are_flagged_with_reasons() -> None:
    findings = audit_plan(plan_deployment(load_topology(EXAMPLES / "topology-guide.toml")))
    codes = _codes(findings)
    profile = codes["profile-guide"][0]
    assert profile.severity is Severity.WARNING
    assert "RFC 8221" in profile.reason and "RFC 8247" in profile.reason
    for code in ("dh-group-2", "ike-3des", "ike-sha1", "esp-3des", "esp-sha1"):
        (f,) = codes[code]  # one finding naming all nine servers
        assert "(9 in all)" in f.where
    psk = codes["psk"]
    assert {f.severity for f in psk} == {Severity.WARNING}
    assert any(f.where.startswith("ucm-1:") for f in psk)
    assert all("plain text" in f.reason for f in psk)


def test_kerberos_to_a_server_outside_the_domain_is_an_error() -> None:
    d = doc()
    _server(d, "ucm-1")["authentication"] = "kerberos"
    plan, codes = _audit(d)
    errors = codes["kerberos-outside-domain"]
    assert {f.where for f in errors} == {p.rule for p in plan.paths if p.b.name == "ucm-1"}
    assert all(f.severity is Severity.ERROR for f in errors)
    assert "voice.example.com" in errors[0].message and "X.509" in errors[0].reason


def test_servers_sharing_one_nat_address_are_indistinguishable() -> None:
    d = doc()
    del _server(d, "pg2-b")["nat_address"]
    _, codes = _audit(d)
    errors = codes["indistinguishable-paths"]
    assert {f.where.split(":")[0] for f in errors} == {"rtr-a", "rtr-b", "ucm-1"}
    assert "198.51.100.7" in errors[0].message and "nat_address" in errors[0].reason


def test_uncovered_servers_and_pairs() -> None:
    d = doc()
    d["server"] = [s for s in d["server"] if s["name"] not in ("rtr-b", "lgr-b", "pg1-b")]
    _server(d, "pg1-a")["unified_cm"] = []
    d["server"].append({"name": "ucm-2", "role": "unified-cm", "site": "central",
                        "visible": "10.10.1.51"})
    _, codes = _audit(d)
    (lonely,) = codes["server-without-path"]
    assert lonely.severity is Severity.WARNING and "ucm-2" in lonely.message
    (simplex,) = codes["simplex"]
    assert {"router router", "logger logger", "pg pg1"} <= set(simplex.where.split(", "))
    (no_ucm,) = codes["pg-without-unified-cm"]
    assert no_ucm.where == "pg1-a"


def test_a_private_path_across_sites_is_noted() -> None:
    d = doc()
    d["site"].append({"name": "central-b"})
    _server(d, "rtr-b")["site"] = "central-b"
    _, codes = _audit(d)
    assert codes["private-path-across-sites"][0].where == "rtr-a--rtr-b--private"


def test_ends_that_cannot_agree_are_errors() -> None:
    plan = plan_deployment(load_topology(EXAMPLES / "topology.toml"))
    policies = dict(plan.policies)
    lonely = KeyExchange((KeyExchangeMethod("sha384", "aes256", 20),))
    policies["aw-1"] = replace(policies["aw-1"], key_exchange=lonely)
    codes = _codes(audit_plan(plan, policies=policies))
    mismatch = codes["no-common-ike-proposal"]
    assert len(mismatch) == 4  # aw-1 has four paths: rtr-a, rtr-b, lgr-a, lgr-b
    assert all(f.severity is Severity.ERROR and "aw-1" in f.where for f in mismatch)


def test_merge_names_every_server_once() -> None:
    f = Finding(Severity.WARNING, "x", "rule[0]", "m", "r")
    merged = merge_findings([(f"s{i}", f) for i in range(6)] + [("s0", f)])
    assert [m.where for m in merged] == ["s0, s1, s2, s3, ... (6 in all): rule[0]"]
