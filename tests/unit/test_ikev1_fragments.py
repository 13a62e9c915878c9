"""The IKEv1 fragment format (the one Windows, Cisco, strongSwan, racoon and
libreswan share), its vendor ID, and bounded reassembly."""

from __future__ import annotations

import hashlib
import struct

import pytest

from secpath.errors import ParseError
from secpath.ike.v1.codec import Header, decode_header, encode_header
from secpath.ike.v1.constants import ExchangeType, Flag
from secpath.ike.v1.fragments import (
    FRAGMENT_PAYLOAD,
    FRAGMENTATION_VENDOR_ID,
    Fragment,
    Reassembly,
    decode_fragment,
    encode_fragments,
    is_fragmentation_vendor_id,
)

CKY_I, CKY_R = bytes.fromhex("0011223344556677"), bytes.fromhex("8899aabbccddeeff")


def _message(body_bytes: int) -> bytes:
    """A main-mode message 5 as sent: encrypted flag, ID payload first."""
    body = bytes(i % 251 for i in range(body_bytes))
    return encode_header(Header(CKY_I, CKY_R, ExchangeType.IDENTITY_PROTECTION, Flag.ENCRYPTION, 0),
                         5, len(body)) + body


def test_vendor_id_is_md5_of_fragmentation_with_the_main_mode_capability() -> None:
    assert FRAGMENTATION_VENDOR_ID[:16] == hashlib.md5(b"FRAGMENTATION").digest()
    assert FRAGMENTATION_VENDOR_ID.hex() == "4048b7d56ebce88525e7de7f00d6c2d380000000"
    assert is_fragmentation_vendor_id(FRAGMENTATION_VENDOR_ID)
    assert is_fragmentation_vendor_id(FRAGMENTATION_VENDOR_ID[:16])  # Windows: no flags
    assert not is_fragmentation_vendor_id(FRAGMENTATION_VENDOR_ID[:15])
    assert not is_fragmentation_vendor_id(bytes(16))


def test_fragment_layout() -> None:
    message = _message(500)
    pieces = encode_fragments(message, 200, 7)
    assert len(pieces) == 4 and all(len(p) <= 200 for p in pieces)
    for number, piece in enumerate(pieces, start=1):
        header = decode_header(piece)
        # the original header: cookies, exchange, message ID; next payload 132, no E flag
        assert (header.spi_i, header.spi_r, header.exchange_type, header.message_id) == (
            CKY_I, CKY_R, ExchangeType.IDENTITY_PROTECTION, 0)
        assert header.next_payload == FRAGMENT_PAYLOAD and header.flags == 0
        np, reserved, length, fid, num, flags = struct.unpack_from("!BBHHBB", piece, 28)
        assert (np, reserved, length, fid, num) == (0, 0, len(piece) - 28, 7, number)
        assert flags == (1 if number == len(pieces) else 0)
    assert b"".join(p[36:] for p in pieces) == message


def test_at_most_sixteen_fragments() -> None:
    pieces = encode_fragments(_message(5000), 60, 1)
    assert len(pieces) <= 16
    assert decode_fragment(pieces[-1])[1].number == len(pieces)


@pytest.mark.parametrize(("offset", "value", "why"), [
    (16, 5, "not an IKEv1 fragment"), (28, 1, "only payload"), (31, 2, "payload length"),
    (34, 0, "number 0"), (34, 17, "number 17")])
def test_bad_fragments_raise_parse_error(offset: int, value: int, why: str) -> None:
    piece = bytearray(encode_fragments(_message(100), 80, 1)[0])
    piece[offset] = value
    with pytest.raises(ParseError, match=why):
        decode_fragment(bytes(piece))
    with pytest.raises(ParseError):
        decode_fragment(bytes(piece[:30]))
    empty = encode_header(Header(CKY_I, CKY_R, 2, 0, 0), FRAGMENT_PAYLOAD, 8) + \
        struct.pack("!BBHHBB", 0, 0, 8, 1, 1, 1)
    with pytest.raises(ParseError, match="empty"):
        decode_fragment(empty)


def test_reassembly_in_any_order_with_duplicates() -> None:
    message = _message(700)
    frags = [decode_fragment(p)[1] for p in encode_fragments(message, 200, 3)]
    r = Reassembly()
    order = [frags[-1], frags[1], frags[1], frags[0], *frags[2:-1]]
    results = [r.add(f, 1.0) for f in order]
    assert results[-1] == message and all(x is None for x in results[:-1])
    assert not r.in_progress


def test_reassembly_bounds() -> None:
    r = Reassembly(max_fragments=4, max_bytes=100)
    with pytest.raises(ParseError, match="limit"):
        r.add(Fragment(1, 5, False, b"x"), 0.0)
    r.add(Fragment(1, 1, False, bytes(60)), 0.0)
    with pytest.raises(ParseError, match="100 bytes"):
        r.add(Fragment(1, 2, False, bytes(60)), 0.0)
    assert not r.in_progress  # the partial message is dropped
    r.add(Fragment(2, 2, True, b"b"), 0.0)
    with pytest.raises(ParseError, match="last"):
        r.add(Fragment(2, 3, False, b"c"), 0.0)
    r.add(Fragment(3, 3, False, b"c"), 0.0)
    with pytest.raises(ParseError, match="past the last"):
        r.add(Fragment(3, 2, True, b"b"), 0.0)


def test_reassembly_times_out_and_a_new_id_restarts() -> None:
    r = Reassembly(timeout=30.0)
    r.add(Fragment(1, 1, False, b"a"), 0.0)
    assert r.deadline == 30.0
    r.expire(29.0)
    assert r.in_progress
    assert r.add(Fragment(1, 2, True, b"b"), 31.0) is None  # fragment 1 expired meanwhile
    assert r.add(Fragment(1, 1, False, b"a"), 32.0) == b"ab"
    r.add(Fragment(5, 1, False, b"old"), 40.0)
    assert r.add(Fragment(6, 1, True, b"new"), 41.0) == b"new"  # a retransmission's new ID
