"""The audit of a whole plan: every server's policy through the foundation's
:func:`~secpath.policy.audit.audit_policy` (findings shared by many servers
reported once), both ends of every path through
:func:`~secpath.policy.audit.audit_pair`, and plan-level findings: the
profile, Kerberos outside the domain, sites behind NAT, servers and pairs the
catalog leaves uncovered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import replace

from secpath.plan.gateways import ikev1_key_exchange
from secpath.plan.planner import Plan
from secpath.plan.topology import AuthKind, Network, Role
from secpath.policy.audit import Finding, Severity, audit_pair, audit_policy
from secpath.policy.model import Behavior, Policy

__all__ = ["audit_plan", "merge_findings"]

# file checks belong on each server (``secpath check``): the plan does not hold the files
_FILE_CODES = frozenset({"file-missing", "file-permissions"})
_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
_SHOWN = 4


def _names(names: list[str]) -> str:
    if len(names) <= _SHOWN:
        return ", ".join(names)
    return ", ".join(names[:_SHOWN]) + f", ... ({len(names)} in all)"


def merge_findings(per_server: Iterable[tuple[str, Finding]]) -> list[Finding]:
    """One finding for each (severity, code, where, message, reason), naming its servers."""
    groups: dict[tuple[Severity, str, str, str, str], list[str]] = defaultdict(list)
    for server, f in per_server:
        names = groups[(f.severity, f.code, f.where, f.message, f.reason)]
        if server not in names:
            names.append(server)
    return [Finding(sev, code, f"{_names(servers)}: {where}", message, reason)
            for (sev, code, where, message, reason), servers in groups.items()]


def _policies(policies: dict[str, Policy]) -> list[Finding]:
    pairs: list[tuple[str, Finding]] = []
    for name, policy in policies.items():
        pairs += [(name, f) for f in audit_policy(policy) if f.code not in _FILE_CODES]
    return merge_findings(pairs)


def _profile(plan: Plan) -> Iterator[Finding]:
    if plan.profile.name == "guide":
        yield Finding(
            Severity.WARNING, "profile-guide", "deployment.profile",
            "profile 'guide': ESP 3DES/HMAC-SHA1 and IKE 3DES/SHA1 with DH group 2 on every path",
            "the guide's qualified suite is legacy: RFC 8221 §5 (3DES: 64-bit block, Sweet32), "
            "RFC 8221 §6 (HMAC-SHA1-96), RFC 8247 §2.4 (1024-bit MODP SHOULD NOT); the guide "
            "itself: 'For maximum security, use Group 2048 (high)'. Use profile = 'modern'")


def _paths(plan: Plan, policies: dict[str, Policy]) -> Iterator[Finding]:
    topology = plan.topology
    nat_paths: dict[str, list[str]] = defaultdict(list)
    rules = {name: {r.name: r for r in p.rules} for name, p in policies.items()}
    for path in plan.paths:
        if path.authentication is AuthKind.KERBEROS:
            for s in (path.a, path.b):
                if not topology.in_domain(s):
                    yield Finding(
                        Severity.ERROR, "kerberos-outside-domain", path.rule,
                        f"Kerberos authentication with {s.name}, which is in domain "
                        f"{topology.domain_of(s)!r}, not {topology.deployment.domain!r}",
                        "the guide: 'when the Unified CM is not in the same domain as the "
                        "Unified ICM system, you are unable to use Kerberos for "
                        "authentication. You must use X.509 certificates'")
        if path.crosses_nat:
            for s in (path.a, path.b):
                if topology.site(s.site).behind_nat and (
                        topology.address_seen_from(s, path.b if s is path.a else path.a)
                        != s.visible):
                    nat_paths[s.site].append(path.rule)
        # each end reduced to the path's rule: Policy.rule() is a linear scan, and a
        # router's policy has a rule per PG
        a_policy = replace(policies[path.a.name], rules=(rules[path.a.name][path.rule],))
        b_policy = replace(policies[path.b.name], rules=(rules[path.b.name][path.rule],))
        yield from audit_pair(a_policy, path.rule, b_policy, path.rule)
    for site in topology.sites:
        if not site.behind_nat:
            continue
        crossing = nat_paths.get(site.name, [])
        yield Finding(
            Severity.INFO, "nat-site", f"site[{site.name}]",
            f"site {site.name} is behind NAT ({site.public_address}): NAT traversal (UDP "
            "4500) is required",
            "RFC 3947 / RFC 7296 §2.23 detect the NAT; RFC 3948 encapsulates ESP in UDP. The "
            "guide: NAT-T 'is autodetected and autonegotiated' if both devices are capable")
        if crossing:
            yield Finding(
                Severity.WARNING, "transport-behind-nat", f"site[{site.name}]",
                f"{len(crossing)} transport-mode path(s) cross the NAT of site {site.name}: "
                f"{_names(crossing)}",
                "RFC 3948 §3.1.2: transport mode through NAT needs the NAT-OA checksum fix-up "
                "and breaks when two hosts share one NAT address; Windows needs "
                "AssumeUDPEncapsulationContextOnSendRule (KB 926179). The guide's tested NAT "
                "design secures the WAN with IOS tunnel mode between the sites' routers")


def _shared_nat(policies: dict[str, Policy]) -> Iterator[Finding]:
    for name, policy in policies.items():
        by_traffic: dict[tuple[object, ...], list[str]] = defaultdict(list)
        for rule in policy.rules:
            for f in rule.filter_list.filters:
                key: tuple[object, ...] = (f.source, f.destination, f.protocol,
                                           f.source_port, f.destination_port)
                by_traffic[key].append(rule.name)
        for key, rules in by_traffic.items():
            traffic = f"{key[0]} <-> {key[1]}"
            if len(rules) > 1 and all(r.filter_action.behavior is Behavior.NEGOTIATE
                                      for r in policy.rules if r.name in rules):
                yield Finding(
                    Severity.ERROR, "indistinguishable-paths", f"{name}: {', '.join(rules)}",
                    f"{len(rules)} rules of {name} have the same filter {traffic}: the peers "
                    "share one NAT address, so only the first rule can ever match",
                    "give each server behind the NAT its own static NAT address (nat_address)")


def _coverage(plan: Plan) -> Iterator[Finding]:
    topology = plan.topology
    lonely = [s.name for s in topology.servers if not plan.paths_of[s.name]]
    if lonely:
        yield Finding(
            Severity.WARNING, "server-without-path", _names(lonely),
            f"{len(lonely)} server(s) take part in no path of the catalog: {_names(lonely)}",
            "the guide lists the paths that carry customer-sensitive data; a server on none "
            "of them gets an empty policy (is a router, logger or PG missing?)")
    sides: dict[tuple[Role, str], set[str]] = defaultdict(set)
    for s in topology.servers:
        if s.side is not None:
            sides[(s.role, s.pair or s.role.value)].add(s.side)
    simplex = [f"{role.value} {pair}" for (role, pair), ss in sides.items() if ss == {"A"}]
    if simplex:
        yield Finding(
            Severity.INFO, "simplex", _names(simplex),
            f"no side B for {_names(simplex)}: the side A <-> side B paths do not exist",
            "the guide's catalog secures the A <-> B visible and private paths of duplexed "
            "pairs")
    no_ucm = [s.name for s in topology.servers if s.role is Role.PG and not s.unified_cm]
    if no_ucm:
        yield Finding(
            Severity.INFO, "pg-without-unified-cm", _names(no_ucm),
            f"{len(no_ucm)} PG(s) name no Unified CM: no PG <-> Unified CM path for them",
            "the guide's catalog: 'Unified ICM PG Side A/B and Unified CM (Unified CCE)'")
    cross = [p.rule for p in plan.paths
             if p.network is Network.PRIVATE and p.a.site != p.b.site]
    if cross:
        yield Finding(
            Severity.INFO, "private-path-across-sites", _names(cross),
            f"{len(cross)} private path(s) join two sites: the private network must be "
            "routed between them",
            "the private path is the dedicated network between side A and side B")


def _ikev1(plan: Plan) -> Iterator[Finding]:
    """The plan's note on its IKEv1 rules: which, and the suites they negotiate."""
    rules = sorted({r.name for p in (*plan.policies.values(), *plan.gateways.values())
                    for r in p.rules if r.ike_version == 1})
    if not rules:
        return
    ike = ikev1_key_exchange(plan.profile.key_exchange)
    esp = ", ".join(m.proposal for m in plan.profile.security_methods)
    yield Finding(
        Severity.INFO, "ikev1-rules", _names(rules),
        f"{len(rules)} rule(s) negotiate IKEv1 (main mode, quick mode): "
        f"ISAKMP {', '.join(ike) or 'none'}; ESP {esp}",
        "Windows Server 2008 R2 and the IOS export's crypto isakmp speak IKEv1 only. The "
        "ISAKMP SA uses the profile's CBC+HMAC proposals (RFC 5282 defines AEAD for IKEv2 "
        "only); ESP AES-GCM is negotiable in IKEv1 quick mode (RFC 4106 §8.1)")


def audit_plan(plan: Plan, *, policies: dict[str, Policy] | None = None,
               extra: Iterable[Finding] = ()) -> list[Finding]:
    """Every finding of the plan, errors first; ``policies`` replaces the
    plan's (an isolated server's policy)."""
    effective = plan.policies if policies is None else policies
    gateways = {f"{site}-gw": p for site, p in plan.gateways.items()}
    findings = [*_profile(plan), *_paths(plan, effective), *_shared_nat(effective),
                *_coverage(plan), *_policies({**effective, **gateways}), *_ikev1(plan), *extra]
    return sorted(findings, key=lambda f: _ORDER[f.severity])
