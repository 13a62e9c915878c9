"""secpath.ike.payloads / message / fragment: round trips and error cases.

The Hypothesis strategies here are reused by tests/fuzz/test_ike_codec_fuzz.py.
"""

from __future__ import annotations

import ipaddress
import os
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secpath.crypto.sk import IntegrityError, SkCipher
from secpath.errors import LocalError, ParseError
from secpath.ike.constants import (
    IKE_HEADER_BYTES,
    ExchangeType,
    NotifyType,
    PayloadType,
    notify_name,
)
from secpath.ike.fragment import FragmentReassembler, encode_fragments
from secpath.ike.message import (
    Header,
    Message,
    decode_header,
    decode_message,
    decode_payload_chain,
    encode_message,
    encode_payload_chain,
)
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
    UnknownPayload,
    VendorIdPayload,
    decode_payload_body,
    encode_payload_body,
)
from secpath.ike.selectors import TrafficSelector
from secpath.secret import Secret

# --- strategies ---------------------------------------------------------------------

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
small = st.binary(max_size=40)

attributes = st.builds(
    TransformAttribute, st.integers(0, 0x7FFF), st.one_of(u16, st.binary(max_size=12))
)
transforms = st.builds(
    Transform, u8, u16, st.lists(attributes, max_size=3).map(tuple)
)
proposals = st.builds(
    Proposal, u8, u8, st.binary(max_size=8), st.lists(transforms, max_size=6).map(tuple)
)
v4 = st.builds(ipaddress.IPv4Address, st.integers(0, 2**32 - 1))
v6 = st.builds(ipaddress.IPv6Address, st.integers(0, 2**128 - 1))
selectors = st.one_of(
    st.builds(TrafficSelector, v4, v4, u8, u16, u16),
    st.builds(TrafficSelector, v6, v6, u8, u16, u16),
)


@st.composite
def deletes(draw: st.DrawFn) -> DeletePayload:
    size = draw(st.integers(1, 8))
    spis = draw(st.lists(st.binary(min_size=size, max_size=size), min_size=1, max_size=5))
    return DeletePayload(draw(u8), tuple(spis))


_KNOWN = {int(t) for t in PayloadType}
unknown_types = st.integers(1, 255).filter(
    lambda t: t not in _KNOWN or t in (PayloadType.CP, PayloadType.EAP)
)

payloads: st.SearchStrategy[Payload] = st.one_of(
    st.builds(SaPayload, st.lists(proposals, min_size=1, max_size=3).map(tuple)),
    st.builds(KePayload, u16, st.binary(max_size=133)),
    st.builds(IdiPayload, u8, small),
    st.builds(IdrPayload, u8, small),
    st.builds(CertPayload, u8, small),
    st.builds(CertReqPayload, u8, small),
    st.builds(AuthPayload, u8, small),
    st.builds(NoncePayload, st.binary(min_size=16, max_size=64)),
    st.builds(NotifyPayload, u16, small, u8, st.binary(max_size=8)),
    st.builds(DeletePayload, st.just(1)),
    deletes(),
    st.builds(VendorIdPayload, small),
    st.builds(TsiPayload, st.lists(selectors, max_size=4).map(tuple)),
    st.builds(TsrPayload, st.lists(selectors, max_size=4).map(tuple)),
    st.builds(UnknownPayload, unknown_types, small, st.booleans()),
)

headers = st.builds(
    Header,
    st.binary(min_size=8, max_size=8),
    st.binary(min_size=8, max_size=8),
    u8,
    st.integers(0, 2**32 - 1),
    st.booleans(),
    st.booleans(),
    major_version=st.integers(0, 2),
    minor_version=st.integers(0, 15),
    version_flag=st.booleans(),
)

payload_lists = st.lists(payloads, max_size=8).map(tuple)

# (encryption, integrity, len(SK_e), len(SK_a))
SUITES = [
    ("3des", "sha1", 24, 20),
    ("aes128", "sha256", 16, 32),
    ("aes256", "sha512", 32, 64),
    ("aes128gcm", None, 20, 0),
    ("aes256gcm", None, 36, 0),
    ("chacha20poly1305", None, 36, 0),
]
SUITE_IDS = [s[0] for s in SUITES]


