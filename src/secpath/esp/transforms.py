"""ESP transforms: the cipher and integrity work on one packet.

Names are strongSwan's ESP proposal spellings (``aes128gcm16``,
``3des-sha1``, ``null-sha256``); the facts (key sizes, ICV lengths, IANA
numbers) come from :mod:`secpath.crypto.registry`.  All crypto is
``cryptography`` (OpenSSL).

Every transform keeps its OpenSSL objects for the life of the SA: one AEAD
object, or for CBC one encryptor and one decryptor chained across packets
plus a pre-keyed HMAC copied per packet.  ``seal`` returns the ESP packet
from a prefix that ends with the 8-byte ESP header; ``open`` takes the ESP
packet inside a larger buffer and returns the decrypted payload (padding,
Pad Length and Next Header included).
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import constant_time, hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from secpath.crypto.registry import ESP_ENCRYPTION, ESP_INTEGRITY, Encryption, Integrity
from secpath.errors import LocalError
from secpath.esp.errors import DecryptError, IntegrityError
from secpath.secret import Secret

__all__ = [
    "TRANSFORM_NAMES",
    "AeadTransform",
    "CbcHmacTransform",
    "NullHmacTransform",
    "Transform",
    "key_lengths",
    "make_transform",
    "parse_transform",
]

_Q = struct.Struct("!Q")
_I = struct.Struct("!I")
_IQ = struct.Struct("!IQ")
_HASHES: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

Rng = Callable[[int], bytes]
AeadFunction = Callable[[bytes, bytes, bytes], bytes]


def _proposal_names() -> dict[str, tuple[Encryption, Integrity | None]]:
    names: dict[str, tuple[Encryption, Integrity | None]] = {}
    for enc in ESP_ENCRYPTION.values():
        if enc.aead:
            names[enc.strongswan] = (enc, None)
            continue
        for integ in ESP_INTEGRITY.values():
            if integ is not None:
                names[f"{enc.strongswan}-{integ.strongswan}"] = (enc, integ)
    return names


_PROPOSALS: Final = _proposal_names()
TRANSFORM_NAMES: Final[frozenset[str]] = frozenset(_PROPOSALS)


def parse_transform(name: str) -> tuple[Encryption, Integrity | None]:
    """The registry entries behind a strongSwan ESP proposal name."""
    try:
        return _PROPOSALS[name]
    except KeyError:
        raise LocalError(
            f"unknown ESP transform {name!r}; accepted: {', '.join(sorted(_PROPOSALS))}"
        ) from None


def key_lengths(name: str) -> tuple[int, int]:
    """KEYMAT octets of one SA direction: (encryption key, with the AEAD
    salt; integrity key), in the order RFC 7296 §2.17 takes them."""
    encryption, integrity = parse_transform(name)
    return (encryption.key_bytes + encryption.salt_bytes,
            integrity.key_bytes if integrity else 0)


class Transform(ABC):
    """What the SA needs to know of a transform, and the per-packet work."""

    __slots__ = ("align", "confidential", "encryption", "esn", "icv_bytes", "integrity",
                 "iv_bytes", "name", "spi")

    def __init__(self, name: str, encryption: Encryption, integrity: Integrity | None,
                 spi: int, esn: bool) -> None:
        self.name = name
        self.encryption = encryption
        self.integrity = integrity
        self.spi = spi
        self.esn = esn
        self.iv_bytes = encryption.iv_bytes
        self.icv_bytes = encryption.icv_bytes if integrity is None else integrity.icv_bytes
        # RFC 4303 §2.4: pad to the cipher block, and at least to 4 octets
        self.align = max(encryption.block_bytes, 4)
        self.confidential = encryption.name != "null"

    @abstractmethod
    def seal(self, prefix: bytes, seq: int, plaintext: bytes) -> bytes:
        """``prefix`` (ending with SPI and sequence number) + IV + ciphertext + ICV.
        ``plaintext`` is already padded (RFC 4303 §2.4)."""

    @abstractmethod
    def open(self, packet: bytes, start: int, end: int, seq: int) -> bytes:
        """Verify and decrypt the ESP packet ``packet[start:end]`` whose full
        sequence number is ``seq``; raise :class:`IntegrityError` or
        :class:`DecryptError`."""


class AeadTransform(Transform):
    """AES-GCM (RFC 4106) and ChaCha20-Poly1305 (RFC 7634).

    The 8-octet IV is the 64-bit sequence number (RFC 4106 §3.1: unique per
    packet under one key; RFC 7634 §2.1 likewise); the nonce is salt || IV
    (RFC 4106 §4, RFC 7634 §2); the AAD is SPI || sequence number, with the
    high-order 32 bits in between under ESN (RFC 4106 §5, RFC 7634 §2.2).
    """

    __slots__ = ("_decrypt", "_encrypt", "_salt")

    def __init__(self, name: str, encryption: Encryption, spi: int, esn: bool,
                 key: Secret) -> None:
        super().__init__(name, encryption, None, spi, esn)
        raw = key.reveal()
        if len(raw) != encryption.key_bytes + encryption.salt_bytes:
            raise LocalError(
                f"{name}: encryption key must be {encryption.key_bytes} + "
                f"{encryption.salt_bytes} salt bytes (RFC 4106 §8.1), got {len(raw)}"
            )
        cipher: AESGCM | ChaCha20Poly1305
        if encryption.name.startswith("chacha20"):
            cipher = ChaCha20Poly1305(raw[: encryption.key_bytes])
        else:
            cipher = AESGCM(raw[: encryption.key_bytes])
        self._encrypt = cipher.encrypt
        self._decrypt = cipher.decrypt
        self._salt = raw[encryption.key_bytes :]

    def primitives(self) -> tuple[AeadFunction, AeadFunction, bytes]:
        """The AEAD encrypt and decrypt functions and the salt, for a caller
        that inlines :meth:`seal`/:meth:`open` on its hot path."""
        return self._encrypt, self._decrypt, self._salt

    def seal(self, prefix: bytes, seq: int, plaintext: bytes) -> bytes:
        iv = _Q.pack(seq)
        aad = _IQ.pack(self.spi, seq) if self.esn else prefix[-8:]
        return b"".join((prefix, iv, self._encrypt(self._salt + iv, plaintext, aad)))

    def open(self, packet: bytes, start: int, end: int, seq: int) -> bytes:
        aad = _IQ.pack(self.spi, seq) if self.esn else packet[start : start + 8]
        try:
            return self._decrypt(
                self._salt + packet[start + 8 : start + 16], packet[start + 16 : end], aad
            )
        except InvalidTag:
            raise IntegrityError(f"{self.name}: ICV mismatch") from None


class _HmacTransform(Transform):
    __slots__ = ("_mac",)

    def _init_mac(self, integrity: Integrity, key: Secret | None) -> None:
        if key is None or len(key) != integrity.key_bytes:
            raise LocalError(
                f"{self.name}: integrity key must be {integrity.key_bytes} bytes "
                f"(RFC 4868 §2.1.1 / RFC 2404 §3)"
            )
        self._mac = hmac.HMAC(key.reveal(), _HASHES[integrity.hash_name]())

    def icv(self, *parts: bytes, seq: int) -> bytes:
        """The truncated HMAC over ``parts`` (RFC 4868 §2.3, RFC 2404 §3)."""
        mac = self._mac.copy()
        for part in parts:
            mac.update(part)
        if self.esn:
            mac.update(_I.pack(seq >> 32))  # RFC 4303 §3.3.2.1: ESN high bits appended
        return mac.finalize()[: self.icv_bytes]

    def _verify(self, packet: bytes, start: int, icv_at: int, end: int, seq: int) -> None:
        expected = self.icv(packet[start:icv_at], seq=seq)
        if not constant_time.bytes_eq(expected, packet[icv_at:end]):
            raise IntegrityError(f"{self.name}: ICV mismatch")


class CbcHmacTransform(_HmacTransform):
    """AES-CBC (RFC 3602) or 3DES-CBC (RFC 2451) with HMAC-SHA1-96
    (RFC 2404) or HMAC-SHA2 (RFC 4868), encrypt-then-MAC (RFC 4303 §3.3.2).

    One CBC encryptor lives as long as the SA.  Before each packet it
    encrypts one secret block xor the sequence number; the output block,
    chained from the previous ciphertext, is the packet's IV: unpredictable
    without the key (RFC 3602 §3, NIST SP 800-38A Appendix C), and the rest
    of the packet chains from it.  The decryptor is fed the packet's IV
    first, which sets its chaining value; that block's output is discarded.
    """

    __slots__ = ("_block", "_decryptor", "_encryptor", "_secret")

    def __init__(self, name: str, encryption: Encryption, integrity: Integrity, *, spi: int,
                 esn: bool, key: Secret, integrity_key: Secret | None,
                 rng: Rng | None) -> None:
        super().__init__(name, encryption, integrity, spi, esn)
        raw = key.reveal()
        if len(raw) != encryption.key_bytes:
            raise LocalError(
                f"{name}: encryption key must be {encryption.key_bytes} bytes, got {len(raw)}"
            )
        self._init_mac(integrity, integrity_key)
        block = encryption.block_bytes
        algorithm: algorithms.AES | TripleDES = (
            TripleDES(raw) if encryption.name == "3des" else algorithms.AES(raw)
        )
        zero_iv = bytes(block)
        self._encryptor = Cipher(algorithm, modes.CBC(zero_iv)).encryptor()
        self._decryptor = Cipher(algorithm, modes.CBC(zero_iv)).decryptor()
        # The secret block is E_K(0) or E_K(rng block): never on the wire.
        seed = rng(block) if rng is not None else zero_iv
        if len(seed) != block:
            raise LocalError("rng returned the wrong number of bytes")
        self._secret = int.from_bytes(self._encryptor.update(seed), "big")
        # advance the chain once more, so that the first packet's chaining
        # value is not the secret itself (they would cancel out)
        self._encryptor.update(zero_iv)
        self._block = block

    def seal(self, prefix: bytes, seq: int, plaintext: bytes) -> bytes:
        block = self._block
        whitening = (self._secret ^ seq).to_bytes(block, "big")
        iv_ciphertext = self._encryptor.update(whitening + plaintext)
        mac = self._mac.copy()
        mac.update(prefix[-8:])
        mac.update(iv_ciphertext)
        if self.esn:
            mac.update(_I.pack(seq >> 32))  # RFC 4303 §3.3.2.1
        return b"".join((prefix, iv_ciphertext, mac.finalize()[: self.icv_bytes]))

    def open(self, packet: bytes, start: int, end: int, seq: int) -> bytes:
        block = self._block
        icv_at = end - self.icv_bytes
        length = icv_at - start - 8 - block
        if length <= 0 or length % block:
            raise DecryptError(f"{self.name}: ciphertext of {length} bytes is not whole blocks")
        self._verify(packet, start, icv_at, end, seq)  # RFC 4303 §3.4.4: ICV first
        return self._decryptor.update(packet[start + 8 : icv_at])[block:]


class NullHmacTransform(_HmacTransform):
    """NULL encryption (RFC 2410) with HMAC: integrity only (RFC 4303 §3.2)."""

    def __init__(self, name: str, encryption: Encryption, integrity: Integrity, *, spi: int,
                 esn: bool, key: Secret | None, integrity_key: Secret | None) -> None:
        super().__init__(name, encryption, integrity, spi, esn)
        if key is not None and len(key):
            raise LocalError(f"{name}: NULL encryption takes no encryption key")
        self._init_mac(integrity, integrity_key)

    def seal(self, prefix: bytes, seq: int, plaintext: bytes) -> bytes:
        return b"".join((prefix, plaintext, self.icv(prefix[-8:], plaintext, seq=seq)))

    def open(self, packet: bytes, start: int, end: int, seq: int) -> bytes:
        icv_at = end - self.icv_bytes
        self._verify(packet, start, icv_at, end, seq)
        return packet[start + 8 : icv_at]


def make_transform(name: str, *, spi: int, esn: bool, encryption_key: Secret | None,
                   integrity_key: Secret | None, rng: Rng | None = None) -> Transform:
    """The transform for a strongSwan ESP proposal name, keyed."""
    encryption, integrity = parse_transform(name)
    if encryption.aead:
        if integrity_key is not None and len(integrity_key):
            raise LocalError(f"{name}: an AEAD transform takes no integrity key (RFC 4303 §3.2)")
        if encryption_key is None:
            raise LocalError(f"{name}: encryption key required")
        return AeadTransform(name, encryption, spi, esn, encryption_key)
    assert integrity is not None
    if encryption.name == "null":
        return NullHmacTransform(name, encryption, integrity, spi=spi, esn=esn,
                                 key=encryption_key, integrity_key=integrity_key)
    if encryption_key is None:
        raise LocalError(f"{name}: encryption key required")
    return CbcHmacTransform(name, encryption, integrity, spi=spi, esn=esn, key=encryption_key,
                            integrity_key=integrity_key, rng=rng)
