"""``secpath plan``: a topology → every catalog path → a policy per server,
audited, exported."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from secpath.cli import app
from secpath.cli._output import SEVERITY_STYLE, console, err_console, print_json
from secpath.errors import LocalError
from secpath.plan.exporters import FORMATS
from secpath.plan.planner import plan_deployment
from secpath.plan.topology_loader import TopologyError, load_topology
from secpath.plan.writer import PlanOutput, build_output, plan_json, write_plan
from secpath.policy.audit import Severity


def _bad_input(problems: list[dict[str, str]], as_json: bool) -> None:
    if as_json:
        print_json({"valid": False, "problems": problems})
    else:
        err_console.print(f"[bold red]✗ invalid topology[/]: {len(problems)} problem(s)")
        for p in problems:
            err_console.print(
                f"  {escape(p['file'])}: [bold]{escape(p['key'])}[/] = "
                f"{escape(p['value'])}: expected {escape(p['expected'])}"
            )
    raise typer.Exit(2)


def _show(out: PlanOutput, directory: Path | None) -> None:
    plan = out.plan
    table = Table(
        title=f"{plan.topology.deployment.name}: {len(plan.paths)} paths (profile {plan.profile.name})"
    )
    for column in ("#", "a", "b", "network", "authentication", "catalog"):
        table.add_column(column, justify="right" if column == "#" else "left")
    for i, p in enumerate(plan.paths, start=1):
        table.add_row(str(i), p.a.name, p.b.name, p.network.value, p.authentication.value, p.catalog)
    console.print(table)
    for f in out.findings:
        style = SEVERITY_STYLE[f.severity]
        console.print(
            f"[{style}]{f.severity.value}[/] {escape(f.code)} [dim]{escape(f.where)}[/]:"
            f" {escape(f.message)}\n    [dim]{escape(f.reason)}[/]"
        )
    networks = Counter(p.network.value for p in plan.paths)
    auths = Counter(p.authentication.value for p in plan.paths)
    severities = Counter(f.severity for f in out.findings)
    summary = Table.grid(padding=(0, 2))
    summary.add_row("servers", str(len(plan.topology.servers)))
    summary.add_row(
        "paths", f"{len(plan.paths)} (" + ", ".join(f"{n} {k}" for k, n in networks.items()) + ")"
    )
    summary.add_row("authentication", ", ".join(f"{n} {k}" for k, n in auths.items()) or "-")
    summary.add_row("isolated", ", ".join(out.isolated) or "-")
    summary.add_row("findings", ", ".join(f"{severities[s]} {s.value}" for s in Severity))
    if directory is not None:
        summary.add_row("written", f"{len(out.texts)} files + index.json in {directory}")
    else:
        summary.add_row("written", "nothing (no --out)")
    console.print(summary)


@app.command()
def plan(
    topology: Annotated[Path, typer.Argument(help="The deployment's topology.toml.", show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", help="Directory to write the plan into.")] = None,
    formats: Annotated[
        str, typer.Option("--format", help="Comma-separated formats: " + ",".join(FORMATS))
    ] = ",".join(FORMATS),
    isolate: Annotated[
        list[str] | None, typer.Option("--isolate", help="Secure all traffic of this server (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Plan a whole deployment: every server-to-server path of the guide's
    catalog, one mirrored policy per server, audited, exported.

    Exit codes: 0 planned, 1 planned with error findings, 2 invalid topology
    or arguments.

    Example: secpath plan examples/topology.toml --out plan/ --format secpath,swanctl
    """
    chosen = [f.strip() for f in formats.split(",") if f.strip()]
    bad = [f for f in chosen if f not in FORMATS]
    if bad or not chosen:
        _bad_input(
            [
                {
                    "file": "(command line)",
                    "key": "--format",
                    "value": formats,
                    "expected": "a comma-separated list of " + ", ".join(FORMATS),
                }
            ],
            as_json,
        )
    try:
        topo = load_topology(topology)
    except TopologyError as e:
        _bad_input(
            [{"file": i.file, "key": i.key, "value": i.value, "expected": i.expected} for i in e.issues],
            as_json,
        )
    isolated = isolate or []
    known = {s.name for s in topo.servers}
    unknown = [s for s in isolated if s not in known]
    if unknown:
        _bad_input(
            [
                {
                    "file": "(command line)",
                    "key": "--isolate",
                    "value": name,
                    "expected": "a server of the topology: " + ", ".join(sorted(known)),
                }
                for name in unknown
            ],
            as_json,
        )
    try:
        output = build_output(plan_deployment(topo), chosen, isolated)
    except LocalError as e:
        _bad_input([{"file": str(topology), "key": "(plan)", "value": "", "expected": str(e)}], as_json)
    if out is not None:
        try:
            write_plan(output, out)
        except OSError as e:
            _bad_input(
                [
                    {
                        "file": str(e.filename or out),
                        "key": "--out",
                        "value": str(out),
                        "expected": f"a writable directory ({e.strerror})",
                    }
                ],
                as_json,
            )
    if as_json:
        data: dict[str, Any] = plan_json(output, out)
        if out is None:
            for server in data["servers"].values():
                server["files"] = {}
            for site in data["sites"].values():
                site["files"] = {}
        print_json(data)
    else:
        _show(output, out)
    raise typer.Exit(1 if any(f.severity is Severity.ERROR for f in output.findings) else 0)
