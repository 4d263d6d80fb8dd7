"""What the user typed: a chat line or a /command.  No I/O.

Shared by the full-screen and the plain client, so a line means the same in both.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from chatroom.protocol import channel_modes

__all__ = ["COMMANDS", "HELP", "Command", "ChatLine", "Invalid", "parse_input", "parse_duration", "help_text",
           "holds_secret"]

#: name -> (arguments, what it does).  The order is the order of /help.
COMMANDS: dict[str, tuple[str, str]] = {
    "help": ("[COMMAND]", "the commands and keys; with a name, that command"),
    "me": ("ACTION", "say what you are doing: /me waves"),
    "msg": ("NICK TEXT", "send a private message"),
    "query": ("NICK [TEXT]", "open a window for a private conversation"),
    "reply": ("TEXT", "answer the last private message"),
    "nick": ("NAME", "change your nick"),
    "away": ("[MESSAGE]", "mark yourself away; without a message, back again"),
    "ignore": ("[MASK [KIND...]]", "hide a nick or mask (bo*): all, or messages/actions/private/joins; kept"),
    "unignore": ("MASK", "show them again"),
    "join": ("ROOM [KEY]", "join a room too (created if new: you run it); it gets a window"),
    "part": ("[ROOM] [REASON]", "leave a room (default: this window's); the others see the reason"),
    "who": ("", "list the people in this room"),
    "whois": ("NICK", "someone's rooms, idle time and away message"),
    "last": ("TEXT", "lines with TEXT in this window, and in the room's history on the server"),
    "names": ("", "the same as /who"),
    "rooms": ("", "list the rooms"),
    "topic": ("[TEXT]", "show or set the room's topic"),
    "window": ("N", "show window N (also Alt-N, Ctrl-N/Ctrl-P)"),
    "close": ("", "close this window (leaving its room)"),
    "clear": ("", "clear this window"),
    "bell": ("on|off|mentions", "when to ring the bell (default: mentions)"),
    "set": ("[KEY [VALUE]]", "show the settings, or change one (client.toml's keys)"),
    "save": ("", "write the settings to client.toml (its comments kept)"),
    "reload": ("", "read client.toml again"),
    "alias": ("[NAME [COMMAND]]", "list aliases, or make one (/alias wave me waves); NAME alone removes it"),
    "bind": ("[KEY [COMMAND]]", "list key bindings, or bind f1-f12 or alt-b..alt-z to a command; KEY alone unbinds"),
    "quit": ("[REASON]", "leave; the others see the reason"),
    "reconnect": ("", "connect again (after a kick, or when the client gave up)"),
    "connect": ("HOST[:PORT]", "connect to another server too: its rooms get windows of their own"),
    "disconnect": ("", "leave the server of this window (not the first: /quit)"),
    "send": ("[NICK] PATH", "offer a file to the room, or to one person"),
    "accept": ("[N]", "accept a file offer (default: the newest)"),
    "reject": ("[N]", "decline a file offer (default: the newest)"),
    "cancel": ("[N]", "stop a file transfer, sending or receiving"),
    "files": ("", "list file offers and transfers"),
    "op": ("NICK...", "room operators: let them run this room too"),
    "deop": ("NICK...", "room operators: they no longer run it (yourself too)"),
    "voice": ("NICK...", "room operators: they may speak when the room is moderated"),
    "devoice": ("NICK...", "room operators: take their voice back"),
    "mode": ("[+mtisnkl-... [ARGS]]", "show the room's modes, or change them (m moderated, t topic lock, "
                                      "i invite-only, s secret, k KEY, l LIMIT, b MASK)"),
    "invite": ("NICK", "invite someone into this room (past invite-only, a key or a ban, once)"),
    "kick": ("NICK [REASON]", "room operators: send someone out of this room"),
    "ban": ("NICK|MASK", "room operators: keep someone out of this room (MASK: nick!user@host, * ok)"),
    "unban": ("NICK|MASK", "room operators: lift a ban of this room"),
    "bans": ("", "this room's bans: who set each, and when"),
    "oper": ("TOKEN", "become a server operator with the host's token"),
    "kill": ("NICK [REASON]", "server operators: disconnect someone"),
    "gban": ("NICK|ADDRESS [TIME]", "server operators: ban from the server (TIME: 30m, 2h, 1d; default: until lifted)"),
    "gunban": ("NICK|ADDRESS", "server operators: lift a server ban"),
    "gbans": ("", "server operators: list the server's bans"),
    "mute": ("NICK [TIME]", "server operators: stop someone's messages"),
    "unmute": ("NICK", "server operators: let them speak again"),
}

#: /help on one screen: the commands by what they are for, then the keys.
_GROUPS = (
    ("talk", ("me", "msg", "query", "reply", "nick", "away", "ignore", "unignore")),
    ("rooms", ("join", "part", "who", "names", "whois", "rooms", "topic", "last", "invite")),
    ("files", ("send", "accept", "reject", "cancel", "files")),
    ("client", ("window", "close", "clear", "help", "bell", "reconnect", "quit")),
    ("setup", ("set", "save", "reload", "alias", "bind", "connect", "disconnect")),
    ("room ops", ("op", "deop", "voice", "devoice", "mode", "kick", "ban", "unban", "bans")),
    ("server", ("oper", "kill", "gban", "gunban", "gbans", "mute", "unmute")),
)
_KEYS = ("Enter send · Alt-Enter new line · Tab complete · Up/Down earlier",
         "Alt-1..9 Ctrl-N/P Alt-A windows · PageUp/Dn End · Ctrl-R search")

HELP = "\n".join([
    "/help NAME for one · //text sends /text · Ctrl-D (empty) leaves",
    *(f"  {group:<10}" + " ".join(f"/{name}" for name in names) for group, names in _GROUPS),
    f"keys: {_KEYS[0]}",
    *(f"      {keys}" for keys in _KEYS[1:]),
])


def help_text(name: str = "") -> str:
    """/help, or /help NAME: one command's use and what it does."""
    name = name.strip().lstrip("/").lower()
    if not name:
        return HELP
    if name not in COMMANDS:
        return _unknown(name)
    args, what = COMMANDS[name]
    return f"/{name} {args}".rstrip() + f": {what}"


