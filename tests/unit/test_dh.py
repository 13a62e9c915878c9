"""secpath.crypto.dh: every IKEv2 group agrees, bad peer values are refused."""

from __future__ import annotations

import os

import pytest

from secpath.crypto.dh import _MODP_PRIMES, generate_dh, ke_data_bytes, supported_dh_groups
from secpath.errors import LocalError, ParseError

FAST_GROUPS = [5, 14, 15, 16, 19, 20, 21, 31]


@pytest.mark.parametrize("group", [2, *FAST_GROUPS])
def test_both_sides_agree(group: int) -> None:
    a = generate_dh(group, os.urandom)
    b = generate_dh(group, os.urandom)
    assert len(a.public_bytes) == ke_data_bytes(group)
    shared = a.shared_secret(b.public_bytes)
    assert shared == b.shared_secret(a.public_bytes)
    # RFC 7296 §3.4 / RFC 5903 §7 / RFC 8031 §2.2: fixed-length secret
    expected = {19: 32, 20: 48, 21: 66, 31: 32}.get(group, ke_data_bytes(group))
    assert len(shared) == expected


def test_rng_makes_keys_reproducible() -> None:
    for group in (14, 19, 31):
        seed = os.urandom(80)

        def rng(n: int, seed: bytes = seed) -> bytes:
            return seed[:n]

        assert generate_dh(group, rng).public_bytes == generate_dh(group, rng).public_bytes


def test_group1_refused_unless_allowed() -> None:
    with pytest.raises(LocalError, match="group 1"):
        generate_dh(1, os.urandom)
    a = generate_dh(1, os.urandom, allow_group1=True)
    b = generate_dh(1, os.urandom, allow_group1=True)
    assert a.shared_secret(b.public_bytes) == b.shared_secret(a.public_bytes)


def test_unknown_group_refused() -> None:
    with pytest.raises(LocalError):
        generate_dh(3, os.urandom)
    with pytest.raises(LocalError):
        ke_data_bytes(99)
    assert set(supported_dh_groups()) == {1, 2, 5, 14, 15, 16, 19, 20, 21, 31}


def test_modp_primes_match_scapy() -> None:
    """The RFC 2409 / RFC 3526 primes, cross-checked with scapy's copy."""
    from scapy.layers.tls.crypto import groups

    for number, cls in [(1, groups.modp768), (2, groups.modp1024), (5, groups.modp1536),
                        (14, groups.modp2048), (15, groups.modp3072), (16, groups.modp4096)]:
        assert _MODP_PRIMES[number] == cls.m, number  # type: ignore[attr-defined]


@pytest.mark.parametrize("group", FAST_GROUPS)
def test_wrong_length_is_parse_error(group: int) -> None:
    key = generate_dh(group, os.urandom)
    for peer in (b"", key.public_bytes[:-1], key.public_bytes + b"\x00"):
        with pytest.raises(ParseError):
            key.shared_secret(peer)


@pytest.mark.parametrize("group", [5, 14])
def test_modp_degenerate_values_refused(group: int) -> None:
    # RFC 6989 §2.1: 1 < y < p - 1
    key = generate_dh(group, os.urandom)
    size = ke_data_bytes(group)
    prime = _MODP_PRIMES[group]
    for y in (0, 1, prime - 1, prime, 2**(8 * size) - 1):
        with pytest.raises(ParseError):
            key.shared_secret(y.to_bytes(size, "big"))


@pytest.mark.parametrize("group", [19, 20, 21])
def test_ecp_point_off_the_curve_refused(group: int) -> None:
    key = generate_dh(group, os.urandom)
    peer = bytearray(generate_dh(group, os.urandom).public_bytes)
    peer[-1] ^= 1
    with pytest.raises(ParseError):
        key.shared_secret(bytes(peer))
    with pytest.raises(ParseError):
        key.shared_secret(bytes(len(peer)))


def test_x25519_low_order_point_refused() -> None:
    # RFC 8031 §2.3 / RFC 7748 §6.1: an all-zero output must be rejected
    key = generate_dh(31, os.urandom)
    with pytest.raises(ParseError):
        key.shared_secret(bytes(32))


def test_repr_shows_no_key_material() -> None:
    key = generate_dh(31, os.urandom)
    assert repr(key) == "DhPrivateKey(group=31)"
    assert key.public_bytes.hex() not in repr(key)


def test_ke_data_lengths_follow_the_registry() -> None:
    """RFC 7296 §3.4 (MODP: the prime's length), RFC 5903 §7 (ECP: x | y),
    RFC 8031 §2 (Curve25519: 32 bytes)."""
    from secpath.crypto.registry import DH_GROUPS

    for number in supported_dh_groups():
        group = DH_GROUPS[number]
        size = (group.bits + 7) // 8
        expected = {"modp": size, "ecp": 2 * size, "curve25519": 32}[group.kind]
        assert ke_data_bytes(number) == expected, number
