"""Hypothesis over what a peer controls in the Kerberos method: the GSS_TOKEN
data (random bytes, mutations of a real AP-REQ) reaches a real MIT acceptor
and only ever gives KerberosError — which the engine answers with
AUTHENTICATION_FAILED — or, for the unprotected fields of the ticket, the
real client's context; the credential file readers
raise only KerberosError on any bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secpath.ike.gss import GssapiProvider, _ccache_principal, _keytab_principal
from secpath.ike.kerberos import KerberosError

from ..kdc import Kdc, needs_kdc

BINDINGS = b"\x07" * 32


@pytest.fixture(scope="module")
def ap_req(realm: Kdc) -> tuple[GssapiProvider, bytes]:
    a = GssapiProvider(keytab=realm.host("fuzz-a.example"))
    b = GssapiProvider(keytab=realm.host("fuzz-b.example"))
    token = a.initiator(realm.principal("fuzz-b.example"), BINDINGS).step(None)
    assert token is not None
    return b, token


@needs_kdc
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_acceptor_refuses_garbage_and_mutated_ap_req(ap_req: tuple[GssapiProvider, bytes],
                                                     data: st.DataObject) -> None:
    acceptor_provider, token = ap_req
    choice = data.draw(st.sampled_from(["random", "flip", "truncate"]))
    if choice == "random":
        bad = data.draw(st.binary(max_size=2048))
    elif choice == "flip":
        i = data.draw(st.integers(0, len(token) - 1))
        bad = token[:i] + bytes([token[i] ^ data.draw(st.integers(1, 255))]) + token[i + 1:]
    else:
        bad = token[:data.draw(st.integers(0, len(token) - 1))]
    acceptor = acceptor_provider.acceptor(BINDINGS)
    try:
        reply = acceptor.step(bad)
    except KerberosError:
        return
    # RFC 4120 §5.3: the ticket's realm and sname are outside its encrypted
    # part, so a change there may still verify — but only as the real client
    assert acceptor.complete and reply is not None
    assert acceptor.initiator_name == "host/fuzz-a.example@KRBTEST.COM"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200), kind=st.sampled_from(["keytab", "ccache"]))
def test_credential_file_readers_are_total(tmp_path: Path, body: bytes, kind: str) -> None:
    path = tmp_path / kind
    path.write_bytes((b"\x05\x02" if kind == "keytab" else b"\x05\x04") + body)
    read = _keytab_principal if kind == "keytab" else _ccache_principal
    try:
        principal = read(path)
    except KerberosError:
        return
    assert "@" in principal


@needs_kdc
def test_acceptor_refuses_a_token_that_asks_for_another_round(ap_req: tuple[GssapiProvider, bytes]) -> None:
    """A changed TOK_ID (RFC 4121 §4.1: 01 00 for KRB_AP_REQ, after the
    mechanism OID) made MIT answer "continue needed" instead of failing; the
    acceptor must refuse rather than leave a half-made context (found by
    Hypothesis)."""
    acceptor_provider, token = ap_req
    assert token[15:17] == b"\x01\x00"
    bad = token[:15] + b"\x00" + token[16:]
    with pytest.raises(KerberosError, match="did not establish"):
        acceptor_provider.acceptor(BINDINGS).step(bad)
