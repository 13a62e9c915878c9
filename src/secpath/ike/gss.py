"""The Kerberos V5 GSS-API provider of :mod:`secpath.ike.kerberos`, on the
``gssapi`` package (MIT Kerberos), installed with ``secpath[kerberos]``.

This is the I/O side of the Kerberos method: acquiring credentials reads
keytabs and credential caches, and the initiator's first step asks the KDC
for a service ticket.  The engine calls it through the sans-IO protocols of
:mod:`secpath.ike.kerberos`.

GSS_Pseudo_random (RFC 4401) has no binding in ``gssapi``; :func:`_pseudo_random`
calls ``gss_pseudo_random`` of the same ``libgssapi_krb5`` with ctypes, on the
established context exported from ``gssapi`` and imported there (RFC 2743
§2.2.8, §2.2.9).  A library without it still serves the MIC key binding
(docs/kerberos.md §5).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secpath.ike.kerberos import BINDING_MIC, BINDING_PRF, KerberosCredentials, KerberosError
from secpath.policy.model import KerberosAuth
from secpath.secret import Secret

if TYPE_CHECKING:
    import gssapi

__all__ = ["GssapiProvider", "available", "load_kerberos", "missing_reason", "prf_available"]

_EXTRA = "pip install 'secpath[kerberos]'"
_PRF_KEY_FULL = 1  # GSS_C_PRF_KEY_FULL, RFC 4401 §2
_memory_ccaches = itertools.count(1)


def _gssapi() -> Any:
    try:
        import gssapi
    except ImportError as exc:
        raise KerberosError(
            f"kerberos method: the 'gssapi' package is not installed ({_EXTRA})") from exc
    return gssapi


def missing_reason() -> str | None:
    """Why the Kerberos method cannot run here, or ``None`` when it can."""
    try:
        _gssapi()
        _library()
    except KerberosError as exc:
        return str(exc)
    return None


def available() -> bool:
    return missing_reason() is None


def _reason(exc: Exception) -> str:
    """The GSS major and minor status text of a ``GSSError``."""
    gen = getattr(exc, "gen_message", None)
    text = gen() if callable(gen) else str(exc)
    # "Major (n): <text>, Minor (m): <text>" -> the texts
    parts = [p.split("):", 1)[-1].strip() for p in str(text).split(", Minor")]
    return "; ".join(p for p in parts if p and "Minor code may provide" not in p) or str(text)


class _Buffer(ctypes.Structure):
    _fields_ = (("length", ctypes.c_size_t), ("value", ctypes.c_void_p))  # gss_buffer_desc


@cache
def _load(library: str, soname: str) -> ctypes.CDLL:
    """An MIT Kerberos library by its link name (``soname`` when ldconfig
    does not know it); KerberosError when it cannot be loaded."""
    name = ctypes.util.find_library(library) or soname
    try:
        return ctypes.CDLL(name)
    except OSError as exc:
        raise KerberosError(f"kerberos method: cannot load {name} ({exc})") from exc


def _library() -> ctypes.CDLL:
    return _load("gssapi_krb5", "libgssapi_krb5.so.2")


def prf_available() -> bool:
    """Whether the GSS library has ``gss_pseudo_random`` (RFC 4401; MIT ≥ 1.8):
    without it only the MIC key binding is offered (docs/kerberos.md §5)."""
    try:
        return hasattr(_library(), "gss_pseudo_random")
    except KerberosError:
        return False


def _import_context(context: gssapi.SecurityContext) -> ctypes.c_void_p:
    """The established context moved to a raw ``gss_ctx_id_t`` of the same
    library (RFC 2743 §2.2.8 export, §2.2.9 import); ``context`` ends."""
    lib = _library()
    token = context.export()
    minor = ctypes.c_uint32()
    handle = ctypes.c_void_p()
    tok_buf = _Buffer(len(token), ctypes.cast(ctypes.c_char_p(token), ctypes.c_void_p))
    major = lib.gss_import_sec_context(ctypes.byref(minor), ctypes.byref(tok_buf),
                                       ctypes.byref(handle))
    if major != 0:
        raise KerberosError(f"gss_import_sec_context failed (major {major:#x}, minor {minor.value})")
    return handle


def _pseudo_random(handle: ctypes.c_void_p, seed: bytes, length: int) -> Secret:
    """GSS_Pseudo_random(GSS_C_PRF_KEY_FULL) (RFC 4401 §2)."""
    lib = _library()
    minor = ctypes.c_uint32()
    seed_buf = _Buffer(len(seed), ctypes.cast(ctypes.c_char_p(seed), ctypes.c_void_p))
    out = _Buffer()
    major = lib.gss_pseudo_random(ctypes.byref(minor), handle, _PRF_KEY_FULL,
                                  ctypes.byref(seed_buf), ctypes.c_ssize_t(length),
                                  ctypes.byref(out))
    if major != 0:
        raise KerberosError(f"gss_pseudo_random failed (major {major:#x}, minor {minor.value})")
    try:
        return Secret(ctypes.string_at(out.value, out.length))
    finally:
        lib.gss_release_buffer(ctypes.byref(minor), ctypes.byref(out))


class _Context:
    """One ``gssapi.SecurityContext``, GSS errors turned into KerberosError."""

    def __init__(self, context: gssapi.SecurityContext, *, acceptor: bool = False) -> None:
        self._context = context
        self._acceptor = acceptor
        self._raw: ctypes.c_void_p | None = None  # after the first PRF
        self._names: tuple[str, str] | None = None

    def __del__(self) -> None:
        if self._raw is not None:
            minor = ctypes.c_uint32()
            _library().gss_delete_sec_context(ctypes.byref(minor), ctypes.byref(self._raw), None)
            self._raw = None

    @property
    def complete(self) -> bool:
        return self._raw is not None or bool(self._context.complete)

    def _peer_names(self) -> tuple[str, str]:
        if self._names is None:
            self._names = (str(self._context.initiator_name), str(self._context.target_name))
        return self._names

    @property
    def initiator_name(self) -> str:
        return self._peer_names()[0]

    @property
    def target_name(self) -> str:
        return self._peer_names()[1]

    def step(self, token: bytes | None) -> bytes | None:
        g = _gssapi()
        if token is not None and not token:
            raise KerberosError("empty GSS-API token")  # RFC 2743 §3.1: never empty
        try:
            out = self._context.step(token)
            # gssapi returns an error token and keeps the error for the next
            # call (catch_and_return_token): surface it here
            self._context.complete  # noqa: B018
        except g.exceptions.GSSError as exc:
            raise KerberosError(_reason(exc)) from exc
        if self._acceptor and not self._context.complete:
            # RFC 4121 §4.1: one AP-REQ establishes the acceptor's context; a
            # token that asks for another round (a mangled token ID, say) is refused
            raise KerberosError("the initiator's token did not establish a Kerberos context")
        return bytes(out) if out else None

    def get_mic(self, data: bytes) -> bytes:
        g = _gssapi()
        if self._raw is not None:
            raise KerberosError("GSS_GetMIC after GSS_Pseudo_random: the context was exported")
        try:
            return bytes(self._context.get_signature(data))
        except g.exceptions.GSSError as exc:
            raise KerberosError(f"GSS_GetMIC: {_reason(exc)}") from exc

    def verify_mic(self, data: bytes, token: bytes) -> None:
        g = _gssapi()
        if self._raw is not None:
            raise KerberosError("GSS_VerifyMIC after GSS_Pseudo_random: the context was exported")
        try:
            self._context.verify_signature(data, token)
        except g.exceptions.GSSError as exc:
            raise KerberosError(f"GSS_VerifyMIC: {_reason(exc)}") from exc

    def prf(self, seed: bytes, length: int) -> Secret:
        if self._raw is None:
            if not self._context.complete:
                raise KerberosError("GSS_Pseudo_random before the context is established")
            self._peer_names()  # read before the export ends the gssapi context
            self._raw = _import_context(self._context)
        return _pseudo_random(self._raw, seed, length)


class GssapiProvider:
    """Kerberos credentials of one host for :class:`~secpath.ike.kerberos.KerberosProvider`.

    ``keytab`` (acceptor; default the system's, ``KRB5_KTNAME`` or
    ``/etc/krb5.keytab``); ``ccache`` or ``client_keytab`` (initiator; with a
    client keytab only, tickets go to a private in-memory cache; with
    neither, the keytab is the client keytab too, as for a machine account).
    ``prf=False`` offers the MIC key binding only, as with a GSS library
    without ``gss_pseudo_random`` (docs/kerberos.md §5)."""

    def __init__(self, *, keytab: Path | None = None, ccache: str | None = None,
                 client_keytab: Path | None = None, principal: str | None = None,
                 prf: bool = True) -> None:
        self._g = _gssapi()
        _library()
        self.key_bindings: tuple[int, ...] = (
            (BINDING_PRF, BINDING_MIC) if prf and prf_available() else (BINDING_MIC,))
        if client_keytab is None and ccache is None:
            client_keytab = keytab  # a host's machine account: its own keytab
        self.keytab, self.ccache, self.client_keytab = keytab, ccache, client_keytab
        if ccache is None and client_keytab is not None:
            self.ccache = f"MEMORY:secpath-{id(self)}-{next(_memory_ccaches)}"
        self._principal = principal
        self._realm: str | None = None
        self._initiate: Any = None
        self._accept: Any = None

    def _store(self, usage: str) -> dict[bytes, bytes]:
        store: dict[bytes, bytes] = {}
        if usage == "accept" and self.keytab is not None:
            store[b"keytab"] = str(self.keytab).encode()
        if usage == "initiate":
            if self.ccache is not None:
                store[b"ccache"] = self.ccache.encode()
            if self.client_keytab is not None:
                store[b"client_keytab"] = str(self.client_keytab).encode()
        return store

    def _credentials(self, usage: str) -> Any:
        g = self._g
        name = None
        if usage == "initiate" and self._principal is not None:
            name = g.Name(self._principal, g.NameType.kerberos_principal)
        try:
            return g.Credentials(name=name, usage=usage, store=self._store(usage) or None)
        except g.exceptions.GSSError as exc:
            where = "keytab" if usage == "accept" else "initiator credentials"
            raise KerberosError(f"Kerberos {where}: {_reason(exc)}") from exc

    @property
    def principal(self) -> str:
        """Read from the credential cache or the client keytab without asking
        the KDC (an expired ticket is refused when it is used, not here)."""
        if self._principal is None:
            cc = self.ccache or ""
            if cc.startswith("FILE:") or (cc and ":" not in cc):
                self._principal = _ccache_principal(Path(cc.removeprefix("FILE:")))
            elif self.client_keytab is not None:
                self._principal = _keytab_principal(self.client_keytab)
            else:
                if self._initiate is None:
                    self._initiate = self._credentials("initiate")
                self._principal = str(self._initiate.name)
        return self._principal

    @property
    def default_realm(self) -> str:
        if self._realm is None:
            self._realm = _realm_from_config()
        return self._realm

    def initiator(self, target: str, bindings: bytes) -> _Context:
        g = self._g
        if self._initiate is None:
            self._initiate = self._credentials("initiate")
        flags = g.RequirementFlag.mutual_authentication | g.RequirementFlag.integrity
        context = g.SecurityContext(
            name=g.Name(target, g.NameType.kerberos_principal), creds=self._initiate,
            usage="initiate", flags=flags, mech=g.MechType.kerberos,
            channel_bindings=g.raw.ChannelBindings(application_data=bindings))
        return _Context(context)

    def fetch_ticket(self, target: str) -> None:
        """Get (or refresh) the service ticket for ``target`` into our
        credential cache: the KDC round trips (AS with a client keytab, then
        TGS) of a first GSS_Init_sec_context whose token is dropped.  Blocks:
        the daemon runs it in a worker thread before it starts the IKE SA,
        whose context then finds the ticket in the cache
        (docs/kerberos.md §8).  KerberosError with the GSS-API's reason."""
        g = self._g
        try:
            # with a client keytab and an empty cache this asks the KDC for a TGT
            creds = self._credentials("initiate")
        except KerberosError as exc:
            raise KerberosError(f"no ticket for {target}: {exc}") from exc
        try:
            g.SecurityContext(name=g.Name(target, g.NameType.kerberos_principal), creds=creds,
                              usage="initiate", mech=g.MechType.kerberos).step()
        except g.exceptions.GSSError as exc:
            raise KerberosError(f"no ticket for {target}: {_reason(exc)}") from exc
        # this handle has the initial credentials now: contexts made from it
        # use the cache instead of asking the KDC again
        self._initiate = creds

    def acceptor(self, bindings: bytes) -> _Context:
        g = self._g
        if self._accept is None:
            self._accept = self._credentials("accept")
        context = g.SecurityContext(
            creds=self._accept, usage="accept",
            channel_bindings=g.raw.ChannelBindings(application_data=bindings))
        return _Context(context, acceptor=True)


