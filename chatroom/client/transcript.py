"""What the chat screen shows: lines, pending marks, scrolling, mentions.  No I/O.

The full-screen client renders a :class:`Transcript`; the plain client prints
:func:`plain_line`.  Both turn the client's events into text here, so everything a
peer sent is sanitised in one place before it can reach a terminal.

A line is a list of ``(style, text)`` fragments with no newline in it (prompt_toolkit's
formatted text); a multi-line message becomes several lines, continuation lines
indented under the first.
"""

from __future__ import annotations

import re
import time
import zlib
from collections import deque

import msgspec

from chatroom.client.events import Outgoing, OutgoingChanged, TransferChanged, Trusted
from chatroom.client.finding import Finder
from chatroom.client.wording import clock, crowd_text, files_text, plain_line, system_line, transfer_text
from chatroom.client.wrap import for_display, wrap
from chatroom.protocol import (
    Action,
    Chat,
    Direct,
    Found,
    History,
    Joined,
    Private,
    Welcome,
)
from chatroom.text import clean_line, clean_text, fold

__all__ = ["Fragment", "Line", "Transcript", "nick_style", "plain_line", "transfer_text", "files_text",
           "NICK_COLOURS", "crowd_text"]

Fragment = tuple[str, str]
Line = list[Fragment]

#: Enough scrollback for a long afternoon; the issue asks for at least 5,000.
MAX_LINES = 10_000
NICK_COLOURS = 12


def nick_style(nick: str) -> str:
    """A colour class that is the same for a nick on every run and every machine."""
    return f"class:nick.c{zlib.crc32(nick.casefold().encode()) % NICK_COLOURS}"


def mentions(text: str, nick: str) -> bool:
    """Does ``text`` name ``nick`` as a word (case-insensitively, @ optional)?"""
    if not nick:
        return False
    return re.search(rf"(?<![\w]){re.escape(nick)}(?![\w])", text, re.IGNORECASE) is not None


