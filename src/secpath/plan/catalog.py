"""The guide's catalog of server-to-server communication paths, as one table.

Each row cites the deployment guide's list ("Unified ICM Release 9.0(1)
supports deploying IPsec ... limited to the following list of nodes"), and
says which servers of a topology it pairs.  :func:`catalog_paths` expands the
table for a topology; everything else (planner, audit, loader checks) reads
its output.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from secpath.plan.topology import Network, Role, Server, Topology

__all__ = ["CATALOG", "CatalogRow", "Pairing", "PathKey", "catalog_paths"]


class Pairing(Enum):
    EVERY = "every"  # each server of role a with each server of role b
    SAME_SIDE = "same-side"  # side A with side A, side B with side B
    SIDES_OF_PAIR = "sides-of-pair"  # side A with side B of the same pair (same role)
    REFERENCED = "referenced"  # a with the servers it names (a PG's unified_cm)


@dataclass(frozen=True, slots=True)
class CatalogRow:
    key: str
    a: Role
    b: Role
    network: Network
    pairing: Pairing
    guide: str  # the guide's words for the path


CATALOG: tuple[CatalogRow, ...] = (
    CatalogRow("nam-cicm", Role.NAM_ROUTER, Role.CICM_ROUTER, Network.VISIBLE, Pairing.EVERY,
               "NAM Router and CICM Router"),
    CatalogRow("router-logger", Role.ROUTER, Role.LOGGER, Network.VISIBLE, Pairing.SAME_SIDE,
               "Unified ICM Router Side A and Unified ICM Logger Side A (visible path); "
               "Unified ICM Router Side B and Unified ICM Logger Side B (visible path)"),
    CatalogRow("router-router", Role.ROUTER, Role.ROUTER, Network.PRIVATE, Pairing.SIDES_OF_PAIR,
               "Unified ICM Router Side A and Unified ICM Router Side B (private path)"),
    CatalogRow("logger-logger", Role.LOGGER, Role.LOGGER, Network.PRIVATE, Pairing.SIDES_OF_PAIR,
               "Unified ICM Logger Side A and Unified ICM Logger Side B (private path)"),
    CatalogRow("router-pg", Role.ROUTER, Role.PG, Network.VISIBLE, Pairing.EVERY,
               "Unified ICM Router and Unified ICM Peripheral Gateway (PG): Router Side A/B "
               "and PG Side A/B"),
    CatalogRow("router-aw-hds", Role.ROUTER, Role.AW_HDS, Network.VISIBLE, Pairing.EVERY,
               "Unified ICM Router Side A/B and Unified ICM Administrator & Data Server "
               "(Primary/Secondary) with HDS"),
    CatalogRow("router-admin", Role.ROUTER, Role.ADMIN_RT_HDS_DDS, Network.VISIBLE, Pairing.EVERY,
               "Unified ICM Router Side A/B and Unified ICM Administration Server, Real-time and "
               "Historical Data Server, and Detail Data Server (Primary/Secondary)"),
    CatalogRow("logger-aw-hds", Role.LOGGER, Role.AW_HDS, Network.VISIBLE, Pairing.EVERY,
               "Unified ICM Logger Side A/B and Unified ICM Administrator & Data Server "
               "(Primary/Secondary) with HDS"),
    CatalogRow("logger-admin", Role.LOGGER, Role.ADMIN_RT_HDS_DDS, Network.VISIBLE, Pairing.EVERY,
               "Unified ICM Logger Side A/B and Unified ICM Administration Server, Real-time and "
               "Historical Data Server, and Detail Data Server (Primary/Secondary)"),
    CatalogRow("pg-pg-visible", Role.PG, Role.PG, Network.VISIBLE, Pairing.SIDES_OF_PAIR,
               "Unified ICM PG Side A and Unified ICM PG Side B: Visible path"),
    CatalogRow("pg-pg-private", Role.PG, Role.PG, Network.PRIVATE, Pairing.SIDES_OF_PAIR,
               "Unified ICM PG Side A and Unified ICM PG Side B: Private path"),
    CatalogRow("pg-unified-cm", Role.PG, Role.UNIFIED_CM, Network.VISIBLE, Pairing.REFERENCED,
               "Unified ICM PG Side A/B and Unified CM (Unified CCE)"),
)


@dataclass(frozen=True, slots=True)
class PathKey:
    """One path of the catalog for a topology: server ``a`` ↔ server ``b``."""

    a: Server
    b: Server
    network: Network
    row: CatalogRow

    @property
    def name(self) -> str:
        """The rule (and filter list) name on both ends: ``rtr-a--lgr-a--visible``."""
        return f"{self.a.name}--{self.b.name}--{self.network.value}"


def _pair_of(server: Server) -> str:
    return server.pair if server.pair is not None else server.role.value


def catalog_paths(topology: Topology) -> Iterator[PathKey]:
    """Every path of :data:`CATALOG` for ``topology``, in catalog order, then
    in the topology's server order.  Unknown references are skipped here (the
    loader reports them)."""
    by_role: dict[Role, list[Server]] = defaultdict(list)
    for server in topology.servers:
        by_role[server.role].append(server)
    names = {s.name: s for s in topology.servers}
    for row in CATALOG:
        a_servers = by_role.get(row.a, [])
        if row.pairing is Pairing.EVERY:
            b_servers = by_role.get(row.b, [])
            for a in a_servers:
                for b in b_servers:
                    yield PathKey(a, b, row.network, row)
        elif row.pairing is Pairing.SAME_SIDE:
            b_servers = by_role.get(row.b, [])
            for a in a_servers:
                for b in b_servers:
                    if a.side == b.side:
                        yield PathKey(a, b, row.network, row)
        elif row.pairing is Pairing.SIDES_OF_PAIR:
            side_b = {_pair_of(s): s for s in a_servers if s.side == "B"}
            for a in a_servers:
                partner = side_b.get(_pair_of(a))
                if a.side == "A" and partner is not None:
                    yield PathKey(a, partner, row.network, row)
        else:  # Pairing.REFERENCED
            for a in a_servers:
                for ref in a.unified_cm:
                    target = names.get(ref)
                    if target is not None and target.role is row.b:
                        yield PathKey(a, target, row.network, row)
