"""The chat server: ``socketserver.ThreadingTCPServer`` with one handler per connection.

How a message travels::

    accepting thread (serve_forever)         one per port
      accept -> process_request: the Connection registered (or refused: full, too
      many from one address) in the order clients came -> its reader thread starts
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

import dataclasses
import logging
import os
import secrets
import socket
import socketserver
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chatroom.auth import derive_key
from chatroom.logfmt import about
from chatroom.protocol import (
    Bye,
    Error,
    ErrorCode,
    Moderate,
    Notice,
    encode_message,
)
from chatroom.server import threads
from chatroom.server.bans import BanList
from chatroom.server.chat_path import ChatPath, LocalChat
from chatroom.server.cluster_control import ClusterControl
from chatroom.server.cluster_link import ClusterLink
from chatroom.server.config import ServerConfig
from chatroom.server.connection import Connection
from chatroom.server.datadir import DataDirLock
from chatroom.server.doors import Door
from chatroom.server.entry import Entrance
from chatroom.server.guard import AuthGuard
from chatroom.server.handler import ChatHandler
from chatroom.server.hub import Batch, Hub
from chatroom.server.members import Member, Sanction
from chatroom.server.memstore import MEMORY_KEEP, MemoryStore
from chatroom.server.metrics import Metrics
from chatroom.server.outbox import Flusher
from chatroom.server.relay import DEFAULT_WINDOW, MAX_RECEIVING, Relay
from chatroom.server.room import ChatState
from chatroom.server.session import (
    CloseReason,
    RoomKey,
)
from chatroom.server.store import DB_NAME, HistoryStore, Store
from chatroom.server.wire import Outgoing
from chatroom.text import fold
from chatroom.tls import TlsBridge, certificate_fingerprint, server_context
from chatroom.trace import Tracer

__all__ = ["ServerConfig", "ChatServer", "ChatHandler", "Connection"]


log = logging.getLogger("chatroom.server")


class ChatServer(ClusterControl, socketserver.ThreadingTCPServer):
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
        threads.quiet_thread_names()  # (its handler threads are not threading's: threads.py)
        self.started = time.time()  # (IRC's STATS u)
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
        self.store: Store = self._open_store()
        self.hub = Hub(self._new_state(), self.store, self.config.max_header)
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
        self._secrets()
        self.flusher = Flusher()
        self.display_name = self.config.name or socket.gethostname()
        self.limits = self._welcome_limits()
        self._conns: dict[int, Connection] = {}
        self._per_address: dict[str, int] = {}  # ip -> connections in _conns (under _conns_lock)
        self._conns_lock = threading.Lock()
        self._conns_gone = threading.Condition(self._conns_lock)
        self._closed: Counter[str] = Counter()  # connections ended, by reason (under _conns_lock)
        #: GET /metrics: this server's numbers (see ``metrics.py``).
        self.metrics = Metrics(self)
        self.hub.store_timer = self.metrics.store_seconds.observe
        self._next_housekeeping = 0.0
        self._stopping = False
        self.stopped = threading.Event()  # set by stop(): wakes handlers that wait (see wait_turn)
        self.tls_context = None
        self.tls_fingerprint: str | None = None
        if self.config.tls_cert and self.config.tls_key:
            self.tls_context = server_context(Path(self.config.tls_cert), Path(self.config.tls_key))
            self.tls_fingerprint = certificate_fingerprint(Path(self.config.tls_cert))
        # (process_request makes each ChatHandler, with the Connection it admitted)
        super().__init__((self.config.host, self.config.port), ChatHandler)  # type: ignore[arg-type]
        if self.cluster is not None:
            self.cluster.address = f"{self.config.host}:{self.port}"
        self._side_doors()
        self.flusher.start()
        if self.cluster is not None:
            self.cluster.start(self.hub, self.on_cluster)

    def _open_store(self) -> Store:
        """The cluster's, or on disk (SQLite), or --memory: a bounded history that dies
        with the process."""
        if self.cluster is not None:
            return self.cluster.store
        if self.config.data_dir:
            return HistoryStore(Path(self.config.data_dir) / DB_NAME, sync=self.config.sync)
        return MemoryStore(keep=min(MEMORY_KEEP, self.config.keep_messages or MEMORY_KEEP))

    def _secrets(self) -> None:
        """The room key (PBKDF2, derived once: it is deliberately slow) and the
        operator token (in a cluster, the cluster's)."""
        salt = os.urandom(16)
        self.password = RoomKey(derive_key(self.config.password, salt), salt) if self.config.password else None
        self.op_token = self.config.op_password or secrets.token_urlsafe(12)
        if self.cluster is not None:
            self.op_token = self.cluster.shared_op_token(self.op_token)

    def _side_doors(self) -> None:
        """``--irc-port`` and ``--web-port``, if given (all closed again if one fails)."""
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

    def _new_state(self) -> ChatState:
        """The rooms and members as a server starts: what the store remembers (in a
        cluster, rooms are loaded from Redis as members come)."""
        return ChatState(history_size=self.config.history_size, max_text=self.config.max_text, store=self.store,
                         bans=self.store.bans(), max_rooms=self.config.max_rooms, peers=self.cluster)

    def entrance(self) -> Entrance:
        """The admission rules, with the settings in effect now (a SIGHUP may change them)."""
        return Entrance(self.display_name, self.limits, self.config.max_header, self.config.outbox_limit)

    def _welcome_limits(self) -> dict[str, int]:
        """The limits a welcome tells every client (protocol 1.1)."""
        return {
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

    def reconfigure(self, new: ServerConfig) -> list[str]:
        """Take the settings of ``new`` that can change while the server runs
        (``ServerConfig.LIVE``: limits, retention, history, the metrics' audience), at
        once and for every connection; returns the names of those that changed.  The
        rest (addresses, ports, TLS, storage, secrets) needs a restart: the caller says so."""
        changed = [name for name in ServerConfig.LIVE if getattr(new, name) != getattr(self.config, name)]
        if not changed:
            return []
        config = dataclasses.replace(self.config, **{name: getattr(new, name) for name in changed})
        limits = config.session_limits()
        now = time.monotonic()
        with self.hub.lock:
            self.config = config
            self.limits = self._welcome_limits()
            state = self.hub.state
            state.max_text = config.max_text
            if state.history_size != config.history_size:
                state.history_size = config.history_size
                for room in state.rooms.values():
                    room.history_size = config.history_size
                    room.history = deque(room.history, maxlen=config.history_size)
            self.relay.max_size = config.max_file_size
            for conn in self.connections():
                conn.session.relimit(limits, now)
                conn.outbox.limit = config.outbox_limit
        self._next_retention = 0.0  # a new retention applies at the next housekeeping
        return changed

    def reload_bans(self) -> int:
        """Read the ban list again from the store (``chatroom bans --unban`` changed it
        on disk): read outside the hub lock, swapped in under it.  Returns how many."""
        bans = self.store.bans()
        with self.hub.lock:
            self.hub.state.bans = BanList(bans)
        return len(bans)

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

    def process_request(self, request: Any, client_address: Any) -> None:
        """A connection is admitted here, in the accepting thread -- in the order the
        clients connected, so the one refused as one too many is the last to come --
        then served by a :class:`ChatHandler` on a thread of its own."""
        host, port = client_address[:2]
        conn = Connection(request, f"{host}:{port}", self.hub, self.flusher, self.config, self.password)
        refusal = self.register(conn)
        try:
            threads.start(self._serve, request, client_address, conn, refusal)
        except BaseException:  # no thread (the caller logs it and closes the socket)
            if refusal is None:
                self.unregister(conn)
            conn.ended.release()
            raise

    def _serve(self, request: Any, client_address: Any, conn: Connection, refusal: ErrorCode | None) -> None:
        """A connection's thread (socketserver's ``process_request_thread``)."""
        try:
            ChatHandler(request, client_address, self, conn, refusal)
        except Exception:  # noqa: BLE001 -- logged; the socket closes below
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def register(self, conn: Connection) -> ErrorCode | None:
        """Admit ``conn`` to the server, or say why not (full, shutting down)."""
        with self._conns_lock:
            if self._stopping:
                return ErrorCode.SHUTTING_DOWN
            if self.cluster is not None and self.cluster.fenced:
                return ErrorCode.UNAVAILABLE
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
                self._closed[(conn.session.close_reason or CloseReason.LOST).text] += 1
                left = self._per_address[conn.ip] - 1
                if left:
                    self._per_address[conn.ip] = left
                else:
                    del self._per_address[conn.ip]
            if not self._conns:
                self._conns_gone.notify_all()

    def closed_by_reason(self) -> dict[str, int]:
        with self._conns_lock:
            return dict(self._closed)

    def health(self) -> tuple[bool, str]:
        """Whether this server can do its job now (GET /healthz): its store answers
        (SQLite, or the cluster's Redis) and its last commit did not fail; and why not."""
        if not self.store.healthy():
            return False, "the cluster's Redis does not answer" if self.cluster is not None else \
                "the history database does not answer"
        if self.hub.save_failed:
            return False, "the last messages could not be stored"
        if self._stopping:
            return False, "shutting down"
        return True, "ok"

    def connections(self) -> list[Connection]:
        with self._conns_lock:
            return list(self._conns.values())

    def room_counts(self) -> list[tuple[str, int]]:
        """(room, people in it) for every room, for the LAN announcer (in a cluster:
        every room of the cluster, and everyone in it)."""
        with self.hub.lock:
            secret = {key for key, room in self.hub.state.rooms.items() if room.modes.secret}  # (never announced)
            here = [(room.name, len(room.members)) for key, room in self.hub.state.rooms.items() if key not in secret]
        if self.cluster is not None:
            try:
                return sorted(v for v in self.cluster.room_sizes().values() if fold(v[0]) not in secret)
            except Exception:  # noqa: BLE001 -- redis.RedisError: announce what this server knows
                pass
        return here

    def moderate(self, op: Member, msg: Moderate, batch: Batch) -> str:
        """Carry out an operator's action; returns what to tell the operator.  The room
        decides, under the hub lock; bans are stored and victims disconnected after it."""
        now = time.time()
        with self.hub.locked(batch) as state:
            sanction = state.moderate(op, msg.action, msg.target, msg.reason, msg.duration, now,
                                      handshaking=self._handshaking_from, room_name=msg.room)
            if sanction.notice is not None and sanction.notice[0].sink is not None:
                member, text = sanction.notice
                batch.queue(member.sink.me, Outgoing.of(Notice(text=text, to=member.nick)))
        if sanction.added is not None or sanction.lifted or sanction.victims or sanction.address:
            log.warning("%s: %s", op.nick, sanction.text, extra=about("moderated", nick=op.nick, room=msg.room))
        self._store_bans(sanction, batch)
        victims = self._victims(sanction)
        self._disconnect(victims, sanction.code, sanction.why)
        if self.cluster is not None:  # the members of other servers are theirs to kick or mute
            self.cluster.forward(sanction, msg)
        return sanction.text + (f" ({len(victims)} connection(s))" if sanction.address else "")

    def _victims(self, sanction: Sanction) -> list[Connection]:
        """The connections a sanction ends: its members', and every one from a banned address."""
        victims = [m.sink for m in sanction.victims if m.sink is not None]
        if sanction.address is not None:
            victims += [c for c in self.connections() if c.ip == sanction.address and c not in victims]
        return victims

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
        log.warning("dropping %s: %s", conn, reason.text, extra=_about_conn("dropped", conn))
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
                (log.debug if conn.idle_ok else log.warning)(
                    "dropping %s: %s", conn, session.close_text, extra=_about_conn("dropped", conn))
                conn.wake()

    def apply_retention(self) -> None:
        cfg = self.config
        if cfg.keep_messages is None and cfg.keep_days is None:
            return
        # Not under the hub lock: the store serialises itself, and the room goes on.
        deleted = self.store.prune(
            keep=cfg.keep_messages, max_age=cfg.keep_days * 86400 if cfg.keep_days is not None else None
        )
        if cfg.keep_days is not None:  # what recognises resends goes with the messages
            with self.hub.lock:
                self.hub.state.forget_sent_before(time.time() - cfg.keep_days * 86400)
        if deleted:
            log.info("retention: deleted %d old messages", deleted, extra=about("retention"))

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
        with self.hub.lock:
            self.hub.state.stopping = True  # (leaving members do not take their rooms' roles with them)
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
            if conn.ended.acquire(True, max(0.0, deadline - time.monotonic())):
                conn.ended.release()
        self.flusher.stop()
        if self.cluster is not None:
            self.cluster.stop()
        with self.hub.lock:
            self.store.close()
        if self.data_lock is not None:
            self.data_lock.release()
        log.info("server stopped", extra=about("stopped"))

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


def _about_conn(event: str, conn: Connection) -> dict[str, object]:
    member = conn.member
    return about(event, peer=conn.address, nick=member.nick if member is not None else None)


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
        super().__init__((chat.config.host, port), ChatHandler)  # type: ignore[arg-type]  # (as above)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def get_request(self) -> tuple[socket.socket, Any]:
        return self.chat.wrap(*super().get_request())

    def process_request(self, request: Any, client_address: Any) -> None:
        self.chat.process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.chat.handle_error(request, client_address)
