"""The chat server: ``socketserver.ThreadingTCPServer`` with one handler per connection.

How a message travels::

    reader thread (ChatHandler.handle)       one per connection, blocking recv()
      recv 64 KiB -> ServerSession (frames, validation, phase, rate limit: no I/O)
      -> Hub: under ONE lock, ChatState decides (stamp, sequence, history)
              and each resulting frame is encoded once and appended to every
              recipient's Outbox (memory only: no socket call under the lock)
      -> after the whole recv()'s frames: flush each touched outbox once
         (one non-blocking send each; the rest goes to the Flusher thread)

Holding the hub lock while appending to outboxes is what makes every member see a
room's messages in the same order.  Nothing under it can block: ``Outbox.put`` never
touches a socket.  A client whose outbox overflows is disconnected as "too slow".

Silent peers, handshake and frame deadlines and keepalive pings are decided by each
connection's ``ServerSession.tick``, which :meth:`ChatServer.service_actions` (the hook
``serve_forever`` calls about twice a second) asks; a closed session's socket is shut
for reading, which wakes its reader.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import secrets
import select
import socket
import socketserver
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from chatroom.auth import derive_key, secrets_match
from chatroom.errors import LocalProtocolError, Refused
from chatroom.protocol import (
    DEFAULT_PORT,
    MAX_BODY_SIZE,
    MAX_HEADER_SIZE,
    MAX_ROOMS,
    PROTOCOL_VERSION,
    SEVERAL_ROOMS,
    AcceptFile,
    Ack,
    Action,
    Away,
    Bye,
    CancelFile,
    Direct,
    Error,
    ErrorCode,
    FetchHistory,
    FileAck,
    FileChunk,
    FileDone,
    Found,
    FrameDecoder,
    Hello,
    History,
    Join,
    Joined,
    ListRooms,
    Members,
    Message,
    Moderate,
    Nick,
    Notice,
    OfferFile,
    Op,
    Part,
    RejectFile,
    Say,
    Search,
    SetTopic,
    Welcome,
    Who,
    Whois,
    encode_message,
    encode_plain,
    speaks,
)
from chatroom.server.bans import Ban
from chatroom.server.chat_path import ChatPath, LocalChat, Said, SayItem, SayResult
from chatroom.server.cluster_link import ClusterLink
from chatroom.server.datadir import DataDirLock
from chatroom.server.doors import Door
from chatroom.server.guard import AuthGuard
from chatroom.server.hub import Batch, Hub
from chatroom.server.memstore import MEMORY_KEEP, MemoryStore
from chatroom.server.outbox import DEFAULT_OUTBOX_LIMIT, Flusher, Outbox
from chatroom.server.relay import DEFAULT_MAX_FILE, DEFAULT_WINDOW, MAX_RECEIVING, Relay
from chatroom.server.room import ChatState, Member, Sanction
from chatroom.server.session import (
    Act,
    Admit,
    Checked,
    CloseReason,
    Event,
    Phase,
    Reply,
    RoomKey,
    ServerSession,
    SessionLimits,
)
from chatroom.server.sniff import choose
from chatroom.server.store import DB_NAME, HistoryStore, Store
from chatroom.server.wire import FRAMED, Outgoing, WireFormat
from chatroom.text import clean_line, fold, nick_key, without_hash
from chatroom.tls import TlsBridge, certificate_fingerprint, server_context
from chatroom.trace import Tracer

__all__ = ["ServerConfig", "ChatServer", "ChatHandler", "Connection"]

log = logging.getLogger("chatroom.server")

#: How long a closing connection's last frames (an error, a goodbye) may take to leave.
FINAL_FLUSH_SECONDS = 1.0

#: One recv() takes what the kernel has, up to this; a busy sender's frames arrive
#: many to a read and are relayed as one batch.
RECV_SIZE = 64 * 1024
#: ... but a reader waiting in recv() holds a buffer of the size it asked for, and most
#: of a big room's members are idle: they wait with this much, and ask for RECV_SIZE
#: only after a read that filled it (5,000 idle members: 20 MB instead of 320 MB).
IDLE_RECV_SIZE = 4 * 1024


@dataclass
class ServerConfig:
    """Every server limit, with the defaults the README documents."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    name: str = ""  # shown to clients; the host name when empty
    max_clients: int = 1000
    # Connections from one address (0: no limit).  Enough for the demo's bots and a few
    # people behind one NAT; one address can no longer take every slot.
    max_per_address: int = 20
    max_text: int = 4000  # characters in one chat message (a pasted block is one)
    history_size: int = 100  # messages replayed on joining a room
    max_rooms: int = MAX_ROOMS  # rooms one member (protocol 1.3) may be in at once
    irc_port: int | None = None  # a second port for IRC clients that assume one (0: a free one)
    web_port: int | None = None  # a port for browsers, e.g. 80 or 8080 (0: a free one)
    # Host names browsers may use for the page besides the machine's own names and
    # addresses (a DNS name given to the server, say); any other is refused (rebinding).
    web_hosts: tuple[str, ...] = ()
    outbox_limit: int = DEFAULT_OUTBOX_LIMIT  # bytes queued for one client -> "too slow"
    handshake_timeout: float = 10.0
    # A frame begun and not finished this long after the last complete one: the peer is
    # trickling bytes to hold the connection ("too slow sending").  A 1 MiB file chunk
    # needs only ~35 KB/s to make it.
    frame_timeout: float = 30.0
    ping_interval: float = 30.0  # idle this long -> ping
    pong_timeout: float = 20.0  # no answer this long after a ping -> "timed out"
    rate: float = 4.0  # messages per second, sustained (0 disables rate limiting)
    burst: float = 20.0  # messages allowed at once
    max_strikes: int = 15  # refused messages in a row before "flooding" disconnects
    max_header: int = MAX_HEADER_SIZE
    max_body: int = MAX_BODY_SIZE
    shutdown_grace: float = 1.0  # seconds to let goodbyes drain on shutdown
    data_dir: str | None = None  # where history.sqlite3 lives; None keeps history in memory
    sync: str = "normal"  # SQLite synchronous: "normal" survives a crash, "full" a power cut
    resume_grace: float = 120.0  # seconds a dropped member keeps nick and room for a resume
    keep_messages: int | None = None  # retention: newest messages kept per room (None: all)
    keep_days: float | None = None  # retention: age limit (None: forever)
    retention_interval: float = 600.0  # seconds between retention passes (and forgetting old guessers)
    password: str | None = field(default=None, repr=False)  # the room password (None: open)
    tls_cert: str | None = None  # PEM certificate and key: TLS on (None: plain TCP)
    tls_key: str | None = None
    op_password: str | None = field(default=None, repr=False)  # operator token (None: a random one)
    max_file_size: int = DEFAULT_MAX_FILE  # bytes in one shared file (0 turns file sharing off)
    file_offer_ttl: float = 300.0  # seconds a file offer stays open to /accept
    file_stall_timeout: float = 60.0  # a transfer that makes no progress this long is ended
    # redis://HOST:PORT/DB: share rooms with the other servers there (None: alone).  May
    # hold a password: never shown (chatroom.redact).
    cluster: str | None = field(default=None, repr=False)
    cluster_beat: float = 2.0  # seconds between a cluster server's heartbeats

    def session_limits(self) -> SessionLimits:
        return SessionLimits(max_header=self.max_header, max_body=self.max_body, rate=self.rate, burst=self.burst,
                             max_strikes=self.max_strikes, handshake_timeout=self.handshake_timeout,
                             frame_timeout=self.frame_timeout, ping_interval=self.ping_interval,
                             pong_timeout=self.pong_timeout)


