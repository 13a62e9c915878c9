"""The path catalog: the exact list of paths the guide names, for several
topologies, and counts that follow the guide's rules at scale."""

from __future__ import annotations

from pathlib import Path

import pytest

from secpath.plan.catalog import CATALOG, Pairing, catalog_paths
from secpath.plan.synthetic import synthetic_topology
from secpath.plan.topology import Network, Role
from secpath.plan.topology_loader import load_topology, parse_topology

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _paths(name: str) -> list[tuple[str, str, str]]:
    return [(p.a.name, p.b.name, p.network.value)
            for p in catalog_paths(load_topology(EXAMPLES / name))]


def test_the_example_topology_has_exactly_the_guides_paths() -> None:
    v, p = "visible", "private"
    expected = [
        # Router A <-> Logger A, Router B <-> Logger B (visible path)
        ("rtr-a", "lgr-a", v), ("rtr-b", "lgr-b", v),
        # Router A <-> Router B, Logger A <-> Logger B (private path)
        ("rtr-a", "rtr-b", p), ("lgr-a", "lgr-b", p),
        # each Router side <-> each PG side, for every PG pair
        ("rtr-a", "pg1-a", v), ("rtr-a", "pg1-b", v), ("rtr-a", "pg2-a", v),
        ("rtr-a", "pg2-b", v), ("rtr-b", "pg1-a", v), ("rtr-b", "pg1-b", v),
        ("rtr-b", "pg2-a", v), ("rtr-b", "pg2-b", v),
        # each Router side <-> each Administrator & Data Server with HDS
        ("rtr-a", "aw-1", v), ("rtr-a", "aw-2", v), ("rtr-b", "aw-1", v), ("rtr-b", "aw-2", v),
        # each Logger side <-> each Administrator & Data Server with HDS
        ("lgr-a", "aw-1", v), ("lgr-a", "aw-2", v), ("lgr-b", "aw-1", v), ("lgr-b", "aw-2", v),
        # PG side A <-> PG side B, visible and private path
        ("pg1-a", "pg1-b", v), ("pg2-a", "pg2-b", v), ("pg1-a", "pg1-b", p), ("pg2-a", "pg2-b", p),
        # PG side A/B <-> Unified CM
        ("pg1-a", "ucm-1", v), ("pg1-b", "ucm-1", v), ("pg2-a", "ucm-1", v), ("pg2-b", "ucm-1", v),
    ]
    assert _paths("topology.toml") == expected


def test_the_guide_example_with_an_administration_server() -> None:
    v, p = "visible", "private"
    assert _paths("topology-guide.toml") == [
        ("rtr-a", "lgr-a", v), ("rtr-b", "lgr-b", v), ("rtr-a", "rtr-b", p), ("lgr-a", "lgr-b", p),
        ("rtr-a", "pg1-a", v), ("rtr-a", "pg1-b", v), ("rtr-b", "pg1-a", v), ("rtr-b", "pg1-b", v),
        ("rtr-a", "aw-1", v), ("rtr-b", "aw-1", v),
        # Router and Administration Server, Real-time and Historical Data Server, DDS
        ("rtr-a", "adm-2", v), ("rtr-b", "adm-2", v),
        ("lgr-a", "aw-1", v), ("lgr-b", "aw-1", v),
        ("lgr-a", "adm-2", v), ("lgr-b", "adm-2", v),
        ("pg1-a", "pg1-b", v), ("pg1-a", "pg1-b", p),
        ("pg1-a", "ucm-1", v), ("pg1-b", "ucm-1", v),
    ]


def test_each_nam_router_with_each_cicm_router() -> None:
    assert _paths("topology-nam-cicm.toml") == [
        (nam, cicm, "visible")
        for nam in ("nam-a", "nam-b") for cicm in ("cicm1-a", "cicm1-b", "cicm2-a")
    ]


def test_a_simplex_deployment_has_no_side_to_side_paths() -> None:
    t = parse_topology({
        "deployment": {"name": "simplex", "domain": "example.com"},
        "site": [{"name": "s"}],
        "server": [
            {"name": "r", "role": "router", "side": "A", "site": "s", "visible": "10.0.0.1"},
            {"name": "l", "role": "logger", "side": "A", "site": "s", "visible": "10.0.0.2"},
            {"name": "p", "role": "pg", "side": "A", "pair": "p", "site": "s",
             "visible": "10.0.0.3"},
            {"name": "u", "role": "unified-cm", "site": "s", "visible": "10.0.0.4"},
        ],
    })
    assert [(p.a.name, p.b.name, p.network.value) for p in catalog_paths(t)] == [
        ("r", "l", "visible"), ("r", "p", "visible")]  # p names no Unified CM


@pytest.mark.parametrize("servers", [10, 57, 200, 1000])
def test_path_counts_follow_the_guide_at_scale(servers: int) -> None:
    t = parse_topology(synthetic_topology(servers))
    assert len(t.servers) == servers
    count = {role: sum(1 for s in t.servers if s.role is role) for role in Role}
    pgs, aws, admins = count[Role.PG], count[Role.AW_HDS], count[Role.ADMIN_RT_HDS_DDS]
    routers, loggers = count[Role.ROUTER], count[Role.LOGGER]
    assert routers == loggers == 2
    expected = (2  # router-logger, per side
                + 2  # router A-B, logger A-B private
                + routers * pgs + routers * aws + routers * admins
                + loggers * aws + loggers * admins
                + pgs  # PG A-B visible + private: 2 per pair
                + pgs)  # each PG side with its Unified CM
    paths = list(catalog_paths(t))
    assert len(paths) == expected
    assert len({(p.a.name, p.b.name, p.network) for p in paths}) == len(paths)


def test_every_row_cites_the_guide_and_every_role_is_covered() -> None:
    assert len({row.key for row in CATALOG}) == len(CATALOG)
    for row in CATALOG:
        assert "Unified ICM" in row.guide or "NAM Router" in row.guide
        if row.pairing is Pairing.SIDES_OF_PAIR:
            assert row.a is row.b
    assert {r for row in CATALOG for r in (row.a, row.b)} == set(Role)
    assert {row.network for row in CATALOG} == set(Network)
