"""IKEv2 key derivation: SKEYSEED, the seven SK_* keys, and Child SA KEYMAT.

- RFC 7296 §2.14: ``SKEYSEED = prf(Ni | Nr, g^ir)``;
  ``{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} =
  prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)``.
- RFC 7296 §2.18 (IKE SA rekey): ``SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)``.
- RFC 7296 §2.17: ``KEYMAT = prf+(SK_d, Ni | Nr)``, or with PFS
  ``prf+(SK_d, g^ir (new) | Ni | Nr)``.

Every key is a :class:`~secpath.secret.Secret`.  Algorithm names are the
keys of :mod:`secpath.crypto.registry` (``IKE_ENCRYPTION``,
``IKE_INTEGRITY``); the PRF is named by its hash (``"sha256"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from secpath._frozen import fast_init
from secpath.crypto.prf import prf, prf_key_bytes, prf_plus
from secpath.crypto.registry import ESP_ENCRYPTION, ESP_INTEGRITY, IKE_ENCRYPTION, IKE_INTEGRITY
from secpath.errors import LocalError
from secpath.secret import Secret

__all__ = [
    "ChildSaKeys",
    "IkeSaKeys",
    "child_keymat",
    "derive_ike_keys",
    "esp_keymat_bytes",
    "ike_key_lengths",
    "rekey_skeyseed",
    "skeyseed",
    "split_child_keymat",
]


@fast_init
@dataclass(frozen=True, slots=True)
class IkeSaKeys:
    """The seven keys of an IKE SA (RFC 7296 §2.14).

    With an AEAD cipher ``sk_ai`` and ``sk_ar`` are empty (RFC 5282 §7.1) and
    ``sk_ei``/``sk_er`` carry the cipher key followed by the 4-byte salt.
    """

    skeyseed: Secret
    sk_d: Secret
    sk_ai: Secret
    sk_ar: Secret
    sk_ei: Secret
    sk_er: Secret
    sk_pi: Secret
    sk_pr: Secret


@lru_cache(maxsize=64)
def ike_key_lengths(prf_name: str, encryption: str, integrity: str | None) -> tuple[int, int, int]:
    """``(len(SK_d/pi/pr), len(SK_a*), len(SK_e*))`` in bytes.

    SK_d, SK_pi, SK_pr take the PRF's preferred key length (§2.14); SK_e
    includes the AEAD salt (RFC 5282 §7.1, RFC 7634 §2: 4 bytes).
    """
    enc = IKE_ENCRYPTION.get(encryption)
    if enc is None:
        raise LocalError(f"unknown IKE encryption {encryption!r}")
    if enc.aead:
        if integrity is not None:
            raise LocalError(f"{encryption} is AEAD: integrity must be None")
        integ_len = 0
    else:
        integ = IKE_INTEGRITY.get(integrity or "")
        if integ is None:
            raise LocalError(f"{encryption} needs an integrity algorithm, got {integrity!r}")
        integ_len = integ.key_bytes
    return prf_key_bytes(prf_name), integ_len, enc.key_bytes + enc.salt_bytes


def skeyseed(prf_name: str, ni: bytes, nr: bytes, shared_secret: Secret) -> Secret:
    """``SKEYSEED = prf(Ni | Nr, g^ir)`` (RFC 7296 §2.14).  With a fixed-key
    PRF (AES-XCBC-PRF-128) the key is the first 64 bits of Ni and of Nr
    (§2.14); prf+ still takes the whole nonces."""
    integ = IKE_INTEGRITY.get(prf_name)
    if integ is not None and integ.mac == "xcbc":
        return Secret(prf(prf_name, ni[:8] + nr[:8], shared_secret.reveal()))
    return Secret(prf(prf_name, ni + nr, shared_secret.reveal()))


def rekey_skeyseed(
    prf_name: str, old_sk_d: Secret, shared_secret: Secret, ni: bytes, nr: bytes
) -> Secret:
    """``SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)`` for the new IKE SA
    of a CREATE_CHILD_SA rekey (RFC 7296 §2.18); ``prf_name`` is the old
    IKE SA's PRF."""
    return Secret(prf(prf_name, old_sk_d, shared_secret.reveal() + ni + nr))


