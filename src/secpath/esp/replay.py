"""Sequence numbers and the anti-replay window.

RFC 4303 §3.4.3 (the check before, the update after integrity
verification), RFC 6479 (a ring of bitmap blocks: advancing the window
clears blocks instead of shifting bits), RFC 4303 Appendix A2 (inferring the
high-order 32 bits of an extended sequence number).
"""

from __future__ import annotations

from typing import Final

from secpath.esp.errors import ReplayError

__all__ = ["ReplayWindow"]

_BLOCK_BITS: Final = 64  # RFC 6479 §2: one machine word per block
_BLOCK_SHIFT: Final = 6
_BLOCK_MASK: Final = _BLOCK_BITS - 1
_SUBSPACE: Final = 1 << 32
# With anti-replay disabled an ESN receiver still infers the high-order bits
# (RFC 4303 §2.2.1); half the 32-bit space is the reordering it tolerates.
_ESN_INFERENCE_WINDOW: Final = 1 << 31


class ReplayWindow:
    """Inbound sequence number state of one SA.

    ``size`` 0 disables the anti-replay check (RFC 4303 §3.4.3: the receiver
    may); ``top`` is the highest authenticated sequence number (64-bit with
    ESN).  :meth:`check` runs before the ICV is verified and returns the full
    sequence number; :meth:`update` runs only after it verified.  ``blocks``
    (the RFC 6479 ring of 64-bit words) and ``index_mask`` are also read by
    the SA's inlined hot path; nothing else should touch them.
    """

    __slots__ = ("_inference", "blocks", "esn", "index_mask", "size", "top")

    def __init__(self, size: int, *, esn: bool = False) -> None:
        if size < 0:
            raise ValueError("replay window size must be >= 0")
        self.size = size
        self.esn = esn
        self.top = 0
        self._inference = size if size else _ESN_INFERENCE_WINDOW
        # RFC 6479 §2: window rounded up to whole blocks, plus one block so the
        # block being advanced into is never one still inside the window.
        count = 1
        while count * _BLOCK_BITS < size + _BLOCK_BITS:
            count <<= 1  # a power of two: the ring index is a mask
        # size 0 keeps one block nobody reads, so that the SA's inlined
        # in-order update needs no size check
        self.blocks = [0] * count
        self.index_mask = count - 1

    def infer(self, seq_low: int) -> int:
        """The full sequence number of a received 32-bit one (RFC 4303
        Appendix A2.2); without ESN the number itself."""
        if not self.esn:
            return seq_low
        top_low = self.top & 0xFFFFFFFF
        top_high = self.top >> 32
        w = self._inference
        if top_low >= w - 1:  # Case A: the window is inside one subspace
            high = top_high if seq_low >= top_low - w + 1 else top_high + 1
        else:  # Case B: the window spans two subspaces
            high = top_high - 1 if seq_low >= (top_low - w + 1) % _SUBSPACE else top_high
        if high < 0:
            raise ReplayError("sequence number before the first subspace")
        return (high << 32) | seq_low

    def check(self, seq_low: int) -> int:
        """The full sequence number if it may be new; :class:`ReplayError`
        for a zero, duplicate or too-old number (RFC 4303 §3.4.3)."""
        if not self.esn and seq_low > self.top:
            return seq_low  # the common case: newer than anything seen
        seq = self.infer(seq_low) if self.esn else seq_low
        if seq == 0:
            raise ReplayError("sequence number 0 is never sent (RFC 4303 §3.3.3)")
        if not self.size:
            return seq
        top = self.top
        if seq > top:
            return seq
        if top - seq >= self.size:
            raise ReplayError(f"sequence number {seq} left of the window (top {top})")
        if (self.blocks[(seq >> _BLOCK_SHIFT) & self.index_mask] >> (seq & _BLOCK_MASK)) & 1:
            raise ReplayError(f"duplicate sequence number {seq}")
        return seq

    def update(self, seq: int) -> None:
        """Mark an authenticated ``seq`` received, advancing the window."""
        top = self.top
        if not self.size:
            if seq > top:
                self.top = seq
            return
        blocks = self.blocks
        mask = self.index_mask
        index = seq >> _BLOCK_SHIFT
        if seq > top:
            current = top >> _BLOCK_SHIFT
            if index != current:
                # RFC 6479 §2: clear the blocks the window advances into
                if index - current > mask:
                    blocks[:] = [0] * (mask + 1)
                else:
                    for i in range(current + 1, index + 1):
                        blocks[i & mask] = 0
            self.top = seq
        blocks[index & mask] |= 1 << (seq & _BLOCK_MASK)
