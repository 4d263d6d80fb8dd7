"""Rooms, members, nicknames and recent history: the rules of the chat.  No I/O.

:class:`ChatState` is a plain object, not thread-safe by itself: the server holds one
lock around every call (see ``chatroom.server.Hub``).  Every operation takes ``now``
(seconds since the epoch) instead of reading a clock, and returns what must be sent
to whom as :class:`Delivery` values instead of sending anything, so it is tested with
no sockets, threads or clocks at all.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chatroom.errors import Refused
from chatroom.protocol import (
    MAX_LISTED_MEMBERS,
    Chat,
    ErrorCode,
    History,
    Joined,
    MemberInfo,
    Members,
    Message,
    Presence,
    PresenceEvent,
    Private,
    RoomInfo,
    Rooms,
    Topic,
)
from chatroom.text import (
    MAX_NICK_LENGTH,
    MAX_TOPIC_LENGTH,
    clean_line,
    clean_text,
    fold,
    nick_problem,
    room_problem,
)

__all__ = ["DEFAULT_ROOM", "Member", "Room", "Delivery", "ChatState"]

DEFAULT_ROOM = "lobby"


@dataclass(eq=False)
class Member:
    """A connected, named member.  ``key`` identifies the connection; ``sink`` is the
    server's handle for delivering to it (the room only passes it along)."""

    key: int
    nick: str
    address: str
    joined_at: float
    last_active: float
    room: Room | None = None
    away: str | None = None
    op: bool = False
    sink: Any = None

    def info(self, now: float, *, show_address: bool = False) -> MemberInfo:
        return MemberInfo(
            nick=self.nick,
            idle=round(max(0.0, now - self.last_active), 1),
            away=self.away,
            op=self.op,
            address=self.address if show_address else None,
        )


@dataclass(eq=False)
class Room:
    name: str
    history_size: int
    topic: str = ""
    #: connection key -> member, in joining order
    members: dict[int, Member] = field(default_factory=dict)
    next_seq: int = 1
    history: deque[Chat] = field(init=False)
    _everyone: tuple[Member, ...] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.history = deque(maxlen=self.history_size)

    def everyone(self) -> tuple[Member, ...]:
        """Every member, in joining order.  Cached: a busy room broadcasts far more
        often than its membership changes."""
        if self._everyone is None:
            self._everyone = tuple(self.members.values())
        return self._everyone

    def add(self, member: Member) -> None:
        self.members[member.key] = member
        self._everyone = None

    def discard(self, member: Member) -> bool:
        self._everyone = None
        return self.members.pop(member.key, None) is not None

    def info(self) -> RoomInfo:
        return RoomInfo(name=self.name, members=len(self.members), topic=self.topic)

    def member_infos(self, now: float, *, show_addresses: bool = False) -> tuple[MemberInfo, ...]:
        """The first MAX_LISTED_MEMBERS members, in joining order."""
        listed = itertools.islice(self.members.values(), MAX_LISTED_MEMBERS)
        return tuple(m.info(now, show_address=show_addresses) for m in listed)


@dataclass(frozen=True, slots=True)
class Delivery:
    """Send ``message`` to each of ``recipients``, in this order relative to others."""

    recipients: tuple[Member, ...]
    message: Message


