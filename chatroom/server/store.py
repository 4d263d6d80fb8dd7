"""Room history on disk: SQLite in WAL mode.

The server appends the chat messages of each batch and commits them *before* anyone
is sent them or their acknowledgement (see ``chatroom.server.hub.Hub``), so a message
someone saw acknowledged survives the server being killed the next instant.  With
``synchronous=NORMAL`` (the default) a commit is in the operating system's hands when
it returns: it survives the process dying, not a power cut; ``sync="full"`` waits for
the disk too.  Sequence numbers are kept per room in their own table, so they never
repeat, even after retention has deleted every message of a room.

Not thread-safe by itself: the server calls it under its hub lock.  ``chatroom log``
opens the same file read-only while a server runs (WAL allows that).
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import platformdirs

from chatroom.protocol import Chat
from chatroom.server.bans import Ban
from chatroom.server.search import SEARCH_DEPTH
from chatroom.text import fold

__all__ = ["Store", "HistoryStore", "RoomRecord", "RoomRow", "default_data_dir", "DB_NAME"]

DB_NAME = "history.sqlite3"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rooms (
    room_key TEXT PRIMARY KEY,        -- the folded name: rooms are case-insensitive
    name     TEXT NOT NULL,
    next_seq INTEGER NOT NULL,
    topic    TEXT NOT NULL DEFAULT '',
    modes    TEXT NOT NULL DEFAULT '' -- its operators and modes (JSON: server/room_modes.py)
);
CREATE TABLE IF NOT EXISTS messages (
    room_key  TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    room      TEXT NOT NULL,
    ts        REAL NOT NULL,
    nick      TEXT NOT NULL,
    text      TEXT NOT NULL,
    action    INTEGER NOT NULL DEFAULT 0,
    client_id TEXT,
    PRIMARY KEY (room_key, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_ts ON messages (ts);
CREATE TABLE IF NOT EXISTS bans (
    address TEXT PRIMARY KEY,         -- an IP address, or '@' + a nick's key: a person ban
    until   REAL,                     -- NULL: until lifted
    nick    TEXT NOT NULL DEFAULT '', -- who had the address, to unban by nick
    reason  TEXT NOT NULL DEFAULT '',
    by      TEXT NOT NULL DEFAULT ''
);
"""


def default_data_dir() -> Path:
    """Where a user's servers keep their data: the platform's data folder
    (``$XDG_DATA_HOME/chatroom`` on Linux)."""
    return Path(platformdirs.user_data_dir("chatroom", appauthor=False))


@dataclass(frozen=True)
class RoomRecord:
    name: str
    next_seq: int
    topic: str
    modes: str = ""


#: A room as the server saves it: (name, next_seq, topic[, modes]) -- without modes,
#: the stored ones stay.
RoomRow = tuple[Any, ...]


class Store(Protocol):
    """What the server needs of a history store: this SQLite one, or the bounded
    ``MemoryStore`` of ``--memory``.  Thread-safe; ``save`` is all or nothing."""

    def save(self, chats: Iterable[Chat], rooms: Iterable[RoomRow]) -> None: ...
    def prune(self, *, keep: int | None = None, max_age: float | None = None, now: float | None = None) -> int: ...
    def save_ban(self, address: str, until: float | None, nick: str, reason: str, by: str) -> None: ...
    def delete_ban(self, address: str) -> None: ...
    def bans(self) -> list[Ban]: ...
    def room(self, name: str) -> RoomRecord | None: ...
    def rooms(self) -> list[RoomRecord]: ...
    def recent(self, room: str, limit: int) -> list[Chat]: ...
    def before(self, room: str, seq: int, limit: int) -> list[Chat]: ...
    def after(self, room: str, seq: int, limit: int) -> list[Chat]: ...
    def oldest_seq(self, room: str) -> int | None: ...
    def search(self, room: str, text: str, limit: int, before: int | None = None) -> tuple[list[Chat], bool]: ...
    def recent_ids(self, limit: int) -> list[tuple[str, str, Chat]]: ...
    def close(self) -> None: ...
    def healthy(self) -> bool: ...  # answers a trivial read now (GET /healthz)


