"""IKEv2 handshakes per second, both engines in one process (issue 4).

Each handshake is a full IKE_SA_INIT + IKE_AUTH with the first Child SA,
between two :class:`secpath.ike.engine.IkeEngine` objects paired in memory
(a new pair every 50 handshakes).  Two profiles: x25519 + PSK
(chacha20poly1305-prfsha256-x25519) and modp2048 + RSA-2048 certificates
(aes128-sha256-modp2048).

Baseline, measured in the same run, alternating with the handshakes: the
public-key cost of one handshake — the operations no protocol engine can
avoid, done with the same ``secpath.crypto.dh`` calls the engines make:

* both DH key generations and both DH shared secrets (x25519 or modp2048);
* RSA profile: two RSA-2048 signatures (RSASSA-PSS, SHA-256, as the engines
  negotiate with RFC 7427), two verifications and two certificate-chain
  validations; the PSK profile has no public-key operation besides DH.

``ratio`` = bound time / handshake time, the share of a handshake that the
bound accounts for (issue 4's target: >= 50 %).  Everything else is charged
to the engine, symmetric crypto included.  So
that the report can tell it apart, ``sym`` is the symmetric crypto of one
handshake measured alone, again with the engines' own primitives: SKEYSEED
and the SK_* prf+ (both sides), the Child SA KEYMAT, the four prf(SK_p, ID)
and (PSK) the four AUTH MACs (the PSK's key pad made once, as the
engines keep it on the credentials), the four SK cipher objects, the two IKE_AUTH
messages sealed and opened, and the eight NAT_DETECTION SHA-1 hashes.
``ratio+sym`` = (public-key + symmetric time) / handshake time.

After set-up the bench calls ``gc.freeze()``, as the daemon does once its
policy is loaded (``secpath.daemon.service``): full collections then scan
only the objects the handshakes made.  ``--no-gc-freeze`` leaves it out, to
measure what it brings.

Run: ``.venv/bin/python bench/bench_ike.py``.
"""

from __future__ import annotations

import datetime
import gc
import ipaddress
import os
import sys
import time
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from tests.policies import one_rule_config

from secpath.crypto.dh import generate_dh
from secpath.ike import auth
from secpath.ike.config import Credentials, IkeConfig, Timing
from secpath.ike.engine import IkeEngine
from secpath.ike.events import ChildSaInstalled
from secpath.policy.model import (
    KeyExchangeMethod,
    SecurityMethod,
)
from secpath.secret import Secret

A, B = "10.0.0.1", "10.0.0.2"
NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC).timestamp()
ROUNDS = {"x25519+PSK": 300, "modp2048+RSA-2048": 40}
REPEATS = 3


def _ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench CA")])
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], ip: str,
          key: rsa.RSAPrivateKey) -> x509.Certificate:
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ip)]))
        .issuer_name(ca[0].subject).public_key(key.public_key()).serial_number(2)
        .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca[1].public_key()),
                       critical=False)
        .sign(ca[1], hashes.SHA256())
    )


def _config(me: str, peer: str, method: KeyExchangeMethod, esp: SecurityMethod,
            creds: Credentials) -> IkeConfig:
    return one_rule_config(me, peer, (method,), (esp,), creds, timing=Timing(dpd_interval=None))


def _handshake(a: IkeEngine, b: IkeEngine) -> None:
    a.initiate("path", NOW)
    installed = 0
    while True:
        moved = False
        for src, dst, addr in ((a, b, A), (b, a, B)):
            for d in src.datagrams_to_send():
                moved = True
                dst.receive_datagram(d.data, (addr, d.source_port), NOW,
                                     local_port=d.destination[1])
        for e in (a, b):
            while (ev := e.next_event()) is not None:
                installed += isinstance(ev, ChildSaInstalled)
        if not moved:
            break
    if installed != 2:
        raise RuntimeError("handshake did not complete")


def _time(fns: tuple[Callable[[], None], ...], rounds: int) -> list[float]:
    """Best seconds per call of each function over REPEATS runs of ``rounds``
    calls, the functions alternating so that load changes hit them alike."""
    best = [float("inf")] * len(fns)
    for _ in range(REPEATS):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            for _ in range(rounds):
                fn()
            best[i] = min(best[i], (time.perf_counter() - start) / rounds)
    return best


