"""The transforms registry: every algorithm name secpath accepts, with its
IANA number (RFC 7296 §3.3.2 / IANA "IKEv2 Parameters"), key size and the
name strongSwan writes in a proposal.

Pure data.  The policy loader validates names against it, the audit reads
its ``legacy``/``broken`` flags, ESP and IKE pick implementations by its keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = [
    "DH_GROUPS",
    "DH_GROUP_ALIASES",
    "ESP_ENCRYPTION",
    "ESP_INTEGRITY",
    "IKE_ENCRYPTION",
    "IKE_INTEGRITY",
    "DhGroup",
    "Encryption",
    "Integrity",
    "Strength",
    "esp_proposal_name",
    "ike_proposal_name",
]


class Strength(Enum):
    """How the audit judges an algorithm."""

    MODERN = "modern"
    LEGACY = "legacy"  # allowed for interoperability, flagged as a warning
    BROKEN = "broken"  # refused unless explicitly allowed, flagged as an error


@dataclass(frozen=True, slots=True)
class Encryption:
    name: str  # secpath / policy-file name
    iana_id: int  # Transform Type 1 ID (RFC 7296 §3.3.2, RFC 4106, RFC 7634)
    key_bytes: int  # cipher key length, without the AEAD salt
    salt_bytes: int  # AEAD nonce salt taken from KEYMAT (RFC 4106 §8.1)
    block_bytes: int  # cipher block (1 for stream/AEAD counter modes: padding to 4)
    iv_bytes: int  # explicit IV carried in each packet
    icv_bytes: int  # AEAD tag length; 0 for non-AEAD ciphers
    aead: bool
    strongswan: str  # as in a strongSwan proposal ("aes128gcm16")
    strength: Strength
    reason: str = ""  # why legacy/broken, cited


@dataclass(frozen=True, slots=True)
class Integrity:
    name: str
    iana_id: int  # Transform Type 3 ID
    key_bytes: int
    icv_bytes: int  # truncated output length (RFC 4868 §2.3)
    hash_name: str  # hashlib / cryptography name
    strongswan: str
    strength: Strength
    reason: str = ""
    prf_iana_id: int = 0  # Transform Type 2 ID of the PRF with the same hash
    mac: str = "hmac"  # "hmac" (with hash_name) or "xcbc" (AES-XCBC, RFC 3566 / RFC 4434)


@dataclass(frozen=True, slots=True)
class DhGroup:
    number: int  # IANA Transform Type 4 ID
    name: str  # strongSwan's name
    bits: int  # strength of the group's modulus / curve size
    kind: str  # "modp" | "ecp" | "curve25519"
    strength: Strength
    reason: str = ""


_RFC8221_3DES = "RFC 8221 §5: 3DES (ENCR_3DES) is MAY, legacy; 64-bit block, Sweet32"
_RFC8221_SHA1 = "RFC 8221 §6: HMAC-SHA1-96 is legacy (SHOULD- for new deployments)"

IKE_ENCRYPTION: dict[str, Encryption] = {
    e.name: e
    for e in (
        Encryption("3des", 3, 24, 0, 8, 8, 0, False, "3des", Strength.LEGACY, _RFC8221_3DES),
        Encryption("aes128", 12, 16, 0, 16, 16, 0, False, "aes128", Strength.MODERN),
        Encryption("aes192", 12, 24, 0, 16, 16, 0, False, "aes192", Strength.MODERN),
        Encryption("aes256", 12, 32, 0, 16, 16, 0, False, "aes256", Strength.MODERN),
        Encryption("aes128gcm", 20, 16, 4, 1, 8, 16, True, "aes128gcm16", Strength.MODERN),
        Encryption("aes256gcm", 20, 32, 4, 1, 8, 16, True, "aes256gcm16", Strength.MODERN),
        Encryption(
            "chacha20poly1305", 28, 32, 4, 1, 8, 16, True, "chacha20poly1305", Strength.MODERN
        ),
    )
}

ESP_ENCRYPTION: dict[str, Encryption] = {
    name: enc for name, enc in IKE_ENCRYPTION.items() if name != "aes192"
} | {
    "null": Encryption(
        "null",
        11,
        0,
        0,
        1,
        0,
        0,
        False,
        "null",
        Strength.LEGACY,
        "RFC 4303 §3.2: NULL encryption gives integrity only, no confidentiality",
    ),
}

_INTEGRITY = (
    Integrity("sha1", 2, 20, 12, "sha1", "sha1", Strength.LEGACY, _RFC8221_SHA1, 2),
    Integrity("sha256", 12, 32, 16, "sha256", "sha256", Strength.MODERN, "", 5),
    Integrity("sha384", 13, 48, 24, "sha384", "sha384", Strength.MODERN, "", 6),
    Integrity("sha512", 14, 64, 32, "sha512", "sha512", Strength.MODERN, "", 7),
)
# IKE only (the ESP transforms have no XCBC): AUTH_AES_XCBC_96 (RFC 3566) and
# PRF_AES128_XCBC (RFC 4434), both SHOULD in RFC 8247 §3.2-3.3
_XCBC = Integrity("aesxcbc", 5, 16, 12, "", "aesxcbc", Strength.MODERN, "", 4, "xcbc")
IKE_INTEGRITY: dict[str, Integrity] = {i.name: i for i in (*_INTEGRITY, _XCBC)}
# "none" is only valid with an AEAD cipher (RFC 4303 §3.2, RFC 8221 §6)
ESP_INTEGRITY: dict[str, Integrity | None] = {"none": None} | {i.name: i for i in _INTEGRITY}

DH_GROUPS: dict[int, DhGroup] = {
    g.number: g
    for g in (
        DhGroup(
            1,
            "modp768",
            768,
            "modp",
            Strength.BROKEN,
            "768-bit MODP: broken (Logjam); the guide: do not use Diffie-Hellman Group 1",
        ),
        DhGroup(
            2,
            "modp1024",
            1024,
            "modp",
            Strength.LEGACY,
            "1024-bit MODP: RFC 8247 §2.4 SHOULD NOT; the guide: use group 2048 (high)",
        ),
        DhGroup(
            5,
            "modp1536",
            1536,
            "modp",
            Strength.LEGACY,
            "1536-bit MODP: below RFC 8247's 2048-bit recommendation",
        ),
        DhGroup(14, "modp2048", 2048, "modp", Strength.MODERN),
        DhGroup(15, "modp3072", 3072, "modp", Strength.MODERN),
        DhGroup(16, "modp4096", 4096, "modp", Strength.MODERN),
        DhGroup(19, "ecp256", 256, "ecp", Strength.MODERN),
        DhGroup(20, "ecp384", 384, "ecp", Strength.MODERN),
        DhGroup(21, "ecp521", 521, "ecp", Strength.MODERN),
        DhGroup(31, "curve25519", 255, "curve25519", Strength.MODERN),
    )
}

# The guide's wizard words (Windows "Low/Medium/High" Diffie-Hellman groups)
DH_GROUP_ALIASES: dict[str, int] = {"low": 1, "medium": 2, "high": 14}


def esp_proposal_name(encryption: str, integrity: str) -> str:
    """strongSwan's ESP proposal spelling: ``aes128gcm16``, ``3des-sha1``."""
    enc = ESP_ENCRYPTION[encryption]
    if enc.aead:
        return enc.strongswan
    return f"{enc.strongswan}-{integrity}"


def ike_proposal_name(encryption: str, integrity: str, dh_group: int) -> str:
    """strongSwan's IKE proposal spelling: ``aes128-sha256-modp2048``,
    ``aes256gcm16-prfsha384-ecp384``."""
    enc = IKE_ENCRYPTION[encryption]
    group = DH_GROUPS[dh_group].name
    if enc.aead:
        return f"{enc.strongswan}-prf{integrity}-{group}"
    return f"{enc.strongswan}-{integrity}-{group}"
