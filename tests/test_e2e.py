"""End to end, as people would use it: real processes, real ptys, screens from pyte."""

from __future__ import annotations

import subprocess
import sys
import time

import pexpect
import pytest

from chatroom.protocol import Chat, Join, Joined, Say
from tests.terminal import ROOT, ServerProcess, Terminal, chatroom_env
from tests.wire import WireClient


@pytest.fixture
def server_process():
    servers: list[ServerProcess] = []

    def start(*extra: str) -> ServerProcess:
        s = ServerProcess(*extra)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


def test_incoming_flood_never_garbles_the_half_typed_line(server_process):
    server = server_process("--rate", "0")
    alice = Terminal(["join", server.address, "--nick", "alice"])
    alice.wait_text("online")
    bob = Terminal(["join", server.address, "--nick", "bob"])
    try:
        bob.wait_text("online")
        alice.wait_text("bob joined")
        alice.type("half a li")
        alice.wait_for(lambda rows: rows[-1].startswith("> half a li"), what="alice's half line")
        for n in range(200):
            bob.type(f"flood {n}\r")
            if n % 20 == 19:
                bob.pump()
        alice.wait_text("<bob> flood 199", timeout=30)
        rows = alice.rows
        assert rows[-1].rstrip() == "> half a li", rows[-1]
        assert any("<bob> flood 198" in r for r in rows)
        assert "sending" not in "".join(rows)
        alice.type("ne, finished\r")
        bob.wait_text("<alice> half a line, finished")
    finally:
        alice.close()
        bob.close()


def test_escape_sequences_from_a_peer_are_harmless_text_on_screen(server_process):
    server = server_process()
    alice = Terminal(["join", server.address, "--nick", "alice"])
    evil = WireClient(server.port)
    try:
        alice.wait_text("online")
        alice.type("/help\r")
        alice.wait_text("/quit")
        evil.hello("mallory")
        evil.send(Say(id="1", text="\x1b]0;pwned\x07\x1b[2J\x1b[H\x1b[31mred\x1b[0m \x1b[10;10Hmoved \x07bell"))
        alice.wait_text("<mallory> red")
        assert "pwned" not in alice.screen.title
        text = alice.text()
        assert "/quit" in text  # the screen was not cleared
        line = next(r for r in alice.rows if "<mallory>" in r)
        assert "moved" in line and "bell" in line  # the cursor did not move
        red = [alice.screen.buffer[y][x] for y in range(alice.screen.lines) for x in range(alice.screen.columns)
               if alice.screen.buffer[y][x].data == "r" and "<mallory>" in alice.rows[y]]
        assert red and all(ch.fg != "red" for ch in red)
    finally:
        evil.close()
        alice.close()


def test_ctrl_d_leaves_cleanly_and_others_see_quit(server_process):
    server = server_process()
    alice = Terminal(["join", server.address, "--nick", "alice"])
    watcher = WireClient(server.port)
    watcher.hello("watcher")
    try:
        alice.wait_text("online")
        alice.child.sendcontrol("d")
        alice.child.expect(__import__("pexpect").EOF, timeout=10)
        alice.child.close()
        assert alice.child.exitstatus == 0
        from chatroom.protocol import Presence, PresenceEvent

        leave = watcher.expect(Presence, event=PresenceEvent.LEAVE, nick="alice")
        assert leave.reason == "quit"
    finally:
        watcher.close()
        alice.close()


