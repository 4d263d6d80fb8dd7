"""The client's network thread between connections: serve one until it ends,
then reconnect -- with backoff that grows once per round of the server list,
jitter, and a move to the next server when one cannot serve -- until it works,
the user quits, or the server refuses for good.  A part of
:class:`~chatroom.client.connection.ChatClient`."""

from __future__ import annotations

import logging
import random
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from chatroom.client.dialing import CertificateChanged
from chatroom.client.events import ConnState
from chatroom.client.protocol import Why
from chatroom.client.session import FATAL_CODES
from chatroom.client.transfers import Transfers
from chatroom.errors import ConnectionFailed, HandshakeRefused
from chatroom.protocol import (
    ErrorCode,
    Message,
    Welcome,
)

__all__ = ["Reconnecting", "Why"]

log = logging.getLogger("chatroom.client")


class Reconnecting:
    """Staying connected: a mixin of ``ChatClient``."""

    if TYPE_CHECKING:  # what the client (connection.py) holds and provides
        BACKOFF_START: float
        BACKOFF_MAX: float
        host: str
        port: int
        addresses: list[tuple[str, int]]
        reconnect: bool
        files: Transfers
        _closing: bool
        _skip_wait: bool
        _backoff: float
        _lock: threading.Lock
        _calls: deque[Callable[[], None]]
        _wake_r: socket.socket

        def _serve(self) -> Why: ...
        def _handle(self, msg: Message) -> Why | None: ...
        def _drop_socket(self) -> None: ...
        def _adopt(self, sock: socket.socket, welcome: Welcome) -> None: ...
        def _set_state(self, state: ConnState, detail: str = "", retry_in: float | None = None) -> None: ...
        def _open(self) -> tuple[socket.socket, Welcome, list[Message]]: ...

    def _run(self, leftover: list[Message], reconnect_first: bool = False) -> None:
        """The network thread: serve the connection, reconnect when it drops, until
        closed or refused for good.  Nothing escapes it: an unexpected error is logged
        and handled like a lost connection (a reconnect and a resume), never a silent
        stall."""
        connected = not reconnect_first
        reason = Why("reconnecting")
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

    def _reconnect(self, reason: Why) -> list[Message] | None:
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
                reason = self._refused(exc)
                continue
            except (ConnectionFailed, Exception) as exc:  # noqa: BLE001 -- the network thread never dies of a bug
                reason = self._failed(exc)
                continue
            self._adopt(sock, welcome)
            return leftover
        return None

    def _refused(self, exc: HandshakeRefused) -> Why:
        """A server refused us for now: another may not (``unavailable``)."""
        if exc.code == ErrorCode.UNAVAILABLE.value:  # this server cannot serve now: another may
            self._next_address()
        return Why(f"{exc.message}; retrying")

    def _failed(self, exc: Exception) -> Why:
        """A server could not be reached (the next one is tried), or a bug (logged)."""
        if isinstance(exc, ConnectionFailed):
            self._next_address()
            return Why(exc.args[0] if exc.args else "connection failed")
        log.error("reconnecting failed unexpectedly: %s: %s", type(exc).__name__, exc)
        log.debug("traceback", exc_info=exc)
        return Why(f"reconnecting failed ({type(exc).__name__}: {exc})")

    def _next_address(self) -> None:
        """Try the next server of the cluster next time (at once: it is another server)."""
        if len(self.addresses) > 1:
            i = self.addresses.index((self.host, self.port)) if (self.host, self.port) in self.addresses else -1
            self.host, self.port = self.addresses[(i + 1) % len(self.addresses)]
            self._skip_wait = i + 1 < len(self.addresses)  # one round without waiting, then back off

    def _serve_safely(self, leftover: list[Message]) -> Why:
        try:
            for msg in leftover:
                why = self._handle(msg)
                if why is not None:
                    return why
            return self._serve()
        except Exception as exc:  # noqa: BLE001 -- a bug ends this connection, not the client
            log.error("unexpected error in the network thread, reconnecting: %s: %s", type(exc).__name__, exc)
            log.debug("traceback", exc_info=exc)
            return Why(f"the client hit a bug ({type(exc).__name__}: {exc}); reconnecting")

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
