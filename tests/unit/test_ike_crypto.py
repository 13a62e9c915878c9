"""secpath.crypto.prf / kdf / sk: PRFs, key lengths, the SK payload ciphers."""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st

from secpath.crypto.kdf import (
    child_keymat,
    derive_ike_keys,
    esp_keymat_bytes,
    ike_key_lengths,
    skeyseed,
    split_child_keymat,
)
from secpath.crypto.prf import PRF_BY_IANA_ID, prf, prf_plus
from secpath.crypto.sk import IntegrityError, SkCipher
from secpath.errors import LocalError, ParseError
from secpath.secret import Secret

# (encryption, integrity, len(SK_e), len(SK_a))
SUITES = [
    ("3des", "sha1", 24, 20),
    ("aes128", "sha256", 16, 32),
    ("aes192", "sha384", 24, 48),
    ("aes256", "sha512", 32, 64),
    ("aes128gcm", None, 20, 0),
    ("aes256gcm", None, 36, 0),
    ("chacha20poly1305", None, 36, 0),
]
SUITE_IDS = [s[0] for s in SUITES]


def _cipher(enc: str, integ: str | None, ke: int, ka: int) -> SkCipher:
    return SkCipher(enc, integ, Secret(os.urandom(ke)), Secret(os.urandom(ka)))


def test_prf_is_hmac() -> None:
    # RFC 7296 §2.13 with RFC 2104 HMAC; RFC 4231 §4.2 test case 1 for SHA-256
    key = bytes.fromhex("0b" * 20)
    assert prf("sha256", key, b"Hi There").hex() == (
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    )
    assert prf("sha1", Secret(key), b"x") == hmac.digest(key, b"x", "sha1")


def test_prf_plus_definition() -> None:
    # RFC 7296 §2.13: T1 = prf(K, S | 0x01), T2 = prf(K, T1 | S | 0x02)
    key, seed = b"k" * 32, b"seed"
    t1 = hmac.digest(key, seed + b"\x01", hashlib.sha256)
    t2 = hmac.digest(key, t1 + seed + b"\x02", hashlib.sha256)
    assert prf_plus("sha256", key, seed, 40).reveal() == (t1 + t2)[:40]


@pytest.mark.parametrize("name", ["sha1", "sha256", "sha384", "sha512"])
@pytest.mark.parametrize("length", [0, 1, 20, 32, 48, 64, 65, 168, 1000])
def test_prf_plus_every_hmac_prf_and_length(name: str, length: int) -> None:
    key, seed = b"K" * 17, b"Ni|Nr|SPIi|SPIr"
    stream, block, n = b"", b"", 1
    while len(stream) < length:
        block = hmac.digest(key, block + seed + bytes((n,)), name)
        stream, n = stream + block, n + 1
    assert prf_plus(name, Secret(key), seed, length).reveal() == stream[:length]


def test_prf_plus_unknown_prf() -> None:
    with pytest.raises(LocalError):
        prf_plus("md5", b"k", b"s", 16)


def test_prf_plus_refuses_more_than_255_rounds() -> None:
    assert len(prf_plus("sha1", b"k", b"s", 255 * 20)) == 255 * 20
    with pytest.raises(LocalError):
        prf_plus("sha1", b"k", b"s", 255 * 20 + 1)


def test_prf_ids_and_unknown_prf() -> None:
    assert PRF_BY_IANA_ID == {2: "sha1", 4: "aesxcbc", 5: "sha256", 6: "sha384", 7: "sha512"}
    with pytest.raises(LocalError):
        prf("md5", b"k", b"d")


def test_ike_key_lengths() -> None:
    # RFC 7296 §2.14, RFC 5282 §7.1 (4-byte salt), RFC 4868 §2.1 (key = hash length)
    assert ike_key_lengths("sha256", "aes128", "sha256") == (32, 32, 16)
    assert ike_key_lengths("sha384", "aes256gcm", None) == (48, 0, 36)
    assert ike_key_lengths("sha1", "3des", "sha1") == (20, 20, 24)
    with pytest.raises(LocalError):
        ike_key_lengths("sha256", "aes128gcm", "sha256")
    with pytest.raises(LocalError):
        ike_key_lengths("sha256", "aes128", None)
    with pytest.raises(LocalError):
        ike_key_lengths("sha256", "rc4", None)


def test_derive_ike_keys_lengths_and_masking() -> None:
    ni, nr = os.urandom(32), os.urandom(32)
    seed = skeyseed("sha384", ni, nr, Secret(os.urandom(48)))
    keys = derive_ike_keys(
        "sha384", "aes256gcm", None, seed, ni=ni, nr=nr, spi_i=os.urandom(8), spi_r=os.urandom(8)
    )
    assert [len(k) for k in (keys.sk_d, keys.sk_ai, keys.sk_ar, keys.sk_ei, keys.sk_er,
                             keys.sk_pi, keys.sk_pr)] == [48, 0, 0, 36, 36, 48, 48]
    assert keys.sk_d.reveal().hex() not in repr(keys)


def test_split_child_keymat_order() -> None:
    # RFC 7296 §2.17: initiator->responder keys first, encryption before integrity
    assert esp_keymat_bytes("aes128", "sha256") == 2 * (16 + 32)
    assert esp_keymat_bytes("aes128gcm", "none") == 2 * 20
    raw = bytes(range(96))
    keys = split_child_keymat(Secret(raw), "aes128", "sha256")
    assert keys.encryption_i.reveal() == raw[:16]
    assert keys.integrity_i.reveal() == raw[16:48]
    assert keys.encryption_r.reveal() == raw[48:64]
    assert keys.integrity_r.reveal() == raw[64:96]
    gcm = split_child_keymat(Secret(raw[:40]), "aes128gcm", "none")
    assert gcm.encryption_r.reveal() == raw[20:40] and len(gcm.integrity_r) == 0
    with pytest.raises(LocalError):
        split_child_keymat(Secret(raw[:10]), "aes128", "sha256")
    with pytest.raises(LocalError):
        esp_keymat_bytes("aes128", "md5")


