"""The fault scenarios of `secpath lab --scenario`, each of which must pass."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from secpath.cli import _register, app
from secpath.lab.results import LabOptions
from secpath.lab.scenarios import SCENARIOS, run_scenario
from secpath.lab.topology import reference_topology

from .test_lab import _PORTS

_register()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario(name: str) -> None:
    result = asyncio.run(
        run_scenario(name, reference_topology(), LabOptions(port_base=next(_PORTS), seed=11))
    )
    failed = [(c.what, c.detail) for c in result.checks if not c.ok]
    assert result.ok, failed
    assert len(result.checks) >= 3


def test_scenario_cli_json_and_unknown_name() -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["lab", "--scenario", "wrong-ca", "--json", "--port-base", str(next(_PORTS))])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["scenario"] == "wrong-ca" and data["ok"]
    assert any("AUTHENTICATION_FAILED" in c["what"] for c in data["checks"])
    r = runner.invoke(app, ["lab", "--scenario", "nonsense"])
    assert r.exit_code == 2 and "unknown scenario" in r.output
