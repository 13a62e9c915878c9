"""One policy agent per local address: which rules each address negotiates.

An IKE SA runs between two addresses, so a host with a visible and a
private address (the guide's routers and loggers) negotiates the paths of
each network from that network's address.  A rule whose filters all start
at one of the local addresses belongs to that address; any other rule
(``me``, subnets, tunnel mode) to the first local address.
"""

from __future__ import annotations

from dataclasses import replace

from secpath.policy.model import AddressKind, IpAddress, Local, Policy, Rule

__all__ = ["address_of", "split_policy"]


def address_of(rule: Rule, local: tuple[IpAddress, ...]) -> IpAddress:
    sources: set[IpAddress | None] = set()
    for f in rule.filter_list.filters:
        if f.source.kind is AddressKind.NETWORK and f.source.network is not None and f.source.is_host:
            sources.add(f.source.network.network_address)
        else:
            sources.add(None)
    if len(sources) == 1:
        (only,) = sources
        if only is not None and only in local:
            return only
    return local[0]


def split_policy(policy: Policy) -> dict[str, Policy]:
    """``{address: the policy restricted to the rules negotiated from it}``;
    addresses without rules are left out."""
    local = policy.local.addresses
    groups: dict[IpAddress, list[Rule]] = {}
    for rule in policy.rules:
        groups.setdefault(address_of(rule, local), []).append(rule)
    out: dict[str, Policy] = {}
    for address in local:
        rules = tuple(groups.get(address, ()))
        if not rules:
            continue
        names = {r.filter_list.name for r in rules}
        actions = {r.filter_action.name for r in rules}
        out[str(address)] = replace(
            policy,
            local=Local((address, *(a for a in local if a != address)), id=policy.local.id),
            rules=rules,
            filter_lists=tuple(fl for fl in policy.filter_lists if fl.name in names)
            or tuple(r.filter_list for r in rules),
            filter_actions=tuple(fa for fa in policy.filter_actions if fa.name in actions)
            or tuple(r.filter_action for r in rules),
        )
    return out
