"""Shared output helpers for the CLI: rich consoles and JSON printing."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

from secpath.policy.audit import Severity

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def print_json(data: Any) -> None:
    """JSON for scripts: plain stdout, no colour, stable key order."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
