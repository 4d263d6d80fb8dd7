"""The network side of a chat client: connect, read, write, keepalive, reconnect.

No UI here, and no prompt_toolkit.  :class:`ChatClient` runs one network thread that
owns the socket (a ``selectors`` loop, non-blocking writes), so callers never block on
the network: ``say()`` and friends only queue and wake it.  Everything that happens is
reported as an event to the ``on_event`` callback, *from the network thread*; a UI
hands it over to its own loop.  The decisions are not made here: the handshake's in
``handshake.py``, what each message means in ``session.py`` (both sans-I/O); this
module pumps bytes and carries out what they say.

Events are the server's messages (``chatroom.protocol``) plus the local ones below.

Outgoing chat is tracked by client message id until the server acknowledges it, and
paced to the server's rate limit.  If the connection drops, the client reconnects with
backoff (0.5-1 s, doubling to 30 s, with jitter), resumes its session, and sends what
is still unacknowledged, in order.
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
from dataclasses import dataclass
from pathlib import Path

from chatroom import __version__
from chatroom.auth import NONCE_BYTES
from chatroom.client.events import ConnState, Outgoing, OutgoingChanged, StateChanged, Trusted
from chatroom.client.handshake import ClientHandshake, Done, NeedTls, Send
from chatroom.client.outbound import ELSEWHERE_CODES, Outbound, Pacer, Verdict
from chatroom.client.session import FATAL_CODES, ClientSession, Emit, End, Request, SessionAction, Settle
from chatroom.client.transfers import Transfers, default_downloads
from chatroom.errors import ConnectionFailed, FrameError, HandshakeRefused, MessageError
from chatroom.protocol import (
    Action,
    Bye,
    Direct,
    ErrorCode,
    FrameDecoder,
    Join,
    Message,
    Notice,
    Ping,
    Say,
    Welcome,
    decode_message,
    encode_message,
)
from chatroom.text import fold
from chatroom.tls import KnownServers, client_context, fingerprint, normalize_fingerprint
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


def parse_address(text: str | None, default_port: int) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT``, ``:PORT`` or ``[IPv6]:PORT`` -> (host, port)."""
    if not text:
        return "127.0.0.1", default_port
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if port and not port.isdigit():
        raise ValueError(f"{port!r} is not a port number")
    number = int(port) if port else default_port
    if not 0 < number < 65536:
        raise ValueError(f"port {number} is out of range")
    return host or "127.0.0.1", number