def _unknown(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), COMMANDS, n=1)
    hint = f"did you mean /{close[0]}? " if close else ""
    return f"unknown command /{name}: {hint}/help lists them; //{name} sends it as text"


BELL_MODES = ("on", "off", "mentions")


@dataclass(frozen=True)
class ChatLine:
    """Plain text for the room."""

    text: str


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...] = ()
    rest: str = ""  # everything after the command name, as typed


@dataclass(frozen=True)
class Invalid:
    """Not sendable: say why, and never send it as chat."""

    reason: str


def parse_input(line: str) -> ChatLine | Command | Invalid | None:
    """Interpret one input (which may hold several lines, from a paste)."""
    if not line.strip():
        return None
    if not line.startswith("/") or line.startswith("//"):
        # "//" escapes a line that should start with a slash.
        return ChatLine(line[1:] if line.startswith("//") else line)
    head, _, rest = line[1:].partition(" ")
    name = _ALIASES.get(head.lower(), head.lower())
    rest = rest.strip()
    if name in _REWRITES:
        name, first = _REWRITES[name]
        rest = f"{first} {rest}".strip()
    if name not in COMMANDS:
        return Invalid(_unknown(head))
    args = tuple(rest.split())
    problem = _usage_problem(name, args, rest)
    if problem is not None:
        return Invalid(problem)
    if name == "msg":
        _, _, text = rest.partition(" ")
        return Command(name, args, text.strip())
    return Command(name, args, rest)


#: Other names people type for a command (IRC habits).
_ALIASES = {"kline": "gban"}

#: Commands that are another command with its first argument: /lock is /mode +t.
_REWRITES = {"lock": ("mode", "+t"), "unlock": ("mode", "-t")}

#: Commands whose arguments are secrets: never kept in the input history or any log
#: (``op``: a token typed out of habit, from before ``/op`` gave a room's role).
_SECRET = frozenset({"op", "oper"})


