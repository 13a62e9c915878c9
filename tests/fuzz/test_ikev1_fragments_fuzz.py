"""Fuzz IKEv1 fragmentation: the fragment decoder raises nothing but
ParseError, reassembly stays within its bounds whatever arrives, and an
engine fed hostile fragments with the session's own cookies in the middle of
a fragmented main mode never raises and still completes it."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secpath.errors import ParseError
from secpath.ike.events import ChildSaInstalled, IkeSaFailed
from secpath.ike.v1.codec import HEADER_BYTES
from secpath.ike.v1.fragments import (
    FRAGMENT_PAYLOAD,
    Fragment,
    Reassembly,
    decode_fragment,
    encode_fragments,
)
from tests.sans_io.ikev1_harness import make_pair

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ENGINE_FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SIZE = 300


def _fragments() -> list[bytes]:
    pair = make_pair(auth="rsa", fragment_size=SIZE, seed=3)
    pair.a.engine.initiate("path", pair.now)
    pair.run()
    return [d.data for d in pair.a.sent + pair.b.sent if d.data[16] == FRAGMENT_PAYLOAD]


FRAGMENTS = _fragments()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(FRAGMENTS)))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "cut", "insert"]))
        if kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[max(pos, 1):]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@FUZZ
@given(st.one_of(mutated(), st.binary(max_size=400)))
def test_fragment_decoder_raises_only_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        header, frag = decode_fragment(data)
        assert header.next_payload == FRAGMENT_PAYLOAD and 1 <= frag.number <= 16 and frag.data


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 20), st.booleans(),
                          st.binary(min_size=1, max_size=300), st.floats(0, 100)),
                max_size=40))
def test_reassembly_stays_bounded(steps: list[tuple[int, int, bool, bytes, float]]) -> None:
    r = Reassembly(max_fragments=8, max_bytes=1000, timeout=10.0)
    now = 0.0
    for fid, number, last, data, dt in steps:
        now += dt
        with contextlib.suppress(ParseError):
            whole = r.add(Fragment(fid, number, last, data), now)
            if whole is not None:
                assert len(whole) <= 1000 and not r.in_progress
        assert r.size <= 1000 and len(r.pieces) <= 8


@FUZZ
@given(st.binary(min_size=HEADER_BYTES, max_size=3000), st.integers(40, 1500), st.integers(0, 65535))
def test_fragments_round_trip(body: bytes, size: int, fid: int) -> None:
    message = body[:24] + len(body).to_bytes(4, "big") + body[HEADER_BYTES:]
    pieces = encode_fragments(message, size, fid)
    r = Reassembly(max_bytes=1 << 20)
    out = [r.add(decode_fragment(p)[1], 0.0) for p in reversed(pieces)]
    assert out[-1] == message and all(o is None for o in out[:-1])


@ENGINE_FUZZ
@given(st.lists(mutated(), min_size=1, max_size=6), st.integers(0, 3))
def test_engine_survives_hostile_fragments_with_its_cookies(hostile: list[bytes], when: int) -> None:
    """Mutated fragments with the session's own cookies: never an exception.
    Before the responder's cookie is known (step 0) they are refused, so the
    handshake completes; later they may forge message 5/6 as a whole forged
    message could, and each side then ends up or reports the failure."""
    pair = make_pair(auth="rsa", fragment_size=SIZE, seed=3)  # FRAGMENTS' cookies: the same session
    pair.a.engine.initiate("path", pair.now)
    for step in range(4):
        if step == when:
            for data in hostile:
                for side, src in ((pair.a, "10.0.0.2"), (pair.b, "10.0.0.1")):
                    side.engine.receive_datagram(data, (src, 500), pair.now)
        pair.run()
    pair.advance(120)
    for side in (pair.a, pair.b):
        up, failed = bool(side.of(ChildSaInstalled)), bool(side.of(IkeSaFailed))
        assert up or failed or not side.engine.ike_sas()
        assert side.engine.fragments_waiting() == 0  # a partial message expires
    if when == 0:
        assert pair.a.of(ChildSaInstalled) and pair.b.of(ChildSaInstalled)


def test_session_fragments_exist() -> None:
    assert len(FRAGMENTS) >= 4  # message 5 and message 6, two pieces at least each
