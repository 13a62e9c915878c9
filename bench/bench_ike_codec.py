"""IKEv2 codec and IKE crypto: per-operation cost against ``cryptography``
doing the same primitive directly (the baseline, measured in the same run).

* DH: secpath's ``generate_dh`` + ``shared_secret`` (rng-driven private key,
  peer value checked and, for MODP, loaded through DER) vs OpenSSL keys
  generated and exchanged directly.
* SK: ``SkCipher.seal``/``open`` of a 300-byte inner chain vs one raw AEAD /
  CBC+HMAC call.
* Messages: encode/decode of an IKE_SA_INIT request and of an IKE_AUTH
  request (SK, AES-GCM-256) — no raw baseline: the ratio is against the
  SK seal of the same size.
* KDF: SKEYSEED + the seven SK_* keys (prf+ with SHA-256) vs one HMAC.

Run: ``.venv/bin/python bench/bench_ike_codec.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import time
import warnings
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.utils import CryptographyDeprecationWarning

from secpath.crypto.dh import _MODP_PRIMES, generate_dh
from secpath.crypto.kdf import derive_ike_keys, skeyseed
from secpath.crypto.sk import SkCipher
from secpath.ike.message import Header, Message, decode_message, encode_message
from secpath.ike.payloads import (
    AuthPayload,
    IdiPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
    Proposal,
    SaPayload,
    Transform,
    TransformAttribute,
    TsiPayload,
    TsrPayload,
)
from secpath.ike.selectors import TrafficSelector
from secpath.secret import Secret

with warnings.catch_warnings():
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from cryptography.hazmat.primitives.asymmetric import dh


def _per_op(fn: Callable[[], object], min_time: float = 0.3) -> float:
    """Best of three runs of at least ``min_time`` seconds; microseconds per call."""
    best = float("inf")
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < min_time:
            fn()
            n += 1
        best = min(best, elapsed / n)
    return best * 1e6


def _raw_modp(group: int) -> Callable[[], object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        params = dh.DHParameterNumbers(_MODP_PRIMES[group], 2).parameters()
        peer = params.generate_private_key().public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    def run() -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            key = params.generate_private_key()
            return key.exchange(serialization.load_der_public_key(peer))  # type: ignore[arg-type]

    return run


def _raw_ecp() -> Callable[[], object]:
    peer = ec.generate_private_key(ec.SECP384R1()).public_key()
    return lambda: ec.generate_private_key(ec.SECP384R1()).exchange(ec.ECDH(), peer)


def _raw_x25519() -> Callable[[], object]:
    peer = x25519.X25519PrivateKey.generate().public_key()
    return lambda: x25519.X25519PrivateKey.generate().exchange(peer)


def _ours(group: int) -> Callable[[], object]:
    peer = generate_dh(group, os.urandom).public_bytes
    return lambda: generate_dh(group, os.urandom).shared_secret(peer)


def _messages() -> tuple[Message, Message]:
    spi_i, spi_r = os.urandom(8), os.urandom(8)
    sa = SaPayload((Proposal(1, 1, b"", (
        Transform(1, 20, (TransformAttribute(14, 256),)), Transform(2, 6), Transform(4, 20),
    )),))
    init = Message(Header(spi_i, bytes(8), 34, 0, True, False), (
        sa, KePayload(20, os.urandom(96)), NoncePayload(os.urandom(32)),
        NotifyPayload(16388, os.urandom(20)), NotifyPayload(16389, os.urandom(20)),
    ))
    a = ipaddress.IPv4Address("10.0.0.1")
    auth = Message(Header(spi_i, spi_r, 35, 1, True, False), (
        IdiPayload(2, b"a.example.net"), AuthPayload(2, os.urandom(48)),
        SaPayload((Proposal(1, 3, os.urandom(4), (Transform(1, 20, (TransformAttribute(14, 128),)),
                                                  Transform(5, 0))),)),
        TsiPayload((TrafficSelector(a, a),)), TsrPayload((TrafficSelector(a, a),)),
    ), encrypted=True)
    return init, auth


def main() -> None:
    rows: list[tuple[str, float, float | None]] = []
    for group, raw in ((14, _raw_modp(14)), (20, _raw_ecp()), (31, _raw_x25519())):
        rows.append((f"DH group {group}: keygen + shared secret", _per_op(_ours(group)),
                     _per_op(raw)))

    key = os.urandom(36)
    gcm = SkCipher("aes256gcm", None, Secret(key), Secret(b""))
    cbc = SkCipher("aes128", "sha256", Secret(key[:16]), Secret(key[:32]))
    prefix, inner = os.urandom(32), os.urandom(300)
    aes = AESGCM(key[:32])
    raw_gcm = _per_op(lambda: aes.encrypt(key[32:] + os.urandom(8), inner, prefix))
    rows.append(("SK seal 300 B, AES-GCM-256", _per_op(lambda: gcm.seal(prefix, inner, os.urandom)),
                 raw_gcm))
    sealed = gcm.seal(prefix, inner, os.urandom)
    rows.append(("SK open 300 B, AES-GCM-256", _per_op(lambda: gcm.open(prefix, sealed)), raw_gcm))
    sealed_cbc = cbc.seal(prefix, inner, os.urandom)
    raw_hmac = _per_op(lambda: hmac.digest(key[:32], prefix + sealed_cbc, "sha256"))
    rows.append(("SK open 300 B, AES-CBC + HMAC-SHA-256", _per_op(
        lambda: cbc.open(prefix, sealed_cbc)), raw_hmac))

    init, auth = _messages()
    init_bytes = encode_message(init)
    auth_bytes = encode_message(auth, gcm, os.urandom)
    rows.append(("encode IKE_SA_INIT", _per_op(lambda: encode_message(init)), None))
    rows.append(("decode IKE_SA_INIT", _per_op(lambda: decode_message(init_bytes)), None))
    rows.append(("encode IKE_AUTH (SK, GCM)", _per_op(
        lambda: encode_message(auth, gcm, os.urandom)), raw_gcm))
    rows.append(("decode IKE_AUTH (SK, GCM)", _per_op(
        lambda: decode_message(auth_bytes, gcm)), raw_gcm))

    ni, nr, spi = os.urandom(32), os.urandom(32), os.urandom(8)
    secret = Secret(os.urandom(32))

    def kdf() -> object:
        seed = skeyseed("sha256", ni, nr, secret)
        return derive_ike_keys("sha256", "aes128", "sha256", seed, ni=ni, nr=nr, spi_i=spi,
                               spi_r=spi)

    rows.append(("SKEYSEED + SK_* (prf+ SHA-256, 224 B)", _per_op(kdf),
                 _per_op(lambda: hmac.digest(ni, secret.reveal(), hashlib.sha256))))

    print(f"{'operation':44} {'secpath µs':>11} {'baseline µs':>12} {'ratio':>7}")
    for name, ours, base in rows:
        ratio = f"{ours / base:6.2f}x" if base else "    —"
        base_text = f"{base:12.1f}" if base else f"{'—':>12}"
        print(f"{name:44} {ours:11.1f} {base_text} {ratio:>7}")
    print("baseline: the same primitive called on cryptography directly (raw DH keygen +"
          " exchange, one AEAD encrypt, one HMAC)")


if __name__ == "__main__":
    main()
