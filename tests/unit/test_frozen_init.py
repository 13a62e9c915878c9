"""secpath._frozen.fast_init: the same objects as the dataclass's own __init__."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import ClassVar

import pytest

from secpath._frozen import fast_init
from secpath.ike.constants import PayloadType
from secpath.ike.events import EspSaParameters
from secpath.ike.message import Header
from secpath.ike.payloads import IdiPayload, IdPayload, NotifyPayload
from secpath.secret import Secret


@dataclass(frozen=True, slots=True)
class Plain:
    kind: ClassVar[int] = 7
    a: int
    b: bytes
    c: int = 0
    d: tuple[int, ...] = ()


@fast_init
@dataclass(frozen=True, slots=True)
class Fast:
    kind: ClassVar[int] = 7
    a: int
    b: bytes
    c: int = 0
    d: tuple[int, ...] = ()


@fast_init
@dataclass(frozen=True, slots=True)
class FastChild(Fast):
    pass


CALLS: list[tuple[tuple[object, ...], dict[str, object]]] = [
    ((1, b"x"), {}),
    ((1, b"x", 2), {}),
    ((1, b"x", 2, (3,)), {}),
    ((1,), {"b": b"y", "d": (4, 5)}),
    ((), {"a": 9, "b": b"", "c": 1}),
]


@pytest.mark.parametrize(("args", "kwargs"), CALLS)
def test_same_fields_equality_hash_repr(args: tuple[object, ...], kwargs: dict[str, object]) -> None:
    plain, fast = Plain(*args, **kwargs), Fast(*args, **kwargs)  # type: ignore[arg-type]
    assert dataclasses.astuple(plain) == dataclasses.astuple(fast)
    assert repr(fast) == repr(plain).replace("Plain", "Fast")
    assert fast == Fast(*args, **kwargs)  # type: ignore[arg-type]
    assert hash(fast) == hash(Fast(*args, **kwargs))  # type: ignore[arg-type]
    child = FastChild(*args, **kwargs)  # type: ignore[arg-type]
    assert dataclasses.astuple(child) == dataclasses.astuple(plain) and child != fast


def test_same_signature_and_errors() -> None:
    assert str(inspect.signature(Fast)) == str(inspect.signature(Plain))
    for bad_args, bad_kwargs in [((), {}), ((1,), {}), ((1, b"", 2, (), 5), {}),
                                 ((1, b""), {"e": 1}), ((1, b""), {"a": 2})]:
        with pytest.raises(TypeError):
            Plain(*bad_args, **bad_kwargs)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            Fast(*bad_args, **bad_kwargs)  # type: ignore[arg-type]


def test_still_frozen_and_replaceable() -> None:
    fast = Fast(1, b"x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.a = 2  # type: ignore[misc]
    assert dataclasses.replace(fast, c=5) == Fast(1, b"x", 5)
    assert not hasattr(fast, "__dict__")


def test_hot_classes_keep_their_behaviour() -> None:
    h = Header(b"i" * 8, b"r" * 8, 34, 1, True, False)
    assert (h.major_version, h.minor_version, h.version_flag) == (2, 0, False)
    assert NotifyPayload(16388).data == b"" and NotifyPayload(16388).spi == b""
    idi = IdiPayload(1, b"\x0a\x00\x00\x01")
    assert isinstance(idi, IdPayload) and idi.payload_type == PayloadType.IDI
    assert idi != IdPayload(1, idi.data)
    key = Secret(b"k" * 20)
    params = EspSaParameters(1, "aes128gcm16", key, Secret(b""), "tunnel", None, None, False, 64)
    assert params.lifetime_s is None and "k" * 20 not in repr(params)


def test_refuses_what_it_cannot_copy() -> None:
    with pytest.raises(TypeError):
        @fast_init
        @dataclass(frozen=True, slots=True)
        class Factory:
            a: tuple[int, ...] = field(default_factory=tuple)

    with pytest.raises(TypeError):
        @fast_init
        @dataclass(frozen=True, slots=True)
        class Post:
            a: int

            def __post_init__(self) -> None:
                pass

    with pytest.raises(TypeError):
        @fast_init
        @dataclass(frozen=True)
        class NoSlots:
            a: int

    with pytest.raises(TypeError):
        @fast_init
        @dataclass(slots=True)
        class NotFrozen:
            a: int

    with pytest.raises(TypeError):
        @fast_init
        @dataclass(frozen=True, slots=True)
        class Hidden:
            a: int
            _b: int = field(default=0, init=False)

    with pytest.raises(TypeError):
        @fast_init
        @dataclass(frozen=True, slots=True, kw_only=True)
        class KwOnly:
            a: int
