"""Load a rule's authentication material from the files the policy names.

This is the one place of :mod:`secpath.ike` that reads files; the daemon
calls it when it loads a policy, and hands the :class:`Credentials` to the
(sans-IO) engine.
"""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from secpath.errors import LocalError
from secpath.ike.config import Credentials
from secpath.ike.kerberos import KerberosError
from secpath.policy.model import CertificateAuth, KerberosAuth, PskAuth, Rule
from secpath.secret import Secret

__all__ = ["load_all_credentials", "load_certificate_auth", "load_credentials", "load_kerberos_auth",
           "load_psk"]


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


def load_kerberos_auth(auth: KerberosAuth) -> Credentials:
    """The Kerberos method, ready to use: ``gssapi`` importable, the keytab
    readable, our principal known (docs/kerberos.md §6)."""
    from secpath.ike.gss import load_kerberos

    if auth.keytab is not None:
        try:
            with auth.keytab.open("rb"):
                pass
        except OSError as exc:
            raise KerberosError(f"keytab {auth.keytab}: cannot read ({exc.strerror})") from exc
    creds = load_kerberos(auth)
    principal = creds.provider.principal
    if "@" not in principal:
        raise KerberosError(f"Kerberos principal {principal!r}: no realm")
    return Credentials(kerberos=creds)


def load_credentials(rule: Rule) -> Credentials:
    """The rule's first usable authentication method, in the rule's order
    (the guide's wizard: Kerberos first, certificates next).  A method that
    cannot be used here is skipped and its reason kept in
    ``Credentials.skipped``; LocalError with every reason when none can."""
    return load_all_credentials(rule)[0]


def load_all_credentials(rule: Rule) -> tuple[Credentials, ...]:
    """Every usable authentication method of the rule, in the rule's order:
    the initiator tries them one after the other at run time and the
    responder accepts any of them (docs/kerberos.md §6).  Each one's
    ``skipped`` names the methods before it that cannot be used here, and
    why; LocalError with every reason when none can."""
    reasons: list[str] = []
    usable: list[Credentials] = []
    for method in rule.authentication:
        try:
            if isinstance(method, KerberosAuth):
                creds = load_kerberos_auth(method)
            elif isinstance(method, PskAuth):
                creds = Credentials(psk=load_psk(method))
            else:
                creds = load_certificate_auth(method)
        except LocalError as exc:
            reasons.append(f"{method.method}: {exc}")
            continue
        usable.append(replace(creds, skipped=tuple(reasons)))
    if not usable:
        why = "; ".join(reasons) or "no authentication method"
        raise LocalError(f"rule {rule.name!r}: no usable authentication method ({why})")
    return tuple(usable)