def _read_principal(data: bytes, pos: int, *, counted_type: bool, wide: int) -> str:
    """A principal of the keytab or ccache file formats (MIT ``keytab.txt``,
    ``ccache.txt``): [name type] component count, realm, components; counts
    are ``wide`` octets, big-endian."""

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(data):
            raise KerberosError("truncated principal in a keytab or credential cache")
        out = data[pos:pos + n]
        pos += n
        return out

    if counted_type:
        take(4)  # name type
    count = int.from_bytes(take(wide), "big")
    realm = take(int.from_bytes(take(wide), "big")).decode("utf-8", "replace")
    parts = [take(int.from_bytes(take(wide), "big")).decode("utf-8", "replace")
             for _ in range(min(count, 16))]
    return "/".join(parts) + "@" + realm


def _keytab_principal(path: Path) -> str:
    """The first entry's principal of a version-2 keytab file."""
    try:
        data = path.read_bytes()[:4096]
    except OSError as exc:
        raise KerberosError(f"keytab {path}: cannot read ({exc.strerror})") from exc
    if data[:2] != b"\x05\x02" or len(data) < 8:
        raise KerberosError(f"keytab {path}: not a version 2 keytab")
    return _read_principal(data, 6, counted_type=False, wide=2)


def _ccache_principal(path: Path) -> str:
    """The default principal of a version-4 credential cache file."""
    try:
        data = path.read_bytes()[:4096]
    except OSError as exc:
        raise KerberosError(f"credential cache {path}: cannot read ({exc.strerror})") from exc
    if data[:2] != b"\x05\x04" or len(data) < 4:
        raise KerberosError(f"credential cache {path}: not a version 4 ccache")
    header_len = int.from_bytes(data[2:4], "big")
    return _read_principal(data, 4 + header_len, counted_type=True, wide=4)