def test_child_keymat_is_prf_plus_of_sk_d() -> None:
    sk_d, ni, nr, g = Secret(os.urandom(32)), os.urandom(16), os.urandom(16), os.urandom(32)
    assert child_keymat("sha256", sk_d, ni, nr, 64) == prf_plus("sha256", sk_d, ni + nr, 64)
    assert child_keymat("sha256", sk_d, ni, nr, 64, shared_secret=Secret(g)) == prf_plus(
        "sha256", sk_d, g + ni + nr, 64
    )


@pytest.mark.parametrize(("enc", "integ", "ke", "ka"), SUITES, ids=SUITE_IDS)
@settings(max_examples=15, deadline=None)
@given(plaintext=st.binary(max_size=300), prefix=st.binary(min_size=1, max_size=40))
def test_seal_open_round_trip(
    enc: str, integ: str | None, ke: int, ka: int, plaintext: bytes, prefix: bytes
) -> None:
    sk = _cipher(enc, integ, ke, ka)
    sealed = sk.seal(prefix, plaintext, os.urandom)
    assert len(sealed) == sk.sealed_length(len(plaintext))
    assert (len(sealed) - sk.iv_bytes - sk.icv_bytes) % sk.block_bytes == 0
    assert sk.open(prefix, sealed) == plaintext


@pytest.mark.parametrize(("enc", "integ", "ke", "ka"), SUITES, ids=SUITE_IDS)
def test_tampering_is_integrity_error(enc: str, integ: str | None, ke: int, ka: int) -> None:
    sk = _cipher(enc, integ, ke, ka)
    prefix = os.urandom(32)
    sealed = sk.seal(prefix, b"payloads", os.urandom)
    for i in range(len(sealed)):
        broken = bytearray(sealed)
        broken[i] ^= 0x40
        with pytest.raises(IntegrityError):
            sk.open(prefix, bytes(broken))
    with pytest.raises(IntegrityError):
        sk.open(bytes([prefix[0] ^ 0x01]) + prefix[1:], sealed)  # (b"X" + … was the same 1 in 256)
    err = IntegrityError("x")
    assert isinstance(err, ParseError) and err.notify is None  # RFC 7296 §2.21.1: silent drop


@pytest.mark.parametrize(("enc", "integ", "ke", "ka"), SUITES, ids=SUITE_IDS)
def test_bad_layout_is_parse_error(enc: str, integ: str | None, ke: int, ka: int) -> None:
    sk = _cipher(enc, integ, ke, ka)
    for size in range(sk.iv_bytes + sk.icv_bytes + 1):
        with pytest.raises(ParseError):
            sk.open(b"p", os.urandom(size))


def test_cbc_hmac_layout_is_rfc7296_3_14() -> None:
    """Decrypt by hand: IV | AES-CBC(payload | pad | pad length) | HMAC-SHA-256-128
    over prefix | IV | ciphertext (RFC 7296 §3.14, RFC 4868 §2.3)."""
    ke, ka = os.urandom(16), os.urandom(32)
    sk = SkCipher("aes128", "sha256", Secret(ke), Secret(ka))
    prefix, plaintext = b"H" * 32, b"0123456789"
    sealed = sk.seal(prefix, plaintext, os.urandom)
    iv, ct, icv = sealed[:16], sealed[16:-16], sealed[-16:]
    assert icv == hmac.digest(ka, prefix + iv + ct, "sha256")[:16]
    d = Cipher(algorithms.AES(ke), modes.CBC(iv)).decryptor()
    body = d.update(ct) + d.finalize()
    assert body[: len(plaintext)] == plaintext and body[-1] == len(body) - len(plaintext) - 1


@pytest.mark.parametrize(("enc", "aead_cls"), [("aes256gcm", AESGCM),
                                               ("chacha20poly1305", ChaCha20Poly1305)])
def test_aead_layout_is_rfc5282(enc: str, aead_cls: type[AESGCM] | type[ChaCha20Poly1305]) -> None:
    """Nonce = salt (last 4 bytes of SK_e) | 8-byte IV; AAD = the prefix
    (RFC 5282 §3, §5.1; RFC 7634 §2-§4)."""
    key = os.urandom(36)
    sk = SkCipher(enc, None, Secret(key), Secret(b""))
    prefix, plaintext = b"A" * 32, b"inner payloads"
    sealed = sk.seal(prefix, plaintext, os.urandom)
    iv = sealed[:8]
    body = aead_cls(key[:32]).decrypt(key[32:] + iv, sealed[8:], prefix)
    assert body == plaintext + b"\x00"  # no padding needed, Pad Length 0


def test_constructor_checks() -> None:
    with pytest.raises(LocalError):
        SkCipher("aes128", "sha256", Secret(os.urandom(15)), Secret(os.urandom(32)))
    with pytest.raises(LocalError):
        SkCipher("aes128gcm", "sha256", Secret(os.urandom(20)), Secret(os.urandom(32)))
    with pytest.raises(LocalError):
        SkCipher("aes128", "sha256", Secret(os.urandom(16)), Secret(os.urandom(31)))
    with pytest.raises(LocalError):
        SkCipher("blowfish", None, Secret(b""), Secret(b""))
    sk = _cipher("aes128", "sha256", 16, 32)
    assert "Secret" not in repr(sk) and repr(sk) == "SkCipher('aes128', 'sha256')"
