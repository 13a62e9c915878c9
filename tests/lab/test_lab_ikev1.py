"""`secpath lab` with a Windows Server 2008 R2 PG behind the NAT: the planner
gives its paths ``ike_version = 1``, both ends' agents run them on the IKEv1
engine (main mode + quick mode, NAT-T through the lab's NAT), and the
traffic is verified end to end; the other paths stay on IKEv2."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from secpath.ike.events import Event, IkeSaEstablished
from secpath.ike.v1.engine import IkeV1Engine
from secpath.lab.run import LabOptions, load_lab_topology, run_lab

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_lab_runs_ikev1_paths_to_a_windows_2008r2_server(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (EXAMPLES / "topology.toml").read_text(encoding="utf-8")
    marker = 'name = "pg2-a"\n'
    assert marker in text
    text = text.replace(marker, marker + 'os = "windows-2008r2"\n')
    path = tmp_path / "topology.toml"
    path.write_text(text, encoding="utf-8")
    established: list[IkeSaEstablished] = []
    original = IkeV1Engine.emit

    def counting(self: IkeV1Engine, event: Event) -> None:
        if isinstance(event, IkeSaEstablished):
            established.append(event)
        original(self, event)

    monkeypatch.setattr(IkeV1Engine, "emit", counting)
    opts = LabOptions(port_base=20000 + random.randrange(40) * 1000 + 500)
    result = asyncio.run(run_lab(load_lab_topology(path), opts))
    old = [p for p in result.paths if "pg2-a" in (p.a, p.b)]
    assert old
    assert result.ok, [(p.rule, p.failure) for p in result.paths if not p.ok]
    # ISAKMP SAs of the IKEv1 engine carried those paths, at both ends of each
    assert len(established) >= 2 * len(old), (len(established), len(old))
    assert any(e.nat_local or e.nat_remote for e in established)
    for p in old:
        assert p.ok and p.encapsulation == "ESP-in-UDP"
        assert p.authentication == "certificate"  # the planner's choice: no IKEv1 Kerberos
    assert any(p.nat for p in old)  # pg2-a sits behind the remote site's NAT