def _libkrb5() -> ctypes.CDLL:
    return _load("krb5", "libkrb5.so.3")


def _realm_from_config() -> str:
    """The default realm of krb5.conf (``KRB5_CONFIG``), through libkrb5."""
    lib = _libkrb5()
    context = ctypes.c_void_p()
    if lib.krb5_init_context(ctypes.byref(context)) != 0:
        raise KerberosError("krb5_init_context failed (krb5.conf unreadable?)")
    try:
        realm = ctypes.c_char_p()
        if lib.krb5_get_default_realm(context, ctypes.byref(realm)) != 0:
            raise KerberosError("no default realm in krb5.conf: set realm in the rule")
        try:
            return (realm.value or b"").decode()
        finally:
            lib.krb5_free_default_realm(context, realm)
    finally:
        lib.krb5_free_context(context)


def load_kerberos(auth: KerberosAuth) -> KerberosCredentials:
    """A rule's ``[[rule.authentication]] method = "kerberos"`` as credentials;
    KerberosError when gssapi is missing or the keytab cannot be used."""
    provider = GssapiProvider(keytab=auth.keytab, ccache=auth.ccache,
                              client_keytab=auth.client_keytab)
    return KerberosCredentials(provider, realm=auth.realm,
                               service_principal=auth.service_principal)
