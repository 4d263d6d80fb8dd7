"""Turns what the user typed into client calls.  Shared by the full-screen and plain
front ends; knows nothing about terminals.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from chatroom.client.commands import ChatLine, Command, Invalid, help_text, parse_duration, parse_input
from chatroom.client.connection import ChatClient, ConnState
from chatroom.client.finding import Finder, pattern_of
from chatroom.client.ignoring import Ignores, parse_rule
from chatroom.client.room_roles import room_mode_request
from chatroom.client.runtime_settings import SETTINGS_COMMANDS, SettingsCommands, SettingsHost
from chatroom.client.transcript import files_text
from chatroom.client.transfers import TransferError
from chatroom.protocol import (
    MAX_SEARCH_TEXT,
    Away,
    Found,
    Invite,
    Join,
    ListRooms,
    Message,
    ModAction,
    Moderate,
    Nick,
    Op,
    Part,
    Private,
    Search,
    SetTopic,
    Who,
    Whois,
)
from chatroom.text import clean_line, fold

__all__ = ["Controller", "Front"]


class Front:
    """What a front end shows, as far as commands care: which window is on screen and
    how to open, close and switch them.  This one is the plain client's: one stream of
    lines, talking in the current room."""

    def __init__(self, client: ChatClient) -> None:
        self.client = client

    def where(self) -> tuple[str, bool]:
        """(room or nick, is it a private conversation?) of what is on screen."""
        return self.client.room, False

    def open_query(self, nick: str) -> None:
        """Show the conversation with ``nick`` (the plain client has nothing to open)."""

    def close_window(self) -> bool:
        """Close a private conversation's window; False if there is nothing to close."""
        return False

    def switch(self, number: int) -> bool:
        return False

    def show_room(self, name: str) -> bool:
        """Put the window of room ``name`` on screen; False if there is none."""
        return False

    def lines_with(self, text: str) -> list[str]:
        """Lines on screen containing ``text`` (the plain client keeps none)."""
        return []

    def client_here(self) -> ChatClient:
        """The connection of the window on screen (a plain client has one)."""
        return self.client

    def connect(self, address: str) -> str | None:
        """Connect to another server too; None, or why it cannot be done here."""
        return "only the full-screen client holds several servers"

    def disconnect(self) -> str | None:
        """Leave the server of the window on screen; None, or why not."""
        return "there is one server here: /quit leaves it"

    def find(self, pattern: re.Pattern[str]) -> Finder | None:
        """Show the newest line of the window matching ``pattern`` in its context (the
        keys then go to the others); None where lines are not kept (the plain client)."""
        return None


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
        front: Front | None = None,
        aliases: dict[str, str] | None = None,
        settings: SettingsHost | None = None,
    ) -> None:
        self._client = client
        self.show = show
        self.quit = quit
        self.clear = clear
        self.set_bell = set_bell
        self.front = front or Front(client)
        self.aliases = aliases or {}  # /NAME -> a command with its first words (the config's [aliases])
        #: /set, /save, /reload, /alias, /bind (only where a front end holds settings)
        self.settings = SettingsCommands(settings, show) if settings is not None else None
        self.ignores = Ignores()  # whom (and what of them) the front end does not show
        self.last_sender = ""  # who sent the last private message (/reply)
        #: The last /last: (room, text, where its next page starts: None, none)
        self.last_search: tuple[str, str, int | None] | None = None

    def hides(self, event: object) -> bool:
        """Should ``event`` not be shown (a message from someone ignored)?  Also notes
        who sent the last private message, for /reply."""
        if self.ignores.hides(event):
            return True
        if isinstance(event, Private) and event.nick != self.client.nick:
            self.last_sender = event.nick
        return False

    def handle(self, line: str) -> None:
        parsed = parse_input(self._expand(line))
        if parsed is None:
            return
        if isinstance(parsed, Invalid):
            self.show(parsed.reason, True)
        elif isinstance(parsed, ChatLine):
            self._talk(parsed.text)  # kept and resent if we are offline
        else:
            self._command(parsed)

    def too_long(self, line: str) -> str | None:
        """Whether ``line`` is a message over the server's length limit, and by how
        much: said before sending, so the text stays in the input to be cut."""
        limit = self.client.session.limits.get("max_text")
        parsed = parse_input(self._expand(line))
        if isinstance(parsed, ChatLine):
            text = parsed.text
        elif isinstance(parsed, Command) and parsed.name in ("me", "msg"):
            text = parsed.rest if parsed.name == "me" else parsed.rest.partition(" ")[2]
        else:
            return None
        if not limit or len(text) <= limit:
            return None
        return (f"that message is {len(text):,} characters and this server takes {limit:,}: "
                f"cut {len(text) - limit:,} (it is still in the input line)")

    def _expand(self, line: str) -> str:
        """'/j dev' with the alias j = "join": '/join dev'."""
        if not line.startswith("/") or line.startswith("//"):
            return line
        head, sep, rest = line[1:].partition(" ")
        target = self.aliases.get(head.lower())
        return f"/{target}{sep}{rest}" if target else line

    def _talk(self, text: str, *, action: bool = False) -> None:
        """Text typed in the window on screen: to its room, or to its conversation."""
        name, query = self.front.where()
        if query:
            self.client.direct(name, f"* {self.client.nick} {text}" if action else text)
        elif not name:
            self.show("you are in no room: /join one (or /query NICK to talk to someone)", True)
        elif action:
            self.client.action(text, room=name)
        else:
            self.client.say(text, room=name)

    def room(self) -> str:
        """The room commands are about: the window's, or the current room in a conversation."""
        name, query = self.front.where()
        return self.client.room if query else name

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
        elif cmd.name == "part":
            c.send(self._part(cmd.rest))
        elif cmd.name == "join" and cmd.args and c.session.view(cmd.args[0].lstrip("#")) is not None \
                and self.front.show_room(cmd.args[0].lstrip("#")):
            pass  # in it already: its window is on screen now (the next line goes there)
        elif cmd.name == "last":
            self._last(cmd.rest)
        else:
            self._request(cmd)

    def _request(self, cmd: Command) -> None:
        """A command that is a request to the server: sent, unless it cannot be right here."""
        if cmd.name in _NEEDS_ROOM and not self.room():
            self.show(f"/{cmd.name} is about a room: use it in a room's window", True)
        elif cmd.name in ("op", "deop", "voice", "devoice") and not self._here(cmd.args):
            # (never sent: a word that is nobody here may be a token typed out of habit)
            self.show(f"/{cmd.name}: name people in {self.room()} (a server operator's token goes with /oper)", True)
        else:
            self._keys(cmd)
            request = _request(cmd, self.room())
            if request is not None:
                self.client.send(request)

    def _here(self, nicks: tuple[str, ...]) -> bool:
        view = self.client.session.view(self.room())
        here = {fold(n) for n in view.members} if view is not None else set()
        return all(fold(n) in here for n in nicks)

    def _keys(self, cmd: Command) -> None:
        """A room's key the user typed (``/join ROOM KEY``, ``/mode +k KEY``) is kept to
        prove it when the server asks (it never goes to the server itself)."""
        if cmd.name == "join" and len(cmd.args) == 2:
            self.client.session.keys.remember(cmd.args[0], cmd.args[1])
        elif cmd.name == "mode" and cmd.args and "k" in cmd.args[0].split("-")[0]:
            letters = [ch for ch in cmd.args[0] if ch not in "+-"]
            takes = [ch for ch in letters if ch in "ovbkl"]
            at = takes.index("k") if "k" in takes else -1
            if 0 <= at < len(cmd.args) - 1:
                self.client.session.keys.remember(self.room(), cmd.args[1 + at])

    def _last(self, text: str) -> None:
        """/last TEXT (or /regex/): the newest match in this window, shown in its place
        (Alt-Up and Alt-Down go to the others); then the older matches the server's
        history of the room holds (not for a regex: the server looks for text).
        /last more: the next page of those."""
        if text.strip() == "more":
            self._last_more()
            return
        try:
            pattern = pattern_of(text)
        except re.error as exc:
            self.show(f"/last: not a regular expression ({exc})", True)
            return
        finder = self.front.find(pattern)
        if finder is None:  # a front end that keeps no lines: list them
            here = self.front.lines_with(text)
            if here:
                self.show(f"/last {text}: {len(here)} line(s) in this window:\n" + "\n".join(here[-20:]), False)
        elif not finder.matches:
            self.show(f"no line with {text!r} in this window", False)
        room = self.room()
        if room and not (text.startswith("/") and text.endswith("/") and len(text) > 2):
            self.last_search = (room, text[:MAX_SEARCH_TEXT], None)
            self.client.send(Search(room=room, text=text[:MAX_SEARCH_TEXT]))

    def _last_more(self) -> None:
        """The next page of the server's older matches of the last /last."""
        if self.last_search is None:
            self.show("/last more: search with /last TEXT first", True)
            return
        room, text, before = self.last_search
        if before is None:
            self.show("/last more: there is nothing older", False)
            return
        self.client.send(Search(room=room, text=text, before=before))

    def found(self, found: Found) -> None:
        """The server's answer to /last: where the next page would start."""
        if self.last_search is not None and fold(found.room) == fold(self.last_search[0]):
            oldest = found.messages[0].seq if found.messages and not found.complete else None
            self.last_search = (self.last_search[0], self.last_search[1], oldest)

    def _part(self, rest: str) -> Part:
        """'/part', '/part ROOM', '/part ROOM REASON', '/part REASON': a first word that
        is one of our rooms (or starts with #) names the room."""
        first, _, reason = rest.partition(" ")
        if first and (first.startswith("#") or self.client.session.view(first) is not None):
            return Part(room=first, reason=reason.strip())
        return Part(room=self.room(), reason=rest)

    def _local(self, cmd: Command) -> bool:
        """Commands that work offline (chat is kept and resent).  True if handled."""
        if cmd.name == "topic" and cmd.rest:
            return False  # setting it is the server's
        act = _LOCAL.get(cmd.name)
        if act is None:
            return False
        act(self, cmd)
        return True

    def _answer(self, problem: str | None) -> None:
        if problem is not None:
            self.show(problem, True)

    @property
    def client(self) -> ChatClient:
        """The connection commands go to: the window on screen's server."""
        return self.front.client_here()

    def _bell(self, cmd: Command) -> None:
        mode = cmd.args[0].lower()
        self.set_bell(mode)
        self.show(f"bell: {mode}", False)

    def _show_topic(self, cmd: Command) -> None:
        view = self.client.session.view(self.room())
        topic = view.topic if view else ""
        self.show(f"topic of {clean_line(self.room())}: {clean_line(topic)}" if topic else "no topic is set", False)

    def _window_command(self, cmd: Command) -> None:
        name, args, front = cmd.name, cmd.args, self.front
        if name == "query":
            front.open_query(args[0])
            text = cmd.rest[len(args[0]):].strip()
            if text:
                self.client.direct(args[0], text)
        elif name == "reply":
            if not self.last_sender:
                self.show("nobody has sent you a private message yet", True)
            else:
                self.client.direct(self.last_sender, cmd.rest)
        elif name == "window":
            if not front.switch(int(args[0])):
                self.show(f"there is no window {args[0]}", True)
        elif name == "close":
            if not front.close_window():
                if self.client.state is not ConnState.CONNECTED:
                    self.show("/close of a room needs the server: wait until we are connected again", True)
                else:
                    self.client.send(Part(room=self.room()))
        else:
            self._ignore(name == "ignore", cmd.rest)

    def _ignore(self, on: bool, rest: str) -> None:
        """/ignore MASK [KIND...], /ignore (the list), /unignore MASK -- kept in client.toml."""
        if on and not rest.strip():
            rules = self.ignores.texts()
            self.show("ignored: " + ", ".join(rules) if rules else "nobody is ignored", False)
            return
        if on:
            try:
                rule = parse_rule(rest)
            except ValueError as exc:
                self.show(f"/ignore: {exc}", True)
                return
            self.ignores.add(rule)
            self.show(f"ignoring {clean_line(rule.text())} (/unignore {clean_line(rule.mask)} to undo)", False)
        elif self.ignores.remove(rest.strip()):
            self.show(f"no longer ignoring {clean_line(rest.strip())}", False)
        else:
            self.show(f"{clean_line(rest.strip())} is not ignored", True)
            return
        if self.settings is not None:
            self.settings.keep_ignores(self.ignores.texts())

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
            self._send_file(cmd.rest)
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

    def _send_file(self, rest: str) -> None:
        """/send: from a room's window to that room, from a conversation's to that
        person (or to the nick named first)."""
        path, to = self.send_target(rest)
        where, query = self.front.where()
        if query:
            self.client.files.offer(path, to or where)
        else:
            self.client.files.offer(path, to, room=where or None)

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


