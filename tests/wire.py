"""A bare-bones protocol client for tests: real sockets, no cleverness.

It speaks raw frames so tests can also send what no well-behaved client would.
Every wait is a poll with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from typing import TypeVar

from chatroom.protocol import (
    PROTOCOL_VERSION,
    FrameDecoder,
    Hello,
    Message,
    Welcome,
    decode_message,
    encode_message,
)

M = TypeVar("M", bound=Message)

DEFAULT_TIMEOUT = 10.0


class WireClient:
    def __init__(self, port: int, host: str = "127.0.0.1", *, tls: bool = False, source: str | None = None) -> None:
        # ``source``: another loopback address (127.0.0.2...) to connect from: another
        # machine as far as the server can tell.
        self.sock = socket.create_connection((host, port), timeout=DEFAULT_TIMEOUT,
                                             source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            from chatroom.tls import client_context

            self.sock = client_context().wrap_socket(self.sock)
        self.decoder = FrameDecoder(max_body=16 * 1024 * 1024)
        self.inbox: list[Message] = []
        self.eof = False

    # sending
    def send(self, msg: Message) -> None:
        self.sock.sendall(encode_message(msg))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def hello(self, nick: str, version: str = PROTOCOL_VERSION, **fields: object) -> Welcome:
        self.send(Hello(version=version, nick=nick, **fields))  # type: ignore[arg-type]
        return self.expect(Welcome)

    # receiving
    def _pump(self, deadline: float) -> bool:
        """Read once (until ``deadline``); False on EOF or timeout."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(1 << 16)
        except TimeoutError:
            return False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.inbox.extend(decode_message(f) for f in self.decoder.feed(data))
        return True

    def wait_for(self, pred: Callable[[Message], bool], timeout: float = DEFAULT_TIMEOUT) -> Message:
        """Return (and remove) the first inbox message matching ``pred``."""
        deadline = time.monotonic() + timeout
        while True:
            for i, msg in enumerate(self.inbox):
                if pred(msg):
                    return self.inbox.pop(i)
            if not self._pump(deadline):
                if self.eof or time.monotonic() >= deadline:
                    raise AssertionError(
                        f"no matching message within {timeout} s (eof={self.eof}); inbox: {str(self.inbox[-5:])[:800]}"
                    )

    def expect(self, cls: type[M], timeout: float = DEFAULT_TIMEOUT, **fields: object) -> M:
        def match(m: Message) -> bool:
            return isinstance(m, cls) and all(getattr(m, k) == v for k, v in fields.items())

        return self.wait_for(match, timeout)  # type: ignore[return-value]

    def collect(self, cls: type[M], count: int, timeout: float = DEFAULT_TIMEOUT) -> list[M]:
        """Wait until ``count`` messages of ``cls`` have arrived; return them in order."""
        deadline = time.monotonic() + timeout
        while sum(isinstance(m, cls) for m in self.inbox) < count:
            if not self._pump(deadline) and (self.eof or time.monotonic() >= deadline):
                got = sum(isinstance(m, cls) for m in self.inbox)
                raise AssertionError(f"got {got} of {count} {cls.__name__} (eof={self.eof})")
        picked = [m for m in self.inbox if isinstance(m, cls)][:count]
        for m in picked:
            self.inbox.remove(m)
        return picked  # type: ignore[return-value]

    def wait_closed(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not self.eof:
            if not self._pump(deadline) and not self.eof and time.monotonic() >= deadline:
                raise AssertionError("the server did not close the connection")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
