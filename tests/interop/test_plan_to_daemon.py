"""From plan to protected traffic: `secpath plan` writes the policies of a
two-server deployment, the test puts the certificates where they name them,
and two secpath daemons running exactly those files secure the path."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from secpath.cli import _register, app
from secpath.lab.pki import LabCa
from tests.daemon import secpath_daemon
from tests.netns import namespaces, needs_root, run_in, veth

TOPOLOGY = """[deployment]
name = "e2e"
domain = "icm.test"
authentication = "certificate"

[[site]]
name = "central"

[[server]]
name = "rtr-a"
role = "router"
side = "A"
site = "central"
visible = "10.10.1.10"

[[server]]
name = "lgr-a"
role = "logger"
side = "A"
site = "central"
visible = "10.10.1.20"
"""

_register()


@needs_root
def test_planned_policies_run_and_secure_the_path(tmp_path: Path) -> None:
    (tmp_path / "topology.toml").write_text(TOPOLOGY)
    out = tmp_path / "plan"
    result = CliRunner().invoke(
        app, ["plan", str(tmp_path / "topology.toml"), "--out", str(out), "--format", "secpath", "--json"]
    )
    assert result.exit_code == 0, result.output
    (path,) = json.loads(result.stdout)["paths"]
    rule = path["rule"]
    pki = out / "secpath" / "pki"
    pki.mkdir()
    ca = LabCa("e2e CA", datetime.datetime.now(datetime.UTC))
    (pki / "ca.pem").write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))
    for name, address in (("rtr-a", "10.10.1.10"), ("lgr-a", "10.10.1.20")):
        cert = ca.issue(f"{name}.icm.test", [address])
        (pki / f"{name}.pem").write_bytes(cert.certificate.public_bytes(serialization.Encoding.PEM))
        key = pki / f"{name}.key"
        key.write_bytes(
            cert.private_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        key.chmod(0o600)
    policies = {n: out / "secpath" / f"{n}.toml" for n in ("rtr-a", "lgr-a")}
    check = CliRunner().invoke(app, ["check", *map(str, policies.values())])
    assert check.exit_code == 0, check.output
    with namespaces("rtr", "lgr") as ns:
        veth(ns["rtr"], "10.10.1.10/24", ns["lgr"], "10.10.1.20/24")
        with (
            secpath_daemon(ns["rtr"], policies["rtr-a"], tmp_path / "d1") as rtr,
            secpath_daemon(ns["lgr"], policies["lgr-a"], tmp_path / "d2"),
        ):
            ping = run_in(ns["rtr"], ["ping", "-c", "3", "-i", "0.2", "-W", "3", "10.10.1.20"], check=False)
            assert ping.returncode == 0, ping.stdout + rtr.log.read_text()
            host = rtr.status()["hosts"][0]
            (child,) = host["child_sas"]
            assert (
                child["rule"] == rule and child["transform"] == "aes128gcm16" and child["mode"] == "transport"
            )
            (ike,) = host["ike_sas"]
            assert ike["local_id"] == "rtr-a.icm.test" and ike["remote_id"] == "lgr-a.icm.test"
