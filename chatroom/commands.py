"""What the user typed: a chat line or a /command.  No I/O.

Shared by the full-screen and the plain client, so a line means the same in both.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["COMMANDS", "HELP", "Command", "ChatLine", "Invalid", "parse_input"]

#: name -> (arguments, what it does).  The order is the order of /help.
COMMANDS: dict[str, tuple[str, str]] = {
    "help": ("", "show this help"),
    "me": ("ACTION", "say what you are doing: /me waves"),
    "msg": ("NICK TEXT", "send a private message"),
    "nick": ("NAME", "change your nick"),
    "who": ("", "list the people in this room"),
    "join": ("ROOM", "go to another room (created if new)"),
    "rooms": ("", "list the rooms"),
    "topic": ("[TEXT]", "show or set the room's topic"),
    "away": ("[MESSAGE]", "mark yourself away; without a message, back again"),
    "clear": ("", "clear the screen"),
    "bell": ("on|off|mentions", "when to ring the bell (default: mentions)"),
    "quit": ("", "leave (Ctrl-C and Ctrl-D too)"),
}

HELP = "commands:\n" + "\n".join(
    f"  /{name:<6} {args:<16} {what}" for name, (args, what) in COMMANDS.items()
)

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
    name = head.lower()
    rest = rest.strip()
    if name not in COMMANDS:
        return Invalid(f"unknown command /{head} (type //{head} to send it as text)\n{HELP}")
    args = tuple(rest.split())
    if name == "me" and not rest:
        return Invalid("usage: /me ACTION")
    if name == "msg" and len(args) < 2:
        return Invalid("usage: /msg NICK TEXT")
    if name == "msg":
        _, _, text = rest.partition(" ")
        return Command(name, args, text.strip())
    if name in ("nick", "join") and len(args) != 1:
        return Invalid(f"usage: /{name} {COMMANDS[name][0]}")
    if name == "bell" and (len(args) != 1 or args[0].lower() not in BELL_MODES):
        return Invalid("usage: /bell on|off|mentions")
    return Command(name, args, rest)
