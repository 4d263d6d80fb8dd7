"""IRCv3 ``labeled-response``: what one labeled command made the server say to its
sender, marked with the client's label.  No I/O.

A client that negotiated the capability may tag a command with ``@label=X``; every
line the server writes back to it *because of that command* then carries the label:
nothing at all is an ``ACK`` with the label, one line gets the tag (so does one batch,
on its start: the echo of a multiline message), several come in a
``BATCH +ref labeled-response`` whose start line carries it.  Lines meant for others
(the recipients of a PRIVMSG) never carry it.

The door finds "what that command made us say" by handling the line alone (what was
queued before is sent first) with the connection's wire format swapped for a
:class:`Capture`, which keeps -- instead of queueing -- what the door's own thread
encodes for this connection: its numerics, and the room's lines it is a recipient of
(the echo of its PRIVMSG).  Other threads' lines for it (someone else's message in
the same moment) pass straight through, unlabeled, as they should.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from chatroom.irc.lines import escape_tag, parse_line
from chatroom.server.wire import Outgoing

__all__ = ["Capture", "labeled"]


class Capture:
    """A wire format that keeps what its thread encodes (see the module's doc)."""

    def __init__(self, base: Any) -> None:
        self.base = base
        self.thread = threading.get_ident()
        self.kept: list[bytes] = []
        self.name: str = base.name

    def encode(self, parts: Sequence[Outgoing]) -> bytes:
        data: bytes = self.base.encode(parts)
        if threading.get_ident() != self.thread:
            return data  # (not a reply to the command: another thread's delivery)
        if data:
            self.kept.append(data)
        return b""

    def __getattr__(self, name: str) -> Any:  # (what the door asks of its format: away_notify...)
        return getattr(self.base, name)


def _tagged(line: bytes, tag: bytes) -> bytes:
    """``line`` (without its CR LF) with one more tag."""
    if line.startswith(b"@"):
        return b"@" + tag + b";" + line[1:]
    return b"@" + tag + b" " + line


def _one_batch(lines: list[bytes]) -> bool:
    """Whether ``lines`` are one batch: its start, its lines, its end."""
    first, last = parse_line(lines[0]), parse_line(lines[-1])
    if first.command != "BATCH" or last.command != "BATCH" or not first.params[0].startswith("+"):
        return False
    ref = first.params[0][1:]
    return last.params[:1] == [f"-{ref}"] and all(parse_line(line).tags.get("batch") == ref for line in lines[1:-1])


def labeled(data: bytes, label: str, server: str, ref: str) -> bytes:
    """What a labeled command made the server say (``data``: whole lines), labeled:
    an ``ACK``, one tagged line, or a ``BATCH`` named ``ref`` around them all."""
    lines = [line for line in data.split(b"\r\n") if line]
    tag = b"label=" + escape_tag(label).encode()
    if not lines:
        return _tagged(f":{server} ACK".encode(), tag) + b"\r\n"
    if len(lines) == 1 or _one_batch(lines):  # (a batch already, a multiline echo: labeled on its start)
        return b"\r\n".join([_tagged(lines[0], tag), *lines[1:]]) + b"\r\n"
    inside = f"batch={ref}".encode()
    out = [_tagged(f":{server} BATCH +{ref} labeled-response".encode(), tag)]
    out += [_tagged(line, inside) for line in lines]
    out.append(f":{server} BATCH -{ref}".encode())
    return b"\r\n".join(out) + b"\r\n"