def make_cipher(enc: str, integ: str | None, ke: int, ka: int) -> SkCipher:
    return SkCipher(enc, integ, Secret(os.urandom(ke)), Secret(os.urandom(ka)))


ciphers = st.sampled_from(SUITES).map(lambda s: make_cipher(*s))

# --- payload bodies ---------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(payloads)
def test_payload_body_round_trip(payload: Payload) -> None:
    body = encode_payload_body(payload)
    critical = isinstance(payload, UnknownPayload) and payload.critical
    assert decode_payload_body(payload.payload_type, body, critical) == payload


def test_sa_payload_wire_format() -> None:
    """RFC 7296 §3.3: one IKE proposal, AES-CBC-128 (Key Length 128), PRF
    HMAC-SHA-256, HMAC-SHA-256-128, group 14 — written out by hand."""
    sa = SaPayload((Proposal(1, 1, b"", (
        Transform(1, 12, (TransformAttribute(14, 128),)),
        Transform(2, 5), Transform(3, 12), Transform(4, 14),
    )),))
    expected = bytes.fromhex(
        "0000002c" "01010004"  # last proposal, length 44, #1, IKE, SPI size 0, 4 transforms
        "0300000c" "0100000c" "800e0080"  # ENCR AES-CBC, Key Length (TV) 128
        "03000008" "02000005"  # PRF_HMAC_SHA2_256
        "03000008" "0300000c"  # AUTH_HMAC_SHA2_256_128
        "00000008" "0400000e"  # last: DH group 14
    )
    assert encode_payload_body(sa) == expected
    assert sa.proposals[0].transforms[0].key_length == 128
    assert sa.proposals[0].transforms[1].key_length is None


def test_notify_and_ts_wire_format() -> None:
    # RFC 7296 §3.10: protocol 3 (ESP), SPI size 4, type REKEY_SA
    n = NotifyPayload(NotifyType.REKEY_SA, b"", 3, b"\x01\x02\x03\x04")
    assert encode_payload_body(n).hex() == "0304400901020304"
    # RFC 7296 §3.13.1: TS_IPV4_ADDR_RANGE, TCP, ports 0-65535
    ts = TsiPayload((TrafficSelector(ipaddress.IPv4Address("10.0.0.0"),
                                     ipaddress.IPv4Address("10.0.0.255"), 6, 0, 65535),),)
    assert encode_payload_body(ts).hex() == "01000000" "07060010" "0000ffff" "0a000000" "0a0000ff"


@pytest.mark.parametrize(
    ("ptype", "body"),
    [
        (PayloadType.SA, b""),  # no proposal
        (PayloadType.SA, bytes.fromhex("00000007010100")),  # proposal length < 8
        (PayloadType.SA, bytes.fromhex("0100000801010000")),  # Last Substruc 1
        (PayloadType.SA, bytes.fromhex("000000080101000100000008")),  # transform outside
        (PayloadType.SA, bytes.fromhex("0000000c010100010000000401000001")[:12]),
        (PayloadType.SA, bytes.fromhex("00000010010100010000000701000001")),  # transform < 8
        (PayloadType.SA, bytes.fromhex("000000100101000205000008010000010000")),
        (PayloadType.KE, b"\x00\x0e\x00"),
        (PayloadType.NONCE, bytes(15)),  # RFC 7296 §3.9: 16 to 256 bytes
        (PayloadType.NONCE, bytes(257)),
        (PayloadType.IDI, b"\x01\x00"),
        (PayloadType.AUTH, b""),
        (PayloadType.CERT, b""),
        (PayloadType.NOTIFY, b"\x00\x04\x00"),  # SPI size 4, nothing after
        (PayloadType.DELETE, b"\x03\x04\x00\x02abcd"),  # 2 SPIs announced, 1 present
        (PayloadType.DELETE, b"\x03\x00\x00\x01"),  # SPI size 0 with a count
        (PayloadType.DELETE, b"\x03\x04\x00\x01abcdX"),  # trailing byte
        (PayloadType.TSI, b"\x01\x00\x00\x00" + bytes.fromhex("09000010") + bytes(12)),  # type 9
        (PayloadType.TSI, b"\x01\x00\x00\x00" + bytes.fromhex("07000011") + bytes(13)),  # length
        (PayloadType.TSI, b"\x02\x00\x00\x00" + bytes.fromhex("07000010") + bytes(12)),  # count
        (PayloadType.TSR, b"\x00\x00\x00\x00\x00"),  # trailing
    ],
)
def test_malformed_bodies_are_parse_errors(ptype: int, body: bytes) -> None:
    with pytest.raises(ParseError):
        decode_payload_body(ptype, body)


