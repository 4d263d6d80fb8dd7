"""Untrusted text made safe: nick and room rules, and stripping what a terminal obeys.

No I/O.  Everything a peer typed passes through :func:`clean_text` on the server before
it is stored or relayed, and again in the client before it is drawn, so escape
sequences, control characters and bidirectional overrides never reach a terminal.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "MAX_NICK_LENGTH",
    "MAX_ROOM_LENGTH",
    "MAX_TOPIC_LENGTH",
    "clean_text",
    "clean_line",
    "nick_problem",
    "room_problem",
    "fold",
]

MAX_NICK_LENGTH = 32
MAX_ROOM_LENGTH = 32
MAX_TOPIC_LENGTH = 300

# ESC-introduced sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), and
# two-byte escapes.  Their 8-bit C1 forms (CSI = U+009B, OSC = U+009D) too.
_ESCAPES = re.compile(
    r"""
    (?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]          # CSI ... final byte
  | (?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f])  # OSC, DCS, SOS, PM, APC ...
        .*?(?:\x07|\x1b\\|\x9c|$)             #   ... up to BEL or ST
  | \x1b[ -/]*[0-~]                           # other two-byte escapes
    """,
    re.VERBOSE | re.DOTALL,
)
# C0 controls except tab and newline, DEL, C1 controls; and the Unicode bidi controls
# (LRE..RLO, LRI..PDI, LRM/RLM/ALM) that can make text read backwards.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")
_NICK_PUNCT = frozenset("_-.")


def clean_text(text: str, *, multiline: bool = True) -> str:
    """``text`` with escape sequences removed and control characters replaced by U+FFFD.

    Newlines (and tabs) survive when ``multiline``; ``\\r\\n`` and lone ``\\r`` become
    ``\\n``.  Replacing rather than deleting keeps tampering visible.
    """
    if text.isprintable():  # the common case, and cheap
        return text
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _ESCAPES.sub("", text)
    if not multiline:
        text = text.replace("\n", " ").replace("\t", " ")
    return _CONTROLS.sub("\ufffd", text)


def clean_line(text: str) -> str:
    """One line of safe text (for nicks, room names, topics, away messages)."""
    return clean_text(text, multiline=False)


def fold(name: str) -> str:
    """The key under which two names count as the same (case-insensitive, NFKC)."""
    return unicodedata.normalize("NFKC", name).casefold()


def _name_problem(name: str, what: str, limit: int) -> str | None:
    if not 1 <= len(name) <= limit:
        return f"a {what} is 1 to {limit} characters"
    for ch in name:
        if not (ch.isalnum() or ch in _NICK_PUNCT):
            shown = ch if ch.isprintable() and not ch.isspace() else f"U+{ord(ch):04X}"
            return f"a {what} may only hold letters, digits and _ - . (not {shown!r})"
    return None


def nick_problem(nick: str) -> str | None:
    """Why ``nick`` is not acceptable, or None if it is."""
    return _name_problem(nick, "nick", MAX_NICK_LENGTH)


def room_problem(room: str) -> str | None:
    """Why ``room`` is not an acceptable room name, or None if it is."""
    problem = _name_problem(room, "room name", MAX_ROOM_LENGTH)
    if problem is None and room.startswith((".", "-")):
        return "a room name starts with a letter, digit or _"
    return problem
