"""Protection of the IKEv2 Encrypted payload, one direction of an IKE SA.

Cipher + integrity (RFC 7296 §3.14): IV | CBC ciphertext | ICV, the ICV an
HMAC (RFC 2404 / RFC 4868) or AES-XCBC-MAC-96 (RFC 3566) over the message
from the IKE header through the ciphertext, truncated.  AEAD (RFC 5282 §3 for AES-GCM-16, RFC 7634 §3 for
ChaCha20-Poly1305): the nonce is the 4-byte salt from SK_e and the 8-byte
IV; the associated data is the IKE header and the Encrypted payload header
(RFC 5282 §5.1); the 16-byte tag is the ICV.

The caller (the codec) lays out the bytes; this module only seals and opens.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from secpath.crypto.registry import IKE_ENCRYPTION, IKE_INTEGRITY, Encryption, Integrity
from secpath.crypto.xcbc import AesXcbc
from secpath.errors import LocalError, ParseError
from secpath.secret import Secret

__all__ = ["IntegrityError", "SkCipher"]

Rng = Callable[[int], bytes]


class IntegrityError(ParseError):
    """The ICV did not verify: RFC 7296 §2.21.1 says drop the message
    silently, so there is no notify to send."""

    notify = None  # type: ignore[assignment]  # ParseError narrows it to int


@dataclass(frozen=True, slots=True, repr=False)
class SkCipher:
    """SK_e/SK_a of one direction (SK_ei + SK_ai for what the original
    initiator sends, SK_er + SK_ar for the responder).

    ``encryption`` is a key of ``IKE_ENCRYPTION``; ``integrity`` a key of
    ``IKE_INTEGRITY``, or ``None`` with an AEAD cipher.
    """

    encryption: str
    integrity: str | None
    sk_e: Secret
    sk_a: Secret
    # looked up once: the algorithms, and for AEAD the keyed cipher object
    # (one per direction of an IKE SA, used for every message)
    _enc: Encryption = field(init=False, compare=False)
    _integ: Integrity | None = field(init=False, compare=False)
    _aead_cipher: AESGCM | ChaCha20Poly1305 | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        enc = IKE_ENCRYPTION.get(self.encryption)
        if enc is None:
            raise LocalError(f"unknown IKE encryption {self.encryption!r}")
        if len(self.sk_e) != enc.key_bytes + enc.salt_bytes:
            raise LocalError(f"SK_e for {self.encryption} has the wrong length")
        if enc.aead != (self.integrity is None):
            raise LocalError("integrity must be None exactly when the cipher is AEAD")
        integ = None
        if self.integrity is not None:
            integ = IKE_INTEGRITY.get(self.integrity)
            if integ is None or len(self.sk_a) != integ.key_bytes:
                raise LocalError(f"bad integrity {self.integrity!r} or SK_a length")
        object.__setattr__(self, "_enc", enc)
        object.__setattr__(self, "_integ", integ)
        object.__setattr__(self, "_aead_cipher",
                           self._aead(self.sk_e.reveal()) if enc.aead else None)

    def __repr__(self) -> str:
        return f"SkCipher({self.encryption!r}, {self.integrity!r})"

    @property
    def iv_bytes(self) -> int:
        return self._enc.iv_bytes

    @property
    def icv_bytes(self) -> int:
        integ = self._integ
        return self._enc.icv_bytes if integ is None else integ.icv_bytes

    @property
    def block_bytes(self) -> int:
        """Alignment of ``inner | padding | pad length`` (1 for AEAD: no padding
        is needed, RFC 5282 §3, RFC 7634 §3)."""
        return self._enc.block_bytes

    def padded_length(self, plaintext_len: int) -> int:
        """Length of ``plaintext | padding | pad length`` (RFC 7296 §3.14)."""
        block = self.block_bytes
        return -(-(plaintext_len + 1) // block) * block

    def sealed_length(self, plaintext_len: int) -> int:
        """Bytes after the Encrypted payload header: IV, ciphertext, ICV."""
        return self.iv_bytes + self.padded_length(plaintext_len) + self.icv_bytes

    def seal(self, prefix: bytes, plaintext: bytes, rng: Rng) -> bytes:
        """Encrypt and protect.  ``prefix`` is the IKE header and the
        Encrypted (or Encrypted Fragment) payload header with their final
        lengths; returns IV | ciphertext | ICV to append to it."""
        enc = self._enc
        pad_len = self.padded_length(len(plaintext)) - len(plaintext) - 1
        # RFC 7296 §3.14: padding content is not checked; zeros are fine
        body = plaintext + bytes(pad_len) + bytes((pad_len,))
        iv = rng(enc.iv_bytes)
        key = self.sk_e.reveal()
        aead = self._aead_cipher
        if aead is not None:
            salt = key[enc.key_bytes :]
            return iv + aead.encrypt(salt + iv, body, prefix)
        encryptor = Cipher(self._block_cipher(key), modes.CBC(iv)).encryptor()
        ciphertext = encryptor.update(body) + encryptor.finalize()
        return iv + ciphertext + self._icv(prefix + iv + ciphertext)

    def open(self, prefix: bytes, sealed: bytes) -> bytes:
        """Verify and decrypt ``sealed`` (IV | ciphertext | ICV); return the
        inner payloads without padding.  :class:`IntegrityError` when the ICV
        fails, :class:`ParseError` when the layout is wrong."""
        enc = self._enc
        iv_len, icv_len = enc.iv_bytes, self.icv_bytes
        ct_len = len(sealed) - iv_len - icv_len
        if ct_len <= 0 or ct_len % self.block_bytes:
            raise ParseError(f"Encrypted payload: bad length {len(sealed)} for {enc.name}")
        iv = sealed[:iv_len]
        ciphertext = sealed[iv_len : iv_len + ct_len]
        key = self.sk_e.reveal()
        aead = self._aead_cipher
        if aead is not None:
            try:
                body = aead.decrypt(key[enc.key_bytes :] + iv, sealed[iv_len:], prefix)
            except InvalidTag as exc:
                raise IntegrityError("Encrypted payload: AEAD tag check failed") from exc
        else:
            icv = sealed[iv_len + ct_len :]
            if not hmac.compare_digest(icv, self._icv(prefix + iv + ciphertext)):
                raise IntegrityError("Encrypted payload: ICV check failed")
            decryptor = Cipher(self._block_cipher(key), modes.CBC(iv)).decryptor()
            body = decryptor.update(ciphertext) + decryptor.finalize()
        pad_len = body[-1]
        if pad_len + 1 > len(body):
            raise ParseError("Encrypted payload: pad length exceeds the plaintext")
        return body[: len(body) - pad_len - 1]

    def _aead(self, key: bytes) -> AESGCM | ChaCha20Poly1305:
        enc = self._enc
        if enc.name == "chacha20poly1305":
            return ChaCha20Poly1305(key[: enc.key_bytes])
        return AESGCM(key[: enc.key_bytes])

    def _block_cipher(self, key: bytes) -> algorithms.AES | TripleDES:
        if self._enc.name == "3des":
            return TripleDES(key)
        return algorithms.AES(key)

    def _icv(self, data: bytes) -> bytes:
        integ = self._integ
        assert integ is not None
        if integ.mac == "xcbc":  # AUTH_AES_XCBC_96, RFC 3566
            return AesXcbc(self.sk_a.reveal()).mac_96(data)
        return hmac.digest(self.sk_a.reveal(), data, integ.hash_name)[: integ.icv_bytes]