def _symmetric_cost(prf_name: str, encryption: str, integrity: str | None, esp: SecurityMethod,
                    psk: Secret | None) -> Callable[[], None]:
    """The symmetric crypto of one handshake, both sides (see the docstring)."""
    from secpath.crypto import kdf
    from secpath.crypto.prf import prf
    from secpath.crypto.sk import SkCipher
    from secpath.ike.exchange_init import nat_detection_hash

    ni, nr, spi_i, spi_r = os.urandom(32), os.urandom(32), os.urandom(8), os.urandom(8)
    shared = Secret(os.urandom(32))
    inner = os.urandom(180)  # about the IKE_AUTH payloads with the first Child SA
    prefix = os.urandom(32)
    id_body = os.urandom(8)

    def mac(key: bytes, data: bytes) -> bytes:
        return prf(prf_name, key, data)

    # prf(PSK, "Key Pad for IKEv2"): made once per PSK, as the engines keep it
    pad = auth.psk_pad(mac, psk) if psk is not None else None

    def run() -> None:
        ciphers: list[SkCipher] = []
        for _side in range(2):
            seed = kdf.skeyseed(prf_name, ni, nr, shared)
            keys = kdf.derive_ike_keys(prf_name, encryption, integrity, seed,
                                       ni=ni, nr=nr, spi_i=spi_i, spi_r=spi_r)
            ciphers += [SkCipher(encryption, integrity, keys.sk_ei, keys.sk_ai),
                        SkCipher(encryption, integrity, keys.sk_er, keys.sk_ar)]
            for sk_p in (keys.sk_pi, keys.sk_pr):
                octets = inner + ni + prf(prf_name, sk_p, id_body)
                if psk is not None:
                    auth.psk_auth_data(mac, psk, octets, pad=pad)
            length = kdf.esp_keymat_bytes(esp.encryption, esp.integrity)
            kdf.split_child_keymat(kdf.child_keymat(prf_name, keys.sk_d, ni, nr, length),
                                   esp.encryption, esp.integrity)
            for port in (500, 500, 4500, 4500):
                nat_detection_hash(spi_i, spi_r, A, port)
        # the IKE_AUTH request, initiator to responder, and its response back
        i_out, i_in, r_in, r_out = ciphers
        r_in.open(prefix, i_out.seal(prefix, inner, os.urandom))
        i_in.open(prefix, r_out.seal(prefix, inner, os.urandom))

    return run


def _dh_cost(group: int) -> Callable[[], None]:
    def run() -> None:
        x = generate_dh(group, os.urandom)
        y = generate_dh(group, os.urandom)
        x.shared_secret(y.public_bytes)
        y.shared_secret(x.public_bytes)

    return run


def main() -> None:
    profiles: list[tuple[str, IkeConfig, IkeConfig, Callable[[], None], Callable[[], None]]] = []

    psk = Credentials(psk=Secret(os.urandom(32)))
    x_method = KeyExchangeMethod("sha256", "chacha20poly1305", 31)
    x_esp = SecurityMethod("chacha20poly1305", "none")
    profiles.append(("x25519+PSK", _config(A, B, x_method, x_esp, psk),
                     _config(B, A, x_method, x_esp, psk), _dh_cost(31),
                     _symmetric_cost("sha256", "chacha20poly1305", None, x_esp, psk.psk)))

    ca = _ca()
    keys = {ip: rsa.generate_private_key(public_exponent=65537, key_size=2048) for ip in (A, B)}
    certs = {ip: _leaf(ca, ip, keys[ip]) for ip in (A, B)}
    m_method = KeyExchangeMethod("sha256", "aes128", 14)
    m_esp = SecurityMethod("aes128", "sha256")

    def creds(ip: str) -> Credentials:
        return Credentials(certificate=certs[ip], private_key=keys[ip], trust_anchors=(ca[0],))

    dh14 = _dh_cost(14)
    octets = os.urandom(600)
    leaf_der = auth.certificate_der(certs[A])
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)

    def rsa_crypto() -> None:
        dh14()
        for ip in (A, B):
            sig = keys[ip].sign(octets, pss, hashes.SHA256())
            public = auth.validate_certificate(leaf_der, [], [ca[0]],
                                               auth.Identity.parse(A), NOW)
            assert isinstance(public, rsa.RSAPublicKey)
            keys[ip].public_key().verify(sig, octets, pss, hashes.SHA256())

    profiles.append(("modp2048+RSA-2048", _config(A, B, m_method, m_esp, creds(A)),
                     _config(B, A, m_method, m_esp, creds(B)), rsa_crypto,
                     _symmetric_cost("sha256", "aes128", "sha256", m_esp, None)))

    if "--no-gc-freeze" not in sys.argv:
        gc.freeze()  # as the daemon after start-up
    print(f"{'profile':<20} {'handshakes/s':>13} {'public-key/s':>13} {'ratio':>6} "
          f"{'sym/s':>8} {'ratio+sym':>10}")
    for name, cfg_a, cfg_b, crypto, symmetric in profiles:
        rounds = ROUNDS[name]
        engines: list[tuple[IkeEngine, IkeEngine]] = []
        done = [0]

        def one(cfg_a: IkeConfig = cfg_a, cfg_b: IkeConfig = cfg_b,
                engines: list[tuple[IkeEngine, IkeEngine]] = engines, done: list[int] = done
                ) -> None:
            if done[0] % 50 == 0:  # a fresh pair now and then: SA tables stay small
                engines.append((IkeEngine([cfg_a], os.urandom), IkeEngine([cfg_b], os.urandom)))
            done[0] += 1
            _handshake(*engines[-1])

        full, bound, sym = _time((one, crypto, symmetric), rounds)
        print(f"{name:<20} {1 / full:>13.1f} {1 / bound:>13.1f} {bound / full:>6.0%} "
              f"{1 / sym:>8.1f} {(bound + sym) / full:>10.0%}")


if __name__ == "__main__":
    main()
