"""Entries a server appended to a room's log that it cannot apply yet, because an
earlier entry -- usually another of its own senders' appends, in the log a moment
before -- is not applied here yet.  No I/O.

Several members of one server send at once: each of their reader threads appends its
run of messages to Redis, and Redis orders the runs.  The thread whose round trip
comes back first may hold a run that follows another one still on its way back.
Reading the log back from Redis to fill the gap (what such a thread did) cost a
second round trip and a decode of every entry in the gap -- a fifth of a cluster
server's time with ten senders.  Instead the run is *parked* here, keyed by the entry
before it, and whichever thread applies that entry applies the parked run after it;
a thread whose run waits for appends of this server still in flight waits for them
(briefly), and reads the log back only for what nobody here is bringing (another
server's entries), or when the wait runs out.

Parked entries are only ever applied in the log's order (each right after the entry
it follows), and applying is idempotent (``mirror.apply`` skips what it has), so a
parked entry that a read back applied first is dropped, never applied twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["Parking", "WAIT"]

EntryId = tuple[int, int]

#: How long a thread waits for this server's other appends to a room before it reads
#: the log back instead (they come back within a round trip: a millisecond or two).
WAIT = 0.05


class Parking:
    """Parked entries by room (under the hub lock), and the appends in flight."""

    def __init__(self) -> None:
        #: room key -> the id of the entry each follows -> (its id, its body)
        self._parked: dict[str, dict[EntryId, tuple[EntryId, dict[str, Any]]]] = {}
        #: room key -> this server's appends to it that are not parked or applied yet
        self._in_flight: dict[str, int] = {}
        self._changed = threading.Condition()

    def begin(self, rooms: Iterable[str]) -> None:
        """Appends to ``rooms`` (keys) are on their way to Redis."""
        with self._changed:
            for rk in rooms:
                self._in_flight[rk] = self._in_flight.get(rk, 0) + 1

    def end(self, rooms: Iterable[str]) -> None:
        """Those appends are parked, applied, or failed: nobody waits for them."""
        with self._changed:
            for rk in rooms:
                left = self._in_flight.get(rk, 0) - 1
                if left > 0:
                    self._in_flight[rk] = left
                else:
                    self._in_flight.pop(rk, None)
            self._changed.notify_all()

    def park(self, rk: str, entries: Iterable[tuple[EntryId, EntryId, dict[str, Any]]], last: EntryId) -> None:
        """(before, id, body) entries of room ``rk`` not applied yet (``last``: the
        room's last applied entry).  Under the hub lock."""
        for before, entry_id, body in entries:
            if entry_id > last:
                self._parked.setdefault(rk, {})[before] = (entry_id, body)

    def next_after(self, rk: str, last: EntryId) -> tuple[EntryId, dict[str, Any]] | None:
        """The parked entry that follows ``last`` (taken), if there is one.  Under the
        hub lock."""
        parked = self._parked.get(rk)
        if not parked:
            return None
        entry = parked.pop(last, None)
        if not parked:
            del self._parked[rk]
        return entry

    def applied(self, rk: str, last: EntryId) -> None:
        """Room ``rk`` is applied up to ``last`` (under the hub lock): what is parked
        at or before it is dropped (a read back applied it), and waiters look again."""
        parked = self._parked.get(rk)
        if parked:
            for before in [b for b, (entry_id, _) in parked.items() if entry_id <= last]:
                del parked[before]
            if not parked:
                del self._parked[rk]
        with self._changed:
            self._changed.notify_all()

    def wait(self, rk: str, done: Callable[[], bool], timeout: float | None = None) -> bool:
        """Wait (not under the hub lock) until ``done()`` or no append of this server
        to room ``rk`` is in flight, at most ``timeout`` seconds (:data:`WAIT`).
        Returns ``done()``."""
        deadline = time.monotonic() + (WAIT if timeout is None else timeout)
        with self._changed:
            while not done() and self._in_flight.get(rk):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
        return done()

    def parked(self, rk: str) -> int:
        """How many entries of room ``rk`` are parked (for tests and metrics)."""
        return len(self._parked.get(rk, ()))