class ChatClient:
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

    def _open(self) -> tuple[socket.socket, Welcome, list[Message]]:
        """Connect, hello, and wait for welcome.  Returns messages that came after it."""
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except ConnectionRefusedError:
            raise ConnectionFailed(
                f"nothing is listening on {self.host}:{self.port} (is the server running? right port?)"
            ) from None
        except TimeoutError:
            raise ConnectionFailed(
                f"no answer from {self.host}:{self.port} within {self.connect_timeout:g} s "
                "(wrong address, or a firewall?)"
            ) from None
        except socket.gaierror:
            raise ConnectionFailed(f"cannot find a host called {self.host!r}") from None
        except OSError as exc:
            raise ConnectionFailed(f"cannot reach {self.host}:{self.port}: {exc.strerror or exc}") from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pin = self._known_pin()
            if self.tls or pin is not None:  # a server met over TLS is never spoken to in plaintext
                sock = self._secure(sock, pin)
            # The decisions are the handshake's (client/handshake.py); this only pumps.
            handshake = ClientHandshake(
                nick=self.session.wanted_nick, room=self.session.room, client=f"chatroom {__version__}",
                password=self.password, nonce=os.urandom(NONCE_BYTES) if self.password is not None else None,
                resume_token=self.session.resume_token,
                last_seq=self.session.last_seq.get(fold(self.session.room)), seen=self.session.seen(), tls=self.tls)
            self._send_blocking(sock, handshake.hello)
            return self._pump_handshake(sock, handshake)
        except NeedTls:
            sock.close()
            self.tls = True  # the server insists on TLS: an upgrade, never a downgrade
            return self._open()
        except (FrameError, MessageError) as exc:
            sock.close()
            raise ConnectionFailed(f"{self.host}:{self.port} does not speak the chatroom protocol ({exc})") from None
        except BaseException:
            sock.close()
            raise

    def _pump_handshake(self, sock: socket.socket, handshake: ClientHandshake
                        ) -> tuple[socket.socket, Welcome, list[Message]]:
        """Read until the handshake is done (or refused), sending what it asks to."""
        decoder = FrameDecoder(max_header=1 << 20)
        deadline = time.monotonic() + self.connect_timeout + 5
        while True:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                data = sock.recv(1 << 16)
            except TimeoutError:
                raise ConnectionFailed(f"{self.host}:{self.port} did not answer the handshake") from None
            if not data:
                raise ConnectionFailed(f"{self.host}:{self.port} closed the connection during the handshake")
            # The server is alive and talking (it may be making a throttled address wait).
            deadline = max(deadline, time.monotonic() + self.connect_timeout + 5)
            frames = decoder.feed(data)
            self._trace_in(len(data), frames)
            messages = []
            for frame in frames:  # a newer server may send what this client does not know: skip it
                try:
                    messages.append(decode_message(frame))
                except MessageError as exc:
                    log.warning("ignoring a message from the server: %s", exc)
            for i, msg in enumerate(messages):
                if isinstance(msg, Notice):
                    log.info("server notice during the handshake: %s", msg.text)
                step = handshake.receive(msg)
                if isinstance(step, Send):
                    self._send_blocking(sock, step.message)
                elif isinstance(step, Done):
                    if handshake.resume_refused:
                        log.info("resume refused; joined afresh")
                        self.session.resume_token = None
                    sock.setblocking(False)
                    self._decoder = decoder
                    return sock, step.welcome, messages[i + 1:]

    def _known_pin(self) -> str | None:
        """The fingerprint remembered for this server (trust on first use), if any."""
        if self.known_servers is None:
            return None
        return self.known_servers.lookup(f"{self.host}:{self.port}")

    def _secure(self, sock: socket.socket, known: str | None = None) -> socket.socket:
        """TLS handshake, then the certificate check: pinned, remembered, or new."""
        server = f"{self.host}:{self.port}"
        try:
            tls = client_context().wrap_socket(sock)
        except (ssl.SSLError, OSError) as exc:
            sock.close()
            if known is not None and not self.tls:
                where = self.known_servers.path if self.known_servers else "known_servers"
                raise NotTlsAnyMore(
                    f"refusing plaintext: {server} spoke TLS before (its certificate is pinned in {where}) but does "
                    f"not now ({exc}). Someone may be downgrading you. If its host really turned TLS off, join "
                    f"once with --forget-pin."
                ) from None
            raise ConnectionFailed(f"TLS with {server} failed ({exc}): is it a TLS server?") from None
        der = tls.getpeercert(binary_form=True) or b""
        fp = fingerprint(der)
        expected = self.pinned or known
        first_time = False
        if expected is None and self.known_servers is not None:
            self.known_servers.remember(server, fp)
            expected, first_time = fp, True
        if expected is not None and fp != expected:
            tls.close()
            if self.pinned:
                raise CertificateChanged(
                    f"WARNING: {server} presented certificate {fp}, not the {expected} you gave with "
                    "--fingerprint. Someone may be impersonating the room: check the fingerprint with its host."
                )
            where = self.known_servers.path if self.known_servers else "known_servers"
            raise CertificateChanged(
                f"WARNING: THE CERTIFICATE OF {server} HAS CHANGED. Someone may be impersonating the room, or "
                f"its host made a new certificate. Expected {expected}, got {fp}. Ask the host for the "
                f"fingerprint 'chatroom serve --tls' printed; if it is {fp}, remove the line for {server} from "
                f"{where} (or join with --fingerprint {fp})."
            )
        self._emit(Trusted(server, fp, first_time))
        return tls

    def _send_blocking(self, sock: socket.socket, msg: Message) -> None:
        data = encode_message(msg)
        if self.tracer is not None:
            self.tracer.frame_out("-> server", data)
        sock.sendall(data)

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

    def _run(self, leftover: list[Message], reconnect_first: bool = False) -> None:
        """The network thread: serve the connection, reconnect when it drops, until
        closed or refused for good.  Nothing escapes it: an unexpected error is logged
        and handled like a lost connection (a reconnect and a resume), never a silent
        stall."""
        connected = not reconnect_first
        reason = _Why("reconnecting")
        while not self._closing:
            if connected:
                reason = self._serve_safely(leftover)
                leftover = []
                self._drop_socket()
                self.files.connection_lost()
                if self._closing:
                    break
                if reason.fatal or not self.reconnect:
                    self._set_state(ConnState.CLOSED, reason.text)
                    return
            if reason.move_on:
                self._next_address()
            back = self._reconnect(reason)
            if back is None:
                return
            connected, leftover = True, back

    def _reconnect(self, reason: _Why) -> list[Message] | None:
        """Reconnect with backoff (and jitter: a whole class must not retry in step)
        until it works (the messages that came after the welcome), the user quits, or
        the server refuses us for good (None).  The backoff grows once per round of
        the server list, not per server tried: after a whole cluster restarts,
        everyone is back within seconds."""
        # A server that took us but could not serve (``move_on``) is not progress: the
        # backoff goes on growing from where it was; any other reconnect starts afresh.
        backoff = self._backoff if reason.move_on else self.BACKOFF_START
        while not self._closing:
            skip = self._skip_wait
            wait = 0.0 if skip else backoff * random.uniform(0.5, 1.0)
            self._skip_wait = False
            self._set_state(ConnState.DISCONNECTED, reason.text, retry_in=wait)
            if self._sleep(wait):
                break
            if not skip:
                backoff = self._backoff = min(backoff * 2, self.BACKOFF_MAX)
            self._set_state(ConnState.CONNECTING, f"reconnecting to {self.host}:{self.port}")
            try:
                sock, welcome, leftover = self._open()
            except CertificateChanged as exc:  # final: retrying would not make it safe
                self._set_state(ConnState.CLOSED, str(exc))
                return None
            except HandshakeRefused as exc:
                if exc.code in FATAL_CODES:
                    self._set_state(ConnState.CLOSED, exc.message)
                    return None
                reason = _Why(f"{exc.message}; retrying")
                if exc.code == ErrorCode.UNAVAILABLE.value:  # this server cannot serve now: another may
                    self._next_address()
                continue
            except ConnectionFailed as exc:
                reason = _Why(exc.args[0] if exc.args else "connection failed")
                self._next_address()
                continue
            except Exception as exc:  # noqa: BLE001 -- the network thread never dies of a bug
                log.error("reconnecting failed unexpectedly: %s: %s", type(exc).__name__, exc)
                log.debug("traceback", exc_info=exc)
                reason = _Why(f"reconnecting failed ({type(exc).__name__}: {exc})")
                continue
            self._adopt(sock, welcome)
            return leftover
        return None

    def _next_address(self) -> None:
        """Try the next server of the cluster next time (at once: it is another server)."""
        if len(self.addresses) > 1:
            i = self.addresses.index((self.host, self.port)) if (self.host, self.port) in self.addresses else -1
            self.host, self.port = self.addresses[(i + 1) % len(self.addresses)]
            self._skip_wait = i + 1 < len(self.addresses)  # one round without waiting, then back off

    def _serve_safely(self, leftover: list[Message]) -> _Why:
        try:
            for msg in leftover:
                why = self._handle(msg)
                if why is not None:
                    return why
            return self._serve()
        except Exception as exc:  # noqa: BLE001 -- a bug ends this connection, not the client
            log.error("unexpected error in the network thread, reconnecting: %s: %s", type(exc).__name__, exc)
            log.debug("traceback", exc_info=exc)
            return _Why(f"the client hit a bug ({type(exc).__name__}: {exc}); reconnecting")

    def _run_calls(self) -> None:
        with self._lock:
            calls, self._calls = self._calls, deque()
        for fn in calls:
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 -- a failed action is reported, the thread goes on
                log.error("an action on the network thread failed: %s: %s", type(exc).__name__, exc)
                log.debug("traceback", exc_info=exc)

    def _sleep(self, seconds: float) -> bool:
        """Sleep, waking early on close (or /reconnect).  True if closing."""
        deadline = time.monotonic() + seconds
        with selectors.DefaultSelector() as sel:
            sel.register(self._wake_r, selectors.EVENT_READ)
            while not self._closing and time.monotonic() < deadline and not self._skip_wait:
                sel.select(deadline - time.monotonic())
                self._drain_wake()
                self._run_calls()
        return self._closing

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _serve(self) -> _Why:
        """Pump one connection until it ends; say why it ended."""
        sock = self._sock
        assert sock is not None
        link = _Link(sock, time.monotonic())
        with selectors.DefaultSelector() as sel:
            sel.register(self._wake_r, selectors.EVENT_READ)
            sel.register(sock, selectors.EVENT_READ)
            while True:
                if self._closing:
                    self._goodbye(link)
                    return _Why("closed", fatal=True)
                self._run_calls()
                retry_wait = self._resend_due(time.monotonic())
                pace_wait = self._take_requests(link.out)
                if retry_wait is not None:
                    pace_wait = retry_wait if pace_wait is None else min(pace_wait, retry_wait)
                link.want_write(sel, bool(link.out))
                timeout = self._keepalive(link, time.monotonic())
                if isinstance(timeout, _Why):
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

    def _keepalive(self, link: _Link, now: float) -> float | _Why:
        """Ping a silent server; give up on one that does not answer.  Returns how long
        the loop may wait, or why the connection is over."""
        if link.ping_sent is not None and now - link.ping_sent > self.pong_timeout:
            return _Why("the server stopped answering")
        if link.ping_sent is None and now - link.last_heard > self.ping_interval:
            link.out += encode_message(Ping(token="client"))
            link.ping_sent = now
            return 0.0
        due = link.ping_sent + self.pong_timeout if link.ping_sent else link.last_heard + self.ping_interval
        return due - now

    def _on_ready(self, link: _Link, events: int) -> _Why | None:
        """The socket is writable and/or readable: write what is queued, read and handle
        what arrived."""
        sock = link.sock
        if events & selectors.EVENT_WRITE and link.out:
            try:
                del link.out[:sock.send(link.out[:65536] if self.tls else link.out)]
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
            except OSError as exc:
                return _Why(f"connection lost ({exc.strerror or exc})")
        while events & selectors.EVENT_READ:
            try:
                data = sock.recv(1 << 18)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            except OSError as exc:
                return _Why(f"connection lost ({exc.strerror or exc})")
            if not data:
                return _Why("the server closed the connection")
            why = self._received(link, data)
            if why is not None:
                return why
            # OpenSSL may hold decrypted bytes that select() cannot see
            if not (self.tls and isinstance(sock, ssl.SSLSocket) and sock.pending()):
                break
        return None

    def _received(self, link: _Link, data: bytes) -> _Why | None:
        link.last_heard, link.ping_sent = time.monotonic(), None
        try:
            frames = self._decoder.feed(data)
        except FrameError as exc:
            return _Why(f"the server sent garbage ({exc})")
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

    def _handle(self, msg: Message) -> _Why | None:
        """A message from the server: the session says what it means; do that."""
        if isinstance(msg, Ping):
            self.pings_answered += 1
        if self.files.handle(msg):
            return None  # reported as TransferChanged events
        return self._carry_out(self.session.receive(msg))

    def _carry_out(self, actions: list[SessionAction]) -> _Why | None:
        why: _Why | None = None
        for action in actions:
            if type(action) is Emit:
                self._emit(action.event)
            elif type(action) is Request:
                self._queue(encode_message(action.message), action.message.TYPE not in _UNPACED)
            elif type(action) is Settle:
                why = self._settle(action.id, action.code, action.error) or why
            elif type(action) is End:
                why = _Why(action.why, fatal=action.fatal)
        return why

    def _settle(self, msg_id: str, code: str | None, error: str = "") -> _Why | None:
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
                return _Why(f"{self.host}:{self.port} cannot take messages now ({error}); trying another server",
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

    __slots__ = ("sock", "out", "last_heard", "ping_sent", "writing")

    def __init__(self, sock: socket.socket, now: float) -> None:
        self.sock = sock
        self.out = bytearray()  # bytes waiting for the socket
        self.last_heard = now
        self.ping_sent: float | None = None
        self.writing = False  # registered for EVENT_WRITE

    def want_write(self, sel: selectors.BaseSelector, writing: bool) -> None:
        if writing != self.writing:
            sel.modify(self.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if writing else 0))
            self.writing = writing


class CertificateChanged(ConnectionFailed):
    """The server's TLS certificate is not the one we know: refuse, loudly."""


class NotTlsAnyMore(CertificateChanged):
    """A server we pinned over TLS answered without TLS: refuse the downgrade."""


@dataclass(frozen=True)
class _Why:
    """Why a connection ended, and whether trying again makes sense."""

    text: str
    fatal: bool = False
    move_on: bool = False  # try the next server of the list (this one cannot serve now)
