"""Letting people in, as a handler does it: the guessing gate (which waits), then the
admission rules of ``chatroom.server.entry`` under the hub lock, and what they decide
sent.  A part of the handler, for every door."""

from __future__ import annotations

import logging
import math
import secrets
import select
import time
from typing import Any

from chatroom.errors import Refused
from chatroom.protocol import (
    ErrorCode,
    Hello,
    Notice,
)
from chatroom.server.chat_path import claimed
from chatroom.server.entry import Entrance, Entry, seen_rooms
from chatroom.server.handler_base import HandlerBase
from chatroom.server.members import owner_of
from chatroom.server.session import (
    Admit,
    Checked,
    CloseReason,
)
from chatroom.text import clean_line

__all__ = ["Admission"]


log = logging.getLogger("chatroom.server")


_poll = getattr(select, "poll", None)
_POLLRDHUP = getattr(select, "POLLRDHUP", 0)  # (Linux) the peer sent its last byte
_GONE, _FINISHED, _OPEN = object(), object(), object()


def socket_state(sock: Any) -> object:
    """Whether a socket's peer is still there, without reading what it sent: ``_GONE``
    (reset, or closed both ways), ``_FINISHED`` (it will send nothing more, but may
    still read) or ``_OPEN`` (also when it cannot be told: no poll(), on Windows)."""
    if _poll is None:
        return _OPEN
    poller = _poll()
    try:
        poller.register(sock, select.POLLIN | _POLLRDHUP)  # hang-ups and errors always count
        events = 0
        for _, ev in poller.poll(0):
            events |= ev
    except (OSError, ValueError):
        return _GONE
    if events & (select.POLLHUP | select.POLLERR):
        return _GONE
    return _FINISHED if events & _POLLRDHUP else _OPEN


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
        look-alike) banned?  The refusal to give, or None (``Entrance.refusal``)."""
        refusal = Entrance.refusal(self.server.hub.state.bans, nick, time.time())  # reads only: no lock needed
        if refusal is not None:
            log.info("%s: refused %s: banned", self.conn.address, clean_line(nick), extra=self.about("refused_banned"))
        return refusal

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
        return socket_state(self.request)

    def ghost_leaving(self, nick: str, timeout: float = 1.0) -> bool:
        """``nick`` was refused as taken: if its holder's peer has already hung up (its
        EOF waits for its own thread to read it), wait for that thread to let the nick
        go -- as a server with one event loop would have read the EOF first -- and say
        whether it did.  (Someone who reconnects at once after closing gets the nick.)"""
        hub = self.server.hub
        with hub.lock:
            holder = hub.state.nicks.holder(nick)
            conn = holder.sink if holder is not None else None
        if conn is None or conn is self.conn or socket_state(conn.sock) is _OPEN:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with hub.lock:
                if hub.state.nicks.holder(nick) is not holder:
                    return True
            if self.server.stopped.wait(0.01):  # (polling its thread's progress, bounded)
                return False
        return False

    def admit(self, msg: Hello, proof: str | None = None, retried: bool = False) -> None:
        """A new member: the rules decide (``Entrance.admit``), the handler sends."""
        conn, server = self.conn, self.server
        token = secrets.token_urlsafe(18)
        try:
            if msg.room:
                server.chat.look_ahead(room=msg.room)
            with claimed(server.chat, msg.nick, owner_of(conn.id, token)), server.hub.locked(self.batch) as state:
                entry = server.entrance().admit(state, conn.id, msg, conn.address, time.time(), token, proof)
                self._enter(entry)
        except Refused as exc:
            if exc.code == ErrorCode.NICK_TAKEN and not retried and self.ghost_leaving(msg.nick):
                self.admit(msg, proof, retried=True)
                return
            log.info("%s: hello refused: %s", conn.address, exc.message, extra=self.about("hello_refused"))
            self.send_error(exc.code, exc.message, suggestion=exc.suggestion)
            return
        log.info("%s joined %s", self.describe(), entry.first_room, extra=self.about("joined", entry.first_room))

    def resume(self, msg: Hello, proof: str | None = None) -> None:
        """Hand a held (or ghosted) session to this connection, with what it missed
        (``Entrance.resume``)."""
        conn, server = self.conn, self.server
        token = msg.resume or ""
        seen = seen_rooms(msg)
        self._floors(msg, seen)
        if token not in server.hub.state.sessions:  # (a dict read) another server's, maybe
            server.chat.adopt(token, conn.id, conn.address, self.batch)
        self._look_ahead(seen)
        with server.hub.locked(self.batch) as state:
            try:
                entry = server.entrance().resume(state, conn.id, msg, conn.address, time.time(), proof)
            except Refused as exc:
                log.info("%s: resume refused", conn.address, extra=self.about("resume_refused"))
                self.send_error(exc.code, exc.message)
                return
            self._enter(entry)
        log.info("%s resumed in %d room(s) (%d missed messages replayed)", self.describe(), entry.rooms,
                 entry.replayed, extra=self.about("resumed"))

    def _enter(self, entry: Entry) -> None:
        """Under the lock: the member is this connection's (a resumed session's old
        connection ends quietly: no leave for the others), its frames go first, then
        the others hear of it."""
        conn = self.conn
        if entry.ghost is not None and entry.ghost is not conn:
            entry.ghost.member = None  # its reader will end quietly
            entry.ghost.close(CloseReason.REPLACED)
        entry.member.sink = conn
        conn.member = entry.member
        conn.session.admitted()
        for out in entry.frames:
            self.batch.queue(conn.me, out)
        self.server.hub.deliver(entry.deliveries, self.batch)

    def _look_ahead(self, seen: dict[str, int]) -> None:
        """Before the lock: what the rooms of the session are, where they are not here
        yet (another server's session; a store's rooms nobody is in)."""
        try:
            for name in seen:
                self.server.chat.look_ahead(room=name)
        except Refused:
            pass  # read again under the lock, which says why

    def _floors(self, msg: Hello, seen: dict[str, int]) -> None:
        """What the client has seen, as a floor for the rooms' numbering (a store that
        lost its newest messages must not give their numbers again)."""
        for room, seq, skipped in self.server.chat.floors(self.batch, seen) if seen else ():
            log.warning("%s had seen message %d of %s, past the last one stored: the store lost its newest %d "
                        "message(s) (a crash with Redis's appendfsync everysec, a power cut with --sync normal?); "
                        "the numbering goes on after it", self.describe(), seq, room, skipped,
                        extra=self.about("log_rewound", room))
