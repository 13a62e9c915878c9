"""Network isolation: secure all traffic to and from a server, as the guide's
Network Isolation Utility does ("a specific, more restricted, but automated
way of applying IPsec to secure the entire traffic to and from the server").

The isolation policy keeps the server's catalog rules (their peers and
authentication are exact), adds exemptions in clear for the infrastructure
IPsec itself depends on (domain controllers for Kerberos, DNS, DHCP), and
ends with a rule that negotiates security for everything else (``me`` ↔
``any``, no fallback to clear).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from secpath.plan.planner import Plan, auth_method_for
from secpath.plan.topology import AuthKind, Topology
from secpath.policy.audit import Finding, Severity
from secpath.policy.model import (
    Address,
    Behavior,
    Filter,
    FilterAction,
    FilterList,
    IpAddress,
    KerberosAuth,
    Policy,
    PortRange,
    Rule,
)

__all__ = ["EXEMPT", "SECURE_ALL", "audit_isolation", "isolation_policy"]

EXEMPT = "isolation-exempt"
SECURE_ALL = "isolation-secure-all"
_UDP, _TCP = 17, 6


def _host(address: IpAddress) -> Address:
    return Address.of(str(ipaddress.ip_network(address)))


def _exemption(name: str, description: str, filters: Iterable[Filter],
               action: FilterAction) -> Rule | None:
    fs = tuple(filters)
    if not fs:
        return None
    return Rule(name, FilterList(name, fs, description), action)


def isolation_policy(plan: Plan, server_name: str) -> Policy:
    """``server_name``'s policy with the isolation exemptions and the final
    secure-everything rule."""
    topology = plan.topology
    server = topology.server(server_name)
    base = plan.policies[server_name]
    iso = topology.isolation
    permit = FilterAction(EXEMPT, Behavior.PERMIT,
                          description="Network isolation exemption: permitted in clear")
    me = Address.me()
    exemptions = [
        _exemption("exempt-domain-controllers",
                   "domain controllers (Kerberos, LDAP): needed to authenticate",
                   (Filter(me, _host(a)) for a in iso.domain_controllers), permit),
        _exemption("exempt-dns", "DNS servers (UDP and TCP 53)",
                   (Filter(me, _host(a), proto, destination_port=PortRange(53, 53))
                    for a in iso.dns for proto in (_UDP, _TCP)), permit),
        _exemption("exempt-dhcp", "DHCP (UDP 68 -> 67)",
                   (Filter(me, _host(a), _UDP, PortRange(68, 68), PortRange(67, 67))
                    for a in iso.dhcp), permit),
    ]
    require = base.rules[0].filter_action if base.rules else None
    if require is None:
        require = FilterAction("require-security", Behavior.NEGOTIATE,
                               plan.profile.security_methods)
    method = topology.deployment.authentication
    secure_all = Rule(
        SECURE_ALL,
        FilterList(SECURE_ALL, (Filter(me, Address.any()),),
                   "all other traffic to and from this server"),
        require,
        (auth_method_for(topology, method, server, SECURE_ALL),),
        start="none",  # the peer is any host: respond, and negotiate per packet
    )
    rules = (*[r for r in exemptions if r is not None], *base.rules, secure_all)
    return Policy(
        name=base.name,
        description=base.description + " (network isolation)",
        local=base.local,
        key_exchange=base.key_exchange,
        rules=rules,
        default_response_rule=False,
        filter_lists=tuple(r.filter_list for r in rules),
        filter_actions=tuple({r.filter_action.name: r.filter_action for r in rules}.values()),
    )


def audit_isolation(topology: Topology, policy: Policy) -> list[Finding]:
    """What an isolated server may lose: the exemptions its rules depend on."""
    iso = topology.isolation
    where = f"{policy.name}: isolation"
    out: list[Finding] = []
    kerberos = any(isinstance(a, KerberosAuth) for r in policy.rules for a in r.authentication)
    if kerberos and not iso.domain_controllers:
        out.append(Finding(
            Severity.ERROR, "isolation-no-domain-controller", where,
            "Kerberos authentication with all traffic secured, but no domain controller is "
            "exempted (isolation.domain_controllers)",
            "Kerberos needs the domain controllers before any IPsec SA exists: without the "
            "exemption the server cannot authenticate at all"))
    if not iso.dns:
        out.append(Finding(
            Severity.WARNING, "isolation-no-dns", where,
            "no DNS server is exempted (isolation.dns)",
            "name resolution precedes every negotiation; the Network Isolation Utility "
            "exempts it"))
    if not iso.dhcp:
        out.append(Finding(
            Severity.INFO, "isolation-no-dhcp", where,
            "no DHCP server is exempted (isolation.dhcp): right only for static addresses",
            "a DHCP client cannot negotiate IPsec before it has an address"))
    if topology.deployment.authentication is AuthKind.PSK:
        out.append(Finding(
            Severity.WARNING, "isolation-psk", where,
            "the secure-all rule authenticates any host with one preshared key",
            "a preshared key shared with every host: any of them can impersonate the others"))
    out.append(Finding(
        Severity.INFO, "isolation", where,
        f"all traffic of {policy.name} is secured except "
        f"{len(iso.domain_controllers)} domain controller(s), {len(iso.dns)} DNS and "
        f"{len(iso.dhcp)} DHCP server(s)",
        "the guide's Network Isolation Utility: secure the entire traffic to and from the "
        "server"))
    return out
