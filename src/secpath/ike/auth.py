"""IKEv2 authentication: identities, AUTH payload data, certificate chains.

* Identities (RFC 7296 §3.5): IPv4/IPv6 address, FQDN, RFC 822, DER ASN.1 DN.
* The octets each side signs or MACs (RFC 7296 §2.15).
* Shared Key Message Integrity Code (method 2), RSA Digital Signature
  (method 1) and the generic Digital Signature method (RFC 7427, method 14)
  with RSASSA-PKCS1-v1_5, RSASSA-PSS and ECDSA.
* X.509 chain validation against the rule's CA with
  :mod:`cryptography.x509.verification`, then the peer's identity matched to
  the leaf certificate's subjectAltName or subject.

Pure functions: the PRF is passed in, time is passed in, nothing is read
from disk here (see :mod:`secpath.ike.credentials`).
"""

from __future__ import annotations

import datetime
import hmac
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import verification

from secpath.errors import LocalError, ParseError, RemoteError
from secpath.secret import Secret

__all__ = [
    "AUTHENTICATION_FAILED",
    "SUPPORTED_HASH_ALGORITHMS",
    "AuthMethod",
    "HashAlgorithm",
    "IdType",
    "Identity",
    "PrivateKey",
    "PublicKey",
    "psk_auth_data",
    "psk_pad",
    "sign",
    "signed_octets",
    "validate_certificate",
    "verify_psk",
    "verify_signature",
]

AUTHENTICATION_FAILED = 24  # RFC 7296 §3.10.1

Prf = Callable[[bytes, bytes], bytes]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

# RFC 7296 §2.15: the PSK is never used directly as the PRF key
_KEY_PAD = b"Key Pad for IKEv2"


class IdType(IntEnum):
    """Identification Data types (RFC 7296 §3.5)."""

    IPV4_ADDR = 1
    FQDN = 2
    RFC822_ADDR = 3
    IPV6_ADDR = 5
    DER_ASN1_DN = 9
    KEY_ID = 11


class AuthMethod(IntEnum):
    """Authentication Method (RFC 7296 §3.8, RFC 7427 §3)."""

    RSA_SIGNATURE = 1
    SHARED_KEY_MIC = 2
    DIGITAL_SIGNATURE = 14


class HashAlgorithm(IntEnum):
    """Hash Algorithm Identifiers for SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4)."""

    SHA1 = 1
    SHA2_256 = 2
    SHA2_384 = 3
    SHA2_512 = 4


SUPPORTED_HASH_ALGORITHMS: tuple[HashAlgorithm, ...] = (
    HashAlgorithm.SHA2_256,
    HashAlgorithm.SHA2_384,
    HashAlgorithm.SHA2_512,
)


@lru_cache(maxsize=1024)
def _identity_text(id_type: IdType, data: bytes) -> str:
    """An identity's usual spelling (kept: every IKE SA up names its two)."""
    try:
        if id_type in (IdType.IPV4_ADDR, IdType.IPV6_ADDR):
            return str(ipaddress.ip_address(data))
        if id_type is IdType.DER_ASN1_DN:
            rdns = _name_from_der(data).rdns
            return ", ".join(rdn.rfc4514_string() for rdn in rdns)
        if id_type in (IdType.FQDN, IdType.RFC822_ADDR):
            return data.decode("ascii")
    except (ValueError, ParseError, UnicodeDecodeError):
        pass
    return f"{id_type.name}:{data.hex()}"