class Connection:
    """One client connection: its socket, outbox and protocol state."""

    _ids = itertools.count(1)

    def __init__(self, sock: socket.socket, address: str, hub: Hub, flusher: Flusher,
                 config: ServerConfig, password: RoomKey | None = None) -> None:
        self.id = next(self._ids)
        self.sock = sock
        self.address = address
        self.ip = address.rsplit(":", 1)[0]
        self.outbox = Outbox(sock, flusher, hub.lock, config.outbox_limit)
        self.outbox.owner = self
        #: The protocol state (no I/O): phase, limits, deadlines, close reason.
        self.session = ServerSession(config.session_limits(), time.monotonic(), password)
        self.member: Member | None = None
        self.thread = threading.current_thread()
        #: Deliveries name recipients by objects with a ``sink`` (members); a connection
        #: is its own sink, and ``me`` is its cached one-element recipient tuple.
        self.sink: Connection | None = self
        self.me: tuple[Connection, ...] = (self,)
        self._wire: WireFormat = FRAMED

    @property
    def wire(self) -> WireFormat:
        """How this connection's messages are encoded (the hub encodes once per format)."""
        return self._wire

    @wire.setter
    def wire(self, wire: WireFormat) -> None:
        self._wire = wire
        Member.sink_changes += 1  # the hub's flattened fan-out lists notice

    @property
    def closing(self) -> bool:
        return self.session.closed

    @property
    def decoder(self) -> FrameDecoder:
        return self.session.decoder

    def __repr__(self) -> str:
        who = self.member.nick if self.member else "-"
        return f"<Connection #{self.id} {who}@{self.address} {self.session.phase.value}>"

    def close(self, reason: CloseReason, detail: str = "", last: Message | None = None) -> bool:
        """The one way to close: the session records ``reason``, then ``last`` (an
        error saying why) is sent, and the reader is woken.  Any thread.  False if it
        was already closing (the first reason wins, and nothing is sent).  The reason
        comes first: a client may hang up the moment it reads why, and its reader
        must not take that for a lost connection (which would hold a kicked or banned
        session for a resume)."""
        first = self.session.close(reason, detail)
        if first and last is not None:
            self.send_now(Outgoing.of(last))
        self.wake()
        return first

    def send_now(self, out: Outgoing) -> None:
        """Out of band, ahead of anything queued: keepalive, a last error, the goodbye."""
        data = self.wire.encode((out,))
        if data:
            self.outbox.send_now(data)

    def release(self) -> None:
        """The connection has ended and its outbox is closed: let go of everything it
        held, now.  A connection refers to itself (its ``sink``, its ``me`` tuple, its
        outbox's ``owner``); left in place, those cycles would keep its buffers -- up to
        a whole frame's body in the decoder -- until the cycle collector runs, which a
        server process runs rarely (``cli._tune_collector``).  Memory must not depend on
        when a collector runs: break them, and drop the decoder's buffer too.  Under the
        hub lock (the fan-out reads ``sink`` and ``owner`` there)."""
        self.session.decoder.close()
        member, self.member = self.member, None
        if member is not None and member.sink is self:  # (a removed member: a held one has None)
            member.sink = None
        self.outbox.owner = None
        self.me = ()
        self.sink = None

    def wake(self) -> None:
        """Wake the reader of a closed session.  Only the reading half is shut: a last
        error frame queued just before (kicked, banned, timed out) still goes out; the
        reader's ``finish`` lets the outbox drain, briefly, before the socket closes."""
        try:
            self.sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass


_poll = getattr(select, "poll", None)
_POLLRDHUP = getattr(select, "POLLRDHUP", 0)  # (Linux) the peer sent its last byte
_GONE, _FINISHED, _OPEN = object(), object(), object()

#: A resume replays at most this many messages (and at most half the outbox limit in
#: bytes, so the replay itself cannot make the client "too slow"); the client fetches
#: the rest with fetch_history {after}.
REPLAY_MAX_MESSAGES = 10_000


def _replay_frames(room: str, chats: list[Any], max_header: int, budget: int) -> tuple[list[Outgoing], int]:
    """``chats`` as ``history {replay: true}`` frames, oldest first, each within the
    header limit, together within ``budget`` bytes (at least one frame).  Returns the
    frames and how many messages they hold: a prefix of ``chats``, with no holes."""
    frames: list[Outgoing] = []
    used = count = 0
    while count < len(chats):
        n = min(100, len(chats) - count)
        while True:
            page = History(room=room, messages=tuple(chats[count:count + n]), replay=True)
            try:
                data = encode_message(page, max_header=max_header)
                break
            except LocalProtocolError:
                if n == 1:
                    raise
                n //= 2
        if frames and used + len(data) > budget:
            break
        frames.append(Outgoing(page, data))
        used += len(data)
        count += n
    return frames, count


