"""Security profiles: the IKE and ESP proposals every planned rule uses.

``modern`` (the default) uses AES-GCM for ESP (RFC 8221 §5: ENCR_AES_GCM_16
MUST) and, for IKE, AES-CBC with HMAC-SHA-256 on ECP-256 (group 19, RFC 8247
§2.4 SHOULD) then MODP-2048 (group 14, RFC 8247 §2.4 MUST).  IKE stays on
AES-CBC/SHA-256 rather than AES-GCM or curve25519 (group 31) because every
export target must express it: Windows main mode (``New-NetIPsecMainMode
CryptoProposal``) and Cisco IOS ISAKMP offer neither AES-GCM for IKE nor
curve25519.

``guide`` is the guide's qualified suite: "Integrity algorithm: SHA1 -
Encryption algorithm: 3DES" for ESP and "IKE Security Algorithms (Defaults)
... SHA1 ... 3DES ... Medium (DH Group 2, 1024-bit key)".  It is legacy
(RFC 8221 §5, RFC 8247 §2.4) and the audit always flags it.
"""

from __future__ import annotations

from dataclasses import dataclass

from secpath.policy.model import KeyExchange, KeyExchangeMethod, SecurityMethod

__all__ = ["PROFILES", "Profile"]


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    key_exchange: KeyExchange
    security_methods: tuple[SecurityMethod, ...]
    description: str


PROFILES: dict[str, Profile] = {
    "modern": Profile(
        "modern",
        KeyExchange(
            (KeyExchangeMethod("sha256", "aes128", 19), KeyExchangeMethod("sha256", "aes128", 14)),
            lifetime_s=28800,
        ),
        (SecurityMethod("aes128gcm", "none", 100_000, 3600),
         SecurityMethod("aes256gcm", "none", 100_000, 3600)),
        "AES-GCM ESP; IKE AES-128/SHA-256 with ECP-256 (19) or MODP-2048 (14)",
    ),
    "guide": Profile(
        "guide",
        KeyExchange((KeyExchangeMethod("sha1", "3des", 2),), lifetime_s=28800),
        (SecurityMethod("3des", "sha1", 100_000, 3600),),
        "the guide's qualified suite: ESP 3DES/HMAC-SHA1, IKE 3DES/SHA1/DH group 2",
    ),
}
