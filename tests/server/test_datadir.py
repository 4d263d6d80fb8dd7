"""One server per data directory: a second one is refused, naming the first, and the
first keeps working; a data directory that cannot be used is named in the error."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from chatroom.protocol import Ack, Say
from chatroom.server.datadir import DataDirBusy, DataDirError
from chatroom.server.tcp import ChatServer, ServerConfig
from tests.wire import WireClient


def test_a_second_server_on_the_same_data_directory_is_refused_and_the_first_keeps_working(
        make_server: Callable[..., ChatServer], tmp_path: Path) -> None:
    first = make_server(data_dir=str(tmp_path))
    with pytest.raises(DataDirBusy) as refused:
        ChatServer(ServerConfig(host="127.0.0.1", port=0, data_dir=str(tmp_path)))
    message = str(refused.value)
    assert f"PID {os.getpid()}, port {first.port}" in message and str(tmp_path) in message
    ann = WireClient(first.port)
    ann.hello("ann")
    for i in range(3):  # (the second server's attempt broke the first's numbering before)
        ann.send(Say(id=str(i), text=f"still here {i}"))
        assert ann.expect(Ack).id == str(i)
    ann.close()
    first.stop()
    again = make_server(data_dir=str(tmp_path))  # free again once the first has stopped
    assert [m.text for m in again.hub.state.rooms["lobby"].history][-3:] == [f"still here {i}" for i in range(3)]


def test_a_data_directory_that_is_a_file_is_named(tmp_path: Path) -> None:
    a_file = tmp_path / "history"
    a_file.write_text("not a directory")
    with pytest.raises(DataDirError) as refused:
        ChatServer(ServerConfig(host="127.0.0.1", port=0, data_dir=str(a_file)))
    assert f"the data directory {a_file} is a file" in str(refused.value)


def _serve(data_dir: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "chatroom", "serve", "--port", "0", "--data-dir", str(data_dir),
                             "--no-announce", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)


def test_the_command_line_says_which_server_has_the_data_directory(tmp_path: Path) -> None:
    first = _serve(tmp_path)
    try:
        assert first.stdout is not None
        line = first.stdout.readline()
        assert "serving on 127.0.0.1:" in line, line
        port = int(line.rsplit(":", 1)[1])
        second = subprocess.run([sys.executable, "-m", "chatroom", "serve", "--port", "0", "--data-dir",
                                 str(tmp_path), "--no-announce"], capture_output=True, text=True, timeout=60,
                                stdin=subprocess.DEVNULL)
        assert second.returncode != 0
        errors = second.stderr.strip().splitlines()
        assert len(errors) == 1, second.stderr  # one line, no traceback
        assert f"PID {first.pid}, port {port}" in errors[0] and str(tmp_path) in errors[0]
        ann = WireClient(port)
        ann.hello("ann")
        ann.send(Say(id="1", text="the first still serves"))
        assert ann.expect(Ack).id == "1"
        ann.close()
        a_file = tmp_path / "a-file"
        a_file.write_text("")
        third = subprocess.run([sys.executable, "-m", "chatroom", "serve", "--port", "0", "--data-dir", str(a_file),
                                "--no-announce"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert third.returncode != 0 and str(a_file) in third.stderr and "cannot listen" not in third.stderr
    finally:
        first.terminate()
        first.wait(10)
