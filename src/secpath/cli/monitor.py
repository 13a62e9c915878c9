"""``secpath monitor`` and ``secpath log``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live
from rich.markup import escape

from secpath.cli import app
from secpath.cli._output import console, err_console
from secpath.cli.daemon import ControlOption, _ask
from secpath.daemon.control import DEFAULT_CONTROL_PATH
from secpath.monitor.oakley import format_record, read_records
from secpath.monitor.view import render_monitor

log_app = typer.Typer(
    help="The negotiation ('Oakley') log: switch it at run time, read it.", no_args_is_help=True
)
app.add_typer(log_app, name="log")


@app.command()
def monitor(
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="Draw once and exit (for scripts and logs).")] = False,
    control: ControlOption = DEFAULT_CONTROL_PATH,
) -> None:
    """The IP Security Monitor: active policy, main mode and quick mode SAs,
    the monitor's statistics, and every path configured vs active."""

    def view() -> object:
        return render_monitor(_ask(control, "status"), _ask(control, "stats"))

    if once:
        console.print(view())
        return
    try:
        with Live(view(), console=console, refresh_per_second=4, screen=False) as live:  # type: ignore[arg-type]
            while True:
                time.sleep(interval)
                live.update(view())  # type: ignore[arg-type]
    except KeyboardInterrupt:
        return


@app.command()
def keys(
    wireshark: Annotated[
        Path, typer.Option("--wireshark", help="Directory for Wireshark's key files.", show_default=False)
    ],
    control: ControlOption = DEFAULT_CONTROL_PATH,
) -> None:
    """Write the live SAs' keys for Wireshark/tshark (the only way keys leave secpath).

    Then: WIRESHARK_CONFIG_DIR=DIR tshark -r capture.pcap shows decrypted
    IKE and ESP. Anyone with these files can read the traffic: keep them safe.
    """
    from secpath.monitor.wireshark import write_key_files

    result = _ask(control, "keys")
    ikev1 = result.get("ikev1_decryption_table", [])
    written = write_key_files(wireshark, result["ikev2_decryption_table"], result["esp_sa"], ikev1)
    err_console.print(
        f"[yellow]warning:[/] {len(result['esp_sa'])} ESP, {len(result['ikev2_decryption_table'])} IKEv2 "
        f"and {len(ikev1)} ISAKMP SA key(s) written to {escape(str(wireshark))} (mode 0600): whoever "
        "reads them can decrypt the traffic"
    )
    for path in written:
        console.print(str(path))


@log_app.command("enable")
def log_enable(
    level: Annotated[int, typer.Option(help="1 SA events, 2 + every IKE message, 3 + payloads.")] = 1,
    file: Annotated[
        Path | None, typer.Option(help="Log file (default: the policy's, or next to the socket).")
    ] = None,
    control: ControlOption = DEFAULT_CONTROL_PATH,
) -> None:
    """Switch the negotiation log on, now (no restart)."""
    args: dict[str, object] = {"action": "enable", "level": level}
    if file is not None:
        args["file"] = str(file.resolve())
    result = _ask(control, "log", args)
    console.print(f"negotiation log on at level {result['level']}: {result['file']}")


@log_app.command("disable")
def log_disable(control: ControlOption = DEFAULT_CONTROL_PATH) -> None:
    """Switch the negotiation log off."""
    result = _ask(control, "log", {"action": "disable"})
    console.print(f"negotiation log off ({result['file']} kept)")


@log_app.command("show")
def log_show(
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new records.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    file: Annotated[Path | None, typer.Option(help="Read this file instead of asking the daemon.")] = None,
    control: ControlOption = DEFAULT_CONTROL_PATH,
) -> None:
    """Print the negotiation log, one readable line per event."""
    path = file if file is not None else Path(_ask(control, "log", {"action": "where"})["file"])
    if not path.exists() and not follow:
        err_console.print(
            f"[bold red]✗[/] no log at {escape(str(path))} (enable it with `secpath log enable`)"
        )
        raise typer.Exit(1)
    try:
        for record in read_records(path, follow=follow):
            if as_json:
                print_json_line(record)
            else:
                console.out(format_record(record), highlight=False)
    except KeyboardInterrupt:
        return


def print_json_line(record: dict[str, object]) -> None:
    import json
    import sys

    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()
