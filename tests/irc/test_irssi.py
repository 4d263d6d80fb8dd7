"""A real IRC client, as a person would use it: irssi (Debian's package, installed by
.ci/run) in tmux, joining a room of a real server and talking with a framed client."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from chatroom.protocol import Chat, Presence, PresenceEvent, Say
from tests.polling import wait_until
from tests.wire import WireClient


def _require(tool: str) -> None:
    if shutil.which(tool) is None:
        if os.environ.get("CHATROOM_REQUIRE_TOOLS"):
            pytest.fail(f"{tool} is required here (CHATROOM_REQUIRE_TOOLS is set) but not installed")
        pytest.skip(f"{tool} is not installed (apt-get install {tool})")


def test_irssi_joins_a_room_and_talks_with_a_chatroom_client(server, tmp_path):
    _require("tmux")
    _require("irssi")
    tmux = ["tmux", "-L", f"chatroom-irssi-{os.getpid()}"]
    home = tmp_path / "irssi"
    home.mkdir()
    bob = WireClient(server.port)
    bob.hello("bob")
    bob.send(Say(id="0", text="said before irssi came"))
    bob.expect(Chat)
    try:
        subprocess.run([*tmux, "new-session", "-d", "-s", "irc", "-x", "120", "-y", "40",
                        f"irssi --home={home} -n dora -c 127.0.0.1 -p {server.port}"], check=True, timeout=10)

        def screen() -> str:
            argv = [*tmux, "capture-pane", "-p", "-J", "-S", "-500", "-t", "=irc:0.0"]
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout

        def keys(*text: str) -> None:
            for t in text:
                subprocess.run([*tmux, "send-keys", "-t", "=irc:0.0", "-l", t], check=True, timeout=10)
                subprocess.run([*tmux, "send-keys", "-t", "=irc:0.0", "Enter"], check=True, timeout=10)

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
        subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=10)
        bob.close()
