"""``secpath check``: output, exit codes and JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from secpath.cli import _register, app

from .test_policy_loader import EXAMPLES

_register()
runner = CliRunner()


def test_clean_policy_exits_0() -> None:
    r = runner.invoke(app, ["check", str(EXAMPLES / "router-a.toml")])
    assert r.exit_code == 0, r.output
    assert "0 error(s), 0 warning(s)" in r.output


def test_warnings_exit_1_only_with_strict() -> None:
    path = str(EXAMPLES / "guide-profile.toml")
    assert runner.invoke(app, ["check", path]).exit_code == 0
    r = runner.invoke(app, ["check", "--strict", path])
    assert r.exit_code == 1
    assert "Diffie-Hellman group 2" in r.output and "RFC 8221" in r.output


def test_invalid_file_exits_2_with_located_problems() -> None:
    r = runner.invoke(app, ["check", str(EXAMPLES / "bad" / "broken-references.toml")])
    assert r.exit_code == 2
    assert "rule[0].filter_list" in r.output and "no [[filter_list]] has this name" in r.output


def test_audit_error_exits_2(tmp_path: Path) -> None:
    for name in ("psk-readable.toml", "world-readable.psk"):
        shutil.copy(EXAMPLES / "bad" / name, tmp_path / name)
    (tmp_path / "world-readable.psk").chmod(0o644)
    r = runner.invoke(app, ["check", str(tmp_path / "psk-readable.toml")])
    assert r.exit_code == 2
    assert "accessible by group or others" in r.output
    (tmp_path / "world-readable.psk").chmod(0o600)
    assert runner.invoke(app, ["check", str(tmp_path / "psk-readable.toml")]).exit_code == 0


def test_json_output_for_several_files() -> None:
    r = runner.invoke(
        app,
        [
            "check",
            "--json",
            str(EXAMPLES / "router-a.toml"),
            str(EXAMPLES / "bad" / "broken-references.toml"),
        ],
    )
    assert r.exit_code == 2
    data = json.loads(r.stdout)
    assert data["exit_code"] == 2
    good, bad = data["files"]
    assert good["valid"] and good["findings"] == [] and good["rules"] == 3
    assert not bad["valid"] and {"key", "message", "value", "expected"} <= set(bad["problems"][0])


def test_help_teaches() -> None:
    r = runner.invoke(app, ["check", "--help"])
    assert r.exit_code == 0
    assert "Exit codes" in r.output and "--strict" in r.output


def test_topology_files_are_checked_as_topologies(tmp_path: Path) -> None:
    r = runner.invoke(
        app, ["check", "--json", str(EXAMPLES / "topology.toml"), str(EXAMPLES / "router-a.toml")]
    )
    assert r.exit_code == 0, r.output
    topo, policy = json.loads(r.stdout)["files"]
    assert topo["kind"] == "topology" and topo["paths"] > 10 and topo["valid"]
    assert policy["kind"] == "policy"
    bad = tmp_path / "t.toml"
    bad.write_text('[deployment]\nname = "x"\ndomain = "d.example"\n[[server]]\nname = "a"\nrole = "bogus"\n')
    r = runner.invoke(app, ["check", str(bad)])
    assert r.exit_code == 2 and "invalid" in r.output
