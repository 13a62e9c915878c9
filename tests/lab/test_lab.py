"""`secpath lab` on the reference deployment and under faults: real UDP
sockets on loopback addresses, no root."""

from __future__ import annotations

import asyncio
import json
import random
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from secpath.cli import _register, app
from secpath.errors import LocalError
from secpath.lab.kdc import missing_reason as kdc_missing
from secpath.lab.network import Faults, LabNetwork
from secpath.lab.run import LabOptions, LabResult, load_lab_topology, reference_topology, run_lab

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_register()

# each test gets its own ports, so a failing test's sockets cannot disturb the
# next; the start is random so two test runs on one machine do not collide
_PORTS = iter(range(20000 + random.randrange(25) * 1000, 65000, 1000))


def run(options: LabOptions | None = None, topology_path: Path | None = None) -> LabResult:
    opts = options or LabOptions()
    opts = LabOptions(
        faults=opts.faults,
        packets_per_direction=opts.packets_per_direction,
        duration=opts.duration,
        negotiate_timeout=opts.negotiate_timeout,
        settle_timeout=opts.settle_timeout,
        port_base=next(_PORTS),
        seed=opts.seed,
    )
    return asyncio.run(run_lab(load_lab_topology(topology_path), opts))


def test_reference_deployment_every_path_up_and_verified() -> None:
    result = run()
    assert result.ok, [(p.rule, p.failure) for p in result.paths if not p.ok]
    rules = {p.rule for p in result.paths}
    assert len(rules) == 20
    # the guide's catalog, as planned: routers/loggers duplexed, PG pair, UCM
    assert {
        "rtr-a--lgr-a--visible",
        "rtr-a--rtr-b--private",
        "pg1-a--pg1-b--private",
        "pg1-a--ucm-1--visible",
    } <= rules
    by_rule = {p.rule: p for p in result.paths}
    nat = by_rule["rtr-a--pg1-a--visible"]
    assert nat.nat.startswith("pg1-a behind NAT") and nat.initiator == "pg1-a"
    assert by_rule["pg1-a--ucm-1--visible"].authentication == "certificate"
    # Kerberos paths run Kerberos when the lab can start its own realm (tests/lab/test_lab_kerberos.py)
    assert by_rule["rtr-a--lgr-a--visible"].used_authentication == (
        "certificate" if kdc_missing() else "kerberos")
    for p in result.paths:
        assert p.esp_transform == "aes128gcm16" and p.mode == "transport" and p.encapsulation == "ESP-in-UDP"
        assert p.verified == p.sent == 6 and p.clear_probes_refused == 2
    assert result.totals.quick_mode["confidential_bytes_sent"] > 0
    assert result.totals.main_mode["authentication_failures"] == 0
    assert result.network["nat_translations"] > 0
    assert any("Kerberos" in n for n in result.notes)


def test_thirty_percent_loss_and_reordering() -> None:
    result = run(LabOptions(faults=Faults(loss=0.3, reorder=0.2, delay=0.05), seed=7))
    assert result.ok, [(p.rule, p.failure) for p in result.paths if not p.ok]
    assert result.network["dropped_by_fault_injector"] > 0
    assert result.network["reordered_by_fault_injector"] > 0


def test_duplicated_datagrams_are_caught_by_anti_replay() -> None:
    result = run(LabOptions(faults=Faults(duplicate=0.5), seed=3))
    assert result.ok
    assert result.network["duplicated_by_fault_injector"] > 0
    assert result.totals.quick_mode["packets_with_replay_detection"] > 0


def test_example_topology_runs_on_loopback() -> None:
    topology = load_lab_topology(EXAMPLES / "topology.toml")
    assert all(str(s.visible).startswith("127.") for s in topology.servers)
    result = run(topology_path=EXAMPLES / "topology.toml")
    assert result.ok, [(p.rule, p.failure) for p in result.paths if not p.ok]


def test_port_in_use_is_a_clear_error() -> None:
    base = next(_PORTS)
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.10.1.10", base + 500))
    try:
        with pytest.raises(LocalError, match=r"cannot bind 127\.10\.1\.10"):
            asyncio.run(run_lab(reference_topology(), LabOptions(port_base=base)))
    finally:
        blocker.close()


def test_faults_are_validated() -> None:
    with pytest.raises(LocalError, match="--loss"):
        Faults(loss=1.5)


def test_network_nat_rewrites_the_source() -> None:
    """A host behind a NAT box reaches the outside from the public address."""

    async def main() -> tuple[list[tuple[bytes, tuple[str, int], int]], str]:
        from secpath.agent import Outgoing

        net = LabNetwork(port_base=next(_PORTS))
        got: list[tuple[bytes, tuple[str, int], int]] = []
        nat = net.add_nat("remote", "127.51.0.1")
        inside = await net.attach("127.52.0.1", "remote", lambda d, s, p: None, nat)
        await net.attach("127.53.0.1", "central", lambda d, s, p: got.append((d, s, p)))
        net.send(inside, Outgoing(b"ping", ("127.53.0.1", 4500), 4500))
        await asyncio.sleep(0.05)
        net.close()
        return got, "127.51.0.1"

    got, public = asyncio.run(main())
    assert len(got) == 1
    data, source, port = got[0]
    assert data == b"ping" and port == 4500
    assert source[0] == public and source[1] != 4500  # the NAT chose another port


def test_cli_json_and_exit_code() -> None:
    result = CliRunner().invoke(app, ["lab", "--json", "--port-base", str(next(_PORTS))])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] and data["paths_verified"] == data["paths_total"] == 20
    assert data["main_mode"]["main_mode_sas"] > 0


def test_cli_human_output_and_bad_topology(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["lab", "--port-base", str(next(_PORTS))])
    assert result.exit_code == 0, result.output
    assert "every path established and carried verified traffic" in result.output
    assert "paths up 20/20" in result.output
    bad = tmp_path / "t.toml"
    bad.write_text("[deployment]\nname = 1\n")
    result = runner.invoke(app, ["lab", str(bad)])
    assert result.exit_code == 2
