"""When to ping a silent server, when to give up on it, and how long it takes to
answer (no I/O).

The client's network loop asks :meth:`Keepalive.expired` and :meth:`Keepalive.ping_due`
each turn and waits at most :meth:`Keepalive.wait`; it tells :meth:`Keepalive.heard`
whenever bytes arrive.  The time from a ping to the next thing heard is the server's
*lag* as the user feels it (what the status bar shows).
"""

from __future__ import annotations

__all__ = ["Keepalive"]


class Keepalive:
    """One connection's keepalive: ``interval`` seconds of silence before a ping,
    ``timeout`` seconds for something to come back before the server counts as gone."""

    __slots__ = ("interval", "timeout", "last_heard", "ping_sent", "lag")

    def __init__(self, interval: float, timeout: float, now: float) -> None:
        self.interval, self.timeout = interval, timeout
        self.last_heard = now
        self.ping_sent: float | None = None
        #: Seconds from our last ping to the next thing heard (None: not measured yet).
        self.lag: float | None = None

    def heard(self, now: float) -> None:
        """Bytes arrived from the server."""
        if self.ping_sent is not None:
            self.lag = max(0.0, now - self.ping_sent)
        self.last_heard, self.ping_sent = now, None

    def expired(self, now: float) -> bool:
        """A ping went unanswered for ``timeout``: the connection is dead."""
        return self.ping_sent is not None and now - self.ping_sent > self.timeout

    def ping_due(self, now: float) -> bool:
        """The server has been silent for ``interval``: send a ping now (recorded as sent)."""
        if self.ping_sent is None and now - self.last_heard > self.interval:
            self.ping_sent = now
            return True
        return False

    def wait(self, now: float) -> float:
        """Seconds until something is due (a ping, or giving up)."""
        due = self.ping_sent + self.timeout if self.ping_sent is not None else self.last_heard + self.interval
        return max(0.0, due - now)

    def pending_lag(self, now: float) -> float | None:
        """The lag so far, if a ping is waiting for its answer (it only grows)."""
        return None if self.ping_sent is None else now - self.ping_sent
