"""Bounded binary reader for total decoders (STYLE.md habit 5).

Every read checks the length against what is left and raises
:class:`~secpath.errors.ParseError` instead of ``IndexError`` or
``struct.error``.
"""

from __future__ import annotations

import builtins
import struct

from secpath.errors import ParseError

__all__ = ["Reader"]

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")


class Reader:
    """Cursor over an immutable buffer; all reads are bounds-checked."""

    __slots__ = ("_buf", "_end", "_pos", "what")

    def __init__(self, data: builtins.bytes | memoryview, what: str = "message") -> None:
        self._buf = memoryview(data).toreadonly() if not isinstance(data, bytes) else data
        self._pos = 0
        self._end = len(data)
        self.what = what

    @property
    def position(self) -> int:
        return self._pos

    @property
    def remaining(self) -> int:
        return self._end - self._pos

    def _need(self, n: int, field: str) -> int:
        if n < 0 or self._pos + n > self._end:
            raise ParseError(
                f"{self.what}: {field} needs {n} bytes at offset {self._pos}, "
                f"{self._end - self._pos} left"
            )
        start = self._pos
        self._pos += n
        return start

    def u8(self, field: str = "u8") -> int:
        start = self._need(1, field)
        return self._buf[start]

    def u16(self, field: str = "u16") -> int:
        start = self._need(2, field)
        return int(_U16.unpack_from(self._buf, start)[0])

    def u32(self, field: str = "u32") -> int:
        start = self._need(4, field)
        return int(_U32.unpack_from(self._buf, start)[0])

    def u64(self, field: str = "u64") -> int:
        start = self._need(8, field)
        return int(_U64.unpack_from(self._buf, start)[0])

    def bytes(self, n: int, field: str = "bytes") -> builtins.bytes:
        start = self._need(n, field)
        return bytes(self._buf[start : start + n])

    def rest(self) -> builtins.bytes:
        return self.bytes(self.remaining, "rest")

    def sub(self, n: int, field: str) -> Reader:
        """A reader over the next ``n`` bytes (for a length-prefixed structure)."""
        start = self._need(n, field)
        return Reader(self._buf[start : start + n], f"{self.what}/{field}")

    def expect_end(self) -> None:
        if self._pos != self._end:
            raise ParseError(f"{self.what}: {self._end - self._pos} trailing bytes")
