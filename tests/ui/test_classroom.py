"""Teaching features: the demo, the wire trace, and the slow-client lesson."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from chatroom.app import build_server
from chatroom.demo import BOT_NICKS
from chatroom.protocol import PROTOCOL_VERSION, Chat, Hello, Private, Say, Welcome, encode_message
from chatroom.server.tcp import ServerConfig
from chatroom.trace import Tracer
from tests.polling import wait_until
from tests.terminal import ROOT, chatroom_env
from tests.wire import WireClient


def children_of(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            match = re.search(r"^PPid:\s+(\d+)", status, re.MULTILINE)
            if match and int(match.group(1)) == pid:
                kids.append(int(entry.name))
    return kids


def test_demo_without_client_has_bots_talking_and_stops_cleanly_on_sigint():
    proc = subprocess.Popen([sys.executable, "-m", "chatroom", "demo", "--no-client", "--rate", "0.1", "--bots", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=chatroom_env(),
                            cwd=str(ROOT))
    try:
        assert proc.stdout is not None
        match = re.search(r"on 127\.0\.0\.1:(\d+)", proc.stdout.readline())
        assert match, proc.stderr.read() if proc.stderr else ""
        port = match.group(1)
        assert f"or in a browser: http://127.0.0.1:{port}/" in proc.stdout.readline()  # the address to hand out
        student = WireClient(int(port))
        welcome = student.hello("student")
        assert {m.nick for m in welcome.members} >= set(BOT_NICKS[:3])
        chats = student.collect(Chat, 4, timeout=20)
        assert {c.nick for c in chats} <= set(BOT_NICKS) | {"linus_t"} and len({c.nick for c in chats}) >= 2
        dm = student.expect(Private, timeout=20)  # a bot talks to the human in the room
        assert dm.to == "student" and "/help" in dm.text
        assert children_of(proc.pid) == []  # everything runs in the one process
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        student.wait_closed()
        student.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_trace_shows_glued_and_split_frames_as_the_decoder_sees_them():
    out = io.StringIO()
    tracer = Tracer(out)
    server = build_server(ServerConfig(port=0, rate=0), tracer=tracer)
    server.serve_in_thread()
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.sendall(encode_message(Hello(version=PROTOCOL_VERSION, nick="ann")))
        wait_until(lambda: '"type":"welcome"' in out.getvalue())
        # two frames in one send()
        first, second = encode_message(Say(id="a", text="glued one")), encode_message(Say(id="b", text="glued two"))
        sock.sendall(first + second)
        wait_until(lambda: "glued two" in out.getvalue())
        # one frame in three send()s, each waiting until the server has read it
        third = encode_message(Say(id="c", text="split in three"))
        parts = [third[:3], third[3:20], third[20:]]
        for n, part in enumerate(parts, 1):
            sock.sendall(part)
            wait_until(lambda n=n, part=part: out.getvalue().count(f"recv() returned {len(part)} bytes") >= 1)
        wait_until(lambda: "split in three" in out.getvalue())
    finally:
        sock.close()
        server.stop()
        tracer.close()
    lines = out.getvalue().splitlines()
    ins = [line for line in lines if " IN " in line]
    assert '"type":"hello"' in ins[0] and "(1 recv)" in ins[0]
    glued = [line for line in ins if "glued" in line]
    assert len(glued) == 2 and all("(1 recv)" in line for line in glued)
    assert any("one recv() held 2 frames" in line for line in lines)
    (split,) = [line for line in ins if "split in three" in line]
    assert "(3 recv()s)" in split
    length = len(third) - 4
    assert f"len {length.to_bytes(4, 'big').hex(' ')} = {length}" in split
    outs = [line for line in lines if " OUT " in line]
    assert any('"type":"welcome"' in line for line in outs)
    assert any('"type":"chat"' in line and "split in three" in line for line in outs)
    assert any('"type":"ack"' in line for line in outs)


def test_trace_truncates_long_text_and_drops_rather_than_blocks():
    out = io.StringIO()
    tracer = Tracer(out)
    tracer.frame_out("-> x", encode_message(Say(id="1", text="y" * 5000)))
    tracer.close()
    (line,) = out.getvalue().splitlines()
    assert len(line) < 400 and "chars)" in line


def test_the_client_can_trace_to_a_file(tmp_path, make_server):
    server = make_server()
    trace = tmp_path / "client.trace"
    result = subprocess.run([sys.executable, "-m", "chatroom", "join", f"127.0.0.1:{server.port}", "--plain",
                             "--nick", "tracer", "--trace", str(trace)], input="traced line\n", text=True,
                            capture_output=True, timeout=30, env=chatroom_env(), cwd=str(ROOT))
    assert result.returncode == 0, result.stderr
    text = trace.read_text()
    assert re.search(r'OUT .*"type":"hello"', text) and re.search(r'IN .*"type":"welcome"', text)
    assert re.search(r'OUT .*"type":"say".*traced line', text) and re.search(r'OUT .*"type":"bye"', text)


def test_slow_client_demo_shows_the_tutorial_room_freezing_and_ours_carrying_on():
    result = subprocess.run([sys.executable, "scripts/slow_client_demo.py", "--messages", "8000", "--seconds", "12"],
                            capture_output=True, text=True, timeout=120, cwd=str(ROOT), env=chatroom_env())
    assert result.returncode == 0, result.stdout + result.stderr
    room = next(line for line in result.stdout.splitlines() if line.strip().startswith("the room"))
    assert room.split()[2] == "FROZE" and room.rstrip().endswith("carried on")
    assert "dropped as 'too slow'" in result.stdout
    assert "8,000 of 8,000 (100%)" in result.stdout


def test_naive_server_speaks_our_protocol_so_our_client_can_join_it():
    proc = subprocess.Popen([sys.executable, "scripts/naive_server.py", "--port", "0"], stdout=subprocess.PIPE,
                            text=True, cwd=str(ROOT))
    try:
        assert proc.stdout is not None
        port = int(re.search(r":(\d+)", proc.stdout.readline()).group(1))  # type: ignore[union-attr]
        a, b = WireClient(port), WireClient(port)
        assert isinstance(a.hello("ann"), Welcome)
        b.hello("bob")
        a.send(Say(id="1", text="hello naive"))
        assert b.expect(Chat).text == "hello naive"
        a.close()
        b.close()
    finally:
        proc.terminate()
        proc.wait(5)
    assert os.path.exists(ROOT / "scripts" / "classroom.sh")


def test_classroom_script_lays_out_a_traced_server_and_three_clients_in_tmux():
    import shutil

    if shutil.which("tmux") is None:  # .ci/run installs it; a bare machine may lack it
        import pytest

        if os.environ.get("CHATROOM_REQUIRE_TOOLS"):
            pytest.fail("tmux is required here (CHATROOM_REQUIRE_TOOLS is set) but not installed")
        pytest.skip("tmux is not installed (apt-get install tmux)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**chatroom_env(), "CHATROOM_NO_ATTACH": "1"}
    tmux = ["tmux", "-L", "chatroom-class"]
    try:
        subprocess.run(["bash", "scripts/classroom.sh", str(port)], check=True, env=env, cwd=str(ROOT), timeout=30,
                       capture_output=True)

        def pane(n: int) -> str:  # the screen and its scrollback, wrapped lines joined
            argv = [*tmux, "capture-pane", "-p", "-J", "-S", "-2000", "-t", f"=chatroom-class:0.{n}"]
            return subprocess.run(argv, capture_output=True, text=True).stdout

        def ready() -> bool:
            panes[:] = [pane(n) for n in range(4)]
            return all("online" in p for p in panes[1:]) and '"type":"welcome"' in panes[0]

        panes: list[str] = []
        wait_until(ready, 20, "three clients and a traced server", interval=0.2)
        assert "carol" in panes[0] and "RECV" in panes[0] and " IN " in panes[0]
        assert all("online" in p for p in panes[1:]), panes
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)

    def gone() -> bool:  # the panes' hangup ends the server too: nothing is left running
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return True
        return False

    wait_until(gone, 20, "the classroom's server to stop with its tmux")


def test_the_full_screen_demo_says_how_a_second_terminal_and_a_browser_join():
    from tests.terminal import Terminal

    demo = Terminal(["demo", "--rate", "5", "--bots", "2", "--nick", "teacher"], cols=160)
    try:
        demo.wait_text("join from another terminal: chatroom join 127.0.0.1:")
        line = next(row for row in demo.rows if "chatroom join 127.0.0.1:" in row)
        port = int(re.search(r"chatroom join 127\.0\.0\.1:(\d+)", line).group(1))
        assert f"http://127.0.0.1:{port}/" in line
        student = WireClient(port)  # the line's address works
        assert "teacher" in {m.nick for m in student.hello("student").members}
        student.close()
    finally:
        demo.close()
