"""Topology → every catalog path → one mirrored policy per server.

The guide: "An IPsec Security Policy must be created for each communication
path and on each end (on every server)".  Each path becomes one rule on each
of its two servers, with the same name, the same proposals and the same
authentication; each end's filter is its own address ↔ the address by which
it reaches the peer (through NAT where the peer's site is behind one).
"""

from __future__ import annotations

import functools
import ipaddress
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from secpath.plan.catalog import PathKey, catalog_paths
from secpath.plan.gateways import gateway_policies, key_exchange_for, tunnel_pairs
from secpath.plan.profiles import PROFILES, Profile
from secpath.plan.topology import AuthKind, Network, Role, Server, Topology
from secpath.policy.model import (
    Address,
    AddressKind,
    AuthMethod,
    Behavior,
    CertificateAuth,
    ConnectionType,
    Filter,
    FilterAction,
    FilterList,
    IpAddress,
    KerberosAuth,
    Local,
    Policy,
    PskAuth,
    Rule,
)

__all__ = [
    "CommunicationPath",
    "Plan",
    "auth_method_for",
    "path_authentication",
    "plan_deployment",
    "server_title",
]

REQUIRE_SECURITY = "require-security"

_ROLE_TITLES = {
    Role.NAM_ROUTER: "NAM Router",
    Role.CICM_ROUTER: "CICM Router",
    Role.ROUTER: "Unified ICM Router",
    Role.LOGGER: "Unified ICM Logger",
    Role.PG: "Unified ICM Peripheral Gateway",
    Role.AW_HDS: "Administrator & Data Server with HDS",
    Role.ADMIN_RT_HDS_DDS: "Administration Server, Real-time and Historical Data Server, "
                           "and Detail Data Server",
    Role.UNIFIED_CM: "Unified CM",
}


@dataclass(frozen=True, slots=True)
class CommunicationPath:
    """One secured path, as both of its ends see it."""

    a: Server
    b: Server
    network: Network
    authentication: AuthKind
    rule: str  # the rule and filter-list name on both servers
    catalog: str  # CatalogRow.key
    guide: str  # the guide's words for the path
    a_address: IpAddress  # a's own address on the network
    b_address: IpAddress
    a_seen_by_b: IpAddress  # where b sends to reach a (NAT outside address or a_address)
    b_seen_by_a: IpAddress

    @property
    def crosses_nat(self) -> bool:
        return self.a_seen_by_b != self.a_address or self.b_seen_by_a != self.b_address

    def view(self, server: str) -> tuple[IpAddress, IpAddress, Server]:
        """(own address, peer address as reached, peer) from ``server``'s end."""
        if server == self.a.name:
            return self.a_address, self.b_seen_by_a, self.b
        if server == self.b.name:
            return self.b_address, self.a_seen_by_b, self.a
        raise ValueError(f"{server!r} is not an end of {self.rule}")


@dataclass(frozen=True)
class Plan:
    topology: Topology
    profile: Profile
    paths: tuple[CommunicationPath, ...]
    policies: dict[str, Policy]  # server name → its policy (every server has one)
    paths_of: dict[str, tuple[CommunicationPath, ...]] = field(repr=False)
    # site name → tunnel-mode policy of its secpath gateway (gateway_os = "secpath")
    gateways: dict[str, Policy] = field(default_factory=dict)


def path_authentication(topology: Topology, a: Server, b: Server) -> AuthKind:
    """The method a path needs: a server's explicit choice; else the
    deployment's, except that Kerberos becomes certificates when an end is
    outside the domain ("when the Unified CM is not in the same domain as the
    Unified ICM system, you are unable to use Kerberos for authentication. You
    must use X.509 certificates")."""
    for s in (a, b):
        if s.authentication is not None:
            return s.authentication
    method = topology.deployment.authentication
    if method is AuthKind.KERBEROS and not (topology.in_domain(a) and topology.in_domain(b)):
        return AuthKind.CERTIFICATE
    if method is AuthKind.KERBEROS and min(a.ike_version, b.ike_version) == 1:
        return AuthKind.CERTIFICATE  # secpath's IKEv1 has no Kerberos (GSS-API) method
    return method


