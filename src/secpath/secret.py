"""Key material wrapper: never shown by ``repr``/``str``/``format`` (DESIGN.md)."""

from __future__ import annotations

import hmac
from typing import Final

__all__ = ["Secret"]


class Secret:
    """Bytes that must never be logged, printed or put in an exception.

    Use :meth:`reveal` at the one place the raw bytes are needed (a cipher
    constructor, ``secpath keys``).  Equality is constant time.
    """

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        if type(value) is not bytes:  # bytes are immutable: kept as they are
            if not isinstance(value, bytes | bytearray | memoryview):
                raise TypeError("Secret wraps bytes")
            value = bytes(value)
        self._value: Final[bytes] = value

    def reveal(self) -> bytes:
        """The raw key bytes. Call sites are audited: keep them few."""
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"Secret(<{len(self._value)} bytes>)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("Secret cannot be pickled")
