"""Planning a deployment: topology → the guide's catalog of paths → a mirrored
policy on every server, audited and exported."""

from secpath.plan.catalog import CATALOG, CatalogRow, catalog_paths
from secpath.plan.planner import CommunicationPath, Plan, plan_deployment
from secpath.plan.profiles import PROFILES, Profile
from secpath.plan.topology import AuthKind, Network, Role, Server, Site, Topology
from secpath.plan.topology_loader import TopologyError, TopologyIssue, load_topology

__all__ = [
    "CATALOG",
    "PROFILES",
    "AuthKind",
    "CatalogRow",
    "CommunicationPath",
    "Network",
    "Plan",
    "Profile",
    "Role",
    "Server",
    "Site",
    "Topology",
    "TopologyError",
    "TopologyIssue",
    "catalog_paths",
    "load_topology",
    "plan_deployment",
]
