"""SPD lookup: each specificity rule by name, mirrors, ``me``, DNS, IPv6, ports."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from secpath.errors import LocalError
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
from secpath.policy.spd import Direction, Spd, SpdMatch, UnresolvedReason

OUT, IN = Direction.OUTBOUND, Direction.INBOUND
TCP, UDP, ICMP = 6, 17, 1
LOCAL4 = ipaddress.ip_address("10.0.0.1")
LOCAL6 = ipaddress.ip_address("2001:db8::1")
BLOCK = FilterAction("block", Behavior.BLOCK)
PERMIT = FilterAction("permit", Behavior.PERMIT)
SECURE = FilterAction("secure", Behavior.NEGOTIATE, (SecurityMethod("aes128gcm", "none"),))
AUTH = (PskAuth(Path("/etc/secpath/psk")),)


def ip(text: str) -> IpAddress:
    return ipaddress.ip_address(text)


def addr(text: str) -> Address:
    if text == "me":
        return Address.me()
    if text == "any":
        return Address.any()
    if text.startswith("dns:"):
        return Address(AddressKind.DNS, dns_name=text[4:])
    return Address.of(text)


def flt(
    src: str,
    dst: str,
    protocol: int | None = None,
    sport: PortRange = ANY_PORT,
    dport: PortRange = ANY_PORT,
    *,
    mirrored: bool = True,
) -> Filter:
    return Filter(addr(src), addr(dst), protocol, sport, dport, mirrored)


def rule(name: str, action: FilterAction, *filters: Filter) -> Rule:
    auth = AUTH if action.behavior is Behavior.NEGOTIATE else ()
    return Rule(name, FilterList(f"{name}-list", filters), action, auth)


def spd(
    *rules: Rule,
    local: tuple[IpAddress, ...] = (LOCAL4, LOCAL6),
    resolve: dict[str, list[IpAddress]] | None = None,
) -> Spd:
    return Spd(Policy("test", Local(local), KeyExchange(()), rules), resolve)


def look(
    db: Spd,
    src: str,
    dst: str,
    protocol: int = ICMP,
    sport: int | None = None,
    dport: int | None = None,
    direction: Direction = OUT,
) -> SpdMatch | None:
    return db.lookup(ip(src), ip(dst), protocol, sport, dport, direction=direction)


def winner(
    db: Spd,
    src: str,
    dst: str,
    protocol: int = ICMP,
    sport: int | None = None,
    dport: int | None = None,
    direction: Direction = OUT,
) -> str | None:
    m = look(db, src, dst, protocol, sport, dport, direction)
    return None if m is None else m.rule.name


def port(n: int, m: int | None = None) -> PortRange:
    return PortRange(n, n if m is None else m)


# ---- specificity order, one rule at a time -------------------------------------------------


def test_order_longer_prefix_sum_wins() -> None:
    db = spd(
        rule("any", BLOCK, flt("any", "any")),
        rule("subnet", BLOCK, flt("10.0.0.0/24", "10.0.0.0/24")),
        rule("host", PERMIT, flt("10.0.0.1", "10.0.0.2")),
    )
    assert winner(db, "10.0.0.1", "10.0.0.2") == "host"
    assert winner(db, "10.0.0.1", "10.0.0.3") == "subnet"
    assert winner(db, "10.0.0.1", "10.9.9.9") == "any"


def test_order_compares_the_sum_not_the_source_first() -> None:
    db = spd(
        rule("src-host", BLOCK, flt("10.0.0.1", "10.0.0.0/16")),  # 32 + 16
        rule("dst-host", PERMIT, flt("10.0.0.0/24", "10.0.0.2")),  # 24 + 32
    )
    assert winner(db, "10.0.0.1", "10.0.0.2") == "dst-host"


def test_order_specific_protocol_beats_any_protocol_at_equal_prefixes() -> None:
    db = spd(
        rule("any-proto", BLOCK, flt("10.0.0.1", "10.0.0.2")),
        rule("tcp", PERMIT, flt("10.0.0.1", "10.0.0.2", TCP)),
    )
    assert winner(db, "10.0.0.1", "10.0.0.2", TCP, 1000, 80) == "tcp"
    assert winner(db, "10.0.0.1", "10.0.0.2", UDP, 1000, 80) == "any-proto"


def test_order_prefixes_come_before_protocol() -> None:
    db = spd(
        rule("subnet-tcp", PERMIT, flt("10.0.0.0/24", "10.0.0.2", TCP)),
        rule("host-any", BLOCK, flt("10.0.0.1", "10.0.0.2")),
    )
    assert winner(db, "10.0.0.1", "10.0.0.2", TCP, 1000, 80) == "host-any"


def test_order_narrower_ports_win() -> None:
    db = spd(
        rule("tcp-any", BLOCK, flt("me", "10.0.0.2", TCP)),
        rule("low-ports", BLOCK, flt("me", "10.0.0.2", TCP, ANY_PORT, port(0, 1023))),
        rule("https", PERMIT, flt("me", "10.0.0.2", TCP, ANY_PORT, port(443))),
    )
    assert winner(db, "10.0.0.1", "10.0.0.2", TCP, 5000, 443) == "https"
    assert winner(db, "10.0.0.1", "10.0.0.2", TCP, 5000, 80) == "low-ports"
    assert winner(db, "10.0.0.1", "10.0.0.2", TCP, 5000, 8080) == "tcp-any"


def test_order_ports_count_the_pairs_covered() -> None:
    # 2 x 65536 pairs against 65536 x 3: the two source ports are narrower
    db = spd(
        rule("dst-3", PERMIT, flt("me", "10.0.0.2", UDP, ANY_PORT, port(1, 3))),
        rule("src-2", BLOCK, flt("me", "10.0.0.2", UDP, port(500, 501), ANY_PORT)),
    )
    assert winner(db, "10.0.0.1", "10.0.0.2", UDP, 500, 2) == "src-2"


def test_order_protocol_comes_before_ports() -> None:
    db = spd(
        rule("tcp", BLOCK, flt("me", "10.0.0.2", TCP)),
        rule("any-proto", PERMIT, flt("me", "10.0.0.2")),
    )
    assert winner(db, "10.0.0.1", "10.0.0.2", TCP, 1, 2) == "tcp"


def test_order_block_before_permit_before_negotiate() -> None:
    same = flt("me", "10.0.0.2", TCP)
    db = spd(rule("secure", SECURE, same), rule("permit", PERMIT, same), rule("block", BLOCK, same))
    assert winner(db, "10.0.0.1", "10.0.0.2", TCP, 1, 2) == "block"
    db = spd(rule("secure", SECURE, same), rule("permit", PERMIT, same))
    assert winner(db, "10.0.0.1", "10.0.0.2", TCP, 1, 2) == "permit"


def test_order_behaviour_only_breaks_ties_of_specificity() -> None:
    db = spd(
        rule("block-subnet", BLOCK, flt("me", "10.0.0.0/24")),
        rule("secure-host", SECURE, flt("me", "10.0.0.2")),
    )
    assert winner(db, "10.0.0.1", "10.0.0.2") == "secure-host"


def test_order_rule_order_breaks_remaining_ties() -> None:
    other_permit = FilterAction("permit-2", Behavior.PERMIT)
    same = flt("me", "10.0.0.2")
    db = spd(rule("first", other_permit, same), rule("second", PERMIT, same))
    assert winner(db, "10.0.0.1", "10.0.0.2") == "first"


def test_order_filter_order_within_a_list() -> None:
    db = spd(rule("r", PERMIT, flt("me", "10.0.0.2"), flt("10.0.0.1", "10.0.0.2")))
    m = look(db, "10.0.0.1", "10.0.0.2")
    assert m is not None
    assert m.filter_index == 0
    assert m.filter.source == Address.me()


def test_order_direct_before_mirror() -> None:
    db = spd(rule("lan", PERMIT, flt("10.0.0.0/24", "10.0.0.0/24")))
    m = look(db, "10.0.0.1", "10.0.0.2")
    assert m is not None
    assert not m.mirrored


def test_order_earlier_rule_mirror_beats_later_rule_direct() -> None:
    db = spd(
        rule("early", PERMIT, flt("10.0.0.2", "me")),
        rule("late", FilterAction("permit-2", Behavior.PERMIT), flt("me", "10.0.0.2")),
    )
    m = look(db, "10.0.0.1", "10.0.0.2")
    assert m is not None
    assert (m.rule.name, m.mirrored) == ("early", True)


# ---- mirrored filters ---------------------------------------------------------------------


def test_mirrored_filter_matches_both_directions() -> None:
    db = spd(rule("r", SECURE, flt("me", "10.0.0.2", TCP, ANY_PORT, port(443))))
    out = look(db, "10.0.0.1", "10.0.0.2", TCP, 50000, 443, OUT)
    back = look(db, "10.0.0.2", "10.0.0.1", TCP, 443, 50000, IN)
    assert out is not None
    assert back is not None
    assert (out.mirrored, back.mirrored) == (False, True)
    assert out.filter is back.filter


def test_mirror_swaps_the_ports_too() -> None:
    db = spd(rule("r", SECURE, flt("me", "10.0.0.2", TCP, ANY_PORT, port(443))))
    assert look(db, "10.0.0.2", "10.0.0.1", TCP, 50000, 443, IN) is None


def test_unmirrored_filter_matches_one_direction_only() -> None:
    db = spd(rule("r", BLOCK, flt("me", "10.0.0.2", mirrored=False)))
    assert winner(db, "10.0.0.1", "10.0.0.2") == "r"
    assert winner(db, "10.0.0.2", "10.0.0.1", direction=IN) is None


# ---- me, DNS, families --------------------------------------------------------------------


def test_me_resolves_to_every_local_address() -> None:
    db = spd(rule("r", PERMIT, flt("me", "any", mirrored=False)))
    assert winner(db, "10.0.0.1", "192.0.2.7") == "r"
    assert winner(db, "2001:db8::1", "2001:db8::99") == "r"
    assert winner(db, "10.0.0.9", "192.0.2.7") is None


def test_me_counts_as_a_host_address() -> None:
    db = spd(
        rule("explicit-subnet", BLOCK, flt("10.0.0.0/24", "10.0.0.2")),
        rule("me", PERMIT, flt("me", "10.0.0.2")),
    )
    assert winner(db, "10.0.0.1", "10.0.0.2") == "me"


def test_me_without_local_address_is_reported_and_never_matches() -> None:
    db = spd(rule("r", PERMIT, flt("me", "any")), local=())
    assert winner(db, "10.0.0.1", "10.0.0.2") is None
    assert [u.reason for u in db.unresolved] == [UnresolvedReason.NO_LOCAL_ADDRESS]


def test_dns_name_resolves_through_the_injected_mapping() -> None:
    resolve: dict[str, list[IpAddress]] = {"DB.Example.": [ip("10.0.0.2"), ip("2001:db8::2")]}
    db = spd(rule("r", SECURE, flt("me", "dns:db.example")), resolve=resolve)
    assert winner(db, "10.0.0.1", "10.0.0.2") == "r"
    assert winner(db, "2001:db8::2", "2001:db8::1", direction=IN) == "r"
    assert winner(db, "10.0.0.1", "10.0.0.3") is None
    assert db.unresolved == ()
    # the filter's spelling of the name is normalised the same way
    db = spd(rule("r", SECURE, flt("me", "dns:WEB.example.")), resolve={"web.example": [ip("10.0.1.5")]})
    assert winner(db, "10.0.0.1", "10.0.1.5") == "r"


def test_unresolved_dns_filter_is_reported_and_never_matches() -> None:
    db = spd(rule("r", PERMIT, flt("dns:gone.example", "any"), flt("me", "10.0.0.2")))
    assert [(u.ref.filter_index, u.reason) for u in db.unresolved] == [(0, UnresolvedReason.DNS_NAME)]
    assert "gone.example" in db.unresolved[0].detail
    assert winner(db, "10.0.0.7", "10.0.0.2") is None
    assert winner(db, "10.0.0.1", "10.0.0.2") == "r"


def test_mixed_family_filter_is_reported() -> None:
    db = spd(rule("r", PERMIT, flt("10.0.0.1", "2001:db8::2")))
    assert [u.reason for u in db.unresolved] == [UnresolvedReason.FAMILY_MISMATCH]


def test_ipv6_longest_prefixes_win() -> None:
    db = spd(
        rule("site", BLOCK, flt("2001:db8::/32", "2001:db8::/32")),
        rule("lan", BLOCK, flt("2001:db8::/64", "2001:db8::/64")),
        rule("host", SECURE, flt("me", "2001:db8::2")),
    )
    assert winner(db, "2001:db8::1", "2001:db8::2") == "host"
    assert winner(db, "2001:db8::1", "2001:db8::3") == "lan"
    assert winner(db, "2001:db8::1", "2001:db8:1::3") == "site"
    assert winner(db, "2001:db9::1", "2001:db8::2") is None


def test_families_do_not_mix_but_any_matches_both() -> None:
    db = spd(rule("v4", BLOCK, flt("0.0.0.0/0", "0.0.0.0/0")), rule("any", PERMIT, flt("any", "any")))
    assert winner(db, "10.0.0.1", "10.0.0.2") == "v4"
    assert winner(db, "2001:db8::1", "2001:db8::2") == "any"


# ---- ports and packet validation ----------------------------------------------------------


def test_port_filters_match_only_their_protocol() -> None:
    db = spd(rule("r", PERMIT, flt("me", "10.0.0.2", TCP, ANY_PORT, port(53))))
    assert winner(db, "10.0.0.1", "10.0.0.2", TCP, 1000, 53) == "r"
    assert winner(db, "10.0.0.1", "10.0.0.2", UDP, 1000, 53) is None


def test_ports_are_refused_for_protocols_other_than_tcp_and_udp() -> None:
    db = spd(rule("r", PERMIT, flt("me", "any")))
    with pytest.raises(LocalError, match="no ports"):
        look(db, "10.0.0.1", "10.0.0.2", ICMP, 1, None)
    assert winner(db, "10.0.0.1", "10.0.0.2", ICMP) == "r"


def test_opaque_ports_match_only_any_port_ranges() -> None:
    # RFC 4301 §4.4.1.1: unknown (OPAQUE) ports match only ANY
    db = spd(
        rule("https", BLOCK, flt("me", "10.0.0.2", TCP, ANY_PORT, port(443))),
        rule("tcp", PERMIT, flt("me", "10.0.0.2", TCP)),
    )
    assert winner(db, "10.0.0.1", "10.0.0.2", TCP, None, None) == "tcp"
    assert winner(db, "10.0.0.1", "10.0.0.2", TCP, 1000, 443) == "https"


@pytest.mark.parametrize(
    ("src", "dst", "protocol", "sport", "dport", "message"),
    [
        ("10.0.0.1", "2001:db8::2", ICMP, None, None, "different families"),
        ("10.0.0.1", "10.0.0.2", 256, None, None, "protocol"),
        ("10.0.0.1", "10.0.0.2", -1, None, None, "protocol"),
        ("10.0.0.1", "10.0.0.2", TCP, 65536, 1, "ports"),
        ("10.0.0.1", "10.0.0.2", UDP, 1, -1, "ports"),
    ],
)
def test_bad_packets_are_refused(
    src: str, dst: str, protocol: int, sport: int | None, dport: int | None, message: str
) -> None:
    db = spd(rule("r", PERMIT, flt("any", "any")))
    with pytest.raises(LocalError, match=message):
        look(db, src, dst, protocol, sport, dport)


def test_addresses_must_be_ip_addresses() -> None:
    db = spd(rule("r", PERMIT, flt("any", "any")))
    with pytest.raises(LocalError, match="IP addresses"):
        db.lookup("10.0.0.1", ip("10.0.0.2"), ICMP, None, None, direction=OUT)  # type: ignore[arg-type]
    with pytest.raises(LocalError, match="Direction"):
        db.lookup(ip("10.0.0.1"), ip("10.0.0.2"), ICMP, None, None, direction="out")  # type: ignore[arg-type]


# ---- the match record and the direction ---------------------------------------------------


def test_match_names_rule_filter_and_action() -> None:
    target = flt("me", "10.0.0.2", TCP)
    db = spd(rule("other", BLOCK, flt("me", "10.0.0.9")), rule("r", SECURE, flt("any", "any"), target))
    m = look(db, "10.0.0.1", "10.0.0.2", TCP, 1, 2)
    assert m is not None
    assert (m.rule.name, m.rule_index, m.filter_index) == ("r", 1, 1)
    assert m.filter is target
    assert (m.filter_action, m.behavior, m.direction) == (SECURE, Behavior.NEGOTIATE, OUT)


def test_no_matching_filter_gives_none() -> None:
    db = spd(rule("r", SECURE, flt("me", "10.0.0.2")))
    assert look(db, "10.0.0.1", "10.0.0.3") is None
    assert spd().lookup(LOCAL4, ip("10.0.0.2"), ICMP, None, None, direction=OUT) is None


@pytest.mark.parametrize(
    ("action", "outbound", "inbound"),
    [
        (PERMIT, True, True),
        (BLOCK, False, False),
        (SECURE, False, False),
        (
            FilterAction(
                "accept-in", Behavior.NEGOTIATE, SECURE.security_methods, accept_unsecured_inbound=True
            ),
            False,
            True,
        ),
        (
            FilterAction(
                "fallback", Behavior.NEGOTIATE, SECURE.security_methods, allow_unsecured_fallback=True
            ),
            True,
            True,
        ),
    ],
)
def test_direction_decides_cleartext_but_not_the_winner(
    action: FilterAction, outbound: bool, inbound: bool
) -> None:
    db = spd(rule("r", action, flt("me", "10.0.0.2")))
    out = look(db, "10.0.0.1", "10.0.0.2", direction=OUT)
    back = look(db, "10.0.0.2", "10.0.0.1", direction=IN)
    assert out is not None
    assert back is not None
    assert (out.filter_action, back.filter_action) == (action, action)
    assert (out.direction, back.direction) == (OUT, IN)
    assert (out.cleartext_allowed, back.cleartext_allowed) == (outbound, inbound)
    # the same packet looked up the other way round picks the same filter
    same = look(db, "10.0.0.1", "10.0.0.2", direction=IN)
    assert same is not None
    assert (same.filter, same.mirrored) == (out.filter, out.mirrored)


def test_many_host_filters_each_find_their_own_rule() -> None:
    rules = [
        rule(f"r{i}", PERMIT if i % 2 else SECURE, flt("me", f"10.1.{i // 250}.{i % 250 + 1}"))
        for i in range(1000)
    ]
    db = spd(*rules, rule("rest", BLOCK, flt("me", "10.1.0.0/16")))
    for i in range(0, 1000, 37):
        assert winner(db, f"10.1.{i // 250}.{i % 250 + 1}", "10.0.0.1", direction=IN) == f"r{i}"
    assert winner(db, "10.1.200.1", "10.0.0.1", direction=IN) == "rest"
