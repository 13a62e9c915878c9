"""Kerberos V5 (GSS-API, RFC 4121) authentication for IKEv2: the
definitions of ``docs/kerberos.md``.

IKEv2 has no Kerberos method (RFC 7296 §2.15), so secpath defines one in
the private-use ranges: AUTH method :data:`KERBEROS_AUTH_METHOD` (§3.8
private use, 201–255) and the status notify :data:`GSS_TOKEN` (§3.10.1
private use, 40960–65535) that carries one GSS-API context token.  The
tokens travel in IKE_AUTH round trips as EAP does (§2.16), and the AUTH
payloads are computed as for EAP-generated keys from an MSK taken from the
established context with GSS_Pseudo_random (RFC 4401).

This module is sans-IO: the GSS-API itself (which reads keytabs and asks
the KDC for tickets) is behind :class:`KerberosProvider`, which
:mod:`secpath.ike.gss` implements with the ``gssapi`` package.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from secpath.errors import LocalError
from secpath.ike.auth import Identity, IdType
from secpath.secret import Secret

__all__ = [
    "BINDING_MIC",
    "BINDING_PRF",
    "GSS_BINDING",
    "GSS_MIC",
    "GSS_TOKEN",
    "KERBEROS_AUTH_METHOD",
    "MSK_LENGTH",
    "GssAcceptor",
    "GssInitiator",
    "KerberosCredentials",
    "KerberosError",
    "KerberosProvider",
    "TicketSource",
    "channel_bindings",
    "msk_seed",
    "principal_identity",
    "principal_realm",
    "provider_bindings",
    "remote_id_matches",
    "target_principal",
]

KERBEROS_AUTH_METHOD = 201  # RFC 7296 §3.8: 201-255 private use
GSS_TOKEN = 40960  # RFC 7296 §3.10.1: status types 40960-65535 private use
GSS_BINDING = 40961  # which key binding (docs/kerberos.md §5): offered list / chosen one
GSS_MIC = 40962  # a GSS MIC token over the sender's signed octets (MIC binding)
MSK_LENGTH = 64  # octets of GSS_Pseudo_random output used as the MSK (RFC 7296 §2.16)
BINDING_PRF = 1  # AUTH keyed with an MSK from GSS_Pseudo_random (RFC 4401)
BINDING_MIC = 2  # GSS MICs over the signed octets, AUTH keyed with SK_pi/SK_pr

_BINDINGS_LABEL = b"secpath IKEv2 GSS-API channel bindings"
_PRF_LABEL = b"secpath IKEv2 GSS-API MSK"


class KerberosError(LocalError):
    """A GSS-API call failed; the message is the library's major/minor
    status text (never key material)."""


class GssInitiator(Protocol):
    """The initiator's security context (RFC 2743 §2.2.1 GSS_Init_sec_context)."""

    @property
    def complete(self) -> bool: ...

    def step(self, token: bytes | None) -> bytes | None:
        """The next output token; ``None`` as input on the first call."""
        ...

    def prf(self, seed: bytes, length: int) -> Secret:
        """GSS_Pseudo_random with GSS_C_PRF_KEY_FULL (RFC 4401 §2)."""
        ...

    def get_mic(self, data: bytes) -> bytes:
        """GSS_GetMIC (RFC 2743 §2.3.1) on the established context."""
        ...

    def verify_mic(self, data: bytes, token: bytes) -> None:
        """GSS_VerifyMIC (RFC 2743 §2.3.2); KerberosError when it fails."""
        ...


class GssAcceptor(Protocol):
    """The acceptor's security context (RFC 2743 §2.2.2 GSS_Accept_sec_context)."""

    @property
    def complete(self) -> bool: ...

    @property
    def initiator_name(self) -> str: ...

    @property
    def target_name(self) -> str: ...

    def step(self, token: bytes) -> bytes | None: ...

    def prf(self, seed: bytes, length: int) -> Secret: ...

    def get_mic(self, data: bytes) -> bytes: ...

    def verify_mic(self, data: bytes, token: bytes) -> None: ...