class Transcript:
    """The lines of the message pane, and where the user is looking."""

    def __init__(self, max_lines: int = MAX_LINES) -> None:
        self.lines: deque[Line] = deque(maxlen=max_lines)
        self.pending: dict[str, Line] = {}  # client message id -> its dimmed line
        self.scroll = 0  # screen rows above the bottom; 0 = follow new messages
        self.marked: Line | None = None  # /last's match on screen
        self.width = 80  # columns of the pane, as last drawn: rows are counted at this width
        self.unread = 0  # messages arrived while scrolled up
        self.nick = ""
        self.room = ""  # the room on screen now (older pages are prepended for it only)
        self.bell_mode = "mentions"
        self.time_format = "%H:%M"
        self.highlights: tuple[str, ...] = ()  # words that highlight a line, besides our nick
        self.version = 0  # bumps on every change, so a renderer can cache
        # Per room (folded name): the newest and oldest sequence numbers on screen, so
        # a message replayed after a reconnect never shows twice, and whether the
        # oldest one is the room's first.
        self.newest: dict[str, int] = {}
        self.oldest: dict[str, int] = {}
        self.complete: set[str] = set()
        self.trusted: set[tuple[str, str]] = set()  # TLS servers already announced
        self._day = ""  # the day of the last live line: a "day changed" line when it does
        #: id(line) -> (line, width, its rows): wrapping is done once per line and width.
        self._rows: dict[int, tuple[Line, int, list[Line]]] = {}

    # ------------------------------------------------------------------ adding

    def add(self, event: object) -> bool:
        """Show ``event``.  Returns True if it should ring the bell."""
        if isinstance(event, Chat):
            return self._chat(event)
        if isinstance(event, Private):
            return self._private(event)
        if isinstance(event, Welcome | Joined):
            self._arrived(event)
        elif isinstance(event, History):
            self._history(event)
        elif isinstance(event, Found):
            self._found(event)
        elif isinstance(event, OutgoingChanged):
            self._outgoing(event.outgoing)
        elif isinstance(event, TransferChanged):
            return self._transfer(event)
        elif isinstance(event, Trusted) and (event.server, event.fingerprint) in self.trusted:
            pass  # said once; a reconnect to the same certificate is not news
        else:
            if isinstance(event, Trusted):
                self.trusted.add((event.server, event.fingerprint))
            line = system_line(event)
            if line is not None:
                self.system(line[0], ts=line[1], error=line[2])
        return False

    def _found(self, found: Found) -> None:
        """The server's matches: only those older than this window's first line of the
        room (the newer ones are here already, and /last showed them in place)."""
        first = self.oldest.get(fold(found.room))
        older = tuple(c for c in found.messages if first is None or c.seq < first)
        more = "" if found.complete else "\n  (/last more: older ones)"
        if older or not found.messages:
            shown = msgspec.structs.replace(found, messages=older)
            self.system(system_line(shown)[0] + (more if older else ""))  # type: ignore[index]
        elif not found.complete:
            self.system(f"the server has matches of {clean_line(found.text)!r} older than this window: /last more")
        else:
            self.system(f"no older match on the server for {clean_line(found.text)!r}")

    def _chat(self, event: Chat) -> bool:
        self.pending.pop(event.id or "", None)
        if not self._fresh(event):
            self.version += 1
            return False
        own = event.nick == self.nick
        mention = not own and self.mentions_me(event.text)
        self._message(event.ts, event.nick, event.text, own=own, action=event.action, mention=mention)
        return not own and (self.bell_mode == "on" or (self.bell_mode == "mentions" and mention))

    def mentions_me(self, text: str) -> bool:
        """Does ``text`` name our nick or one of the highlight words?"""
        return mentions(text, self.nick) or any(mentions(text, word) for word in self.highlights)

    def _private(self, event: Private) -> bool:
        self.pending.pop(event.id or "", None)
        own = event.nick == self.nick
        who = f"→ {event.to}" if own else f"{event.nick} → {event.to}" if event.to[:1] in "@+" else f"{event.nick} →"
        self._message(event.ts, event.nick, event.text, own=own, private=who)
        return not own and self.bell_mode != "off"

    def _arrived(self, event: Welcome | Joined) -> None:
        self.room = event.room
        for chat in event.history:
            if self._fresh(chat):
                self._message(chat.ts, chat.nick, chat.text, own=chat.nick == self.nick, action=chat.action,
                              history=True)
        if isinstance(event, Welcome) and event.resumed:
            self.system(f"reconnected to {clean_line(event.room)}: your session was kept")
            return
        if isinstance(event, Joined) and event.resumed:
            return  # one of the resumed session's rooms: nothing changed for us
        topic = f" — topic: {clean_line(event.topic)}" if event.topic else ""
        count = event.member_count or len(event.members)
        others = {0: "nobody else", 1: "1 other"}.get(count - 1, f"{count - 1} others")
        self.system(f"you are in {clean_line(event.room)} with {others}{topic}")

    def _transfer(self, event: TransferChanged) -> bool:
        shown = transfer_text(event)
        if shown is not None:
            self.system(shown[0], error=shown[1])
        offered = event.what == "offered" and not event.transfer.outgoing
        return offered and self.bell_mode != "off"

    def wants_older(self) -> int | None:
        """The sequence number to page back from in the current room, or None."""
        key = fold(self.room)
        if not self.room or key in self.complete:
            return None
        return self.oldest.get(key, self.newest.get(key, 0) + 1)

    def _fresh(self, chat: Chat) -> bool:
        """Record ``chat`` as shown; False if it already was (a replay)."""
        key = fold(chat.room)
        if chat.seq <= self.newest.get(key, 0):
            return False
        self.newest[key] = chat.seq
        self.oldest.setdefault(key, chat.seq)
        return True

    def _history(self, page: History) -> None:
        key = fold(page.room)
        newest = self.newest.get(key, 0)
        older = [c for c in page.messages if c.seq < self.oldest.get(key, newest + 1)]
        newer = [c for c in page.messages if c.seq > newest]
        for chat in newer:  # missed while disconnected: they come before anything live
            self.add(chat)
        if older and fold(self.room) == key:  # paging back: goes on top
            self._on_top(page, older)
            self.oldest[key] = older[0].seq
        if page.complete and not newer:
            self.complete.add(key)
        self.version += 1

    def _on_top(self, page: History, older: list[Chat]) -> None:
        """Older messages (paging back) above the lines shown, where they are read."""
        saved, self.lines = list(self.lines), deque(maxlen=self.lines.maxlen)
        scroll, unread = self.scroll, self.unread
        self.scroll = 0
        if page.complete:
            self.system(f"beginning of {clean_line(page.room)}")
        for chat in older:
            self._message(chat.ts, chat.nick, chat.text, own=chat.nick == self.nick, action=chat.action, history=True)
        self.lines.extend(saved[: (self.lines.maxlen or len(saved)) - len(self.lines)])
        self.scroll, self.unread = scroll, unread

    def system(self, text: str, *, ts: float | None = None, error: bool = False) -> None:
        """A line from us (help, errors, presence), not from a peer -- though parts of
        it may have come from the server (a reason for closing, an error's text), so
        it is cleaned here, once for all of them."""
        text = clean_text(text)
        style = "class:error" if error else "class:system"
        stamp = clock(ts if ts is not None else time.time(), fmt=self.time_format)
        first = True
        for part in text.split("\n"):
            lead = [("class:time", f"{stamp} "), (style, "-- " if first else "   ")]
            self._append([*lead, (style, part)])
            first = False
        self._counted()

    def clear(self) -> None:
        self.lines.clear()
        self.scroll = self.unread = 0
        self.version += 1

    # ------------------------------------------------------------------ scrolling (screen rows)

    def rows_of(self, line: Line, width: int | None = None) -> list[Line]:
        """``line`` wrapped into screen rows (cached)."""
        width = width or self.width
        cached = self._rows.get(id(line))
        if cached is not None and cached[0] is line and cached[1] == width:
            return cached[2]
        if len(self._rows) > 2 * len(self.lines) + 1000:  # forget lines that scrolled away
            alive = {id(x) for x in self.lines}
            self._rows = {k: v for k, v in self._rows.items() if k in alive}
        rows = wrap(line, width)
        self._rows[id(line)] = (line, width, rows)
        return rows

    def total_rows(self) -> int:
        return sum(len(self.rows_of(line)) for line in self.lines)

    def top(self, height: int) -> int:
        """The largest scroll: the oldest line at the top of a full pane."""
        return max(0, self.total_rows() - height)

    def page_up(self, height: int) -> None:
        """Back by a screen (less a row, for context), no further than the oldest line at the top."""
        self.scroll = min(self.scroll + max(1, height - 1), self.top(height))
        self.version += 1

    def page_down(self, height: int) -> None:
        self.scroll_by(-max(1, height - 1), height)

    def scroll_by(self, rows: int, height: int) -> None:
        """Up (positive) or down by ``rows`` rows: the mouse wheel."""
        self.scroll = max(0, min(self.scroll + rows, self.top(height)))
        if self.scroll == 0:
            self.unread = 0
        self.version += 1

    def at_top(self, height: int) -> bool:
        return self.scroll >= self.top(height)

    def to_bottom(self) -> None:
        """Back to the newest line (a /last match is no longer marked)."""
        self.scroll = self.unread = 0
        self.marked = None
        self.version += 1

    def show_line(self, line: Line, height: int) -> None:
        """Scroll so that ``line`` is on screen, about a third of the way up, marked."""
        below, seen = 0, False
        for other in reversed(self.lines):
            if other is line:
                seen = True
                break
            below += len(self.rows_of(other))
        if not seen:
            return
        self.marked = line
        self.scroll = Finder.scroll_to(below, height, self.top(height))
        self.version += 1

    def screen(self, width: int, height: int) -> list[Line]:
        """The rows a pane ``width`` x ``height`` shows: the ``height`` ending ``scroll``
        rows above the newest (then the pending lines, when following)."""
        if width != self.width:
            self.width = width
        want = self.scroll + height
        chunks: list[list[Line]] = []
        got = 0
        source = list(self.pending.values()) if not self.scroll else []
        for line in reversed(source):
            chunks.append(self.rows_of(line))
            got += len(chunks[-1])
        for i in range(len(self.lines) - 1, -1, -1):
            if got >= want:
                break
            line = self.lines[i]
            rows = self.rows_of(line)
            if line is self.marked:  # /last's match on screen
                rows = [[("class:match " + style, text) for style, text in row] for row in rows]
            chunks.append(rows)
            got += len(chunks[-1])
        rows = [row for chunk in reversed(chunks) for row in chunk]
        end = len(rows) - self.scroll if self.scroll else len(rows)
        return rows[max(0, end - height):end]

    def visible(self) -> list[Line]:
        """Every row up to the scroll position, then the pending ones (when following)."""
        rows = [row for line in self.lines for row in self.rows_of(line)]
        if self.scroll:
            return rows[: len(rows) - self.scroll]
        return rows + [row for line in self.pending.values() for row in self.rows_of(line)]

    # ------------------------------------------------------------------ internals

    def _message(self, ts: float, nick: str, text: str, *, own: bool, action: bool = False,
                 private: str | None = None, mention: bool = False, history: bool = False) -> None:
        nick = clean_line(nick)
        if not history:
            self._new_day(ts)
        stamp = f"{clock(ts, fmt=self.time_format)} "
        body_style = "class:mention" if mention else "class:own" if own else "class:text"
        if history:
            body_style += " class:history"
        if private is not None:
            body_style = "class:private"
            lead: Line = [("class:time", stamp), ("class:private", f"[{clean_line(private)}] ")]
        elif action:
            lead = [("class:time", stamp), ("class:action", "* "), (nick_style(nick), nick),
                    ("class:action", " ")]
            body_style = "class:action" + (" class:mention" if mention else "")
        else:
            lead = [("class:time", stamp), (nick_style(nick), f"<{nick}>"), ("", " ")]
        self._append_text(lead, clean_text(text), body_style)
        self._counted()

    def _new_day(self, ts: float) -> None:
        """A live line on another day than the last one: say so first."""
        day = time.strftime("%a %d %b %Y", time.localtime(ts))
        if self._day and day != self._day:
            self.system(f"day changed to {day}", ts=ts)
        self._day = day

    def _append_text(self, lead: Line, text: str, style: str) -> None:
        indent = " " * sum(len(t) for _, t in lead)
        for i, part in enumerate(text.split("\n")):
            part = part.replace("\t", "    ")
            self._append([*lead, (style, part)] if i == 0 else [("", indent), (style, part)])

    def _append(self, line: Line) -> None:
        line = [(style, for_display(text)) for style, text in line]
        self.lines.append(line)
        if self.scroll:  # the view holds still: what was at the bottom stays there
            self.scroll += len(self.rows_of(line))
        self.version += 1

    def _counted(self) -> None:
        if self.scroll:
            self.unread += 1

    def _outgoing(self, out: Outgoing) -> None:
        if out.status == "pending":
            msg = out.message
            text = clean_text(msg.text)
            if isinstance(msg, Direct):
                lead: Line = [("class:pending", f"…     [→ {clean_line(msg.to)}] ")]
            elif isinstance(msg, Action):
                lead = [("class:pending", f"…     * {self.nick} ")]
            else:
                lead = [("class:pending", f"…     <{self.nick}> ")]
            first = text.split("\n")[0] + (" …" if "\n" in text else "")
            self.pending[out.id] = [*lead, ("class:pending", first), ("class:pending.mark", "  (sending)")]
        else:
            self.pending.pop(out.id, None)
            if out.status == "refused":
                self.system(f"not sent: {clean_line(out.message.text)[:60]} — {clean_line(out.error)}", error=True)
        self.version += 1

