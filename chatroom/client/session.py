"""What the client knows of its session, and what each server message means for it.
No I/O: messages in, actions out.

``connection.py`` runs the network thread and carries the actions out:

* :class:`Emit` -- report this event to the UI;
* :class:`Request` -- send this message to the server;
* :class:`Settle` -- our outgoing message ``id`` was acknowledged or refused;
* :class:`End` -- the connection is over (``fatal``: do not reconnect by yourself).

Kept here: where we are (server, nick, and each room we are in with its topic and
members: protocol 1.3 lets a member be in several), the resume token, the newest
sequence number seen per room, each resumed room's replay promise and the holes being
fetched -- so that every room message is shown exactly once, in order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from chatroom.client.room_roles import RoomKeys, with_roles
from chatroom.protocol import (
    SEVERAL_ROOMS,
    Ack,
    Away,
    Bye,
    Challenge,
    Chat,
    Crowd,
    Error,
    ErrorCode,
    FetchHistory,
    History,
    Join,
    Joined,
    MemberInfo,
    Members,
    Message,
    Notice,
    Parted,
    Ping,
    Pong,
    Presence,
    PresenceEvent,
    RoomModesInfo,
    Topic,
    Typing,
    Welcome,
    speaks,
)
from chatroom.text import fold, without_hash

#: A refused join (the room we were in is ours again).
_JOIN_REFUSALS = frozenset({ErrorCode.INVALID_ROOM, ErrorCode.TOO_MANY_ROOMS, ErrorCode.BANNED_FROM_ROOM,
                            ErrorCode.INVITE_ONLY, ErrorCode.ROOM_FULL, ErrorCode.KEY_NEEDED})

__all__ = ["ClientSession", "RoomView", "Emit", "Request", "Settle", "End", "SessionAction", "FATAL_CODES"]

#: Errors that end the session for good: retrying by itself cannot help (or, for a kick,
#: must not: the person may come back by hand with /reconnect).
FATAL_CODES = frozenset({
    ErrorCode.VERSION_MISMATCH, ErrorCode.INVALID_NICK, ErrorCode.AUTH_FAILED, ErrorCode.AUTH_REQUIRED,
    ErrorCode.KICKED, ErrorCode.BANNED,
})

#: A hole is fetched this many messages at a time.
FILL_PAGE = 100


@dataclass(frozen=True, slots=True)
class Emit:
    event: object


@dataclass(frozen=True, slots=True)
class Request:
    message: Message


@dataclass(frozen=True, slots=True)
class Settle:
    id: str
    status: str  # "acked" | "refused"
    error: str = ""
    code: str | None = None  # the error's code (None: acked): some mean "not now", not "no"


@dataclass(frozen=True, slots=True)
class End:
    why: str
    fatal: bool = False
    elsewhere: bool = False  # this server cannot serve now: another of the list may (a cluster's)


SessionAction = Emit | Request | Settle | End


@dataclass
class RoomView:
    """One room we are in, as far as we know.  ``members`` is replaced, never mutated."""

    name: str
    topic: str = ""
    members: dict[str, MemberInfo] = field(default_factory=dict)
    member_count: int = 0


@dataclass
class _Replay:
    """A resumed welcome's promise: ``expected`` messages follow in replay frames, and
    the room's newest message is ``upto``."""

    key: str
    room: str
    expected: int
    upto: int
    got: int = 0


@dataclass
class _Fill:
    """A hole being fetched in ``room``, through ``upto``; live chats wait in ``held``."""

    room: str
    upto: int
    held: list[Chat] = field(default_factory=list)


