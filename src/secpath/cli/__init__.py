"""The ``secpath`` command line.  Each command lives in its own module and
registers itself on :data:`app`."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="secpath",
    help="IPsec for Python: plan per-server policies, check them, negotiate and protect traffic.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Imported for their side effect of adding commands to ``app``.
    import secpath.cli.check
    import secpath.cli.daemon
    import secpath.cli.lab
    import secpath.cli.monitor
    import secpath.cli.plan  # noqa: F401


def main() -> None:
    _register()
    app()
