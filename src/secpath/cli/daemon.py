"""Daemon commands: ``up``, ``down``, ``reload``, ``initiate``, ``terminate``,
``status`` and ``stats``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from secpath.cli import app
from secpath.cli._output import console, err_console, print_json
from secpath.daemon.control import DEFAULT_CONTROL_PATH, ControlError, request
from secpath.errors import LocalError
from secpath.monitor.view import sa_tables, statistics_tables
from secpath.policy.loader import PolicyFileError, load_policy

ControlOption = Annotated[
    Path, typer.Option("--control", help="The daemon's control socket.", show_default=True)
]


def _ask(control: Path, command: str, args: dict[str, Any] | None = None, *, timeout: float = 30.0) -> Any:
    try:
        return request(control, command, args, timeout=timeout)
    except ControlError as exc:
        err_console.print(f"[bold red]✗[/] {escape(str(exc))}")
        raise typer.Exit(1) from None


@app.command()
def up(
    policy: Annotated[Path, typer.Argument(help="The policy TOML file to run.", show_default=False)],
    foreground: Annotated[
        bool, typer.Option("--foreground", help="Stay in the foreground (no fork).")
    ] = False,
    control: ControlOption = DEFAULT_CONTROL_PATH,
    force_udp_encapsulation: Annotated[
        bool, typer.Option(help="Encapsulate ESP in UDP 4500 even without a NAT (RFC 7296 §2.23).")
    ] = False,
    tun: Annotated[
        str, typer.Option(help="Name of the TUN device protected traffic is routed into.")
    ] = "secpath0",
    log: Annotated[Path | None, typer.Option(help="Daemon output file (background mode).")] = None,
    nat_keepalive: Annotated[
        float, typer.Option(help="Seconds between NAT keepalives sent from behind a NAT.")
    ] = 20.0,
    dpd: Annotated[
        float, typer.Option(help="Dead-peer detection after this many idle seconds (0: off).")
    ] = 30.0,
    retransmit_timeout: Annotated[
        float, typer.Option(help="First IKE retransmission after this many seconds (then x1.8 each).")
    ] = 2.0,
    retransmit_tries: Annotated[int, typer.Option(help="IKE sends before a peer is declared dead.")] = 5,
) -> None:
    """Start the daemon: run POLICY on this host (root needed).

    IKEv2 on UDP 500 and 4500, ESP in userspace through a TUN device, NAT
    traversal, the policy agent's permit/block/negotiate decisions. Refuses
    to start over a running daemon's control socket; removes a stale one.

    Example: secpath up /etc/secpath/policy.toml; secpath status
    """
    try:
        load_policy(policy)
    except PolicyFileError as exc:
        err_console.print(f"[bold red]✗[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    if foreground:
        from secpath.daemon.service import Daemon, DaemonOptions
        from secpath.ike.config import Timing

        options = DaemonOptions(
            control=control,
            tun_name=tun,
            force_udp_encapsulation=force_udp_encapsulation,
            nat_keepalive=nat_keepalive,
            timing=Timing(
                dpd_interval=dpd or None,
                retransmit_timeout=retransmit_timeout,
                retransmit_tries=retransmit_tries,
            ),
        )
        try:
            asyncio.run(Daemon(policy.resolve(), options).run())
        except (LocalError, OSError) as exc:
            err_console.print(f"[bold red]✗[/] secpath daemon: {escape(str(exc))}")
            raise typer.Exit(1) from None
        return
    log = log or control.with_name("secpath.log")
    log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "secpath",
        "up",
        str(policy.resolve()),
        "--foreground",
        "--control",
        str(control),
        "--tun",
        tun,
    ]
    if force_udp_encapsulation:
        argv.append("--force-udp-encapsulation")
    argv += ["--nat-keepalive", str(nat_keepalive), "--dpd", str(dpd)]
    argv += ["--retransmit-timeout", str(retransmit_timeout), "--retransmit-tries", str(retransmit_tries)]
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            err_console.print(f"[bold red]✗[/] the daemon exited ({process.returncode}):\n{escape(tail)}")
            raise typer.Exit(1)
        try:
            request(control, "status", timeout=2)
        except ControlError:
            time.sleep(0.1)
            continue
        console.print(f"secpath daemon running: pid {process.pid}, control {control}, log {log}")
        return
    err_console.print(f"[bold red]✗[/] the daemon did not answer on {control} within 15 s (see {log})")
    raise typer.Exit(1)


@app.command()
def down(control: ControlOption = DEFAULT_CONTROL_PATH) -> None:
    """Stop the daemon: delete every SA (peers are told) and remove its routes and TUN device."""
    _ask(control, "down")
    deadline = time.monotonic() + 10
    while control.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    console.print("secpath daemon stopped")


@app.command()
def reload(
    policy: Annotated[Path, typer.Argument(help="The new policy file.", show_default=False)],
    control: ControlOption = DEFAULT_CONTROL_PATH,
) -> None:
    """Replace the running policy. An invalid policy is rejected and the running one stays."""
    try:
        load_policy(policy)
    except PolicyFileError as exc:
        err_console.print(f"[bold red]✗[/] {escape(str(exc))}\nthe running policy stays")
        raise typer.Exit(2) from None
    result = _ask(control, "reload", {"policy": str(policy.resolve())})
    console.print(f"reloaded {result['loaded']}: {result['rules']} rule(s)")


@app.command()
def initiate(
    rule: Annotated[str, typer.Argument(help="Rule name.", show_default=False)],
    control: ControlOption = DEFAULT_CONTROL_PATH,
) -> None:
    """Negotiate RULE now, without waiting for traffic."""
    result = _ask(control, "initiate", {"rule": rule})
    console.print(f"initiating {result['initiated']} from {result['from']}")


@app.command()
def terminate(
    rule: Annotated[str | None, typer.Argument(help="Rule name.", show_default=False)] = None,
    all_rules: Annotated[bool, typer.Option("--all", help="Every rule.")] = False,
    control: ControlOption = DEFAULT_CONTROL_PATH,
) -> None:
    """Delete the SAs of RULE (or of --all rules)."""
    if (rule is None) == (not all_rules):
        err_console.print("[bold red]✗[/] give a RULE or --all")
        raise typer.Exit(2)
    result = _ask(control, "terminate", {"rule": rule} if rule else {})
    console.print(f"deleted {result['deleted_ike_sas']} IKE SA(s)")


@app.command()
def rekey(
    rule: Annotated[str, typer.Argument(help="Rule name.", show_default=False)],
    ike: Annotated[bool, typer.Option("--ike", help="Rekey the IKE SA instead of the Child SA.")] = False,
    control: ControlOption = DEFAULT_CONTROL_PATH,
) -> None:
    """Rekey RULE's Child SA (make-before-break) or, with --ike, its IKE SA."""
    result = _ask(control, "rekey", {"rule": rule, "ike": ike})
    console.print(f"rekeying {result['rekeying']} {result['what']}(s)")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    control: ControlOption = DEFAULT_CONTROL_PATH,
) -> None:
    """Every IKE SA and Child SA of the running daemon, and the state of every rule."""
    data = _ask(control, "status")
    if as_json:
        print_json(data)
        return
    p = data["policy"]
    console.print(f"[bold]{escape(p['name'])}[/] ({escape(p['file'])}), up {data['uptime_s']} s")
    for table in sa_tables(data):
        console.print(table)


@app.command()
def stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    reset: Annotated[bool, typer.Option("--reset", help="Zero the counters after reading them.")] = False,
    control: ControlOption = DEFAULT_CONTROL_PATH,
) -> None:
    """The IP Security Monitor's statistics (main mode and quick mode)."""
    data = _ask(control, "stats", {"reset": reset})
    if as_json:
        print_json(data)
        return
    for table in statistics_tables(data):
        console.print(table)