def _request(cmd: Command, room: str) -> Message | None:
    """The request a command sends to the server (the command was checked by
    parse_input: its arguments are there); ``room``: the room it is about."""
    name, args = cmd.name, cmd.args
    simple: dict[str, Callable[[], Message]] = {
        "nick": lambda: Nick(nick=args[0]),
        "who": lambda: Who(room=room or None),
        "whois": lambda: Whois(nick=args[0]),
        "names": lambda: Who(room=room or None),
        "join": lambda: Join(room=args[0]),
        "rooms": lambda: ListRooms(),
        "topic": lambda: SetTopic(topic=cmd.rest, room=room or None),
        "away": lambda: Away(message=cmd.rest or None),
        "oper": lambda: Op(token=args[0]),
        "kick": lambda: Moderate(action=ModAction.KICK, target=args[0], reason=" ".join(args[1:]), room=room),
        "kill": lambda: Moderate(action=ModAction.KICK, target=args[0], reason=" ".join(args[1:])),
        "invite": lambda: Invite(nick=args[0], room=room),
        "gbans": lambda: Moderate(action=ModAction.BANS),
    }
    if name in simple:
        return simple[name]()
    if name in ("gban", "mute"):
        duration = parse_duration(args[1]) if len(args) > 1 else None
        return Moderate(action=ModAction.BAN if name == "gban" else ModAction.MUTE, target=args[0], duration=duration)
    if name in ("gunban", "unmute"):
        return Moderate(action=ModAction.UNBAN if name == "gunban" else ModAction.UNMUTE, target=args[0])
    return room_mode_request(cmd, room)


