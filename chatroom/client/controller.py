"""Turns what the user typed into client calls.  Shared by the full-screen and plain
front ends; knows nothing about terminals.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from chatroom.client.commands import ChatLine, Command, Invalid, help_text, parse_duration, parse_input
from chatroom.client.connection import ChatClient, ConnState
from chatroom.client.transcript import files_text
from chatroom.client.transfers import TransferError
from chatroom.protocol import Away, Join, ListRooms, Message, ModAction, Moderate, Nick, Op, SetTopic, Who
from chatroom.text import clean_line, fold

__all__ = ["Controller"]


class Controller:
    """``show(text, error)`` prints a line from us; ``set_bell``, ``clear`` and
    ``quit`` are the front end's own actions."""

    def __init__(
        self,
        client: ChatClient,
        show: Callable[[str, bool], None],
        quit: Callable[[str], None],
        clear: Callable[[], None] = lambda: None,
        set_bell: Callable[[str], None] = lambda mode: None,
    ) -> None:
        self.client = client
        self.show = show
        self.quit = quit
        self.clear = clear
        self.set_bell = set_bell

    def handle(self, line: str) -> None:
        parsed = parse_input(line)
        if parsed is None:
            return
        if isinstance(parsed, Invalid):
            self.show(parsed.reason, True)
        elif isinstance(parsed, ChatLine):
            self.client.say(parsed.text)  # kept and resent if we are offline
        else:
            self._command(parsed)

    def _command(self, cmd: Command) -> None:
        if self._local(cmd):
            return
        c = self.client
        if c.state is not ConnState.CONNECTED:
            self.show(f"/{cmd.name} needs the server: wait until we are connected again", True)
        elif cmd.name in ("send", "accept", "reject", "cancel"):
            try:
                self._file_command(cmd.name, cmd)
            except TransferError as exc:
                self.show(str(exc), True)
        else:
            request = _request(cmd)
            if request is not None:
                c.send(request)

    def _local(self, cmd: Command) -> bool:
        """Commands that work offline (chat is kept and resent).  True if handled."""
        c, name = self.client, cmd.name
        if name == "help":
            self.show(help_text(cmd.rest), False)
        elif name == "quit":
            self.quit(cmd.rest.strip())
        elif name == "reconnect":
            self._reconnect()
        elif name == "clear":
            self.clear()
        elif name == "bell":
            mode = cmd.args[0].lower()
            self.set_bell(mode)
            self.show(f"bell: {mode}", False)
        elif name == "me":
            c.action(cmd.rest)
        elif name == "msg":
            c.direct(cmd.args[0], cmd.rest)
        elif name == "topic" and not cmd.rest:
            topic = c.session.topic
            self.show(f"topic of {clean_line(c.room)}: {clean_line(topic)}" if topic else "no topic is set", False)
        elif name == "files":
            self.show(files_text(c.files.all()), False)
        else:
            return False
        return True

    def _reconnect(self) -> None:
        c = self.client
        if c.state in (ConnState.CONNECTED, ConnState.CONNECTING):
            self.show("already connected" if c.state is ConnState.CONNECTED else "already connecting", False)
        else:
            self.show(f"reconnecting to {c.host}:{c.port}", False)
            c.reconnect_now()

    def _file_command(self, name: str, cmd: Command) -> None:
        files = self.client.files
        number = int(cmd.args[0]) if cmd.args and name != "send" else None
        if name == "send":
            path, to = self.send_target(cmd.rest)
            files.offer(path, to)
        elif name == "cancel":
            files.cancel(number)
        else:
            if number is None:
                latest = files.latest_offer()
                if latest is None or latest.id is None:
                    raise TransferError(f"no file offer to {name}")
                number = latest.id
            if name == "accept":
                files.accept(number)
            else:
                files.reject(number)

    def send_target(self, rest: str) -> tuple[Path, str | None]:
        """'/send PATH' or '/send NICK PATH': the whole text is a path if such a file
        exists; otherwise a first word naming someone here is the recipient."""
        whole = Path(_unquote(rest)).expanduser()
        if whole.exists():
            return whole, None
        first, _, remainder = rest.partition(" ")
        nick = first.lstrip("@").rstrip(":,")
        if remainder.strip():
            candidate = Path(_unquote(remainder.strip())).expanduser()
            here = {fold(n) for n in self.client.session.members}
            if fold(nick) in here or candidate.exists():
                return candidate, nick
        return whole, None


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _request(cmd: Command) -> Message | None:
    """The request a command sends to the server (the command was checked by
    parse_input: its arguments are there)."""
    name, args = cmd.name, cmd.args
    simple: dict[str, Callable[[], Message]] = {
        "nick": lambda: Nick(nick=args[0]),
        "who": lambda: Who(),
        "join": lambda: Join(room=args[0]),
        "rooms": lambda: ListRooms(),
        "topic": lambda: SetTopic(topic=cmd.rest),
        "away": lambda: Away(message=cmd.rest or None),
        "op": lambda: Op(token=args[0]),
        "kick": lambda: Moderate(action=ModAction.KICK, target=args[0], reason=" ".join(args[1:])),
    }
    if name in simple:
        return simple[name]()
    if name in ("ban", "mute"):
        duration = parse_duration(args[1]) if len(args) > 1 else None
        return Moderate(action=ModAction(name), target=args[0], duration=duration)
    if name in ("unban", "unmute"):
        return Moderate(action=ModAction(name), target=args[0])
    if name in ("lock", "unlock", "bans"):
        return Moderate(action=ModAction(name))
    return None