def _chat(row: tuple) -> Chat:  # type: ignore[type-arg]
    room, seq, ts, nick, text, action, client_id = row
    return Chat(room=room, seq=seq, ts=ts, nick=nick, text=text, action=bool(action), id=client_id)


T = TypeVar("T")

_COLUMNS = "room, seq, ts, nick, text, action, client_id"


def _locked(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def locked(self: HistoryStore, *args: Any, **kwargs: Any) -> T:
        with self._lock:
            return method(self, *args, **kwargs)

    return locked


class HistoryStore:
    """One SQLite database of rooms and their messages.  ``path=None``: in memory.

    Any thread may call it: one lock serialises every use of the one connection, so
    that a transaction (a batch of messages, a ban, a retention pass) is never
    interleaved with another thread's.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, sync: str = "normal",
                 read_only: bool = False) -> None:
        self.path = None if path is None else Path(path)
        if self.path is None:
            target = ":memory:"
        elif read_only:
            target = f"file:{self.path}?mode=ro"
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            target = str(self.path)
        self._lock = threading.RLock()  # serialises every use of self.db (see the class docstring)
        self.db = sqlite3.connect(target, uri=read_only, check_same_thread=False, isolation_level=None)
        if read_only:
            return
        # Search ignores case the way nicks and rooms do (Unicode folding, not ASCII only).
        self.db.create_function("casefold", 1, lambda text: text.casefold() if isinstance(text, str) else text,
                                deterministic=True)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
        self.db.executescript(_SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(rooms)")}
        if "modes" not in columns:  # a database from before rooms had operators (protocol 1.5)
            self.db.execute("ALTER TABLE rooms ADD COLUMN modes TEXT NOT NULL DEFAULT ''")
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))

    @_locked
    def close(self) -> None:
        self.db.close()

    @_locked
    def healthy(self) -> bool:
        """The database answers a read of its own (GET /healthz)."""
        try:
            return self.db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() is not None
        except sqlite3.Error:
            return False

    # ------------------------------------------------------------------ writing

    @_locked
    def save(self, chats: Iterable[Chat], rooms: Iterable[RoomRow]) -> None:
        """Commit ``chats`` and the rooms' (name, next_seq, topic[, modes]) in one transaction.
        Raises ``sqlite3.Error`` and writes nothing if anything fails."""
        db = self.db
        db.execute("BEGIN")
        try:
            db.executemany(
                "INSERT INTO messages (room_key, seq, room, ts, nick, text, action, client_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(fold(c.room), c.seq, c.room, c.ts, c.nick, c.text, int(c.action), c.id) for c in chats],
            )
            db.executemany(
                "INSERT INTO rooms (room_key, name, next_seq, topic, modes) VALUES (?, ?, ?, ?, COALESCE(?, '')) "
                "ON CONFLICT (room_key) DO UPDATE SET name=excluded.name, next_seq=excluded.next_seq, "
                "topic=excluded.topic, modes=COALESCE(?, rooms.modes)",
                [(fold(r[0]), r[0], r[1], r[2], r[3] if len(r) > 3 else None, r[3] if len(r) > 3 else None)
                 for r in rooms],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @_locked
    def prune(self, *, keep: int | None = None, max_age: float | None = None, now: float | None = None) -> int:
        """Apply retention: keep the newest ``keep`` messages per room and none older
        than ``max_age`` seconds.  Returns how many were deleted."""
        deleted = 0
        with self.db:
            if max_age is not None:
                cutoff = (now if now is not None else time.time()) - max_age
                deleted += self.db.execute("DELETE FROM messages WHERE ts < ?", (cutoff,)).rowcount
            if keep is not None:
                deleted += self.db.execute(
                    "DELETE FROM messages WHERE (room_key, seq) IN ("
                    " SELECT room_key, seq FROM (SELECT room_key, seq, ROW_NUMBER() OVER"
                    " (PARTITION BY room_key ORDER BY seq DESC) AS n FROM messages) WHERE n > ?)",
                    (keep,),
                ).rowcount
        return deleted

    @_locked
    def save_ban(self, address: str, until: float | None, nick: str, reason: str, by: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO bans VALUES (?, ?, ?, ?, ?)", (address, until, nick, reason, by))

    @_locked
    def delete_ban(self, address: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM bans WHERE address = ?", (address,))

    @_locked
    def bans(self) -> list[Ban]:
        """Every ban stored, expired ones included."""
        return [Ban(*row) for row in self.db.execute("SELECT address, until, nick, reason, by FROM bans")]

    # ------------------------------------------------------------------ reading

    @_locked
    def room(self, name: str) -> RoomRecord | None:
        row = self.db.execute("SELECT name, next_seq, topic, modes FROM rooms WHERE room_key = ?",
                              (fold(name),)).fetchone()
        return RoomRecord(*row) if row else None

    @_locked
    def rooms(self) -> list[RoomRecord]:
        return [RoomRecord(*r) for r in self.db.execute("SELECT name, next_seq, topic, modes FROM rooms "
                                                        "ORDER BY room_key")]

    @_locked
    def recent(self, room: str, limit: int) -> list[Chat]:
        """The newest ``limit`` messages of ``room``, oldest first."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE room_key = ? ORDER BY seq DESC LIMIT ?", (fold(room), limit)
        ).fetchall()
        return [_chat(r) for r in reversed(rows)]

    @_locked
    def before(self, room: str, seq: int, limit: int) -> list[Chat]:
        """Up to ``limit`` messages with a sequence number below ``seq``, oldest first."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE room_key = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
            (fold(room), seq, limit),
        ).fetchall()
        return [_chat(r) for r in reversed(rows)]

    @_locked
    def after(self, room: str, seq: int, limit: int) -> list[Chat]:
        """Up to ``limit`` messages with a sequence number above ``seq``, oldest first."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE room_key = ? AND seq > ? ORDER BY seq LIMIT ?",
            (fold(room), seq, limit),
        ).fetchall()
        return [_chat(r) for r in rows]

    @_locked
    def search(self, room: str, text: str, limit: int, before: int | None = None) -> tuple[list[Chat], bool]:
        """The newest ``limit`` of the room's last SEARCH_DEPTH messages (below
        ``before``, if given) that contain ``text`` (ignoring case), oldest first; and
        whether that is all of them."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM (SELECT {_COLUMNS} FROM messages WHERE room_key = ? AND seq < ?"
            " ORDER BY seq DESC LIMIT ?) WHERE instr(casefold(text), ?) > 0 ORDER BY seq DESC LIMIT ?",
            (fold(room), before if before is not None else 2**62, SEARCH_DEPTH, text.casefold(), limit + 1),
        ).fetchall()
        return [_chat(r) for r in reversed(rows[:limit])], len(rows) <= limit

    @_locked
    def oldest_seq(self, room: str) -> int | None:
        row = self.db.execute("SELECT MIN(seq) FROM messages WHERE room_key = ?", (fold(room),)).fetchone()
        return row[0] if row else None

    @_locked
    def recent_ids(self, limit: int) -> list[tuple[str, str, Chat]]:
        """(folded nick, client id, message) of the newest ``limit`` messages with an id,
        to recognise a resent message after a restart."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE client_id IS NOT NULL ORDER BY ts DESC LIMIT ?", (limit,)
        ).fetchall()
        return [(fold(c.nick), c.id or "", c) for c in map(_chat, reversed(rows))]

    def transcript(self, room: str, since: float | None = None) -> Iterator[Chat]:
        """Every stored message of ``room`` (since ``since``), oldest first.  A lazy
        cursor, not under the lock: for one reader (``chatroom log``), not a server."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE room_key = ? AND ts >= ? ORDER BY seq",
            (fold(room), since if since is not None else float("-inf")),
        )
        for row in rows:
            yield _chat(row)