#: The commands about the window's room (a room operator's).
_NEEDS_ROOM = frozenset({"op", "deop", "voice", "devoice", "mode", "invite", "kick", "ban", "unban", "bans", "lock",
                         "unlock"})

#: The commands that work offline (``Controller._local``).
_LOCAL: dict[str, Callable[[Controller, Command], object]] = {
    "help": lambda c, cmd: c.show(help_text(cmd.rest), False),
    "quit": lambda c, cmd: c.quit(cmd.rest.strip()),
    "reconnect": lambda c, cmd: c._reconnect(),
    "clear": lambda c, cmd: c.clear(),
    "bell": Controller._bell,
    "me": lambda c, cmd: c._talk(cmd.rest, action=True),
    "msg": lambda c, cmd: c.client.direct(cmd.args[0], cmd.rest),
    **dict.fromkeys(("query", "reply", "window", "close", "ignore", "unignore"), Controller._window_command),
    "topic": Controller._show_topic,
    "files": lambda c, cmd: c.show(files_text(c.client.files.all()), False),
    "connect": lambda c, cmd: c._answer(c.front.connect(cmd.args[0])),
    "disconnect": lambda c, cmd: c._answer(c.front.disconnect()),
    **dict.fromkeys(SETTINGS_COMMANDS, lambda c, cmd: c.settings.run(cmd) if c.settings is not None
                    else c.show(f"/{cmd.name} is for the full-screen client (the plain one keeps no settings)", True)),
}
