"""Searching a room's history for text, the way people expect: ignoring case (Unicode
folding, as for nicks and rooms), newest matches first, bounded work.  No I/O: the
stores call it on what they hold (the SQLite store does the same in SQL)."""

from __future__ import annotations

from collections.abc import Sequence

from chatroom.protocol import Chat

__all__ = ["SEARCH_DEPTH", "search_in"]

#: A search looks through a room's newest this many messages: bounded work, however old the room.
SEARCH_DEPTH = 50_000


def search_in(chats: Sequence[Chat], text: str, limit: int, before: int | None = None) -> tuple[list[Chat], bool]:
    """The newest ``limit`` of ``chats`` (oldest first; only those numbered below
    ``before``, if given) containing ``text``, ignoring case; and whether those are all
    that do."""
    wanted = text.casefold()
    found: list[Chat] = []
    for chat in reversed(chats):
        if before is not None and chat.seq >= before:
            continue
        if wanted in chat.text.casefold():
            if len(found) == limit:
                return found[::-1], False
            found.append(chat)
    return found[::-1], True