def _shrunk(msg: Welcome | Joined | History | Members | Found, *, forward: bool = False
            ) -> Welcome | Joined | History | Members | Found:
    """``msg`` with half of its history (the oldest, or for a ``forward`` page the
    newest: a page never has a hole) or, with no history left, half of its member list
    gone; raise LocalProtocolError when nothing is left to drop."""
    if isinstance(msg, History | Found):
        if not msg.messages:
            raise LocalProtocolError(f"an empty {msg.TYPE} page does not fit the header limit")
        half = len(msg.messages) // 2
        kept = msg.messages[:half] if forward else msg.messages[half + 1:]
        return msgspec.structs.replace(msg, messages=kept, complete=False)
    history = getattr(msg, "history", ())
    if history:
        return msgspec.structs.replace(msg, history=history[len(history) // 2 + 1:])
    if msg.members:
        return msgspec.structs.replace(msg, members=msg.members[: len(msg.members) // 2])
    raise LocalProtocolError(f"{msg.TYPE} does not fit the header limit even without history and members")


def _how_long(ban: Ban) -> str:
    return "" if ban.until is None else f" for {math.ceil((ban.until - time.time()) / 60)} more minutes"


class ChatHandler(socketserver.BaseRequestHandler):
    """Reads one client's frames and acts on them.  Runs in its own thread."""

    server: ChatServer
    request: socket.socket

    def setup(self) -> None:
        if self.request.family in (socket.AF_INET, socket.AF_INET6):  # TLS hands us a socketpair end
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        host, port = self.client_address[:2]
        self.conn = Connection(self.request, f"{host}:{port}", self.server.hub, self.server.flusher,
                               self.server.config, self.server.password)
        self.tracer = self.server.tracer
        self.batch = Batch(self.tracer)
        self.refusal = self.server.register(self.conn)

    def handle(self) -> None:
        conn = self.conn
        if self.refusal is ErrorCode.SERVER_FULL:
            log.warning("refused %s: server full (%d clients)", conn.address, self.server.config.max_clients)
            self.send_error(self.refusal, "the server is full, try again later", fatal=True)
        elif self.refusal is ErrorCode.TOO_MANY_CONNECTIONS:
            limit = self.server.config.max_per_address
            log.warning("refused %s: already %d connections from %s", conn.address, limit, conn.ip)
            self.send_error(self.refusal, f"too many connections from your address (at most {limit}): close one and "
                            "try again", fatal=True)
        elif self.refusal is not None:
            self.send_error(self.refusal, "the server is shutting down", fatal=True)
        if self.refusal is None:
            ban = self.server.hub.state.bans.for_address(conn.ip, time.time())  # a dict read: no lock needed
            if ban is not None:
                log.info("refused %s: banned", conn.address)
                self.send_error(ErrorCode.BANNED, f"your address is banned from this server{_how_long(ban)}",
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
        if door is None:
            self.pump(data)
        else:
            door.serve(self, data)

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
                data = self.request.recv(IDLE_RECV_SIZE)
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
        sock = self.request
        size = IDLE_RECV_SIZE
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
            try:
                data = sock.recv(size)
            except OSError:
                break
            size = RECV_SIZE if len(data) == size else IDLE_RECV_SIZE

    def finish(self) -> None:
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
            # A server of a cluster that stops keeps its members' sessions: they resume on
            # another server (which takes them over), or leave when the grace is over.
            keeps = reason.keeps_session or (reason is CloseReason.SHUTDOWN and self.server.cluster is not None)
            grace = self.server.config.resume_grace if keeps else 0.0
            with hub.locked(self.batch) as state:  # the room decides, under the lock, whether a resume took it
                ours = member.sink is conn
                hub.deliver(state.hold(member, text, time.time(), grace, sink=conn), self.batch)
            if not ours:
                pass  # a resume took the session over: nothing to tell anyone
            elif member.held_until is not None:
                log.info("%s dropped (%s); holding the session for %g s", self.describe(), text, grace)
            else:
                log.info("%s left (%s)", self.describe(), text)
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
            return self.request.recv(size)
        except OSError:
            return b""

    def peer(self) -> str:
        member = self.conn.member
        return f"{self.conn.address} {member.nick if member else ''}"

    def describe(self) -> str:
        member = self.conn.member
        return f"{member.nick}@{self.conn.address}" if member else self.conn.address

    def send(self, msg: Message) -> None:
        """Queue ``msg`` for this client (flushed with the rest of the batch)."""
        out = Outgoing.of(msg, self.server.config.max_header)
        with self.server.hub.locked(self.batch):
            self.batch.queue(self.conn.me, out)

    def send_fitted(self, msg: Welcome | Joined | History | Members | Found, *, forward: bool = False) -> None:
        """Send ``msg``, dropping its oldest history, then the tail of its member list,
        until it fits the header limit (100 long messages, or 200 members with long away
        texts, can exceed 64 KiB; the client pages back for more history, and
        ``member_count`` still says how many are there)."""
        while True:
            try:
                out = Outgoing.of(msg, self.server.config.max_header)
            except LocalProtocolError:
                msg = _shrunk(msg, forward=forward)
                continue
            with self.server.hub.locked(self.batch):
                self.batch.queue(self.conn.me, out)
            return

    def send_error(self, code: str, message: str, *, msg_id: str | None = None, fatal: bool = False,
                   suggestion: str | None = None) -> None:
        self.send(Error(code=str(code.value if isinstance(code, ErrorCode) else code), message=message,
                        id=msg_id, fatal=fatal, suggestion=suggestion))

    def flush_batch(self) -> None:
        self.server.hub.flush(self.batch)

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
            if not (isinstance(msg, _CHAT_TYPES) and session.phase is Phase.ACTIVE):
                self.act(event)
                continue
            run: list[Say | Action] = [msg]
            while i < count:
                following = events[i]
                more = following.message if type(following) is Act else None
                if not isinstance(more, _CHAT_TYPES):
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
            _HANDLERS[type(msg)](self, msg)
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
        log.info("%s: refused %s: banned", self.conn.address, clean_line(nick))
        return f"you are banned from this server{_how_long(ban)}"

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
            log.warning("wrong %s from %s (%s)", what, self.conn.ip, self.describe())
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
        log.info("%s: throttled %s attempt, answered in %.1f s", conn.address, what, wait)
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
        with hub.locked(self.batch) as state:
            try:
                member, joined, deliveries = state.admit(
                    conn.id, msg.nick, conn.address, time.time(), msg.room, token=token, crowd=speaks(msg.version, 2),
                    several=speaks(msg.version, SEVERAL_ROOMS),
                )
            except Refused as exc:
                log.info("%s: hello refused: %s", conn.address, exc.message)
                self.send_error(exc.code, exc.message, suggestion=exc.suggestion)
                return
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
        log.info("%s joined %s", self.describe(), joined.room)

    def resume(self, msg: Hello, proof: str | None = None) -> None:
        """Hand a held (or ghosted) session to this connection, with what it missed: the
        welcome for its first room, then (1.3) a resumed ``joined`` for each other room,
        each followed by its replay."""
        conn, server, hub = self.conn, self.server, self.server.hub
        token = msg.resume or ""
        if server.cluster is not None and token not in hub.state.sessions:  # (a dict read)
            server.cluster.adopt(token, conn.id, conn.address, self.batch)  # another server's, maybe
        with hub.locked(self.batch) as state:
            try:
                member, ghost, deliveries = state.resume(
                    msg.resume or "", conn.id, conn.address, time.time(), crowd=speaks(msg.version, 2),
                    several=speaks(msg.version, SEVERAL_ROOMS),
                )
            except Refused as exc:
                log.info("%s: resume refused", conn.address)
                self.send_error(exc.code, exc.message)
                return
            if ghost is not None and ghost is not conn:
                ghost.member = None  # its reader will end quietly: no leave for the others
                ghost.close(CloseReason.REPLACED)
            member.sink = conn
            conn.member = member
            conn.session.admitted()
            rooms = list(member.rooms.values())
            seen = {fold(without_hash(name)): seq for name, seq in (msg.seen or {}).items()}
            budget, replayed, total = server.config.outbox_limit // 2, [], 0
            for i, room in enumerate(rooms):  # what each room missed, within one budget
                last_seq = seen.get(fold(room.name), msg.last_seq if i == 0 else None)
                missed = state.missed(room, last_seq, REPLAY_MAX_MESSAGES)
                frames, count = _replay_frames(room.name, missed, server.config.max_header, budget)
                budget = max(1, budget - sum(len(f.framed) for f in frames))
                replayed.append((frames, count))
                total += count
            now = time.time()
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
            for i, room in enumerate(rooms):  # what it missed, oldest first, before any live message
                frames, count = replayed[i]
                if i:
                    self.send_fitted(Joined(room=room.name, topic=room.topic, members=room.member_infos(now),
                                            member_count=len(room.members), last_seq=room.next_seq - 1,
                                            resumed=True, missed=count))
                for out in frames:
                    self.batch.queue(conn.me, out)
            hub.deliver(deliveries, self.batch)
        log.info("%s resumed in %d room(s) (%d missed messages replayed)", self.describe(), len(rooms), total)

    def on_say(self, msg: Say | Action) -> None:
        self.say_run([msg])  # (a message that came alone: see act_events)

    def say_run(self, msgs: list[Say | Action]) -> None:
        """Chat messages from one read, through the server's chat path (alone or in a
        cluster): each into its room, or acknowledged as a resend, or refused.  The
        acks are queued behind the messages, in one fan-out with them."""
        me = self.conn.me
        batch = self.batch

        def answer(results: Sequence[SayResult]) -> None:  # (under the hub lock: queues only)
            acks: list[Outgoing] = []
            for msg, result in zip(msgs, results, strict=True):
                if type(result) is Said:
                    said = result.msg
                    ack = Ack(id=msg.id, ts=said.ts, seq=getattr(said, "seq", None),
                              room=getattr(said, "room", None), duplicate=result.resent)
                    acks.append(Outgoing(ack, encode_plain(ack)))
                elif isinstance(result, Refused):
                    batch.queue(me, Outgoing.of(Error(code=str(result.code), message=result.message, id=msg.id,
                                                      suggestion=result.suggestion)))
            if acks:
                batch.defer_all(me, acks)

        items = [SayItem(m.text, type(m) is Action, m.id, m.room) for m in msgs]
        try:
            results = self.server.chat.say_many(batch, self._member(), items, time.time(), answer)
        except Exception as exc:  # noqa: BLE001 -- a bug costs these messages, not the connection
            for msg in msgs:
                self.internal_error(msg, exc)
            return
        for msg, result in zip(msgs, results, strict=True):
            if isinstance(result, Exception) and not isinstance(result, Refused):
                self.internal_error(msg, result)

    def on_direct(self, msg: Direct) -> None:
        said, _ = self.server.chat.direct(self.batch, self._member(), msg.to, msg.text, time.time(), msg.id)
        self.send(Ack(id=msg.id, ts=said.msg.ts, duplicate=said.resent))

    def on_join(self, msg: Join) -> None:
        hub = self.server.hub
        with hub.locked(self.batch) as state:
            joined, deliveries = state.join(self._member(), msg.room, time.time())
            self.send_fitted(joined)  # we see the room before anything said in it ...
            hub.deliver(deliveries, self.batch)  # ... (the old room hears we left; the new one, that we came)
        log.info("%s joined %s", self.describe(), joined.room)

    def on_part(self, msg: Part) -> None:
        hub = self.server.hub
        with hub.locked(self.batch) as state:
            parted, deliveries = state.part(self._member(), msg.room, msg.reason, time.time())
            self.send(parted)
            hub.deliver(deliveries, self.batch)
        log.info("%s left %s", self.describe(), parted.room)

    def on_nick(self, msg: Nick) -> None:
        hub = self.server.hub
        member = self._member()
        old = member.nick
        with hub.locked(self.batch) as state:
            hub.deliver(state.rename(member, msg.nick, time.time()), self.batch)
        log.info("%s is now known as %s", old, member.nick)

    def on_topic(self, msg: SetTopic) -> None:
        hub = self.server.hub
        with hub.locked(self.batch) as state:
            hub.deliver(state.set_topic(self._member(), msg.topic, time.time(), msg.room), self.batch)

    def on_away(self, msg: Away) -> None:
        hub = self.server.hub
        with hub.locked(self.batch) as state:
            hub.deliver(state.set_away(self._member(), msg.message, time.time()), self.batch)

    def on_who(self, msg: Who) -> None:
        hub = self.server.hub
        with hub.locked(self.batch) as state:
            reply = state.who(self._member(), time.time(), msg.room)
        self.send_fitted(reply)

    def on_list_rooms(self, msg: ListRooms) -> None:
        hub = self.server.hub
        with hub.locked(self.batch) as state:
            reply = state.list_rooms()
        self.send(reply)

    def on_fetch_history(self, msg: FetchHistory) -> None:
        hub = self.server.hub
        with hub.locked(self.batch) as state:
            reply = state.history(msg.room, msg.before, min(msg.limit, self.server.config.history_size), msg.after)
        self.send_fitted(reply, forward=msg.after is not None)

    def on_whois(self, msg: Whois) -> None:
        with self.server.hub.locked(self.batch) as state:
            reply = state.whois(self._member(), msg.nick, time.time())
        self.send(reply)

    def on_search(self, msg: Search) -> None:
        state, limit = self.server.hub.state, min(msg.limit, self.server.config.history_size)
        if state.store is None:  # the rooms' own history: read it under the lock
            with self.server.hub.locked(self.batch):
                found = state.search(msg.room, msg.text, limit)
        else:  # the store has its own lock: a search (bounded) does not hold up the room
            found = state.search(msg.room, msg.text, limit)
        self.send_fitted(found)

    def on_op(self, msg: Op) -> None:
        server = self.server
        member = self._member()
        right = self.gate("operator token", secrets_match(msg.token, server.op_token))
        if right is None:
            return
        if not right:
            self.send_error(ErrorCode.NOT_OPERATOR, "that is not the operator token")
            return
        with server.hub.locked(self.batch) as state:
            state.make_operator(member)
        log.info("%s is now an operator", self.describe())
        self.send(Notice(text="you are now an operator: /kick /ban /unban /mute /unmute /lock /unlock"))

    def on_moderate(self, msg: Moderate) -> None:
        text = self.server.moderate(self._member(), msg, self.batch)  # Refused (not an operator) is answered
        self.send(Notice(text=text))

    # ------------------------------------------------------------------ file sharing

    def on_offer_file(self, msg: OfferFile) -> None:
        hub, member = self.server.hub, self._member()
        with hub.locked(self.batch) as state:
            if msg.to is not None:
                target = state.nicks.get(nick_key(msg.to))
                if target is None:
                    raise Refused(ErrorCode.NO_SUCH_NICK, f"nobody is called {clean_line(msg.to)}")
                recipients: tuple[Member, ...] = (target,)
                room = None
            else:
                room = state.room_of(member, msg.room)
                recipients = room.everyone()
            hub.deliver(self.server.relay.offer(self.conn, member, msg, recipients, time.monotonic(), time.time(),
                                                room=room.name if room else None), self.batch)
        log.info("%s offers %r (%d bytes) to %s", self.describe(), clean_line(msg.name)[:80], msg.size,
                 clean_line(msg.to) if msg.to else "the room")

    def on_accept_file(self, msg: AcceptFile) -> None:
        hub, member = self.server.hub, self._member()
        with hub.locked(self.batch):
            hub.deliver(self.server.relay.accept(self.conn, member, msg.transfer, time.monotonic()), self.batch)

    def on_reject_file(self, msg: RejectFile) -> None:
        hub, member = self.server.hub, self._member()
        with hub.locked(self.batch):
            hub.deliver(self.server.relay.reject(self.conn, member, msg.transfer, time.monotonic()), self.batch)

    def on_cancel_file(self, msg: CancelFile) -> None:
        hub, member = self.server.hub, self._member()
        with hub.locked(self.batch):
            hub.deliver(self.server.relay.cancel(self.conn, member, msg.transfer, msg.reason, time.monotonic()),
                        self.batch)

    def on_file_flow(self, msg: FileChunk | FileAck | FileDone) -> None:
        """A chunk, an ack or a verdict: the relay passes it on.  Stale ones (the
        transfer ended while they travelled) are dropped, and charged to the rate
        limit so that nobody can spray them for free."""
        hub, relay = self.server.hub, self.server.relay
        with hub.locked(self.batch):
            if type(msg) is FileChunk:
                deliveries = relay.chunk(self.conn, msg, time.monotonic())
            elif type(msg) is FileAck:
                deliveries = relay.ack(self.conn, msg, time.monotonic())
            elif type(msg) is FileDone:
                deliveries = relay.done(self.conn, msg)
            else:
                raise AssertionError(f"not a file flow message: {msg.TYPE}")
            if deliveries:
                hub.deliver(deliveries, self.batch)
        if deliveries is None:
            refusal = self.conn.session.charge(msg, time.monotonic())
            if refusal is not None:
                self.act(refusal)

    def _member(self) -> Member:
        member = self.conn.member
        if member is None:  # dispatch only calls handlers for ACTIVE connections
            raise RuntimeError("no member for an active connection")
        return member


_CHAT_TYPES = (Say, Action)


_HANDLERS: dict[type[Message], Any] = {
    Say: ChatHandler.on_say,
    Action: ChatHandler.on_say,
    Direct: ChatHandler.on_direct,
    Join: ChatHandler.on_join,
    Part: ChatHandler.on_part,
    Whois: ChatHandler.on_whois,
    Search: ChatHandler.on_search,
    Nick: ChatHandler.on_nick,
    SetTopic: ChatHandler.on_topic,
    Away: ChatHandler.on_away,
    Who: ChatHandler.on_who,
    ListRooms: ChatHandler.on_list_rooms,
    FetchHistory: ChatHandler.on_fetch_history,
    Op: ChatHandler.on_op,
    Moderate: ChatHandler.on_moderate,
    OfferFile: ChatHandler.on_offer_file,
    AcceptFile: ChatHandler.on_accept_file,
    RejectFile: ChatHandler.on_reject_file,
    CancelFile: ChatHandler.on_cancel_file,
    FileChunk: ChatHandler.on_file_flow,
    FileAck: ChatHandler.on_file_flow,
    FileDone: ChatHandler.on_file_flow,
}


class ChatServer(socketserver.ThreadingTCPServer):
    """A chat server.  ``serve_forever()`` in one thread; :meth:`stop` from another."""

    # A restarted server must bind again at once, despite TIME_WAIT sockets.
    allow_reuse_address = True
    # socketserver's own thread tracking (block_on_close with non-daemon threads)
    # scans every live thread on each accept: O(N^2) to join 2,000 clients.  We track
    # handler threads in our connection registry instead, and stop() joins them after
    # shutting their sockets down, so none can hang in recv().
    daemon_threads = True
    block_on_close = False
    # The default of 5 turns a reconnect storm into minutes of SYN retries.
    request_queue_size = 1024

    def __init__(self, config: ServerConfig | None = None, tracer: Tracer | None = None, *,
                 cluster: ClusterLink | None = None, doors: Sequence[Door] = ()) -> None:
        """``cluster``: the strategy that shares the rooms with other servers (None:
        this server alone, with its own store); ``doors``: the protocols besides the
        framed one that this port also speaks, in the order the sniffer asks them.
        ``chatroom.app.build_server`` chooses both from the config."""
        self.config = config or ServerConfig()
        self.tracer = tracer
        #: In a cluster: the other servers, through Redis (see ``cluster_link.py``).
        self.cluster = cluster
        self.doors = tuple(doors)
        #: One server per data directory (DataDirError names the one that has it).
        self.data_lock: DataDirLock | None = None
        if self.config.data_dir and cluster is None:
            self.data_lock = DataDirLock(self.config.data_dir)
            self.data_lock.acquire()
        try:
            self._build()
        except BaseException:
            if self.data_lock is not None:
                self.data_lock.release()
            raise
        if self.data_lock is not None:
            self.data_lock.note(self.port)

    def _build(self) -> None:
        """The rest of ``__init__``: store or cluster, the rooms, TLS, the listening
        socket(s).  (Split out so that a failure releases the data directory.)"""
        path = Path(self.config.data_dir) / DB_NAME if self.config.data_dir else None
        if self.cluster is not None:
            self.store: Store = self.cluster.store
        else:  # on disk (SQLite), or --memory: a bounded history that dies with the process
            self.store = (HistoryStore(path, sync=self.config.sync) if path is not None
                          else MemoryStore(keep=min(MEMORY_KEEP, self.config.keep_messages or MEMORY_KEEP)))
        state = ChatState(history_size=self.config.history_size, max_text=self.config.max_text, store=self.store,
                          bans=self.store.bans(), max_rooms=self.config.max_rooms, peers=self.cluster)
        self.hub = Hub(state, self.store, self.config.max_header)
        self.hub.publisher = self.cluster
        #: How members' messages reach rooms and people: alone, or through the cluster.
        self.chat: ChatPath = self.cluster if self.cluster is not None else LocalChat(self.hub)
        self.hub.overflow = self._too_slow
        # Each receiver may take MAX_RECEIVING files at once, each at most a window
        # ahead: together they fill at most half of its outbox, leaving room for chat.
        self.relay = Relay(max_size=self.config.max_file_size,
                           window=max(4096, min(DEFAULT_WINDOW, self.config.outbox_limit // (2 * MAX_RECEIVING))),
                           offer_ttl=self.config.file_offer_ttl, stall_timeout=self.config.file_stall_timeout)
        self._housekeeping_batch = Batch()
        self._cluster_batch = Batch()
        self._next_retention = 0.0
        self.auth_guard = AuthGuard()
        salt = os.urandom(16)
        # Derived once: PBKDF2 is deliberately slow.
        self.password = RoomKey(derive_key(self.config.password, salt), salt) if self.config.password else None
        self.op_token = self.config.op_password or secrets.token_urlsafe(12)
        if self.cluster is not None:
            self.op_token = self.cluster.shared_op_token(self.op_token)
        self.flusher = Flusher()
        self.display_name = self.config.name or socket.gethostname()
        self.limits = {
            "max_text": self.config.max_text,
            "max_header": self.config.max_header,
            "max_body": self.config.max_body,
            "history_size": self.config.history_size,
            "ping_interval": int(self.config.ping_interval),
            "max_file": self.config.max_file_size,
            # The rate limit, so that clients can pace themselves instead of being refused
            # (0: no limit).  Messages per minute: limits are integers.
            "rate_per_minute": round(self.config.rate * 60),
            "burst": int(self.config.burst),
            "max_rooms": self.config.max_rooms,
        }
        self._conns: dict[int, Connection] = {}
        self._per_address: dict[str, int] = {}  # ip -> connections in _conns (under _conns_lock)
        self._conns_lock = threading.Lock()
        self._conns_gone = threading.Condition(self._conns_lock)
        self._next_housekeeping = 0.0
        self._stopping = False
        self.stopped = threading.Event()  # set by stop(): wakes handlers that wait (see wait_turn)
        self.tls_context = None
        self.tls_fingerprint: str | None = None
        if self.config.tls_cert and self.config.tls_key:
            self.tls_context = server_context(Path(self.config.tls_cert), Path(self.config.tls_key))
            self.tls_fingerprint = certificate_fingerprint(Path(self.config.tls_cert))
        super().__init__((self.config.host, self.config.port), ChatHandler)
        if self.cluster is not None:
            self.cluster.address = f"{self.config.host}:{self.port}"
        self.irc_listener: SideDoor | None = None
        self.web_listener: SideDoor | None = None
        try:
            if self.config.irc_port is not None:
                self.irc_listener = SideDoor(self, self.config.irc_port)
            if self.config.web_port is not None:
                self.web_listener = SideDoor(self, self.config.web_port)
        except BaseException:
            for side in (self.irc_listener, self.web_listener):
                if side is not None:
                    side.server_close()
            self.server_close()
            raise
        self.flusher.start()
        if self.cluster is not None:
            self.cluster.start(self.hub, self.on_cluster)

    def get_request(self) -> tuple[socket.socket, Any]:
        return self.wrap(*super().get_request())

    def wrap(self, raw: socket.socket, address: Any) -> tuple[socket.socket, Any]:
        """With TLS, the handler gets the plain end of a :class:`TlsBridge`."""
        if self.tls_context is None:
            return raw, address
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        refusal = encode_message(Error(code=ErrorCode.TLS_REQUIRED.value, fatal=True,
                                       message="this server speaks TLS: join with --tls"))
        bridge = TlsBridge(raw, self.tls_context, self.config.handshake_timeout, refusal)
        return bridge.inner, address

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    # ------------------------------------------------------------------ connections

    def register(self, conn: Connection) -> ErrorCode | None:
        """Admit ``conn`` to the server, or say why not (full, shutting down)."""
        with self._conns_lock:
            if self._stopping:
                return ErrorCode.SHUTTING_DOWN
            if len(self._conns) >= self.config.max_clients:
                return ErrorCode.SERVER_FULL
            per_address = self._per_address.get(conn.ip, 0)
            if self.config.max_per_address and per_address >= self.config.max_per_address:
                return ErrorCode.TOO_MANY_CONNECTIONS
            self._per_address[conn.ip] = per_address + 1
            self._conns[conn.id] = conn
            return None

    def unregister(self, conn: Connection) -> None:
        with self._conns_lock:
            if self._conns.pop(conn.id, None) is not None:
                left = self._per_address[conn.ip] - 1
                if left:
                    self._per_address[conn.ip] = left
                else:
                    del self._per_address[conn.ip]
            if not self._conns:
                self._conns_gone.notify_all()

    def connections(self) -> list[Connection]:
        with self._conns_lock:
            return list(self._conns.values())

    def room_counts(self) -> list[tuple[str, int]]:
        """(room, people in it) for every room, for the LAN announcer (in a cluster:
        every room of the cluster, and everyone in it)."""
        if self.cluster is not None:
            try:
                return sorted(self.cluster.room_sizes().values())
            except Exception:  # noqa: BLE001 -- redis.RedisError: announce what this server knows
                pass
        with self.hub.lock:
            return [(room.name, len(room.members)) for room in self.hub.state.rooms.values()]

    def moderate(self, op: Member, msg: Moderate, batch: Batch) -> str:
        """Carry out an operator's action; returns what to tell the operator.  The room
        decides, under the hub lock; bans are stored and victims disconnected after it."""
        now = time.time()
        with self.hub.locked(batch) as state:
            sanction = state.moderate(op, msg.action, msg.target, msg.reason, msg.duration, now,
                                      handshaking=self._handshaking_from, room_name=msg.room)
            if sanction.notice is not None and sanction.notice[0].sink is not None:
                member, text = sanction.notice
                batch.queue(member.sink.me, Outgoing.of(Notice(text=text)))
        if sanction.added is not None or sanction.lifted or sanction.victims or sanction.address:
            log.warning("%s: %s", op.nick, sanction.text)
        self._store_bans(sanction, batch)
        victims = [m.sink for m in sanction.victims if m.sink is not None]
        if sanction.address is not None:
            victims += [c for c in self.connections() if c.ip == sanction.address and c not in victims]
        self._disconnect(victims, sanction.code, sanction.why)
        if self.cluster is not None:  # the members of other servers are theirs to kick or mute
            self.cluster.forward(sanction, msg)
        return sanction.text + (f" ({len(victims)} connection(s))" if sanction.address else "")

    def on_cluster(self, body: dict[str, Any]) -> None:
        """What another server of the cluster asks of this one (the cluster's reader
        thread): a ban or unban for every server; a kick, a mute, or a session taken
        over, for the server that has the member."""
        kind, batch = body.get("t"), self._cluster_batch
        if kind == "ban":
            ban = Ban.from_record(body)
            with self.hub.lock:
                self.hub.state.bans.add(ban)
            victims = [c for c in self.connections() if c.member is not None and c.member.server is None
                       and ban.matches(c.ip, c.member.nick)]
            self._disconnect(victims, ErrorCode.BANNED.value, f"banned by {body.get('by', '?')}"
                             + (f": {body['reason']}" if body.get("reason") else ""))
        elif kind == "unban":
            with self.hub.lock:
                self.hub.state.bans.remove(body["target"])
        elif kind == "released":
            with self.hub.locked(batch) as state:
                ghost = state.let_go(body["token"], body["server"])
            if ghost is not None:
                ghost.member = None  # its reader ends quietly: the member lives on elsewhere
                ghost.close(CloseReason.REPLACED)
        elif kind in ("kick", "mute"):
            with self.hub.locked(batch) as state:
                member = state.nicks.get(nick_key(body["nick"]))
                if member is None or member.server is not None:
                    return
                if kind == "mute":
                    until = float(body.get("until") or 0.0)
                    member.muted_until = float("inf") if until < 0 else until
                    if member.sink is not None and body.get("notice"):
                        batch.queue(member.sink.me, Outgoing.of(Notice(text=body["notice"])))
                    return
                if member.sink is None:
                    self.hub.deliver(state.remove(member, body["why"], time.time()), batch)
            if kind == "kick" and member.sink is not None:
                self._disconnect([member.sink], ErrorCode.KICKED.value, body["why"])
        self.hub.flush(batch)

    def _disconnect(self, victims: list[Connection], code: str, why: str) -> None:
        reason = CloseReason.BANNED if code == ErrorCode.BANNED.value else CloseReason.KICKED
        for conn in victims:
            conn.close(reason, why, last=Error(code=code, message=f"you were {why}", fatal=True))

    def _handshaking_from(self, ip: str) -> int:
        """Connections from ``ip`` with no member (yet): they share that address too."""
        return sum(1 for c in self.connections() if c.member is None and c.ip == ip)

    def _store_bans(self, sanction: Sanction, batch: Batch) -> None:
        """Persist what a moderation changed (outside the hub lock: a disk write), and
        end the sanctioned people's held sessions, so that they cannot be resumed."""
        if sanction.added is not None:
            b = sanction.added
            self.store.save_ban(b.target, b.until, b.nick, b.reason, b.by)
        for ban in sanction.lifted:
            self.store.delete_ban(ban.target)
        if sanction.ended:
            with self.hub.locked(batch) as state:
                for member in sanction.ended:
                    if member.sink is None and member.held_until is not None:
                        self.hub.deliver(state.remove(member, sanction.why, time.time()), batch)

    def _too_slow(self, conn: Connection) -> None:
        self.drop(conn, CloseReason.TOO_SLOW, ErrorCode.TOO_SLOW)

    def drop(self, conn: Connection, reason: CloseReason, code: ErrorCode, message: str | None = None) -> None:
        """Disconnect ``conn`` with ``reason`` (others see it in the leave event),
        telling it ``message`` in an error frame first."""
        if conn.session.close_reason is not None:
            return
        if code is ErrorCode.TOO_SLOW:
            conn.outbox.close()  # its queue is full; nothing more will get through
        log.warning("dropping %s: %s", conn, reason.text)
        conn.close(reason, last=Error(code=code.value, message=message, fatal=True) if message else None)

    # ------------------------------------------------------------------ socketserver hooks

    def service_actions(self) -> None:
        """Handshake deadlines and keepalive; serve_forever calls this between polls."""
        now = time.monotonic()
        if now < self._next_housekeeping:
            return
        self._next_housekeeping = now + 0.5
        cfg = self.config
        batch = self._housekeeping_batch
        with self.hub.locked(batch) as state:
            self.hub.deliver(state.expire(time.time()), batch)
            self.hub.deliver(state.crowd_news(time.time()), batch)
            self.hub.deliver(self.relay.housekeeping(now), batch)
        self.hub.flush(batch)
        if now >= self._next_retention:
            self._next_retention = now + cfg.retention_interval
            self.apply_retention()
            self.auth_guard.forget_old(now)  # addresses that stopped guessing
        for conn in self.connections():
            session = conn.session
            was_open = not session.closed
            for event in session.tick(now):  # keepalive and deadlines: the session decides
                conn.send_now(Outgoing.of(event.message))
            if was_open and session.closed:
                log.warning("dropping %s: %s", conn, session.close_text)
                conn.wake()

    def apply_retention(self) -> None:
        cfg = self.config
        if cfg.keep_messages is None and cfg.keep_days is None:
            return
        # Not under the hub lock: the store serialises itself, and the room goes on.
        deleted = self.store.prune(
            keep=cfg.keep_messages, max_age=cfg.keep_days * 86400 if cfg.keep_days is not None else None
        )
        if deleted:
            log.info("retention: deleted %d old messages", deleted)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr; we log it, once, and carry on.
        log.exception("unexpected error handling %s", client_address)

    # ------------------------------------------------------------------ lifecycle

    def stop(self, reason: str = "server shutting down") -> None:
        """Say goodbye to everyone, stop serving, close every socket, join threads.

        Call from any thread but the one running ``serve_forever`` (socketserver's
        ``shutdown()`` would deadlock there).  Bounded by ``shutdown_grace`` plus a
        moment, even with clients that do not read.
        """
        with self._conns_lock:
            self._stopping = True
        self.stopped.set()
        bye = Outgoing.of(Bye(reason=reason))
        conns = self.connections()
        for conn in conns:
            conn.send_now(bye)
        deadline = time.monotonic() + self.config.shutdown_grace
        while time.monotonic() < deadline and any(len(c.outbox) for c in conns):
            time.sleep(0.02)  # polling the flusher's progress, bounded by the deadline
        for side in (self.irc_listener, self.web_listener):
            if side is not None:
                side.shutdown()
                side.server_close()
        self.shutdown()
        self.server_close()  # no new connections from here on
        for conn in self.connections():
            conn.outbox.close()
            conn.close(CloseReason.SHUTDOWN)
        # Every handler now sees EOF and unregisters in finish(); wait for that, then
        # for the threads themselves to end.
        deadline = time.monotonic() + 1.0
        with self._conns_lock:
            self._conns_gone.wait_for(lambda: not self._conns, timeout=1.0)
            stragglers = list(self._conns.values())
        for conn in conns + stragglers:
            conn.thread.join(max(0.0, deadline - time.monotonic()))
        self.flusher.stop()
        if self.cluster is not None:
            self.cluster.stop()
        with self.hub.lock:
            self.store.close()
        if self.data_lock is not None:
            self.data_lock.release()
        log.info("server stopped")

    def serve_in_thread(self) -> threading.Thread:
        """Start ``serve_forever`` in a daemon thread (tests, demos)."""
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2},
                                  name="chatroom-server", daemon=True)
        thread.start()
        for side, name in ((self.irc_listener, "chatroom-irc-port"), (self.web_listener, "chatroom-web-port")):
            if side is not None:
                threading.Thread(target=side.serve_forever, kwargs={"poll_interval": 0.2}, name=name,
                                 daemon=True).start()
        return thread


class SideDoor(socketserver.ThreadingTCPServer):
    """``--irc-port`` / ``--web-port``: another port for clients that assume one (6667
    for IRC, 80 or 8080 for browsers).  Its connections are the chat server's own: the
    same handler (which tells frames, IRC and HTTP apart by the first bytes, as on the
    main port), limits, TLS and registry."""

    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024

    def __init__(self, chat: ChatServer, port: int) -> None:
        self.chat = chat
        super().__init__((chat.config.host, port), ChatHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def get_request(self) -> tuple[socket.socket, Any]:
        return self.chat.wrap(*super().get_request())

    def finish_request(self, request: Any, client_address: Any) -> None:
        ChatHandler(request, client_address, self.chat)

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.chat.handle_error(request, client_address)
