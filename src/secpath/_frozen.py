"""A faster ``__init__`` for frozen, slotted dataclasses built on hot paths.

The ``__init__`` that ``@dataclass(frozen=True)`` writes sets each field with
``object.__setattr__(self, name, value)``: on CPython 3.11 that is about
three times the cost of calling the slot's own descriptor, and an IKEv2
handshake builds about a hundred such objects (payloads, headers, messages,
events).  :func:`fast_init` swaps in an ``__init__`` with the same
signature (names, order, defaults) that sets the slots through their
descriptors.  Everything else — frozenness, ``__eq__``, ``__hash__``,
``__repr__``, ``dataclasses.replace`` — is the dataclass's own, unchanged.

Only plain classes are accepted: every field in ``__init__``, positional,
with no ``default_factory``, no ``__post_init__``.  Anything else is a
``TypeError`` when the class is defined, never a silent difference.
"""

from __future__ import annotations

import dataclasses
import keyword
import types
from typing import TypeVar

__all__ = ["fast_init"]

T = TypeVar("T")


def fast_init(cls: type[T]) -> type[T]:
    """Class decorator, applied above ``@dataclass(frozen=True, slots=True)``."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"fast_init: {cls.__name__} is not a dataclass")
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    if not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"fast_init: {cls.__name__} must be frozen and slotted")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"fast_init: {cls.__name__} has __post_init__")
    names: list[str] = []
    setters: list[object] = []
    defaults: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        if not f.init or f.kw_only or f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"fast_init: field {cls.__name__}.{f.name} is not a plain one")
        if not f.name.isidentifier() or keyword.iskeyword(f.name) or f.name.startswith("_"):
            raise TypeError(f"fast_init: field name {f.name!r}")
        descriptor = getattr(cls, f.name)
        if not isinstance(descriptor, types.MemberDescriptorType):
            raise TypeError(f"fast_init: {cls.__name__}.{f.name} is not a slot")
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif defaults:
            raise TypeError(f"fast_init: {cls.__name__}.{f.name} without a default after one")
        names.append(f.name)
        setters.append(descriptor.__set__)
    # a factory whose arguments become the closure cells of __init__ (fast
    # look-ups): the setters, then the defaults
    signature = ", ".join(f"{n}=_d_{n}" if n in defaults else n for n in names)
    body = "".join(f"        _s_{i}(self, {n})\n" for i, n in enumerate(names)) or "        pass\n"
    cells = [f"_s_{i}" for i in range(len(names))] + [f"_d_{n}" for n in defaults]
    source = (f"def _factory({', '.join(cells)}):\n"
              f"    def __init__(self, {signature}):\n{body}"
              f"    return __init__\n")
    namespace: dict[str, object] = {}
    exec(source, {}, namespace)  # noqa: S102 (field names checked above, as dataclasses does)
    factory = namespace["_factory"]
    assert callable(factory)
    init = factory(*setters, *defaults.values())
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    init.__annotations__ = dict(cls.__init__.__annotations__)  # the same signature for inspect
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
