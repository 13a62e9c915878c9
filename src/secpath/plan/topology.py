"""The deployment description: sites and servers, as the guide names them.

Pure, frozen data; :mod:`secpath.plan.topology_loader` builds it from a
``topology.toml`` and validates it.  Roles, sides and tiers are the guide's
("Unified ICM Router Side A", "Administrator & Data Server (Primary/
Secondary) with HDS", ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Literal, TypeAlias

from secpath.errors import LocalError
from secpath.policy.model import IpAddress, IpNetwork

__all__ = [
    "SIDED_ROLES",
    "TIERED_ROLES",
    "AuthKind",
    "Deployment",
    "Isolation",
    "Network",
    "Role",
    "Server",
    "Side",
    "Site",
    "Tier",
    "Topology",
]

Side: TypeAlias = Literal["A", "B"]
Tier: TypeAlias = Literal["primary", "secondary"]


class Role(Enum):
    NAM_ROUTER = "nam-router"
    CICM_ROUTER = "cicm-router"
    ROUTER = "router"
    LOGGER = "logger"
    PG = "pg"
    AW_HDS = "aw-hds"  # Administrator & Data Server with HDS
    ADMIN_RT_HDS_DDS = "admin-rt-hds-dds"  # Administration Server, RT and HDS, DDS
    UNIFIED_CM = "unified-cm"


# duplexed roles have a side A and a side B; the others a primary/secondary tier
SIDED_ROLES = frozenset({Role.NAM_ROUTER, Role.CICM_ROUTER, Role.ROUTER, Role.LOGGER, Role.PG})
TIERED_ROLES = frozenset({Role.AW_HDS, Role.ADMIN_RT_HDS_DDS, Role.UNIFIED_CM})


class Network(Enum):
    VISIBLE = "visible"  # the guide's "visible path" (public network)
    PRIVATE = "private"  # the guide's "private path" between side A and side B


class AuthKind(Enum):
    KERBEROS = "kerberos"
    CERTIFICATE = "certificate"
    PSK = "psk"


@dataclass(frozen=True, slots=True)
class Site:
    name: str
    behind_nat: bool = False
    # the site's address as seen from other sites (NAT outside address)
    public_address: IpAddress | None = None
    # outside (WAN) address of the site's Cisco IOS router, for the tunnel-mode export
    gateway: IpAddress | None = None
    wan_interface: str = "GigabitEthernet0/0"
    subnets: tuple[IpNetwork, ...] = ()
    # what the gateway runs: "ios" (the IOS export) or "secpath" (a tunnel-mode policy)
    gateway_os: Literal["ios", "secpath"] = "ios"


# operating systems whose IPsec speaks IKEv1 only (a path to them is planned with IKEv1)
IKEV1_ONLY_OS = frozenset({"windows-2008r2"})
KNOWN_OS = ("windows-2008r2", "windows-2012r2", "windows-2016", "windows-2019", "windows-2022",
            "linux")


@dataclass(frozen=True, slots=True)
class Server:
    name: str
    role: Role
    site: str
    visible: IpAddress
    private: IpAddress | None = None
    side: Side | None = None
    tier: Tier | None = None
    pair: str | None = None  # PG pair (and NAM/CICM router pair) name
    unified_cm: tuple[str, ...] = ()  # PG only: its Unified CM server(s)
    domain: str = ""  # "" = the deployment's domain
    authentication: AuthKind | None = None  # None = what the path needs
    nat_address: IpAddress | None = None  # static NAT address, if not the site's
    # the server's operating system when it limits IPsec: "windows-2008r2" speaks IKEv1 only
    os: str = ""

    @property
    def ike_version(self) -> int:
        """The IKE version the server speaks (Windows Server 2008 R2's "IP
        Security Policy" negotiates with IKEv1 main mode and quick mode)."""
        return 1 if self.os in IKEV1_ONLY_OS else 2

    def __post_init__(self) -> None:
        if (self.role in SIDED_ROLES) != (self.side is not None):
            raise LocalError(f"Server {self.name!r}: a side is given exactly for duplexed roles")


@dataclass(frozen=True, slots=True)
class Isolation:
    """The Network Isolation Utility's settings: servers whose whole traffic
    is secured, and the exemptions that stay in clear."""

    servers: tuple[str, ...] = ()
    domain_controllers: tuple[IpAddress, ...] = ()
    dns: tuple[IpAddress, ...] = ()
    dhcp: tuple[IpAddress, ...] = ()


@dataclass(frozen=True, slots=True)
class Deployment:
    name: str
    domain: str
    profile: Literal["modern", "guide"] = "modern"
    authentication: AuthKind = AuthKind.KERBEROS
    ca: str = "pki/ca.pem"  # CA certificate for certificate paths, relative to each policy
    # the CA's subject name, as Windows (netsh rootca=, -Authority) names a root CA
    ca_subject: str = "CN=secpath deployment CA"
    pki_dir: str = "pki"
    secrets_dir: str = "secrets"


@dataclass(frozen=True, slots=True)
class Topology:
    deployment: Deployment
    sites: tuple[Site, ...]
    servers: tuple[Server, ...]
    isolation: Isolation = Isolation()
    source: Path | None = field(default=None, compare=False)
    _by_name: dict[str, Server] = field(default_factory=dict, compare=False, repr=False)
    _sites: dict[str, Site] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update((s.name, s) for s in self.servers)
        self._sites.update((s.name, s) for s in self.sites)

    def server(self, name: str) -> Server:
        try:
            return self._by_name[name]
        except KeyError:
            raise LocalError(f"topology has no server {name!r}") from None

    def site(self, name: str) -> Site:
        try:
            return self._sites[name]
        except KeyError:
            raise LocalError(f"topology has no site {name!r}") from None

    def domain_of(self, server: Server) -> str:
        return server.domain or self.deployment.domain

    def fqdn(self, server: Server) -> str:
        return f"{server.name}.{self.domain_of(server)}"

    def in_domain(self, server: Server) -> bool:
        return self.domain_of(server).lower() == self.deployment.domain.lower()

    def address_seen_from(self, server: Server, viewer: Server) -> IpAddress:
        """The visible address by which ``viewer`` reaches ``server``: its own
        address on the same site or from a site not behind NAT, else its
        static NAT address or its site's public address."""
        if server.site == viewer.site:
            return server.visible
        site = self.site(server.site)
        if not site.behind_nat:
            return server.visible
        if server.nat_address is not None:
            return server.nat_address
        assert site.public_address is not None  # the loader requires it
        return site.public_address
