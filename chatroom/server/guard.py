"""Slowing down guessers of the room password and the operator token.  No I/O, no
clock of its own: ``now`` comes in.

See :class:`AuthGuard`; PROTOCOL.md ("Room password") states the rule for clients.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["AuthGuard"]


@dataclass
class _Record:
    failures: deque[float] = field(default_factory=deque)
    last_answer: float = 0.0  # when the latest attempt from this address was (or will be) answered


class AuthGuard:
    """Slows down guessing of the room password and the operator token, per address,
    without ever refusing the right secret.

    Up to ``free`` failures within ``window`` seconds cost nothing (typos happen).  From
    then on the address is *throttled*: each attempt from it -- right or wrong alike, so that the
    timing of an answer gives nothing away -- is answered no sooner than a delay after
    the previous answer to that address.  The delay starts at ``first_delay`` and
    doubles with each further failure, up to ``max_delay``.  Answers to one address are
    spaced out however many connections it opens, so a guesser gets at most one answer
    per ``max_delay`` seconds; the rightful user on the same address waits its turn
    (bounded: the server limits connections per address) and then gets in.  Failures
    older than ``window`` are forgotten.

    ``schedule`` takes the clock and returns how long to wait; it does no waiting.
    """

    def __init__(self, *, free: int = 3, window: float = 600.0, first_delay: float = 0.5,
                 max_delay: float = 4.0) -> None:
        self.free, self.window, self.first_delay, self.max_delay = free, window, first_delay, max_delay
        self._records: dict[str, _Record] = {}

    def delay(self, address: str, now: float) -> float:
        """The spacing between answers to ``address`` now (0: not throttled)."""
        record = self._records.get(address)
        if record is None:
            return 0.0
        self._age(record, now)
        extra = len(record.failures) - self.free
        return min(self.max_delay, self.first_delay * 2.0**extra) if extra >= 0 else 0.0

    def schedule(self, address: str, now: float) -> float:
        """An attempt from ``address`` arrived: seconds to wait before checking it (and
        answering).  Reserves its slot, so call it once per attempt."""
        spacing = self.delay(address, now)
        if not spacing:
            return 0.0
        record = self._records[address]
        answer_at = max(now, record.last_answer + spacing)
        record.last_answer = answer_at
        return answer_at - now

    def failed(self, address: str, now: float) -> None:
        """Record a wrong password or token from ``address``."""
        record = self._records.setdefault(address, _Record())
        record.failures.append(now)
        record.last_answer = max(record.last_answer, now)
        self._age(record, now)

    def forget_old(self, now: float) -> None:
        """Drop records with nothing left to remember (housekeeping)."""
        stale = now - self.window
        for address in [a for a, r in self._records.items()
                        if r.last_answer < stale and (not r.failures or r.failures[-1] < stale)]:
            del self._records[address]

    def _age(self, record: _Record, now: float) -> None:
        failures = record.failures
        while failures and failures[0] < now - self.window:
            failures.popleft()
