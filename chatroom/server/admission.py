"""Who gets in, and how: the admission rules of every door (a part of the handler)."""

from __future__ import annotations

import logging
import math
import secrets
import select
import time
from typing import TYPE_CHECKING

from chatroom.errors import Refused
from chatroom.protocol import (
    MAX_ROOMS,
    PROTOCOL_VERSION,
    SEVERAL_ROOMS,
    ErrorCode,
    Hello,
    Joined,
    Notice,
    Welcome,
    speaks,
)
from chatroom.server.chat_path import claimed
from chatroom.server.fitting import REPLAY_MAX_MESSAGES, how_long, replay_frames
from chatroom.server.handler_base import HandlerBase
from chatroom.server.members import Delivery, Member, Room, owner_of
from chatroom.server.session import (
    Admit,
    Checked,
    CloseReason,
)
from chatroom.text import clean_line, fold, without_hash

if TYPE_CHECKING:
    from chatroom.server.room import ChatState
    from chatroom.server.wire import Outgoing

__all__ = ["Admission"]


log = logging.getLogger("chatroom.server")


_poll = getattr(select, "poll", None)
_POLLRDHUP = getattr(select, "POLLRDHUP", 0)  # (Linux) the peer sent its last byte
_GONE, _FINISHED, _OPEN = object(), object(), object()