def _communication_path(topology: Topology, key: PathKey) -> CommunicationPath:
    a, b = key.a, key.b
    if key.network is Network.PRIVATE:
        assert a.private is not None and b.private is not None  # the loader checks
        a_addr, b_addr, a_seen, b_seen = a.private, b.private, a.private, b.private
    else:
        a_addr, b_addr = a.visible, b.visible
        a_seen = topology.address_seen_from(a, b)
        b_seen = topology.address_seen_from(b, a)
    return CommunicationPath(a, b, key.network, path_authentication(topology, a, b), key.name,
                             key.row.key, key.row.guide, a_addr, b_addr, a_seen, b_seen)


def auth_method_for(topology: Topology, kind: AuthKind, own: Server, rule: str) -> AuthMethod:
    """The authentication entry of ``own``'s rule: Kerberos in the domain's realm,
    ``own``'s certificate and key under ``pki_dir``, or the rule's key file."""
    d = topology.deployment
    if kind is AuthKind.KERBEROS:
        return KerberosAuth(realm=d.domain.upper())
    if kind is AuthKind.CERTIFICATE:
        return CertificateAuth(ca=Path(d.ca), certificate=Path(f"{d.pki_dir}/{own.name}.pem"),
                               private_key=Path(f"{d.pki_dir}/{own.name}.key"))
    return PskAuth(secret_file=Path(f"{d.secrets_dir}/{rule}.psk"))


@functools.lru_cache(maxsize=65536)
def _host(address: IpAddress) -> Address:
    """A one-host filter address (cached: a router's address is in every PG's filter)."""
    return Address(AddressKind.NETWORK, ipaddress.ip_network(address))


def server_title(server: Server) -> str:
    title = _ROLE_TITLES[server.role]
    if server.side is not None:
        return f"{title} Side {server.side}"
    return f"{title} ({server.tier})" if server.tier else title


def _policy(topology: Topology, profile: Profile, server: Server,
            paths: tuple[CommunicationPath, ...]) -> Policy:
    action = FilterAction(
        REQUIRE_SECURITY, Behavior.NEGOTIATE, profile.security_methods,
        allow_unsecured_fallback=False, accept_unsecured_inbound=False, pfs=False,
        description="Negotiate security; do not communicate with computers that do not "
                    "support IPsec",
    )
    rules: list[Rule] = []
    for path in paths:
        own, peer_address, peer = path.view(server.name)
        filter_list = FilterList(
            path.rule,
            (Filter(_host(own), _host(peer_address), None, mirrored=True),),
            description=f"{server.name} <-> {peer.name}, {path.network.value} path",
        )
        auth = auth_method_for(topology, path.authentication, server, path.rule)
        rules.append(Rule(
            path.rule, filter_list, action, (auth,),
            ConnectionType.ALL, None, peer=peer_address, remote_id=topology.fqdn(peer),
            # both ends of a path to an IKEv1-only server (Windows Server 2008 R2) use IKEv1
            ike_version=1 if min(server.ike_version, peer.ike_version) == 1 else 2,
        ))
    addresses = tuple(a for a in (server.visible, server.private) if a is not None)
    return Policy(
        name=server.name,
        description=f"{server_title(server)}, deployment {topology.deployment.name}",
        local=Local(addresses, id=topology.fqdn(server)),
        key_exchange=key_exchange_for(profile.key_exchange, rules),
        rules=tuple(rules),
        default_response_rule=False,
        filter_lists=tuple(r.filter_list for r in rules),
        filter_actions=(action,) if rules else (),
    )


def plan_deployment(topology: Topology) -> Plan:
    """Every catalog path of ``topology`` and every server's policy."""
    profile = PROFILES[topology.deployment.profile]
    paths = tuple(_communication_path(topology, k) for k in catalog_paths(topology))
    by_server: dict[str, list[CommunicationPath]] = defaultdict(list)
    for p in paths:
        by_server[p.a.name].append(p)
        by_server[p.b.name].append(p)
    paths_of = {s.name: tuple(by_server.get(s.name, ())) for s in topology.servers}
    policies = {s.name: _policy(topology, profile, s, paths_of[s.name])
                for s in topology.servers}
    pairs = tunnel_pairs(topology, ((p.a.site, p.b.site) for p in paths))
    return Plan(topology, profile, paths, policies, paths_of,
                gateway_policies(topology, profile, pairs))
