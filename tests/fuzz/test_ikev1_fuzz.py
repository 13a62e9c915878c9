"""Fuzz the IKEv1 decoders and engine: random and mutated bytes raise
nothing but ParseError from a decoder, and nothing at all from the engine
(a hostile datagram is dropped and counted)."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secpath._wire import Reader
from secpath.errors import ParseError
from secpath.ike.engine import Datagram
from secpath.ike.events import ChildSaInstalled
from secpath.ike.v1.codec import (
    IdPayload,
    decode_attributes,
    decode_chain,
    decode_header,
    decode_message,
)
from secpath.ike.v1.quick_mode import selector_of_id
from tests.sans_io.ikev1_harness import make_pair

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ENGINE_FUZZ = settings(max_examples=60, deadline=None,
                       suppress_health_check=[HealthCheck.too_slow])


def _session() -> list[Datagram]:
    """Every datagram of a whole PSK session with PFS, a rekey, DPD and Delete."""
    pair = make_pair(pfs=True, suite="3des-sha1-modp1024")
    handle = pair.a.engine.initiate("path", pair.now)
    pair.run()
    (child,) = pair.a.of(ChildSaInstalled)
    pair.a.engine.rekey_child(handle, child.child_sa, pair.now)
    pair.run()
    pair.a.engine.dpd(handle, pair.now)
    pair.run()
    pair.a.engine.delete(handle, pair.now)
    pair.run()
    return pair.a.sent + pair.b.sent


SESSION = _session()
datagrams = st.sampled_from([d.data for d in SESSION])


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(datagrams))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[pos:]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@FUZZ
@given(st.binary(max_size=600))
def test_random_datagrams_decode_or_raise_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        decode_header(data)
    with contextlib.suppress(ParseError):
        decode_message(data)


@FUZZ
@given(st.integers(0, 255), st.binary(max_size=600), st.booleans())
def test_random_payload_chains(first: int, body: bytes, padded: bool) -> None:
    with contextlib.suppress(ParseError):
        decode_chain(first, body, padded=padded)


@FUZZ
@given(mutated())
def test_mutated_session_messages(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        header = decode_header(data)
        decode_chain(header.next_payload, data[28:], padded=True)


@FUZZ
@given(st.binary(max_size=64))
def test_random_attributes(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        decode_attributes(Reader(data))


@FUZZ
@given(st.integers(0, 255), st.binary(max_size=40), st.integers(0, 255), st.integers(0, 65535))
def test_random_quick_mode_ids(id_type: int, data: bytes, protocol: int, port: int) -> None:
    with contextlib.suppress(ParseError):
        ts = selector_of_id(IdPayload(id_type, data, protocol, port))
        assert int(ts.start) <= int(ts.end)


@ENGINE_FUZZ
@given(st.lists(st.one_of(mutated(), st.binary(max_size=300)), min_size=1, max_size=8),
       st.integers(0, 3))
def test_engine_survives_hostile_datagrams(hostile: list[bytes], when: int) -> None:
    """Hostile datagrams (other cookies) before, during or after a handshake
    never raise, and the genuine handshake still completes."""
    pair = make_pair(pfs=True, seed=7)  # other cookies than SESSION's: its copies are strangers
    pair.a.engine.initiate("path", pair.now)
    for step in range(4):
        if step == when:
            for data in hostile:
                for side, port in ((pair.a, 500), (pair.b, 500), (pair.b, 4500)):
                    side.engine.receive_datagram(
                        (bytes(4) + data) if port == 4500 else data, ("10.9.9.9", port),
                        pair.now, local_port=port)
        pair.run()
    assert pair.a.of(ChildSaInstalled) and pair.b.of(ChildSaInstalled)
