"""How a member or a room changes -- its nick, away text, operator status, topic and
topic lock -- whoever asked for it.  No I/O.

A change has two halves.  The *rule* decides whether it may happen: one of this
server's members asks (``rename``, ``set_away``, ``set_topic``, ``make_operator``,
``lock_topic``), the rule checks, and the change is published to the cluster's other
servers.  The *reducer* (``renamed``, ``went_away``, ``topic_set``, ``made_operator``,
``topic_locked``) carries it out: it is the one place that sets these fields and says
who is told.  Another server's change arrives through its room's log
(``chatroom.cluster.mirror``), already checked there, and goes through the same
reducer -- so a remote rename updates the nick index, and a remote topic tells the room,
exactly as a local one does (h11's rule: the same rules for both parties).

A part of :class:`~chatroom.server.room.ChatState`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from chatroom.errors import Refused
from chatroom.protocol import ErrorCode, Presence, PresenceEvent, Topic, Typing, TypingState
from chatroom.server.members import Delivery, Member, Room
from chatroom.server.state_base import StateBase
from chatroom.text import MAX_TOPIC_LENGTH, clean_line, nick_key, nick_problem

__all__ = ["Changes", "TYPING_EVERY"]

#: A member's typing notices of one state in one room are relayed at most this often
#: (clients say "active" again every few seconds while typing).
TYPING_EVERY = 2.0


class Changes(StateBase):
    """Changes of members and rooms, asked here or by another server: a mixin of ``ChatState``."""

    # ------------------------------------------------------------------ the rules (asked here)

    def rename(self, member: Member, new_nick: str, now: float) -> list[Delivery]:
        if nick_key(new_nick) != nick_key(member.nick):
            self._check_nick_free(new_nick, member)
        elif new_nick == member.nick:
            raise Refused(ErrorCode.INVALID_NICK, f"you are already {new_nick}")
        else:  # the same key: only its spelling changes; it must still be a valid nick
            problem = nick_problem(new_nick)
            if problem:
                raise Refused(ErrorCode.INVALID_NICK, problem)
        old = member.nick
        deliveries = self.renamed(member, old, new_nick, now)
        self._publish_session(member)
        for room in member.rooms.values():
            self._publish(member, room, "nick", nick=old, new_nick=new_nick)
        return deliveries

    def set_away(self, member: Member, message: str | None, now: float) -> list[Delivery]:
        """Away with ``message``, or back when it is None or blank."""
        message = clean_line(message).strip()[:MAX_TOPIC_LENGTH] if message else None
        if not message and member.away is None:
            raise Refused(ErrorCode.BAD_MESSAGE, "you are not away")
        deliveries = self.went_away(member, message or None, now)
        for room in member.rooms.values():
            self._publish(member, room, "away", message=member.away)
        return deliveries

    def set_topic(self, member: Member, topic: str, now: float, room_name: str | None = None) -> list[Delivery]:
        room = self.room_of(member, room_name)
        topic = clean_line(topic).strip()
        if len(topic) > MAX_TOPIC_LENGTH:
            raise Refused(ErrorCode.TEXT_TOO_LONG, f"a topic is at most {MAX_TOPIC_LENGTH} characters")
        if room.topic_locked and not self.runs(member, room):
            raise Refused(ErrorCode.NOT_OPERATOR,  # (its code since 1.0: clients switch on it)
                          f"the topic of {room.name} is locked: only its operators may change it")
        deliveries = self.topic_set(room, topic, member.nick, now)
        self.dirty[room.key] = room
        self._publish(member, room, "topic", topic=topic)
        return deliveries

    def make_operator(self, member: Member) -> None:
        """``member`` proved the operator token."""
        self.made_operator(member)
        for room in member.rooms.values():
            self._publish(member, room, "op")

    def lock_topic(self, op: Member, room_name: str | None, locked: bool) -> Room:
        """An operator locks (or opens) the topic of one of its rooms."""
        room = self.room_of(op, room_name)
        self.topic_locked(room, locked)
        self._publish(op, room, "lock", locked=locked)
        return room

    def typing(self, member: Member, room_name: str | None, state: str, now: float) -> list[Delivery]:
        """``member`` is typing in one of its rooms (or paused, or done): the others
        who understand it hear -- at most one notice per member, room and state every
        ``TYPING_EVERY`` seconds (more are dropped: typing is news, not history), and
        none in a large room.  Nothing is stored or sent to other servers."""
        room = self.room_of(member, room_name)
        said = member.typing_said.get(room.key)
        if room.large or (said is not None and said[0] == state and now - said[1] < TYPING_EVERY):
            return []
        member.typing_said[room.key] = (state, now)
        listeners = tuple(m for m in room.everyone() if m.hears_typing and m is not member)
        if not listeners:
            return []
        return [Delivery(listeners, Typing(state=TypingState(state), room=room.name, nick=member.nick))]

    # ------------------------------------------------------------------ the reducers (asked here or elsewhere)

    def renamed(self, member: Member, old: str, new_nick: str, now: float,
                rooms: Iterable[Room] | None = None) -> list[Delivery]:
        """``member`` (once ``old``) is now ``new_nick``: the nick index follows, and
        ``rooms`` (default: all of its rooms) are told.  Another server's rename comes
        once per shared room, so the second room finds the member renamed already."""
        if member.nick != new_nick:
            if self.nicks.get(nick_key(member.nick)) is member:
                del self.nicks[nick_key(member.nick)]
            member.nick = new_nick
            self.nicks[nick_key(new_nick)] = member
            self.roles_renamed(member, old)
        return self._tell_rooms(member, lambda name: Presence(
            room=name, event=PresenceEvent.NICK, nick=old, new_nick=new_nick, ts=now), rooms)

    def went_away(self, member: Member, message: str | None, now: float,
                  rooms: Iterable[Room] | None = None) -> list[Delivery]:
        """``member`` is away with ``message`` (None: back); ``rooms`` are told."""
        member.away = message
        return self._tell_rooms(member, lambda name: Presence(
            room=name, event=PresenceEvent.AWAY if message else PresenceEvent.BACK, nick=member.nick,
            message=message, ts=now), rooms)

    def made_operator(self, member: Member) -> None:
        """``member`` is a server operator: its rooms' member lists show it."""
        member.op = True
        for room in member.rooms.values():
            room.roster_changed()

    def topic_set(self, room: Room, topic: str, nick: str, now: float) -> list[Delivery]:
        """``nick`` set ``room`` 's topic: everyone in it is told."""
        room.topic, room.topic_by, room.topic_at = topic, nick, now
        return [Delivery(room.everyone(), Topic(room=room.name, topic=topic, nick=nick, ts=now))]

    def topic_locked(self, room: Room, locked: bool) -> None:
        """Only operators may change ``room`` 's topic (``locked``), or anyone may."""
        room.topic_locked = locked

    def _tell_rooms(self, member: Member, event: Callable[[str], Presence],
                    rooms: Iterable[Room] | None = None) -> list[Delivery]:
        """A change of ``member`` itself (nick, away): ``event(room name)`` to each of
        ``rooms`` (default: its rooms) -- or, in no room (1.3), to the member alone,
        with room ``""``."""
        if rooms is None:
            if not member.rooms:
                return [Delivery((member,), event(""))]
            rooms = member.rooms.values()
        out: list[Delivery] = []
        told: set[int] = set()  # members who hear a change of a person once (IRC: one NICK, one AWAY)
        for room in rooms:
            room.roster_changed()
            everyone = room.everyone()
            if told:
                everyone = tuple(m for m in everyone if m.key not in told)
            told.update(m.key for m in everyone if m.once_per_person)
            out.append(Delivery(everyone, event(room.name)))
        return out
