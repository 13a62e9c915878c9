"""Wireshark's ``esp_sa`` key table (the ESP "Security Associations" UAT),
so that tshark/Wireshark decrypt a capture of secpath's ESP.

One row per SA direction.  The keys leave the process here, on request
only (``secpath keys --wireshark``); never log the result.
"""

from __future__ import annotations

import ipaddress
from typing import Final

from secpath.errors import LocalError
from secpath.esp.transforms import parse_transform
from secpath.secret import Secret

__all__ = ["WIRESHARK_ENCRYPTION", "WIRESHARK_INTEGRITY", "esp_sa_row"]

# Wireshark 4.0 epan/dissectors/packet-esp.c UAT values; Wireshark cannot
# decrypt ChaCha20-Poly1305 ESP, so it has no entry.
WIRESHARK_ENCRYPTION: Final[dict[str, str]] = {
    "null": "NULL",
    "3des": "TripleDES-CBC [RFC2451]",
    "aes128": "AES-CBC [RFC3602]",
    "aes256": "AES-CBC [RFC3602]",
    "aes128gcm": "AES-GCM with 16 octet ICV [RFC4106]",
    "aes256gcm": "AES-GCM with 16 octet ICV [RFC4106]",
}
WIRESHARK_INTEGRITY: Final[dict[str | None, str]] = {
    None: "NULL",
    "sha1": "HMAC-SHA-1-96 [RFC2404]",
    "sha256": "HMAC-SHA-256-128 [RFC4868]",
    "sha384": "HMAC-SHA-384-192 [RFC4868]",
    "sha512": "HMAC-SHA-512-256 [RFC4868]",
}


def esp_sa_row(source: str, destination: str, spi: int, transform: str,
               encryption_key: Secret | None, integrity_key: Secret | None) -> str:
    """One ``esp_sa`` line: protocol, outer source and destination, SPI,
    encryption and key (AEAD: key || salt), authentication and key."""
    encryption, integrity = parse_transform(transform)
    try:
        cipher = WIRESHARK_ENCRYPTION[encryption.name]
    except KeyError:
        raise LocalError(f"Wireshark cannot decrypt {transform} ESP") from None
    family = "IPv4" if ipaddress.ip_address(source).version == 4 else "IPv6"
    fields = (
        family, source, destination, f"0x{spi:08x}", cipher,
        "0x" + encryption_key.reveal().hex() if encryption_key else "",
        WIRESHARK_INTEGRITY[integrity.name if integrity else None],
        "0x" + integrity_key.reveal().hex() if integrity_key else "",
    )
    return ",".join(f'"{field}"' for field in fields)
