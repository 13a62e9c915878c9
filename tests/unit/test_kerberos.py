"""secpath.ike.kerberos (the method's definitions) and secpath.ike.gss (the
gssapi provider): identities, service principals, channel bindings, the
MSK from GSS_Pseudo_random, credential files, a missing extra."""

from __future__ import annotations

import builtins
import sys
from pathlib import Path
from typing import Any

import pytest

from secpath.errors import LocalError
from secpath.ike import gss
from secpath.ike.auth import Identity, IdType
from secpath.ike.kerberos import (
    GSS_TOKEN,
    KERBEROS_AUTH_METHOD,
    MSK_LENGTH,
    KerberosCredentials,
    KerberosError,
    channel_bindings,
    msk_seed,
    principal_identity,
    principal_realm,
    remote_id_matches,
    target_principal,
)

from ..kdc import Kdc, needs_kdc


class _Provider:
    principal = "host/alpha.example@EXAMPLE.COM"
    default_realm = "EXAMPLE.COM"

    def initiator(self, target: str, bindings: bytes) -> Any:
        raise AssertionError("not used")

    def acceptor(self, bindings: bytes) -> Any:
        raise AssertionError("not used")


def test_private_use_numbers() -> None:
    assert 201 <= KERBEROS_AUTH_METHOD <= 255  # RFC 7296 §3.8 private use
    assert 40960 <= GSS_TOKEN <= 65535  # RFC 7296 §3.10.1 private-use status types
    assert MSK_LENGTH == 64


def test_principal_identity() -> None:
    ident = principal_identity("host/a.example@EXAMPLE.COM")
    assert ident == Identity(IdType.RFC822_ADDR, b"host/a.example@EXAMPLE.COM")
    assert str(ident) == "host/a.example@EXAMPLE.COM"
    assert principal_realm("host/a.example@EXAMPLE.COM") == "EXAMPLE.COM"
    with pytest.raises(LocalError, match="no @REALM"):
        principal_identity("host/a.example")
    with pytest.raises(LocalError, match="not ASCII"):
        principal_identity("höst@EXAMPLE.COM")


def test_target_principal_defaults() -> None:
    p = _Provider()
    explicit = KerberosCredentials(p, service_principal="ipsec/b.example@EXAMPLE.COM")
    assert target_principal(explicit, Identity.parse("b.example")) == "ipsec/b.example@EXAMPLE.COM"
    plain = KerberosCredentials(p)
    assert target_principal(plain, Identity.parse("b.example")) == "host/b.example@EXAMPLE.COM"
    other = KerberosCredentials(p, realm="OTHER.ORG")
    assert target_principal(other, Identity.parse("b.example")) == "host/b.example@OTHER.ORG"
    assert target_principal(plain, Identity.parse("host/c.example@X.ORG")) == "host/c.example@X.ORG"
    with pytest.raises(LocalError, match="service_principal"):
        target_principal(plain, Identity.parse("192.0.2.1"))
    with pytest.raises(LocalError, match="service_principal"):
        target_principal(plain, None)
    assert plain.accepted_realm == "EXAMPLE.COM" and other.accepted_realm == "OTHER.ORG"


def test_remote_id_matches() -> None:
    p = "host/b.example@EXAMPLE.COM"
    assert remote_id_matches(None, p, "EXAMPLE.COM")
    assert remote_id_matches(Identity.parse(p), p, "EXAMPLE.COM")
    assert remote_id_matches(Identity.parse("B.example"), p, "EXAMPLE.COM")
    assert not remote_id_matches(Identity.parse("c.example"), p, "EXAMPLE.COM")
    assert not remote_id_matches(Identity.parse("b.example"), p, "OTHER.ORG")
    assert not remote_id_matches(Identity.parse("192.0.2.1"), p, "EXAMPLE.COM")


