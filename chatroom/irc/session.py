"""One IRC connection's state: registration and capabilities.  No I/O.

Registration is ``CAP LS 302`` (optional, first: a server that ignores it stalls some
clients), ``PASS`` (optional), ``NICK`` and ``USER``, then ``CAP END`` if CAP was
started.  Until then only those (and PING, PONG, QUIT) are accepted; anything else is
451.  Once registered, lines go to the door (``door.py``) -- except CAP, PING and PONG,
which are answered here.

The room password: IRC's PASS travels in clear text, and chatroom promises the password
never crosses the wire in the clear.  So a password room takes IRC clients over TLS
only; without TLS, registration ends with 464 and a NOTICE saying why.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatroom.irc import numerics as n
from chatroom.irc.lines import IrcLine, format_line

__all__ = ["CAPABILITIES", "MULTILINE_BYTES", "MULTILINE_LINES", "IrcSession", "Register", "Quit", "Pong"]

#: What we offer to ``CAP LS``.
CAPABILITIES = ("server-time", "message-tags", "echo-message", "batch", "away-notify", "multi-prefix",
                "userhost-in-names", "invite-notify", "cap-notify", "extended-join", "setname", "labeled-response",
                "draft/multiline", "draft/chathistory", "standard-replies")
#: The most a ``draft/multiline`` batch may hold: bytes of text (the rooms' longest
#: message) and lines.
MULTILINE_BYTES = 4000
MULTILINE_LINES = 100
#: What ``CAP LS 302`` says of some capabilities.
_VALUES = {"draft/multiline": f"max-bytes={MULTILINE_BYTES},max-lines={MULTILINE_LINES}"}

_BEFORE = frozenset({"CAP", "PASS", "NICK", "USER", "PING", "PONG", "QUIT"})


def _offered(version: list[str]) -> str:
    """What ``CAP LS [version]`` offers (from 302 on: with their values)."""
    values = bool(version) and version[0].isdigit() and int(version[0]) >= 302
    return " ".join(f"{cap}={_VALUES[cap]}" if values and cap in _VALUES else cap for cap in CAPABILITIES)


@dataclass(frozen=True)
class Register:
    """NICK, USER (and CAP END) are in: admit ``nick`` (``password``: what PASS said)."""

    nick: str
    password: str | None


@dataclass(frozen=True)
class Quit:
    reason: str


@dataclass(frozen=True)
class Pong:
    """The client answered a PING of ours (a sign of life)."""


Action = bytes | Register | Quit | Pong | IrcLine


class IrcSession:
    def __init__(self, server: str, *, tls: bool = False, password_room: bool = False) -> None:
        self.server = server
        self.tls = tls
        self.password_room = password_room
        self.nick = ""  # once registered: ours; before, what NICK asked for
        self.user = ""
        self.realname = ""
        self.password: str | None = None
        self.caps: set[str] = set()
        self.caps_changed = 0  # how many times ``caps`` changed (the door re-derives its format then)
        self.negotiating = False  # CAP LS/REQ seen, CAP END not yet
        self.registered = False
        self.refused = False  # registration ended (464): the connection closes

    def reply(self, numeric: str, *params: str) -> bytes:
        """A numeric to this client: ``:server NUM nick params...``."""
        return format_line(numeric, self.nick if self.registered else (self.nick or "*"), *params,
                           source=self.server, trailing=True)

    def notice(self, text: str) -> bytes:
        return format_line("NOTICE", self.nick or "*", text, source=self.server, trailing=True)

    def receive(self, line: IrcLine) -> list[Action]:
        """What ``line`` asks for: bytes to send back, a registration, a quit, or (once
        registered) the line itself for the door."""
        command, params = line.command, line.params
        if command == "CAP":
            return self._cap(params)
        if command == "PING":
            if not params:
                return [self.reply(n.ERR_NEEDMOREPARAMS, "PING", "Not enough parameters")]
            return [format_line("PONG", self.server, params[0], source=self.server, trailing=True)]
        if command == "PONG":
            return [Pong()]
        if command == "QUIT":
            return [Quit(params[0] if params else "")]
        if self.registered:
            if command in ("PASS", "USER"):
                return [self.reply(n.ERR_ALREADYREGISTERED, "You may not reregister")]
            return [line]
        if command not in _BEFORE:
            return [self.reply(n.ERR_NOTREGISTERED, "You have not registered")]
        return self._registering(command, params)

    def _registering(self, command: str, params: list[str]) -> list[Action]:
        """PASS, NICK and USER before registration."""
        if command == "PASS":
            if not params:
                return [self.reply(n.ERR_NEEDMOREPARAMS, "PASS", "Not enough parameters")]
            self.password = params[0]
        elif command == "NICK":
            if not params or not params[0]:
                return [self.reply(n.ERR_NONICKNAMEGIVEN, "No nickname given")]
            self.nick = params[0]
        elif command == "USER":
            if len(params) < 4 or not params[0] or not params[3]:
                return [self.reply(n.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters")]
            self.user, self.realname = params[0], params[3]
        return self._maybe_register()

    def registered_as(self, nick: str) -> None:
        """The room admitted us under ``nick``."""
        self.nick = nick
        self.registered = True

    def nick_refused(self) -> None:
        """The room refused the nick (433/432 sent): wait for another NICK."""
        self.nick = ""

    def _maybe_register(self) -> list[Action]:
        if not (self.nick and self.user) or self.negotiating:
            return []
        if self.password_room and not self.tls:
            self.refused = True
            return [self.notice("this room has a password, and IRC sends PASS in clear text: connect with TLS "
                                "(and PASS) to join it, or use chatroom's own client"),
                    self.reply(n.ERR_PASSWDMISMATCH, "Password required: connect over TLS with PASS")]
        return [Register(self.nick, self.password)]

    def _cap(self, params: list[str]) -> list[Action]:
        sub = params[0].upper() if params else ""
        if sub in ("LS", "REQ") and not self.registered:
            self.negotiating = True  # registration waits for CAP END
        if sub == "LS":
            return [self._cap_line("LS", _offered(params[1:]))]
        if sub == "LIST":
            return [self._cap_line("LIST", " ".join(sorted(self.caps)))]
        if sub == "REQ":
            return [self._cap_req((params[1] if len(params) > 1 else "").split())]
        if sub == "END":
            if self.registered or not self.negotiating:
                return []
            self.negotiating = False
            return self._maybe_register()
        return [self.reply("410", sub or "*", "Invalid CAP command")]

    def _cap_req(self, wanted: list[str]) -> Action:
        """``CAP REQ``: all of ``wanted`` (``-name`` to drop one), or none of them."""
        if not wanted or any(w.lstrip("-") not in CAPABILITIES for w in wanted):
            return self._cap_line("NAK", " ".join(wanted))
        for word in wanted:
            if word.startswith("-"):
                self.caps.discard(word[1:])
            else:
                self.caps.add(word)
        self.caps_changed += 1
        return self._cap_line("ACK", " ".join(wanted))

    def _cap_line(self, sub: str, text: str) -> Action:
        return format_line("CAP", self.nick or "*", sub, text, source=self.server, trailing=True)