class ClientSession:
    """The client's view of its session.  Changed by the network thread only; the UI
    reads the plain attributes (``members`` is replaced, never mutated, so a reader
    never sees it half-changed)."""

    def __init__(self, nick: str, room: str = "") -> None:
        self.server = ""
        self.nick = nick
        self.wanted_nick = nick  # what we ask for at the next hello
        #: The room we talk in unless told otherwise: the welcome's, then the newest joined.
        self.room = room
        #: Every room we are in (folded name -> view), in joining order.
        self.rooms: dict[str, RoomView] = {}
        self.limits: dict[str, int] = {}
        self.version = ""  # the server's protocol version
        self.resume_token: str | None = None
        self.resumed = False  # whether the last (re)connection resumed our session
        self.away: str | None = None  # our own away message (None: here)
        self.last_seq: dict[str, int] = {}  # folded room name -> newest sequence number seen
        self._fills: dict[str, _Fill] = {}
        self._replays: dict[str, _Replay] = {}
        self._return_to = ""  # folded: the room to be current again once it is back
        self._before_join = ""  # the current room before a join we asked for
        self.keys = RoomKeys()  # keys the user gave for rooms (1.5)

    # The current room's view, for front ends that show one room.
    @property
    def _current(self) -> RoomView:
        return self.rooms.get(fold(self.room)) or RoomView(self.room)

    @property
    def topic(self) -> str:
        return self._current.topic

    @property
    def members(self) -> dict[str, MemberInfo]:
        return self._current.members

    @property
    def member_count(self) -> int:
        return self._current.member_count

    def view(self, room: str) -> RoomView | None:
        """The room called ``room`` if we are in it."""
        return self.rooms.get(fold(room))

    def seen(self) -> dict[str, int]:
        """Room name -> newest sequence number seen, for every room we are in (a resume)."""
        return {v.name: self.last_seq[key] for key, v in self.rooms.items() if key in self.last_seq}

    def joining(self, room: str) -> None:
        """We asked to join ``room``: from now on it is the room we talk in, as the
        server will have it by the time it reads what we say next (a refusal puts
        the room we were in back)."""
        self._before_join = self.room
        self.room = without_hash(room)

    # ------------------------------------------------------------------ the welcome

    def welcomed(self, welcome: Welcome) -> list[SessionAction]:
        """A (re)connection was welcomed.  Returns what to do: a fetch, if a resume's
        replay will be empty but messages are missing; joins for the rooms we were in,
        if the session was not kept."""
        before = [v.name for key, v in self.rooms.items() if key != fold(welcome.room)]
        # The room we talked in stays the current one when it comes back (resumed, or rejoined).
        self._return_to = fold(self.room) if self.room and fold(self.room) != fold(welcome.room) else ""
        self.server, self.nick, self.room = welcome.server, welcome.nick, welcome.room
        self.rooms = {}
        if welcome.room:
            self.rooms[fold(welcome.room)] = RoomView(welcome.room, welcome.topic, {m.nick: m for m in welcome.members},
                                                      welcome.member_count or len(welcome.members))
        self.limits = dict(welcome.limits)
        self.version = welcome.version
        self.wanted_nick = welcome.nick
        self.resume_token = welcome.resume_token
        self.resumed = welcome.resumed
        self._fills.clear()
        self._replays.clear()
        self._saw(welcome.history)
        if not welcome.resumed:
            return self._afresh(welcome, before)
        # The missed messages follow in replay frames; we are current once we have
        # welcome.last_seq.  What the replay does not hold, we fetch (see _Fill).  The
        # session's other rooms follow as resumed ``joined``, each with its own replay.
        return self._expect_replay(welcome.room, welcome.missed or 0, welcome.last_seq) if welcome.room else []

    def _afresh(self, welcome: Welcome, before: list[str]) -> list[SessionAction]:
        """A new session (the server restarted, or the grace ran out): back where we
        were, and away again if we were (the server forgot both)."""
        if welcome.room:
            self._saw_up_to(welcome.room, welcome.last_seq)
        actions: list[SessionAction] = [Request(Join(room=name)) for name in before]
        if self.away is not None:
            actions.append(Request(Away(message=self.away)))
        return actions

    def _expect_replay(self, room: str, missed: int, upto: int) -> list[SessionAction]:
        self._replays[fold(room)] = _Replay(fold(room), room, missed, upto)
        return [] if missed else self._replay_done(fold(room))

    # ------------------------------------------------------------------ messages

    def receive(self, msg: Message) -> list[SessionAction]:
        """A message from the server (file messages excepted: see transfers.py)."""
        special = _SPECIAL.get(type(msg))
        if special is not None:
            return special(self, msg)
        if isinstance(msg, Crowd) and self.nick in msg.joined:
            msg = _without_me(msg, self.nick)  # we know we joined: the welcome said so
        actions = self._track(msg)
        if isinstance(msg, Crowd) and not (msg.joined_count or msg.left_count):
            return actions
        return [Emit(msg), *actions]

    def _challenge(self, msg: Challenge) -> list[SessionAction]:
        """A room's key is asked for (1.5): proved with the key the user gave, if any
        (the ``key_needed`` error before it has said what to do otherwise)."""
        join = self.keys.answer(msg) if msg.room else None
        return [Request(join)] if join is not None else []

    def _error(self, msg: Error) -> list[SessionAction]:
        if msg.id is None and msg.code in _JOIN_REFUSALS and self._before_join:
            self.room, self._before_join = self._before_join, ""  # our join was refused
        actions: list[SessionAction] = []
        if msg.id is not None:
            actions.append(Settle(msg.id, "refused", msg.message, msg.code))  # if it was ours
        actions.append(Emit(msg))
        if msg.fatal:
            text = msg.message + (" (/reconnect to come back)" if msg.code == ErrorCode.KICKED else "")
            actions.append(End(text, fatal=msg.code in FATAL_CODES, elsewhere=msg.code == ErrorCode.UNAVAILABLE))
        return actions

    def _track(self, msg: Message) -> list[SessionAction]:
        """Where we are: rooms, topics, members.  Returns what to do (a resumed room's fetch)."""
        if isinstance(msg, Joined):
            return self._joined(msg)
        if isinstance(msg, Parted):
            self.rooms.pop(fold(msg.room), None)
            if fold(msg.room) == fold(self.room):
                self.room = next(reversed(self.rooms.values())).name if self.rooms else ""
            return []
        view = self.rooms.get(fold(getattr(msg, "room", None) or ""))
        if isinstance(msg, Presence):
            self._own(msg)
            if view is not None:
                self._presence(view, msg)
        elif view is not None:
            _view_changed(view, msg)
        return []

    def _own(self, p: Presence) -> None:
        """Our own nick and away state (told once per room, or alone in no room)."""
        if p.nick != self.nick:
            return
        if p.event is PresenceEvent.NICK and p.new_nick:
            self.nick = self.wanted_nick = p.new_nick
        elif p.event in (PresenceEvent.AWAY, PresenceEvent.BACK):
            self.away = p.message if p.event is PresenceEvent.AWAY else None

    def _joined(self, msg: Joined) -> list[SessionAction]:
        if not self.keys.proved(msg):
            return [Emit(Notice(text=f"{msg.room}: the server did not prove that it knows the room's key -- "
                                     "it may not be the server you think")), *self._joined_room(msg)]
        return self._joined_room(msg)

    def _joined_room(self, msg: Joined) -> list[SessionAction]:
        key = fold(msg.room)
        self.rooms[key] = RoomView(msg.room, msg.topic, {m.nick: m for m in msg.members},
                                   msg.member_count or len(msg.members))
        if self._return_to == key or (not self._return_to and not msg.resumed):
            self.room, self._return_to, self._before_join = msg.room, "", ""
        if msg.resumed:  # a room of our resumed session: its replay follows
            return self._expect_replay(msg.room, msg.missed or 0, msg.last_seq)
        self._saw(msg.history)
        self._saw_up_to(msg.room, msg.last_seq)
        if not speaks(self.version, SEVERAL_ROOMS):  # an older server moved us
            self.rooms = {key: self.rooms[key]}
        return []

    def _presence(self, view: RoomView, p: Presence) -> None:
        # Copy-on-write: the UI thread may be iterating the dict it read a moment ago.
        members = dict(view.members)
        if p.event is PresenceEvent.JOIN:
            members[p.nick] = MemberInfo(nick=p.nick)
            view.member_count += 1
        elif p.event is PresenceEvent.LEAVE:
            members.pop(p.nick, None)
            view.member_count = max(len(members), view.member_count - 1)
        elif p.event is PresenceEvent.NICK and p.new_nick:
            info = members.pop(p.nick, MemberInfo(nick=p.nick))
            members[p.new_nick] = MemberInfo(nick=p.new_nick, away=info.away, op=info.op)
        elif p.event in (PresenceEvent.AWAY, PresenceEvent.BACK):
            info = members.get(p.nick, MemberInfo(nick=p.nick))
            members[p.nick] = MemberInfo(nick=p.nick, idle=info.idle, op=info.op,
                                         away=p.message if p.event is PresenceEvent.AWAY else None)
        view.members = members

    # ------------------------------------------------------------------ exactly once, in order

    def _chat(self, chat: Chat) -> list[SessionAction]:
        """Sequence numbers have no holes: a chat that skips some (a bounded replay, a
        server bug) is held while the missing ones are fetched; one already shown is not
        shown again.  Defence in depth."""
        key = fold(chat.room)
        fill = self._fills.get(key)
        if fill is not None:
            fill.held.append(chat)
            return []
        last = self.last_seq.get(key)
        if last is not None and chat.seq <= last:
            return []  # already shown (a fetched page held it too): exactly once
        if last is not None and chat.seq > last + 1:
            actions = self._start_fill(key, chat.room, chat.seq - 1)
            self._fills[key].held.append(chat)
            return actions
        self._saw((chat,))
        return [Emit(chat)]

    def _history(self, page: History) -> list[SessionAction]:
        key = fold(page.room)
        if key in self._fills and not page.replay:
            filled = self._filled(page)
            if filled is not None:
                return filled
        self._saw(page.messages)
        actions: list[SessionAction] = [Emit(page)]
        replay = self._replays.get(key)
        if page.replay and replay is not None:
            replay.got += len(page.messages)
            if replay.got >= replay.expected:
                actions += self._replay_done(key)
        return actions

    def _replay_done(self, key: str) -> list[SessionAction]:
        """A room's resume replay is in: if it did not reach the room's newest message
        (it is bounded), fetch the rest before showing anything live."""
        replay = self._replays.pop(key, None)
        if replay is not None and self.last_seq.get(replay.key, 0) < replay.upto:
            return self._start_fill(replay.key, replay.room, replay.upto)
        return []

    def _start_fill(self, key: str, room: str, upto: int) -> list[SessionAction]:
        fill = self._fills.setdefault(key, _Fill(room, upto))
        fill.upto = max(fill.upto, upto)
        return [self._fetch(key)]

    def _fetch(self, key: str) -> Request:
        fill = self._fills[key]
        return Request(FetchHistory(room=fill.room, after=self.last_seq.get(key, 0), limit=FILL_PAGE))

    def _filled(self, page: History) -> list[SessionAction] | None:
        """``page`` answers our fetch of a hole: show its messages as live ones, then
        what was held; fetch more if the hole is not closed yet.  None: not ours (an
        older page, paging back)."""
        key = fold(page.room)
        fill = self._fills[key]
        last = self.last_seq.get(key, 0)
        if page.messages and page.messages[-1].seq <= last:
            return None
        actions: list[SessionAction] = []
        for chat in page.messages:
            if chat.seq > self.last_seq.get(key, 0):
                self._saw((chat,))
                actions.append(Emit(chat))
        now_at = self.last_seq.get(key, 0)
        if page.messages and now_at < fill.upto and not page.complete:
            return actions + [self._fetch(key)]
        # Closed -- or what is missing is no longer in the server's history (retention):
        # then it is gone for good, and we go on from the end of the hole.
        del self._fills[key]
        if now_at < fill.upto:
            self.last_seq[key] = fill.upto
        for chat in sorted(fill.held, key=lambda c: c.seq):
            actions += self._chat(chat)
        return actions

    def _saw_up_to(self, room: str, seq: int) -> None:
        """We (re)joined ``room`` where it is at ``seq``: what came before is history,
        not something we missed.  Set, not raised: a server whose history was wiped
        numbers from 1 again."""
        self.last_seq[fold(room)] = seq

    def _saw(self, chats: Iterable[Chat]) -> None:
        for chat in chats:
            key = fold(chat.room)
            if chat.seq > self.last_seq.get(key, 0):
                self.last_seq[key] = chat.seq


