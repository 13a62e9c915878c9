"""The ISAKMP codec (RFC 2408 §3): header, data attributes, every payload,
chains with encryption padding; round trips and the byte layout."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secpath._wire import Reader
from secpath.errors import LocalError, ParseError
from secpath.ike.v1.codec import (
    Attribute,
    CertPayload,
    CertReqPayload,
    DeletePayload,
    HashPayload,
    Header,
    IdPayload,
    KePayload,
    NatDPayload,
    NatOaPayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
    SigPayload,
    Transform,
    UnknownPayload,
    VendorIdPayload,
    attribute_int,
    decode_attributes,
    decode_chain,
    decode_header,
    decode_message,
    encode_attributes,
    encode_chain,
    encode_message,
    encode_sa_body,
)
from secpath.ike.v1.constants import PayloadType

COOKIE_I, COOKIE_R = bytes.fromhex("0102030405060708"), bytes.fromhex("1112131415161718")


def test_header_layout() -> None:
    """RFC 2408 §3.1: cookies, next payload, version 0x10, exchange, flags,
    message ID, length of the whole message."""
    data = encode_message(Header(COOKIE_I, COOKIE_R, 32, 1, 0xDEADBEEF), [HashPayload(b"h" * 4)])
    assert data[:16] == COOKIE_I + COOKIE_R
    assert data[16:20] == bytes((8, 0x10, 32, 1))
    assert data[20:24] == bytes.fromhex("deadbeef")
    assert int.from_bytes(data[24:28], "big") == len(data) == 28 + 8
    assert data[28:] == bytes((0, 0, 0, 8)) + b"hhhh"
    h, payloads = decode_message(data)
    assert (h.exchange_type, h.flags, h.message_id, h.version) == (32, 1, 0xDEADBEEF, 0x10)
    assert [p.payload for p in payloads] == [HashPayload(b"hhhh")]


def test_header_length_must_match_the_datagram() -> None:
    data = encode_message(Header(COOKIE_I, COOKIE_R, 2, 0, 0), [NoncePayload(b"n" * 16)])
    with pytest.raises(ParseError, match="length"):
        decode_header(data + b"\x00")
    with pytest.raises(ParseError):
        decode_header(data[:27])


def test_cookies_are_eight_bytes() -> None:
    with pytest.raises(LocalError):
        encode_message(Header(b"short", COOKIE_R, 2, 0, 0), [])


def test_attributes_tv_and_tlv() -> None:
    """RFC 2408 §3.3: AF=1 (TV) for 16-bit values, TLV for longer ones."""
    raw = encode_attributes([Attribute(1, 5), Attribute(12, 86400), Attribute(12, b"\x01\x02")])
    assert raw == bytes.fromhex("80010005" "000c0004" "00015180" "000c0002" "0102")
    attrs = decode_attributes(Reader(raw))
    assert attrs == (Attribute(1, 5), Attribute(12, b"\x00\x01\x51\x80"),
                     Attribute(12, b"\x01\x02"))
    assert attribute_int(attrs[1].value) == 86400


def test_sa_body_layout() -> None:
    """RFC 2407 §4.6.1 DOI/situation, RFC 2408 §3.5/§3.6 proposal and transform."""
    sa = SaPayload((Proposal(1, 1, b"", (Transform(1, 1, (Attribute(1, 5),)),)),))
    body = encode_sa_body(sa)
    assert body == bytes.fromhex(
        "00000001" "00000001"  # DOI IPsec, SIT_IDENTITY_ONLY
        "00000014" "01010001"  # proposal: last, length 20; #1 PROTO_ISAKMP, no SPI, 1 transform
        "0000000c" "01010000"  # transform: last, length 12; #1 KEY_IKE
        "80010005")  # Encryption Algorithm = 3DES-CBC


payloads = st.one_of(
    st.builds(SaPayload, st.lists(st.builds(
        Proposal, st.integers(0, 255), st.integers(0, 255), st.binary(max_size=8),
        st.lists(st.builds(Transform, st.integers(0, 255), st.integers(0, 255), st.lists(
            st.builds(Attribute, st.integers(0, 0x7FFF), st.integers(0, 0xFFFF)),
            max_size=4).map(tuple)), max_size=3).map(tuple)), max_size=3).map(tuple)),
    st.builds(KePayload, st.binary(max_size=64)),
    st.builds(IdPayload, st.integers(0, 255), st.binary(max_size=32), st.integers(0, 255),
              st.integers(0, 65535)),
    st.builds(CertPayload, st.integers(0, 255), st.binary(max_size=64)),
    st.builds(CertReqPayload, st.integers(0, 255), st.binary(max_size=64)),
    st.builds(HashPayload, st.binary(max_size=64)),
    st.builds(SigPayload, st.binary(max_size=64)),
    st.builds(NoncePayload, st.binary(max_size=64)),
    st.builds(NotifyPayload, st.integers(0, 65535), st.integers(0, 255), st.binary(max_size=16),
              st.binary(max_size=16), st.integers(0, 2**32 - 1)),
    st.integers(0, 16).flatmap(lambda n: st.builds(
        DeletePayload, st.integers(0, 255), st.just(n),
        st.lists(st.binary(min_size=n, max_size=n), max_size=4).map(tuple))),
    st.builds(VendorIdPayload, st.binary(max_size=32)),
    st.builds(NatDPayload, st.binary(max_size=32)),
    st.builds(NatOaPayload, st.integers(0, 255), st.binary(max_size=16)),
    st.builds(UnknownPayload, st.sampled_from([14, 15, 99, 200]), st.binary(max_size=16)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(payloads, max_size=6), st.binary(max_size=15))
def test_every_payload_round_trips(items: list[Payload], padding: bytes) -> None:
    first, data = encode_chain(items)
    decoded = decode_chain(first, data)
    assert [p.payload for p in decoded] == items
    assert b"".join(p.raw for p in decoded) == data
    # encryption padding after the last payload is ignored when allowed
    assert [p.payload for p in decode_chain(first, data + padding, padded=True)] == items
    if padding:
        with pytest.raises(ParseError):
            decode_chain(first, data + padding)


def test_proposal_payload_outside_an_sa_is_malformed() -> None:
    with pytest.raises(ParseError):
        decode_chain(PayloadType.P, bytes((0, 0, 0, 8, 1, 1, 0, 0)))


def test_delete_spis_must_have_the_announced_size() -> None:
    with pytest.raises(LocalError):
        encode_chain([DeletePayload(3, 4, (b"123",))])
