"""Independent decode: scapy's ``scapy.contrib.ikev2`` parses what secpath
encodes — IKE_SA_INIT, IKE_AUTH (SK, decrypted here with ``cryptography``
directly, not with secpath's SkCipher), CREATE_CHILD_SA and INFORMATIONAL, and RFC 7383 fragments.

``handshake()`` is reused by tests/interop/test_ike_codec_tshark.py.
"""

from __future__ import annotations

import datetime
import functools
import hmac
import ipaddress
import os
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.x509.oid import NameOID
from scapy.contrib import ikev2 as sc
from scapy.packet import Packet, Padding, Raw

from secpath.crypto.dh import generate_dh
from secpath.crypto.kdf import IkeSaKeys, derive_ike_keys, skeyseed
from secpath.crypto.registry import IKE_ENCRYPTION, IKE_INTEGRITY
from secpath.crypto.sk import SkCipher
from secpath.ike.constants import (
    AuthMethod,
    CertEncoding,
    ExchangeType,
    IdType,
    NotifyType,
    PayloadType,
    ProtocolId,
    TransformType,
)
from secpath.ike.fragment import encode_fragments
from secpath.ike.message import Header, Message, encode_message
from secpath.ike.payloads import (
    AuthPayload,
    CertPayload,
    CertReqPayload,
    DeletePayload,
    IdiPayload,
    IdrPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
    Transform,
    TransformAttribute,
    TsiPayload,
    TsrPayload,
    VendorIdPayload,
)
from secpath.ike.selectors import TrafficSelector

# (name, encryption, integrity or None, prf, dh group)
SUITES = [
    ("3des-sha1-modp1024", "3des", "sha1", "sha1", 2),
    ("aes128-sha256-modp2048", "aes128", "sha256", "sha256", 14),
    ("aes256gcm16-prfsha384-ecp384", "aes256gcm", None, "sha384", 20),
    ("chacha20poly1305-prfsha256-x25519", "chacha20poly1305", None, "sha256", 31),
]
SUITE_IDS = [s[0] for s in SUITES]


@dataclass(frozen=True)
class Datagram:
    data: bytes
    from_initiator: bool
    message: Message


@dataclass(frozen=True)
class Handshake:
    encryption: str
    integrity: str | None
    spi_i: bytes
    spi_r: bytes
    keys: IkeSaKeys
    datagrams: tuple[Datagram, ...]


def _ike_proposal(encryption: str, integrity: str | None, prf: str, group: int) -> SaPayload:
    enc = IKE_ENCRYPTION[encryption]
    transforms = [Transform(TransformType.ENCR, enc.iana_id,
                            (TransformAttribute(14, 8 * enc.key_bytes),)
                            if encryption != "3des" and encryption != "chacha20poly1305" else ())]
    transforms.append(Transform(TransformType.PRF, IKE_INTEGRITY[prf].prf_iana_id))
    if integrity is not None:
        transforms.append(Transform(TransformType.INTEG, IKE_INTEGRITY[integrity].iana_id))
    transforms.append(Transform(TransformType.DH, group))
    return SaPayload((Proposal(1, ProtocolId.IKE, b"", tuple(transforms)),))


def _esp_proposal(spi: bytes) -> SaPayload:
    return SaPayload((Proposal(1, ProtocolId.ESP, spi, (
        Transform(TransformType.ENCR, 20, (TransformAttribute(14, 128),)),
        Transform(TransformType.ESN, 0),
    )),))


def _ts(address: str) -> TrafficSelector:
    a = ipaddress.ip_address(address)
    return TrafficSelector(a, a, 0, 0, 65535)


