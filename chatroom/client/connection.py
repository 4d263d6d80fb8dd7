"""The network side of a chat client: connect, read, write, keepalive, reconnect.

No UI here, and no prompt_toolkit.  :class:`ChatClient` runs one network thread that
owns the socket (a ``selectors`` loop, non-blocking writes), so callers never block on
the network: ``say()`` and friends only queue and wake it.  Everything that happens is
reported as an event to the ``on_event`` callback, *from the network thread*; a UI
hands it over to its own loop.  The decisions are not made here but in one sans-I/O
object, :class:`~chatroom.client.protocol.ClientProtocol` (the hello, what each
message means, what is unsettled and its pace, resends, the keepalive).  This module
pumps bytes and reports what the protocol says; reaching a server is
``dialing.py``'s, staying connected ``reconnect.py``'s.

Events are the server's messages (``chatroom.protocol``) plus those of ``events.py``.

Outgoing chat is tracked by client message id until the server settles it, and paced
to the server's rate limit.  If the connection drops, the client reconnects with
backoff (0.5-1 s, doubling per round of its server list to 30 s, with jitter),
resumes its session (or rejoins its rooms in a new one), and sends what is still
unacknowledged, in order.
"""

from __future__ import annotations

import logging
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
from chatroom.client.protocol import ClientProtocol, Why
from chatroom.client.reconnect import Reconnecting
from chatroom.client.transfers import Transfers, default_downloads
from chatroom.errors import FrameError
from chatroom.protocol import Message, Welcome
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
        #: Everything the conversation with the server decides (no I/O): the hello, the
        #: session, what is unsettled and its pace, resends, the keepalive.
        self.protocol = ClientProtocol(nick, room or "", ping_interval=ping_interval, pong_timeout=pong_timeout,
                                       servers=len(self.addresses))
        #: Where we are and what we have seen (the protocol's; see client/session.py).
        self.session = self.protocol.session
        self.state = ConnState.CLOSED
        self._lock = threading.Lock()  # guards the protocol and _calls
        self._backoff = self.BACKOFF_START  # the reconnect backoff reached (see _reconnect)
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
        #: File sharing: offers, uploads and downloads (see transfers.py).
        self.files = Transfers(downloads or default_downloads(), send=self._send_file_message, emit=self._emit,
                               next_id=self.protocol.next_id, run=self.call_soon)

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
    def pings_answered(self) -> int:
        return self.protocol.pings_answered

    @property
    def refused(self) -> int:
        """Messages the server refused (too long, muted...): never delivered."""
        return self.protocol.refused

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
        return self._send_chat(lambda p: p.say(text, room))

    def action(self, text: str, room: str | None = None) -> Outgoing:
        return self._send_chat(lambda p: p.say(text, room, action=True))

    def direct(self, to: str, text: str) -> Outgoing:
        return self._send_chat(lambda p: p.direct(to, text))

    def send(self, msg: Message) -> None:
        """Send a request (join, nick, who...).  Dropped while disconnected: such
        requests are about the present, unlike chat which is kept and resent."""
        self._send_file_message(msg)

    def _send_file_message(self, msg: Message) -> bool:
        with self._lock:
            sent = self.protocol.request(msg)
        if sent and threading.current_thread() is not self._thread:  # the network thread looks anyway
            self._wake()
        return sent

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
        return self.protocol.pace_time(messages)

    @property
    def lag(self) -> float | None:
        """How long the server took to answer our last keepalive ping -- or, while an
        answer is overdue, how long it has been so far.  None before the first one."""
        with self._lock:
            return self.protocol.lag_at(time.monotonic())

    def pending(self) -> list[Outgoing]:
        with self._lock:
            return list(self.protocol.outbound.unacked.values())

    def wait_acked(self, timeout: float) -> bool:
        """Wait until every outgoing message is acknowledged or refused."""
        with self._idle:
            return self._idle.wait_for(lambda: not self.protocol.outbound, timeout=timeout)

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

    def _send_chat(self, make: Callable[[ClientProtocol], Outgoing]) -> Outgoing:
        with self._lock:
            out = make(self.protocol)
        self._wake()
        self._emit(OutgoingChanged(out))
        return out

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
        self.files.max_size = welcome.limits.get("max_file")
        self._sock = sock
        with self._lock:
            actions = self.protocol.welcomed(welcome, self._decoder, time.monotonic(), f"{self.host}:{self.port}")
        self._set_state(ConnState.CONNECTED, f"connected to {welcome.server}")
        self._emit(welcome)
        # First what the session asks (a new session rejoins our rooms, sets our away
        # text again), then everything unacknowledged, in order, ahead of new requests:
        # a message for a room goes after the join that puts us back in it.
        with self._lock:
            events, _ = self.protocol.carry_out(actions, time.monotonic())
            self.protocol.resend()
        for event in events:
            self._emit(event)

    def _drop_socket(self) -> None:
        with self._lock:
            self.protocol.lost()
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
        link = _Link(sock)
        with selectors.DefaultSelector() as sel:
            sel.register(self._wake_r, selectors.EVENT_READ)
            sel.register(sock, selectors.EVENT_READ)
            while True:
                if self._closing:
                    self._goodbye(link)
                    return Why("closed", fatal=True)
                self._run_calls()
                timeout = self._due(link, time.monotonic())
                if isinstance(timeout, Why):
                    return timeout
                link.want_write(sel, bool(link.out))
                for key, events in sel.select(max(0.01, timeout)):
                    if key.fileobj is self._wake_r:
                        self._drain_wake()
                        continue
                    why = self._on_ready(link, events)
                    if why is not None:
                        return why

    def _due(self, link: _Link, now: float) -> float | Why:
        """What the protocol lets go now (pings, resends, paced requests) to the
        socket's buffer; how long the loop may wait, or why the connection is over."""
        with self._lock:
            wait = self.protocol.timers(now)
            if isinstance(wait, Why):
                return wait
            ready, pace_wait = self.protocol.data_to_send(now)
        for data in ready:
            if self.tracer is not None:
                self.tracer.frame_out("-> server", data)
            link.out += data
        return wait if pace_wait is None else min(wait, pace_wait)

    def _on_ready(self, link: _Link, events: int) -> Why | None:
        """The socket is writable and/or readable: write what is queued, read and handle
        what arrived."""
        if events & selectors.EVENT_WRITE and link.out:
            why = self._write(link)
            if why is not None:
                return why
        return self._read(link) if events & selectors.EVENT_READ else None

    def _write(self, link: _Link) -> Why | None:
        try:
            del link.out[:link.sock.send(link.out[:65536] if self.tls else link.out)]
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except OSError as exc:
            return Why(f"connection lost ({exc.strerror or exc})")
        return None

    def _read(self, link: _Link) -> Why | None:
        sock = link.sock
        while True:
            try:
                data = sock.recv(1 << 18)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return None
            except OSError as exc:
                return Why(f"connection lost ({exc.strerror or exc})")
            if not data:
                return Why("the server closed the connection")
            why = self._received(link, data)
            # OpenSSL may hold decrypted bytes that select() cannot see
            if why is not None or not (self.tls and isinstance(sock, ssl.SSLSocket) and sock.pending()):
                return why

    def _received(self, link: _Link, data: bytes) -> Why | None:
        try:
            with self._lock:
                frames, messages = self.protocol.data_received(data, time.monotonic())
        except FrameError as exc:
            return Why(f"the server sent garbage ({exc})")
        self._trace_in(len(data), frames)
        for msg in messages:
            why = self._handle(msg)
            if why is not None:
                return why
        return None

    def _goodbye(self, link: _Link) -> None:
        """Send everything queued and a bye, then read what the server still sends until
        it closes (it does on a bye): the echo and ack of a line said just before
        quitting are not lost.  Best effort, bounded to a second."""
        sock, out = link.sock, link.out
        with self._lock:  # what was said just before quitting goes too, paced or not
            frames = self.protocol.goodbye(self._bye_reason)
        for data in frames:
            if self.tracer is not None:
                self.tracer.frame_out("-> server", data)
            out += data
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
        """A message from the server: the protocol says what it means; report that."""
        if self.files.handle(msg):
            return None  # reported as TransferChanged events
        with self._lock:
            settled = self.protocol.settled
            events, why = self.protocol.receive(msg, time.monotonic())
            if self.protocol.settled != settled:
                self._backoff = self.BACKOFF_START  # the server works: a reconnect starts afresh
                if not self.protocol.outbound:
                    self._idle.notify_all()
        for event in events:
            self._emit(event)
        return why


class _Link:
    """One connection's socket and its loop's state (network thread only)."""

    __slots__ = ("sock", "out", "writing")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.out = bytearray()  # bytes waiting for the socket
        self.writing = False  # registered for EVENT_WRITE

    def want_write(self, sel: selectors.BaseSelector, writing: bool) -> None:
        if writing != self.writing:
            sel.modify(self.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if writing else 0))
            self.writing = writing


