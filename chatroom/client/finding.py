"""``/last``: finding lines in a window and showing each in its context.  No I/O.

A search is a pattern (the text typed, ignoring case, or ``/a regex/``) over the lines a
window holds.  The newest match is shown first, in its place among the lines around it
(the view scrolls there and the line is marked); the keys go to the next older or newer
match.  Matches further back than the window holds come from the server's history of
the room (a ``search``, paged with ``before``), listed once: only those older than the
window's first line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from chatroom.client.wrap import Line

__all__ = ["pattern_of", "Finder", "line_text"]


def pattern_of(typed: str) -> re.Pattern[str]:
    """What ``/last`` looks for: ``/regex/`` as a regular expression, anything else as
    text; both ignoring case.  Raises ``re.error`` for a bad expression."""
    if len(typed) > 2 and typed.startswith("/") and typed.endswith("/"):
        return re.compile(typed[1:-1], re.IGNORECASE)
    return re.compile(re.escape(typed), re.IGNORECASE)


def line_text(line: Line) -> str:
    return "".join(text for _, text in line)


@dataclass
class Finder:
    """The matches of one search in one window's lines (oldest first) and which one is
    on screen (``at``: an index into ``matches``)."""

    pattern: re.Pattern[str]
    matches: list[Line] = field(default_factory=list)
    at: int = -1

    @classmethod
    def over(cls, pattern: re.Pattern[str], lines: list[Line]) -> Finder:
        """The matches among ``lines``, ours excepted (the ``/last`` line itself), the
        newest one chosen."""
        found = [line for line in lines if pattern.search(line_text(line)) and "/last " not in line_text(line)]
        return cls(pattern, found, len(found) - 1)

    @property
    def current(self) -> Line | None:
        return self.matches[self.at] if 0 <= self.at < len(self.matches) else None

    def step(self, older: bool) -> bool:
        """To the next older (or newer) match; False if there is none that way."""
        target = self.at - 1 if older else self.at + 1
        if not 0 <= target < len(self.matches):
            return False
        self.at = target
        return True

    def status(self) -> str:
        """'match 3 of 12' (the newest is the last)."""
        return f"match {self.at + 1} of {len(self.matches)}" if self.matches else "no match"

    @staticmethod
    def scroll_to(rows_below: int, height: int, top: int) -> int:
        """The scroll (rows above the bottom) that shows a line with ``rows_below`` rows
        after it about a third of the way up a pane ``height`` rows tall, within the
        lines there are (``top``: the largest scroll)."""
        return max(0, min(rows_below - height // 3, top))
