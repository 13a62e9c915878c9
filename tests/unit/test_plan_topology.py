"""Topology loading and validation: every problem names the file, the key
path, the bad value and what is accepted; all are reported at once."""

from __future__ import annotations

import copy
import ipaddress
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secpath.errors import LocalError
from secpath.plan.topology import AuthKind, Role
from secpath.plan.topology_loader import TopologyError, load_topology, parse_topology

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE = EXAMPLES / "topology.toml"
_DOC = tomllib.loads(EXAMPLE.read_text())


def doc() -> dict[str, Any]:
    return copy.deepcopy(_DOC)


def server(d: dict[str, Any], name: str) -> dict[str, Any]:
    for s in d["server"]:
        if s["name"] == name:
            return s  # type: ignore[no-any-return]
    raise KeyError(name)


def index(d: dict[str, Any], name: str) -> int:
    return [s["name"] for s in d["server"]].index(name)


def test_the_example_loads() -> None:
    t = load_topology(EXAMPLE)
    assert t.deployment.name == "example-ucce"
    assert t.deployment.profile == "modern"
    assert t.deployment.authentication is AuthKind.KERBEROS
    assert len(t.servers) == 11
    assert {s.role for s in t.servers} == {Role.ROUTER, Role.LOGGER, Role.AW_HDS, Role.PG,
                                           Role.UNIFIED_CM}
    ucm = t.server("ucm-1")
    assert ucm.domain == "voice.example.com" and not t.in_domain(ucm)
    assert t.server("pg1-a").unified_cm == ("ucm-1",)
    remote = t.site("remote-pg-1")
    assert remote.behind_nat and remote.public_address == ipaddress.ip_address("198.51.100.7")
    assert t.isolation.domain_controllers == (ipaddress.ip_address("10.10.1.2"),
                                              ipaddress.ip_address("10.10.1.3"))


@pytest.mark.parametrize("name", ["topology-guide.toml", "topology-nam-cicm.toml"])
def test_the_other_examples_load(name: str) -> None:
    assert load_topology(EXAMPLES / name).servers


def test_defaults() -> None:
    t = parse_topology({"deployment": {"name": "d", "domain": "example.com"},
                        "site": [{"name": "s"}],
                        "server": [{"name": "r", "role": "router", "side": "A", "site": "s",
                                    "visible": "10.0.0.1"}]})
    assert t.deployment.profile == "modern"
    assert t.deployment.authentication is AuthKind.KERBEROS
    assert t.fqdn(t.server("r")) == "r.example.com"
    with pytest.raises(LocalError):
        t.server("nope")


Mutation = Callable[[dict[str, Any]], None]


def _set(name: str, key: str, value: object) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        server(d, name)[key] = value
    return mutate


def _drop(name: str, key: str) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        del server(d, name)[key]
    return mutate


def _remove_server(name: str) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        d["server"].pop(index(d, name))
    return mutate


def _duplicate_name(d: dict[str, Any]) -> None:
    server(d, "aw-2")["name"] = "aw-1"


def _no_deployment(d: dict[str, Any]) -> None:
    del d["deployment"]


def _bad_profile(d: dict[str, Any]) -> None:
    d["deployment"]["profile"] = "fast"


def _bad_auth(d: dict[str, Any]) -> None:
    d["deployment"]["authentication"] = "ntlm"


def _nat_without_public(d: dict[str, Any]) -> None:
    del d["site"][1]["public_address"]


def _duplicate_site(d: dict[str, Any]) -> None:
    d["site"].append({"name": "central"})


def _unknown_key(d: dict[str, Any]) -> None:
    server(d, "rtr-a")["colour"] = "blue"


def _unknown_section(d: dict[str, Any]) -> None:
    d["servers"] = []


def _unknown_isolated(d: dict[str, Any]) -> None:
    d["isolation"]["servers"] = ["ghost"]


def _second_side_a(d: dict[str, Any]) -> None:
    server(d, "rtr-b")["side"] = "A"


def _bad_subnet(d: dict[str, Any]) -> None:
    d["site"][0]["subnets"] = ["10.10.1.1/24"]


def _conflicting_auth(d: dict[str, Any]) -> None:
    server(d, "rtr-a")["authentication"] = "psk"
    server(d, "lgr-a")["authentication"] = "certificate"


