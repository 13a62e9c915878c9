"""secpath.ike.auth: identities, AUTH data (RFC 7296 §2.15, RFC 7427), X.509."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import hmac
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st

from secpath.errors import LocalError, ParseError, RemoteError
from secpath.ike import auth
from secpath.ike.auth import AuthMethod, HashAlgorithm, Identity, IdType
from secpath.secret import Secret
from tests.sans_io import pki


def prf256(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")


# --- identities -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "id_type", "data"),
    [
        ("192.0.2.7", IdType.IPV4_ADDR, bytes([192, 0, 2, 7])),
        ("2001:db8::1", IdType.IPV6_ADDR, ipaddress.IPv6Address("2001:db8::1").packed),
        ("vpn.example.com", IdType.FQDN, b"vpn.example.com"),
        ("agent@example.com", IdType.RFC822_ADDR, b"agent@example.com"),
    ],
)
def test_identity_parse(text: str, id_type: IdType, data: bytes) -> None:
    ident = Identity.parse(text)
    assert ident == Identity(id_type, data)
    assert str(ident) == text
    ident.check()


def test_identity_dn_is_der_in_written_order() -> None:
    ident = Identity.parse("C=CH, O=strongSwan, CN=moon")
    assert ident.id_type is IdType.DER_ASN1_DN
    name = x509.Name([
        x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "CH"),
        x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "strongSwan"),
        x509.NameAttribute(x509.NameOID.COMMON_NAME, "moon"),
    ])
    assert ident.data == name.public_bytes()
    assert str(ident) == "C=CH, O=strongSwan, CN=moon"
    ident.check()


def test_identity_body_is_type_reserved_data() -> None:
    # RFC 7296 §2.15: RestOfInitIDPayload = IDType | RESERVED(3) | data
    assert Identity.parse("10.0.0.1").body() == bytes.fromhex("01000000" "0a000001")


def test_identity_rejects_empty_and_bad_dn() -> None:
    with pytest.raises(LocalError):
        Identity.parse("  ")
    with pytest.raises(LocalError):
        Identity.parse("NOTANATTR=x")


@given(st.binary(max_size=64))
def test_identity_check_total_on_bad_dn(data: bytes) -> None:
    ident = Identity(IdType.DER_ASN1_DN, data)
    with contextlib.suppress(ParseError):
        ident.check()
    str(ident)  # never raises


def test_identity_check_address_lengths() -> None:
    with pytest.raises(ParseError):
        Identity(IdType.IPV4_ADDR, b"\x01\x02\x03").check()
    with pytest.raises(ParseError):
        Identity(IdType.IPV6_ADDR, b"\x00" * 4).check()
    with pytest.raises(ParseError):
        Identity(IdType.FQDN, b"\xff").check()


# --- PSK (RFC 7296 §2.15) ------------------------------------------------------


def test_signed_octets_layout() -> None:
    sk_p = Secret(b"k" * 32)
    ident = Identity.parse("10.0.0.1")
    octets = auth.signed_octets(prf256, sk_p, b"MSG", b"NONCE", ident)
    assert octets == b"MSG" + b"NONCE" + prf256(b"k" * 32, ident.body())


def test_psk_auth_data_matches_rfc_formula() -> None:
    psk = Secret(b"secret")
    octets = b"octets"
    inner = hmac.digest(b"secret", b"Key Pad for IKEv2", "sha256")
    assert auth.psk_auth_data(prf256, psk, octets) == hmac.digest(inner, octets, "sha256")
    auth.verify_psk(prf256, psk, octets, auth.psk_auth_data(prf256, psk, octets))
    with pytest.raises(RemoteError) as err:
        auth.verify_psk(prf256, Secret(b"other"), octets, auth.psk_auth_data(prf256, psk, octets))
    assert err.value.notify == auth.AUTHENTICATION_FAILED


def test_psk_pad_given_or_made_gives_the_same_auth() -> None:
    psk, octets = Secret(b"secret"), b"octets"
    pad = auth.psk_pad(prf256, psk)
    assert pad.reveal() == hmac.digest(b"secret", b"Key Pad for IKEv2", "sha256")
    assert "secret" not in repr(pad)
    assert auth.psk_auth_data(prf256, psk, octets, pad=pad) == auth.psk_auth_data(prf256, psk, octets)
    auth.verify_psk(prf256, psk, octets, auth.psk_auth_data(prf256, psk, octets), pad=pad)
    with pytest.raises(RemoteError):
        auth.verify_psk(prf256, psk, octets, auth.psk_auth_data(prf256, psk, octets),
                        pad=auth.psk_pad(prf256, Secret(b"other")))


def test_credentials_keep_one_pad_per_prf() -> None:
    from secpath.ike.config import Credentials

    creds = Credentials(psk=Secret(b"secret"))
    pad = creds.psk_pad("sha256")
    assert pad is creds.psk_pad("sha256")  # made once
    assert pad.reveal() == hmac.digest(b"secret", b"Key Pad for IKEv2", "sha256")
    assert creds.psk_pad("sha1").reveal() == hmac.digest(b"secret", b"Key Pad for IKEv2", "sha1")
    # the cache is no part of the value: equal, same hash, nothing shown
    assert creds == Credentials(psk=Secret(b"secret"))
    assert hash(creds) == hash(Credentials(psk=Secret(b"secret")))
    assert "_psk_pads" not in repr(creds)
    with pytest.raises(LocalError):
        Credentials().psk_pad("sha256")


# --- signatures ------------------------------------------------------------------


ALL_HASHES = [int(h) for h in HashAlgorithm]


@pytest.mark.parametrize("rsa_pss", [True, False])
def test_rsa_digital_signature_roundtrip(rsa_pss: bool) -> None:
    key = pki.rsa_key("auth-test")
    method, data = auth.sign(key, b"octets", ALL_HASHES, rsa_pss=rsa_pss)
    assert method is AuthMethod.DIGITAL_SIGNATURE
    auth.verify_signature(key.public_key(), method, data, b"octets")
    with pytest.raises(RemoteError):
        auth.verify_signature(key.public_key(), method, data, b"other octets")


def test_rsa_pss_identifier_is_rfc7427_appendix_a() -> None:
    # RFC 7427 §3 / RFC 4055 §3.1: RSASSA-PSS, SHA-256, MGF1-SHA-256, salt 32
    expected = bytes.fromhex(
        "3041"
        "06092a864886f70d01010a"
        "3034"
        "a00f300d0609608648016503040201" "0500"
        "a11c301a06092a864886f70d010108300d0609608648016503040201" "0500"
        "a203020120"
    )
    _, data = auth.sign(pki.rsa_key("auth-test"), b"x", [int(HashAlgorithm.SHA2_256)])
    assert data[0] == len(expected)
    assert data[1 : 1 + len(expected)] == expected


def test_rsa_without_hash_announcement_uses_method_1() -> None:
    key = pki.rsa_key("auth-test")
    method, data = auth.sign(key, b"octets", [])
    assert method is AuthMethod.RSA_SIGNATURE
    assert len(data) == 256
    auth.verify_signature(key.public_key(), method, data, b"octets")


@pytest.mark.parametrize("curve", ["secp256r1", "secp384r1"])
def test_ecdsa_signature_roundtrip(curve: str) -> None:
    key = pki.ec_key("auth-test", curve)
    method, data = auth.sign(key, b"octets", ALL_HASHES)
    assert method is AuthMethod.DIGITAL_SIGNATURE
    # ecdsa-with-SHA256 / SHA384 AlgorithmIdentifier (RFC 7427 Appendix A.3)
    oid_tail = {"secp256r1": "02", "secp384r1": "03"}[curve]
    assert data[:13] == bytes.fromhex("0c300a06082a8648ce3d0403" + oid_tail)
    auth.verify_signature(key.public_key(), method, data, b"octets")


def test_signature_with_wrong_key_type_or_bad_bytes_fails_closed() -> None:
    rsa_k = pki.rsa_key("auth-test")
    ec_k = pki.ec_key("auth-test")
    method, data = auth.sign(ec_k, b"o", ALL_HASHES)
    cases: list[tuple[auth.PublicKey, int, bytes]] = [
        (rsa_k.public_key(), method, data),
        (ec_k.public_key(), AuthMethod.RSA_SIGNATURE, b"\x00" * 256),
        (ec_k.public_key(), method, data[:13] + b"\x30\x02\x02"),
        (ec_k.public_key(), method, b""),
        (ec_k.public_key(), method, b"\x05abcde"),
        (ec_k.public_key(), 3, data),
    ]
    for public, m, d in cases:
        with pytest.raises(RemoteError) as err:
            auth.verify_signature(public, m, d, b"o")
        assert err.value.notify == auth.AUTHENTICATION_FAILED


@given(st.binary(max_size=300))
def test_verify_signature_total(data: bytes) -> None:
    key = pki.ec_key("auth-test")
    with pytest.raises(RemoteError):
        auth.verify_signature(key.public_key(), AuthMethod.DIGITAL_SIGNATURE, data, b"o")


# --- certificates -------------------------------------------------------------


def der(cert: x509.Certificate) -> bytes:
    return auth.certificate_der(cert)


def test_chain_validates_and_identity_matches_san() -> None:
    ca = pki.make_ca("A")
    key = pki.ec_key("leaf")
    leaf = pki.make_leaf(ca, key, ip="192.0.2.1", dns="gw.example.com", email="gw@example.com")
    for text in ["192.0.2.1", "gw.example.com", "GW@example.com"]:
        public = auth.validate_certificate(der(leaf), [], [ca.cert], Identity.parse(text), pki.NOW)
        assert isinstance(public, ec.EllipticCurvePublicKey)
    by_dn = Identity.of_name(leaf.subject)
    auth.validate_certificate(der(leaf), [], [ca.cert], by_dn, pki.NOW)


def test_chain_rsa_leaf_returns_rsa_key() -> None:
    ca = pki.make_ca("A")
    leaf = pki.make_leaf(ca, pki.rsa_key("leaf"), ip="192.0.2.2")
    public = auth.validate_certificate(
        der(leaf), [], [ca.cert], Identity.parse("192.0.2.2"), pki.NOW
    )
    assert isinstance(public, rsa.RSAPublicKey)


@pytest.mark.parametrize("case", ["other-ca", "expired", "not-yet", "wrong-id", "junk", "no-ca"])
def test_chain_failures_are_authentication_failed(case: str) -> None:
    ca = pki.make_ca("A")
    key = pki.ec_key("leaf")
    leaf = pki.make_leaf(ca, key, ip="192.0.2.1")
    anchors = [ca.cert]
    ident = Identity.parse("192.0.2.1")
    data = der(leaf)
    if case == "other-ca":
        data = der(pki.make_leaf(pki.make_ca("B"), key, ip="192.0.2.1"))
    elif case == "expired":
        data = der(pki.make_leaf(
            ca, key, ip="192.0.2.1",
            not_after=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        ))
    elif case == "not-yet":
        data = der(pki.make_leaf(
            ca, key, ip="192.0.2.1",
            not_before=datetime.datetime(2031, 1, 1, tzinfo=datetime.UTC),
        ))
    elif case == "wrong-id":
        ident = Identity.parse("192.0.2.99")
    elif case == "junk":
        data = b"\x30\x03\x02\x01\x00"
    elif case == "no-ca":
        anchors = []
    with pytest.raises(RemoteError) as err:
        auth.validate_certificate(data, [], anchors, ident, pki.NOW)
    assert err.value.notify == auth.AUTHENTICATION_FAILED


def test_ca_key_hash_is_sha1_of_spki() -> None:
    ca = pki.make_ca("A")
    from cryptography.hazmat.primitives import serialization

    spki = ca.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert auth.ca_key_hash(ca.cert) == hashlib.sha1(spki).digest()
