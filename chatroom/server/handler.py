"""One connection's reader: the pump around its protocol state.

``ChatHandler`` reads, feeds the session (``session.py``, no I/O), carries out what it
decides -- admission (``admission.py``), requests (``requests.py``) -- and sends what
that queued.  See ``tcp.py`` for how a message travels."""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import time
from typing import TYPE_CHECKING

from chatroom.errors import Refused
from chatroom.logfmt import about
from chatroom.protocol import (
    Action,
    Error,
    ErrorCode,
    Found,
    History,
    Joined,
    Members,
    Message,
    Say,
    Welcome,
)
from chatroom.server.admission import Admission
from chatroom.server.connection import Connection
from chatroom.server.doors import Door
from chatroom.server.fitting import fitted, how_long
from chatroom.server.hub import Batch
from chatroom.server.members import Member
from chatroom.server.outbox import Outbox
from chatroom.server.pace import keep_pace, worth_waiting
from chatroom.server.requests import CHAT_TYPES, HANDLERS, Requests
from chatroom.server.session import (
    Act,
    Admit,
    Checked,
    CloseReason,
    Event,
    Phase,
    Reply,
)
from chatroom.server.sniff import choose
from chatroom.server.wire import Outgoing

if TYPE_CHECKING:
    from chatroom.server.tcp import ChatServer

__all__ = ["ChatHandler"]


log = logging.getLogger("chatroom.server")


#: How long a closing connection's last frames (an error, a goodbye) may take to leave.
FINAL_FLUSH_SECONDS = 1.0

#: One recv() takes what the kernel has, up to this; a busy sender's frames arrive
#: many to a read and are relayed as one batch.  A reader waits for its next bytes
#: with a 1-byte peek, not in this recv(): a thread blocked in recv(n) holds an n-byte
#: buffer, and most of a big room's members are idle (``ChatHandler.recv_next``).
RECV_SIZE = 64 * 1024


