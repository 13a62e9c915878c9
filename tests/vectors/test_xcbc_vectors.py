"""Known answers for AES-XCBC: the MAC and MAC-96 of RFC 3566 §4.6
(https://www.rfc-editor.org/rfc/rfc3566#section-4.6) and the PRF's key-length
rule of RFC 4434 §2.1 (https://www.rfc-editor.org/rfc/rfc4434#section-2.1),
then how IKEv2 uses it (RFC 7296 §2.13, §2.14, §3.14)."""

from __future__ import annotations

import os

import pytest

from secpath.crypto.kdf import derive_ike_keys, ike_key_lengths, skeyseed
from secpath.crypto.prf import PRF_BY_IANA_ID, prf, prf_key_bytes, prf_output_bytes, prf_plus
from secpath.crypto.sk import IntegrityError, SkCipher
from secpath.crypto.xcbc import AesXcbc, xcbc_mac, xcbc_prf, xcbc_prf_key
from secpath.errors import LocalError
from secpath.secret import Secret

K = bytes(range(16))  # RFC 3566 §4.6: Key (K) 000102030405060708090a0b0c0d0e0f

# RFC 3566 §4.6, Test Cases #1-#7: (message, AES-XCBC-MAC)
RFC3566 = [
    pytest.param(b"", "75f0251d528ac01c4573dfd584d79f29", id="case1-0-bytes"),
    pytest.param(bytes(range(3)), "5b376580ae2f19afe7219ceef172756f", id="case2-3-bytes"),
    pytest.param(bytes(range(16)), "d2a246fa349b68a79998a4394ff7a263", id="case3-16-bytes"),
    pytest.param(bytes(range(20)), "47f51b4564966215b8985c63055ed308", id="case4-20-bytes"),
    pytest.param(bytes(range(32)), "f54f0ec8d2b9f3d36807734bd5283fd4", id="case5-32-bytes"),
    pytest.param(bytes(range(34)), "becbb3bccdb518a30677d5481fb6b4d8", id="case6-34-bytes"),
    pytest.param(bytes(1000), "f0dafee895db30253761103b5d84528f", id="case7-1000-zero-bytes"),
]

# RFC 4434 §2.1: (key, PRF output) for Message 000102030405060708090a0b0c0d0e0f10111213
RFC4434 = [
    pytest.param(bytes(range(16)), "47f51b4564966215b8985c63055ed308", id="key-16"),
    pytest.param(bytes(range(10)), "0fa087af7d866e7653434e602fdde835", id="key-10-zero-padded"),
    pytest.param(bytes(range(16)) + bytes.fromhex("edcb"), "8cd3c93ae598a9803006ffb67c40e9e4",
                 id="key-18-reduced"),
]
RFC4434_MESSAGE = bytes(range(20))


@pytest.mark.parametrize(("message", "expected"), RFC3566)
def test_rfc3566_mac(message: bytes, expected: str) -> None:
    mac = AesXcbc(K)
    assert mac.mac(message).hex() == expected
    assert xcbc_mac(K, message).hex() == expected
    # AES-XCBC-MAC-96 is the first 96 bits (RFC 3566 §2.1, §4.6)
    assert mac.mac_96(message).hex() == expected[:24]
    # the keyed object is reusable: the long-lived encryptor keeps no chaining state
    assert mac.mac(message).hex() == expected


@pytest.mark.parametrize(("key", "expected"), RFC4434)
def test_rfc4434_prf_key_lengths(key: bytes, expected: str) -> None:
    assert xcbc_prf(key, RFC4434_MESSAGE).hex() == expected
    assert prf("aesxcbc", key, RFC4434_MESSAGE).hex() == expected
    assert prf("aesxcbc", Secret(key), RFC4434_MESSAGE).hex() == expected
    assert len(xcbc_prf_key(key)) == 16


def test_mac_key_must_be_16_bytes() -> None:
    for size in (0, 10, 24, 32):
        with pytest.raises(LocalError):
            AesXcbc(bytes(size))
    assert "00" not in repr(AesXcbc(bytes(16)))  # no key material in the repr


def test_registry_and_prf_sizes() -> None:
    # RFC 7296 §3.3.2: PRF_AES128_XCBC is Transform Type 2 ID 4; RFC 4434 §2: 128-bit key and output
    assert PRF_BY_IANA_ID[4] == "aesxcbc"
    assert prf_output_bytes("aesxcbc") == prf_key_bytes("aesxcbc") == 16
    # (SK_d/pi/pr, SK_a = AUTH_AES_XCBC_96's 128-bit key, SK_e)
    assert ike_key_lengths("aesxcbc", "aes128", "aesxcbc") == (16, 16, 16)