def run_cli(*args: str, stdin: str = "", timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chatroom", *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout, env=chatroom_env(), cwd=str(ROOT))


def test_plain_mode_delivers_a_piped_line_and_prints_room_messages(server_process):
    server = server_process()
    watcher = WireClient(server.port)
    watcher.hello("watcher")
    result = run_cli("join", server.address, "--plain", "--nick", "ci", stdin="build done\n")
    assert result.returncode == 0, result.stderr
    assert watcher.expect(Chat).text == "build done"
    assert "<ci> build done" in result.stdout
    assert "Traceback" not in result.stderr
    watcher.close()


def test_join_failures_are_one_line_with_advice(server_process):
    server = server_process()
    taker = WireClient(server.port)
    taker.hello("alice")
    taken = run_cli("join", server.address, "--plain", "--nick", "alice")
    assert taken.returncode == 1
    assert taken.stderr.strip().count("\n") == 0 and "taken" in taken.stderr and "--nick" in taken.stderr
    invalid = run_cli("join", server.address, "--plain", "--nick", "a b")
    assert invalid.returncode == 1 and "--nick" in invalid.stderr
    server.stop()
    refused = run_cli("join", server.address, "--plain", "--nick", "alice")
    assert refused.returncode == 1 and "nothing is listening" in refused.stderr
    assert "Traceback" not in refused.stderr + taken.stderr + invalid.stderr
    taker.close()


def test_serve_reports_a_busy_port_in_one_line(server_process):
    server = server_process()
    busy = run_cli("serve", "--port", str(server.port), "--memory")  # (its own history: only the port is shared)
    assert busy.returncode == 1 and "already in use" in busy.stderr and "Traceback" not in busy.stderr
    # On the same data directory too, the line names the server that has it, and its port.
    same = run_cli("serve", "--port", str(server.port))
    assert same.returncode == 1 and f"port {server.port})" in same.stderr and "Traceback" not in same.stderr


def test_server_exits_promptly_on_sigterm_with_clients_that_do_not_read(server_process):
    import socket

    from chatroom.protocol import PROTOCOL_VERSION, Hello, encode_message

    server = server_process("--rate", "0")
    stalled = []
    for i in range(3):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", server.port))
        s.sendall(encode_message(Hello(version=PROTOCOL_VERSION, nick=f"stall{i}")))
        stalled.append(s)
    talker = WireClient(server.port)
    talker.hello("talker")
    for n in range(200):
        talker.send(Say(id=str(n), text="x" * 500))
    start = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - start < 2.5
    for s in stalled:
        s.close()
    talker.close()


def test_the_settings_file_picks_server_nick_rooms_and_keeps_what_was_typed_and_a_log(server_process, tmp_path):
    server = server_process()
    settings = tmp_path / "client.toml"
    settings.write_text(f'server = "{server.address}"\nnick = "zed"\nrooms = ["lobby", "dev"]\n'
                        'highlight = ["release"]\n', encoding="utf-8")
    zed = Terminal(["join", "--config", str(settings)])
    bob = WireClient(server.port)
    try:
        zed.wait_text("zed [1:lobby 2:dev]")
        bob.hello("bob")
        bob.send(Say(id="1", text="the release is out", room="lobby"))
        zed.wait_text("[1:lobby(1)! 2:dev]")  # a highlight word, in the window not on screen (one line)
        bob.send(Join(room="dev"))
        bob.expect(Joined)
        zed.type("remember me\r")  # the window on screen is dev, the last room joined
        wait_for_chat = bob.expect(Chat, text="remember me")
        assert wait_for_chat.room == "dev"
        zed.wait_text("<zed> remember me")  # shown, so logged: the window log is written as a line is shown
    finally:
        zed.close()
    again = Terminal(["join", "--config", str(settings)])
    try:
        again.wait_text("zed [1:lobby 2:dev]")
        again.type("\x1b[A")  # Up: what was typed in the last run
        again.wait_for(lambda rows: rows[-1].startswith("> remember me"), what="the line from the last run")
    finally:
        again.close()
        bob.close()
    from tests.terminal import DATA_HOME

    logs = list((DATA_HOME / "chatroom" / "logs").glob("*/dev.log"))
    assert logs and any("<zed> remember me" in p.read_text(encoding="utf-8") for p in logs)


def test_a_line_said_just_before_quitting_is_sent_and_logged(server_process, tmp_path):
    server = server_process()
    settings = tmp_path / "client.toml"
    settings.write_text(f'server = "{server.address}"\nnick = "quick"\nrooms = ["parting"]\n', encoding="utf-8")
    bob = WireClient(server.port)
    quick = Terminal(["join", "--config", str(settings)])
    try:
        bob.hello("bob")
        bob.send(Join(room="parting"))
        bob.expect(Joined)
        quick.wait_text("quick [1:parting]")
        quick.type("last words\r\x04")  # the line, then Ctrl-D on the empty line: quit at once
        quick.child.expect(pexpect.EOF, timeout=10)
        assert bob.expect(Chat, text="last words").nick == "quick"
    finally:
        quick.close()
        bob.close()
    from tests.terminal import DATA_HOME

    logs = list((DATA_HOME / "chatroom" / "logs").glob("*/parting.log"))
    assert logs and any("<quick> last words" in p.read_text(encoding="utf-8") for p in logs)
