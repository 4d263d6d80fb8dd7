"""``chatroom demo``: a server on 127.0.0.1 and a few bots holding a conversation.

Everything runs in this one process (server thread, one network thread per bot, one
script thread), so stopping it -- Ctrl-C, /quit, SIGTERM -- stops everything: nothing
is left running.  With a client, the person running it joins as themselves; with
``--no-client`` the server and bots run for a projector while students join from
their own terminals.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from chatroom.app import build_server
from chatroom.client.connection import ChatClient
from chatroom.errors import ChatroomError
from chatroom.protocol import Join, Nick
from chatroom.server.tcp import ServerConfig

__all__ = ["BOT_NICKS", "SCRIPT", "Demo"]

log = logging.getLogger("chatroom.demo")

BOT_NICKS = ["ada", "linus", "grace", "ken", "margaret", "dennis", "barbara", "guido"]

#: (bot number, what, text).  "{user}" is someone who is not a bot.  Bot numbers are
#: taken modulo the number of bots, so the script works for any --bots N.
SCRIPT: list[tuple[int, str, str]] = [
    (0, "say", "morning all! has anyone tried the new chat server?"),
    (1, "me", "is reading PROTOCOL.md"),
    (2, "say", "every message is a frame: 4 bytes of length, then a JSON header"),
    (0, "say", "so when recv() returns half a message, nothing breaks?"),
    (1, "say", "right: the decoder keeps the half and waits for the rest"),
    (2, "dm", "psst, {user}: type /help to see what you can do here"),
    (3, "say", "and if one of us stops reading, does the room freeze?"),
    (2, "say", "no: the server queues a little for you, then drops you as 'too slow'"),
    (0, "say", "@{user} welcome! say hi"),
    (1, "nick", "linus_t"),
    (1, "say", "new nick, same me"),
    (3, "say", "that's the 'sticky packet' problem the tutorials talk about, isn't it"),
    (3, "leave", "lunch"),
    (2, "say", "try a multi-line paste:\n  def hello():\n      print('it arrives as one message')"),
    (0, "me", "waves"),
    (3, "return", ""),
    (3, "say", "back! what did I miss?"),
    (1, "nick", "linus"),
]


@dataclass
class _Bot:
    nick: str
    client: ChatClient | None = None


class Demo:
    """A server and its bots.  :meth:`start`, then :meth:`stop` (idempotent)."""

    def __init__(self, *, bots: int = 4, interval: float = 3.0, host: str = "127.0.0.1", port: int = 0,
                 max_lines: int = 10_000) -> None:
        self.interval = interval
        self.max_lines = max_lines  # a bound, so a forgotten demo stops talking by itself
        self.server = build_server(ServerConfig(host=host, port=port, name="demo", data_dir=None, rate=0))
        self.bots = [_Bot(nick) for nick in BOT_NICKS[: max(1, min(bots, len(BOT_NICKS)))]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._talk, name="chatroom-demo-bots", daemon=True)

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> None:
        self.server.serve_in_thread()
        for bot in self.bots:
            bot.client = self._connect(bot.nick)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        for bot in self.bots:
            if bot.client is not None:
                bot.client.close()
                bot.client = None
        self.server.stop("the demo is over")

    def _connect(self, nick: str) -> ChatClient:
        client = ChatClient("127.0.0.1", self.port, nick, reconnect=False, on_event=lambda event: None)
        client.connect()
        return client

    def _someone(self) -> str | None:
        """A member who is not a bot, for the bots to talk to."""
        bot_nicks = {b.client.nick for b in self.bots if b.client is not None} | set(BOT_NICKS)
        state = self.server.hub.state
        with self.server.hub.lock:
            humans = [m.nick for m in state.members() if m.nick not in bot_nicks and m.sink is not None]
        return random.choice(humans) if humans else None

    def _talk(self) -> None:
        for n, (who, what, text) in enumerate(itertools.cycle(SCRIPT)):
            if self._stop.wait(self.interval if n else min(self.interval, 1.0)) or n >= self.max_lines:
                return
            bot = self.bots[who % len(self.bots)]
            try:
                self._act(bot, what, text)
            except ChatroomError as exc:  # a refused nick, a bot that is gone...
                log.info("demo: %s could not %s: %s", bot.nick, what, exc)

    def _act(self, bot: _Bot, what: str, text: str) -> None:
        if what == "return":
            if bot.client is None:
                bot.client = self._connect(bot.nick)
            return
        client = bot.client
        if client is None:
            return
        user = self._someone()
        if what == "dm":
            if user is not None:  # (nobody to write to: nothing)
                client.direct(user, _address(text, user))
        elif what == "leave":
            client.close(text or "quit")
            bot.client = None
        else:
            _ACTS.get(what, _nothing)(client, _address(text, user))


def _nothing(client: ChatClient, text: str) -> None:
    pass


#: What a bot's line of the script does with its text (besides dm, leave, return).
_ACTS: dict[str, Callable[[ChatClient, str], object]] = {
    "say": lambda client, text: client.say(text),
    "me": lambda client, text: client.action(text),
    "nick": lambda client, text: client.send(Nick(nick=text)),
    "join": lambda client, text: client.send(Join(room=text)),
}


def _address(text: str, user: str | None) -> str:
    """Fill in the script's "{user}": someone who is not a bot, or everyone."""
    if "{user}" not in text:
        return text
    if user is None:
        return text.replace("@{user} ", "").replace("{user}", "everyone")
    return text.replace("{user}", user)
