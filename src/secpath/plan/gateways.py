"""Site gateways: the tunnel-mode peers of the IOS export.

The guide's WAN design is "Cisco IOS IPsec in Tunnel Mode, meaning only the
Cisco IP Routers (IPsec peers) between the two sites were part of the secure
channel establishment".  A site's ``gateway`` is an IOS router by default
(``gateway_os = "ios"``, written by :mod:`secpath.plan.exporters.ios`); with
``gateway_os = "secpath"`` it is a host running secpath, and the planner
writes it a tunnel-mode policy with one rule per peer site.

IOS crypto maps with ``crypto isakmp policy`` negotiate IKEv1, so a rule to a
site whose gateway is an IOS router (an IOS export's peer) uses
``ike_version = 1``; two secpath gateways use IKEv2.  Both ends authenticate
with the deployment CA's certificates by distinguished name, the name the IOS
trustpoint enrolls (``subject-name CN=<site>-gw.<domain>``, ``crypto isakmp
identity dn``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from secpath.crypto.registry import IKE_ENCRYPTION
from secpath.plan.profiles import Profile
from secpath.plan.topology import Site, Topology
from secpath.policy.model import (
    Address,
    AddressKind,
    Behavior,
    CertificateAuth,
    ConnectionType,
    Filter,
    FilterAction,
    FilterList,
    IpAddress,
    IpNetwork,
    KeyExchange,
    Local,
    Policy,
    Rule,
)

__all__ = ["GATEWAY_OSES", "gateway_dn", "gateway_policies", "ikev1_key_exchange", "key_exchange_for",
           "peer_address", "site_subnets", "tunnel_ike_version", "tunnel_pairs"]

GATEWAY_OSES = ("ios", "secpath")
TUNNEL_ACTION = "tunnel-require-security"


def gateway_dn(topology: Topology, site: Site) -> str:
    """The gateway's certificate subject and IKE identity (ID_DER_ASN1_DN)."""
    return f"CN={site.name}-gw.{topology.deployment.domain}"


def peer_address(site: Site) -> IpAddress:
    """Where the other sites reach the gateway: its NAT outside address or itself."""
    if site.behind_nat and site.public_address is not None:
        return site.public_address
    assert site.gateway is not None
    return site.gateway


def site_subnets(topology: Topology, site: Site) -> list[IpNetwork]:
    """The site's protected subnets, or its servers' visible addresses."""
    if site.subnets:
        return list(site.subnets)
    return [ipaddress.ip_network(s.visible) for s in topology.servers if s.site == site.name]


def tunnel_pairs(topology: Topology, joined: Iterable[tuple[str, str]]) -> list[tuple[Site, Site]]:
    """Pairs of sites, both with a gateway, among the (site, site) ends of the paths."""
    seen: set[tuple[str, str]] = set()
    out: list[tuple[Site, Site]] = []
    for a, b in joined:
        if a == b:
            continue
        key = (min(a, b), max(a, b))
        if key in seen:
            continue
        seen.add(key)
        sa, sb = topology.site(key[0]), topology.site(key[1])
        if sa.gateway is not None and sb.gateway is not None:
            out.append((sa, sb))
    return out


def tunnel_ike_version(a: Site, b: Site) -> int:
    """IKEv1 when either gateway is an IOS router (its export is ``crypto isakmp``)."""
    return 1 if "ios" in (a.gateway_os, b.gateway_os) else 2


def ikev1_key_exchange(kx: KeyExchange) -> tuple[str, ...]:
    """The profile's IKE proposals an IKEv1 (ISAKMP) SA can use: no AEAD
    (RFC 5282 defines AES-GCM for IKEv2 only)."""
    return tuple(m.proposal for m in kx.methods if not IKE_ENCRYPTION[m.encryption].aead)


def key_exchange_for(kx: KeyExchange, rules: Iterable[Rule]) -> KeyExchange:
    """The policy's key exchange: the profile's, without its AEAD proposals when
    a rule negotiates IKEv1 (they could never be chosen, and the policy audit
    refuses them: ``ikev1-aead``); unchanged if nothing would remain."""
    if not any(r.ike_version == 1 for r in rules):
        return kx
    methods = tuple(m for m in kx.methods if not IKE_ENCRYPTION[m.encryption].aead)
    return replace(kx, methods=methods) if methods else kx


def _net(net: IpNetwork) -> Address:
    return Address(AddressKind.NETWORK, net)


def _gateway_policy(topology: Topology, profile: Profile, site: Site,
                    peers: Iterable[Site]) -> Policy:
    d = topology.deployment
    action = FilterAction(
        TUNNEL_ACTION, Behavior.NEGOTIATE, profile.security_methods,
        allow_unsecured_fallback=False, accept_unsecured_inbound=False, pfs=False,
        description="Tunnel the site's subnets to the peer site's gateway",
    )
    auth = CertificateAuth(ca=Path(d.ca), certificate=Path(f"{d.pki_dir}/{site.name}-gw.pem"),
                           private_key=Path(f"{d.pki_dir}/{site.name}-gw.key"))
    rules: list[Rule] = []
    for peer in peers:
        name = f"tunnel-{site.name}-{peer.name}"
        filters = tuple(Filter(_net(local), _net(remote), None, mirrored=True)
                        for local in site_subnets(topology, site)
                        for remote in site_subnets(topology, peer))
        filter_list = FilterList(name, filters,
                                 description=f"site {site.name} <-> site {peer.name}, tunnel mode")
        address = peer_address(peer)
        rules.append(Rule(
            name, filter_list, action, (auth,), ConnectionType.ALL,
            tunnel_endpoint=address, peer=address, remote_id=gateway_dn(topology, peer),
            ike_version=1 if tunnel_ike_version(site, peer) == 1 else 2,
        ))
    assert site.gateway is not None
    return Policy(
        name=f"{site.name}-gw",
        description=f"gateway of site {site.name} (tunnel mode), deployment {d.name}",
        local=Local((site.gateway,), id=gateway_dn(topology, site)),
        key_exchange=key_exchange_for(profile.key_exchange, rules),
        rules=tuple(rules),
        default_response_rule=False,
        filter_lists=tuple(r.filter_list for r in rules),
        filter_actions=(action,) if rules else (),
    )


def gateway_policies(topology: Topology, profile: Profile,
                     pairs: Iterable[tuple[Site, Site]]) -> dict[str, Policy]:
    """Site name → policy of every ``gateway_os = "secpath"`` gateway in a pair."""
    peers: dict[str, list[Site]] = {}
    for a, b in pairs:
        peers.setdefault(a.name, []).append(b)
        peers.setdefault(b.name, []).append(a)
    return {name: _gateway_policy(topology, profile, topology.site(name), ps)
            for name, ps in peers.items() if topology.site(name).gateway_os == "secpath"}
