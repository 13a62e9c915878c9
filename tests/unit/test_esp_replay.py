"""secpath.esp.replay: the RFC 4303 §3.4.3 window (RFC 6479 blocks) and the
RFC 4303 Appendix A2 inference of ESN high-order bits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secpath.esp import ReplayError, ReplayWindow


def receive(window: ReplayWindow, seq_low: int) -> int:
    seq = window.check(seq_low)
    window.update(seq)
    return seq


def test_in_order_and_reordered_within_window_are_accepted() -> None:
    window = ReplayWindow(64)
    for seq in (1, 2, 3, 10, 5, 4, 9, 8, 7, 6):
        assert receive(window, seq) == seq
    assert window.top == 10


def test_duplicates_are_refused() -> None:
    window = ReplayWindow(64)
    for seq in (1, 2, 5):
        receive(window, seq)
    for seq in (1, 2, 5):
        with pytest.raises(ReplayError, match="duplicate"):
            window.check(seq)
    assert receive(window, 3) == 3


def test_too_old_is_refused_and_edge_of_window_accepted() -> None:
    window = ReplayWindow(32)
    receive(window, 100)
    with pytest.raises(ReplayError, match="left of the window"):
        window.check(68)  # 100 - 68 = 32: outside a 32-wide window
    assert receive(window, 69) == 69  # 100 - 69 = 31: the oldest slot


def test_zero_is_never_valid() -> None:
    with pytest.raises(ReplayError):
        ReplayWindow(64).check(0)


def test_check_alone_does_not_mark() -> None:
    # RFC 4303 §3.4.3: the window is updated only after the ICV verified
    window = ReplayWindow(64)
    window.check(7)
    assert receive(window, 7) == 7


def test_big_jump_clears_stale_blocks() -> None:
    window = ReplayWindow(128)
    for seq in range(1, 200):
        receive(window, seq)
    receive(window, 10_000)
    for seq in range(10_000 - 127, 10_000):
        assert receive(window, seq) == seq  # none of them was left marked


def test_disabled_window_accepts_duplicates() -> None:
    window = ReplayWindow(0)
    assert receive(window, 5) == 5
    assert receive(window, 5) == 5
    assert receive(window, 1) == 1


@settings(max_examples=200, deadline=None)
@given(size=st.sampled_from([1, 32, 63, 64, 65, 1024]),
       seqs=st.lists(st.integers(min_value=0, max_value=3000), max_size=300))
def test_matches_a_reference_model(size: int, seqs: list[int]) -> None:
    # The model: a set of every number seen and the highest one.
    window, seen, top = ReplayWindow(size), set(), 0
    for seq in seqs:
        fresh = seq > 0 and seq not in seen and (seq > top or top - seq < size)
        try:
            receive(window, seq)
            accepted = True
        except ReplayError:
            accepted = False
        assert accepted == fresh, (seq, top)
        if accepted:
            seen.add(seq)
            top = max(top, seq)


class TestEsnInference:
    """RFC 4303 Appendix A2.2 with a window W = 64."""

    def test_case_a_same_and_next_subspace(self) -> None:
        window = ReplayWindow(64, esn=True)
        window.top = (5 << 32) | 1000  # Tl >= W - 1
        assert window.infer(990) == (5 << 32) | 990  # inside the window: Th
        assert window.infer(2000) == (5 << 32) | 2000  # ahead: Th
        assert window.infer(900) == (6 << 32) | 900  # left of the window: Th + 1

    def test_case_b_window_spans_two_subspaces(self) -> None:
        window = ReplayWindow(64, esn=True)
        window.top = (5 << 32) | 10  # Tl < W - 1
        assert window.infer(0xFFFFFFF0) == (4 << 32) | 0xFFFFFFF0  # previous subspace
        assert window.infer(5) == (5 << 32) | 5
        assert window.infer(500) == (5 << 32) | 500

    def test_crossing_into_the_next_subspace(self) -> None:
        window = ReplayWindow(64, esn=True)
        window.top = 0xFFFFFFF0  # 4 billion packets later
        receive(window, 0xFFFFFFFE)
        receive(window, 0xFFFFFFFF)
        assert receive(window, 1) == (1 << 32) | 1
        assert receive(window, 0) == 1 << 32  # 0 low bits are fine past subspace 0
        with pytest.raises(ReplayError):
            window.check(0xFFFFFFFF)  # now a duplicate in subspace 0
        assert receive(window, 0xFFFFFFFD) == 0xFFFFFFFD  # still in the window

    def test_first_subspace_has_no_predecessor(self) -> None:
        window = ReplayWindow(64, esn=True)
        with pytest.raises(ReplayError):
            window.check(0xFFFFFFF0)
