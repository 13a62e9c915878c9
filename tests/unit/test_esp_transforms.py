"""secpath.esp.transforms: names, key checks, the CBC IV generator."""

from __future__ import annotations

import os
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

import secpath.esp
from secpath.errors import LocalError
from secpath.esp import TRANSFORM_NAMES
from secpath.esp.transforms import CbcHmacTransform, make_transform, parse_transform
from secpath.secret import Secret

ISSUE_TRANSFORMS = ["3des-sha1", "aes128-sha1", "aes128-sha256", "aes256-sha256",
                    "aes256-sha384", "aes256-sha512", "aes128gcm16", "aes256gcm16",
                    "chacha20poly1305", "null-sha256"]


def test_every_transform_of_the_issue_is_known() -> None:
    assert set(ISSUE_TRANSFORMS) <= TRANSFORM_NAMES
    assert parse_transform("aes256-sha384")[1] is not None
    assert parse_transform("aes256-sha384")[1].icv_bytes == 24  # type: ignore[union-attr]
    with pytest.raises(LocalError, match="accepted"):
        parse_transform("aes128gcm8")


def test_public_surface() -> None:
    for name in ("SecurityAssociation", "ReplayError", "IntegrityError", "PaddingError",
                 "UnknownSpiError", "ParseError", "DecryptError", "Lifetime", "EspCounters"):
        assert name in secpath.esp.__all__
        assert hasattr(secpath.esp, name)


def cbc(rng: object = None) -> CbcHmacTransform:
    t = make_transform("aes128-sha256", spi=0x1000, esn=False,
                       encryption_key=Secret(bytes(16)), integrity_key=Secret(bytes(32)),
                       rng=rng)  # type: ignore[arg-type]
    assert isinstance(t, CbcHmacTransform)
    return t


def test_cbc_output_is_standard_cbc_with_its_iv() -> None:
    # whatever IV the chained encryptor produced, plain AES-CBC with that IV
    # and the same key decrypts the packet: the wire format is RFC 3602 §3
    t = cbc()
    for seq in range(1, 6):
        plaintext = os.urandom(16 * seq)
        sealed = t.seal(struct.pack("!II", 0x1000, seq), seq, plaintext)
        iv, ciphertext = sealed[8:24], sealed[24:-16]
        decryptor = Cipher(algorithms.AES(bytes(16)), modes.CBC(iv)).decryptor()
        assert decryptor.update(ciphertext) + decryptor.finalize() == plaintext


def test_cbc_ivs_differ_and_depend_on_the_secret() -> None:
    plaintext = bytes(32)
    ivs = {cbc().seal(b"\x00" * 8, seq, plaintext)[8:24] for seq in range(1, 50)}
    # a fresh transform per packet: the IV still changes with the sequence number
    assert len(ivs) == 49
    a = cbc(rng=lambda n: b"\x01" * n).seal(b"\x00" * 8, 1, plaintext)[8:24]
    b = cbc(rng=lambda n: b"\x02" * n).seal(b"\x00" * 8, 1, plaintext)[8:24]
    assert a != b


def test_rng_must_return_a_block() -> None:
    with pytest.raises(LocalError):
        cbc(rng=lambda n: b"\x00")
