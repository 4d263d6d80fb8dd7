"""Who holds which nick: the server's registry of names, by both look-alike keys.  No I/O.

Two nicks are the same person's when :func:`~chatroom.text.nick_key` (fold, then the
UTS #39 skeleton) *or* :func:`~chatroom.text.lookalike_key` (skeleton, then fold) of
them match.  Neither alone is enough: folding first lets ``aIice`` pass for ``alice``
(the table maps a capital I to l, which folding turned into i first); skeleton first
would tell ``ALICE`` from ``alice``.  The relation is not transitive, so it cannot be
one key: the registry keeps both.
"""

from __future__ import annotations

from typing import Any

from chatroom.text import lookalike_key, nick_key

__all__ = ["NickIndex"]


class NickIndex(dict[str, Any]):
    """``nick_key(nick) -> member``, as a dict (lookups stay one C call), that also
    keeps every member under its ``lookalike_key``.  Set and delete entries only with
    ``index[nick_key(member.nick)] = member`` and ``del index[key]`` (or ``pop``):
    those keep the second key in step.  :meth:`holder` is the question "is this nick
    free?"."""

    __slots__ = ("_alike", "_alike_of", "_spelled", "watched", "news")

    def __init__(self) -> None:
        super().__init__()
        self._alike: dict[str, Any] = {}  # lookalike_key -> member
        self._alike_of: dict[str, str] = {}  # nick_key -> the lookalike_key it was filed under
        self._spelled: dict[str, Any] = {}  # the nick exactly as its member spells it -> member
        #: keys someone watches (``watch.py``), and what happened to them: (key, member,
        #: True if it took the key / False if it let go of it, the nick it had)
        self.watched: set[str] = set()
        self.news: list[tuple[str, Any, bool, str]] = []

    def __setitem__(self, key: str, member: Any) -> None:
        if key in self:
            self._forget(key, self[key])
        elif key in self.watched:
            self.news.append((key, member, True, member.nick))
        super().__setitem__(key, member)
        self._spelled[member.nick] = member
        alike = lookalike_key(member.nick)
        self._alike[alike] = member
        self._alike_of[key] = alike

    def __delitem__(self, key: str) -> None:
        self.pop(key)

    def pop(self, key: str, *default: Any) -> Any:
        if key not in self:
            return default[0] if default else super().pop(key)
        member = super().pop(key)
        self._forget(key, member)
        if key in self.watched:
            self.news.append((key, member, False, member.nick))
        return member

    def clear(self) -> None:
        super().clear()
        self._alike.clear()
        self._alike_of.clear()
        self._spelled.clear()

    def spelled(self, nick: str) -> Any:
        """The member whose nick is exactly ``nick`` (one dict lookup: the IRC door asks
        it for every line it writes, to show the person's user name), or None."""
        return self._spelled.get(nick)

    def _forget(self, key: str, member: Any) -> None:
        nick = member.nick
        if self._spelled.get(nick) is member:
            del self._spelled[nick]
        alike = self._alike_of.pop(key, None)
        if alike is not None and self._alike.get(alike) is member:
            del self._alike[alike]

    def holder(self, nick: str) -> Any:
        """Whoever holds ``nick`` or a look-alike of it, or None: it is free."""
        member = self.get(nick_key(nick))
        return member if member is not None else self._alike.get(lookalike_key(nick))