def holds_secret(line: str, aliases: Mapping[str, str] | None = None) -> bool:
    """Whether a typed line carries a secret (``/oper TOKEN``, ``/op TOKEN``, or a user's
    alias of them): such a line must not reach the input history (Up, Ctrl-R, the
    history file)."""
    stripped = line.lstrip()
    words = stripped[1:].split(None, 1)
    if not (stripped.startswith("/") and not stripped.startswith("//") and words):
        return False
    head = words[0].lower()
    target = (aliases or {}).get(head, head).split() + (words[1].split() if len(words) > 1 else [])
    if not target:
        return False
    name = target[0].lower()
    # a room's key: /join ROOM KEY, /mode +k KEY
    return (name in _SECRET or (name == "join" and len(target) >= 3)
            or (name == "mode" and len(target) >= 2 and "k" in target[1].split("-")[0]))


#: Commands that need exactly one argument, or at least one.
_ONE_ARG = frozenset({"nick", "window", "unignore", "whois"})
_SOME_ARGS = frozenset({"op", "deop", "voice", "devoice", "invite", "oper", "kick", "kill", "ban", "unban", "gban",
                        "gunban", "mute", "unmute", "query", "reply", "last"})


def _usage_problem(name: str, args: tuple[str, ...], rest: str) -> str | None:
    """Why ``/name rest`` cannot be used as typed, or None."""
    if (name in _ONE_ARG and len(args) != 1) or (name in _SOME_ARGS and not args):
        return f"usage: /{name} {COMMANDS[name][0]}"
    check = _CHECKS.get(name)
    return check(name, args, rest) if check is not None else None


def _files_number(name: str, args: tuple[str, ...], rest: str) -> str | None:
    if len(args) > 1 or (args and not args[0].isdigit()):
        return f"usage: /{name} [N] (N: the number /files shows)"
    return None


def _sanction_time(name: str, args: tuple[str, ...], rest: str) -> str | None:
    if len(args) > 1 and parse_duration(args[1]) is None:
        return f"usage: /{name} {COMMANDS[name][0]} ({args[1]!r} is not a time like 30m, 2h or 1d)"
    return None


#: What each command needs beyond its number of arguments: (name, args, rest) -> why not.
_CHECKS: dict[str, Callable[[str, tuple[str, ...], str], str | None]] = {
    "me": lambda name, args, rest: None if rest else "usage: /me ACTION",
    "msg": lambda name, args, rest: None if len(args) >= 2 else "usage: /msg NICK TEXT",
    "window": lambda name, args, rest: None if args[0].isdigit() else "usage: /window N (the number in the status bar)",
    "bell": lambda name, args, rest: (None if len(args) == 1 and args[0].lower() in BELL_MODES
                                      else "usage: /bell on|off|mentions"),
    "send": lambda name, args, rest: None if rest else "usage: /send [NICK] PATH (a path with spaces can be quoted)",
    "accept": _files_number, "reject": _files_number, "cancel": _files_number,
    "gban": _sanction_time, "mute": _sanction_time,
    "join": lambda name, args, rest: None if 1 <= len(args) <= 2 else "usage: /join ROOM [KEY]",
    "mode": lambda name, args, rest: _mode_problem(args),
}


def _mode_problem(args: tuple[str, ...]) -> str | None:
    """Why ``/mode ARGS`` cannot be sent as typed, or None."""
    if not args:
        return None
    asked = channel_modes(args[0], list(args[1:]))
    if asked.unknown:
        return f"/mode: no mode {''.join(asked.unknown)} (m t i s k l b, and o v with a nick)"
    if asked.missing:
        return f"/mode: {''.join(asked.missing)} needs a value (+k KEY, +l LIMIT, +o NICK)"
    return None


def parse_duration(text: str) -> float | None:
    """'90', '30s', '10m', '2h', '1d' -> seconds; None if it is not one."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    try:
        value = float(number)
    except ValueError:
        return None
    return value * units[unit] if value > 0 else None
