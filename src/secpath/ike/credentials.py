"""Load a rule's authentication material from the files the policy names.

This is the one place of :mod:`secpath.ike` that reads files; the daemon
calls it when it loads a policy, and hands the :class:`Credentials` to the
(sans-IO) engine.
"""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from secpath.errors import LocalError
from secpath.ike.config import Credentials
from secpath.policy.model import CertificateAuth, PskAuth, Rule
from secpath.secret import Secret

__all__ = ["load_credentials"]


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LocalError(f"{what} {path}: cannot read ({exc.strerror})") from exc


def _certificates(path: Path) -> list[x509.Certificate]:
    data = _read(path, "certificate file")
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise LocalError(f"certificate file {path}: not a PEM or DER certificate") from exc


def load_psk(auth: PskAuth) -> Secret:
    """The PSK file's content without the trailing newline.  DESIGN.md: a PSK
    file must not be readable by group or others."""
    path = auth.secret_file
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise LocalError(f"PSK file {path}: cannot stat ({exc.strerror})") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise LocalError(f"PSK file {path}: readable by others (chmod 600 it)")
    value = _read(path, "PSK file").rstrip(b"\r\n")
    if not value:
        raise LocalError(f"PSK file {path}: empty")
    return Secret(value)


def load_certificate_auth(auth: CertificateAuth) -> Credentials:
    anchors = tuple(_certificates(auth.ca))
    if auth.certificate is None or auth.private_key is None:
        raise LocalError("certificate method: certificate and private_key files are needed")
    chain = _certificates(auth.certificate)
    key_data = _read(auth.private_key, "private key file")
    try:
        if b"-----BEGIN" in key_data:
            key = serialization.load_pem_private_key(key_data, None)
        else:
            key = serialization.load_der_private_key(key_data, None)
    except (ValueError, TypeError) as exc:
        raise LocalError(f"private key file {auth.private_key}: unreadable key") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise LocalError(f"private key file {auth.private_key}: RSA or ECDSA keys only")
    return Credentials(
        certificate=chain[0],
        private_key=key,
        intermediates=tuple(chain[1:]),
        trust_anchors=anchors,
    )


def load_credentials(rule: Rule) -> Credentials:
    """The first PSK or certificate method of the rule, loaded."""
    for method in rule.authentication:
        if isinstance(method, PskAuth):
            return Credentials(psk=load_psk(method))
        if isinstance(method, CertificateAuth):
            return load_certificate_auth(method)
    raise LocalError(f"rule {rule.name!r}: no psk or certificate method (kerberos is not IKEv2)")
