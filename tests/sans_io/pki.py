"""A small test PKI: CAs and end-entity certificates made with ``cryptography``.

Keys are generated once per process and cached (RSA generation is slow).
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

# Certificates are valid from 2025-01-01 to 2035-01-01; tests run at NOW.
NOT_BEFORE = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
NOT_AFTER = datetime.datetime(2035, 1, 1, tzinfo=datetime.UTC)
NOW = datetime.datetime(2030, 6, 1, tzinfo=datetime.UTC).timestamp()


@functools.cache
def rsa_key(tag: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@functools.cache
def ec_key(tag: str, curve: str = "secp256r1") -> ec.EllipticCurvePrivateKey:
    curves: dict[str, ec.EllipticCurve] = {
        "secp256r1": ec.SECP256R1(),
        "secp384r1": ec.SECP384R1(),
    }
    return ec.generate_private_key(curves[curve])


@dataclass(frozen=True)
class Ca:
    cert: x509.Certificate
    key: PrivateKey


@functools.cache
def make_ca(name: str) -> Ca:
    key = ec_key(f"ca-{name}", "secp384r1")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"secpath test CA {name}")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA384())
    )
    return Ca(cert, key)


def make_leaf(
    ca: Ca,
    key: PrivateKey,
    *,
    ip: str | None = None,
    dns: str | None = None,
    email: str | None = None,
    cn: str = "peer",
    not_before: datetime.datetime = NOT_BEFORE,
    not_after: datetime.datetime = NOT_AFTER,
) -> x509.Certificate:
    sans: list[x509.GeneralName] = []
    if ip is not None:
        sans.append(x509.IPAddress(ipaddress.ip_address(ip)))
    if dns is not None:
        sans.append(x509.DNSName(dns))
    if email is not None:
        sans.append(x509.RFC822Name(email))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "secpath"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca.key, hashes.SHA384())
