"""The IP Security Monitor view: what ``secpath monitor`` draws from the
daemon's status and statistics (pure: data in, a rich renderable out)."""

from __future__ import annotations

import time
from typing import Any

from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from secpath.monitor.stats import MAIN_MODE, QUICK_MODE

__all__ = ["render_monitor", "sa_tables", "statistics_tables"]

_STATE_STYLE = {"up": "green", "negotiating": "yellow", "down": "bold red", "n/a": "dim"}


def render_monitor(status: dict[str, Any], stats: dict[str, Any]) -> RenderableType:
    policy = status["policy"]
    loaded = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(policy.get("loaded_at", 0)))
    head = (
        f"[bold]Active policy[/] {escape(policy['name'])} — {escape(policy.get('description') or '')}\n"
        f"file {escape(policy['file'])}, last change {loaded}, up {status['uptime_s']} s"
    )
    paths, main, quick = sa_tables(status)
    return Group(
        Panel(head, title="IP Security Monitor"), paths, main, quick, Columns(statistics_tables(stats))
    )


def statistics_tables(stats: dict[str, Any]) -> list[Table]:
    """The main mode and quick mode statistics, with the guide's names."""
    tables = []
    for title, table_def, values in (
        ("Main Mode statistics", MAIN_MODE, stats["main_mode"]),
        ("Quick Mode statistics", QUICK_MODE, stats["quick_mode"]),
    ):
        t = Table(title=title, title_justify="left", header_style="bold")
        t.add_column("statistic")
        t.add_column("value", justify="right")
        for stat in table_def:
            t.add_row(stat.name, str(values.get(stat.key, 0)))
        tables.append(t)
    return tables


def sa_tables(status: dict[str, Any]) -> tuple[Table, Table, Table]:
    """(paths configured vs active, main mode SAs, quick mode SAs) of a
    ``secpath status --json`` document; ``secpath status`` prints these too."""
    paths = Table(
        title="Paths (configured vs active)", title_justify="left", header_style="bold", expand=True
    )
    for c in ("rule", "behavior", "mode", "state", "bytes in/out", "last failure"):
        paths.add_column(c)
    main = Table(title="Main Mode (IKE SAs)", title_justify="left", header_style="bold", expand=True)
    for c in ("peer", "identities", "algorithms", "auth", "NAT", "role"):
        main.add_column(c)
    quick = Table(title="Quick Mode (Child SAs)", title_justify="left", header_style="bold", expand=True)
    for c in ("rule", "filters", "SA", "SPIs in/out", "bytes in/out", "age"):
        quick.add_column(c)
    for host in status["hosts"]:
        for r in host["rules"]:
            style = _STATE_STYLE.get(r["state"], "")
            paths.add_row(
                escape(r["rule"]),
                r["behavior"],
                r["mode"],
                f"[{style}]{r['state']}[/]",
                f"{r['bytes_in']}/{r['bytes_out']}",
                escape(r["last_failure"]),
            )
        for s in host["ike_sas"]:
            nat = (
                ", ".join(x for x, on in (("local", s["nat_local"]), ("remote", s["nat_remote"])) if on)
                or "-"
            )
            main.add_row(
                s["remote"],
                escape(f"{s['local_id']} <-> {s['remote_id']}"),
                s["proposal"],
                s.get("auth_method") or "-",
                nat,
                "initiator" if s["initiator"] else "responder",
            )
        for c in host["child_sas"]:
            quick.add_row(
                escape(c["rule"]),
                escape(f"{', '.join(c['local_ts'])} <-> {', '.join(c['remote_ts'])}"),
                f"{c['transform']} {c['mode']} {c['encapsulation']}",
                f"{c['spi_in']}/{c['spi_out']}",
                f"{c['bytes_in']}/{c['bytes_out']}",
                f"{c['age_s']} s",
            )
    return paths, main, quick
