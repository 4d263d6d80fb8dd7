"""A second real IRC client: WeeChat (Debian's ``weechat-headless``, installed by
.ci/run), driven through its FIFO and read through its own logs -- the lines a person
sees in its buffers: ops in the channel count, the MODE and KICK lines."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from chatroom.protocol import Chat, Error, ErrorCode, Join, Joined, Parted, Say, Typing, TypingState
from tests.polling import wait_until
from tests.wire import WireClient


def _weechat() -> str:
    found = shutil.which("weechat-headless")
    if found is None:
        if os.environ.get("CHATROOM_REQUIRE_TOOLS"):
            pytest.fail("weechat-headless is required here (CHATROOM_REQUIRE_TOOLS is set) but not installed")
        pytest.skip("weechat-headless is not installed (apt-get install weechat-headless)")
    return found


class WeeChat:
    """WeeChat as ``nick`` on 127.0.0.1:``port``: commands into a buffer, its logs read."""

    def __init__(self, port: int, nick: str, home: Path) -> None:
        self.home, self.fifo = home, home / "fifo"
        setup = ";".join([f"/set fifo.file.path {self.fifo}", "/set logger.file.flush_delay 0",
                          f"/server add cr 127.0.0.1/{port}", f"/set irc.server.cr.nicks {nick}",
                          "/set irc.server.cr.autoreconnect off", "/connect cr"])
        self.proc = subprocess.Popen([_weechat(), "--dir", str(home), "--run-command", setup],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.fifo.exists, 20, "WeeChat's FIFO")

    def command(self, buffer: str, line: str) -> None:
        with open(self.fifo, "w", encoding="utf-8") as fifo:
            fifo.write(f"{buffer} */{line}\n")

    def log(self, buffer: str) -> str:
        path = self.home / "logs" / f"{buffer}.weechatlog"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def test_weechat_shows_the_room_it_made_run_by_it_modes_and_a_kick(server, tmp_path):
    wee = WeeChat(server.port, "wee", tmp_path / "weechat")
    bob = WireClient(server.port)
    bob.hello("bob")
    try:
        wait_until(lambda: "Welcome to chatroom" in wee.log("irc.server.cr"), 20, "WeeChat to register")
        wee.command("irc.server.cr", "join #dev")
        wait_until(lambda: "Channel #dev: 1 nick (1 op" in wee.log("irc.cr.#dev"), 20, "WeeChat: wee runs #dev")
        bob.send(Join(room="dev"))
        bob.expect(Joined, room="dev")
        wee.command("irc.cr.#dev", "mode #dev +mv bob")
        wait_until(lambda: "Mode #dev [+mv bob] by wee" in wee.log("irc.cr.#dev"), 20, "WeeChat's mode line")
        bob.send(Say(id="1", text="voiced, so I may", room="dev"))
        wait_until(lambda: "bob\tvoiced, so I may" in wee.log("irc.cr.#dev").replace("+bob", "bob"), 20,
                   "bob's line in WeeChat")
        wee.command("irc.cr.#dev", "devoice bob")
        wait_until(lambda: "Mode #dev [-v bob] by wee" in wee.log("irc.cr.#dev"), 20, "the devoice")
        bob.send(Say(id="2", text="and now?", room="dev"))
        assert bob.expect(Error, id="2").code == ErrorCode.MODERATED.value
        wee.command("irc.cr.#dev", "kick bob enough")
        wait_until(lambda: "wee has kicked bob (enough)" in wee.log("irc.cr.#dev"), 20, "WeeChat's kick line")
        assert bob.expect(Parted, room="dev").reason == "kicked by wee: enough"
    finally:
        wee.close()
        bob.close()


class WeeChatScreen:
    """WeeChat's full-screen client (Debian's ``weechat-curses``) in a tmux of its own, as
    a person uses it: keys typed into it, its screen read."""

    def __init__(self, port: int, nick: str, home: Path) -> None:
        if shutil.which("tmux") is None or shutil.which("weechat") is None:
            if os.environ.get("CHATROOM_REQUIRE_TOOLS"):
                pytest.fail("tmux and weechat are required here (CHATROOM_REQUIRE_TOOLS is set)")
            pytest.skip("tmux or weechat is not installed (apt-get install tmux weechat-curses)")
        self.tmux = ["tmux", "-L", f"chatroom-weechat-{os.getpid()}-{nick}"]
        setup = ";".join([f"/server add cr 127.0.0.1/{port}", f"/set irc.server.cr.nicks {nick}",
                          "/set irc.server.cr.autoreconnect off",
                          "/set irc.look.typing_status_self on", "/set irc.look.typing_status_nicks on",
                          "/set typing.look.enabled_self on", "/set typing.look.enabled_nicks on", "/connect cr"])
        subprocess.run([*self.tmux, "new-session", "-d", "-s", "w", "-x", "120", "-y", "30",
                        f"weechat --dir {home} --run-command '{setup}'"], check=True, timeout=10)

    def screen(self) -> str:
        return subprocess.run([*self.tmux, "capture-pane", "-p", "-J", "-t", "=w:0.0"], capture_output=True,
                              text=True, timeout=10).stdout

    def type(self, text: str, enter: bool = False) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", "=w:0.0", "-l", text], check=True, timeout=10)
        if enter:
            subprocess.run([*self.tmux, "send-keys", "-t", "=w:0.0", "Enter"], check=True, timeout=10)

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True, timeout=10)


def test_weechat_says_when_its_person_types_and_shows_who_else_is_typing(server, tmp_path):
    wee = WeeChatScreen(server.port, "wee", tmp_path / "weechat")
    bob = WireClient(server.port)  # a framed client: the same typing notices, from the core
    bob.hello("bob")
    try:
        wait_until(lambda: "Welcome to chatroom" in wee.screen(), 20, "WeeChat to register")
        wee.type("/join #dev", enter=True)
        wait_until(lambda: "#dev" in wee.screen(), 20, "WeeChat in #dev")
        bob.send(Join(room="dev"))
        bob.expect(Joined, room="dev")
        wee.type("what do we ship")  # typed, not sent: the room hears that wee is typing
        assert bob.expect(Typing, nick="wee", timeout=20).state == TypingState.ACTIVE
        bob.send(Typing(state=TypingState.ACTIVE, room="dev"))
        wait_until(lambda: "Typing: bob" in wee.screen(), 20, "WeeChat's typing item to name bob")
        wee.type(" today?", enter=True)
        assert bob.expect(Chat, nick="wee", timeout=20).text == "what do we ship today?"
    finally:
        wee.close()
        bob.close()