def derive_ike_keys(
    prf_name: str,
    encryption: str,
    integrity: str | None,
    seed: Secret,
    *,
    ni: bytes,
    nr: bytes,
    spi_i: bytes,
    spi_r: bytes,
) -> IkeSaKeys:
    """Split ``prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)`` into the SK_* keys
    (RFC 7296 §2.14).  ``seed`` is :func:`skeyseed` for IKE_SA_INIT, or
    :func:`rekey_skeyseed` for a rekeyed IKE SA (§2.18, with the new SA's
    nonces and SPIs); ``prf_name`` is the (new) SA's PRF."""
    prf_len, integ_len, enc_len = ike_key_lengths(prf_name, encryption, integrity)
    total = 3 * prf_len + 2 * integ_len + 2 * enc_len
    stream = prf_plus(prf_name, seed, ni + nr + spi_i + spi_r, total).reveal()
    cuts: list[bytes] = []
    pos = 0
    for size in (prf_len, integ_len, integ_len, enc_len, enc_len, prf_len, prf_len):
        cuts.append(stream[pos : pos + size])
        pos += size
    sk_d, sk_ai, sk_ar, sk_ei, sk_er, sk_pi, sk_pr = (Secret(c) for c in cuts)
    return IkeSaKeys(seed, sk_d, sk_ai, sk_ar, sk_ei, sk_er, sk_pi, sk_pr)


def child_keymat(
    prf_name: str,
    sk_d: Secret,
    ni: bytes,
    nr: bytes,
    length: int,
    *,
    shared_secret: Secret | None = None,
) -> Secret:
    """``KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr)`` (RFC 7296 §2.17).

    ``length`` is the whole KEYMAT: for ESP, (encryption key + salt +
    integrity key) × 2, taken in the order initiator-to-responder first, and
    within each direction encryption key then integrity key (§2.17).
    ``shared_secret`` is the new DH secret when the CREATE_CHILD_SA carried KE
    payloads (PFS).  ``ni``/``nr`` are the nonces of the exchange that created
    the Child SA (IKE_SA_INIT's for the first one).
    """
    pfs = shared_secret.reveal() if shared_secret is not None else b""
    return prf_plus(prf_name, sk_d, pfs + ni + nr, length)


@fast_init
@dataclass(frozen=True, slots=True)
class ChildSaKeys:
    """ESP keys of one Child SA, split from KEYMAT (RFC 7296 §2.17).

    ``*_i`` protect initiator-to-responder traffic, ``*_r`` the reverse.
    Encryption keys include the AEAD salt (RFC 4106 §8.1, RFC 7634 §2);
    integrity keys are empty for AEAD.
    """

    encryption_i: Secret
    integrity_i: Secret
    encryption_r: Secret
    integrity_r: Secret


def esp_keymat_bytes(encryption: str, integrity: str) -> int:
    """KEYMAT length for an ESP Child SA (both directions)."""
    enc = ESP_ENCRYPTION.get(encryption)
    if enc is None or integrity not in ESP_INTEGRITY:
        raise LocalError(f"unknown ESP transform {encryption!r}/{integrity!r}")
    integ = ESP_INTEGRITY[integrity]
    return 2 * (enc.key_bytes + enc.salt_bytes + (integ.key_bytes if integ else 0))


def split_child_keymat(keymat: Secret, encryption: str, integrity: str) -> ChildSaKeys:
    """Cut KEYMAT into the ESP keys: initiator-to-responder encryption then
    integrity, then responder-to-initiator (RFC 7296 §2.17).  Names are keys
    of ``ESP_ENCRYPTION``/``ESP_INTEGRITY`` (``"none"`` with AEAD)."""
    need = esp_keymat_bytes(encryption, integrity)
    raw = keymat.reveal()
    if len(raw) < need:
        raise LocalError(f"KEYMAT has {len(raw)} bytes, {encryption}/{integrity} needs {need}")
    enc = ESP_ENCRYPTION[encryption]
    integ = ESP_INTEGRITY[integrity]
    enc_len = enc.key_bytes + enc.salt_bytes
    integ_len = integ.key_bytes if integ else 0
    parts: list[Secret] = []
    pos = 0
    for size in (enc_len, integ_len, enc_len, integ_len):
        parts.append(Secret(raw[pos : pos + size]))
        pos += size
    return ChildSaKeys(*parts)
