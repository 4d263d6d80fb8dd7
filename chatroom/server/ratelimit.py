"""Rate limiting: burst, then throttle, then disconnect.  No I/O, no clock of its own.

Chat users paste a block or fire a few quick lines; both must pass.  A sustained flood
must not.  :class:`RateLimiter` is a token bucket (``burst`` messages, refilled at
``rate`` per second) plus a strike count: each message refused for lack of tokens is a
strike, strikes fade at the same rate, and too many at once means the client is
flooding and is disconnected.
"""

from __future__ import annotations

import enum

__all__ = ["Verdict", "RateLimiter"]


class Verdict(enum.Enum):
    ALLOW = "allow"
    SLOW_DOWN = "slow_down"  # refuse this message, tell the client
    DISCONNECT = "disconnect"


class RateLimiter:
    def __init__(self, rate: float, burst: float, max_strikes: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.max_strikes = max_strikes
        self._tokens = burst
        self._strikes = 0.0
        self._stamp = now

    def check(self, now: float, cost: float = 1.0) -> Verdict:
        if self.rate <= 0:  # limiting disabled
            return Verdict.ALLOW
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._strikes = max(0.0, self._strikes - elapsed * self.rate)
        if self._tokens >= cost:
            self._tokens -= cost
            return Verdict.ALLOW
        self._strikes += 1
        if self._strikes > self.max_strikes:
            return Verdict.DISCONNECT
        return Verdict.SLOW_DOWN

    def delay(self, now: float, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens are there (0: now).  Takes nothing: for a
        reader that waits instead of refusing (IRC's way with a fast client)."""
        if self.rate <= 0:
            return 0.0
        tokens = min(self.burst, self._tokens + max(0.0, now - self._stamp) * self.rate)
        return max(0.0, (cost - tokens) / self.rate)
