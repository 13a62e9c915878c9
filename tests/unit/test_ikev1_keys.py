"""IKEv1 keying (RFC 2409 §5, Appendix B) checked against the formulas
written out with ``hmac``/``hashlib`` directly, and the CBC chain."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from secpath.errors import ParseError
from secpath.ike.v1.keys import (
    Phase1Cipher,
    derive_phase1,
    expand_key,
    hash_i,
    hash_r,
    initial_iv,
    phase2_iv,
    quick_keymat,
    skeyid_psk,
    skeyid_signature,
)
from secpath.secret import Secret

NI, NR = b"\x01" * 16, b"\x02" * 16
CKY_I, CKY_R = b"\xaa" * 8, b"\xbb" * 8
GXY = Secret(b"\x33" * 128)


def mac(key: bytes, data: bytes, h: str = "sha1") -> bytes:
    return hmac.digest(key, data, h)


def test_skeyid_for_psk_and_signatures() -> None:
    psk = Secret(b"the pre-shared key")
    assert skeyid_psk("sha1", psk, NI, NR).reveal() == mac(psk.reveal(), NI + NR)
    assert skeyid_signature("sha256", NI, NR, GXY).reveal() == \
        mac(NI + NR, GXY.reveal(), "sha256")


def test_skeyid_d_a_e_and_the_3des_key_expansion() -> None:
    skeyid = Secret(b"\x44" * 20)
    keys = derive_phase1("sha1", skeyid, GXY, CKY_I, CKY_R, "3des")
    g = GXY.reveal()
    d = mac(skeyid.reveal(), g + CKY_I + CKY_R + b"\x00")
    a = mac(skeyid.reveal(), d + g + CKY_I + CKY_R + b"\x01")
    e = mac(skeyid.reveal(), a + g + CKY_I + CKY_R + b"\x02")
    assert (keys.skeyid_d.reveal(), keys.skeyid_a.reveal(), keys.skeyid_e.reveal()) == (d, a, e)
    # Appendix B: SHA-1's 20 bytes are short of 3DES's 24: K1 = prf(e, 0), K2 = prf(e, K1)
    k1 = mac(e, b"\x00")
    k2 = mac(e, k1)
    assert keys.encryption_key.reveal() == (k1 + k2)[:24]
    assert "Secret" not in repr(keys) and "44" not in repr(keys)


def test_expand_key_takes_a_long_enough_skeyid_e_as_is() -> None:
    e = Secret(bytes(range(32)))
    assert expand_key("sha256", e, 16).reveal() == bytes(range(16))


def test_main_mode_hashes() -> None:
    skeyid = Secret(b"\x55" * 32)
    args = (b"gxi", b"gxr", CKY_I, CKY_R, b"SAi_b", b"ID_b")
    assert hash_i("sha256", skeyid, *args) == mac(
        skeyid.reveal(), b"gxigxr" + CKY_I + CKY_R + b"SAi_bID_b", "sha256")
    assert hash_r("sha256", skeyid, *args) == mac(
        skeyid.reveal(), b"gxrgxi" + CKY_R + CKY_I + b"SAi_bID_b", "sha256")


@pytest.mark.parametrize("pfs", [False, True])
def test_quick_mode_keymat(pfs: bool) -> None:
    d = Secret(b"\x66" * 20)
    spi = bytes.fromhex("c0ffee01")
    gxy = Secret(b"\x77" * 64) if pfs else None
    seed = (gxy.reveal() if gxy else b"") + b"\x03" + spi + NI + NR
    k1 = mac(d.reveal(), seed)
    k2 = mac(d.reveal(), k1 + seed)
    k3 = mac(d.reveal(), k2 + seed)
    assert quick_keymat("sha1", d, 3, spi, NI, NR, 44, gxy).reveal() == (k1 + k2 + k3)[:44]


def test_ivs() -> None:
    assert initial_iv("sha1", b"gxi", b"gxr", 8) == hashlib.sha1(b"gxigxr").digest()[:8]
    last = b"\x99" * 16
    assert phase2_iv("sha256", last, 0x01020304) == \
        hashlib.sha256(last + bytes((1, 2, 3, 4))).digest()[:16]


@pytest.mark.parametrize(("name", "key_len"), [("3des", 24), ("aes128", 16), ("aes256", 32)])
def test_cbc_chain(name: str, key_len: int) -> None:
    cipher = Phase1Cipher(name, Secret(b"\x10" * key_len))
    iv = b"\x00" * cipher.block
    first, second = b"a" * (3 * cipher.block), b"tail, padded with zeros"
    c1 = cipher.encrypt(first, iv)
    c2 = cipher.encrypt(second, c1[-cipher.block:])
    # one CBC stream: the next message continues from the last ciphertext block
    assert cipher.encrypt(first + second, iv) == c1 + c2
    assert cipher.decrypt(c2, c1[-cipher.block:]).rstrip(b"\x00") == second
    with pytest.raises(ParseError):
        cipher.decrypt(c2[:-1], iv)
    assert "10" not in repr(cipher)