@functools.cache
def _certificate() -> bytes:
    """A real self-signed X.509 DER (dissectors parse CERT payload contents)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.example.net")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=365))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def handshake(encryption: str, integrity: str | None, prf: str, group: int) -> Handshake:
    """A full exchange sequence with real keys: IKE_SA_INIT request/response,
    IKE_AUTH request/response, CREATE_CHILD_SA request, INFORMATIONAL delete."""
    spi_i, spi_r = os.urandom(8), os.urandom(8)
    ni, nr = os.urandom(32), os.urandom(32)
    dh_i, dh_r = generate_dh(group, os.urandom), generate_dh(group, os.urandom)
    sa = _ike_proposal(encryption, integrity, prf, group)
    nat = (NotifyPayload(NotifyType.NAT_DETECTION_SOURCE_IP, os.urandom(20)),
           NotifyPayload(NotifyType.NAT_DETECTION_DESTINATION_IP, os.urandom(20)))
    init_req = Message(Header(spi_i, bytes(8), ExchangeType.IKE_SA_INIT, 0, True, False), (
        sa, KePayload(group, dh_i.public_bytes), NoncePayload(ni), *nat,
        NotifyPayload(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED),
        VendorIdPayload(b"secpath"),
    ))
    init_resp = Message(Header(spi_i, spi_r, ExchangeType.IKE_SA_INIT, 0, False, True), (
        sa, KePayload(group, dh_r.public_bytes), NoncePayload(nr), *nat,
        CertReqPayload(CertEncoding.X509_SIGNATURE, os.urandom(40)),
    ))
    seed = skeyseed(prf, ni, nr, dh_i.shared_secret(dh_r.public_bytes))
    keys = derive_ike_keys(prf, encryption, integrity, seed, ni=ni, nr=nr, spi_i=spi_i,
                           spi_r=spi_r)
    sk_i = SkCipher(encryption, integrity, keys.sk_ei, keys.sk_ai)
    sk_r = SkCipher(encryption, integrity, keys.sk_er, keys.sk_ar)
    selectors = (TsiPayload((_ts("10.1.0.1"),)), TsrPayload((_ts("10.2.0.1"),)))
    auth_req = Message(Header(spi_i, spi_r, ExchangeType.IKE_AUTH, 1, True, False), (
        IdiPayload(IdType.ID_FQDN, b"a.example.net"),
        CertPayload(CertEncoding.X509_SIGNATURE, _certificate()),
        NotifyPayload(NotifyType.INITIAL_CONTACT),
        IdrPayload(IdType.ID_IPV4_ADDR, bytes([192, 0, 2, 2])),
        AuthPayload(AuthMethod.SHARED_KEY_MIC, os.urandom(32)),
        NotifyPayload(NotifyType.USE_TRANSPORT_MODE),
        _esp_proposal(os.urandom(4)), *selectors,
    ), encrypted=True)
    auth_resp = Message(Header(spi_i, spi_r, ExchangeType.IKE_AUTH, 1, False, True), (
        IdrPayload(IdType.ID_RFC822_ADDR, b"b@example.net"),
        AuthPayload(AuthMethod.SHARED_KEY_MIC, os.urandom(32)),
        NotifyPayload(NotifyType.USE_TRANSPORT_MODE),
        _esp_proposal(os.urandom(4)), *selectors,
    ), encrypted=True)
    old_spi = os.urandom(4)
    child_req = Message(Header(spi_i, spi_r, ExchangeType.CREATE_CHILD_SA, 2, True, False), (
        NotifyPayload(NotifyType.REKEY_SA, b"", ProtocolId.ESP, old_spi),
        _esp_proposal(os.urandom(4)), NoncePayload(os.urandom(32)),
        KePayload(group, generate_dh(group, os.urandom).public_bytes), *selectors,
    ), encrypted=True)
    delete = Message(Header(spi_i, spi_r, ExchangeType.INFORMATIONAL, 2, False, False), (
        DeletePayload(ProtocolId.ESP, (old_spi, os.urandom(4))),
    ), encrypted=True)
    dgrams = (
        Datagram(encode_message(init_req), True, init_req),
        Datagram(encode_message(init_resp), False, init_resp),
        Datagram(encode_message(auth_req, sk_i, os.urandom), True, auth_req),
        Datagram(encode_message(auth_resp, sk_r, os.urandom), False, auth_resp),
        Datagram(encode_message(child_req, sk_i, os.urandom), True, child_req),
        Datagram(encode_message(delete, sk_r, os.urandom), False, delete),
    )
    return Handshake(encryption, integrity, spi_i, spi_r, keys, dgrams)


def open_sk(
    hs: Handshake, data: bytes, from_initiator: bool, prefix_bytes: int = 32
) -> tuple[int, bytes]:
    """Decrypt an SK (or, with ``prefix_bytes=36``, SKF) message with
    ``cryptography`` directly (RFC 7296 §3.14, RFC 5282 §5.1, RFC 7634,
    RFC 7383 §2.5.3): returns (first inner payload type, inner bytes)."""
    enc = IKE_ENCRYPTION[hs.encryption]
    sk_e = (hs.keys.sk_ei if from_initiator else hs.keys.sk_er).reveal()
    sk_a = (hs.keys.sk_ai if from_initiator else hs.keys.sk_ar).reveal()
    first = data[28]
    prefix, rest = data[:prefix_bytes], data[prefix_bytes:]
    iv = rest[: enc.iv_bytes]
    if enc.aead:
        aead = (ChaCha20Poly1305 if hs.encryption == "chacha20poly1305" else AESGCM)(
            sk_e[: enc.key_bytes]
        )
        body = aead.decrypt(sk_e[enc.key_bytes :] + iv, rest[enc.iv_bytes :], prefix)
    else:
        integ = IKE_INTEGRITY[hs.integrity or ""]
        ct, icv = rest[enc.iv_bytes : -integ.icv_bytes], rest[-integ.icv_bytes :]
        assert icv == hmac.digest(sk_a, data[: -integ.icv_bytes], integ.hash_name)[
            : integ.icv_bytes
        ]
        algo = TripleDES(sk_e) if hs.encryption == "3des" else algorithms.AES(sk_e)
        d = Cipher(algo, modes.CBC(iv)).decryptor()
        body = d.update(ct) + d.finalize()
    return first, body[: len(body) - body[-1] - 1]


_SCAPY_CLASS: dict[int, type[sc.IKEv2_Payload]] = {
    PayloadType.SA: sc.IKEv2_SA, PayloadType.KE: sc.IKEv2_KE, PayloadType.IDI: sc.IKEv2_IDi,
    PayloadType.IDR: sc.IKEv2_IDr, PayloadType.CERT: sc.IKEv2_CERT,
    PayloadType.CERTREQ: sc.IKEv2_CERTREQ, PayloadType.AUTH: sc.IKEv2_AUTH,
    PayloadType.NONCE: sc.IKEv2_Nonce, PayloadType.NOTIFY: sc.IKEv2_Notify,
    PayloadType.DELETE: sc.IKEv2_Delete, PayloadType.VENDOR_ID: sc.IKEv2_VendorID,
    PayloadType.TSI: sc.IKEv2_TSi, PayloadType.TSR: sc.IKEv2_TSr,
}


def _scapy_chain(first: int, data: bytes) -> list[Packet]:
    layer: Packet | None = _SCAPY_CLASS[first](data)
    chain: list[Packet] = []
    while layer is not None and layer.name != "NoPayload":
        assert not isinstance(layer, Raw | Padding), f"scapy left bytes: {layer!r}"
        chain.append(layer)
        layer = layer.payload if layer.payload.name != "NoPayload" else None
    return chain


def _check_payload(ours: Payload, theirs: Packet) -> None:
    assert theirs.next_payload is not None
    assert int(theirs.flags) == 0
    match ours:
        case SaPayload(proposals=[proposal]):
            prop = theirs.prop
            assert prop.proto == proposal.protocol_id and prop.proposal == proposal.number
            assert bytes(prop.SPI or b"") == proposal.spi
            got = []
            t = prop.trans
            while t is not None and t.name != "NoPayload":
                got.append((t.transform_type, t.transform_id, t.key_length))
                t = t.payload if t.payload.name != "NoPayload" else None
            assert got == [(x.type, x.id, x.key_length) for x in proposal.transforms]
        case KePayload(dh_group=group, data=data):
            assert (theirs.group, bytes(theirs.ke)) == (group, data)
        case NoncePayload(data=data):
            assert bytes(theirs.nonce) == data
        case NotifyPayload(notify_type=ntype, data=data, protocol_id=proto, spi=spi):
            assert (theirs.type, theirs.proto, bytes(theirs.SPI or b"")) == (ntype, proto, spi)
            assert bytes(theirs.notify or b"") == data
        case IdiPayload(id_type=t, data=d) | IdrPayload(id_type=t, data=d):
            assert theirs.IDtype == t
            assert bytes(theirs.ID) == d if t != IdType.ID_IPV4_ADDR else theirs.ID == "192.0.2.2"
        case AuthPayload(method=m, data=d):
            assert (theirs.auth_type, bytes(theirs.load)) == (m, d)
        case CertPayload(encoding=e, data=d):
            assert (theirs.cert_encoding, bytes(theirs.cert_data)) == (e, d)
        case CertReqPayload(encoding=e, data=d):
            assert (theirs.cert_encoding, bytes(theirs.cert_authority)) == (e, d)
        case VendorIdPayload(data=d):
            assert bytes(theirs.vendorID) == d
        case DeletePayload(protocol_id=proto, spis=spis):
            assert (theirs.proto, theirs.SPInum) == (proto, len(spis))
            assert [bytes(s) for s in theirs.SPI] == list(spis)
        case TsiPayload(selectors=sel) | TsrPayload(selectors=sel):
            assert theirs.number_of_TSs == len(sel)
            ts = theirs.traffic_selector[0]
            assert (ts.starting_address_v4, ts.ending_address_v4) == (
                str(sel[0].start), str(sel[0].end))
            assert (ts.start_port, ts.end_port, ts.IP_protocol_ID) == (0, 65535, 0)
        case _:
            raise AssertionError(f"unchecked payload {ours!r}")


@pytest.mark.parametrize(("name", "enc", "integ", "prf", "group"), SUITES, ids=SUITE_IDS)
def test_scapy_parses_every_message(
    name: str, enc: str, integ: str | None, prf: str, group: int
) -> None:
    hs = handshake(enc, integ, prf, group)
    for dg in hs.datagrams:
        pkt = sc.IKEv2(dg.data)
        h = dg.message.header
        assert (bytes(pkt.init_SPI), bytes(pkt.resp_SPI)) == (h.spi_i, h.spi_r)
        assert (pkt.exch_type, pkt.id, pkt.length) == (h.exchange_type, h.message_id, len(dg.data))
        assert int(pkt.flags) == h.flags and pkt.version == 0x20
        if dg.message.encrypted:
            sk = pkt[sc.IKEv2_Encrypted]
            assert sk.length == len(dg.data) - 28 and sk.payload.name == "NoPayload"
            first, inner = open_sk(hs, dg.data, dg.from_initiator)
            chain = _scapy_chain(first, inner)
        else:
            chain = _scapy_chain(pkt.next_payload, bytes(pkt.payload))
        assert len(chain) == len(dg.message.payloads)
        for ours, theirs in zip(dg.message.payloads, chain, strict=True):
            _check_payload(ours, theirs)


@pytest.mark.parametrize(("name", "enc", "integ", "prf", "group"), SUITES, ids=SUITE_IDS)
def test_scapy_parses_fragments(
    name: str, enc: str, integ: str | None, prf: str, group: int
) -> None:
    """RFC 7383 §2.5: every SKF datagram carries Fragment Number / Total
    Fragments, and the decrypted pieces joined give the inner payload chain."""
    hs = handshake(enc, integ, prf, group)
    auth = hs.datagrams[2]
    sk = SkCipher(enc, integ, hs.keys.sk_ei, hs.keys.sk_ai)
    fragments = encode_fragments(auth.message, sk, os.urandom, 256)
    inner = b""
    for number, data in enumerate(fragments, start=1):
        pkt = sc.IKEv2(data)
        assert pkt.next_payload == PayloadType.SKF and pkt.length == len(data)
        skf = pkt[sc.IKEv2_Encrypted_Fragment]
        assert (skf.frag_number, skf.frag_total) == (number, len(fragments))
        assert skf.length == len(data) - 28
        assert skf.next_payload == (PayloadType.IDI if number == 1 else 0)
        # the AAD of a fragment covers its 8-byte SKF header (RFC 7383 §2.5.3)
        inner += open_sk(hs, data, True, prefix_bytes=36)[1]
    chain = _scapy_chain(PayloadType.IDI, inner)
    for ours, theirs in zip(auth.message.payloads, chain, strict=True):
        _check_payload(ours, theirs)

