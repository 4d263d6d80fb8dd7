"""Rooms, members, nicknames and recent history: the rules of the chat.  No I/O.
This module holds who is where (joining, leaving, held sessions); what they say is
``speech.py``, and the other parts of :class:`ChatState` are listed in ``state_base.py``.

:class:`ChatState` is a plain object, not thread-safe by itself: the server holds one
lock around every call (see ``chatroom.server.hub.Hub``).  Every operation takes ``now``
(seconds since the epoch) instead of reading a clock, and returns what must be sent
to whom as :class:`Delivery` values instead of sending anything, so it is tested with
no sockets, threads or clocks at all.

An optional *store* (``chatroom.server.store.HistoryStore``, or anything with its reading
methods) is consulted when a room is created, to continue its sequence numbers and
history, and when someone pages back past what is in memory.  New messages and topic
changes collect in :attr:`ChatState.unsaved` until the server commits them.

Sessions: a member whose connection drops without a goodbye is *held* for a grace
period (:meth:`ChatState.hold`); :meth:`ChatState.resume` gives it, nick and room,
to a new connection presenting its token, with the messages it missed.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from chatroom.auth import NONCE_BYTES
from chatroom.errors import Refused
from chatroom.protocol import (
    LARGE_ROOM,
    MAX_CROWD_NAMES,
    MAX_ROOMS,
    Chat,
    Crowd,
    ErrorCode,
    Joined,
    Parted,
    Presence,
    PresenceEvent,
    Private,
)
from chatroom.server.bans import Ban, BanList
from chatroom.server.changes import Changes
from chatroom.server.members import (
    DEFAULT_ROOM,
    MAX_REASON,
    Delivery,
    Member,
    Room,
)
from chatroom.server.moderation import Moderation
from chatroom.server.nicks import NickIndex
from chatroom.server.queries import Queries
from chatroom.server.remote import Peers, Remote, _owner
from chatroom.server.resends import RECENT_IDS, Resends
from chatroom.server.roles import KeyAttempt, Roles
from chatroom.server.room_modes import RoomModes
from chatroom.server.side_messages import SideMessages
from chatroom.server.speech import Speech
from chatroom.server.watch import Watching
from chatroom.text import (
    MAX_NICK_LENGTH,
    clean_line,
    fold,
    nick_key,
    nick_problem,
    room_problem,
    without_hash,
)

#: People remembered after they left (IRC's WHOWAS).
GONE_KEPT = 200

__all__ = ["ChatState", "RECENT_IDS"]


def _nonce() -> bytes:
    """A key challenge's nonce (``auth.NONCE_BYTES`` fresh random bytes)."""
    return os.urandom(NONCE_BYTES)