class Admission(HandlerBase):
    """The part of a connection's handler that decides who gets in: bans, the guessing
    throttle (one gate for every secret, every door), a new session or a resumed one
    with what it missed.  A mixin of :class:`~chatroom.server.handler.ChatHandler`."""

    def on_admit(self, event: Admit) -> None:
        """The session accepted a hello: the room's bans, then admit or resume."""
        conn, hello = self.conn, event.hello
        banned = self.nick_ban(hello.nick)
        if banned is not None:
            self.send_error(ErrorCode.BANNED, banned, fatal=True)
            conn.close(CloseReason.BANNED)
        elif hello.resume:
            self.resume(hello, proof=event.proof)
        else:
            self.admit(hello, proof=event.proof)

    def nick_ban(self, nick: str) -> str | None:
        """Every door's one question before it admits ``nick``: is that person (or a
        look-alike) banned?  The refusal to give, or None.  (The address was asked
        about when the connection came, before any door.)"""
        ban = self.server.hub.state.bans.for_nick(nick, time.time())  # reads only: no lock needed
        if ban is None:
            return None
        log.info("%s: refused %s: banned", self.conn.address, clean_line(nick), extra=self.about("refused_banned"))
        return f"you are banned from this server{how_long(ban)}"

    def on_checked(self, event: Checked) -> None:
        """A password proof was checked: this address waits its turn if it has been
        guessing, then hears the answer."""
        if self.gate("password", event.right) is None:
            return
        if type(event.then) is Admit:
            self.on_admit(event.then)
        else:
            self.act(event.then)

    def gate(self, what: str, right: bool) -> bool | None:
        """The one gate every door's secrets pass -- the room password (a framed proof,
        IRC's ``PASS``) and the operator token (``op``, ``OPER``): a wrong one counts
        against the address, and an address that has been guessing waits its turn
        before any answer, right or wrong alike (``AuthGuard``: at most one answer per
        ``max_delay`` per address, however many connections or doors it uses).
        Returns ``right``, or None when the client left or the server stopped while
        it waited (then nothing is to be answered)."""
        if not right:
            self.server.auth_guard.failed(self.conn.ip, time.monotonic())
            log.warning("wrong %s from %s (%s)", what, self.conn.ip, self.describe(), extra=self.about("wrong_secret"))
        if not self.wait_turn(what):
            return None
        return right

    def wait_turn(self, what: str) -> bool:
        """Before checking a password or operator token: if this address has been
        guessing, wait for this attempt's turn (see ``AuthGuard``) -- right and wrong
        answers alike, so the timing says nothing.  The client hears why (at least every
        5 s, so that its handshake does not time out).  False if the server stopped or
        the client went away meanwhile (a guesser that opens a connection per attempt
        and hangs up must not leave a thread waiting for each)."""
        conn, server = self.conn, self.server
        wait = server.auth_guard.schedule(conn.ip, time.monotonic())
        if wait <= 0:
            return True
        conn.session.waited += wait
        log.info("%s: throttled %s attempt, answered in %.1f s", conn.address, what, wait,
                 extra=self.about("throttled"))
        deadline = time.monotonic() + wait
        told, probed = -math.inf, False
        while (left := deadline - time.monotonic()) > 0:
            if time.monotonic() - told >= 5.0:
                told = time.monotonic()
                self.send(Notice(text=f"too many wrong answers from your address lately: your {what} is checked "
                                      f"in {math.ceil(left)} s"))
                self.flush_batch()
            if server.stopped.wait(min(left, 1.0)):
                return False
            peer = self.peer_state()
            if peer is _GONE:
                log.info("%s: gone before its %s was checked", conn.address, what)
                return False
            if peer is _FINISHED and not probed:
                # It sent its last byte: closed, or only half-closed and still reading?
                # The next notice tells (a closed socket answers it with a reset).
                told, probed = -math.inf, True
        return True

    def peer_state(self) -> object:
        """Whether the peer is still there, without reading what it sent: ``_GONE``
        (reset, or closed both ways), ``_FINISHED`` (it will send nothing more, but may
        still read) or ``_OPEN``."""
        if self.conn.outbox.closed:  # a send to it failed
            return _GONE
        if _poll is None:  # no poll() (Windows): wait the whole turn
            return _OPEN
        poller = _poll()
        poller.register(self.request, select.POLLIN | _POLLRDHUP)  # hang-ups and errors always count
        try:
            events = 0
            for _, ev in poller.poll(0):
                events |= ev
        except (OSError, ValueError):
            return _GONE
        if events & (select.POLLHUP | select.POLLERR):
            return _GONE
        return _FINISHED if events & _POLLRDHUP else _OPEN

    def admit(self, msg: Hello, proof: str | None = None) -> None:
        conn, server = self.conn, self.server
        hub = server.hub
        token = secrets.token_urlsafe(18)
        try:
            if msg.room:
                server.chat.look_ahead(room=msg.room)
            with claimed(server.chat, msg.nick, owner_of(conn.id, token)), hub.locked(self.batch) as state:
                member, joined, deliveries = state.admit(
                    conn.id, msg.nick, conn.address, time.time(), msg.room, token=token, crowd=speaks(msg.version, 2),
                    several=speaks(msg.version, SEVERAL_ROOMS),
                )
                self._welcome(member, joined, deliveries, token, proof)
        except Refused as exc:
            log.info("%s: hello refused: %s", conn.address, exc.message, extra=self.about("hello_refused"))
            self.send_error(exc.code, exc.message, suggestion=exc.suggestion)
            return
        log.info("%s joined %s", self.describe(), joined.room, extra=self.about("joined", joined.room))

    def _welcome(self, member: Member, joined: Joined, deliveries: list[Delivery], token: str,
                 proof: str | None) -> None:
        """A new member is in (under the lock): its connection, the welcome, the news."""
        conn, server, hub = self.conn, self.server, self.server.hub
        member.sink = conn
        conn.member = member
        conn.session.admitted()
        welcome = Welcome(
            version=PROTOCOL_VERSION,
            server=server.display_name,
            nick=member.nick,
            room=joined.room,
            topic=joined.topic,
            members=joined.members,
            member_count=joined.member_count,
            history=joined.history,
            last_seq=joined.last_seq,
            limits=server.limits,
            resume_token=token,
            proof=proof,
        )
        self.send_fitted(welcome)
        hub.deliver(deliveries, self.batch)

    def resume(self, msg: Hello, proof: str | None = None) -> None:
        """Hand a held (or ghosted) session to this connection, with what it missed: the
        welcome for its first room, then (1.3) a resumed ``joined`` for each other room,
        each followed by its replay."""
        conn, server, hub = self.conn, self.server, self.server.hub
        token = msg.resume or ""
        self._floors(msg)
        if token not in hub.state.sessions:  # (a dict read) another server's, maybe
            server.chat.adopt(token, conn.id, conn.address, self.batch)
        with hub.locked(self.batch) as state:
            try:
                member, ghost, deliveries = state.resume(
                    msg.resume or "", conn.id, conn.address, time.time(), crowd=speaks(msg.version, 2),
                    several=speaks(msg.version, SEVERAL_ROOMS),
                )
            except Refused as exc:
                log.info("%s: resume refused", conn.address, extra=self.about("resume_refused"))
                self.send_error(exc.code, exc.message)
                return
            if ghost is not None and ghost is not conn:
                ghost.member = None  # its reader will end quietly: no leave for the others
                ghost.close(CloseReason.REPLACED)
            member.sink = conn
            conn.member = member
            conn.session.admitted()
            rooms = list(member.rooms.values())
            replayed = self._replays(state, rooms, msg)
            self._welcome_back(member, rooms, replayed, proof)
            hub.deliver(deliveries, self.batch)
        total = sum(count for _, count in replayed)
        log.info("%s resumed in %d room(s) (%d missed messages replayed)", self.describe(), len(rooms), total,
                 extra=self.about("resumed"))

    def _floors(self, msg: Hello) -> None:
        """What the client has seen, as a floor for the rooms' numbering (a store that
        lost its newest messages must not give their numbers again)."""
        seen = {without_hash(name): seq for name, seq in list((msg.seen or {}).items())[:MAX_ROOMS]}
        for room, seq, skipped in self.server.chat.floors(self.batch, seen) if seen else ():
            log.warning("%s had seen message %d of %s, past the last one stored: the store lost its newest %d "
                        "message(s) (a crash with Redis's appendfsync everysec, a power cut with --sync normal?); "
                        "the numbering goes on after it", self.describe(), seq, room, skipped,
                        extra=self.about("log_rewound", room))

    def _replays(self, state: ChatState, rooms: list[Room], msg: Hello) -> list[tuple[list[Outgoing], int]]:
        """What each room missed since the client's ``last_seq`` / ``seen``, as replay
        frames within one budget for them all (half the outbox): (frames, messages)."""
        config = self.server.config
        seen = {fold(without_hash(name)): seq for name, seq in (msg.seen or {}).items()}
        budget, replayed = config.outbox_limit // 2, []
        for i, room in enumerate(rooms):
            last_seq = seen.get(fold(room.name), msg.last_seq if i == 0 else None)
            missed = state.missed(room, last_seq, REPLAY_MAX_MESSAGES)
            frames, count = replay_frames(room.name, missed, config.max_header, budget)
            budget = max(1, budget - sum(len(f.framed) for f in frames))
            replayed.append((frames, count))
        return replayed

    def _welcome_back(self, member: Member, rooms: list[Room], replayed: list[tuple[list[Outgoing], int]],
                      proof: str | None) -> None:
        """The resumed welcome (its first room), then a resumed ``joined`` for each other
        room; each followed by what it missed, oldest first, before any live message."""
        server, now = self.server, time.time()
        first = rooms[0] if rooms else None
        self.send_fitted(Welcome(
            version=PROTOCOL_VERSION,
            server=server.display_name,
            nick=member.nick,
            room=first.name if first else "",
            topic=first.topic if first else "",
            members=first.member_infos(now) if first else (),
            member_count=len(first.members) if first else 0,
            last_seq=first.next_seq - 1 if first else 0,
            limits=server.limits,
            resume_token=member.token,
            resumed=True,
            proof=proof,
            missed=replayed[0][1] if first else 0,
        ))
        for i, room in enumerate(rooms):
            frames, count = replayed[i]
            if i:
                self.send_fitted(Joined(room=room.name, topic=room.topic, members=room.member_infos(now),
                                        member_count=len(room.members), last_seq=room.next_seq - 1,
                                        resumed=True, missed=count))
            for out in frames:
                self.batch.queue(self.conn.me, out)
