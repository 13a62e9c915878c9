"""Conflicting and shadowed filters found in a compiled SPD."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from secpath.policy.model import (
    ANY_PORT,
    Address,
    AddressKind,
    Behavior,
    Filter,
    FilterAction,
    FilterList,
    IpAddress,
    KeyExchange,
    Local,
    Policy,
    PortRange,
    PskAuth,
    Rule,
    SecurityMethod,
)
from secpath.policy.spd import Spd
from secpath.policy.spd_conflicts import ConflictKind, FilterConflict, find_conflicts

LOCAL = (ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("2001:db8::1"))
BLOCK = FilterAction("block", Behavior.BLOCK)
PERMIT = FilterAction("permit", Behavior.PERMIT)
SECURE = FilterAction("secure", Behavior.NEGOTIATE, (SecurityMethod("aes256gcm", "none"),))
SECURE_LEGACY = FilterAction("legacy", Behavior.NEGOTIATE, (SecurityMethod("3des", "sha1"),))
CONFLICTING, SHADOWED = ConflictKind.CONFLICTING, ConflictKind.SHADOWED


def addr(text: str) -> Address:
    if text in ("me", "any"):
        return Address(AddressKind(text))
    if text.startswith("dns:"):
        return Address(AddressKind.DNS, dns_name=text[4:])
    return Address.of(text)


def flt(src: str, dst: str, protocol: int | None = None, *, mirrored: bool = True) -> Filter:
    return Filter(addr(src), addr(dst), protocol, mirrored=mirrored)


def rule(name: str, action: FilterAction, *filters: Filter) -> Rule:
    auth = (PskAuth(Path("/psk")),) if action.behavior is Behavior.NEGOTIATE else ()
    return Rule(name, FilterList(f"{name}-list", filters), action, auth)


def conflicts(
    *rules: Rule, resolve: dict[str, list[IpAddress]] | None = None
) -> list[tuple[ConflictKind, tuple[str, int], tuple[str, int], bool]]:
    policy = Policy("p", Local(LOCAL), KeyExchange(()), rules)
    return [
        (
            c.kind,
            (c.winner.rule.name, c.winner.filter_index),
            (c.loser.rule.name, c.loser.filter_index),
            c.loser_never_matches,
        )
        for c in find_conflicts(Spd(policy, resolve))
    ]


def test_same_selectors_with_block_and_permit_conflict() -> None:
    found = conflicts(
        rule("allow", PERMIT, flt("me", "10.0.0.2")), rule("deny", BLOCK, flt("me", "10.0.0.2"))
    )
    assert found == [(CONFLICTING, ("deny", 0), ("allow", 0), True)]


def test_two_negotiate_actions_with_different_methods_conflict() -> None:
    found = conflicts(
        rule("modern", SECURE, flt("me", "10.0.0.2", 6)),
        rule("legacy", SECURE_LEGACY, flt("me", "10.0.0.2", 6)),
    )
    assert found == [(CONFLICTING, ("modern", 0), ("legacy", 0), True)]


def test_me_and_the_local_address_are_the_same_selector() -> None:
    found = conflicts(
        rule("a", SECURE, flt("me", "10.0.0.2")),
        rule("b", PERMIT, flt("10.0.0.1", "10.0.0.2")),
    )
    assert found == [(CONFLICTING, ("b", 0), ("a", 0), True)]
    # towards "any", "me" also covers the IPv6 local address: rule a still matches there
    found = conflicts(
        rule("a", SECURE, flt("me", "any")),
        rule("b", PERMIT, flt("10.0.0.1", "any")),
    )
    assert found == [(CONFLICTING, ("b", 0), ("a", 0), False)]


def test_dns_name_resolving_to_the_same_host_conflicts() -> None:
    resolve: dict[str, list[IpAddress]] = {"db.example": [ipaddress.ip_address("10.0.0.2")]}
    found = conflicts(
        rule("a", PERMIT, flt("me", "dns:db.example")),
        rule("b", BLOCK, flt("me", "10.0.0.2")),
        resolve=resolve,
    )
    assert found == [(CONFLICTING, ("b", 0), ("a", 0), True)]


def test_reversed_mirrored_filter_is_hidden_in_both_directions() -> None:
    found = conflicts(
        rule("out", PERMIT, flt("me", "10.0.0.2")),
        rule("in", SECURE, flt("10.0.0.2", "me")),
    )
    assert found == [(CONFLICTING, ("out", 0), ("in", 0), True)]


def test_partial_conflict_keeps_the_loser_alive() -> None:
    found = conflicts(
        rule("both-ways", PERMIT, flt("me", "10.0.0.2")),
        rule("one-way", BLOCK, flt("me", "10.0.0.2", mirrored=False)),
    )
    assert found == [(CONFLICTING, ("one-way", 0), ("both-ways", 0), False)]


def test_duplicate_filter_in_a_list_is_shadowed() -> None:
    found = conflicts(rule("r", SECURE, flt("me", "10.0.0.2", 17), flt("me", "10.0.0.2", 17)))
    assert found == [(SHADOWED, ("r", 0), ("r", 1), True)]


def test_same_action_in_a_later_rule_is_shadowed() -> None:
    found = conflicts(
        rule("first", SECURE, flt("me", "10.0.0.0/24")),
        rule("second", SECURE, flt("10.0.0.0/24", "me", mirrored=False)),
    )
    assert found == [(SHADOWED, ("first", 0), ("second", 0), True)]


def test_same_action_partial_overlap_is_not_reported() -> None:
    found = conflicts(
        rule("first", PERMIT, flt("me", "10.0.0.2", mirrored=False)),
        rule("second", PERMIT, flt("me", "10.0.0.2")),
    )
    assert found == []


def test_more_specific_override_is_not_a_conflict() -> None:
    found = conflicts(
        rule("lan", BLOCK, flt("me", "10.0.0.0/24")),
        rule("db", SECURE, flt("me", "10.0.0.2", 6)),
        rule("everyone", PERMIT, flt("any", "any")),
    )
    assert found == []


def test_a_symmetric_mirrored_filter_does_not_conflict_with_itself() -> None:
    assert conflicts(rule("lan", PERMIT, flt("10.0.0.0/24", "10.0.0.0/24"))) == []


def test_different_ports_do_not_conflict() -> None:
    web = Filter(Address.me(), Address.of("10.0.0.2"), 6, ANY_PORT, PortRange(443, 443))
    ssh = Filter(Address.me(), Address.of("10.0.0.2"), 6, ANY_PORT, PortRange(22, 22))
    assert conflicts(rule("web", PERMIT, web), rule("ssh", BLOCK, ssh)) == []


def test_unresolved_filters_are_not_conflicts() -> None:
    found = conflicts(
        rule("a", PERMIT, flt("me", "dns:gone.example")),
        rule("b", BLOCK, flt("me", "dns:gone.example")),
    )
    assert found == []


def test_conflict_names_both_filters() -> None:
    policy = Policy(
        "p",
        Local(LOCAL),
        KeyExchange(()),
        (rule("allow", PERMIT, flt("me", "10.0.0.2", 6)), rule("deny", BLOCK, flt("me", "10.0.0.2", 6))),
    )
    (found,) = find_conflicts(Spd(policy))
    assert isinstance(found, FilterConflict)
    assert str(found.selector) == "10.0.0.1/32 -> 10.0.0.2/32 protocol 6 ports any -> any"
    text = str(found)
    assert text.startswith("conflicting: rule 'allow' filter #0: me <-> 10.0.0.2 protocol 6")
    assert "loses to rule 'deny' filter #0" in text
    assert text.endswith("(it never matches)")


def test_large_policy_reports_exactly_the_planted_duplicates() -> None:
    hosts = [f"10.{i // 62500}.{i // 250 % 250}.{i % 250 + 1}" for i in range(20_000)]
    main = rule("paths", SECURE, *(flt("me", h, 6) for h in hosts))
    planted = rule("stale", PERMIT, *(flt(h, "me", 6) for h in hosts[::1000]))
    found = conflicts(main, planted)
    assert len(found) == 20
    assert all(kind is CONFLICTING and never for kind, _, _, never in found)
    assert [w for _, w, _, _ in found] == [("stale", i) for i in range(20)]
    assert [loser for _, _, loser, _ in found] == [("paths", i) for i in range(0, 20_000, 1000)]
