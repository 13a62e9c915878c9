"""The swanctl.conf export, read back as the nested sections strongSwan
parses: one connection per rule, the two ends of every path mirrored, the
profile's proposals, credentials by reference (no secret in the file).
(tests/interop/test_plan_swanctl.py loads every file into a real charon.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from secpath.plan.exporters.swanctl import policy_to_swanctl
from secpath.plan.isolation import isolation_policy
from secpath.plan.planner import plan_deployment
from secpath.plan.topology_loader import load_topology

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
Section = dict[str, Any]


def parse(text: str) -> Section:
    """swanctl.conf's grammar: ``name {`` opens a section, ``}`` closes it,
    ``key = value`` one per line, ``#`` comments, ``include path``."""
    root: Section = {}
    stack = [root]
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("{"):
            name = line[:-1].strip()
            assert name and " " not in name, raw
            child: Section = {}
            assert name not in stack[-1], raw
            stack[-1][name] = child
            stack.append(child)
        elif line == "}":
            stack.pop()
            assert stack, raw
        elif line.startswith("include "):
            stack[-1].setdefault("include", []).append(line.split(" ", 1)[1])
        else:
            key, sep, value = line.partition(" = ")
            assert sep and key and key not in stack[-1], raw
            stack[-1][key] = value
    assert stack == [root]
    return root


def test_both_ends_of_every_path_mirror_each_other() -> None:
    plan = plan_deployment(load_topology(EXAMPLES / "topology.toml"))
    confs = {name: parse(policy_to_swanctl(p)) for name, p in plan.policies.items()}
    for path in plan.paths:
        a = confs[path.a.name]["connections"][path.rule]
        b = confs[path.b.name]["connections"][path.rule]
        ca, cb = a["children"][path.rule], b["children"][path.rule]
        assert ca["local_ts"] == f"{path.a_address}/32"
        assert cb["local_ts"] == f"{path.b_address}/32"
        assert ca["remote_ts"] == f"{path.b_seen_by_a}/32" and a["remote_addrs"] == str(
            path.b_seen_by_a)
        assert cb["remote_ts"] == f"{path.a_seen_by_b}/32" and b["remote_addrs"] == str(
            path.a_seen_by_b)
        assert a["proposals"] == b["proposals"] == (
            "aes128-sha256-ecp256, aes128-sha256-modp2048")
        assert ca["esp_proposals"] == cb["esp_proposals"] == "aes128gcm16, aes256gcm16"
        assert ca["mode"] == cb["mode"] == "transport"
        assert ca["start_action"] == cb["start_action"] == "trap"
        assert a["local"]["id"] == b["remote"]["id"] == f"{path.a.name}.{plan.topology.domain_of(path.a)}"
        assert a["local"]["auth"] == b["remote"]["auth"] == "pubkey"
        if path.authentication.value == "certificate":
            assert a["remote"]["cacerts"] == "ca.pem" and a["local"]["certs"] == f"{path.a.name}.pem"


def test_psk_lives_in_an_included_file() -> None:
    plan = plan_deployment(load_topology(EXAMPLES / "topology-guide.toml"))
    text = policy_to_swanctl(plan.policies["ucm-1"])
    conf = parse(text)
    rule = "pg1-a--ucm-1--visible"
    assert conf["connections"][rule]["local"]["auth"] == "psk"
    secret = conf["secrets"][f"ike-{rule}"]
    assert secret["id-1"] == "ucm-1.icm.example.com" and secret["id-2"] == "pg1-a.icm.example.com"
    assert secret["include"] == [f"secrets/{rule}.psk.conf"]
    assert "secret =" not in text.replace('# secret = "..."', "")
    assert conf["connections"][rule]["proposals"] == "3des-sha1-modp1024"


def test_exemptions_are_shunts_and_secure_all_responds() -> None:
    plan = plan_deployment(load_topology(EXAMPLES / "topology.toml"))
    conf = parse(policy_to_swanctl(isolation_policy(plan, "aw-1")))["connections"]
    dns = conf["exempt-dns"]["children"]
    assert {c["mode"] for c in dns.values()} == {"pass"}
    assert {c["remote_ts"] for c in dns.values()} == {"10.10.1.2/32[17/53]", "10.10.1.2/32[6/53]",
                                                     "10.10.1.3/32[17/53]", "10.10.1.3/32[6/53]"}
    dhcp = conf["exempt-dhcp"]["children"]["exempt-dhcp"]
    assert (dhcp["local_ts"], dhcp["remote_ts"]) == ("dynamic[17/68]", "10.10.1.4/32[17/67]")
    secure_all = conf["isolation-secure-all"]
    assert secure_all["remote_addrs"] == "%any"
    child = secure_all["children"]["isolation-secure-all"]
    assert (child["local_ts"], child["remote_ts"], child["start_action"]) == (
        "dynamic", "0.0.0.0/0", "none")
