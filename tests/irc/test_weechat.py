"""A second real IRC client: WeeChat (Debian's ``weechat-headless``, installed by
.ci/run), driven through its FIFO and read through its own logs -- the lines a person
sees in its buffers: ops in the channel count, the MODE and KICK lines."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from chatroom.protocol import Error, ErrorCode, Join, Joined, Parted, Say
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