def test_prf_plus_with_xcbc() -> None:
    # RFC 7296 §2.13: T1 = prf(K, S | 0x01), T2 = prf(K, T1 | S | 0x02), ...
    key, seed = os.urandom(16), os.urandom(40)
    t1 = xcbc_prf(key, seed + b"\x01")
    t2 = xcbc_prf(key, t1 + seed + b"\x02")
    t3 = xcbc_prf(key, t2 + seed + b"\x03")
    assert prf_plus("aesxcbc", key, seed, 40).reveal() == (t1 + t2 + t3)[:40]
    assert len(prf_plus("aesxcbc", key, seed, 255 * 16)) == 255 * 16
    with pytest.raises(LocalError):
        prf_plus("aesxcbc", key, seed, 255 * 16 + 1)


def test_skeyseed_keys_xcbc_with_64_bits_of_each_nonce() -> None:
    # RFC 7296 §2.14: with AES-XCBC-PRF-128 only the first 64 bits of Ni and
    # of Nr key SKEYSEED.  Nonces whose first halves are RFC 3566's K, with
    # g^ir = Test Case #4's message, give Test Case #4's MAC.
    ni = bytes(range(8)) + os.urandom(24)
    nr = bytes(range(8, 16)) + os.urandom(24)
    seed = skeyseed("aesxcbc", ni, nr, Secret(bytes(range(20))))
    assert seed.reveal().hex() == "47f51b4564966215b8985c63055ed308"
    # ... but prf+ takes the whole nonces
    keys = derive_ike_keys("aesxcbc", "aes128", "aesxcbc", seed, ni=ni, nr=nr,
                           spi_i=b"i" * 8, spi_r=b"r" * 8)
    stream = prf_plus("aesxcbc", seed, ni + nr + b"i" * 8 + b"r" * 8, 16 * 7).reveal()
    assert keys.sk_d.reveal() == stream[:16] and keys.sk_pr.reveal() == stream[-16:]


def test_sk_payload_icv_is_aes_xcbc_96() -> None:
    # RFC 7296 §3.14 with AUTH_AES_XCBC_96: the ICV is the first 12 bytes of
    # AES-XCBC-MAC(SK_a, header .. ciphertext)
    sk_a = os.urandom(16)
    sk = SkCipher("aes128", "aesxcbc", Secret(os.urandom(16)), Secret(sk_a))
    assert sk.icv_bytes == 12
    prefix = os.urandom(32)
    sealed = sk.seal(prefix, b"payloads", os.urandom)
    assert sealed[-12:] == xcbc_mac(sk_a, prefix + sealed[:-12])[:12]
    assert sk.open(prefix, sealed) == b"payloads"
    broken = bytearray(sealed)
    broken[-1] ^= 1
    with pytest.raises(IntegrityError):
        sk.open(prefix, bytes(broken))
    with pytest.raises(LocalError):
        SkCipher("aes128", "aesxcbc", Secret(os.urandom(16)), Secret(os.urandom(20)))


def _reference_xcbc(key: bytes, message: bytes) -> bytes:
    """RFC 3566 §4 step by step, one AES block at a time (no shortcuts)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    def aes(k: bytes, block: bytes) -> bytes:
        enc = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
        return enc.update(block) + enc.finalize()

    def xor(a: bytes, b: bytes) -> bytes:
        return bytes(x ^ y for x, y in zip(a, b, strict=True))

    k1, k2, k3 = (aes(key, bytes([i]) * 16) for i in (1, 2, 3))
    blocks = [message[i : i + 16] for i in range(0, len(message), 16)] or [b""]
    e = bytes(16)
    for block in blocks[:-1]:
        e = aes(k1, xor(block, e))
    last = blocks[-1]
    if len(last) == 16:
        return aes(k1, xor(xor(last, e), k2))
    padded = last + b"\x80" + bytes(15 - len(last))
    return aes(k1, xor(xor(padded, e), k3))


def test_every_length_matches_the_step_by_step_algorithm() -> None:
    """Short messages take a block loop, long ones one CBC pass: both agree
    with RFC 3566 §4 done by hand, around every block boundary."""
    key = os.urandom(16)
    mac = AesXcbc(key)
    data = os.urandom(200)
    for n in range(len(data) + 1):
        assert mac.mac(data[:n]) == _reference_xcbc(key, data[:n]), n