def test_channel_bindings_and_msk_seed() -> None:
    a = channel_bindings(b"request", b"response")
    assert len(a) == 32 and a == channel_bindings(b"request", b"response")
    assert a != channel_bindings(b"request", b"responsf")
    # length-prefixed: moving a byte from one message to the other changes it
    assert a != channel_bindings(b"requestr", b"esponse")
    seed = msk_seed(b"I" * 8, b"R" * 8, b"n" * 32, b"m" * 32)
    assert seed.endswith(b"I" * 8 + b"R" * 8 + b"n" * 32 + b"m" * 32)


def test_missing_gssapi_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_gssapi(name: str, *args: Any, **kw: Any) -> Any:
        if name == "gssapi" or name.startswith("gssapi."):
            raise ImportError("No module named 'gssapi'")
        return real_import(name, *args, **kw)

    monkeypatch.delitem(sys.modules, "gssapi", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_gssapi)
    with pytest.raises(KerberosError, match=r"secpath\[kerberos\]"):
        gss.GssapiProvider()
    assert "secpath[kerberos]" in (gss.missing_reason() or "")
    assert not gss.available()


@needs_kdc
def test_credential_files_that_are_not_kerberos(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x05\x01 not a keytab")
    with pytest.raises(KerberosError, match="not a version 2 keytab"):
        gss.GssapiProvider(keytab=junk).principal  # noqa: B018
    with pytest.raises(KerberosError, match="not a version 4 ccache"):
        gss.GssapiProvider(ccache=f"FILE:{junk}").principal  # noqa: B018
    truncated = tmp_path / "short.keytab"
    truncated.write_bytes(b"\x05\x02\x00\x00\x00\x40\x00\x02\x00\x30EXA")
    with pytest.raises(KerberosError, match="truncated principal"):
        gss.GssapiProvider(keytab=truncated).principal  # noqa: B018
    with pytest.raises(KerberosError, match="cannot read"):
        gss.GssapiProvider(keytab=tmp_path / "missing").principal  # noqa: B018


@needs_kdc
def test_principal_from_keytab_and_ccache(realm: Kdc) -> None:
    keytab = realm.host("zeta.example")
    assert gss.GssapiProvider(keytab=keytab).principal == realm.principal("zeta.example")
    ccache = realm.tmpdir / "zeta.ccache"
    realm.kinit(realm.principal("zeta.example"), keytab, ccache)
    provider = gss.GssapiProvider(ccache=f"FILE:{ccache}")
    assert provider.principal == realm.principal("zeta.example")
    assert provider.default_realm == realm.name


@needs_kdc
def test_pseudo_random_agrees_on_both_ends(realm: Kdc) -> None:
    """RFC 4401 §2: both ends of one context get the same output; another
    seed or another context gives another."""
    a = gss.GssapiProvider(keytab=realm.host("eta.example"))
    b = gss.GssapiProvider(keytab=realm.host("theta.example"))

    def context_pair(bindings: bytes) -> tuple[Any, Any]:
        i = a.initiator(realm.principal("theta.example"), bindings)
        r = b.acceptor(bindings)
        rep = r.step(i.step(None) or b"")
        i.step(rep)
        assert i.complete and r.complete
        assert r.initiator_name == realm.principal("eta.example")
        assert r.target_name == realm.principal("theta.example")
        return i, r

    i, r = context_pair(b"\x01" * 32)
    out_i, out_r = i.prf(b"seed", 64), r.prf(b"seed", 64)
    assert len(out_i) == 64 and out_i == out_r
    assert i.prf(b"other seed", 64) != out_i
    assert repr(out_i) == "Secret(<64 bytes>)"
    i2, _ = context_pair(b"\x02" * 32)
    assert i2.prf(b"seed", 64) != out_i


@needs_kdc
def test_acceptor_refuses_other_channel_bindings(realm: Kdc) -> None:
    a = gss.GssapiProvider(keytab=realm.host("iota.example"))
    b = gss.GssapiProvider(keytab=realm.host("kappa.example"))
    token = a.initiator(realm.principal("kappa.example"), b"\x01" * 32).step(None)
    assert token is not None
    with pytest.raises(KerberosError, match=r"(?i)binding"):
        b.acceptor(b"\x02" * 32).step(token)
