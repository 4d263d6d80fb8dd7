"""A bare IRC client for tests: raw lines over a real socket, waits with deadlines."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from chatroom.irc.lines import IrcLine, LineReader, parse_line

TIMEOUT = 10.0


class IrcClient:
    def __init__(self, port: int, host: str = "127.0.0.1", sock: socket.socket | None = None) -> None:
        self.sock = sock or socket.create_connection((host, port), timeout=TIMEOUT)
        self.reader = LineReader()
        self.inbox: list[IrcLine] = []
        self.raw: list[bytes] = []
        self.eof = False

    def send(self, *lines: str) -> None:
        self.sock.sendall(b"".join(line.encode() + b"\r\n" for line in lines))

    def register(self, nick: str, caps: str = "") -> IrcLine:
        if caps:
            self.send("CAP LS 302", f"CAP REQ :{caps}")
        self.send(f"NICK {nick}", f"USER {nick} 0 * :{nick}")
        if caps:
            self.send("CAP END")
        return self.expect("001")

    def join(self, channel: str) -> IrcLine:
        """JOIN ``channel`` and wait until its NAMES have ended (the join is done)."""
        self.send(f"JOIN {channel}")
        return self.wait_for(lambda m: m.command == "366" and m.params[1:2] == [channel], what=f"366 {channel}")

    def _pump(self, deadline: float) -> bool:
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        except OSError:
            data = b""
        if not data:
            self.eof = True
            return False
        lines, _ = self.reader.feed(data)
        self.raw.extend(lines)
        self.inbox.extend(parse_line(line) for line in lines)
        return True

    def wait_for(self, pred: Callable[[IrcLine], bool], timeout: float = TIMEOUT, what: str = "line") -> IrcLine:
        deadline = time.monotonic() + timeout
        while True:
            for i, line in enumerate(self.inbox):
                if pred(line):
                    return self.inbox.pop(i)
            if not self._pump(deadline) and (self.eof or time.monotonic() >= deadline):
                got = [f"{x.command} {x.params}" for x in self.inbox[-8:]]
                raise AssertionError(f"no {what} within {timeout} s (eof={self.eof}); last lines: {got}")

    def expect(self, command: str, *params: str, timeout: float = TIMEOUT) -> IrcLine:
        """The next line with ``command`` whose parameters start with ``params``."""
        def match(line: IrcLine) -> bool:
            return line.command == command and line.params[:len(params)] == list(params)

        return self.wait_for(match, timeout, what=f"{command} {' '.join(params)}")

    def wait_closed(self, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not self.eof:
            if not self._pump(deadline) and not self.eof and time.monotonic() >= deadline:
                raise AssertionError("the server did not close the connection")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
