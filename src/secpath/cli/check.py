"""``secpath check``: validate and audit policy files."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from secpath.cli import app
from secpath.cli._output import SEVERITY_STYLE, console, err_console, print_json
from secpath.policy.audit import Finding, Severity, audit_policy, exit_code
from secpath.policy.loader import PolicyFileError, load_policy
from secpath.policy.model import Policy
from secpath.policy.schema import policy_json_schema


def _is_topology(path: Path) -> bool:
    """A deployment topology (``secpath plan``'s input) rather than a policy."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return "deployment" in data and "policy" not in data


def _check_topology(path: Path) -> tuple[str | None, int, list[dict[str, Any]], list[Finding]]:
    """(deployment name, paths, problems, findings of the plan audit)."""
    from secpath.plan.audit import audit_plan
    from secpath.plan.planner import plan_deployment
    from secpath.plan.topology_loader import TopologyError, load_topology

    try:
        topology = load_topology(path)
    except TopologyError as exc:
        problems = [
            {"key": i.key, "message": "invalid", "value": i.value, "expected": i.expected} for i in exc.issues
        ]
        return None, 0, problems, []
    plan = plan_deployment(topology)
    return topology.deployment.name, len(plan.paths), [], audit_plan(plan)


def _check_one(path: Path) -> tuple[Policy | None, list[dict[str, Any]], list[Finding]]:
    try:
        policy = load_policy(path)
    except PolicyFileError as exc:
        problems = [
            {"key": i.key, "message": i.message, "value": i.value, "expected": i.expected} for i in exc.issues
        ]
        return None, problems, []
    return policy, [], audit_policy(policy)


@app.command()
def check(
    policies: Annotated[
        list[Path], typer.Argument(help="Policy TOML files to validate and audit.", show_default=False)
    ],
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when there are warnings.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Validate policy files (and deployment topologies) and audit their security.

    Every problem names the file, the key path, the bad value and what is
    accepted. The audit flags what the guide and the RFCs warn against: DH
    group 1 and 2, 3DES and HMAC-SHA1, preshared keys (and their file
    permissions), clear-text fallback, the default response rule, proposals
    that can never be chosen.

    Exit codes: 0 clean (warnings allowed), 1 warnings with --strict,
    2 errors or an invalid file.

    Example: secpath check examples/router-a.toml --strict
    """
    results: list[dict[str, Any]] = []
    worst = 0
    for path in policies:
        entry: dict[str, Any] = {"file": str(path)}
        if _is_topology(path):
            name, paths, problems, findings = _check_topology(path)
            entry |= {"kind": "topology", "deployment": name, "paths": paths}
            title = f"topology {name!r}, {paths} path(s)" if name is not None else None
        else:
            policy, problems, findings = _check_one(path)
            entry |= {
                "kind": "policy",
                "policy": policy.name if policy else None,
                "rules": len(policy.rules) if policy else 0,
            }
            title = f"policy {policy.name!r}, {len(policy.rules)} rule(s)" if policy is not None else None
        code = 2 if problems else exit_code(findings, strict=strict)
        worst = max(worst, code)
        entry |= {
            "valid": not problems,
            "problems": problems,
            "findings": [f.as_dict() for f in findings],
            "exit_code": code,
        }
        results.append(entry)
        if not as_json:
            _show(path, title, problems, findings)
    if as_json:
        print_json({"files": results, "exit_code": worst})
    raise typer.Exit(worst)


def _show(path: Path, title: str | None, problems: list[dict[str, Any]], findings: list[Finding]) -> None:
    if title is None:
        err_console.print(f"[bold red]✗ {escape(str(path))}[/]: invalid, {len(problems)} problem(s)")
        for p in problems:
            line = f"{p['key']}: {p['message']}"
            if p["value"] is not None:
                line += f" (got {p['value']!r})"
            if p["expected"]:
                line += f"; expected {p['expected']}"
            err_console.print(Text("  " + line))
        return
    counts = {s: sum(1 for f in findings if f.severity is s) for s in Severity}
    mark = "[bold red]✗[/]" if counts[Severity.ERROR] else "[green]✓[/]"
    console.print(
        f"{mark} [bold]{escape(str(path))}[/]: {escape(title)} — {counts[Severity.ERROR]} error(s), "
        f"{counts[Severity.WARNING]} warning(s), {counts[Severity.INFO]} note(s)"
    )
    for f in findings:
        text = Text("  ")
        text.append(f"{f.severity.value:<7}", style=SEVERITY_STYLE[f.severity])
        text.append(f" {f.where}: ", style="bold")
        text.append(f.message)
        console.print(text)
        console.print(Text(f"          why: {f.reason}", style="dim"))


@app.command()
def schema(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Print the JSON Schema of the policy file format (for editors).

    Example: secpath schema --out policy.schema.json
    """
    import json

    text = json.dumps(policy_json_schema(), indent=2) + "\n"
    if out is None:
        console.out(text, end="", highlight=False)
    else:
        out.write_text(text, encoding="utf-8")
        err_console.print(f"wrote {out}")
