"""IKEv2 pseudorandom functions and ``prf+`` (RFC 7296 §2.13).

PRFs are HMAC with SHA-1 or SHA-2 (RFC 2104, RFC 4868); names are the hash
names of :data:`secpath.crypto.registry.IKE_INTEGRITY` (``"sha1"``,
``"sha256"``, ``"sha384"``, ``"sha512"``), whose ``prf_iana_id`` is the
Transform Type 2 ID.  AES-XCBC-PRF-128 is not provided (no OpenSSL primitive
in ``cryptography``; it would need a hand-written mode).
"""

from __future__ import annotations

import hashlib
import hmac

from secpath.crypto.registry import IKE_INTEGRITY
from secpath.errors import LocalError
from secpath.secret import Secret

__all__ = ["PRF_BY_IANA_ID", "prf", "prf_key_bytes", "prf_output_bytes", "prf_plus"]

# Transform Type 2 ID -> PRF name (RFC 7296 §3.3.2, RFC 4868 §4)
PRF_BY_IANA_ID: dict[int, str] = {i.prf_iana_id: i.name for i in IKE_INTEGRITY.values()}

# RFC 7296 §2.13: prf+ output is limited to 255 iterations
_MAX_PRF_PLUS_ROUNDS = 255


def _hash_name(name: str) -> str:
    integ = IKE_INTEGRITY.get(name)
    if integ is None:
        raise LocalError(f"unknown PRF {name!r}; known: {sorted(IKE_INTEGRITY)}")
    return integ.hash_name


def prf_output_bytes(name: str) -> int:
    """Output length of the PRF (the hash length for HMAC)."""
    return hashlib.new(_hash_name(name)).digest_size


def prf_key_bytes(name: str) -> int:
    """Preferred key length of the PRF: SK_d, SK_pi and SK_pr have this length
    (RFC 7296 §2.14: "the preferred key length of the PRF")."""
    return prf_output_bytes(name)


def prf(name: str, key: Secret | bytes, data: bytes) -> bytes:
    """``prf(key, data)``: HMAC with the PRF's hash (RFC 7296 §2.13)."""
    raw = key.reveal() if isinstance(key, Secret) else key
    return hmac.digest(raw, data, _hash_name(name))


def prf_plus(name: str, key: Secret | bytes, seed: bytes, length: int) -> Secret:
    """``prf+(K, S)`` truncated to ``length`` bytes (RFC 7296 §2.13):
    ``T1 = prf(K, S | 0x01)``, ``Tn = prf(K, Tn-1 | S | n)``."""
    hash_name = _hash_name(name)
    raw = key.reveal() if isinstance(key, Secret) else key
    keyed = hmac.new(raw, digestmod=hash_name)  # keyed once, copied per block
    out = bytearray()
    block = b""
    counter = 1
    while len(out) < length:
        if counter > _MAX_PRF_PLUS_ROUNDS:
            raise LocalError(f"prf+: {length} bytes exceed 255 rounds of {name}")
        mac = keyed.copy()
        mac.update(block + seed + bytes((counter,)))
        block = mac.digest()
        out += block
        counter += 1
    return Secret(bytes(out[:length]))
