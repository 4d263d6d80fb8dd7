"""The network side of a chat client: connect, read, write, keepalive, reconnect.

No UI here, and no prompt_toolkit.  :class:`ChatClient` runs one network thread that
owns the socket (a ``selectors`` loop, non-blocking writes), so callers never block on
the network: ``say()`` and friends only queue and wake it.  Everything that happens is
reported as an event to the ``on_event`` callback, *from the network thread*; a UI
hands it over to its own loop.  The decisions are not made here but in sans-I/O
objects: the handshake's in ``handshake.py``, what each message means in
``session.py``, what is unsettled and its pace in ``outbound.py``, the keepalive in
``keepalive.py``.  This module pumps bytes and carries out what they say; reaching a
server is ``dialing.py``'s, staying connected ``reconnect.py``'s.

Events are the server's messages (``chatroom.protocol``) plus those of ``events.py``.

Outgoing chat is tracked by client message id until the server settles it, and paced
to the server's rate limit.  If the connection drops, the client reconnects with
backoff (0.5-1 s, doubling per round of its server list to 30 s, with jitter),
resumes its session (or rejoins its rooms in a new one), and sends what is still
unacknowledged, in order.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import selectors
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from chatroom.client.dialing import CertificateChanged, Dialing, NotTlsAnyMore, parse_address
from chatroom.client.events import ConnState, Outgoing, OutgoingChanged, StateChanged, Trusted
from chatroom.client.keepalive import Keepalive
from chatroom.client.outbound import ELSEWHERE_CODES, Outbound, Pacer, Verdict
from chatroom.client.reconnect import Reconnecting, Why
from chatroom.client.session import ClientSession, Emit, End, Request, SessionAction, Settle
from chatroom.client.transfers import Transfers, default_downloads
from chatroom.errors import FrameError, MessageError
from chatroom.protocol import (
    Action,
    Bye,
    Direct,
    Join,
    Message,
    Ping,
    Say,
    Welcome,
    decode_message,
    encode_message,
)
from chatroom.tls import KnownServers, normalize_fingerprint
from chatroom.trace import Tracer

__all__ = [
    "ConnState",
    "StateChanged",
    "Outgoing",
    "OutgoingChanged",
    "Trusted",
    "CertificateChanged",
    "NotTlsAnyMore",
    "ChatClient",
    "parse_address",
]

log = logging.getLogger("chatroom.client")

#: Messages that the server's rate limit does not count (PROTOCOL.md, "Rate limit").
_UNPACED = frozenset({"ping", "pong", "bye", "file_chunk", "file_ack", "file_done"})

#: Pace to this share of the server's advertised rate, and half its burst: the server
#: measures arrivals, which a network hiccup can bunch together.
PACE_MARGIN = 0.9
#: A message the server could not take now goes again after about this long, doubling
#: (with jitter) while it still cannot, up to the reconnect backoff's ceiling.
RETRY_START = 1.0


EventSink = Callable[[object], None]


class ChatClient(Dialing, Reconnecting):
    """A connection to a chat server that keeps itself alive.

    Call :meth:`connect` once (it raises on a first failure, so a command line can
    say what went wrong), then use :meth:`say`, :meth:`send` and friends from any
    thread, and :meth:`close` at the end.
    """

    BACKOFF_START = 1.0
    BACKOFF_MAX = 30.0

    def __init__(
        self,
        host: str,
        port: int,
        nick: str,
        *,
        on_event: EventSink | None = None,
        room: str | None = None,
        reconnect: bool = True,
        connect_timeout: float = 5.0,
        ping_interval: float = 30.0,
        pong_timeout: float = 20.0,
        tracer: Tracer | None = None,
        password: str | None = None,
        tls: bool = False,
        fingerprint: str | None = None,
        known_servers: KnownServers | None = None,
        downloads: Path | None = None,
        alternates: Sequence[tuple[str, int]] = (),
    ) -> None:
        self.tracer = tracer
        #: Other servers of the same rooms (a cluster): a reconnect that fails moves on
        #: to the next, round and round; the session resumes on whichever answers.
        self.addresses = [(host, port)] + [a for a in alternates if a != (host, port)]
        self.password = password
        self.tls = tls or fingerprint is not None
        self.pinned = normalize_fingerprint(fingerprint) if fingerprint else None
        self.known_servers = known_servers
        self.host, self.port = host, port
        # Events wait here until a handler is attached (a UI is usually built after
        # connect(), which already emits the welcome); they are then replayed in order.
        self._handler: EventSink | None = on_event
        self._backlog: list[object] = []
        self._emit_lock = threading.RLock()
        self.reconnect = reconnect
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        #: Where we are and what we have seen (no I/O): see client/session.py.
        self.session = ClientSession(nick, room or "")
        self.state = ConnState.CLOSED
        self._ids = itertools.count(1)
        self._id_prefix = os.urandom(4).hex()
        self._lock = threading.Lock()  # guards _outbound, _requests and _calls
        #: What the user sent and the server has not settled, and the pacing (no I/O).
        self._outbound = Outbound()
        #: A message the server could not take now (``unavailable``...) goes again then
        #: (a server alone; in a cluster the client moves on to another server at once).
        self._retry_at: float | None = None
        self._retry_wait = RETRY_START
        self._backoff = self.BACKOFF_START  # the reconnect backoff reached (see _reconnect)
        self._requests: deque[tuple[bytes, bool]] = deque()  # (frame, paced?) queued by callers
        self._calls: deque[Callable[[], None]] = deque()  # to run on the network thread
        self._sock: socket.socket | None = None
        self._link: _Link | None = None  # the connection being served (network thread's)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._closing = False
        self._skip_wait = False  # /reconnect: retry now
        self._bye_reason = "quit"
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition(self._lock)
        self.pings_answered = 0
        self.refused = 0  # messages the server refused (too long, muted...): never delivered
        #: File sharing: offers, uploads and downloads (see transfers.py).
        self.files = Transfers(downloads or default_downloads(), send=self._send_file_message, emit=self._emit,
                               next_id=self._next_id, run=self.call_soon)

    # ------------------------------------------------------------------ public API

    @property
    def on_event(self) -> EventSink | None:
        return self._handler

    @on_event.setter
    def on_event(self, handler: EventSink) -> None:
        """Attach the event handler; events so far are replayed to it first."""
        with self._emit_lock:
            backlog, self._backlog = self._backlog, []
            self._handler = handler
            for event in backlog:
                self._emit(event)

    @property
    def nick(self) -> str:
        return self.session.nick

    @property
    def room(self) -> str:
        return self.session.room

    @property
    def resumed(self) -> bool:
        """Whether the last (re)connection resumed our session."""
        return self.session.resumed

    def connect(self) -> Welcome:
        """Connect and say hello; start the network thread.  Raises
        :class:`ConnectionFailed` or :class:`HandshakeRefused` on a first failure."""
        self._set_state(ConnState.CONNECTING, f"connecting to {self.host}:{self.port}")
        sock, welcome, leftover = self._open()
        self._adopt(sock, welcome)
        self._thread = threading.Thread(target=self._run, args=(leftover,), name="chatroom-client", daemon=True)
        self._thread.start()
        return welcome

    def say(self, text: str, room: str | None = None) -> Outgoing:
        """Say ``text`` in ``room`` (default: the current room)."""
        return self._send_chat(Say(id=self._next_id(), text=text, room=room or self.session.room or None))

    def action(self, text: str, room: str | None = None) -> Outgoing:
        return self._send_chat(Action(id=self._next_id(), text=text, room=room or self.session.room or None))

    def direct(self, to: str, text: str) -> Outgoing:
        return self._send_chat(Direct(id=self._next_id(), to=to, text=text))

    def send(self, msg: Message) -> None:
        """Send a request (join, nick, who...).  Dropped while disconnected: such
        requests are about the present, unlike chat which is kept and resent."""
        if self.state is not ConnState.CONNECTED:
            return
        if isinstance(msg, Join):
            self.session.joining(msg.room)  # what we say next goes there
        self._queue(encode_message(msg), msg.TYPE not in _UNPACED)

    def _send_file_message(self, msg: Message) -> bool:
        if self.state is not ConnState.CONNECTED:
            return False
        self._queue(encode_message(msg), msg.TYPE not in _UNPACED)
        return True

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the network thread (at once if there is none): state that the
        network thread owns, such as file transfers, is changed there only."""
        thread = self._thread
        if thread is None or not thread.is_alive() or thread is threading.current_thread():
            fn()
            return
        with self._lock:
            self._calls.append(fn)
        self._wake()

    def reconnect_now(self) -> None:
        """Connect again: after a final refusal (a kick...), or without waiting for the
        next retry.  In the background; events tell how it goes."""
        self._skip_wait = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._wake()  # it is waiting to retry: retry now
            return
        self._closing = False
        self._thread = threading.Thread(target=self._run, args=([], True), name="chatroom-client", daemon=True)
        self._thread.start()

    def pace_time(self, messages: int) -> float:
        """Seconds the server's rate limit needs for ``messages`` more (0: no limit)."""
        rate = self._outbound.pacer.rate
        return messages / rate if rate > 0 else 0.0

    @property
    def lag(self) -> float | None:
        """How long the server took to answer our last keepalive ping -- or, while an
        answer is overdue, how long it has been so far.  None before the first one."""
        link = self._link
        if link is None:
            return None
        waiting = link.keepalive.pending_lag(time.monotonic())
        return waiting if waiting is not None and waiting > (link.keepalive.lag or 0.0) else link.keepalive.lag

    def pending(self) -> list[Outgoing]:
        with self._lock:
            return list(self._outbound.unacked.values())

    def wait_acked(self, timeout: float) -> bool:
        """Wait until every outgoing message is acknowledged or refused."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._outbound, timeout=timeout)

    def close(self, reason: str = "quit", timeout: float = 2.0) -> None:
        """Say goodbye and stop.  Safe to call twice."""
        self._bye_reason = reason
        self._closing = True
        self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._drop_socket()
        self.files.close()
        self._set_state(ConnState.CLOSED, "closed")
        for s in (self._wake_r, self._wake_w):
            try:
                s.close()
            except OSError:
                pass

    # ------------------------------------------------------------------ helpers

    def _next_id(self) -> str:
        return f"{self._id_prefix}-{next(self._ids)}"

    def _send_chat(self, msg: Say | Action | Direct) -> Outgoing:
        out = Outgoing(id=msg.id, message=msg)
        with self._lock:
            self._outbound.add(out)
            if self.state is ConnState.CONNECTED:
                self._requests.append((encode_message(msg), True))
        self._wake()
        self._emit(OutgoingChanged(out))
        return out

    def _queue(self, data: bytes, paced: bool = False) -> None:
        with self._lock:
            self._requests.append((data, paced))
        if threading.current_thread() is not self._thread:  # the network thread looks anyway
            self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass  # already pending, or closed

    def _set_state(self, state: ConnState, detail: str = "", retry_in: float | None = None) -> None:
        self.state = state
        self._emit(StateChanged(state, detail, retry_in))

    def _emit(self, event: object) -> None:
        with self._emit_lock:  # one order for everyone, replay included
            if self._handler is None:
                self._backlog.append(event)
                return
            try:
                self._handler(event)
            except Exception:  # a UI bug must not kill the network thread
                log.exception("event handler failed")

    # ------------------------------------------------------------------ connecting


    def _trace_in(self, size: int, frames: list) -> None:  # type: ignore[type-arg]
        tracer = self.tracer
        if tracer is None:
            return
        tracer.recv("server", size)
        if len(frames) > 1:
            tracer.note("server", f"one recv() held {len(frames)} frames: the decoder splits them")
        for frame in frames:
            tracer.frame_in("server", frame)

    def _adopt(self, sock: socket.socket, welcome: Welcome) -> None:
        actions = self.session.welcomed(welcome)
        self.files.max_size = welcome.limits.get("max_file")
        if "ping_interval" in welcome.limits:
            self.ping_interval = max(1.0, min(self.ping_interval, welcome.limits["ping_interval"] - 1.0))
        per_minute = welcome.limits.get("rate_per_minute", 0)
        self._sock = sock
        with self._lock:
            self._outbound.pacer = Pacer(per_minute / 60.0 * PACE_MARGIN, max(1.0, welcome.limits.get("burst", 1) / 2),
                                         time.monotonic())
            self._requests.clear()
            self._retry_at, self._retry_wait = None, RETRY_START
        self._set_state(ConnState.CONNECTED, f"connected to {welcome.server}")
        self._emit(welcome)
        # First what the session asks (a new session rejoins our rooms, sets our away
        # text again), then everything unacknowledged, in order, ahead of new requests:
        # a message for a room goes after the join that puts us back in it.
        self._carry_out(actions)
        with self._lock:
            self._requests.extend((encode_message(m), True) for m in self._outbound.to_resend())

    def _drop_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    # ------------------------------------------------------------------ network thread


    def _serve(self) -> Why:
        """Pump one connection until it ends; say why it ended."""
        sock = self._sock
        assert sock is not None
        link = _Link(sock, Keepalive(self.ping_interval, self.pong_timeout, time.monotonic()))
        self._link = link
        with selectors.DefaultSelector() as sel:
            sel.register(self._wake_r, selectors.EVENT_READ)
            sel.register(sock, selectors.EVENT_READ)
            while True:
                if self._closing:
                    self._goodbye(link)
                    return Why("closed", fatal=True)
                self._run_calls()
                retry_wait = self._resend_due(time.monotonic())
                pace_wait = self._take_requests(link.out)
                if retry_wait is not None:
                    pace_wait = retry_wait if pace_wait is None else min(pace_wait, retry_wait)
                link.want_write(sel, bool(link.out))
                timeout = self._keepalive(link, time.monotonic())
                if isinstance(timeout, Why):
                    return timeout
                if pace_wait is not None:
                    timeout = min(timeout, pace_wait)
                for key, events in sel.select(max(0.01, timeout)):
                    if key.fileobj is self._wake_r:
                        self._drain_wake()
                        continue
                    why = self._on_ready(link, events)
                    if why is not None:
                        return why

    def _keepalive(self, link: _Link, now: float) -> float | Why:
        """Ping a silent server; give up on one that does not answer (the decisions
        are ``keepalive.py``'s).  Returns how long the loop may wait, or why the
        connection is over."""
        alive = link.keepalive
        if alive.expired(now):
            return Why("the server stopped answering")
        if alive.ping_due(now):
            link.out += encode_message(Ping(token="client"))
            return 0.0
        return alive.wait(now)

    def _on_ready(self, link: _Link, events: int) -> Why | None:
        """The socket is writable and/or readable: write what is queued, read and handle
        what arrived."""
        sock = link.sock
        if events & selectors.EVENT_WRITE and link.out:
            try:
                del link.out[:sock.send(link.out[:65536] if self.tls else link.out)]
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
            except OSError as exc:
                return Why(f"connection lost ({exc.strerror or exc})")
        while events & selectors.EVENT_READ:
            try:
                data = sock.recv(1 << 18)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            except OSError as exc:
                return Why(f"connection lost ({exc.strerror or exc})")
            if not data:
                return Why("the server closed the connection")
            why = self._received(link, data)
            if why is not None:
                return why
            # OpenSSL may hold decrypted bytes that select() cannot see
            if not (self.tls and isinstance(sock, ssl.SSLSocket) and sock.pending()):
                break
        return None

    def _received(self, link: _Link, data: bytes) -> Why | None:
        link.keepalive.heard(time.monotonic())
        try:
            frames = self._decoder.feed(data)
        except FrameError as exc:
            return Why(f"the server sent garbage ({exc})")
        self._trace_in(len(data), frames)
        for frame in frames:
            try:
                msg = decode_message(frame)
            except MessageError as exc:
                log.warning("ignoring a message from the server: %s", exc)
                continue
            why = self._handle(msg)
            if why is not None:
                return why
        return None

    def _take_requests(self, out: bytearray) -> float | None:
        """Move queued requests to ``out``: paced ones (counted by the server's rate
        limit) only as the pacer allows, in order; the rest at once.  Returns the
        seconds until the next paced one may go, if one is waiting."""
        now = time.monotonic()
        with self._lock:
            if not self._requests:
                return None
            waiting: deque[tuple[bytes, bool]] = deque()
            blocked = False
            pacer = self._outbound.pacer
            for data, paced in self._requests:
                if paced and (blocked or not pacer.take(now)):
                    blocked = True
                    waiting.append((data, paced))
                    continue
                if self.tracer is not None:
                    self.tracer.frame_out("-> server", data)
                out += data
            self._requests = waiting
        return pacer.wait(now) if blocked else None

    def _goodbye(self, link: _Link) -> None:
        """Send everything queued and a bye, then read what the server still sends until
        it closes (it does on a bye): the echo and ack of a line said just before
        quitting are not lost.  Best effort, bounded to a second."""
        sock, out = link.sock, link.out
        with self._lock:  # what was said just before quitting goes too, paced or not
            for data, _paced in self._requests:
                out += data
            self._requests.clear()
        bye = encode_message(Bye(reason=self._bye_reason))
        if self.tracer is not None:
            self.tracer.frame_out("-> server", bye)
        out += bye
        deadline = time.monotonic() + 1.0
        try:
            sock.setblocking(True)
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            sock.sendall(out)
            if not isinstance(sock, ssl.SSLSocket):  # an SSLSocket shut down reads raw bytes
                sock.shutdown(socket.SHUT_WR)
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                data = sock.recv(1 << 18)
                if not data or self._received(link, data) is not None:
                    return
        except (OSError, ValueError):  # ValueError: TLS closed under us
            pass

    # ------------------------------------------------------------------ incoming

    def _handle(self, msg: Message) -> Why | None:
        """A message from the server: the session says what it means; do that."""
        if isinstance(msg, Ping):
            self.pings_answered += 1
        if self.files.handle(msg):
            return None  # reported as TransferChanged events
        return self._carry_out(self.session.receive(msg))

    def _carry_out(self, actions: list[SessionAction]) -> Why | None:
        why: Why | None = None
        for action in actions:
            if type(action) is Emit:
                self._emit(action.event)
            elif type(action) is Request:
                self._queue(encode_message(action.message), action.message.TYPE not in _UNPACED)
            elif type(action) is Settle:
                why = self._settle(action.id, action.code, action.error) or why
            elif type(action) is End:
                why = Why(action.why, fatal=action.fatal, move_on=action.elsewhere and len(self.addresses) > 1)
        return why

    def _settle(self, msg_id: str, code: str | None, error: str = "") -> Why | None:
        """The server answered one of our messages (``code`` None: an ack)."""
        with self._lock:
            out, verdict = self._outbound.settle(msg_id, code, error)
            if not self._outbound:
                self._idle.notify_all()
            if verdict is Verdict.ACKED:
                self._retry_wait, self._backoff = RETRY_START, self.BACKOFF_START
        self._backoff = self.BACKOFF_START  # the reconnect backoff reached (see _reconnect)
        if out is None:
            return None
        if verdict is Verdict.RETRY:
            if code in ELSEWHERE_CODES and len(self.addresses) > 1:
                return Why(f"{self.host}:{self.port} cannot take messages now ({error}); trying another server",
                            move_on=True)
            if self._retry_at is None:  # one timer for all of them: they go again together, in order
                self._retry_at = time.monotonic() + self._retry_wait * random.uniform(0.5, 1.0)
                self._retry_wait = min(self._retry_wait * 2, self.BACKOFF_MAX)
            return None
        if verdict is Verdict.REFUSED:
            self.refused += 1
        self._emit(OutgoingChanged(out))
        return None

    def _resend_due(self, now: float) -> float | None:
        """Send again what the server could not take, once its pause is over.
        Returns how long the loop may wait for that."""
        if self._retry_at is None:
            return None
        if now < self._retry_at:
            return self._retry_at - now
        self._retry_at = None
        with self._lock:
            self._requests.extend((encode_message(m), True) for m in self._outbound.retrying())
        return 0.0


class _Link:
    """One connection's socket and its loop's state (network thread only)."""

    __slots__ = ("sock", "out", "keepalive", "writing")

    def __init__(self, sock: socket.socket, keepalive: Keepalive) -> None:
        self.sock = sock
        self.out = bytearray()  # bytes waiting for the socket
        self.keepalive = keepalive
        self.writing = False  # registered for EVENT_WRITE

    def want_write(self, sel: selectors.BaseSelector, writing: bool) -> None:
        if writing != self.writing:
            sel.modify(self.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if writing else 0))
            self.writing = writing


