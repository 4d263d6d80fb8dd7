"""What members ask about (no I/O): who is here, who is someone, rooms, history
pages, search.  A part of :class:`~chatroom.server.room.ChatState`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import msgspec

from chatroom.errors import Refused
from chatroom.protocol import (
    ErrorCode,
    Found,
    History,
    Members,
    Rooms,
    User,
)
from chatroom.server.members import Member, Room
from chatroom.server.search import search_in
from chatroom.server.state_base import StateBase
from chatroom.text import (
    MAX_NICK_LENGTH,
    clean_line,
    fold,
    nick_key,
    without_hash,
)

if TYPE_CHECKING:
    pass


__all__ = ["Queries"]


class Queries(StateBase):
    """Read-only questions about the chat: a mixin of ``ChatState``."""

    # ------------------------------------------------------------------ queries

    def who(self, member: Member, now: float, room: str | None = None) -> Members:
        target = self.room_of(member, None) if room is None else self.rooms.get(fold(without_hash(room)))
        if target is None:
            raise Refused(ErrorCode.NO_SUCH_ROOM, f"there is no room called {clean_line(room or '')}")
        return Members(
            room=target.name,
            members=target.member_infos(now, show_addresses=member.op),
            member_count=len(target.members),
        )

    def whois(self, asker: Member, nick: str, now: float) -> User:
        """Who is ``nick``: rooms, idle time, away; the address for operators."""
        member = self.nicks.get(nick_key(nick))
        if member is None and self.peers is not None:  # someone on another server, in no room of ours
            found = self.peers.whois(nick)
            if found is not None:
                return found if asker.op else msgspec.structs.replace(found, address=None)
        if member is None:
            raise Refused(ErrorCode.NO_SUCH_NICK, f"nobody is called {clean_line(nick)[:MAX_NICK_LENGTH]}")
        return User(nick=member.nick, rooms=tuple(r.name for r in member.rooms.values()),
                    idle=round(max(0.0, now - member.last_active), 1), away=member.away, op=member.op,
                    held=member.held_until is not None, address=member.address if asker.op else None)

    def search(self, room: str, text: str, limit: int, before: int | None = None) -> Found:
        """The room's newest messages containing ``text`` (ignoring case), oldest first:
        from the store when there is one, else from what is in memory.  The store has its
        own lock: the caller may (and should) call this outside the hub lock."""
        target = self.rooms.get(fold(without_hash(room)))
        if target is None:
            raise Refused(ErrorCode.NO_SUCH_ROOM, f"there is no room called {clean_line(room)}")
        if self.store is not None:
            found, complete = self.store.search(target.name, text, limit, before)
        else:
            found, complete = search_in(list(target.history), text, limit, before)
        return Found(room=target.name, text=text, messages=tuple(found), complete=complete)

    def list_rooms(self, asker: Member | None = None) -> Rooms:
        """The rooms, but the secret ones ``asker`` is not in (None: no secret one)."""
        if self.peers is not None:  # every room of the cluster, and everyone in it
            secret = {key for key, r in self.rooms.items()
                      if r.modes.secret and (asker is None or key not in asker.rooms)}
            return Rooms(rooms=tuple(sorted((r for r in self.peers.rooms() if fold(r.name) not in secret),
                                            key=lambda r: fold(r.name))))
        return Rooms(rooms=tuple(sorted((r.info() for key, r in self.rooms.items()
                                         if not r.modes.secret or (asker is not None and key in asker.rooms)),
                                        key=lambda r: fold(r.name))))

    def history(self, room: str, before: int | None, limit: int, after: int | None = None) -> History:
        """A page of ``room``'s messages: the newest ``limit`` below ``before``, or the
        oldest ``limit`` above ``after`` (bounds exclusive), oldest first.  ``complete``:
        going back, nothing older exists; going forward, the page reaches the newest."""
        target = self.rooms.get(fold(without_hash(room)))
        if target is None:
            raise Refused(ErrorCode.NO_SUCH_ROOM, f"there is no room called {clean_line(room)}")
        if after is not None:
            page = self.missed(target, after, limit)
            newest = target.next_seq - 1
            return History(room=target.name, messages=tuple(page),
                           complete=(page[-1].seq if page else after) >= newest)
        assert before is not None
        page = [c for c in target.history if c.seq < before][-limit:]
        oldest_kept = target.history[0].seq if target.history else target.next_seq
        if len(page) < limit and self.store is not None:
            page = self.store.before(target.name, min(before, oldest_kept), limit - len(page)) + page
        first = self._first_seq(target)
        complete = first is None or (page[0].seq if page else before) <= first
        return History(room=target.name, messages=tuple(page), complete=complete)

    def seq_at(self, room: Room, ts: float) -> int:
        """The number of ``room`` 's first message sent at ``ts`` or after, or the
        number the next message will have.  A bisection over the numbers, one message
        read per step (IRC's CHATHISTORY ``timestamp=``)."""
        def after(when: float) -> bool:
            return when >= ts

        recent = room.history
        if recent and after(recent[0].ts):  # (not in memory: only older than what is)
            low, high = self._first_seq(room) or recent[0].seq, recent[0].seq
        else:
            return next((c.seq for c in recent if after(c.ts)), room.next_seq)
        while low < high:  # the first number whose message (or the next existing one) is late enough
            mid = (low + high) // 2
            found = self.store.after(room.name, mid - 1, 1) if self.store is not None else []
            if found and found[0].seq < high and not after(found[0].ts):
                low = found[0].seq + 1
            else:
                high = mid
        return low

    def _first_seq(self, room: Room) -> int | None:
        """The number of ``room`` 's oldest message kept anywhere (None: it has none)."""
        if self.store is not None:
            first: int | None = self.store.oldest_seq(room.name)
            return first
        return room.history[0].seq if room.history else None

    def members(self) -> Iterable[Member]:
        return self.nicks.values()