class ChatState(Changes, Moderation, Queries, Remote, Resends, Roles, SideMessages, Speech, Watching):
    """Every room, member and nick of one server."""

    def __init__(self, *, history_size: int = 100, max_text: int = 4000, store: Any = None,
                 bans: Iterable[Ban] = (), max_rooms: int = MAX_ROOMS, peers: Peers | None = None) -> None:
        self.history_size = history_size
        #: In a cluster: the other servers (nick claims, shared rooms), and what this
        #: server's members did that they must hear of -- plain records the server
        #: publishes as the hub lock is released (see ``chatroom.cluster``).
        self.peers = peers
        self.published: list[dict[str, Any]] | None = [] if peers is not None else None
        self.max_text = max_text
        self.max_rooms = max_rooms
        self.store = store
        self.bans = BanList(bans)
        self.rooms: dict[str, Room] = {}  # fold(name) -> room
        self.nicks = NickIndex()  # nick_key(nick) -> member, and look-alikes by their other key (see nicks.py)
        self.watchers: dict[str, dict[int, Member]] = {}  # nick_key -> who watches it (watch.py)
        self.sessions: dict[str, Member] = {}  # resume token -> member
        # (fold(nick), id) -> message: the newer generation, and the one before it
        self.sent: dict[tuple[str, str], Chat | Private] = {}
        self._sent_before: dict[tuple[str, str], Chat | Private] = {}
        self.unsaved: list[Chat] = []  # accepted, not yet committed by the server
        self.dirty: dict[str, Room] = {}  # rooms whose sequence or topic changed
        #: Rooms made or dropped so far, and what was read of rooms about to be made
        #: (``look_ahead``): fold(name) -> (rooms_made then, record, recent).
        self.rooms_made = 0
        self._ahead: dict[str, tuple[int, Any, list[Chat]]] = {}
        # Messages said by this server's members (the metrics read them).
        self.said_room = 0
        self.said_private = 0
        self.most_members = 0  # the most people here at once (IRC's LUSERS tells it)
        #: The server is stopping: its members leave, but the rooms they ran stay theirs
        #: (roles are saved with a room to survive a restart: see ``roles.py``).
        self.stopping = False
        #: Who left the server lately, newest first: (nick, user name, real name, when)
        #: -- IRC's WHOWAS.
        self.gone: deque[tuple[str, str, str, float]] = deque(maxlen=GONE_KEPT)
        # Unicode's confusables table is read now, once: not by the first twenty
        # connections at the same moment (a cache fills only when a reader finishes).
        nick_key("a\u0430")
        if store is not None:
            for key, msg_id, chat in store.recent_ids(RECENT_IDS):
                self.sent[(key, msg_id)] = chat
        self._room(DEFAULT_ROOM)

    # ------------------------------------------------------------------ membership

    def admit(
        self, key: int, nick: str, address: str, now: float, room: str | None = None, token: str = "",
        crowd: bool = False, several: bool = False,
    ) -> tuple[Member, Joined, list[Delivery]]:
        """Add a new member named ``nick`` to ``room`` (the lobby by default); ``crowd``:
        it speaks protocol 1.2 (large rooms send it crowd summaries); ``several``: 1.3
        (it may be in several rooms)."""
        self._check_nick_free(nick)
        target = self._room_for_join(room or DEFAULT_ROOM)
        probe = Member(key=key, nick=nick, address=address, joined_at=now, last_active=now)
        self.check_entry(probe, target, None, _nonce)  # (a room with a key is joined after the hello)
        member = self.admit_roomless(key, nick, address, now, token=token, crowd=crowd, several=several)
        return member, *self._enter(member, target, now)

    def admit_roomless(self, key: int, nick: str, address: str, now: float, *, token: str = "",
                       crowd: bool = True, several: bool = True) -> Member:
        """Add a new member in no room yet (an IRC client joins channels after it
        registers)."""
        self._check_nick_free(nick)
        member = Member(key=key, nick=nick, address=address, joined_at=now, last_active=now, token=token,
                        crowd=crowd, several=several)
        if self.peers is not None:  # (the cluster's claim on the nick was made before: ChatPath.claim)
            self._publish_session(member)
        self.nicks[nick_key(nick)] = member
        self.most_members = max(self.most_members, len(self.nicks))
        if token:
            self.sessions[token] = member
        return member

    def remove(self, member: Member, reason: str, now: float) -> list[Delivery]:
        """``member`` is gone (``reason``: quit, timed out, too slow, kicked...)."""
        if self.nicks.get(nick_key(member.nick)) is member:
            del self.nicks[nick_key(member.nick)]
            self.gone.appendleft((member.nick, member.ident or member.nick, member.realname or member.nick, now))
        if member.token and self.sessions.get(member.token) is member:
            del self.sessions[member.token]
        member.held_until = None
        if member.watching:
            self.unwatch(member)
        deliveries: list[Delivery] = []
        for room in list(member.rooms.values()):
            deliveries += self.depart(member, room, reason, now)
        if self.published is not None and member.server is None:  # (the cluster frees the nick, unlocked)
            self.published.append({"t": "release", "nick": member.nick, "owner": _owner(member)})
            if member.token:
                self.published.append({"t": "session_end", "token": member.token})
        return deliveries

    def hold(self, member: Member, reason: str, now: float, grace: float, sink: Any = None) -> list[Delivery]:
        """The connection dropped without a goodbye: keep nick and room for ``grace``
        seconds, silently, in case it comes back.  No grace: remove at once.

        ``sink``: the connection that ended.  If the member no longer belongs to it (a
        resume handed the session to a new connection meanwhile), nothing happens: the
        new connection must not be silenced, and nobody is told anything."""
        if sink is not None and member.sink is not sink:
            return []
        if grace <= 0 or not member.token:
            return self.remove(member, reason, now)
        member.sink = None
        member.held_until = now + grace
        member.held_reason = reason
        return []

    def crowd_news(self, now: float) -> list[Delivery]:
        """The tick of large rooms: one crowd summary each of who came and went since
        the last tick, to the members who speak protocol 1.2 (others hear of neither)."""
        out: list[Delivery] = []
        for room in self.rooms.values():
            if not (room.crowd_joined or room.crowd_left):
                continue
            joined, left = room.crowd_joined, room.crowd_left
            room.crowd_joined, room.crowd_left = [], []
            listeners = room.crowd_listeners()
            if listeners:
                out.append(Delivery(listeners, Crowd(
                    room=room.name, ts=now, joined=tuple(joined[:MAX_CROWD_NAMES]), left=tuple(left[:MAX_CROWD_NAMES]),
                    joined_count=len(joined), left_count=len(left), member_count=len(room.members))))
        return out

    def expire(self, now: float) -> list[Delivery]:
        """Remove the held members whose grace period has passed."""
        deliveries: list[Delivery] = []
        for member in [m for m in self.sessions.values() if m.held_until is not None and m.held_until <= now]:
            deliveries += self.remove(member, member.held_reason or "connection lost", now)
        return deliveries

    def resume(
        self, token: str, key: int, address: str, now: float, *, crowd: bool = False, several: bool = False,
    ) -> tuple[Member, Any, list[Delivery]]:
        """Give the session of ``token`` to connection ``key``, in every room it holds.

        Returns the member, the sink of the connection it had (a ghost to close
        silently, or None), and one "reconnected" event per room for the others (see
        :meth:`missed` for what the member missed there).  A client older than 1.3
        taking over a session in several rooms keeps the first and leaves the others.
        """
        member = self.sessions.get(token)
        if member is None:
            raise Refused(ErrorCode.RESUME_REFUSED, "that session is unknown or has expired: join normally")
        old_sink = member.sink
        rooms = list(member.rooms.values())
        for room in rooms:
            room.discard(member)  # under its old connection key ...
        member.key, member.address, member.held_until = key, address, None
        member.crowd, member.several = crowd, several  # what the new connection's client speaks
        deliveries: list[Delivery] = []
        for room in rooms:
            room.add(member)  # ... and back under the new one
            if not several and room is not rooms[0]:
                deliveries += self.depart(member, room, f"went to {rooms[0].name}", now)
                continue
            self._publish(member, room, "reconnected")
            if not room.large:  # nothing changed for the others in a large one: it was still listed
                event = Presence(room=room.name, event=PresenceEvent.RECONNECTED, nick=member.nick, ts=now)
                others = tuple(m for m in room.everyone() if m is not member)
                if others:
                    deliveries.append(Delivery(others, event))
        return member, old_sink, deliveries

    def missed(self, room: Room, last_seq: int | None, limit: int | None = None) -> list[Chat]:
        """The room's messages after ``last_seq`` (at most ``limit``), oldest first."""
        if last_seq is None:
            return []
        oldest = room.history[0].seq if room.history else room.next_seq
        out = self._stored_after(room, last_seq, oldest, limit)
        room_left = None if limit is None else limit - len(out)
        if room_left is None or room_left > 0:
            out += [c for c in room.history if c.seq > last_seq][:room_left]
        return out

    def _stored_after(self, room: Room, last_seq: int, oldest: int, limit: int | None) -> list[Chat]:
        """What the store has of ``room`` after ``last_seq`` and before ``oldest`` (the
        oldest message in memory), at most ``limit``."""
        if last_seq + 1 >= oldest or self.store is None:
            return []
        wanted = oldest - last_seq - 1 if limit is None else min(limit, oldest - last_seq - 1)
        return [c for c in self.store.after(room.name, last_seq, wanted) if c.seq < oldest]

    def join(self, member: Member, room: str, now: float, key: KeyAttempt = None,
             nonce: Callable[[], bytes] | None = None) -> tuple[Joined, list[Delivery]]:
        """Put ``member`` in ``room``, creating it if needed: in addition to its other
        rooms (protocol 1.3), or instead of its room (older clients: they move).  A
        room run by its operators may refuse (``roles.py``; ``key``: what the joiner
        offers for its key, ``nonce``: where a key challenge's nonce comes from)."""
        name = self._room_name(room)
        if fold(name) in member.rooms:
            raise Refused(ErrorCode.INVALID_ROOM, f"you are already in {member.rooms[fold(name)].name}")
        if member.several and len(member.rooms) >= self.max_rooms:
            raise Refused(ErrorCode.TOO_MANY_ROOMS, f"you are in {len(member.rooms)} rooms, the most this server "
                                                    "allows: part one first")
        target = self._room(name)
        proof = self.check_entry(member, target, key, nonce or _nonce)
        deliveries: list[Delivery] = []
        if not member.several:
            for old in list(member.rooms.values()):
                deliveries += self.depart(member, old, f"went to {target.name}", now)
        joined, more = self._enter(member, target, now)
        if proof is not None:
            joined = msgspec.structs.replace(joined, proof=proof)
        return joined, deliveries + more

    def part(self, member: Member, room: str, reason: str, now: float) -> tuple[Parted, list[Delivery]]:
        """Protocol 1.3: ``member`` leaves one of its rooms (maybe its last)."""
        if not member.several:
            raise Refused(ErrorCode.BAD_MESSAGE, "part needs protocol 1.3: before it, you are always in one room "
                                                 "(join moves you)")
        target = self.room_of(member, room)
        reason = clean_line(reason).strip()[:MAX_REASON]
        return Parted(room=target.name), self.depart(member, target, f"left: {reason}" if reason else "left", now)

    # ------------------------------------------------------------------ helpers

    def suggest_nick(self, nick: str) -> str:
        """A free nick close to ``nick``: ann -> ann2, ann3, ..."""
        for n in range(2, 1000):
            suffix = str(n)
            candidate = nick[: MAX_NICK_LENGTH - len(suffix)] + suffix
            if nick_problem(candidate) is None and self.nicks.holder(candidate) is None:
                return candidate
        return nick[: MAX_NICK_LENGTH - 1] + "_"

    def _check_nick_free(self, nick: str, me: Member | None = None) -> None:
        """Refuse ``nick`` if it is not a valid nick, or someone else (not ``me``, who
        may respell its own) holds it or a look-alike of it."""
        problem = nick_problem(nick)
        if problem:
            raise Refused(ErrorCode.INVALID_NICK, problem)
        holder = self.nicks.holder(nick)
        if holder is not None and holder is not me:
            alike = "" if fold(holder.nick) == fold(nick) else f" (it looks like {holder.nick}, who is here)"
            suggestion = self.suggest_nick(nick)
            raise Refused(ErrorCode.NICK_TAKEN, f"the nick {nick} is taken{alike}; try {suggestion}", suggestion)

    def _unrun(self, member: Member, room: Room) -> None:
        """The last one left ``room``: nobody runs it any more, and its modes go with its
        operators (as an IRC channel's do); its topic and history stay."""
        room.modes, room.topic_locked = RoomModes(), False
        room.modes_changed()
        room.invited.clear()
        self.dirty[room.key] = room
        self._publish(member, room, "modes", modes=room.modes.dump(False), changes=[])

    def _room(self, name: str) -> Room:
        key = fold(name)
        room = self.rooms.get(key)
        if room is None and self.peers is not None:
            room = self._load(name)
        if room is None:
            record, recent = self._stored(name)
            self.rooms_made += 1
            room = self.rooms[key] = Room(name=name, history_size=self.history_size)
            if record is not None:  # it existed before: continue where it stopped
                room.name, room.next_seq, room.topic = record.name, record.next_seq, record.topic
                room.modes, room.topic_locked = RoomModes.load(record.modes)
                room.modes_changed()
                room.history.extend(recent)
                room.history_changed()
        return room

    def look_ahead(self, name: str) -> None:
        """*Outside* the hub lock: read what the store has of a room that is not here
        yet, so that making it under the lock reads nothing (the store serialises its
        reads with its commits: an fsync under the hub lock would hold every
        connection).  Used once, and only if no room was made or dropped meanwhile."""
        key = fold(name)
        if self.store is None or self.peers is not None or key in self.rooms:  # (dict reads)
            return
        made = self.rooms_made
        record = self.store.room(name)
        recent = self.store.recent(name, self.history_size) if record is not None else []
        if len(self._ahead) > 256:  # read and never used (a refused join): drop them
            self._ahead.clear()
        self._ahead[key] = (made, record, recent)

    def _stored(self, name: str) -> tuple[Any, list[Chat]]:
        """What the store has of room ``name``: read ahead (see :meth:`look_ahead`), or now."""
        ahead = self._ahead.pop(fold(name), None)
        if ahead is not None and ahead[0] == self.rooms_made:
            return ahead[1], ahead[2]
        record = self.store.room(name) if self.store is not None else None
        return record, self.store.recent(name, self.history_size) if record is not None else []

    def _room_for_join(self, name: str) -> Room:
        return self._room(self._room_name(name))

    @staticmethod
    def _room_name(name: str) -> str:
        name = without_hash(name)
        problem = room_problem(name)
        if problem:
            raise Refused(ErrorCode.INVALID_ROOM, problem)
        return name

    def room_of(self, member: Member, name: str | None) -> Room:
        """The member's room called ``name``; None: its only room."""
        if name is None:
            if len(member.rooms) == 1:
                return next(iter(member.rooms.values()))
            if not member.rooms:
                raise Refused(ErrorCode.NOT_IN_ROOM, "you are in no room: join one first")
            raise Refused(ErrorCode.INVALID_ROOM, f"you are in {len(member.rooms)} rooms: say which one in \"room\"")
        room = member.rooms.get(fold(without_hash(name)))
        if room is None:
            raise Refused(ErrorCode.NOT_IN_ROOM, f"you are not in {clean_line(name)[:MAX_NICK_LENGTH]}: join it first")
        return room

    def _enter(self, member: Member, room: Room, now: float) -> tuple[Joined, list[Delivery]]:
        room.created = room.created or now
        if not room.members and not room.modes.operators and room.key != fold(DEFAULT_ROOM):
            self.made_creator(member, room)  # the first into a room nobody runs runs it (not the lobby)
        deliveries = self.arrive(member, room, now)
        joined = Joined(
            room=room.name,
            topic=room.topic,
            members=room.member_infos(now, show_addresses=member.op),
            member_count=len(room.members),
            history=room.recent(),
            last_seq=room.next_seq - 1,
            modes=room.modes.flags(room.topic_locked),
        )
        return joined, deliveries

    def arrive(self, member: Member, room: Room, now: float) -> list[Delivery]:
        """``member`` comes into ``room``: what the others are told."""
        others = room.everyone()
        room.add(member)
        member.rooms[fold(room.name)] = room
        self._publish(member, room, "join", op=member.op, away=member.away, address=member.address)
        self._publish_session(member)
        if len(others) >= LARGE_ROOM:  # summed up at the next tick (see crowd_news)
            room.crowd_joined.append(member.nick)
            return []
        event = Presence(room=room.name, event=PresenceEvent.JOIN, nick=member.nick, ts=now)
        return [Delivery(others, event)] if others else []

    def depart(self, member: Member, room: Room, reason: str, now: float) -> list[Delivery]:
        member.rooms.pop(fold(room.name), None)
        if not room.discard(member):
            return []
        self._publish(member, room, "leave", reason=reason)
        self._publish_session(member)
        if not room.members and not self.stopping and not (room.modes.blank and not room.topic_locked):
            self._unrun(member, room)
        if not room.local and fold(room.name) != fold(DEFAULT_ROOM):
            self._forget_room(room)  # nobody here is in it: stop following it
            return []
        if room.large:  # summed up at the next tick (see crowd_news)
            room.crowd_left.append(member.nick)
            return []
        event = Presence(room=room.name, event=PresenceEvent.LEAVE, nick=member.nick, reason=reason, ts=now)
        return [Delivery(room.everyone(), event)]


