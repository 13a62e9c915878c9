"""Every ``swanctl.conf`` that ``secpath plan`` writes loads into a real
strongSwan: a charon in a network namespace of the test's own, one
``swanctl --load-all`` per server, with the certificates (a test CA made
here) and preshared-key include files the configuration names, and the
server's addresses on the namespace's loopback so that charon installs every
trap (transport mode) and shunt (exemption) policy.  Any load error, missing
connection or missing policy fails the test."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from secpath.plan.planner import plan_deployment
from secpath.plan.synthetic import synthetic_topology
from secpath.plan.topology_loader import load_topology, parse_topology
from secpath.plan.writer import PlanOutput, build_output, write_plan
from secpath.policy.model import Behavior, Policy
from tests.netns import namespaces, needs_root, run_in
from tests.strongswan import Charon, charon, needs_strongswan

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = [pytest.mark.interop, needs_root, needs_strongswan]


class _Pki:
    """A CA and one RSA key (shared by every server: this test loads, it does not negotiate)."""

    def __init__(self) -> None:
        self.ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "secpath plan test CA")])
        now = datetime.datetime.now(datetime.UTC)
        self.ca_name = name
        self.ca = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(self.ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )

    def issue(self, fqdn: str) -> x509.Certificate:
        now = datetime.datetime.now(datetime.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, fqdn)]))
            .issuer_name(self.ca_name).public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(fqdn)]), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )


@pytest.fixture(scope="module")
def pki() -> _Pki:
    return _Pki()


@pytest.fixture(scope="module")
def strongswan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Charon]:
    with namespaces("plan") as ns, charon(ns["plan"], tmp_path_factory.mktemp("charon")) as c:
        yield c


def _credentials(conf_dir: Path, conf: str, fqdn: str, pki: _Pki) -> None:
    """The files ``conf`` names, where swanctl looks for them (beside the file)."""
    for sub in ("x509", "x509ca", "private"):
        (conf_dir / sub).mkdir(exist_ok=True)
    (conf_dir / "x509ca" / "ca.pem").write_bytes(pki.ca.public_bytes(serialization.Encoding.PEM))
    for cert in set(re.findall(r"certs = (\S+)", conf)):
        (conf_dir / "x509" / cert).write_bytes(
            pki.issue(fqdn).public_bytes(serialization.Encoding.PEM))
    (conf_dir / "private" / "host.key").write_bytes(pki.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    for include in re.findall(r"include (\S+)", conf):
        target = conf_dir / include
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text('secret = "plan-test-psk-not-secret"\n')
        target.chmod(0o600)


def _expected_policies(policy: Policy) -> list[str]:
    """``swanctl --list-pols`` lines the policy's rules install: a trap per
    negotiated child that starts on traffic, a pass/drop shunt per exemption."""
    out = []
    for rule in policy.rules:
        filters = rule.filter_list.filters
        children = [rule.name] if len(filters) == 1 else [f"{rule.name}-{i}"
                                                          for i in range(len(filters))]
        behavior = rule.filter_action.behavior
        if behavior is Behavior.NEGOTIATE:
            if rule.start == "trap" and rule.peer is not None:
                out += [f"{rule.name}/{c}, {rule.mode.upper()}" for c in children]
        else:
            kind = "PASS" if behavior is Behavior.PERMIT else "DROP"
            out += [f"{rule.name}/{c}, {kind}" for c in children]
    return out


def _load_all(c: Charon, out_dir: Path, out: PlanOutput, servers: list[str], pki: _Pki,
              domain: str) -> int:
    """Load each server's file with its addresses on the namespace's loopback
    (so its trap policies can be installed), then check connections and policies."""
    loaded = 0
    for server in servers:
        path = out_dir / out.servers[server]["swanctl"]
        conf = path.read_text()
        policy = out.policies[server]
        _credentials(path.parent, conf, f"{server}.{domain}", pki)
        addresses = [f"{a}/32" for a in policy.local.addresses]
        for a in addresses:
            run_in(c.ns, ["ip", "addr", "add", a, "dev", "lo"])
        try:
            output = c.swanctl("--load-all", "--noprompt", "--clear", "--file", str(path))
            # connection names: the 2-space-indented sections of ``connections``
            names = re.findall(r"^  (\S+) \{$", conf.split("\nsecrets {")[0], re.MULTILINE)
            assert names == [r.name for r in policy.rules], conf
            assert f"successfully loaded {len(names)} connections" in output, output
            assert "failed" not in output.replace("failed: No such file or directory", ""), output
            listed = c.swanctl("--list-conns")
            for name in names:
                assert f"{name}: IKEv" in listed, (server, name, listed[:2000])
            policies = c.swanctl("--list-pols")
            for line in _expected_policies(policy):
                assert line in policies, (server, line, policies[:3000])
        finally:
            for a in addresses:
                run_in(c.ns, ["ip", "addr", "del", a, "dev", "lo"], check=False)
        loaded += len(names)
    return loaded


@pytest.mark.parametrize("topology", ["topology.toml", "topology-guide.toml",
                                      "topology-nam-cicm.toml"])
def test_every_generated_swanctl_conf_loads(topology: str, strongswan: Charon, pki: _Pki,
                                            tmp_path: Path) -> None:
    topo = load_topology(EXAMPLES / topology)
    plan = plan_deployment(topo)
    isolate = ["aw-2"] if topology == "topology.toml" else []
    out = build_output(plan, ["swanctl"], isolate)
    write_plan(out, tmp_path)
    servers = [name for name, files in out.servers.items() if "swanctl" in files]
    assert servers == [s.name for s in topo.servers]
    loaded = _load_all(strongswan, tmp_path, out, servers, pki, topo.deployment.domain)
    rules = sum(len(p.rules) for p in out.policies.values())
    assert loaded == rules


def test_a_synthetic_topology_loads(strongswan: Charon, pki: _Pki, tmp_path: Path) -> None:
    topo = parse_topology(synthetic_topology(40))
    out = build_output(plan_deployment(topo), ["swanctl"])
    write_plan(out, tmp_path)
    some = ["rtr-a", "pg4-b", "ucm-0"]
    assert _load_all(strongswan, tmp_path, out, some, pki, "icm.example.com") > 40


def test_the_check_catches_a_conf_strongswan_refuses(strongswan: Charon, tmp_path: Path) -> None:
    """The same load, on a connection whose certificate file is missing: swanctl
    reports the failure the assertions above look for."""
    conf = tmp_path / "swanctl.conf"
    conf.write_text("connections {\n  broken {\n    local {\n      auth = pubkey\n"
                    "      certs = missing.pem\n    }\n    remote {\n      auth = pubkey\n"
                    "    }\n    children {\n      c {\n        mode = transport\n      }\n"
                    "    }\n  }\n}\n")
    output = strongswan.swanctl("--load-all", "--noprompt", "--clear", "--file", str(conf),
                                check=False)
    assert "successfully loaded 1 connections" not in output
    assert "failed" in output
