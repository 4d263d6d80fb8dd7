"""What the client knows of its session, and what each server message means for it.
No I/O: messages in, actions out.

``connection.py`` runs the network thread and carries the actions out:

* :class:`Emit` -- report this event to the UI;
* :class:`Request` -- send this message to the server;
* :class:`Settle` -- our outgoing message ``id`` was acknowledged or refused;
* :class:`End` -- the connection is over (``fatal``: do not reconnect by yourself).

Kept here: where we are (server, nick, room, topic, members), the resume token, the
newest sequence number seen per room, the resume replay's promise and the holes being
fetched -- so that every room message is shown exactly once, in order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from chatroom.protocol import (
    Ack,
    Bye,
    Chat,
    Crowd,
    Error,
    ErrorCode,
    FetchHistory,
    History,
    Joined,
    MemberInfo,
    Members,
    Message,
    Ping,
    Pong,
    Presence,
    PresenceEvent,
    Topic,
    Welcome,
)
from chatroom.text import fold

__all__ = ["ClientSession", "Emit", "Request", "Settle", "End", "SessionAction", "FATAL_CODES"]

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


@dataclass(frozen=True, slots=True)
class End:
    why: str
    fatal: bool = False


SessionAction = Emit | Request | Settle | End


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
        self.room = room
        self.topic = ""
        self.members: dict[str, MemberInfo] = {}
        self.member_count = 0
        self.limits: dict[str, int] = {}
        self.resume_token: str | None = None
        self.resumed = False  # whether the last (re)connection resumed our session
        self.last_seq: dict[str, int] = {}  # folded room name -> newest sequence number seen
        self._fills: dict[str, _Fill] = {}
        self._replay: _Replay | None = None

    # ------------------------------------------------------------------ the welcome

    def welcomed(self, welcome: Welcome) -> list[SessionAction]:
        """A (re)connection was welcomed.  Returns what to do (a fetch, if a resume's
        replay will be empty but messages are missing)."""
        self.server, self.nick, self.room, self.topic = welcome.server, welcome.nick, welcome.room, welcome.topic
        self.members = {m.nick: m for m in welcome.members}
        self.member_count = welcome.member_count or len(welcome.members)
        self.limits = dict(welcome.limits)
        self.wanted_nick = welcome.nick
        self.resume_token = welcome.resume_token
        self.resumed = welcome.resumed
        self._fills.clear()
        self._replay = None
        self._saw(welcome.history)
        if not welcome.resumed:
            self._saw_up_to(welcome.room, welcome.last_seq)
            return []
        # The missed messages follow in replay frames; we are current once we have
        # welcome.last_seq.  What the replay does not hold, we fetch (see _Fill).
        self._replay = _Replay(fold(welcome.room), welcome.room, welcome.missed or 0, welcome.last_seq)
        return [] if welcome.missed else self._replay_done()

    # ------------------------------------------------------------------ messages

    def receive(self, msg: Message) -> list[SessionAction]:
        """A message from the server (file messages excepted: see transfers.py)."""
        if isinstance(msg, Ping):
            return [Request(Pong(token=msg.token))]
        if isinstance(msg, Pong):
            return []
        if isinstance(msg, Ack):
            return [Settle(msg.id, "acked"), Emit(msg)]
        if isinstance(msg, Error):
            return self._error(msg)
        if isinstance(msg, Bye):
            return [Emit(msg), End(msg.reason or "the server said goodbye")]
        if isinstance(msg, Chat):
            return self._chat(msg)
        if isinstance(msg, History):
            return self._history(msg)
        if isinstance(msg, Crowd) and self.nick in msg.joined:
            msg = _without_me(msg, self.nick)  # we know we joined: the welcome said so
        self._track(msg)
        if isinstance(msg, Crowd) and not (msg.joined_count or msg.left_count):
            return []
        return [Emit(msg)]

    def _error(self, msg: Error) -> list[SessionAction]:
        actions: list[SessionAction] = []
        if msg.id is not None:
            actions.append(Settle(msg.id, "refused", msg.message))  # if it was ours
        actions.append(Emit(msg))
        if msg.fatal:
            text = msg.message + (" (/reconnect to come back)" if msg.code == ErrorCode.KICKED else "")
            actions.append(End(text, fatal=msg.code in FATAL_CODES))
        return actions

    def _track(self, msg: Message) -> None:
        """Where we are: room, topic, members."""
        if isinstance(msg, Joined):
            self.room, self.topic = msg.room, msg.topic
            self._saw(msg.history)
            self._saw_up_to(msg.room, msg.last_seq)
            self.members = {m.nick: m for m in msg.members}
            self.member_count = msg.member_count or len(msg.members)
        elif isinstance(msg, Presence) and msg.room == self.room:
            self._presence(msg)
        elif isinstance(msg, Crowd) and msg.room == self.room:
            members = dict(self.members)  # copy-on-write, as for presence
            for nick in msg.left:
                members.pop(nick, None)
            self.members = members
            self.member_count = msg.member_count
        elif isinstance(msg, Topic) and msg.room == self.room:
            self.topic = msg.topic
        elif isinstance(msg, Members) and msg.room == self.room:
            self.members = {m.nick: m for m in msg.members}
            self.member_count = msg.member_count or len(msg.members)

    def _presence(self, p: Presence) -> None:
        # Copy-on-write: the UI thread may be iterating the dict it read a moment ago.
        members = dict(self.members)
        if p.event is PresenceEvent.JOIN:
            members[p.nick] = MemberInfo(nick=p.nick)
            self.member_count += 1
        elif p.event is PresenceEvent.LEAVE:
            members.pop(p.nick, None)
            self.member_count = max(len(members), self.member_count - 1)
        elif p.event is PresenceEvent.NICK and p.new_nick:
            info = members.pop(p.nick, MemberInfo(nick=p.nick))
            members[p.new_nick] = MemberInfo(nick=p.new_nick, away=info.away, op=info.op)
            if p.nick == self.nick:
                self.nick = self.wanted_nick = p.new_nick
        elif p.event in (PresenceEvent.AWAY, PresenceEvent.BACK):
            info = members.get(p.nick, MemberInfo(nick=p.nick))
            members[p.nick] = MemberInfo(nick=p.nick, idle=info.idle, op=info.op,
                                         away=p.message if p.event is PresenceEvent.AWAY else None)
        self.members = members

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
        replay = self._replay
        if page.replay and replay is not None and key == replay.key:
            replay.got += len(page.messages)
            if replay.got >= replay.expected:
                actions += self._replay_done()
        return actions

    def _replay_done(self) -> list[SessionAction]:
        """The resume replay is in: if it did not reach the room's newest message (it is
        bounded), fetch the rest before showing anything live."""
        replay, self._replay = self._replay, None
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
