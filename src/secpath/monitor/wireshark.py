"""Keys for packet captures: Wireshark's ``ikev2_decryption_table``,
``ikev1_decryption_table`` and ``esp_sa`` files, so ``WIRESHARK_CONFIG_DIR=DIR tshark -r capture.pcap``
shows decrypted IKE and ESP (the guide's Network Monitor, with the keys).

This is the only way keys leave secpath: on request, through the control
socket (its owner only), written to files of mode 0600.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from secpath.errors import LocalError
from secpath.ike.engine import IkeKeyMaterial
from secpath.ike.v1.keys import IkeV1KeyMaterial

__all__ = ["IKE_ENCRYPTION", "IKE_INTEGRITY", "ike_table_row", "ikev1_table_row", "write_key_files"]

# names of Wireshark's ikev2_decryption_table (epan/dissectors/packet-isakmp.c)
IKE_ENCRYPTION: Final[dict[str, str]] = {
    "3des": "3DES [RFC2451]",
    "aes128": "AES-CBC-128 [RFC3602]",
    "aes192": "AES-CBC-192 [RFC3602]",
    "aes256": "AES-CBC-256 [RFC3602]",
    "aes128gcm": "AES-GCM-128 with 16 octet ICV [RFC5282]",
    "aes256gcm": "AES-GCM-256 with 16 octet ICV [RFC5282]",
}
IKE_INTEGRITY: Final[dict[str | None, str]] = {
    None: "NONE [RFC4306]",
    "sha1": "HMAC_SHA1_96 [RFC2404]",
    "sha256": "HMAC_SHA2_256_128 [RFC4868]",
    "sha384": "HMAC_SHA2_384_192 [RFC4868]",
    "sha512": "HMAC_SHA2_512_256 [RFC4868]",
}


def ike_table_row(km: IkeKeyMaterial) -> str:
    """One ``ikev2_decryption_table`` line (the format of strongSwan-lab's
    ss-keys.py): SPIi, SPIr, SK_ei, SK_er, "cipher", SK_ai, SK_ar, "integrity"."""
    try:
        cipher = IKE_ENCRYPTION[km.encryption]
    except KeyError:
        raise LocalError(f"Wireshark cannot decrypt {km.encryption} IKE SAs") from None
    aead = km.integrity is None
    if km.integrity not in IKE_INTEGRITY:  # AES-XCBC-96: not in Wireshark's IKEv2 table
        raise LocalError(f"Wireshark cannot check {km.integrity} IKE SAs")
    return (
        f'{km.spi_i.hex()},{km.spi_r.hex()},{km.sk_ei.reveal().hex()},{km.sk_er.reveal().hex()},"{cipher}",'
        f"{'' if aead else km.sk_ai.reveal().hex()},{'' if aead else km.sk_ar.reveal().hex()},"
        f'"{IKE_INTEGRITY[km.integrity]}"'
    )


_IKEV1_CIPHERS = frozenset({"3des", "aes128", "aes192", "aes256"})  # RFC 2409 ciphers it decrypts


def ikev1_table_row(km: IkeV1KeyMaterial) -> str:
    """One ``ikev1_decryption_table`` line (packet-isakmp.c's UAT: "Initiator's
    COOKIE" and "Encryption Key", both hex; the dissector takes the cipher
    from the main-mode SA payload in the capture)."""
    if km.encryption not in _IKEV1_CIPHERS:
        raise LocalError(f"Wireshark cannot decrypt {km.encryption} ISAKMP SAs")
    return f"{km.cky_i.hex()},{km.encryption_key.reveal().hex()}"


def write_key_files(directory: Path, ike_rows: Iterable[str], esp_rows: Iterable[str],
                    ikev1_rows: Iterable[str] = ()) -> list[Path]:
    """Write the three tables and the preferences that turn decryption on."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    files = {
        "ikev2_decryption_table": "".join(r + "\n" for r in ike_rows),
        "ikev1_decryption_table": "".join(r + "\n" for r in ikev1_rows),
        "esp_sa": "".join(r + "\n" for r in esp_rows),
        "preferences": "esp.enable_encryption_decode: TRUE\nesp.enable_authentication_check: TRUE\n",
    }
    written = []
    for name, text in files.items():
        path = directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(text)
        written.append(path)
    return written
