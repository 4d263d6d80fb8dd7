"""The client's own log of each window: plain text, one file per server and window, in
the data directory (``logs/SERVER/WINDOW.log``), appended to across runs.  Opt out with
``log = false`` in the config.  A failure to write is said once on stderr's log and
turns logging off; it never disturbs the chat.

A room's log has no gap where the client was offline: the messages replayed after a
reconnect are written as they come, in order, and each message is written once (a
message already in the log -- replayed again, or shown twice -- is not written again).
Older history fetched by scrolling back is not: it is older than the log's end.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import TextIO

from chatroom.client.transcript import plain_line
from chatroom.protocol import Chat, History
from chatroom.text import fold

__all__ = ["WindowLogs", "log_name"]

log = logging.getLogger("chatroom.client")

_UNSAFE = re.compile(r"[^\w.@-]+")


def log_name(name: str) -> str:
    """A file name for a server or window name: no separators, no dots in front."""
    safe = _UNSAFE.sub("_", fold(name)).lstrip(".") or "_"
    return safe[:80]


class WindowLogs:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: dict[tuple[str, str], TextIO] = {}
        self._newest: dict[tuple[str, str], int] = {}  # (server, room) -> the newest message logged
        self.broken = False

    def write(self, server: str, window: str, event: object, nick: str = "") -> None:
        """Append the line ``event`` makes (as the plain client prints it), if any: each
        room message once, a replay's messages as theirs."""
        if isinstance(event, History):
            for chat in event.messages if event.replay else ():
                self.write(server, window, chat, nick)
            return
        if isinstance(event, Chat):
            key = (server, fold(event.room))
            if event.seq <= self._newest.get(key, 0):
                return  # in the log already
            self._newest[key] = event.seq
        self._line(server, window, event, nick)

    def _line(self, server: str, window: str, event: object, nick: str) -> None:
        if self.broken:
            return
        line = plain_line(event, nick)
        if line is None:
            return
        try:
            out = self._file(server or "server", window or "server")
            if not line.startswith("["):
                line = time.strftime("[%Y-%m-%d %H:%M] ") + line
            out.write(line + "\n")
            out.flush()
        except OSError as exc:
            self.broken = True
            log.warning("cannot write the window log under %s (%s): logging is off for this run", self.root, exc)

    def path(self, server: str, window: str) -> Path:
        return self.root / log_name(server) / f"{log_name(window)}.log"

    def _file(self, server: str, window: str) -> TextIO:
        key = (server, window)
        out = self._files.get(key)
        if out is None:
            path = self.path(server, window)
            path.parent.mkdir(parents=True, exist_ok=True)
            out = self._files[key] = path.open("a", encoding="utf-8")
        return out

    def close(self) -> None:
        for out in self._files.values():
            try:
                out.close()
            except OSError:
                pass
        self._files.clear()
