"""``Secret`` never shows its bytes; ``Reader`` raises only ParseError."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secpath._wire import Reader
from secpath.errors import ParseError
from secpath.secret import Secret

KEY = bytes.fromhex("00112233445566778899aabbccddeeff")


def test_secret_is_masked_everywhere() -> None:
    s = Secret(KEY)
    for text in (repr(s), str(s), f"{s}", f"{s!r:>40}", format(s, "")):
        assert KEY.hex() not in text and "16 bytes" in text
    assert s.reveal() == KEY and len(s) == 16


def test_secret_equality_and_no_pickle() -> None:
    assert Secret(KEY) == Secret(KEY)
    assert Secret(KEY) != Secret(KEY[::-1])
    assert Secret(KEY).__eq__(KEY) is NotImplemented
    with pytest.raises(TypeError):
        pickle.dumps(Secret(KEY))
    with pytest.raises(TypeError):
        Secret("text")  # type: ignore[arg-type]


def test_reader_reads_and_bounds() -> None:
    r = Reader(b"\x01\x00\x02\x00\x00\x00\x03" + bytes(range(8)) + b"tail")
    assert (r.u8(), r.u16(), r.u32(), r.u64()) == (1, 2, 3, 0x0001020304050607)
    assert r.remaining == 4
    sub = r.sub(2, "part")
    assert sub.bytes(2) == b"ta"
    with pytest.raises(ParseError, match="needs 1 bytes"):
        sub.u8("x")
    with pytest.raises(ParseError, match="trailing"):
        r.expect_end()
    assert r.rest() == b"il"
    r.expect_end()


@given(
    st.binary(max_size=64), st.lists(st.sampled_from(["u8", "u16", "u32", "u64", "b5", "sub3"]), max_size=20)
)
def test_reader_raises_only_parse_error(data: bytes, ops: list[str]) -> None:
    r = Reader(data)
    try:
        for op in ops:
            if op == "b5":
                r.bytes(5)
            elif op == "sub3":
                r.sub(3, "s").rest()
            else:
                getattr(r, op)()
    except ParseError:
        pass
    assert 0 <= r.remaining <= len(data)