class ChatHandler(Admission, Requests, socketserver.BaseRequestHandler):
    """Reads one client's frames and acts on them.  Runs in its own thread."""

    server: ChatServer
    request: socket.socket

    def __init__(self, request: socket.socket, client_address: tuple[str, int], server: ChatServer,
                 conn: Connection, refusal: ErrorCode | None) -> None:
        """``conn``, registered by the accepting thread (``ChatServer.process_request``),
        or ``refusal``: why not (it is then told, and closed)."""
        self.conn = conn
        self.refusal = refusal
        super().__init__(request, client_address, server)

    def setup(self) -> None:
        if self.request.family in (socket.AF_INET, socket.AF_INET6):  # TLS hands us a socketpair end
            with contextlib.suppress(OSError):  # (gone already: its first read says so, and it ends)
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.tracer = self.server.tracer
        self.batch = Batch(self.tracer, pace=True)
        self.batch.own = self.conn.outbox

    def handle(self) -> None:
        conn = self.conn
        if self.refusal is ErrorCode.SERVER_FULL:
            log.warning("refused %s: server full (%d clients)", conn.address, self.server.config.max_clients,
                        extra=self.about("refused_full"))
            self.send_error(self.refusal, "the server is full, try again later", fatal=True)
        elif self.refusal is ErrorCode.TOO_MANY_CONNECTIONS:
            limit = self.server.config.max_per_address
            log.warning("refused %s: already %d connections from %s", conn.address, limit, conn.ip,
                        extra=self.about("refused_address_limit"))
            self.send_error(self.refusal, f"too many connections from your address (at most {limit}): close one and "
                            "try again", fatal=True)
        elif self.refusal is ErrorCode.UNAVAILABLE:
            self.send_error(self.refusal, "this server is joining its cluster again: connect to another server, or "
                            "to this one in a moment", fatal=True)
        elif self.refusal is not None:
            self.send_error(self.refusal, "the server is shutting down", fatal=True)
        if self.refusal is None:
            ban = self.server.hub.state.bans.for_address(conn.ip, time.time())  # a dict read: no lock needed
            if ban is not None:
                log.info("refused %s: banned", conn.address, extra=self.about("refused_banned"))
                self.send_error(ErrorCode.BANNED, f"your address is banned from this server{how_long(ban)}",
                                fatal=True)
                self.refusal = ErrorCode.BANNED
                self.server.unregister(conn)
        if self.refusal is not None:
            conn.close(CloseReason.REFUSED)
            self.flush_batch()
            return
        log.debug("connection from %s", conn.address)
        try:
            self.read_loop()
        except Exception as exc:  # noqa: BLE001 -- the safety net: never a silent, half-dead connection
            log.error("%s: unexpected internal error, closing: %s: %s", self.describe(), type(exc).__name__, exc)
            log.debug("traceback of that internal error", exc_info=exc)
            with contextlib.suppress(Exception):
                self.send_error(ErrorCode.INTERNAL, "internal server error: closing this connection", fatal=True)
                self.flush_batch()
            conn.close(CloseReason.INTERNAL)

    def read_loop(self) -> None:
        """The first bytes choose the door (``sniff.py``): a browser's and an IRC
        client's connections are served by their door from there on; the rest is the
        framed protocol's pump."""
        door, data = self.sniff()
        if door is not None:
            door.serve(self, data)
            return
        self.pump(data)

    def sniff(self) -> tuple[Door | None, bytes]:
        """Read until the first bytes say which door they came to (TCP may cut them short
        of deciding: ``G``, then ``ET /``).  The door (None: the framed protocol) and the
        bytes read; on EOF or a failed read, the framed pump gets what there is (and
        then sees the end)."""
        doors = self.server.doors
        if not doors:
            return None, b""
        claims = [(door.name, door.claims) for door in doors]
        prefix = b""
        while not self.conn.session.closed:
            try:
                data = self.recv_next(RECV_SIZE)
            except OSError:
                break
            if not data:
                break
            prefix += data
            name = choose(prefix, claims)
            if name is not None:
                return next((door for door in doors if door.name == name), None), prefix
        return None, prefix

    def pump(self, data: bytes) -> None:
        """recv -> session -> act (room, relay) -> flush, until it closes; ``data``:
        what was read already."""
        conn, session = self.conn, self.conn.session
        while not session.closed:
            if not data:
                cut = session.receive_eof()
                if cut:
                    log.info("%s: %s", conn.address, cut)
                break
            tracer = self.tracer
            if tracer is not None:
                tracer.recv(self.peer(), len(data))
            frames, events = session.receive_data(data, time.monotonic())
            if tracer is not None:
                if len(frames) > 1:
                    tracer.note(self.peer(), f"one recv() held {len(frames)} frames: the decoder splits them")
                for frame in frames:
                    tracer.frame_in(self.peer(), frame)
            self.act_all(events)
            self.flush_batch()
            if session.closed:
                break
            del frames, events
            data = b""  # (nothing read is kept while waiting for the next bytes)
            try:
                data = self.recv_next(RECV_SIZE)
            except OSError:
                break

    def finish(self) -> None:
        try:
            self._finish()
        finally:
            self.conn.ended.release()  # (stop() joins this thread by it)

    def _finish(self) -> None:
        conn = self.conn
        session = conn.session
        reason = session.close_reason or CloseReason.LOST
        text = session.close_text
        session.close(reason)
        member = conn.member
        hub = self.server.hub
        with hub.locked(self.batch):  # its transfers end with it (a resume starts afresh)
            hub.deliver(self.server.relay.connection_closed(conn, time.monotonic()), self.batch)
        if member is not None:
            self._leave(member, reason, text)
        self.flush_batch()
        # Let a last error or goodbye leave before the socket closes: the flusher may
        # be writing it.  Bounded: a client that does not read loses the rest (a "too
        # slow" one has nothing left: its outbox was closed when it was dropped).
        conn.outbox.flush()
        deadline = time.monotonic() + FINAL_FLUSH_SECONDS
        while len(conn.outbox) and not conn.outbox.closed and time.monotonic() < deadline:
            self.server.stopped.wait(0.01)
        conn.outbox.close()
        if reason is not CloseReason.LOST:
            self.linger(deadline)
        with hub.lock:
            conn.release()
        if self.refusal is None:
            self.server.unregister(conn)

    def _leave(self, member: Member, reason: CloseReason, text: str) -> None:
        """The connection of ``member`` is over: its session is held for a resume (or
        ends), and the rooms are told -- unless a resume took it over meanwhile."""
        conn, hub = self.conn, self.server.hub
        # A server of a cluster that stops keeps its members' sessions: they resume on
        # another server (which takes them over), or leave when the grace is over.
        keeps = reason.keeps_session or (reason is CloseReason.SHUTDOWN and self.server.chat.keeps_sessions_on_stop)
        grace = self.server.config.resume_grace if keeps else 0.0
        with hub.locked(self.batch) as state:  # the room decides, under the lock, whether a resume took it
            ours = member.sink is conn
            hub.deliver(state.hold(member, text, time.time(), grace, sink=conn), self.batch)
        if not ours:
            return  # a resume took the session over: nothing to tell anyone
        if member.held_until is not None:
            log.info("%s dropped (%s); holding the session for %g s", self.describe(), text, grace,
                     extra=self.about("dropped"))
        else:
            log.info("%s left (%s)", self.describe(), text, extra=self.about("left"))

    def linger(self, deadline: float) -> None:
        """A close with unread input resets the connection, and a reset can destroy the
        last frames (the error saying why) before the peer reads them -- a flooder that
        is still sending would never learn it was cut off.  So: end our side (a FIN
        after the last frame), then read and discard what the peer still sends until
        it closes too, or until ``deadline``."""
        sock = self.request
        try:
            sock.shutdown(socket.SHUT_WR)
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                if not sock.recv(RECV_SIZE):
                    return
        except OSError:  # reset, timed out, or already shut: nothing more to save
            return

    # ------------------------------------------------------------------ helpers

    def recv_more(self, size: int) -> bytes:
        """The next bytes from the peer for a door's pump; b"" when it closed or the
        socket failed (the handler's ``finish`` then does the rest)."""
        try:
            return self.recv_next(size)
        except OSError:
            return b""

    def recv_next(self, size: int) -> bytes:
        """The next bytes, up to ``size``, once there are some; b"" at the end.

        The wait is a peek at one byte: a thread blocked in ``recv(n)`` holds an n-byte
        buffer all the while, and most members of a big room are idle (waiting in
        recv(4096) was 3.5 KiB of the server's memory per member: ``scripts/bench.py
        --only scale``; before that, recv(65536) was 64).  Then one read of what is
        there, at most ``size``: a busy sender's whole backlog, as one batch.  (TLS
        reaches this handler through a socketpair: a plain socket too.)"""
        sock = self.request
        if not sock.recv(1, socket.MSG_PEEK):
            return b""
        return sock.recv(size)

    def peer(self) -> str:
        member = self.conn.member
        return f"{self.conn.address} {member.nick if member else ''}"

    def describe(self) -> str:
        member = self.conn.member
        return f"{member.nick}@{self.conn.address}" if member else self.conn.address

    def about(self, event: str, room: str | None = None) -> dict[str, object]:
        """A log line's ``extra``: ``event``, about this connection (``logfmt.py``)."""
        member = self.conn.member
        return about(event, peer=self.conn.address, room=room, nick=member.nick if member else None)

    def send(self, msg: Message) -> None:
        """Queue ``msg`` for this client (flushed with the rest of the batch)."""
        out = Outgoing.of(msg, self.server.config.max_header)
        with self.server.hub.locked(self.batch):
            self.batch.queue(self.conn.me, out)

    def send_fitted(self, msg: Welcome | Joined | History | Members | Found, *, forward: bool = False) -> None:
        """Send ``msg`` fitted to the header limit (see ``fitting.fitted``)."""
        out = fitted(msg, self.server.config.max_header, forward=forward)
        with self.server.hub.locked(self.batch):
            self.batch.queue(self.conn.me, out)

    def send_error(self, code: str, message: str, *, msg_id: str | None = None, fatal: bool = False,
                   suggestion: str | None = None) -> None:
        self.send(Error(code=str(code.value if isinstance(code, ErrorCode) else code), message=message,
                        id=msg_id, fatal=fatal, suggestion=suggestion))

    def flush_batch(self) -> None:
        """The batch goes out; then, if it left readers behind, this connection's sender
        waits for them (backpressure: ``pace.py``) -- its own deadlines paused meanwhile."""
        batch = self.batch
        self.server.hub.flush(batch)
        if batch.behind:
            behind, batch.behind = batch.behind, []
            behind = worth_waiting(behind, batch.own)
            if behind:
                self.wait_for(behind)

    def wait_for(self, behind: list[Outbox]) -> None:
        """Wait for the readers of ``behind`` to catch up (``pace.py``), this connection's
        own deadlines paused meanwhile."""
        session = self.conn.session
        session.pause(time.monotonic())
        try:
            keep_pace(behind, self.server.stopped)
        finally:
            session.unpause(time.monotonic())

    # ------------------------------------------------------------------ dispatch

    def act_all(self, events: list[Event]) -> None:
        """Carry out what the session decided for one recv(), in order; then what it
        held behind a hello (judged now that the hello has been answered)."""
        self.act_events(events)
        session = self.conn.session
        while session.held:
            self.act_events(session.release(time.monotonic()))

    def act_events(self, events: list[Event]) -> None:
        """Carry out a list of the session's decisions, in order.

        Runs of chat messages -- a busy sender's usual batch -- are handled under one
        acquisition of the hub lock instead of one each: the senders' threads then
        contend for it once per read, not once per message.  Only the room logic and
        queueing happen under it; no logging and no socket calls.
        """
        session = self.conn.session
        i, count = 0, len(events)
        while i < count:
            event = events[i]
            i += 1
            msg = event.message if type(event) is Act else None
            if not (isinstance(msg, CHAT_TYPES) and session.phase is Phase.ACTIVE):
                self.act(event)
                continue
            run: list[Say | Action] = [msg]
            while i < count:
                following = events[i]
                more = following.message if type(following) is Act else None
                if not isinstance(more, CHAT_TYPES):
                    break
                run.append(more)
                i += 1
            self.say_run(run)

    def act(self, event: Event) -> None:
        if isinstance(event, Reply):
            reply = event.message
            if type(reply) is Error and reply.code != ErrorCode.RATE_LIMITED.value:
                log.log(logging.WARNING if reply.fatal else logging.INFO, "%s: %s%s: %s", self.describe(),
                        "closing: " if reply.fatal else "", reply.code, reply.message)
            self.send(reply)
            return
        if isinstance(event, Admit):
            self.on_admit(event)
            return
        if isinstance(event, Checked):
            self.on_checked(event)
            return
        msg = event.message
        try:
            HANDLERS[type(msg)](self, msg)
        except Refused as exc:
            self.send_error(exc.code, exc.message, msg_id=getattr(msg, "id", None), suggestion=exc.suggestion)
        except Exception as exc:  # noqa: BLE001 -- a bug must cost one message, not the connection
            self.internal_error(msg, exc)

    def internal_error(self, msg: Message, exc: Exception) -> None:
        """Handling ``msg`` failed unexpectedly (a bug, or input nobody foresaw).  The
        stream is still in sync, so the connection goes on: the client hears that this
        message failed, the log gets one line (the traceback only at debug level)."""
        log.error("%s: internal error handling %s: %s: %s", self.describe(), msg.TYPE, type(exc).__name__, exc)
        log.debug("traceback of that internal error", exc_info=exc)
        try:
            self.send_error(ErrorCode.INTERNAL, f"the server failed to handle that {msg.TYPE}; it had no effect",
                            msg_id=getattr(msg, "id", None))
        except Exception:  # noqa: BLE001 -- not even an error frame: give up on this connection
            self.conn.close(CloseReason.INTERNAL)

    # ------------------------------------------------------------------ file sharing