def test_encoder_range_checks() -> None:
    with pytest.raises(LocalError):
        encode_payload_body(KePayload(70000, b""))
    with pytest.raises(LocalError):
        encode_payload_body(DeletePayload(3, (b"abcd", b"abc")))
    with pytest.raises(LocalError):
        encode_payload_body(NotifyPayload(1, b"", 3, bytes(256)))


# --- messages ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(headers, payload_lists)
def test_plain_message_round_trip(header: Header, plist: tuple[Payload, ...]) -> None:
    message = Message(header, plist)
    data = encode_message(message)
    assert decode_message(data) == message
    assert decode_header(data) == header
    assert struct.unpack_from("!I", data, 24)[0] == len(data)


@settings(max_examples=60, deadline=None)
@given(headers, payload_lists, ciphers)
def test_encrypted_message_round_trip(
    header: Header, plist: tuple[Payload, ...], sk: SkCipher
) -> None:
    message = Message(header, plist, encrypted=True)
    data = encode_message(message, sk, os.urandom)
    assert data[16] == PayloadType.SK  # header Next Payload
    assert decode_message(data, sk) == message


def _header(exchange: int = ExchangeType.IKE_AUTH) -> Header:
    return Header(os.urandom(8), os.urandom(8), exchange, 1, True, False)


