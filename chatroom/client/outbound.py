"""What the user sent and the server has not settled yet, and the pace it goes at (no I/O).

Every chat message (``say``, ``action``, ``direct``) carries an id and stays here until
the server answers it.  The answer decides (:meth:`Outbound.settle`):

- an ``ack`` -- delivered (or recognised as a resend: delivered once, earlier);
- an error the message itself caused (too long, muted, no such room...) -- refused,
  the user is told;
- an error that says nothing about the message (``unavailable``: the server could not
  store it now; ``unconfirmed``: it could not tell whether it did; ``internal``;
  ``rate_limited``) -- *kept*, and sent again with the same
  id: the server's duplicate detection makes that safe, across a cluster too.  A
  message the server keeps failing on (``internal`` :data:`MAX_TRIES` times) is refused
  in the end, so that the user is told instead of waiting for ever.

Nothing here touches a socket: :class:`~chatroom.client.connection.ChatClient` pumps,
and asks this object what to send again, in the order it was first sent.
"""

from __future__ import annotations

import enum

from chatroom.client.events import Outgoing
from chatroom.protocol import ErrorCode, Message

__all__ = ["Verdict", "Outbound", "Pacer", "RETRY_CODES", "ELSEWHERE_CODES", "MAX_TRIES"]

#: Errors that say the server did not take the message *now*, not that the message is
#: wrong: it is kept and sent again.
RETRY_CODES = frozenset({ErrorCode.UNAVAILABLE.value, ErrorCode.UNCONFIRMED.value, ErrorCode.INTERNAL.value,
                         ErrorCode.RATE_LIMITED.value})
#: ... and of those, the ones that say "this server cannot store now": another server
#: of the cluster may.
ELSEWHERE_CODES = frozenset({ErrorCode.UNAVAILABLE.value, ErrorCode.UNCONFIRMED.value})
#: ``internal`` may be a bug that fails the same way every time: after this many tries
#: the message is refused and the user told.  (``unavailable`` is retried until the
#: server or another of the cluster takes it.)
MAX_TRIES = 3


class Verdict(enum.Enum):
    ACKED = "acked"
    REFUSED = "refused"
    RETRY = "retry"  # kept: send it again (after a pause, or to another server)
    UNKNOWN = "unknown"  # not an id of ours


class Outbound:
    """The unsettled messages, in sending order, and the pacer for what is sent.
    Not thread-safe: the client's lock guards it."""

    def __init__(self) -> None:
        self.unacked: dict[str, Outgoing] = {}  # in sending order
        self.pacer = Pacer(0.0, 0.0)  # set from the welcome's limits
        self._failures: dict[str, int] = {}  # id -> ``internal`` errors so far
        self._held: set[str] = set()  # ids refused for now: to be sent again

    def __len__(self) -> int:
        return len(self.unacked)

    def add(self, out: Outgoing) -> None:
        self.unacked[out.id] = out

    def settle(self, msg_id: str, code: str | None, error: str = "") -> tuple[Outgoing | None, Verdict]:
        """The server answered ``msg_id``: an ack (``code`` None) or an error with
        ``code``.  Returns the message, if it was ours, and what became of it."""
        out = self.unacked.get(msg_id)
        if out is None:
            return None, Verdict.UNKNOWN
        if code in RETRY_CODES:
            tries = self._failures.get(msg_id, 0) + (code == ErrorCode.INTERNAL.value)
            if tries < MAX_TRIES:
                self._failures[msg_id] = tries
                self._held.add(msg_id)
                return out, Verdict.RETRY
        del self.unacked[msg_id]
        self._failures.pop(msg_id, None)
        self._held.discard(msg_id)
        out.status, out.error = ("acked", "") if code is None else ("refused", error)
        return out, Verdict.ACKED if code is None else Verdict.REFUSED

    def to_resend(self) -> list[Message]:
        """Everything unsettled, in the order it was first sent (after a reconnect, or
        once a server that could not take them may again)."""
        self._held.clear()
        return [out.message for out in self.unacked.values()]

    def retrying(self) -> list[Message]:
        """What the server could not take when it was sent (and has not settled since),
        in sending order: to be sent again now."""
        held, self._held = self._held, set()
        return [out.message for msg_id, out in self.unacked.items() if msg_id in held]


class Pacer:
    """A token bucket matching the server's rate limit (PROTOCOL.md, "Rate limit"), so
    that a paste or a pipe is sent as fast as the server takes it, never refused."""

    def __init__(self, rate: float, burst: float, now: float = 0.0) -> None:
        self.rate, self.burst = rate, burst
        self._tokens, self._stamp = burst, now

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + max(0.0, now - self._stamp) * self.rate)
        self._stamp = now

    def take(self, now: float) -> bool:
        if self.rate <= 0:  # the server has no limit
            return True
        self._refill(now)
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def wait(self, now: float) -> float:
        """Seconds until the next token."""
        self._refill(now)
        return 0.0 if self.rate <= 0 else max(0.0, (1 - self._tokens) / self.rate)
