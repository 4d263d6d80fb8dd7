"""``chatroom serve`` run as a service runs it: from its file, with a password from an
owner-only file, a JSON log, SIGHUP re-reading what can change live; and the shell
completion and the version it prints."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from chatroom.protocol import PROTOCOL_VERSION, Error, ErrorCode, Say, Welcome
from chatroom.server.store import DB_NAME, HistoryStore
from tests.polling import wait_until
from tests.server.test_security import password_hello
from tests.terminal import ROOT, ServerProcess, chatroom_env
from tests.wire import WireClient


def log_events(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def wait_event(path: Path, event: str, count: int = 1) -> list[dict[str, object]]:
    wait_until(lambda: sum(e["event"] == event for e in log_events(path)) >= count, what=f"{event} in the log")
    return [e for e in log_events(path) if e["event"] == event]


def test_a_server_run_from_its_file_reloads_on_sighup(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("open sesame\n", encoding="utf-8")
    os.chmod(secret, 0o600)
    log = tmp_path / "server.log"
    conf = tmp_path / "server.toml"
    base = (f'password_file = "{secret}"\ndata_dir = "{tmp_path / "data"}"\nannounce = false\n'
            f'log_format = "json"\nlog_file = "{log}"\n')
    conf.write_text(base + "max_text = 4000\n", encoding="utf-8")
    server = ServerProcess("--config", str(conf))
    ann = WireClient(server.port)
    try:
        welcome = password_hello(ann, "ann", "open sesame")
        assert isinstance(welcome, Welcome) and welcome.limits["max_text"] == 4000
        joined = wait_event(log, "joined")[0]
        assert (joined["nick"], joined["room"], joined["level"]) == ("ann", "lobby", "INFO")
        assert str(joined["peer"]).startswith("127.0.0.1:") and str(joined["time"]).endswith("Z")

        # Change what can change live, and what cannot; ban an address behind its back.
        conf.write_text(base + "max_text = 10\nname = \"renamed\"\n", encoding="utf-8")
        HistoryStore(tmp_path / "data" / DB_NAME).save_ban("127.0.0.9", None, "mallory", "spam", "test")
        server.proc.send_signal(signal.SIGHUP)
        reloaded = wait_event(log, "reloaded")[0]
        assert "max_text 4000 -> 10" in str(reloaded["message"])
        assert "needs a restart to change: name" in str(reloaded["message"])
        assert "(1 ban(s))" in str(reloaded["message"])

        ann.send(Say(text="more than ten characters", id="m1"))  # an existing connection: the new limit at once
        assert ann.expect(Error, id="m1").code == ErrorCode.TEXT_TOO_LONG.value
        bob = WireClient(server.port)
        welcome = password_hello(bob, "bob", "open sesame")
        assert isinstance(welcome, Welcome) and welcome.limits["max_text"] == 10
        bob.close()
        banned = WireClient(server.port, source="127.0.0.9")
        banned.wait_closed()  # refused: the ban list was read again
        banned.close()

        conf.write_text("max_text = [\n", encoding="utf-8")  # a broken file changes nothing
        server.proc.send_signal(signal.SIGHUP)
        failed = wait_event(log, "reload_failed")[0]
        assert failed["level"] == "ERROR" and "not valid TOML" in str(failed["message"])
        assert server.proc.poll() is None
    finally:
        ann.close()
        assert server.stop() == 0
    assert all(set(e) == {"time", "level", "event", "peer", "room", "nick", "message"} for e in log_events(log))
    assert log_events(log)[-1]["event"] == "stopped"


def test_version_names_the_protocol():
    out = subprocess.run([sys.executable, "-m", "chatroom", "--version"], capture_output=True, text=True,
                         env=chatroom_env(), cwd=str(ROOT), timeout=30).stdout
    assert out.strip().endswith(f"(protocol {PROTOCOL_VERSION})")


def complete_in_bash(script: str, line: str) -> list[str]:
    """What bash offers for ``line`` (the cursor at its end), through the script
    ``chatroom completion bash`` printed, as a user's shell would run it."""
    words = line.split(" ")
    program = (f'{script}\nCOMP_LINE="{line}"; COMP_POINT={len(line)}; COMP_WORDS=({" ".join(words)} ); '
               f'COMP_CWORD={len(words) - 1}\n'
               '_python_argcomplete chatroom; printf "%s\\n" "${COMPREPLY[@]}"\n')
    bindir = Path(sys.executable).parent
    env = {**chatroom_env(), "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", "--norc", "-c", program], capture_output=True, text=True, env=env,
                            cwd=str(ROOT), timeout=60)
    return [word.strip() for word in result.stdout.splitlines() if word.strip()]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completes_commands_and_options_of_the_installed_chatroom():
    if not (Path(sys.executable).parent / "chatroom").exists():
        pytest.skip("chatroom is not installed next to this Python (pip install -e .)")
    script = subprocess.run([sys.executable, "-m", "chatroom", "completion", "bash"], capture_output=True,
                            text=True, env=chatroom_env(), cwd=str(ROOT), timeout=30).stdout
    assert "_python_argcomplete" in script
    assert "serve" in complete_in_bash(script, "chatroom se")
    assert "--max-clients" in complete_in_bash(script, "chatroom serve --max-c")
    assert set(complete_in_bash(script, "chatroom serve --log-format ")) == {"text", "json"}


@pytest.mark.parametrize(("shell", "check"), [("zsh", ["zsh", "-n"]), ("fish", ["fish", "--no-execute"])])
def test_zsh_and_fish_get_scripts_their_shell_can_read(shell, check, tmp_path):
    script = subprocess.run([sys.executable, "-m", "chatroom", "completion", shell], capture_output=True,
                            text=True, env=chatroom_env(), cwd=str(ROOT), timeout=30)
    assert script.returncode == 0 and "chatroom" in script.stdout
    assert "_ARGCOMPLETE" in script.stdout  # it asks the installed chatroom, as bash's does
    if shutil.which(check[0]) is None:
        return  # (the shell is not here to parse it; the script was printed)
    path = tmp_path / f"chatroom.{shell}"
    path.write_text(script.stdout, encoding="utf-8")
    result = subprocess.run([*check, str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_a_server_in_a_terminal_stops_when_the_terminal_hangs_up(tmp_path):
    """In a terminal, SIGHUP is the terminal going away (a closed window, a killed tmux
    pane): the server stops -- it must not live on unseen (a service reloads instead:
    the test above)."""
    import pexpect

    child = pexpect.spawn(sys.executable, ["-m", "chatroom", "serve", "--port", "0", "--memory", "--no-announce"],
                          cwd=str(ROOT), env=chatroom_env(), encoding="utf-8", timeout=20)
    try:
        child.expect(r"serving on 127\.0\.0\.1:(\d+)")
        port = int(child.match.group(1))
        ann = WireClient(port)
        assert isinstance(ann.hello("ann"), Welcome)
        os.kill(child.pid, signal.SIGHUP)
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0 or child.signalstatus is None, (child.exitstatus, child.signalstatus)
        ann.close()
    finally:
        if child.isalive():
            child.terminate(force=True)
