"""``secpath lab``: the whole deployment secured on this machine, no root."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from secpath.cli import app
from secpath.cli._output import console, err_console, print_json
from secpath.errors import LocalError
from secpath.lab.network import Faults
from secpath.lab.run import LabOptions, LabResult, load_lab_topology, run_lab
from secpath.plan.topology import Topology
from secpath.plan.topology_loader import TopologyError

_PHASES = {"hosts": "starting hosts", "negotiate": "negotiating paths", "traffic": "sending traffic"}


@app.command()
def lab(
    topology: Annotated[
        Path | None,
        typer.Argument(
            help="Topology TOML (as for `secpath plan`); default: the built-in reference deployment."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON (no progress bars).")
    ] = False,
    loss: Annotated[float, typer.Option(help="Drop this fraction of datagrams (0-1).")] = 0.0,
    reorder: Annotated[float, typer.Option(help="Hold back this fraction of datagrams (0-1).")] = 0.0,
    duplicate: Annotated[float, typer.Option(help="Send this fraction of datagrams twice (0-1).")] = 0.0,
    duration: Annotated[float, typer.Option(help="Keep sending traffic for this many seconds.")] = 0.0,
    packets: Annotated[int, typer.Option(help="Packets per path and direction in each round.")] = 3,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the lab running after the summary (Ctrl-C stops).")
    ] = False,
    seed: Annotated[int | None, typer.Option(help="Seed of the fault injector, to replay a run.")] = None,
    port_base: Annotated[int, typer.Option(help="Lab ports: IKE on BASE+500, NAT-T on BASE+4500.")] = 30000,
    scenario: Annotated[
        str | None,
        typer.Option(help="Run a fault scenario: loss, restart, rekey, flood, replay, wrong-ca."),
    ] = None,
) -> None:
    """Run a whole planned deployment on this machine and prove every path.

    Plans the policies with the same code as `secpath plan`, makes a lab CA
    and certificates, starts one secpath host per server address on its own
    loopback address (127.0.0.0/8: real UDP sockets, no root), puts the sites
    behind NAT behind an in-process NAT, negotiates every path with IKEv2 and
    sends traffic through the ESP SAs, checking each payload end to end.
    A clear-text probe on every secured path must be refused.

    Exit code 0 when every path was established and carried verified
    traffic, 1 otherwise (the table says what failed), 2 for bad input.

    Examples: secpath lab;  secpath lab --loss 0.3 --reorder 0.2;
    secpath lab examples/topology.toml --json
    """
    try:
        faults = Faults(loss=loss, reorder=reorder, duplicate=duplicate, delay=0.05 if reorder else 0.0)
        topo = load_lab_topology(topology)
    except TopologyError as exc:
        err_console.print(f"[bold red]✗[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    except LocalError as exc:
        err_console.print(f"[bold red]✗[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    if packets < 1:
        err_console.print("[bold red]✗[/] --packets must be at least 1")
        raise typer.Exit(2)
    if scenario is not None:
        _scenario(scenario, topo, port_base, seed, as_json)
        return
    options = LabOptions(
        faults=faults, packets_per_direction=packets, duration=duration, port_base=port_base, seed=seed
    )

    async def keep_running(result: LabResult) -> None:
        _show(result, as_json)
        err_console.print("lab kept running (--keep): Ctrl-C stops it")
        await asyncio.Event().wait()

    try:
        if as_json:
            result = asyncio.run(run_lab(topo, options, None, keep_running if keep else None))
        else:
            console.print(
                f"[bold]secpath lab[/] — deployment [bold]{escape(topo.deployment.name)}[/]: "
                f"{len(topo.servers)} servers, profile {topo.deployment.profile}"
            )
            with Progress(
                TextColumn("{task.description:<20}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as bars:
                tasks: dict[str, TaskID] = {}

                def progress(phase: str, done: int, total: int) -> None:
                    if phase not in tasks:
                        tasks[phase] = bars.add_task(_PHASES.get(phase, phase), total=total)
                    bars.update(tasks[phase], completed=done, total=total)

                result = asyncio.run(run_lab(topo, options, progress, keep_running if keep else None))
    except KeyboardInterrupt:
        err_console.print("lab stopped")
        raise typer.Exit(130) from None
    except LocalError as exc:
        err_console.print(f"[bold red]✗[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    if not keep:
        _show(result, as_json)
    raise typer.Exit(0 if result.ok else 1)


def _show(result: LabResult, as_json: bool) -> None:
    if as_json:
        print_json(result.as_dict())
        return
    table = Table(title="paths", title_justify="left", header_style="bold", pad_edge=False)
    for column in ("path", "auth", "Child SA", "NAT", "traffic", "clear text", "result"):
        table.add_column(column)
    proposals: dict[str, int] = {}
    for p in result.paths:
        auth = "cert†" if p.used_authentication != p.authentication else p.used_authentication
        esp = f"{p.esp_transform} {p.mode}" if p.established else "-"
        if p.encapsulation == "ESP-in-UDP":
            esp += "/UDP"
        nat = p.nat.split(" behind NAT")[0] if p.nat else "-"
        probes = "refused" if p.clear_probes_refused == 2 else f"{p.clear_probes_refused}/2 refused"
        status = "[green]✓[/]" if p.ok else f"[bold red]✗[/] {escape(p.failure or 'traffic not verified')}"
        table.add_row(escape(p.rule), auth, esp, escape(nat), f"{p.verified}/{p.sent}", probes, status)
        if p.ike_proposal:
            proposals[p.ike_proposal] = proposals.get(p.ike_proposal, 0) + 1
    console.print(table)
    if proposals:
        console.print("IKE SAs: " + ", ".join(f"{k} ({v} paths)" for k, v in proposals.items()))
    if any(p.used_authentication != p.authentication for p in result.paths):
        console.print("† planned Kerberos; the lab authenticates these paths with certificates of its own CA")
    d = result.as_dict()
    m, q = result.totals.main_mode, result.totals.quick_mode
    console.print(
        f"paths up {d['paths_up']}/{d['paths_total']}, verified {d['paths_verified']}/{d['paths_total']} "
        f"on {result.hosts} hosts in {result.seconds:.1f} s"
    )
    console.print(
        f"monitor: Main Mode SAs {m['main_mode_sas']}, Quick Mode SAs {m['quick_mode_sas']}, "
        f"Confidential Bytes Sent {q['confidential_bytes_sent']}, Negotiation Failures "
        f"{m['negotiation_failures']}, Authentication Failures {m['authentication_failures']}, "
        f"Packets With Replay Detection {q['packets_with_replay_detection']}, "
        f"Bad SPI Packets {q['bad_spi_packets']}"
    )
    n = result.network
    console.print(
        f"network: {n['datagrams_sent']} datagrams sent, {n['dropped_by_fault_injector']} dropped, "
        f"{n['reordered_by_fault_injector']} reordered, {n['duplicated_by_fault_injector']} duplicated "
        f"by the fault injector; {n['nat_translations']} NAT translations"
    )
    for note in result.notes:
        if "Kerberos" not in note:
            console.print(f"[yellow]note:[/] {escape(note)}")
    if result.ok:
        console.print("[bold green]✓ every path established and carried verified traffic[/]")
    else:
        bad = [p.rule for p in result.paths if not p.ok]
        console.print(f"[bold red]✗ {len(bad)} path(s) failed:[/] {escape(', '.join(bad))}")


def _scenario(name: str, topology: Topology, port_base: int, seed: int | None, as_json: bool) -> None:
    from secpath.lab.scenarios import SCENARIOS, run_scenario

    if name not in SCENARIOS:
        err_console.print(f"[bold red]✗[/] unknown scenario {escape(name)!r}; one of {', '.join(SCENARIOS)}")
        raise typer.Exit(2)
    if not as_json:
        console.print(f"[bold]secpath lab --scenario {name}[/]: {SCENARIOS[name][0]}")
    try:
        result = asyncio.run(run_scenario(name, topology, LabOptions(port_base=port_base, seed=seed)))
    except LocalError as exc:
        err_console.print(f"[bold red]✗[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    if as_json:
        print_json(result.as_dict())
    else:
        for check in result.checks:
            mark = "[green]✓[/]" if check.ok else "[bold red]✗[/]"
            detail = f" [dim]({escape(check.detail)})[/]" if check.detail else ""
            console.print(f"{mark} {escape(check.what)}{detail}")
        console.print(f"{'passed' if result.ok else 'FAILED'} in {result.seconds:.1f} s")
    raise typer.Exit(0 if result.ok else 1)
