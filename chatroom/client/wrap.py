"""Lines of formatted text cut into screen rows: word wrap with a hanging indent, and
widths as the terminal draws them.  No I/O.

Widths are wcwidth's, character by character as prompt_toolkit's renderer counts
them (its ``get_cwidth``), never ``len()``: a CJK character takes two columns, a combining
accent none.  Where terminals and wcwidth disagree, the text is shown in a form both
agree on (:func:`for_display`), so a redraw never leaves stale cells: the joiners
(U+200D) of emoji sequences, skin-tone modifiers and the emoji variation selector are
removed (a family shows as its people, a toned thumb as a plain one), and a flag -- two
regional-indicator letters, drawn by terminals as one glyph of two columns where wcwidth
counts four -- shows as its letters in brackets (``[FR]``).
"""

from __future__ import annotations

import re
from functools import lru_cache

from wcwidth import wcwidth

__all__ = ["for_display", "width", "wrap"]

Fragment = tuple[str, str]
Line = list[Fragment]

#: Zero-width joiner, emoji variation selector, skin-tone modifiers: a terminal may draw
#: the sequence as one glyph of two columns where wcwidth counts each part.
_SEQUENCE_PARTS = re.compile("[\u200d\ufe0f\U0001f3fb-\U0001f3ff]")
#: A flag: two regional-indicator letters (or one alone).
_FLAG = re.compile("[\U0001f1e6-\U0001f1ff]{1,2}")
_RI_A = 0x1F1E6

_TOKENS = re.compile(r"\s+|\S+")


def for_display(text: str) -> str:
    """``text`` as every terminal draws it alike (see the module's doc)."""
    if text.isascii():  # the common case
        return text
    if _SEQUENCE_PARTS.search(text):
        text = _SEQUENCE_PARTS.sub("", text)
    if _FLAG.search(text):
        text = _FLAG.sub(lambda m: "[" + "".join(chr(ord(c) - _RI_A + 65) for c in m.group()) + "]", text)
    return text


@lru_cache(maxsize=4096)
def _char_width(char: str) -> int:
    return max(0, wcwidth(char))  # control characters are -1: they take no column


def width(text: str) -> int:
    """Columns ``text`` takes on a terminal: each character's wcwidth, summed, as
    prompt_toolkit's renderer counts them (so what we wrap is what it draws)."""
    return sum(_char_width(c) for c in text)


def wrap(line: Line, columns: int) -> list[Line]:
    """``line`` as rows of at most ``columns`` columns.  Breaks go between words; the
    rows after the first are indented under the text (past the time and nick: the
    width of everything before the last fragment, at most half the row); a word longer
    than a row -- a long URL -- starts a row of its own and is cut only where it must be."""
    columns = max(1, columns)
    if sum(width(text) for _, text in line) <= columns:
        return [line]
    indent = min(sum(width(text) for _, text in line[:-1]), columns // 2)
    rows = _Rows(columns, indent)
    for style, text in line:
        for token in _TOKENS.findall(text):
            rows.add(style, token)
    return rows.done()


class _Rows:
    """The rows of one wrapped line, as they are filled."""

    def __init__(self, columns: int, indent: int) -> None:
        self.columns, self.indent = columns, indent
        self.rows: list[Line] = []
        self.row: Line = []
        self.used = 0

    def add(self, style: str, token: str) -> None:
        size = width(token)
        if self.used + size <= self.columns:
            self.row.append((style, token))
            self.used += size
        elif token.isspace():
            self.new_row()  # a break between words: the space is not carried over
        else:
            self._word(style, token, size)

    def _word(self, style: str, token: str, size: int) -> None:
        """A word that does not fit what is left of the row."""
        if self.used > self.indent and size <= self.columns - self.indent:
            self.new_row()  # the word fits on a row of its own: never split it
        for part in _cut(token, self.columns - self.used, self.columns - self.indent):
            if self.used + width(part) > self.columns:
                self.new_row()
            self.row.append((style, part))
            self.used += width(part)

    def new_row(self) -> None:
        row = self.row
        while len(row) > 1 and row[-1][1].isspace():  # no trailing blanks at a break
            row.pop()
        self.rows.append(row)
        self.row, self.used = ([("", " " * self.indent)], self.indent) if self.indent else ([], 0)

    def done(self) -> list[Line]:
        row = self.row
        if row and (len(row) > 1 or row[0][1].strip()):
            self.rows.append(row)
        return self.rows


def _cut(word: str, first: int, rest: int) -> list[str]:
    """``word`` in pieces: the first at most ``first`` columns wide, the others ``rest``."""
    pieces, piece, used, room = [], "", 0, max(1, first)
    for char in word:
        size = width(char)
        if used + size > room and piece:
            pieces.append(piece)
            piece, used, room = "", 0, max(1, rest)
        piece += char
        used += size
    if piece:
        pieces.append(piece)
    return pieces