@dataclass(frozen=True, slots=True)
class Identity:
    """An IKE identity: the ID type and its data (RFC 7296 §3.5)."""

    id_type: IdType
    data: bytes

    @classmethod
    def parse(cls, text: str) -> Identity:
        """An identity from its usual spelling.

        ``192.0.2.1`` / ``2001:db8::1`` → address; ``user@example.com`` →
        RFC 822; ``CN=vpn, O=Example`` → DER ASN.1 DN; otherwise FQDN.
        """
        text = text.strip()
        if not text:
            raise LocalError("identity: empty")
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            pass
        else:
            kind = IdType.IPV4_ADDR if addr.version == 4 else IdType.IPV6_ADDR
            return cls(kind, addr.packed)
        if "=" in text:
            return cls(IdType.DER_ASN1_DN, _dn_from_text(text).public_bytes())
        if "@" in text:
            return cls(IdType.RFC822_ADDR, text.encode("ascii"))
        return cls(IdType.FQDN, text.encode("ascii"))

    @classmethod
    def of_address(cls, addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Identity:
        kind = IdType.IPV4_ADDR if addr.version == 4 else IdType.IPV6_ADDR
        return cls(kind, addr.packed)

    @classmethod
    def of_name(cls, name: x509.Name) -> Identity:
        return cls(IdType.DER_ASN1_DN, name.public_bytes())

    def body(self) -> bytes:
        """RestOfInitIDPayload / RestOfRespIDPayload: ID type, 3 reserved
        octets and the data (RFC 7296 §2.15)."""
        return bytes((int(self.id_type), 0, 0, 0)) + self.data

    def __str__(self) -> str:
        return _identity_text(self.id_type, self.data)

    def check(self) -> None:
        """Raise :class:`ParseError` when the data does not fit the type."""
        if self.id_type is IdType.IPV4_ADDR and len(self.data) != 4:
            raise ParseError("ID_IPV4_ADDR: need 4 octets")
        if self.id_type is IdType.IPV6_ADDR and len(self.data) != 16:
            raise ParseError("ID_IPV6_ADDR: need 16 octets")
        if self.id_type is IdType.DER_ASN1_DN:
            _name_from_der(self.data)
        if self.id_type in (IdType.FQDN, IdType.RFC822_ADDR):
            try:
                self.data.decode("ascii")
            except UnicodeDecodeError as exc:
                raise ParseError(f"{self.id_type.name}: not ASCII") from exc


def _dn_from_text(text: str) -> x509.Name:
    """``C=CH, O=Example, CN=vpn``: written in DER order, as strongSwan does
    (RFC 4514 strings are written in the reverse order)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        return x509.Name.from_rfc4514_string(",".join(reversed(parts)))
    except ValueError as exc:
        raise LocalError(f"identity: bad distinguished name {text!r}") from exc


def _name_from_der(data: bytes) -> x509.Name:
    """A DER ``Name`` (RFC 5280 §4.1.2.4) as an :class:`x509.Name`; only the
    framing and the attribute strings are checked (bounded, total)."""
    try:
        length, pos = _der_length(data, 1)
        if data[0] != 0x30 or pos + length != len(data):
            raise ValueError("not a DER SEQUENCE")
        rdns: list[x509.RelativeDistinguishedName] = []
        while pos < len(data):
            if data[pos] != 0x31:
                raise ValueError("RDN is not a SET")
            set_len, inner = _der_length(data, pos + 1)
            end = inner + set_len
            attrs: list[x509.NameAttribute[str]] = []
            while inner < end:
                if data[inner] != 0x30 or data[inner + 2] != 0x06:
                    raise ValueError("bad AttributeTypeAndValue")
                seq_len, seq = _der_length(data, inner + 1)
                oid_len, oid_at = _der_length(data, seq + 1)
                tag_at = oid_at + oid_len
                val_len, val_at = _der_length(data, tag_at + 1)
                if val_at + val_len != seq + seq_len or seq + seq_len > end:
                    raise ValueError("attribute length mismatch")
                raw = data[val_at : val_at + val_len]
                text = raw.decode("utf-16-be") if data[tag_at] == 0x1E else raw.decode("utf-8")
                oid = x509.ObjectIdentifier(_oid_text(data[oid_at:tag_at]))
                attrs.append(x509.NameAttribute(oid, text, _validate=False))
                inner = seq + seq_len
            if inner != end or not attrs:
                raise ValueError("RDN length mismatch")
            rdns.append(x509.RelativeDistinguishedName(attrs))
            pos = end
        return x509.Name(rdns)
    except (ValueError, IndexError) as exc:
        raise ParseError(f"ID_DER_ASN1_DN: bad DER ({exc})") from exc


def _der_length(data: bytes, pos: int) -> tuple[int, int]:
    """(length, offset of the contents) of the DER length at ``pos``."""
    if pos >= len(data):
        raise ValueError("truncated DER")
    first = data[pos]
    if first < 0x80:
        length, start = first, pos + 1
    else:
        n = first & 0x7F
        if n == 0 or n > 3 or pos + 1 + n > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos + 1 : pos + 1 + n], "big")
        start = pos + 1 + n
    if start + length > len(data):
        raise ValueError("truncated DER")
    return length, start


def _oid_text(raw: bytes) -> str:
    if not raw:
        raise ValueError("empty OID")
    arcs: list[int] = []
    value = 0
    for octet in raw:
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            arcs.append(value)
            value = 0
    if raw[-1] & 0x80:
        raise ValueError("truncated OID")
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(a) for a in head + arcs[1:])



# --- RFC 7296 §2.15: the octets to sign or MAC ------------------------------


def signed_octets(
    prf: Prf, sk_p: Secret, message: bytes, peer_nonce: bytes, identity: Identity
) -> bytes:
    """InitiatorSignedOctets / ResponderSignedOctets (RFC 7296 §2.15):
    the sender's first message, the peer's nonce, prf(SK_p, RestOfIDPayload)."""
    return message + peer_nonce + prf(sk_p.reveal(), identity.body())


def psk_pad(prf: Prf, psk: Secret) -> Secret:
    """``prf(Shared Secret, "Key Pad for IKEv2")`` (RFC 7296 §2.15): the same
    for every AUTH made with this PSK and PRF, so callers may keep it."""
    return Secret(prf(psk.reveal(), _KEY_PAD))


def psk_auth_data(prf: Prf, psk: Secret, octets: bytes, *, pad: Secret | None = None) -> bytes:
    """AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>);
    ``pad``, if given, is :func:`psk_pad` of ``psk`` (computed once)."""
    return prf((pad if pad is not None else psk_pad(prf, psk)).reveal(), octets)


def verify_psk(prf: Prf, psk: Secret, octets: bytes, auth_data: bytes, *,
               pad: Secret | None = None) -> None:
    if not hmac.compare_digest(psk_auth_data(prf, psk, octets, pad=pad), auth_data):
        raise RemoteError("AUTH: shared key MIC does not match", notify=AUTHENTICATION_FAILED)


# --- RFC 7427: AlgorithmIdentifier DER ---------------------------------------


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(raw))) + raw + content


def _oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        rest = arc >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        body.extend(reversed(chunk))
    return _tlv(0x06, bytes(body))


_NULL = b"\x05\x00"
_HASH_OIDS = {
    HashAlgorithm.SHA1: "1.3.14.3.2.26",
    HashAlgorithm.SHA2_256: "2.16.840.1.101.3.4.2.1",
    HashAlgorithm.SHA2_384: "2.16.840.1.101.3.4.2.2",
    HashAlgorithm.SHA2_512: "2.16.840.1.101.3.4.2.3",
}
_HASHES: dict[HashAlgorithm, Callable[[], hashes.HashAlgorithm]] = {
    HashAlgorithm.SHA1: hashes.SHA1,
    HashAlgorithm.SHA2_256: hashes.SHA256,
    HashAlgorithm.SHA2_384: hashes.SHA384,
    HashAlgorithm.SHA2_512: hashes.SHA512,
}
_RSA_PKCS1_OIDS = {
    HashAlgorithm.SHA2_256: "1.2.840.113549.1.1.11",
    HashAlgorithm.SHA2_384: "1.2.840.113549.1.1.12",
    HashAlgorithm.SHA2_512: "1.2.840.113549.1.1.13",
}
_ECDSA_OIDS = {
    HashAlgorithm.SHA2_256: "1.2.840.10045.4.3.2",
    HashAlgorithm.SHA2_384: "1.2.840.10045.4.3.3",
    HashAlgorithm.SHA2_512: "1.2.840.10045.4.3.4",
}
_RSASSA_PSS = "1.2.840.113549.1.1.10"
_MGF1 = "1.2.840.113549.1.1.8"

_HASH_BYTES = {
    HashAlgorithm.SHA1: 20,
    HashAlgorithm.SHA2_256: 32,
    HashAlgorithm.SHA2_384: 48,
    HashAlgorithm.SHA2_512: 64,
}


def _pss_identifier(h: HashAlgorithm) -> bytes:
    """RSASSA-PSS AlgorithmIdentifier with explicit parameters (RFC 4055 §3.1,
    RFC 7427 Appendix A.4): hash, MGF1 with the same hash, salt = hash length."""
    hash_alg = _tlv(0x30, _oid(_HASH_OIDS[h]) + _NULL)
    params = (
        _tlv(0xA0, hash_alg)
        + _tlv(0xA1, _tlv(0x30, _oid(_MGF1) + hash_alg))
        + _tlv(0xA2, _tlv(0x02, bytes((_HASH_BYTES[h],))))
    )
    return _tlv(0x30, _oid(_RSASSA_PSS) + _tlv(0x30, params))


@dataclass(frozen=True, slots=True)
class _Scheme:
    kind: str  # "pkcs1" | "pss" | "ecdsa"
    hash: HashAlgorithm


def _identifiers() -> dict[bytes, _Scheme]:
    table: dict[bytes, _Scheme] = {}
    for h, oid in _RSA_PKCS1_OIDS.items():
        table[_tlv(0x30, _oid(oid) + _NULL)] = _Scheme("pkcs1", h)
    for h in _RSA_PKCS1_OIDS:
        table[_pss_identifier(h)] = _Scheme("pss", h)
    for h, oid in _ECDSA_OIDS.items():
        table[_tlv(0x30, _oid(oid))] = _Scheme("ecdsa", h)
    return table


_SCHEMES: dict[bytes, _Scheme] = _identifiers()
_IDENTIFIER_OF: dict[_Scheme, bytes] = {s: der for der, s in _SCHEMES.items()}

_CURVE_HASH = {
    "secp256r1": HashAlgorithm.SHA2_256,
    "secp384r1": HashAlgorithm.SHA2_384,
    "secp521r1": HashAlgorithm.SHA2_512,
}


def _pss(h: HashAlgorithm) -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(_HASHES[h]()), salt_length=_HASH_BYTES[h])


def sign(
    key: PrivateKey,
    octets: bytes,
    peer_hashes: Sequence[int],
    *,
    rsa_pss: bool = True,
) -> tuple[AuthMethod, bytes]:
    """The AUTH method and data for ``octets`` signed with ``key``.

    RFC 7427 (method 14) is used when the peer announced
    SIGNATURE_HASH_ALGORITHMS (``peer_hashes``) with one we support;
    otherwise RSA keys fall back to method 1 (RSASSA-PKCS1-v1_5 with SHA-1,
    RFC 7296 §3.8) and ECDSA keys use method 14 with the curve's hash.
    """
    usable = [h for h in SUPPORTED_HASH_ALGORITHMS if int(h) in set(peer_hashes)]
    if isinstance(key, rsa.RSAPrivateKey):
        if not usable:
            sig = key.sign(octets, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
            return AuthMethod.RSA_SIGNATURE, sig
        h = usable[0]
        if rsa_pss:
            scheme = _Scheme("pss", h)
            sig = key.sign(octets, _pss(h), _HASHES[h]())
        else:
            scheme = _Scheme("pkcs1", h)
            sig = key.sign(octets, padding.PKCS1v15(), _HASHES[h]())
    else:
        h = _CURVE_HASH.get(key.curve.name, HashAlgorithm.SHA2_256)
        if usable and h not in usable:
            h = usable[0]
        scheme = _Scheme("ecdsa", h)
        sig = key.sign(octets, ec.ECDSA(_HASHES[h]()))
    identifier = _IDENTIFIER_OF[scheme]
    # RFC 7427 §3: one-octet length of the AlgorithmIdentifier, then it, then the signature
    return AuthMethod.DIGITAL_SIGNATURE, bytes((len(identifier),)) + identifier + sig


def verify_signature(
    key: PublicKey, method: int, auth_data: bytes, octets: bytes
) -> None:
    """Check a signature AUTH; raise :class:`RemoteError` (AUTHENTICATION_FAILED)."""
    try:
        if method == AuthMethod.RSA_SIGNATURE:
            if not isinstance(key, rsa.RSAPublicKey):
                raise RemoteError("AUTH: RSA signature but the key is not RSA",
                                  notify=AUTHENTICATION_FAILED)
            key.verify(auth_data, octets, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
            return
        if method != AuthMethod.DIGITAL_SIGNATURE:
            raise RemoteError(f"AUTH: unsupported method {method}", notify=AUTHENTICATION_FAILED)
        if not auth_data:
            raise RemoteError("AUTH: empty digital signature", notify=AUTHENTICATION_FAILED)
        n = auth_data[0]
        scheme = _SCHEMES.get(auth_data[1 : 1 + n])
        if scheme is None:
            raise RemoteError("AUTH: unsupported signature algorithm",
                              notify=AUTHENTICATION_FAILED)
        sig = auth_data[1 + n :]
        hash_alg = _HASHES[scheme.hash]()
        if scheme.kind == "ecdsa":
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise RemoteError("AUTH: ECDSA signature but the key is not EC",
                                  notify=AUTHENTICATION_FAILED)
            key.verify(sig, octets, ec.ECDSA(hash_alg))
            return
        if not isinstance(key, rsa.RSAPublicKey):
            raise RemoteError("AUTH: RSA signature but the key is not RSA",
                              notify=AUTHENTICATION_FAILED)
        pad = _pss(scheme.hash) if scheme.kind == "pss" else padding.PKCS1v15()
        key.verify(sig, octets, pad, hash_alg)
    except InvalidSignature as exc:
        raise RemoteError("AUTH: signature does not verify", notify=AUTHENTICATION_FAILED) from exc
    except ValueError as exc:  # malformed signature bytes (e.g. bad ECDSA DER)
        raise RemoteError("AUTH: malformed signature", notify=AUTHENTICATION_FAILED) from exc


# --- X.509 ------------------------------------------------------------------


def validate_certificate(
    leaf_der: bytes,
    intermediates_der: Sequence[bytes],
    trust_anchors: Sequence[x509.Certificate],
    identity: Identity,
    now: float,
) -> PublicKey:
    """Validate the peer's chain to one of ``trust_anchors`` at POSIX time
    ``now`` and match ``identity`` to the leaf; return the leaf's public key.

    Raises :class:`RemoteError` with AUTHENTICATION_FAILED (RFC 7296 §2.21.2)
    on any failure.
    """

    def fail(why: str) -> RemoteError:
        return RemoteError(f"certificate: {why}", notify=AUTHENTICATION_FAILED)

    if not trust_anchors:
        raise fail("no CA configured")
    try:
        leaf = x509.load_der_x509_certificate(leaf_der)
        intermediates = [x509.load_der_x509_certificate(d) for d in intermediates_der]
    except ValueError as exc:
        raise fail("malformed DER") from exc
    when = datetime.datetime.fromtimestamp(now, tz=datetime.UTC)
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store(list(trust_anchors)))
        .time(when)
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
            # IKE end-entity certificates carry no TLS EKU (RFC 4945 §5.1.3.12)
            ee_policy=verification.ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    try:
        verifier.verify(leaf, intermediates)
    except verification.VerificationError as exc:
        raise fail(f"chain does not validate: {exc}") from exc
    if not identity_matches(leaf, identity):
        raise fail(f"identity {identity} not in the certificate")
    key = leaf.public_key()
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise fail("unsupported public key type")
    return key


def identity_matches(cert: x509.Certificate, identity: Identity) -> bool:
    """RFC 4945 §3.1: the ID must match the subjectAltName (or the subject
    for ID_DER_ASN1_DN)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = x509.SubjectAlternativeName([])
    data = identity.data
    if identity.id_type in (IdType.IPV4_ADDR, IdType.IPV6_ADDR):
        return any(
            isinstance(a, ipaddress.IPv4Address | ipaddress.IPv6Address) and a.packed == data
            for a in san.get_values_for_type(x509.IPAddress)
        )
    if identity.id_type is IdType.FQDN:
        want = data.decode("ascii", "replace").lower()
        return any(n.lower() == want for n in san.get_values_for_type(x509.DNSName))
    if identity.id_type is IdType.RFC822_ADDR:
        want = data.decode("ascii", "replace").lower()
        return any(n.lower() == want for n in san.get_values_for_type(x509.RFC822Name))
    if identity.id_type is IdType.DER_ASN1_DN:
        return cert.subject.public_bytes() == data or any(
            n.public_bytes() == data for n in san.get_values_for_type(x509.DirectoryName)
        )
    return False


def certificate_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def ca_key_hash(cert: x509.Certificate) -> bytes:
    """SHA-1 of the CA's subjectPublicKeyInfo, as CERTREQ carries it (RFC 7296 §3.7)."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashes.Hash(hashes.SHA1())  # noqa: S303 - RFC 7296 §3.7 mandates SHA-1 here
    digest.update(spki)
    return digest.finalize()
