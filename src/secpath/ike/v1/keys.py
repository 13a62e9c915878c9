"""IKEv1 keying (RFC 2409 §5 and Appendix B).

* SKEYID for pre-shared keys and for signatures, SKEYID_d/_a/_e.
* The phase-1 encryption key (expanded when SKEYID_e is too short) and the
  CBC IV chain: phase 1 continues from the last ciphertext block, each
  quick mode and informational exchange starts from
  ``hash(last phase-1 block | M-ID)``.
* HASH_I / HASH_R, the quick-mode HASH(1..3), informational HASH(1).
* Quick-mode KEYMAT, expanded as ``K1 | K2 | ...`` (§5.5).

The PRF is HMAC with the negotiated hash (``secpath.crypto.prf``); the
ciphers are ``cryptography``'s CBC.  Keys are :class:`Secret`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from secpath.crypto.prf import prf
from secpath.crypto.registry import IKE_ENCRYPTION, IKE_INTEGRITY
from secpath.errors import LocalError, ParseError
from secpath.secret import Secret

__all__ = [
    "IkeV1KeyMaterial",
    "Phase1Cipher",
    "Phase1Keys",
    "derive_phase1",
    "expand_key",
    "hash_i",
    "hash_r",
    "initial_iv",
    "phase2_iv",
    "quick_keymat",
    "skeyid_psk",
    "skeyid_signature",
]


def skeyid_psk(prf_name: str, psk: Secret, ni: bytes, nr: bytes) -> Secret:
    """RFC 2409 §5: ``SKEYID = prf(pre-shared-key, Ni_b | Nr_b)``."""
    return Secret(prf(prf_name, psk, ni + nr))


def skeyid_signature(prf_name: str, ni: bytes, nr: bytes, gxy: Secret) -> Secret:
    """RFC 2409 §5: ``SKEYID = prf(Ni_b | Nr_b, g^xy)``."""
    return Secret(prf(prf_name, ni + nr, gxy.reveal()))


def expand_key(prf_name: str, skeyid_e: Secret, length: int) -> Secret:
    """RFC 2409 Appendix B: ``Ka = K1 | K2 | ...``, ``K1 = prf(SKEYID_e, 0)``,
    ``Kn = prf(SKEYID_e, Kn-1)`` when SKEYID_e is shorter than the key."""
    raw = skeyid_e.reveal()
    if len(raw) >= length:
        return Secret(raw[:length])
    out = bytearray()
    block = b"\x00"
    while len(out) < length:
        block = prf(prf_name, skeyid_e, block)
        out += block
    return Secret(bytes(out[:length]))


@dataclass(frozen=True, slots=True, repr=False)
class Phase1Keys:
    skeyid: Secret
    skeyid_d: Secret
    skeyid_a: Secret
    skeyid_e: Secret
    encryption_key: Secret

    def __repr__(self) -> str:
        return "Phase1Keys(<secret>)"


@dataclass(frozen=True, slots=True, repr=False)
class IkeV1KeyMaterial:
    """One ISAKMP SA's initiator cookie and encryption key: what Wireshark's
    ``ikev1_decryption_table`` needs (it reads the cipher from the capture)."""

    cky_i: bytes
    encryption: str  # registry name
    encryption_key: Secret

    def __repr__(self) -> str:
        return f"IkeV1KeyMaterial({self.cky_i.hex()}, {self.encryption}, <secret>)"


def derive_phase1(prf_name: str, skeyid: Secret, gxy: Secret, cky_i: bytes, cky_r: bytes,
                  encryption: str) -> Phase1Keys:
    """RFC 2409 §5: SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0),
    SKEYID_a = prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1),
    SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2)."""
    g = gxy.reveal()
    d = prf(prf_name, skeyid, g + cky_i + cky_r + b"\x00")
    a = prf(prf_name, skeyid, d + g + cky_i + cky_r + b"\x01")
    e = prf(prf_name, skeyid, a + g + cky_i + cky_r + b"\x02")
    key = expand_key(prf_name, Secret(e), IKE_ENCRYPTION[encryption].key_bytes)
    return Phase1Keys(skeyid, Secret(d), Secret(a), Secret(e), key)


def _hash(prf_name: str, data: bytes) -> bytes:
    return hashlib.new(IKE_INTEGRITY[prf_name].hash_name, data).digest()


def initial_iv(prf_name: str, gxi: bytes, gxr: bytes, block: int) -> bytes:
    """RFC 2409 Appendix B: the phase-1 IV is ``hash(g^xi | g^xr)``."""
    return _hash(prf_name, gxi + gxr)[:block]


def phase2_iv(prf_name: str, last_phase1_block: bytes, message_id: int) -> bytes:
    """RFC 2409 Appendix B: ``hash(last phase-1 CBC block | M-ID)``."""
    return _hash(prf_name, last_phase1_block + message_id.to_bytes(4, "big"))[
        : len(last_phase1_block)]


def hash_i(prf_name: str, skeyid: Secret, gxi: bytes, gxr: bytes, cky_i: bytes, cky_r: bytes,
           sai_b: bytes, idii_b: bytes) -> bytes:
    """RFC 2409 §5: ``HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)``."""
    return prf(prf_name, skeyid, gxi + gxr + cky_i + cky_r + sai_b + idii_b)


def hash_r(prf_name: str, skeyid: Secret, gxi: bytes, gxr: bytes, cky_i: bytes, cky_r: bytes,
           sai_b: bytes, idir_b: bytes) -> bytes:
    """RFC 2409 §5: ``HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)``."""
    return prf(prf_name, skeyid, gxr + gxi + cky_r + cky_i + sai_b + idir_b)


def quick_keymat(prf_name: str, skeyid_d: Secret, protocol: int, spi: bytes, ni: bytes,
                 nr: bytes, length: int, gxy: Secret | None = None) -> Secret:
    """RFC 2409 §5.5: ``KEYMAT = K1 | K2 | ...`` with
    ``K1 = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)`` and
    ``Kn = prf(SKEYID_d, Kn-1 | [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)``."""
    seed = (gxy.reveal() if gxy is not None else b"") + bytes((protocol,)) + spi + ni + nr
    out = bytearray()
    block = b""
    while len(out) < length:
        block = prf(prf_name, skeyid_d, block + seed)
        out += block
    return Secret(bytes(out[:length]))


class Phase1Cipher:
    """CBC encryption of ISAKMP bodies with the phase-1 key (RFC 2409
    Appendix B); the IV is passed in and the last ciphertext block returned,
    the caller keeps the chains."""

    __slots__ = ("_key", "encryption")

    def __init__(self, encryption: str, key: Secret) -> None:
        if encryption not in IKE_ENCRYPTION or IKE_ENCRYPTION[encryption].aead:
            raise LocalError(f"IKEv1 phase 1 has no cipher {encryption!r}")
        self.encryption = encryption
        self._key = key

    def __repr__(self) -> str:
        return f"Phase1Cipher({self.encryption})"

    @property
    def block(self) -> int:
        return IKE_ENCRYPTION[self.encryption].block_bytes

    def _cipher(self, iv: bytes) -> Cipher[modes.CBC]:
        key = self._key.reveal()
        algo = TripleDES(key) if self.encryption == "3des" else algorithms.AES(key)
        return Cipher(algo, modes.CBC(iv))

    def encrypt(self, plaintext: bytes, iv: bytes) -> bytes:
        """Zero-padded to the block size (RFC 2408 §3.1: the length covers
        the padding); returns the ciphertext."""
        pad = -len(plaintext) % self.block
        enc = self._cipher(iv).encryptor()
        return enc.update(plaintext + bytes(pad)) + enc.finalize()

    def decrypt(self, ciphertext: bytes, iv: bytes) -> bytes:
        if not ciphertext or len(ciphertext) % self.block:
            raise ParseError(f"encrypted body of {len(ciphertext)} bytes is not whole blocks")
        dec = self._cipher(iv).decryptor()
        return dec.update(ciphertext) + dec.finalize()
