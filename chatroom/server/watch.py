"""Watching for people: who is told when a nick comes online or goes (IRC's MONITOR).
No I/O.  A part of :class:`~chatroom.server.room.ChatState`.

A member lists nicks it wants to hear of (at most ``MAX_WATCHED``); the nick index
(``nicks.py``) notes when a watched nick gets a holder or loses it -- arriving, leaving,
a rename (the old nick goes, the new one comes) -- and when the hub lock is let go the
hub asks :meth:`Watching.watch_news` what to queue: a :class:`Watched` for each
watcher.  Nicks are compared as every nick is (``nick_key``).

In a cluster the index holds this server's people and the other servers' people in
the rooms it follows, so that is what a watch sees.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chatroom.server.members import Member
from chatroom.server.state_base import StateBase
from chatroom.server.wire import Verbatim
from chatroom.text import nick_key

__all__ = ["MAX_WATCHED", "Watched", "Watching"]

#: Nicks one member may watch (IRC's ``MONITOR=`` in ISUPPORT).
MAX_WATCHED = 100


class Watched(Verbatim):
    """For one watcher (``to``): ``people`` came online, or (``online`` False) the
    nicks ``gone`` went.  Only doors that let a member watch render it (the framed
    format has no bytes for it)."""

    __slots__ = ("to", "online", "people", "gone")
    TYPE = "watched"

    def __init__(self, to: str, online: bool, people: tuple[Member, ...] = (), gone: tuple[str, ...] = ()) -> None:
        super().__init__(b"")
        self.to, self.online, self.people, self.gone = to, online, people, gone


def _net(news: list[tuple[str, Any, bool, str]]) -> list[tuple[str, Any, bool, str]]:
    """The changes that remain when a member that let go of a key took it again (a
    rename that only changes case: ``qux`` -> ``QUX`` is the same nick)."""
    out: list[tuple[str, Any, bool, str] | None] = []
    let_go: dict[str, int] = {}
    for change in news:
        key, member, took, _ = change
        at = let_go.pop(key, None)
        prior = out[at] if at is not None else None
        if took and at is not None and prior is not None and prior[1] is member:
            out[at] = None
            continue
        if not took:
            let_go[key] = len(out)
        out.append(change)
    return [change for change in out if change is not None]


class Watching(StateBase):
    """The watch lists of this server's members."""

    def watchers_of(self, key: str) -> dict[int, Member]:
        return self.watchers.setdefault(key, {})

    def watch(self, member: Member, nicks: Iterable[str]) -> tuple[list[Member], list[str], list[str]]:
        """``member`` watches ``nicks`` too: (those online now, those not, those over
        the limit -- not watched)."""
        online: list[Member] = []
        offline: list[str] = []
        over: list[str] = []
        for nick in nicks:
            key = nick_key(nick)
            if key not in member.watching and len(member.watching) >= MAX_WATCHED:
                over.append(nick)
                continue
            member.watching[key] = nick
            self.watchers_of(key)[member.key] = member
            self.nicks.watched.add(key)
            holder = self.nicks.get(key)
            if holder is not None:
                online.append(holder)
            else:
                offline.append(nick)
        return online, offline, over

    def unwatch(self, member: Member, nicks: Iterable[str] | None = None) -> None:
        """``member`` no longer watches ``nicks`` (None: any)."""
        keys = list(member.watching) if nicks is None else [nick_key(nick) for nick in nicks]
        for key in keys:
            member.watching.pop(key, None)
            watchers = self.watchers.get(key)
            if watchers is not None:
                watchers.pop(member.key, None)
                if not watchers:
                    del self.watchers[key]
                    self.nicks.watched.discard(key)

    def watch_news(self) -> list[tuple[Member, Watched]]:
        """What the watchers are told (each its own :class:`Watched`: a door writes the
        watcher's nick into it) of the watched nicks that came or went since the last
        time -- the nick index kept the changes."""
        came: dict[int, list[Member]] = {}
        went: dict[int, list[str]] = {}
        told: dict[int, Member] = {}
        for key, holder, took, nick in _net(self.nicks.news):
            for watcher in self.watchers.get(key, {}).values():
                if watcher is holder or watcher.sink is None:
                    continue
                told[watcher.key] = watcher
                if took:
                    came.setdefault(watcher.key, []).append(holder)
                else:
                    went.setdefault(watcher.key, []).append(nick)
        self.nicks.news = []
        out = []
        for conn_key, watcher in told.items():
            if conn_key in went:
                out.append((watcher, Watched(watcher.nick, False, gone=tuple(went[conn_key]))))
            if conn_key in came:
                out.append((watcher, Watched(watcher.nick, True, people=tuple(came[conn_key]))))
        return out