class ChatState:
    """Every room, member and nick of one server."""

    def __init__(self, *, history_size: int = 100, max_text: int = 4000) -> None:
        self.history_size = history_size
        self.max_text = max_text
        self.rooms: dict[str, Room] = {}  # fold(name) -> room
        self.nicks: dict[str, Member] = {}  # fold(nick) -> member
        self._room(DEFAULT_ROOM)

    # ------------------------------------------------------------------ membership

    def admit(
        self, key: int, nick: str, address: str, now: float, room: str | None = None
    ) -> tuple[Member, Joined, list[Delivery]]:
        """Add a new member named ``nick`` to ``room`` (the lobby by default)."""
        self._check_nick_free(nick)
        target = self._room_for_join(room or DEFAULT_ROOM)
        member = Member(key=key, nick=nick, address=address, joined_at=now, last_active=now)
        self.nicks[fold(nick)] = member
        return member, *self._enter(member, target, now)

    def remove(self, member: Member, reason: str, now: float) -> list[Delivery]:
        """``member`` is gone (``reason``: quit, timed out, too slow, kicked...)."""
        if self.nicks.get(fold(member.nick)) is member:
            del self.nicks[fold(member.nick)]
        return self._leave(member, reason, now)

    def join(self, member: Member, room: str, now: float) -> tuple[Joined, list[Delivery]]:
        """Move ``member`` to ``room``, creating it if needed."""
        target = self._room_for_join(room)
        if member.room is target:
            raise Refused(ErrorCode.INVALID_ROOM, f"you are already in {target.name}")
        deliveries = self._leave(member, f"went to {target.name}", now)
        joined, more = self._enter(member, target, now)
        return joined, deliveries + more

    def rename(self, member: Member, new_nick: str, now: float) -> list[Delivery]:
        if fold(new_nick) != fold(member.nick):
            self._check_nick_free(new_nick)
        elif new_nick == member.nick:
            raise Refused(ErrorCode.INVALID_NICK, f"you are already {new_nick}")
        old = member.nick
        del self.nicks[fold(old)]
        member.nick = new_nick
        self.nicks[fold(new_nick)] = member
        room = self._room_of(member)
        event = Presence(room=room.name, event=PresenceEvent.NICK, nick=old, new_nick=new_nick, ts=now)
        return [Delivery(room.everyone(), event)]

    # ------------------------------------------------------------------ messages

    def say(
        self, member: Member, text: str, now: float, *, action: bool = False, msg_id: str | None = None
    ) -> tuple[Chat, list[Delivery]]:
        """Stamp ``text`` with the room's next sequence number and broadcast it."""
        text = self._clean_message(text)
        room = self._room_of(member)
        chat = Chat(
            room=room.name, seq=room.next_seq, ts=now, nick=member.nick, text=text, action=action, id=msg_id
        )
        room.next_seq += 1
        room.history.append(chat)
        member.last_active = now
        return chat, [Delivery(room.everyone(), chat)]

    def direct(
        self, member: Member, to: str, text: str, now: float, *, msg_id: str | None = None
    ) -> tuple[Private, list[Delivery]]:
        text = self._clean_message(text)
        target = self.nicks.get(fold(to))
        if target is None:
            raise Refused(ErrorCode.NO_SUCH_NICK, f"nobody is called {clean_line(to)[:MAX_NICK_LENGTH]}")
        msg = Private(nick=member.nick, to=target.nick, text=text, ts=now, id=msg_id)
        member.last_active = now
        recipients = (target,) if target is member else (target, member)
        return msg, [Delivery(recipients, msg)]

    def set_topic(self, member: Member, topic: str, now: float) -> list[Delivery]:
        topic = clean_line(topic).strip()
        if len(topic) > MAX_TOPIC_LENGTH:
            raise Refused(ErrorCode.TEXT_TOO_LONG, f"a topic is at most {MAX_TOPIC_LENGTH} characters")
        room = self._room_of(member)
        room.topic = topic
        msg = Topic(room=room.name, topic=topic, nick=member.nick, ts=now)
        return [Delivery(room.everyone(), msg)]

    def set_away(self, member: Member, message: str | None, now: float) -> list[Delivery]:
        """Away with ``message``, or back when it is None or blank."""
        message = clean_line(message).strip()[:MAX_TOPIC_LENGTH] if message else None
        if not message and member.away is None:
            raise Refused(ErrorCode.BAD_MESSAGE, "you are not away")
        member.away = message or None
        room = self._room_of(member)
        event = Presence(
            room=room.name,
            event=PresenceEvent.AWAY if message else PresenceEvent.BACK,
            nick=member.nick,
            message=message,
            ts=now,
        )
        return [Delivery(room.everyone(), event)]

    # ------------------------------------------------------------------ queries

    def who(self, member: Member, now: float, room: str | None = None) -> Members:
        target = self._room_of(member) if room is None else self.rooms.get(fold(room))
        if target is None:
            raise Refused(ErrorCode.NO_SUCH_ROOM, f"there is no room called {clean_line(room or '')}")
        return Members(
            room=target.name,
            members=target.member_infos(now, show_addresses=member.op),
            member_count=len(target.members),
        )

    def list_rooms(self) -> Rooms:
        return Rooms(rooms=tuple(sorted((r.info() for r in self.rooms.values()), key=lambda r: fold(r.name))))

    def history(self, room: str, before: int, limit: int) -> History:
        target = self.rooms.get(fold(room))
        if target is None:
            raise Refused(ErrorCode.NO_SUCH_ROOM, f"there is no room called {clean_line(room)}")
        older = [c for c in target.history if c.seq < before]
        page = older[-limit:]
        oldest_kept = target.history[0].seq if target.history else target.next_seq
        complete = oldest_kept <= 1 and len(page) == len(older)
        return History(room=target.name, messages=tuple(page), complete=complete)

    def members(self) -> Iterable[Member]:
        return self.nicks.values()

    # ------------------------------------------------------------------ helpers

    def suggest_nick(self, nick: str) -> str:
        """A free nick close to ``nick``: ann -> ann2, ann3, ..."""
        for n in range(2, 1000):
            suffix = str(n)
            candidate = nick[: MAX_NICK_LENGTH - len(suffix)] + suffix
            if fold(candidate) not in self.nicks:
                return candidate
        return nick[: MAX_NICK_LENGTH - 1] + "_"

    def _check_nick_free(self, nick: str) -> None:
        problem = nick_problem(nick)
        if problem:
            raise Refused(ErrorCode.INVALID_NICK, problem)
        if fold(nick) in self.nicks:
            raise Refused(
                ErrorCode.NICK_TAKEN, f"the nick {nick} is taken; try {self.suggest_nick(nick)}"
            )

    def _clean_message(self, text: str) -> str:
        text = clean_text(text)
        if len(text) > self.max_text:
            raise Refused(
                ErrorCode.TEXT_TOO_LONG, f"a message is at most {self.max_text} characters ({len(text)} given)"
            )
        if not text.strip():
            raise Refused(ErrorCode.BAD_MESSAGE, "the message is empty")
        return text

    def _room(self, name: str) -> Room:
        key = fold(name)
        room = self.rooms.get(key)
        if room is None:
            room = self.rooms[key] = Room(name=name, history_size=self.history_size)
        return room

    def _room_for_join(self, name: str) -> Room:
        problem = room_problem(name)
        if problem:
            raise Refused(ErrorCode.INVALID_ROOM, problem)
        return self._room(name)

    def _room_of(self, member: Member) -> Room:
        if member.room is None:  # only between _leave and _enter, never seen by callers
            raise RuntimeError(f"{member.nick} is in no room")
        return member.room

    def _enter(self, member: Member, room: Room, now: float) -> tuple[Joined, list[Delivery]]:
        others = room.everyone()
        room.add(member)
        member.room = room
        joined = Joined(
            room=room.name,
            topic=room.topic,
            members=room.member_infos(now, show_addresses=member.op),
            member_count=len(room.members),
            history=tuple(room.history),
        )
        event = Presence(room=room.name, event=PresenceEvent.JOIN, nick=member.nick, ts=now)
        return joined, [Delivery(others, event)] if others else []

    def _leave(self, member: Member, reason: str, now: float) -> list[Delivery]:
        room = member.room
        if room is None or not room.discard(member):
            return []
        member.room = None
        if not room.members and fold(room.name) != fold(DEFAULT_ROOM):
            del self.rooms[fold(room.name)]
            return []
        event = Presence(room=room.name, event=PresenceEvent.LEAVE, nick=member.nick, reason=reason, ts=now)
        return [Delivery(room.everyone(), event)]
