"""A real IRC client, as a person would use it: irssi (Debian's package, installed by
.ci/run) in tmux, joining a room of a real server and talking with a framed client."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from chatroom.protocol import Chat, Error, ErrorCode, Join, Joined, Parted, Presence, PresenceEvent, Say
from tests.polling import wait_until
from tests.wire import WireClient


def _require(tool: str) -> None:
    if shutil.which(tool) is None:
        if os.environ.get("CHATROOM_REQUIRE_TOOLS"):
            pytest.fail(f"{tool} is required here (CHATROOM_REQUIRE_TOOLS is set) but not installed")
        pytest.skip(f"{tool} is not installed (apt-get install {tool})")


class Irssi:
    """irssi in a tmux of its own, as ``nick``: its screen, and keys typed into it."""

    def __init__(self, port: int, nick: str, home: str) -> None:
        _require("tmux")
        _require("irssi")
        self.tmux = ["tmux", "-L", f"chatroom-irssi-{os.getpid()}-{nick}"]
        subprocess.run([*self.tmux, "new-session", "-d", "-s", "irc", "-x", "120", "-y", "40",
                        f"irssi --home={home} -n {nick} -c 127.0.0.1 -p {port}"], check=True, timeout=10)

    def screen(self) -> str:
        argv = [*self.tmux, "capture-pane", "-p", "-J", "-S", "-500", "-t", "=irc:0.0"]
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout

    def keys(self, *text: str) -> None:
        for t in text:
            subprocess.run([*self.tmux, "send-keys", "-t", "=irc:0.0", "-l", t], check=True, timeout=10)
            subprocess.run([*self.tmux, "send-keys", "-t", "=irc:0.0", "Enter"], check=True, timeout=10)

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True, timeout=10)


def test_irssi_joins_a_room_and_talks_with_a_chatroom_client(server, tmp_path):
    home = tmp_path / "irssi"
    home.mkdir()
    bob = WireClient(server.port)
    bob.hello("bob")
    bob.send(Say(id="0", text="said before irssi came"))
    bob.expect(Chat)
    irssi = Irssi(server.port, "dora", str(home))
    screen, keys = irssi.screen, irssi.keys
    try:
        wait_until(lambda: "Welcome to chatroom" in screen(), 20, "irssi to register")
        keys("/join #lobby")
        assert bob.expect(Presence, event=PresenceEvent.JOIN, timeout=20).nick == "dora"
        # the room's history, with its time (irssi asks for server-time)
        wait_until(lambda: "said before irssi came" in screen(), 20, "the history replayed in irssi")
        bob.send(Say(id="1", text="hello dora, from chatroom"))
        wait_until(lambda: "<bob> hello dora, from chatroom" in screen().replace("< bob>", "<bob>"), 20,
                   "bob's line in irssi")
        keys("hi bob, irssi here", "/me waves")
        assert bob.expect(Chat, text="hi bob, irssi here", timeout=20).nick == "dora"
        assert bob.expect(Chat, text="waves", timeout=20).action
        keys("/quit off to lunch")
        assert bob.expect(Presence, event=PresenceEvent.LEAVE, nick="dora", timeout=20).reason == "quit: off to lunch"
    finally:
        irssi.close()
        bob.close()


def test_irssi_runs_a_room_it_made_ops_modes_and_a_kick_as_a_person_sees_them(server, tmp_path):
    """dora makes #dev in irssi, so she runs it: irssi shows her @, then the MODE
    lines of what she changes and the KICK of bob (a chatroom client), who is told why."""
    home = tmp_path / "irssi"
    home.mkdir()
    irssi = Irssi(server.port, "dora", str(home))
    bob = WireClient(server.port)
    bob.hello("bob")
    try:
        wait_until(lambda: "Welcome to chatroom" in irssi.screen(), 20, "irssi to register")
        irssi.keys("/join #dev")
        wait_until(lambda: "@dora" in irssi.screen(), 20, "irssi's names: dora runs the room she made")
        bob.send(Join(room="dev"))
        bob.expect(Joined, room="dev")
        irssi.keys("/op bob")
        wait_until(lambda: "+o bob] by dora" in irssi.screen(), 20, "irssi's mode line for the new operator")
        irssi.keys("/deop bob", "/mode #dev +m")
        wait_until(lambda: "+m] by dora" in irssi.screen(), 20, "irssi's mode line for moderated")
        bob.send(Say(id="1", text="may I?", room="dev"))
        assert bob.expect(Error, id="1").code == ErrorCode.MODERATED.value
        irssi.keys("/kick bob too chatty")
        wait_until(lambda: "bob was kicked from #dev by dora [too chatty]" in irssi.screen(), 20, "irssi's kick line")
        assert bob.expect(Parted, room="dev").reason == "kicked by dora: too chatty"
    finally:
        irssi.close()
        bob.close()
