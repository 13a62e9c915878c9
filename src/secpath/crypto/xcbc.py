"""AES-XCBC-MAC (RFC 3566) and AES-XCBC-PRF-128 (RFC 4434).

``cryptography`` has no XCBC mode, so it is built here from the AES block
primitive (RFC 3566 §4):

* ``K1 = E(K, 0x01..01)``, ``K2 = E(K, 0x02..02)``, ``K3 = E(K, 0x03..03)``;
* CBC-MAC under K1 with a zero IV over the message blocks, the last block
  XORed with K2 when it is complete, or padded with ``0x80 00..`` and XORed
  with K3 when it is not (an empty message is one padded block);
* the MAC is the last cipher block (16 bytes); AES-XCBC-MAC-96 keeps the
  first 12 (RFC 3566 §2.1).

RFC 4434 §2 lets the PRF take any key length: a shorter key is padded with
zero bytes to 16, a longer one is first reduced by AES-XCBC-PRF-128 with a
key of 16 zero bytes.

:class:`AesXcbc` is pre-keyed: the K1 encryptor (AES-ECB) lives as long as
the object, so ``prf+`` and ICV checks pay the key schedule once.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from secpath.errors import LocalError

__all__ = ["BLOCK", "AesXcbc", "xcbc_mac", "xcbc_prf", "xcbc_prf_key"]

BLOCK = 16
_ZERO_IV = bytes(BLOCK)
# longer messages go through one CBC pass (a fresh encryptor, ~10 µs) instead
# of a Python loop over the long-lived ECB encryptor (~2 µs a block)
_LOOP_BLOCKS = 4


def _ecb(key: bytes) -> CipherContext:
    return Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - one block at a time


class AesXcbc:
    """AES-XCBC-MAC keyed with a 16-byte key ``K`` (RFC 3566 §4)."""

    __slots__ = ("_cbc", "_e1", "_k2", "_k3")

    def __init__(self, key: bytes) -> None:
        if len(key) != BLOCK:
            raise LocalError(f"AES-XCBC-MAC needs a 16-byte key, got {len(key)} bytes")
        derived = _ecb(key).update(b"\x01" * BLOCK + b"\x02" * BLOCK + b"\x03" * BLOCK)
        k1 = derived[:BLOCK]
        self._k2 = int.from_bytes(derived[BLOCK : 2 * BLOCK], "big")
        self._k3 = int.from_bytes(derived[2 * BLOCK :], "big")
        self._e1 = _ecb(k1)
        self._cbc = Cipher(algorithms.AES(k1), modes.CBC(_ZERO_IV))

    def __repr__(self) -> str:
        return "AesXcbc(<key>)"

    def mac(self, data: bytes) -> bytes:
        """The full 16-byte AES-XCBC-MAC of ``data``."""
        n = len(data)
        if n and n % BLOCK == 0:
            head, last = data[: n - BLOCK], int.from_bytes(data[n - BLOCK :], "big") ^ self._k2
        else:
            cut = n - n % BLOCK
            tail = data[cut:] + b"\x80" + bytes(BLOCK - 1 - n % BLOCK)
            head, last = data[:cut], int.from_bytes(tail, "big") ^ self._k3
        if len(head) > _LOOP_BLOCKS * BLOCK:
            chain = int.from_bytes(self._cbc.encryptor().update(head)[-BLOCK:], "big")
        else:
            chain = 0
            update = self._e1.update
            for i in range(0, len(head), BLOCK):
                block = int.from_bytes(head[i : i + BLOCK], "big") ^ chain
                chain = int.from_bytes(update(block.to_bytes(BLOCK, "big")), "big")
        return self._e1.update((last ^ chain).to_bytes(BLOCK, "big"))

    def mac_96(self, data: bytes) -> bytes:
        """AES-XCBC-MAC-96: the first 96 bits (RFC 3566 §2.1)."""
        return self.mac(data)[:12]


_ZERO_KEY = AesXcbc(bytes(BLOCK))


def xcbc_mac(key: bytes, data: bytes) -> bytes:
    """AES-XCBC-MAC with a 16-byte key (RFC 3566 §4)."""
    return AesXcbc(key).mac(data)


def xcbc_prf_key(key: bytes) -> bytes:
    """The 16-byte AES key AES-XCBC-PRF-128 uses for ``key`` (RFC 4434 §2)."""
    if len(key) < BLOCK:
        return key + bytes(BLOCK - len(key))
    if len(key) > BLOCK:
        return _ZERO_KEY.mac(key)
    return key


def xcbc_prf(key: bytes, data: bytes) -> bytes:
    """AES-XCBC-PRF-128(key, data): the MAC, any key length (RFC 4434 §2)."""
    return AesXcbc(xcbc_prf_key(key)).mac(data)
