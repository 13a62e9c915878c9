"""Write a plan: every server's policy in every requested format, the IOS
configurations of tunnelled sites, and ``index.json`` (every path, every
file, every finding)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secpath.errors import LocalError
from secpath.plan.audit import audit_plan, merge_findings
from secpath.plan.exporters import FORMATS, SERVER_FORMATS, server_file
from secpath.plan.exporters.ios import plan_to_ios
from secpath.plan.isolation import audit_isolation, isolation_policy
from secpath.plan.planner import Plan
from secpath.plan.topology import AuthKind
from secpath.policy.audit import Finding, Severity
from secpath.policy.model import Policy

__all__ = ["PlanOutput", "build_output", "plan_json", "write_plan"]


@dataclass
class PlanOutput:
    plan: Plan
    policies: dict[str, Policy]  # after isolation
    isolated: tuple[str, ...]
    formats: tuple[str, ...]
    texts: dict[str, str] = field(default_factory=dict)  # relative path → text
    servers: dict[str, dict[str, str]] = field(default_factory=dict)  # server → format → path
    sites: dict[str, dict[str, str]] = field(default_factory=dict)  # site → format → path
    findings: list[Finding] = field(default_factory=list)


def build_output(plan: Plan, formats: Iterable[str] = FORMATS,
                 isolate: Iterable[str] = ()) -> PlanOutput:
    """Render every file in memory and audit the plan; nothing is written."""
    fmts = tuple(dict.fromkeys(formats))
    for f in fmts:
        if f not in FORMATS:
            raise LocalError(f"unknown format {f!r}: expected {', '.join(FORMATS)}")
    topology = plan.topology
    isolated = tuple(dict.fromkeys((*topology.isolation.servers, *isolate)))
    policies = dict(plan.policies)
    extra: list[Finding] = []
    for name in isolated:
        policies[name] = isolation_policy(plan, name)
        extra += audit_isolation(topology, policies[name])
    out = PlanOutput(plan, policies, isolated, fmts)
    unsupported: list[tuple[str, Finding]] = []
    for name, policy in policies.items():
        files: dict[str, str] = {}
        for fmt in fmts:
            if fmt not in SERVER_FORMATS:
                continue
            try:
                rel, text = server_file(fmt, policy, topology.deployment)
            except LocalError as e:
                unsupported.append((name, Finding(
                    Severity.WARNING, f"export-{fmt}-unsupported", f"format {fmt}", str(e),
                    f"no {fmt} file is written for these servers")))
                continue
            out.texts[rel] = text
            files[fmt] = rel
        out.servers[name] = files
    if "ios" in fmts:
        try:
            for site, text in plan_to_ios(plan).items():
                rel = f"ios/{site}.cfg"
                out.texts[rel] = text
                out.sites.setdefault(site, {})["ios"] = rel
        except LocalError as e:
            extra.append(Finding(Severity.WARNING, "export-ios-unsupported", "format ios",
                                 str(e), "no IOS configuration is written"))
    if "swanctl" in fmts and any(p.authentication is AuthKind.KERBEROS for p in plan.paths):
        extra.append(Finding(
            Severity.INFO, "swanctl-kerberos", "format swanctl",
            "Kerberos paths are written for strongSwan with the domain PKI's machine "
            "certificates",
            "IKEv2 has no Kerberos authentication method (RFC 7296 §2.15: signatures and "
            "shared keys); Windows negotiates Kerberos with AuthIP/IKEv1"))
    out.findings = audit_plan(plan, policies=policies,
                              extra=[*extra, *merge_findings(unsupported)])
    return out


def plan_json(out: PlanOutput, root: Path | None = None) -> dict[str, Any]:
    """The index: paths, files per server (and IOS per site), findings."""
    def where(rel: str) -> str:
        return str(root / rel) if root is not None else rel

    return {
        "deployment": out.plan.topology.deployment.name,
        "profile": out.plan.profile.name,
        "paths": [{"a": p.a.name, "b": p.b.name, "network": p.network.value,
                   "authentication": p.authentication.value, "rule": p.rule,
                   "catalog": p.catalog, "guide": p.guide} for p in out.plan.paths],
        "servers": {name: {"files": {fmt: where(rel) for fmt, rel in files.items()},
                           "isolated": name in out.isolated}
                    for name, files in out.servers.items()},
        "sites": {name: {"files": {fmt: where(rel) for fmt, rel in files.items()}}
                  for name, files in out.sites.items()},
        "findings": [f.as_dict() for f in out.findings],
    }


def write_plan(out: PlanOutput, directory: Path) -> Path:
    """Write every rendered file and ``index.json`` under ``directory``."""
    for rel, text in out.texts.items():
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    index = directory / "index.json"
    directory.mkdir(parents=True, exist_ok=True)
    index.write_text(json.dumps(plan_json(out), indent=2) + "\n", encoding="utf-8")
    return index
