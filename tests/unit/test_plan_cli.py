"""``secpath plan``: the table and summary, ``--json``, the files of every
format, ``secpath check`` on every generated policy, and exit code 2 with
located errors on a bad topology."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from secpath.cli import _register, app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

_register()
runner = CliRunner()


def test_the_example_prints_a_table_and_a_summary_and_writes_every_format(
        tmp_path: Path) -> None:
    r = runner.invoke(app, ["plan", str(EXAMPLES / "topology.toml"), "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "example-ucce: 28 paths (profile modern)" in r.output
    table = r.output.split("warning")[0]
    assert table.count("router-pg") == 8 and table.count("pg-unified-cm") == 4
    for line in ("servers", "paths", "28 (24 visible, 4 private)", "24 kerberos, 4 certificate",
                 "0 error, 2 warning, 2 info"):
        assert line in r.output, line
    assert "export-netsh-unsupported" in r.output  # modern profile: no netsh script
    assert sorted(p.name for p in (tmp_path / "secpath").iterdir())[:2] == ["aw-1.toml",
                                                                           "aw-2.toml"]
    assert len(list((tmp_path / "powershell").glob("*.ps1"))) == 11
    assert len(list((tmp_path / "swanctl").glob("*/swanctl.conf"))) == 11
    assert sorted(p.name for p in (tmp_path / "ios").iterdir()) == ["central.cfg",
                                                                   "remote-pg-1.cfg"]
    assert not (tmp_path / "netsh").exists()
    index = json.loads((tmp_path / "index.json").read_text())
    assert len(index["paths"]) == 28


def test_json_for_scripts(tmp_path: Path) -> None:
    r = runner.invoke(app, ["plan", str(EXAMPLES / "topology-guide.toml"), "--out",
                            str(tmp_path), "--json", "--format", "secpath,netsh"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert set(data) >= {"paths", "servers", "findings"}
    assert data["paths"][0] == {
        "a": "rtr-a", "b": "lgr-a", "network": "visible", "authentication": "kerberos",
        "rule": "rtr-a--lgr-a--visible", "catalog": "router-logger",
        "guide": data["paths"][0]["guide"]}
    assert len(data["paths"]) == 20
    for name, server in data["servers"].items():
        assert set(server["files"]) == {"secpath", "netsh"}
        for path in server["files"].values():
            assert Path(path).is_file(), (name, path)
    codes = {f["code"] for f in data["findings"]}
    assert {"profile-guide", "psk", "esp-3des"} <= codes
    assert set(data["findings"][0]) == {"severity", "code", "where", "message", "reason"}


def test_without_out_nothing_is_written(tmp_path: Path) -> None:
    r = runner.invoke(app, ["plan", str(EXAMPLES / "topology-nam-cicm.toml"), "--json"])
    assert r.exit_code == 0
    data = json.loads(r.output)
    assert all(s["files"] == {} for s in data["servers"].values())
    assert len(data["paths"]) == 6


def test_every_generated_policy_passes_secpath_check(tmp_path: Path) -> None:
    r = runner.invoke(app, ["plan", str(EXAMPLES / "topology.toml"), "--out", str(tmp_path),
                            "--format", "secpath", "--isolate", "aw-1"])
    assert r.exit_code == 0, r.output
    # the credentials the certificate paths name, deployed beside the policies
    pki = tmp_path / "secpath" / "pki"
    pki.mkdir()
    for name in ("ca.pem", *(f"{s}.pem" for s in ("pg1-a", "pg1-b", "pg2-a", "pg2-b", "ucm-1"))):
        (pki / name).write_text("-----BEGIN CERTIFICATE-----\n")
    for s in ("pg1-a", "pg1-b", "pg2-a", "pg2-b", "ucm-1"):
        key = pki / f"{s}.key"
        key.write_text("-----BEGIN PRIVATE KEY-----\n")
        key.chmod(0o600)
    files = sorted(str(p) for p in (tmp_path / "secpath").glob("*.toml"))
    assert len(files) == 11
    r = runner.invoke(app, ["check", *files, "--json"])
    assert r.exit_code == 0, r.output
    results = json.loads(r.output)["files"]
    assert all(f["valid"] and f["exit_code"] == 0 for f in results)


def test_a_bad_topology_exits_2_with_located_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    text = (EXAMPLES / "topology.toml").read_text().replace('side = "B"\npair = "pg2"',
                                                            'side = "C"\npair = "pg2"')
    bad.write_text(text.replace('profile = "modern"', 'profile = "fast"'))
    r = runner.invoke(app, ["plan", str(bad)])
    assert r.exit_code == 2
    assert "invalid topology" in r.output and "2 problem(s)" in r.output
    assert "deployment.profile" in r.output and "'fast'" in r.output
    assert "modern | guide" in r.output
    assert "server[9].side" in r.output and "A | B" in r.output and str(bad) in r.output
    r = runner.invoke(app, ["plan", str(bad), "--json"])
    assert r.exit_code == 2
    problems = json.loads(r.output)["problems"]
    assert {p["key"] for p in problems} == {"deployment.profile", "server[9].side"}
    assert set(problems[0]) == {"file", "key", "value", "expected"}


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    topology = str(EXAMPLES / "topology.toml")
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    r = runner.invoke(app, ["plan", topology, "--out", str(not_a_dir)])
    assert r.exit_code == 2 and "a writable directory" in r.output
    r = runner.invoke(app, ["plan", topology, "--format", "secpath,pdf"])
    assert r.exit_code == 2 and "--format" in r.output
    r = runner.invoke(app, ["plan", topology, "--isolate", "ghost"])
    assert r.exit_code == 2 and "--isolate" in r.output and "ghost" in r.output
    r = runner.invoke(app, ["plan", str(EXAMPLES / "missing.toml")])
    assert r.exit_code == 2 and "(file)" in r.output


def test_error_findings_exit_1(tmp_path: Path) -> None:
    topology = tmp_path / "t.toml"
    topology.write_text((EXAMPLES / "topology.toml").read_text().replace(
        'domain = "voice.example.com"', 'domain = "voice.example.com"\nauthentication = "kerberos"'))
    r = runner.invoke(app, ["plan", str(topology)])
    assert r.exit_code == 1
    assert "kerberos-outside-domain" in r.output