class KerberosProvider(Protocol):
    """Makes security contexts for one host's Kerberos credentials."""

    @property
    def principal(self) -> str:
        """Our own principal as an initiator (``host/alpha.example@REALM``)."""
        ...

    @property
    def default_realm(self) -> str: ...

    def initiator(self, target: str, bindings: bytes) -> GssInitiator: ...

    def acceptor(self, bindings: bytes) -> GssAcceptor: ...


@runtime_checkable
class TicketSource(Protocol):
    """A provider that can get the service ticket for ``target`` ahead of
    the IKE SA (a blocking KDC round trip, run off the event loop), so that
    :meth:`KerberosProvider.initiator` later finds it in its credential
    cache (docs/kerberos.md §8)."""

    def fetch_ticket(self, target: str) -> None: ...


@runtime_checkable
class BindingChoice(Protocol):
    """A provider that says which key bindings it can do (docs/kerberos.md
    §5), preferred first; one without this does both, PRF first."""

    @property
    def key_bindings(self) -> tuple[int, ...]: ...


def provider_bindings(provider: KerberosProvider) -> tuple[int, ...]:
    if isinstance(provider, BindingChoice):
        return provider.key_bindings
    return (BINDING_PRF, BINDING_MIC)


@dataclass(frozen=True, slots=True)
class KerberosCredentials:
    """A rule's Kerberos method: the provider and the rule's settings
    (``realm``: accepted initiators' realm, default the provider's;
    ``service_principal``: the responder's principal we ask a ticket for)."""

    provider: KerberosProvider
    realm: str | None = None
    service_principal: str | None = None

    @property
    def accepted_realm(self) -> str:
        return self.realm or self.provider.default_realm


def principal_identity(principal: str) -> Identity:
    """A Kerberos principal as an IKE identity: ID_RFC822_ADDR with the
    principal's display form (RFC 1964 §2.1.1), e.g. ``host/a.example@REALM``."""
    try:
        data = principal.encode("ascii")
    except UnicodeEncodeError as exc:
        raise LocalError(f"Kerberos principal {principal!r}: not ASCII") from exc
    if "@" not in principal:
        raise LocalError(f"Kerberos principal {principal!r}: no @REALM")
    return Identity(IdType.RFC822_ADDR, data)


def principal_realm(principal: str) -> str:
    return principal.rpartition("@")[2]


def target_principal(creds: KerberosCredentials, remote_id: Identity | None) -> str:
    """The responder's service principal: the rule's ``service_principal``;
    else ``remote_id`` when it is a principal; else ``host/<fqdn>@REALM``
    for an FQDN ``remote_id`` (docs/kerberos.md §4)."""
    if creds.service_principal is not None:
        return creds.service_principal
    realm = creds.realm or creds.provider.default_realm
    if remote_id is not None and remote_id.id_type is IdType.RFC822_ADDR:
        return remote_id.data.decode("ascii")
    if remote_id is not None and remote_id.id_type is IdType.FQDN:
        return f"host/{remote_id.data.decode('ascii')}@{realm}"
    raise LocalError("kerberos method: set service_principal or an FQDN/principal remote_id")


def remote_id_matches(remote_id: Identity | None, principal: str, realm: str) -> bool:
    """Whether a rule's expected peer identity names ``principal``: no
    ``remote_id``; the principal itself; or an FQDN whose host principal
    ``host/<fqdn>@<realm>`` it is (docs/kerberos.md §4)."""
    if remote_id is None or remote_id == principal_identity(principal):
        return True
    if remote_id.id_type is IdType.FQDN:
        fqdn = remote_id.data.decode("ascii", "replace")
        return principal.lower() == f"host/{fqdn}@{realm}".lower()
    return False


def channel_bindings(init_request: bytes, init_response: bytes) -> bytes:
    """GSS-API channel bindings application data (RFC 2744 §3.11): a
    SHA-256 over both IKE_SA_INIT messages, so an AP-REQ made for one IKE SA
    is refused in any other (docs/kerberos.md §5)."""
    h = hashlib.sha256(_BINDINGS_LABEL)
    for part in (init_request, init_response):
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    return h.digest()


def msk_seed(spi_i: bytes, spi_r: bytes, ni: bytes, nr: bytes) -> bytes:
    """The prf_in of GSS_Pseudo_random (RFC 4401 §2) for the MSK: a label,
    the IKE SPIs and both nonces."""
    return _PRF_LABEL + spi_i + spi_r + ni + nr
