"""A cluster's other servers, as the chat rules see them (no I/O here): the
:class:`Peers` interface, and what the state does with remote members, shared rooms
and sessions another server takes over.  A part of :class:`~chatroom.server.room.ChatState`."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any, Protocol

from chatroom.errors import Refused
from chatroom.protocol import (
    ErrorCode,
    Private,
    RoomInfo,
    User,
)
from chatroom.server.members import DEFAULT_ROOM, Delivery, Member, Room, RoomSnapshot, owner_of
from chatroom.server.room_modes import RoomModes
from chatroom.server.state_base import StateBase
from chatroom.text import (
    fold,
    nick_key,
)

__all__ = ["Peers", "Remote"]


class Peers(Protocol):
    """The other servers of a cluster, as the room rules need them (``chatroom.cluster``;
    None on a server of its own).  Each call may raise ``Refused``: a nick taken
    elsewhere, or ``unavailable`` when the cluster's store cannot be reached."""

    server: str  # this server's id in the cluster

    def load(self, name: str) -> RoomSnapshot: ...
    def rooms(self) -> list[RoomInfo]: ...
    def whois(self, nick: str) -> User | None: ...


class Remote(StateBase):
    """Remote members and shared rooms: a mixin of ``ChatState``."""

    # ------------------------------------------------------------------ a cluster's other servers

    def remote(self, info: dict[str, Any]) -> Member | None:
        """The member another server of the cluster has (``info``: nick, server, op,
        away, since, address), made or updated here; None if one of ours has that nick."""
        nick = info["nick"]
        member = self.nicks.get(nick_key(nick))
        if member is not None and member.server is None:
            return None  # ours (the cluster's nick claims keep this from happening)
        if member is None:
            since = float(info.get("since") or 0.0)
            member = Member(key=next(_remote_keys), nick=nick, address=info.get("address", ""), joined_at=since,
                            last_active=since, server=info["server"], several=True)
            self.nicks[nick_key(nick)] = member
        member.server = info["server"]
        if "op" in info:
            member.op = bool(info["op"])
        if "away" in info:
            member.away = info["away"]
        if info.get("address"):
            member.address = info["address"]
        for room in member.rooms.values():
            room.roster_changed()
        return member

    def forget_remote(self, member: Member) -> None:
        """A remote member is in none of the rooms this server follows: drop it."""
        if not member.rooms and member.server is not None and self.nicks.get(nick_key(member.nick)) is member:
            del self.nicks[nick_key(member.nick)]

    def check_direct(self, member: Member, text: str, now: float) -> str:
        """Whether ``member`` may send a private message now: its cleaned text."""
        self._check_not_muted(member, now)
        return self._clean_message(text)

    def sent_elsewhere(self, member: Member, msg: Private) -> list[Delivery]:
        """``member`` sent ``msg`` to a member of another server (it is on its way
        there): remember it, and echo it to the sender."""
        member.last_active = msg.ts
        self.said_private += 1
        if msg.id is not None:
            self._remember(member, msg.id, msg)
        return [Delivery((member,), msg)] if member.echo else []

    def take_over(self, token: str, nick: str, rooms: Iterable[str], key: int, address: str, now: float,
                  grace: float) -> Member:
        """Another server's session, resumed here: ``nick`` in ``rooms``, held for
        ``resume`` to hand to the new connection (no one is told yet)."""
        old = self.nicks.get(nick_key(nick))
        if old is not None and old.server is None:
            raise Refused(ErrorCode.RESUME_REFUSED, "that session is unknown or has expired: join normally")
        member = Member(key=key, nick=nick, address=address, joined_at=now, last_active=now, token=token,
                        several=True, held_until=now + grace, held_reason="connection lost")
        if old is not None:  # it was listed here as a member of another server
            member.op, member.away, member.joined_at = old.op, old.away, old.joined_at
            for room in list(old.rooms.values()):
                room.discard(old)
            old.rooms.clear()
            del self.nicks[nick_key(nick)]
        self.nicks[nick_key(nick)] = member
        self.sessions[token] = member
        for name in rooms:
            try:
                room = self._room_for_join(name)
            except Refused:
                continue
            room.add(member)
            member.rooms[fold(room.name)] = room
        return member

    def let_go(self, token: str, server: str) -> Any:
        """Another server took over the session of ``token``: its member is that
        server's now.  Returns the connection it had here (close it quietly), if any."""
        member = self.sessions.pop(token, None)
        if member is None or member.server is not None:
            return None
        sink = member.sink
        rooms = list(member.rooms.values())
        for room in rooms:
            room.discard(member)
        member.server, member.sink, member.held_until = server, None, None
        for room in rooms:
            room.add(member)
            room.roster_changed()
        for room in rooms:
            if not room.local and fold(room.name) != fold(DEFAULT_ROOM):
                self._forget_room(room)
        return sink

    def _load(self, name: str) -> Room:
        """A room this server starts following: its shared state (Refused if the cluster
        is unreachable)."""
        assert self.peers is not None
        snap = self.peers.load(name)
        room = Room(name=snap.name, history_size=self.history_size, topic=snap.topic, topic_locked=snap.locked,
                    next_seq=snap.next_seq)
        room.last_id = snap.last_id
        if snap.modes:
            room.modes, room.topic_locked = RoomModes.load(snap.modes)
            room.modes_changed()
        room.history.extend(snap.recent[-self.history_size:])
        for chat in snap.recent:  # a resend of one of these (after a move between servers) is recognised
            if chat.id is not None:
                self.sent[(fold(chat.nick), chat.id)] = chat
        self.rooms[fold(room.name)] = room
        for info in snap.members:
            if info.get("server") == self.peers.server:
                continue  # a stale record of ours: the members here are the truth
            member = self.remote(info)
            if member is not None:
                room.add(member)
                member.rooms[fold(room.name)] = room
        return room

    def _forget_room(self, room: Room) -> None:
        """Nobody of this server is in ``room`` any more: stop keeping it (a cluster's
        remote members of it are forgotten too)."""
        key = fold(room.name)
        if self.rooms.get(key) is room:
            del self.rooms[key]
            self.rooms_made += 1
        for member in list(room.members.values()):
            member.rooms.pop(key, None)
            self.forget_remote(member)
        room.members.clear()

    def _publish(self, member: Member, room: Room, kind: str, **fields: Any) -> None:
        """In a cluster: tell the other servers what ``member`` (one of ours) did."""
        if self.published is not None and member.server is None:
            self.published.append({"t": kind, "room": room.name, "nick": member.nick, **fields})

    def _publish_session(self, member: Member) -> None:
        """In a cluster: the session record another server needs to take it over."""
        if self.published is not None and member.server is None and member.token:
            self.published.append({"t": "session", "token": member.token, "nick": member.nick,
                                   "rooms": [r.name for r in member.rooms.values()]})


#: Keys of remote members: negative, so never a connection's.
_remote_keys = itertools.count(-1, -1)


def _owner(member: Member) -> str:
    """Who holds ``member`` 's nick, as the cluster records it (see ``owner_of``)."""
    return owner_of(member.key, member.token)
