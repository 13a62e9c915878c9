"""Fuzz the IKEv2 decoders: random and mutated bytes raise only ParseError.

Covers decode_header, decode_message (plain, SK and SKF, with and without
keys), decode_payload_body for every type, decode_payload_chain, and the
fragment reassembler.  Inner payload chains are reached by sealing random
plaintext with a real SkCipher so the integrity check passes.
"""

from __future__ import annotations

import contextlib
import os
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secpath.crypto.sk import SkCipher
from secpath.errors import ParseError
from secpath.ike.constants import IKE_HEADER_BYTES, PayloadType
from secpath.ike.fragment import FragmentReassembler
from secpath.ike.message import (
    Header,
    Message,
    decode_header,
    decode_message,
    decode_payload_chain,
    encode_message,
    seal_payloads,
)
from secpath.ike.payloads import Payload, decode_payload_body
from tests.unit.test_ike_codec import SUITES, headers, make_cipher, payload_lists

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
_CIPHERS = [make_cipher(*s) for s in SUITES]
cipher_or_none = st.sampled_from([None, *_CIPHERS])


def _decode_quietly(data: bytes, sk: SkCipher | None) -> Message | None:
    try:
        return decode_message(data, sk)
    except ParseError:
        return None


@FUZZ
@given(st.binary(max_size=600), cipher_or_none)
def test_random_datagrams(data: bytes, sk: SkCipher | None) -> None:
    _decode_quietly(data, sk)
    with contextlib.suppress(ParseError):
        decode_header(data)


@FUZZ
@given(st.binary(max_size=600), cipher_or_none)
def test_random_bodies_behind_a_valid_header(body: bytes, sk: SkCipher | None) -> None:
    """A well-formed header (so the walk starts) with any Next Payload."""
    for first in (PayloadType.SA, PayloadType.SK, PayloadType.SKF, body[0] if body else 0):
        header = struct.pack("!8s8sBBBBII", b"i" * 8, b"r" * 8, first, 0x20, 35, 8, 1,
                             IKE_HEADER_BYTES + len(body))
        _decode_quietly(header + body, sk)


@FUZZ
@given(st.integers(0, 255), st.binary(max_size=300))
def test_random_payload_bodies(ptype: int, body: bytes) -> None:
    with contextlib.suppress(ParseError):
        decode_payload_body(ptype, body)


@FUZZ
@given(st.integers(0, 255), st.binary(max_size=600))
def test_random_payload_chains(first: int, data: bytes) -> None:
    with contextlib.suppress(ParseError):
        decode_payload_chain(first, data)


@st.composite
def mutations(draw: st.DrawFn, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete"]))
        pos = draw(st.integers(0, max(len(buf) - 1, 0)))
        if kind == "flip" and buf:
            buf[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and buf:
            buf[pos] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del buf[pos:]
        elif kind == "insert":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and buf:
            del buf[pos : pos + draw(st.integers(1, 8))]
    return bytes(buf)


@FUZZ
@given(st.data(), headers, payload_lists)
def test_mutated_plain_messages(data: st.DataObject, header: Header,
                                plist: tuple[Payload, ...]) -> None:
    encoded = encode_message(Message(header, plist))
    mutated = data.draw(mutations(encoded))
    _decode_quietly(mutated, None)
    if len(mutated) >= 28:  # keep the Length field honest so the walk runs
        fixed = bytearray(mutated)
        struct.pack_into("!I", fixed, 24, len(fixed))
        _decode_quietly(bytes(fixed), None)


@FUZZ
@given(st.data(), headers, payload_lists, st.sampled_from(_CIPHERS))
def test_mutated_encrypted_messages(data: st.DataObject, header: Header,
                                    plist: tuple[Payload, ...], sk: SkCipher) -> None:
    encoded = encode_message(Message(header, plist, True), sk, os.urandom)
    _decode_quietly(data.draw(mutations(encoded)), sk)


@FUZZ
@given(headers, st.integers(0, 255), st.binary(max_size=400), st.sampled_from(_CIPHERS))
def test_sealed_random_inner_chains(header: Header, first: int, inner: bytes,
                                    sk: SkCipher) -> None:
    """Random plaintext inside a valid SK payload reaches the inner parser."""
    data = seal_payloads(header, PayloadType.SK, first, inner, sk=sk, rng=os.urandom)
    _decode_quietly(data, sk)


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 255),
                  st.binary(max_size=60), st.booleans()),
        min_size=1, max_size=12,
    ),
)
def test_random_fragments_into_the_reassembler(
    pieces: list[tuple[int, int, int, bytes, bool]],
) -> None:
    sk = _CIPHERS[3]
    reassembler = FragmentReassembler(max_fragments=5, max_bytes=150, max_messages=2)
    for number, total, first, chunk, response in pieces:
        header = Header(b"i" * 8, b"r" * 8, 35, number % 2, True, response)
        data = seal_payloads(header, PayloadType.SKF, first, chunk, sk=sk, rng=os.urandom,
                             extra=struct.pack("!HH", number, total))
        message = _decode_quietly(data, sk)
        if message is None:
            continue
        with contextlib.suppress(ParseError):
            reassembler.add(message)
