"""IRC lines (RFC 1459 / modern IRC, with IRCv3 message tags): parsing and writing.
No I/O.

A line is ``[@tags ][:source ]COMMAND [params...] [:trailing]`` ending in CR LF.  What
a client sends is checked before anything is kept: at most 512 bytes without its tags
(our rooms' messages are longer: they are split when written), at most 4,094 bytes of
client tags, no NUL.  The byte stream is cut on LF, CR LF or a bare CR (clients differ;
none sends a CR inside a line on purpose), and a line that never ends is cut off at
the limit instead of buffered forever.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["IrcLine", "LineError", "LineTooLong", "LineReader", "parse_line", "format_line", "plain_text", "escape_tag",
           "client_tags", "MAX_LINE", "MAX_TAGS"]

#: IRC's formatting codes: bold, colour (with its numbers), hex colour, reset,
#: monospace, reverse, italics, strike-through, underline.
_FORMATTING = re.compile(r"\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04(?:[0-9a-fA-F]{6}(?:,[0-9a-fA-F]{6})?)?"
                         r"|[\x02\x0f\x11\x16\x1d\x1e\x1f]")


def plain_text(text: str) -> str:
    """An IRC client's text without its formatting codes (bold, colours...): the
    chat is text for every door, and the others would show each code as a box."""
    return text if text.isprintable() else _FORMATTING.sub("", text)


#: Bytes in a line without its tags, CR LF included (RFC 1459).
MAX_LINE = 512
#: Bytes of tags a client may send (IRCv3 message-tags: 4,094 plus "@" and a space).
MAX_TAGS = 4096


class LineError(ValueError):
    """The line cannot be used (too long, NUL, no command); the connection goes on."""


class LineTooLong(LineError):
    """Over the line or tag limit: ``417 ERR_INPUTTOOLONG``."""


@dataclass
class IrcLine:
    command: str  # upper case
    params: list[str] = field(default_factory=list)
    source: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


_TAG_UNESCAPE = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


def _unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            out.append(_TAG_UNESCAPE.get(value[i + 1], value[i + 1]))
            i += 2
        elif c == "\\":
            i += 1  # a lone backslash at the end is dropped
        else:
            out.append(c)
            i += 1
    return "".join(out)


def escape_tag(value: str) -> str:
    """An IRCv3 tag value, escaped."""
    return (value.replace("\\", "\\\\").replace(";", "\\:").replace(" ", "\\s")
            .replace("\r", "\\r").replace("\n", "\\n"))


def client_tags(tags: dict[str, str], *, typing: bool = True) -> dict[str, str] | None:
    """The client-only tags of a line (IRCv3: their names start with ``+``), which are
    relayed to those who read tags; None if there are none.  ``typing`` False: without
    the typing notices, which travel as ``typing`` messages of their own."""
    out = {k: v for k, v in tags.items() if k.startswith("+") and (typing or k not in _TYPING)}
    return out or None


_TYPING = frozenset({"+typing", "+draft/typing"})


def parse_line(raw: bytes) -> IrcLine:
    """One line, without its line ending.  Invalid UTF-8 is replaced (U+FFFD), never
    fatal: the server says UTF8ONLY, and the text sanitiser sees to the rest."""
    if b"\0" in raw:
        raise LineError("a NUL byte in the line")
    tags: dict[str, str] = {}
    rest = raw
    if rest.startswith(b"@"):
        tagged, _, rest = rest.partition(b" ")
        if len(tagged) + 1 > MAX_TAGS:  # (the "@" and the space after count)
            raise LineTooLong("too many tags")
        for item in tagged[1:].decode("utf-8", "replace").split(";"):
            if item:
                key, _, value = item.partition("=")
                tags[key] = _unescape(value)
        rest = rest.lstrip(b" ")
    if len(rest) > MAX_LINE - 2:
        raise LineTooLong("line too long")
    text = rest.decode("utf-8", "replace")
    source = None
    if text.startswith(":"):
        source, _, text = text[1:].partition(" ")
        text = text.lstrip(" ")
    head, sep, trailing = text.partition(" :")
    words = head.split()
    if not words:
        raise LineError("no command")
    params = words[1:]
    if sep:
        params.append(trailing)
    elif text.endswith(" :"):
        params.append("")
    return IrcLine(command=words[0].upper(), params=params, source=source, tags=tags)


def format_line(command: str, *params: str, source: str | None = None,
                tags: dict[str, str] | None = None, trailing: bool = False) -> bytes:
    """A line to send, CR LF included.  The last parameter is written as trailing
    (``:...``) when it needs to be (empty, starting with ':' or holding a space) or
    when ``trailing`` says so (text: PRIVMSG, NOTICE, PART, QUIT, TOPIC...)."""
    parts: list[str] = []
    if tags:
        parts.append("@" + ";".join(f"{k}={escape_tag(v)}" if v else k for k, v in tags.items()))
    if source:
        parts.append(f":{source}")
    parts.append(command)
    for i, p in enumerate(params):
        last = i == len(params) - 1
        if last and (trailing or not p or p.startswith(":") or " " in p):
            parts.append(f":{p}")
        else:
            parts.append(p)
    line = " ".join(parts).replace("\r", " ").replace("\n", " ").replace("\0", "")
    return line.encode("utf-8") + b"\r\n"


_ENDS = re.compile(rb"[\r\n]")


class LineReader:
    """Bytes in, complete lines out (without endings); bounded."""

    #: A line (tags included) longer than this is cut off and reported.
    LIMIT = MAX_TAGS + MAX_LINE

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._skipping = False  # inside an overlong line: drop until its end

    def feed(self, data: bytes) -> tuple[list[bytes], int]:
        """The complete lines in ``data`` (empty ones dropped), and how many overlong
        lines were cut off.  A CR or an LF ends a line (a CR LF: one line, then an empty
        one, dropped).  One split in C per read (two searches from each line's start,
        one of them to the end of the read for a kind of ending the client does not
        send, and a copy per line: 2.3 us a line of a 64 KiB read; now 1.1)."""
        buffer = self._buffer
        buffer += data
        lines: list[bytes] = []
        overlong = 0
        if _ENDS.search(data) is not None:
            *complete, rest = _ENDS.split(bytes(buffer))
            for line in complete:
                if self._skipping:  # the end of an overlong line
                    self._skipping = False
                    continue
                if len(line) > self.LIMIT:
                    overlong += 1
                elif line.strip():
                    lines.append(line)
            buffer[:] = rest
        if len(buffer) > self.LIMIT:  # a line that does not end: cut it off now
            buffer.clear()
            if not self._skipping:
                overlong += 1
            self._skipping = True
        return lines, overlong