# (mutation, key path, a phrase of what is accepted)
CASES: list[tuple[str, Mutation, str, str]] = [
    ("duplicate name", _duplicate_name, "server[5].name", "not used by another server"),
    ("duplicate visible address", _set("aw-2", "visible", "10.10.1.30"), "server[5].visible",
     "it is server[4] aw-1's"),
    ("duplicate private address", _set("lgr-a", "private", "10.20.1.10"), "server[2].private",
     "not already used"),
    ("side B without side A", _remove_server("pg2-a"), "server[8].side",
     "a side B needs its side A"),
    ("two side A routers", _second_side_a, "server[1].side", "one router side A per pair"),
    ("PG without pair", _drop("pg1-a", "pair"), "server[6].pair", "a PG needs one"),
    ("unknown site", _set("aw-1", "site", "mars"), "server[4].site", "central, remote-pg-1"),
    ("unknown unified cm", _set("pg1-a", "unified_cm", "ucm-9"), "server[6].unified_cm",
     "ucm-1"),
    ("unified cm that is not one", _set("pg1-a", "unified_cm", ["aw-1"]),
     "server[6].unified_cm[0]", "unified-cm server"),
    ("private missing for private path", _drop("lgr-b", "private"), "server[3].private",
     "the private path with lgr-a needs one"),
    ("private on a tiered role", _set("aw-1", "private", "10.20.1.30"), "server[4].private",
     "no private address for role aw-hds"),
    ("side on a tiered role", _set("aw-1", "side", "A"), "server[4].side", "it has a tier"),
    ("tier on a sided role", _set("rtr-a", "tier", "primary"), "server[0].tier",
     "it has a side"),
    ("missing side", _drop("rtr-a", "side"), "server[0].side", "A | B"),
    ("bad side", _set("rtr-a", "side", "C"), "server[0].side", "A | B"),
    ("missing tier", _drop("aw-1", "tier"), "server[4].tier", "primary | secondary"),
    ("bad role", _set("rtr-a", "role", "switch"), "server[0].role", "nam-router | cicm-router"),
    ("bad address", _set("rtr-a", "visible", "10.10.1.300"), "server[0].visible",
     "an IPv4 or IPv6 address"),
    ("missing address", _drop("rtr-a", "visible"), "server[0].visible", "IPv4 or IPv6"),
    ("pair on a router", _set("rtr-a", "pair", "x"), "server[0].pair", "only pg, nam-router"),
    ("unified cm on a router", _set("rtr-a", "unified_cm", "ucm-1"), "server[0].unified_cm",
     "only a pg has one"),
    ("bad server name", _set("rtr-a", "name", "rtr a!"), "server[0].name", "letters, digits"),
    ("bad domain", _set("ucm-1", "domain", "not a domain"), "server[10].domain",
     "a DNS domain name"),
    ("missing deployment", _no_deployment, "deployment", "[deployment] table"),
    ("bad profile", _bad_profile, "deployment.profile", "modern | guide"),
    ("bad authentication", _bad_auth, "deployment.authentication", "kerberos | certificate"),
    ("NAT site without public address", _nat_without_public, "site[1].public_address",
     "behind_nat = true needs it"),
    ("duplicate site", _duplicate_site, "site[2].name", "not used by another site"),
    ("bad subnet", _bad_subnet, "site[0].subnets[0]", "CIDR"),
    ("unknown key", _unknown_key, "server[0].colour", "one of the keys"),
    ("unknown section", _unknown_section, "servers", "one of the keys deployment"),
    ("unknown isolated server", _unknown_isolated, "isolation.servers", "a [[server]]"),
    ("conflicting explicit authentication", _conflicting_auth, "server[2].authentication",
     "both ends must agree"),
]


@pytest.mark.parametrize(("mutation", "key", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_every_validation_error(mutation: Mutation, key: str, expected: str) -> None:
    d = doc()
    mutation(d)
    with pytest.raises(TopologyError) as e:
        parse_topology(d, Path("topo.toml"))
    issues = e.value.issues
    assert [i.key for i in issues] == [key], issues
    assert expected in issues[0].expected, issues[0]
    assert issues[0].file == "topo.toml"
    assert key in str(e.value) and "topo.toml" in str(e.value)


def test_the_bad_value_is_shown() -> None:
    d = doc()
    server(d, "rtr-a")["visible"] = "10.10.1.300"
    with pytest.raises(TopologyError) as e:
        parse_topology(d)
    assert e.value.issues[0].value == "'10.10.1.300'"
    assert e.value.issues[0].file == "<topology>"


def test_all_problems_at_once() -> None:
    d = doc()
    _bad_profile(d)
    server(d, "rtr-a")["side"] = "C"
    server(d, "aw-1")["visible"] = "nope"
    server(d, "pg1-a")["colour"] = 1
    with pytest.raises(TopologyError) as e:
        parse_topology(d)
    keys = {i.key for i in e.value.issues}
    assert keys == {"deployment.profile", "server[0].side", "server[4].visible",
                    "server[6].colour"}


def test_a_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(TopologyError) as e:
        load_topology(tmp_path / "none.toml")
    assert e.value.issues[0].key == "(file)"
    bad = tmp_path / "bad.toml"
    bad.write_text("[deployment\nname = 1")
    with pytest.raises(TopologyError) as e:
        load_topology(bad)
    assert e.value.issues[0].key == "(syntax)" and e.value.issues[0].file == str(bad)


def test_a_simplex_pair_needs_no_private_address() -> None:
    d = doc()
    d["server"].pop(index(d, "lgr-b"))
    del server(d, "lgr-a")["private"]
    t = parse_topology(d)
    assert t.server("lgr-a").private is None


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 300), st.text(max_size=12),
                    st.sampled_from(["A", "B", "pg", "router", "10.10.1.10", "central",
                                     "ucm-1", "primary", "10.0.0.0/8"]),
                    st.lists(st.text(max_size=6), max_size=3), st.dictionaries(
                        st.text(max_size=5), st.integers(), max_size=2))


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_edit_gives_a_topology_or_a_topology_error(data: st.DataObject) -> None:
    """Whatever a key holds, the loader returns a whole topology or raises
    TopologyError with located issues — never another exception."""
    d = doc()
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.sampled_from(["deployment", "site", "server", "isolation"]))
        table = d[where] if where in ("deployment", "isolation") else data.draw(
            st.sampled_from(d[where]))
        key = data.draw(st.sampled_from([*table.keys(), "extra"]))
        table[key] = data.draw(_VALUES)
    try:
        topology = parse_topology(d)
    except TopologyError as e:
        assert e.issues and all(i.key and i.expected for i in e.issues)
    else:
        assert len(topology.servers) == len(d["server"])
