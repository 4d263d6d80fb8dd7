"""Room history in memory, bounded: the store of ``chatroom serve --memory``.

The same interface as :class:`~chatroom.server.store.HistoryStore` (the server picks
one at start), without a database: each room keeps its newest ``keep`` messages -- what
a join replays and what paging back can reach -- and forgets older ones as new ones
arrive, so a demo that runs for days holds a few megabytes, not every message ever.
Nothing survives the process: that is what ``--memory`` asks for.

Any thread may call it: one lock serialises every use, as in the SQLite store.  Each
call is a few list operations: no I/O.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterable, Iterator

from chatroom.protocol import Chat
from chatroom.server.bans import Ban
from chatroom.server.search import SEARCH_DEPTH, search_in
from chatroom.server.store import RoomRecord, RoomRow
from chatroom.text import fold

__all__ = ["MemoryStore", "MEMORY_KEEP"]

#: Messages kept per room when no retention is configured: pages of history well
#: past any screen's scrollback, a few MB per busy room.
MEMORY_KEEP = 10_000


def _seq(chat: Chat) -> int:
    return chat.seq


class _Room:
    __slots__ = ("name", "next_seq", "topic", "modes", "messages")

    def __init__(self, name: str, next_seq: int = 1, topic: str = "") -> None:
        self.name, self.next_seq, self.topic, self.modes = name, next_seq, topic, ""
        self.messages: list[Chat] = []  # by sequence number, oldest first


class MemoryStore:
    """Rooms, their newest ``keep`` messages each, and bans, in memory."""

    path = None

    def __init__(self, keep: int = MEMORY_KEEP) -> None:
        self.keep = max(1, keep)
        self._trim_at = self.keep + max(16, self.keep // 8)  # trim in steps, not per message
        self._lock = threading.RLock()
        self._rooms: dict[str, _Room] = {}
        self._bans: dict[str, Ban] = {}

    def close(self) -> None:
        pass

    def healthy(self) -> bool:
        return True  # memory does not go away

    # ------------------------------------------------------------------ writing

    def save(self, chats: Iterable[Chat], rooms: Iterable[RoomRow]) -> None:
        with self._lock:
            for row in rooms:
                room = self._room(row[0])
                room.name, room.next_seq, room.topic = row[0], row[1], row[2]
                if len(row) > 3:
                    room.modes = row[3]
            current: str | None = None
            messages: list[Chat] = []
            for chat in chats:  # a batch is mostly one room's: look it up once per run
                if chat.room != current:
                    current, messages = chat.room, self._room(chat.room).messages
                messages.append(chat)
                if len(messages) >= self._trim_at:  # amortised O(1)
                    del messages[: len(messages) - self.keep]

    def prune(self, *, keep: int | None = None, max_age: float | None = None, now: float | None = None) -> int:
        """Retention, as in the SQLite store.  Returns how many were forgotten."""
        deleted = 0
        cutoff = None if max_age is None else (now if now is not None else time.time()) - max_age
        with self._lock:
            for room in self._rooms.values():
                before = len(room.messages)
                if cutoff is not None:
                    room.messages = [c for c in room.messages if c.ts >= cutoff]
                if keep is not None and len(room.messages) > keep:
                    del room.messages[: len(room.messages) - keep]
                deleted += before - len(room.messages)
        return deleted

    def save_ban(self, address: str, until: float | None, nick: str, reason: str, by: str) -> None:
        with self._lock:
            self._bans[address] = Ban(address, until, nick, reason, by)

    def delete_ban(self, address: str) -> None:
        with self._lock:
            self._bans.pop(address, None)

    def bans(self) -> list[Ban]:
        with self._lock:
            return list(self._bans.values())

    # ------------------------------------------------------------------ reading

    def room(self, name: str) -> RoomRecord | None:
        with self._lock:
            room = self._rooms.get(fold(name))
            return RoomRecord(room.name, room.next_seq, room.topic, room.modes) if room else None

    def rooms(self) -> list[RoomRecord]:
        with self._lock:
            return [RoomRecord(r.name, r.next_seq, r.topic, r.modes) for _, r in sorted(self._rooms.items())]

    def recent(self, room: str, limit: int) -> list[Chat]:
        """The newest ``limit`` messages of ``room``, oldest first."""
        with self._lock:
            messages = self._messages(room)
            return messages[max(0, len(messages) - limit):]

    def before(self, room: str, seq: int, limit: int) -> list[Chat]:
        with self._lock:
            messages = self._messages(room)
            end = bisect.bisect_left(messages, seq, key=_seq)
            return messages[max(0, end - limit):end]

    def after(self, room: str, seq: int, limit: int) -> list[Chat]:
        with self._lock:
            messages = self._messages(room)
            start = bisect.bisect_right(messages, seq, key=_seq)
            return messages[start:start + limit]

    def search(self, room: str, text: str, limit: int, before: int | None = None) -> tuple[list[Chat], bool]:
        """As :meth:`HistoryStore.search`."""
        with self._lock:
            messages = self._messages(room)
            if before is not None:
                messages = messages[:bisect.bisect_left(messages, before, key=_seq)]
            messages = messages[-SEARCH_DEPTH:]
        return search_in(messages, text, limit)

    def oldest_seq(self, room: str) -> int | None:
        with self._lock:
            messages = self._messages(room)
            return messages[0].seq if messages else None

    def recent_ids(self, limit: int) -> list[tuple[str, str, Chat]]:
        with self._lock:
            chats = sorted((c for r in self._rooms.values() for c in r.messages if c.id is not None),
                           key=lambda c: c.ts)
        return [(fold(c.nick), c.id or "", c) for c in chats[-limit:]] if limit > 0 else []

    def transcript(self, room: str, since: float | None = None) -> Iterator[Chat]:
        with self._lock:
            chats = list(self._messages(room))
        return iter([c for c in chats if since is None or c.ts >= since])

    # ------------------------------------------------------------------ internals

    def _room(self, name: str) -> _Room:
        key = fold(name)
        room = self._rooms.get(key)
        if room is None:
            room = self._rooms[key] = _Room(name)
        return room

    def _messages(self, name: str) -> list[Chat]:
        room = self._rooms.get(fold(name))
        return room.messages if room else []
