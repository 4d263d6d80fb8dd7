"""A program in a real pty, its screen rendered by pyte: what a person would see."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pexpect
import pyte

ROOT = Path(__file__).resolve().parent.parent


#: Servers started by tests keep their history here, never in the user's own data dir.
_DATA_HOME = tempfile.mkdtemp(prefix="chatroom-test-data-")
#: ... and read no settings, and remember no certificates, of the user's own.
_CONFIG_HOME = tempfile.mkdtemp(prefix="chatroom-test-config-")
DATA_HOME = Path(_DATA_HOME)
for _home in (_DATA_HOME, _CONFIG_HOME):  # nothing left behind in /tmp after the run
    atexit.register(shutil.rmtree, _home, ignore_errors=True)


def chatroom_env() -> dict[str, str]:
    env = dict(os.environ)
    env["XDG_DATA_HOME"] = _DATA_HOME
    env["XDG_CONFIG_HOME"] = _CONFIG_HOME
    env.update(TERM="xterm-256color", LANG="C.UTF-8", LC_ALL="C.UTF-8", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class Terminal:
    def __init__(self, args: list[str], rows: int = 24, cols: int = 80) -> None:
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.child = pexpect.spawn(sys.executable, ["-m", "chatroom", *args], dimensions=(rows, cols),
                                   env=chatroom_env(), cwd=str(ROOT))
        self.child.delaybeforesend = None
        # Answer cursor-position requests like a real terminal does.
        self.screen.write_process_input = lambda data: self.child.send(data.encode())

    def pump(self, timeout: float = 0.05) -> None:
        while True:
            try:
                data = self.child.read_nonblocking(65536, timeout=timeout)
            except pexpect.TIMEOUT:
                return
            except pexpect.EOF:
                return
            self.stream.feed(data)
            timeout = 0.01

    @property
    def rows(self) -> list[str]:
        return self.screen.display

    def text(self) -> str:
        return "\n".join(self.rows)

    def wait_for(self, pred: Callable[[list[str]], bool], timeout: float = 15.0, what: str = "screen") -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.pump()
            if pred(self.rows):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; screen:\n{self.text()}")

    def wait_text(self, text: str, timeout: float = 15.0) -> None:
        self.wait_for(lambda rows: any(text in r for r in rows), timeout, what=repr(text))

    def type(self, text: str) -> None:
        self.child.send(text)

    def close(self) -> None:
        if self.child.isalive():
            self.child.sendcontrol("c")  # clears a typed line (or asks) ...
            self.child.sendcontrol("d")  # ... and Ctrl-D on the empty line leaves, saying goodbye
            try:
                self.child.expect(pexpect.EOF, timeout=5)
            except (pexpect.TIMEOUT, pexpect.EOF):
                pass
        self.child.close(force=True)


class ServerProcess:
    """``chatroom serve --port 0`` as a subprocess; knows its port."""

    def __init__(self, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chatroom", "serve", "--port", "0", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=chatroom_env(), cwd=str(ROOT),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(r"serving on 127\.0\.0\.1:(\d+)", line)
        if not match:
            self.proc.kill()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"server did not start: {line!r} {err}")
        self.port = int(match.group(1))
        self.address = f"127.0.0.1:{self.port}"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()
