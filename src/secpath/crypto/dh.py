"""Diffie-Hellman for IKEv2 key exchange (RFC 7296 §3.4).

Groups 2, 5, 14, 15, 16 are MODP (RFC 2409 §6.2, RFC 3526), 19, 20, 21 are
ECP with the KE data ``x || y`` (RFC 5903 §7), 31 is X25519 (RFC 8031 §2,
RFC 7748).  Group 1 (768-bit MODP) is refused unless ``allow_group1`` is set.

Peer MODP values are loaded through a DER SubjectPublicKeyInfo
(``load_der_public_key``), not ``DHPublicNumbers``.  OpenSSL recognises the
RFC 3526 groups (5, 14, 15, 16) by their prime and loads them in microseconds;
for group 2 (RFC 2409) it still checks the prime on every load (~50 ms here),
which is a cost of the legacy group.

Private keys come from the injected ``rng`` so a handshake can be replayed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.utils import CryptographyDeprecationWarning

from secpath.crypto.registry import DH_GROUPS
from secpath.errors import LocalError, ParseError
from secpath.secret import Secret

with warnings.catch_warnings():
    # FFDH is deprecated in ``cryptography``; IKEv2 still needs MODP groups
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from cryptography.hazmat.primitives.asymmetric import dh

    _DHPrivateKey = dh.DHPrivateKey
    _DHPublicKey = dh.DHPublicKey

__all__ = ["DhPrivateKey", "generate_dh", "ke_data_bytes", "supported_dh_groups"]

Rng = Callable[[int], bytes]


def _p(*lines: str) -> int:
    return int("".join(lines), 16)


# RFC 2409 §6.1-6.2 (groups 1, 2), RFC 3526 §2-5 (groups 5, 14, 15, 16); generator 2
_MODP_PRIMES: dict[int, int] = {
    1: _p(
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
        "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
        "4FE1356D6D51C245E485B576625E7EC6F44C42E9A63A3620FFFFFFFFFFFFFFFF"
    ),
    2: _p(
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
        "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
        "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF"
    ),
    5: _p(
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
        "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
        "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
        "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
        "9ED529077096966D670C354E4ABC9804F1746C08CA237327FFFFFFFFFFFFFFFF"
    ),
    14: _p(
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
        "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
        "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
        "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
        "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
        "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
        "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF"
    ),
    15: _p(
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
        "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
        "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
        "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
        "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
        "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
        "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33"
        "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
        "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864"
        "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2"
        "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF"
    ),
    16: _p(
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
        "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
        "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
        "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
        "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
        "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
        "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33"
        "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
        "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864"
        "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2"
        "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7"
        "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8"
        "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2"
        "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9"
        "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF"
    ),
}

_CURVES: dict[int, ec.EllipticCurve] = {
    19: ec.SECP256R1(),  # RFC 5903 §3.1
    20: ec.SECP384R1(),  # RFC 5903 §3.2
    21: ec.SECP521R1(),  # RFC 5903 §3.3
}

# PKCS #3 dhKeyAgreement, 1.2.840.113549.1.3.1
_OID_DH_KEY_AGREEMENT = bytes.fromhex("06092a864886f70d010301")

# Private exponent length in bytes: at least twice the group's strength
# (RFC 3526 §8 estimates; NIST SP 800-56A rev 3 §5.6.1.1.1).  Shorter
# exponents make the modular exponentiation proportionally cheaper.
_MODP_EXPONENT_BYTES = {1: 32, 2: 32, 5: 32, 14: 32, 15: 48, 16: 64}
_ECP_DRAWS = 64  # a draw fails with probability < 2^-32 for P-256, far less for the others


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes((tag, n)) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + body


def _der_uint(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def supported_dh_groups() -> tuple[int, ...]:
    """Every Transform Type 4 ID :func:`generate_dh` accepts (group 1 needs
    ``allow_group1``)."""
    return (*sorted(_MODP_PRIMES), *sorted(_CURVES), 31)


def ke_data_bytes(group: int) -> int:
    """Length of the Key Exchange Data for ``group`` (RFC 7296 §3.4: the
    MODP value is zero-padded to the prime's length; RFC 5903 §7; RFC 8031 §2)."""
    if group in _MODP_PRIMES:
        return (_MODP_PRIMES[group].bit_length() + 7) // 8
    if group in _CURVES:
        return 2 * ((_CURVES[group].key_size + 7) // 8)
    if group == 31:
        return 32
    raise LocalError(f"unsupported DH group {group}")


@dataclass(frozen=True, slots=True, repr=False)
class DhPrivateKey:
    """Our half of one key exchange.  ``public_bytes`` goes into the KE payload;
    :meth:`shared_secret` takes the peer's KE data and returns g^ir."""

    group: int
    _key: _DHPrivateKey | ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey
    public_bytes: bytes

    def __repr__(self) -> str:
        return f"DhPrivateKey(group={self.group})"

    def shared_secret(self, peer: bytes) -> Secret:
        """The DH shared secret g^ir (RFC 7296 §2.14), zero-padded to the
        group's length for MODP (§3.4), the x coordinate for ECP (RFC 5903
        §7), the X25519 output (RFC 8031 §2.2).

        Raises :class:`ParseError` (INVALID_SYNTAX) when the peer's value has
        the wrong length or is not a valid element of the group.
        """
        expected = ke_data_bytes(self.group)
        if len(peer) != expected:
            raise ParseError(
                f"KE data for group {self.group} is {len(peer)} bytes, expected {expected}"
            )
        key = self._key
        try:
            if isinstance(key, _DHPrivateKey):
                return Secret(_modp_exchange(self.group, key, peer))
            if isinstance(key, ec.EllipticCurvePrivateKey):
                point = ec.EllipticCurvePublicKey.from_encoded_point(key.curve, b"\x04" + peer)
                return Secret(key.exchange(ec.ECDH(), point))
            x_peer = x25519.X25519PublicKey.from_public_bytes(peer)
            return Secret(key.exchange(x_peer))  # rejects the all-zero output (RFC 8031 §2.3)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ParseError(f"invalid KE data for group {self.group}") from exc


def _modp_exchange(group: int, key: _DHPrivateKey, peer: bytes) -> bytes:
    prime = _MODP_PRIMES[group]
    y = int.from_bytes(peer, "big")
    # RFC 6989 §2.1: 1 < y < p - 1
    if not 1 < y < prime - 1:
        raise ParseError(f"KE data for group {group} is out of range")
    # SubjectPublicKeyInfo { AlgorithmIdentifier, BIT STRING { INTEGER y } }
    spki = _der(0x30, _der(0x30, _dh_algorithm(prime)) + _der(0x03, b"\x00" + _der_uint(y)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        peer_key = serialization.load_der_public_key(spki)
    if not isinstance(peer_key, _DHPublicKey):
        raise ParseError(f"KE data for group {group} did not load as a DH key")
    return key.exchange(peer_key).rjust(len(peer), b"\x00")


@cache
def _dh_algorithm(prime: int) -> bytes:
    # AlgorithmIdentifier body: OID dhKeyAgreement + PKCS #3 DHParameter {p, g}
    return _OID_DH_KEY_AGREEMENT + _der(0x30, _der_uint(prime) + _der_uint(2))


def generate_dh(group: int, rng: Rng, *, allow_group1: bool = False) -> DhPrivateKey:
    """A fresh private key for ``group``, its secret drawn from ``rng``.

    Raises :class:`LocalError` for an unsupported group, and for group 1
    unless ``allow_group1`` (DESIGN.md, security defaults).
    """
    if group == 1 and not allow_group1:
        raise LocalError("DH group 1 (modp768) is refused unless explicitly allowed")
    if group not in DH_GROUPS:
        raise LocalError(f"unknown DH group {group}")
    if group in _MODP_PRIMES:
        prime = _MODP_PRIMES[group]
        size = _MODP_EXPONENT_BYTES[group]
        x = int.from_bytes(rng(size), "big") | 1 << (8 * size)  # never 0, full length
        # PKCS #8 PrivateKeyInfo with the exponent; OpenSSL computes g^x mod p
        pkcs8 = _der(0x30, _der_uint(0) + _der(0x30, _dh_algorithm(prime))
                     + _der(0x04, _der_uint(x)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            key = serialization.load_der_private_key(pkcs8, None)
        if not isinstance(key, _DHPrivateKey):
            raise LocalError("OpenSSL did not load a DH private key")
        y = key.public_key().public_numbers().y
        return DhPrivateKey(group, key, y.to_bytes(ke_data_bytes(group), "big"))
    if group in _CURVES:
        curve = _CURVES[group]
        size = (curve.key_size + 7) // 8
        # RFC 5903 §7 / FIPS 186-4 B.4.2 (testing candidates): a scalar of the
        # curve's bit length, drawn again while OpenSSL rejects it (0 or >= order)
        mask = (1 << curve.key_size) - 1
        for _ in range(_ECP_DRAWS):
            scalar = int.from_bytes(rng(size), "big") & mask
            try:
                ec_key = ec.derive_private_key(scalar, curve)
                break
            except ValueError:
                continue
        else:
            raise LocalError("rng gave no valid ECP private key")
        point = ec_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return DhPrivateKey(group, ec_key, point[1:])  # RFC 5903 §7: x || y, no 0x04
    if group == 31:
        x_key = x25519.X25519PrivateKey.from_private_bytes(rng(32))
        raw = x_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return DhPrivateKey(group, x_key, raw)
    raise LocalError(f"unsupported DH group {group}")
