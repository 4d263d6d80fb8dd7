"""IRCv3 ``draft/multiline`` from an IRC client: a batch of PRIVMSG (or NOTICE) lines to
one target, sent as one message -- a paste arrives as the paste, at every door.  The
other way (a message of several lines to a client that asked for the capability) is
the wire format's (``wire.py``).

    BATCH +ref draft/multiline #room          (client tags here go with the message)
    @batch=ref PRIVMSG #room :first line
    @batch=ref;draft/multiline-concat PRIVMSG #room :goes on the line before
    BATCH -ref

At most ``MULTILINE_BYTES`` bytes of text and ``MULTILINE_LINES`` lines (``CAP LS 302``
says so); past them, or for a malformed batch, ``FAIL BATCH MULTILINE_...`` and nothing
is sent.  A label on the ``BATCH +`` line labels the whole batch's answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chatroom.errors import Refused
from chatroom.irc.lines import IrcLine, client_tags, format_line, plain_text
from chatroom.irc.part import DoorPart
from chatroom.irc.session import MULTILINE_BYTES, MULTILINE_LINES
from chatroom.text import fold

if TYPE_CHECKING:
    from collections.abc import Callable


__all__ = ["Gathered", "Multiline"]

CONCAT = "draft/multiline-concat"


@dataclass
class Gathered:
    """A multiline batch being read.  No I/O."""

    ref: str
    target: str
    tags: dict[str, str] | None  # the client tags of its BATCH line
    label: str | None = None
    command: str = ""
    lines: list[str] = field(default_factory=list)
    concat: list[bool] = field(default_factory=list)
    size: int = 0
    failed: bool = False  # (refused already: the rest of it is read and dropped)

    def add(self, line: IrcLine) -> tuple[str, str] | None:
        """Take one line of the batch: None, or what is wrong -- (code, its limit or "")."""
        if line.command not in ("PRIVMSG", "NOTICE") or not line.params or fold(line.params[0]) != fold(self.target):
            return "MULTILINE_INVALID_TARGET", ""
        if self.command and line.command != self.command:
            return "MULTILINE_INVALID", ""
        text = plain_text(line.params[1]) if len(line.params) > 1 else ""
        concat = CONCAT in line.tags
        if concat and not text:
            return "MULTILINE_INVALID", ""
        self.size += len(text.encode("utf-8"))
        if self.size > MULTILINE_BYTES:
            return "MULTILINE_MAX_BYTES", str(MULTILINE_BYTES)
        if len(self.lines) >= MULTILINE_LINES:
            return "MULTILINE_MAX_LINES", str(MULTILINE_LINES)
        self.command = line.command
        self.lines.append(text)
        self.concat.append(concat)
        return None

    def text(self) -> str:
        """The message: its lines, each on a new line unless it goes on the one before."""
        out: list[str] = []
        for text, concat in zip(self.lines, self.concat, strict=True):
            if concat and out:
                out[-1] += text
            else:
                out.append(text)
        return "\n".join(out)


class Multiline(DoorPart):
    """Reading multiline batches, over IRC."""

    if TYPE_CHECKING:  # (the door's: see door.py)
        gathering: Gathered | None

        def say(self, target: str, text: str, action: bool, tags: dict[str, str] | None, *,
                notice: bool = False) -> None: ...
        def with_label(self, label: str, work: Callable[[], None]) -> None: ...

    def fail(self, code: str, limit: str, text: str) -> None:
        self.send(format_line("FAIL", "BATCH", code, *([limit] if limit else []), text, source=self.name,
                              trailing=True))

    def on_batch(self, line: IrcLine) -> None:
        if not self.need(line, 1):
            return
        ref = line.params[0]
        if ref.startswith("+"):
            if "draft/multiline" not in self.session.caps or line.params[1:2] != ["draft/multiline"] \
                    or len(line.params) < 3 or self.gathering is not None:
                self.fail("MULTILINE_INVALID", "", "Only one draft/multiline batch at a time, with a target")
                return
            self.gathering = Gathered(ref[1:], line.params[2], client_tags(line.tags))
            return
        gathered, self.gathering = self.gathering, None
        if gathered is None or ref[1:] != gathered.ref:
            self.fail("MULTILINE_INVALID", "", "No such batch")
        elif not gathered.failed:
            if gathered.label is not None:
                self.with_label(gathered.label, lambda: self.said(gathered))
            else:
                self.said(gathered)

    def gathered(self, line: IrcLine) -> None:
        """A line with a ``batch`` tag: a line of the batch being read."""
        gathering = self.gathering
        if gathering is None or line.tags.get("batch") != gathering.ref:
            self.gathering = None
            self.fail("MULTILINE_INVALID", "", "That line is not in the batch being sent")
            return
        if gathering.failed:
            return
        problem = gathering.add(line)
        if problem is not None:
            gathering.failed = True
            self.fail(*problem, "The multiline batch was refused: nothing of it was sent")

    def said(self, gathered: Gathered) -> None:
        """The batch, sent as one message."""
        if not any(gathered.lines):
            self.fail("MULTILINE_INVALID", "", "A multiline batch needs a line with text")
            return
        try:
            self.say(gathered.target, gathered.text(), False, gathered.tags, notice=gathered.command == "NOTICE")
        except Refused as exc:
            self.refused(IrcLine(gathered.command, [gathered.target]), exc)
