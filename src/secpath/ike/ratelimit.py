"""A token bucket on an injected clock, for the notifications an engine
sends to messages it cannot place (INVALID_IKE_SPI, RFC 7296 §2.21.4;
INVALID_SPI, §1.5): answering every forged datagram would make the host a
reflector, so at most ``burst`` go out at once and ``rate`` a second after."""

from __future__ import annotations

from secpath.errors import LocalError

__all__ = ["TokenBucket"]


class TokenBucket:
    """``take(now)`` is True while a token is left; tokens come back at
    ``rate`` per second up to ``burst``.  ``now`` never goes backwards here:
    an earlier ``now`` adds nothing."""

    __slots__ = ("_at", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int) -> None:
        if rate < 0 or burst < 0:
            raise LocalError(f"TokenBucket: need rate >= 0 and burst >= 0, got {rate}, {burst}")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._at: float | None = None

    def take(self, now: float) -> bool:
        if self._at is not None and now > self._at:
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        if self._at is None or now > self._at:
            self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