def _without_me(crowd: Crowd, nick: str) -> Crowd:
    joined = tuple(n for n in crowd.joined if n != nick)
    return msgspec.structs.replace(crowd, joined=joined,
                                   joined_count=crowd.joined_count - (len(crowd.joined) - len(joined)))


def _view_changed(view: RoomView, msg: Message) -> None:
    """A room's members or topic, as the server says they are now."""
    if isinstance(msg, Crowd):
        members = dict(view.members)  # copy-on-write, as for presence
        for nick in msg.left:
            members.pop(nick, None)
        view.members = members
        view.member_count = msg.member_count
    elif isinstance(msg, Topic):
        view.topic = msg.topic
    elif isinstance(msg, Members):
        view.members = {m.nick: m for m in msg.members}
        view.member_count = msg.member_count or len(msg.members)
    elif isinstance(msg, RoomModesInfo):
        view.members = with_roles(view.members, msg) or view.members


#: Messages with a meaning of their own (``ClientSession.receive``); the rest change
#: where we are and are reported.
_SPECIAL: dict[type, Callable[[ClientSession, Any], list[SessionAction]]] = {
    Challenge: ClientSession._challenge,
    Ping: lambda session, msg: [Request(Pong(token=msg.token))],
    Pong: lambda session, msg: [],
    Ack: lambda session, msg: [Settle(msg.id, "acked"), Emit(msg)],
    Typing: lambda session, msg: [],  # (the terminal client shows no typing yet)
    Error: ClientSession._error,
    Bye: lambda session, msg: [Emit(msg), End(msg.reason or "the server said goodbye")],
    Chat: ClientSession._chat,
    History: ClientSession._history,
}
