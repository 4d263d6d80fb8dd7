"""The rate limiter alone: a burst, the rate, strikes that fade -- a fake clock."""

from __future__ import annotations

from chatroom.server.ratelimit import RateLimiter, Verdict


def test_a_burst_passes_then_the_rate_then_strikes_fade():
    limiter = RateLimiter(rate=2.0, burst=3, max_strikes=2, now=0.0)
    assert [limiter.check(0.0) for _ in range(3)] == [Verdict.ALLOW] * 3
    assert limiter.check(0.0) is Verdict.SLOW_DOWN
    assert limiter.check(0.5) is Verdict.ALLOW  # one token back after 0.5 s at 2/s
    # Strikes faded with that token; now more than max_strikes refusals in a row disconnect.
    assert [limiter.check(0.5) for _ in range(3)] == [Verdict.SLOW_DOWN, Verdict.SLOW_DOWN, Verdict.DISCONNECT]
    fresh = RateLimiter(rate=2.0, burst=3, max_strikes=2, now=0.0)
    for _ in range(4):
        fresh.check(0.0)
    assert fresh.check(10.0) is Verdict.ALLOW  # strikes and tokens came back with time
    assert RateLimiter(rate=0, burst=0, max_strikes=0, now=0.0).check(0.0) is Verdict.ALLOW  # off
