"""IKEv2 pseudorandom functions and ``prf+`` (RFC 7296 §2.13).

PRFs are HMAC with SHA-1 or SHA-2 (RFC 2104, RFC 4868), or AES-XCBC-PRF-128
(RFC 4434, built in :mod:`secpath.crypto.xcbc`); names are the keys of
:data:`secpath.crypto.registry.IKE_INTEGRITY` (``"sha1"``, ``"sha256"``,
``"sha384"``, ``"sha512"``, ``"aesxcbc"``), whose ``prf_iana_id`` is the
Transform Type 2 ID.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.hmac import HMAC

from secpath.crypto.registry import IKE_INTEGRITY
from secpath.crypto.xcbc import BLOCK as _XCBC_BYTES
from secpath.crypto.xcbc import AesXcbc, xcbc_prf, xcbc_prf_key
from secpath.errors import LocalError
from secpath.secret import Secret

__all__ = ["PRF_BY_IANA_ID", "prf", "prf_key_bytes", "prf_output_bytes", "prf_plus"]

# Transform Type 2 ID -> PRF name (RFC 7296 §3.3.2, RFC 4868 §4)
PRF_BY_IANA_ID: dict[int, str] = {i.prf_iana_id: i.name for i in IKE_INTEGRITY.values()}

# RFC 7296 §2.13: prf+ output is limited to 255 iterations
_MAX_PRF_PLUS_ROUNDS = 255


# HMAC PRFs: name -> hash name, one dict look-up on the hot path
_HMAC_HASH: dict[str, str] = {i.name: i.hash_name for i in IKE_INTEGRITY.values() if i.mac != "xcbc"}
# the same hashes for cryptography's HMAC, whose copy() stays in Rust (prf+)
_HASH_OBJECTS: dict[str, hashes.HashAlgorithm] = {
    "sha1": hashes.SHA1(),  # noqa: S303 (HMAC-SHA-1 PRF, RFC 7296 §3.3.2: legacy suites)
    "sha256": hashes.SHA256(), "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}
_PRF_PLUS_HASH: dict[str, hashes.HashAlgorithm] = {
    name: _HASH_OBJECTS[h] for name, h in _HMAC_HASH.items() if h in _HASH_OBJECTS}
# prf+ counter octets (RFC 7296 §2.13: 0x01 .. 0xff)
_COUNTER = [bytes((n,)) for n in range(_MAX_PRF_PLUS_ROUNDS + 1)]


def _hash_name(name: str) -> str:
    integ = IKE_INTEGRITY.get(name)
    if integ is None:
        raise LocalError(f"unknown PRF {name!r}; known: {sorted(IKE_INTEGRITY)}")
    return integ.hash_name


def _is_xcbc(name: str) -> bool:
    integ = IKE_INTEGRITY.get(name)
    return integ is not None and integ.mac == "xcbc"


def prf_output_bytes(name: str) -> int:
    """Output length of the PRF (the hash length for HMAC)."""
    if _is_xcbc(name):
        return _XCBC_BYTES  # RFC 4434 §2: 128 bits, and a 128-bit preferred key
    return hashlib.new(_hash_name(name)).digest_size


def prf_key_bytes(name: str) -> int:
    """Preferred key length of the PRF: SK_d, SK_pi and SK_pr have this length
    (RFC 7296 §2.14: "the preferred key length of the PRF")."""
    return prf_output_bytes(name)


def prf(name: str, key: Secret | bytes, data: bytes) -> bytes:
    """``prf(key, data)``: HMAC with the PRF's hash (RFC 7296 §2.13)."""
    raw = key.reveal() if isinstance(key, Secret) else key
    hash_name = _HMAC_HASH.get(name)
    if hash_name is not None:
        return hmac.digest(raw, data, hash_name)  # one-shot C path
    if _is_xcbc(name):
        return xcbc_prf(raw, data)
    raise LocalError(f"unknown PRF {name!r}; known: {sorted(IKE_INTEGRITY)}")


def prf_plus(name: str, key: Secret | bytes, seed: bytes, length: int) -> Secret:
    """``prf+(K, S)`` truncated to ``length`` bytes (RFC 7296 §2.13):
    ``T1 = prf(K, S | 0x01)``, ``Tn = prf(K, Tn-1 | S | n)``."""
    algorithm = _PRF_PLUS_HASH.get(name)
    if algorithm is None:
        if _is_xcbc(name):
            return _xcbc_prf_plus(name, key, seed, length)
        raise LocalError(f"unknown PRF {name!r}; known: {sorted(IKE_INTEGRITY)}")
    raw = key.reveal() if isinstance(key, Secret) else key
    # keyed once, copied per block: cryptography's HMAC copies in Rust, half
    # the cost of a one-shot hmac.digest (an OpenSSL digest fetch each) or
    # of copying a keyed hmac.HMAC (Python-level copy/update/digest)
    keyed = HMAC(raw, algorithm)
    mac = keyed.copy()
    mac.update(seed + b"\x01")
    block = mac.finalize()
    out = [block]
    got = len(block)
    counter = 2
    while got < length:
        if counter > _MAX_PRF_PLUS_ROUNDS:
            raise LocalError(f"prf+: {length} bytes exceed 255 rounds of {name}")
        mac = keyed.copy()
        mac.update(block + seed + _COUNTER[counter])
        block = mac.finalize()
        out.append(block)
        got += len(block)
        counter += 1
    return Secret(b"".join(out)[:length])


def _xcbc_prf_plus(name: str, key: Secret | bytes, seed: bytes, length: int) -> Secret:
    """``prf+`` with AES-XCBC-PRF-128: one keyed AES for every round."""
    raw = key.reveal() if isinstance(key, Secret) else key
    mac = AesXcbc(xcbc_prf_key(raw)).mac
    out = bytearray()
    block = b""
    for counter in range(1, _MAX_PRF_PLUS_ROUNDS + 1):
        if len(out) >= length:
            break
        block = mac(block + seed + bytes((counter,)))
        out += block
    if len(out) < length:
        raise LocalError(f"prf+: {length} bytes exceed 255 rounds of {name}")
    return Secret(bytes(out[:length]))