@pytest.mark.parametrize(("enc", "integ", "ke", "ka"), SUITES, ids=SUITE_IDS)
def test_encrypted_message_tampering(enc: str, integ: str | None, ke: int, ka: int) -> None:
    sk = make_cipher(enc, integ, ke, ka)
    data = encode_message(Message(_header(), (NoncePayload(bytes(32)),), True), sk, os.urandom)
    for pos in (IKE_HEADER_BYTES - 9, IKE_HEADER_BYTES + 2, len(data) // 2 + 10, len(data) - 1):
        broken = bytearray(data)
        broken[pos] ^= 1
        with pytest.raises(ParseError):
            decode_message(bytes(broken), sk)
    # a flipped ciphertext or ICV bit is an integrity failure: drop silently
    broken = bytearray(data)
    broken[-1] ^= 1
    with pytest.raises(IntegrityError):
        decode_message(bytes(broken), sk)
    other = make_cipher(enc, integ, ke, ka)
    with pytest.raises(IntegrityError):
        decode_message(data, other)
    with pytest.raises(ParseError, match="without IKE SA keys"):
        decode_message(data)


def test_header_errors() -> None:
    data = encode_message(Message(_header(ExchangeType.IKE_SA_INIT), (NoncePayload(bytes(16)),)))
    with pytest.raises(ParseError):
        decode_header(data[:27])
    with pytest.raises(ParseError):
        decode_header(data + b"\x00")
    with pytest.raises(ParseError):
        decode_message(data[:-1])
    v3 = bytearray(data)
    v3[17] = 0x30
    with pytest.raises(ParseError) as info:
        decode_message(bytes(v3))
    assert info.value.notify == NotifyType.INVALID_MAJOR_VERSION
    with pytest.raises(LocalError):
        encode_message(Message(Header(b"short", bytes(8), 34, 0, True, False), ()))
    with pytest.raises(LocalError):
        encode_message(Message(_header(), (), encrypted=True))


def test_sk_must_be_last() -> None:
    sk = make_cipher("aes128gcm", None, 20, 0)
    data = encode_message(Message(_header(), (NoncePayload(bytes(16)),), True), sk, os.urandom)
    # append a Vendor ID after the SK payload and fix the lengths
    extra = b"\x00\x00\x00\x05V"
    fixed = bytearray(data + extra)
    struct.pack_into("!I", fixed, 24, len(fixed))
    with pytest.raises(ParseError, match="last payload"):
        decode_message(bytes(fixed), sk)


def test_payload_chain_errors() -> None:
    first, chain = encode_payload_chain((NoncePayload(bytes(16)), VendorIdPayload(b"v")))
    assert decode_payload_chain(first, chain) == (NoncePayload(bytes(16)), VendorIdPayload(b"v"))
    with pytest.raises(ParseError):
        decode_payload_chain(first, chain + b"\x00")
    with pytest.raises(ParseError):
        decode_payload_chain(first, chain[:-1])
    with pytest.raises(ParseError):  # length < 4
        decode_payload_chain(PayloadType.NONCE, b"\x00\x00\x00\x03")
    with pytest.raises(ParseError):  # SK inside an encrypted payload
        decode_payload_chain(PayloadType.SK, b"\x00\x00\x00\x04")
    many = b"".join(b"\x2b\x00\x00\x04" for _ in range(200))
    with pytest.raises(ParseError, match="more than"):
        decode_payload_chain(PayloadType.VENDOR_ID, many)


def test_unknown_critical_payload() -> None:
    """RFC 7296 §2.5: unknown payloads are skipped unless critical; a critical
    one is reported so the engine answers UNSUPPORTED_CRITICAL_PAYLOAD."""
    header = _header(ExchangeType.IKE_SA_INIT)
    quiet = Message(header, (UnknownPayload(200, b"x"), NoncePayload(bytes(16))))
    assert decode_message(encode_message(quiet)).unknown_critical == ()
    assert decode_message(encode_message(quiet)).unsupported_critical_notify() is None
    loud = Message(header, (NoncePayload(bytes(16)), UnknownPayload(201, b"y", critical=True)))
    decoded = decode_message(encode_message(loud))
    assert decoded.unknown_critical == (201,)
    answer = decoded.unsupported_critical_notify()
    assert answer == NotifyPayload(NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD, b"\xc9")


def test_message_accessors_and_notify_names() -> None:
    n1 = NotifyPayload(NotifyType.NAT_DETECTION_SOURCE_IP, b"a" * 20)
    n2 = NotifyPayload(NotifyType.COOKIE, b"c" * 16)
    m = Message(_header(), (n1, NoncePayload(bytes(16)), n2))
    assert m.get(NoncePayload) == NoncePayload(bytes(16))
    assert m.get(KePayload) is None
    assert m.all(NotifyPayload) == (n1, n2)
    assert m.notify(NotifyType.COOKIE) == n2
    assert m.notify(NotifyType.INVALID_KE_PAYLOAD) is None
    assert notify_name(17) == "INVALID_KE_PAYLOAD"
    assert notify_name(16390) == "COOKIE"
    assert notify_name(40000) == "NOTIFY_40000"
    assert NotifyType.NO_PROPOSAL_CHOSEN.is_error and not NotifyType.COOKIE.is_error


# --- fragments (RFC 7383) ----------------------------------------------------------------


@pytest.mark.parametrize(("enc", "integ", "ke", "ka"), SUITES, ids=SUITE_IDS)
def test_fragments_round_trip_in_any_order(enc: str, integ: str | None, ke: int, ka: int) -> None:
    sk = make_cipher(enc, integ, ke, ka)
    message = Message(_header(), (CertPayload(4, os.urandom(3000)), NoncePayload(bytes(32))), True)
    frags = encode_fragments(message, sk, os.urandom, 576)
    assert len(frags) > 1 and all(len(f) <= 576 for f in frags)
    decoded = [decode_message(f, sk) for f in frags]
    assert [d.fragment.number for d in decoded if d.fragment] == list(range(1, len(frags) + 1))
    assert decoded[0].fragment and decoded[0].fragment.first_payload == PayloadType.CERT
    assert all(d.fragment and d.fragment.first_payload == 0 for d in decoded[1:])
    order = decoded + decoded[:2]  # with duplicates
    random.Random(7).shuffle(order)
    reassembler = FragmentReassembler()
    results = [reassembler.add(d) for d in order]
    done = [r for r in results if r is not None]
    assert done == [message]


def test_single_fragment_and_limits() -> None:
    sk = make_cipher("aes128", "sha256", 16, 32)
    message = Message(_header(), (NoncePayload(bytes(32)),), True)
    [only] = encode_fragments(message, sk, os.urandom, 1280)
    assert FragmentReassembler().add(decode_message(only, sk)) == message
    with pytest.raises(LocalError):
        encode_fragments(message, sk, os.urandom, 60)
    with pytest.raises(LocalError):
        encode_fragments(Message(_header(ExchangeType.IKE_SA_INIT), (), True), sk, os.urandom, 500)
    with pytest.raises(LocalError):
        encode_fragments(Message(_header(), ()), sk, os.urandom, 500)
    with pytest.raises(LocalError):
        FragmentReassembler().add(message)


def test_reassembly_bounds() -> None:
    sk = make_cipher("aes128gcm", None, 20, 0)
    big = Message(_header(), (CertPayload(4, os.urandom(4000)),), True)
    frags = [decode_message(f, sk) for f in encode_fragments(big, sk, os.urandom, 300)]
    with pytest.raises(ParseError, match="fragments exceed"):
        FragmentReassembler(max_fragments=4).add(frags[0])
    small_buffer = FragmentReassembler(max_bytes=1000)
    with pytest.raises(ParseError, match="exceeds"):
        for f in frags:
            small_buffer.add(f)


def test_reassembly_total_changes() -> None:
    """RFC 7383 §2.6.1: a larger Total Fragments restarts; a smaller one is ignored."""
    sk = make_cipher("aes128gcm", None, 20, 0)
    message = Message(_header(), (CertPayload(4, os.urandom(1500)),), True)
    few = [decode_message(f, sk) for f in encode_fragments(message, sk, os.urandom, 1000)]
    many = [decode_message(f, sk) for f in encode_fragments(message, sk, os.urandom, 500)]
    assert len(few) < len(many)
    r = FragmentReassembler()
    assert r.add(few[0]) is None
    assert r.add(many[0]) is None  # restart with the larger total
    assert r.add(few[1]) is None  # smaller total: ignored
    results = [r.add(f) for f in many[1:]]
    assert results[-1] == message


def test_reassembled_garbage_is_parse_error() -> None:
    """Fragments that decrypt but whose joined content is not a payload chain."""
    sk = make_cipher("aes128gcm", None, 20, 0)
    header = _header()
    data = encode_fragments(Message(header, (NoncePayload(bytes(40)),), True), sk, os.urandom, 80)
    decoded = [decode_message(f, sk) for f in data]
    r = FragmentReassembler()
    with pytest.raises(ParseError):
        for d in decoded[:-1]:
            r.add(d)
        # replace the last fragment's content with junk
        last = decoded[-1]
        assert last.fragment is not None
        from dataclasses import replace

        r.add(replace(last, fragment=replace(last.fragment, data=b"\xff\xff")))


def test_skf_fragment_number_checks() -> None:
    sk = make_cipher("aes128gcm", None, 20, 0)
    [frag] = encode_fragments(Message(_header(), (), True), sk, os.urandom, 500)
    for number, total in ((0, 1), (2, 1)):
        bad = bytearray(frag)
        struct.pack_into("!HH", bad, IKE_HEADER_BYTES + 4, number, total)
        with pytest.raises(ParseError):
            decode_message(bytes(bad), sk)


@settings(max_examples=40, deadline=None)
@given(headers, payload_lists, ciphers, st.integers(120, 1500), st.randoms())
def test_fragments_property(header: Header, plist: tuple[Payload, ...], sk: SkCipher,
                            max_datagram: int, rnd: random.Random) -> None:
    """Any encrypted message, any datagram limit: every fragment fits and the
    reassembled message equals the original, whatever the arrival order."""
    if header.exchange_type == ExchangeType.IKE_SA_INIT:
        header = Header(header.spi_i, header.spi_r, ExchangeType.IKE_AUTH, header.message_id,
                        header.initiator, header.response)
    message = Message(header, plist, True)
    fragments = encode_fragments(message, sk, os.urandom, max_datagram)
    assert all(len(f) <= max_datagram for f in fragments)
    decoded = [decode_message(f, sk) for f in fragments]
    rnd.shuffle(decoded)
    reassembler = FragmentReassembler(max_fragments=len(fragments), max_bytes=1 << 20)
    results = [reassembler.add(d) for d in decoded]
    assert results[-1] == message and all(r is None for r in results[:-1])
