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
from collections.abc import Callable
from typing import Any

from chatroom.client.events import FileTransfer, Outgoing, OutgoingChanged, Phase, TransferChanged, Trusted
from chatroom.client.wrap import for_display, wrap
from chatroom.protocol import (
    Action,
    Chat,
    Crowd,
    Direct,
    Error,
    Found,
    History,
    Joined,
    Members,
    Notice,
    Parted,
    Presence,
    PresenceEvent,
    Private,
    Rooms,
    Topic,
    User,
    Welcome,
)
from chatroom.text import clean_line, clean_text, fold, human_size

__all__ = ["Fragment", "Line", "Transcript", "nick_style", "plain_line", "transfer_text", "files_text",
           "NICK_COLOURS"]

Fragment = tuple[str, str]
Line = list[Fragment]

#: Enough scrollback for a long afternoon; the issue asks for at least 5,000.
MAX_LINES = 10_000
NICK_COLOURS = 12


def nick_style(nick: str) -> str:
    """A colour class that is the same for a nick on every run and every machine."""
    return f"class:nick.c{zlib.crc32(nick.casefold().encode()) % NICK_COLOURS}"


def _clock(ts: float, now: float | None = None, fmt: str = "%H:%M") -> str:
    """``14:05`` today; ``Nov 30 14:05`` on another day (history from yesterday must
    not read as today).  ``fmt``: the time's strftime format (the config's ``timestamp``)."""
    when = time.localtime(ts)
    today = time.localtime(time.time() if now is None else now)
    if when[:3] == today[:3]:
        return time.strftime(fmt, when)
    return time.strftime(f"%b %d {fmt}", when)


def mentions(text: str, nick: str) -> bool:
    """Does ``text`` name ``nick`` as a word (case-insensitively, @ optional)?"""
    if not nick:
        return False
    return re.search(rf"(?<![\w]){re.escape(nick)}(?![\w])", text, re.IGNORECASE) is not None


def _names(names: tuple[str, ...], count: int) -> str:
    shown = ", ".join(clean_line(n) for n in names)
    return f"{shown} and {count - len(names):,} more" if count > len(names) else shown


def crowd_text(c: Crowd) -> str:
    """A large room's joins and leaves of the last moment, in one line."""
    parts = []
    if c.joined_count:
        parts.append(f"{c.joined_count:,} joined ({_names(c.joined, c.joined_count)})")
    if c.left_count:
        parts.append(f"{c.left_count:,} left ({_names(c.left, c.left_count)})")
    return "; ".join(parts) + f"; {c.member_count:,} here now"


def _presence_text(p: Presence) -> str:
    nick = clean_line(p.nick)
    if p.event is PresenceEvent.JOIN:
        return f"{nick} joined {clean_line(p.room)}"
    if p.event is PresenceEvent.LEAVE:
        return f"{nick} left ({clean_line(p.reason or 'quit')})"
    if p.event is PresenceEvent.NICK:
        return f"{nick} is now known as {clean_line(p.new_nick or '?')}"
    if p.event is PresenceEvent.AWAY:
        return f"{nick} is away: {clean_line(p.message or '')}"
    if p.event is PresenceEvent.BACK:
        return f"{nick} is back"
    return f"{nick} reconnected"


class Transcript:
    """The lines of the message pane, and where the user is looking."""

    def __init__(self, max_lines: int = MAX_LINES) -> None:
        self.lines: deque[Line] = deque(maxlen=max_lines)
        self.pending: dict[str, Line] = {}  # client message id -> its dimmed line
        self.scroll = 0  # screen rows above the bottom; 0 = follow new messages
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
        elif isinstance(event, OutgoingChanged):
            self._outgoing(event.outgoing)
        elif isinstance(event, TransferChanged):
            return self._transfer(event)
        elif isinstance(event, Trusted) and (event.server, event.fingerprint) in self.trusted:
            pass  # said once; a reconnect to the same certificate is not news
        else:
            if isinstance(event, Trusted):
                self.trusted.add((event.server, event.fingerprint))
            line = _system_line(event)
            if line is not None:
                self.system(line[0], ts=line[1], error=line[2])
        return False

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
        who = f"→ {event.to}" if own else f"{event.nick} →"
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
        stamp = _clock(ts if ts is not None else time.time(), fmt=self.time_format)
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
        """Back to the newest line."""
        self.scroll = self.unread = 0
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
            chunks.append(self.rows_of(self.lines[i]))
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
        stamp = f"{_clock(ts, fmt=self.time_format)} "
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


def transfer_text(event: TransferChanged) -> tuple[str, bool] | None:
    """The line a file event deserves (and whether it is bad news), or None."""
    t, what, nick, detail = event.transfer, event.what, clean_line(event.nick), clean_line(event.detail)
    name, size, peer = f"“{clean_line(t.name)}”", human_size(t.size), clean_line(t.peer)
    why = f": {detail}" if detail else ""
    if t.outgoing:
        lines = {
            "offered": f"offered {name} ({size}) to {peer}"
                       + (f" ({detail} people)" if peer == "the room" and detail else "")
                       + f" — /cancel {t.id} withdraws it",
            "accepted": f"{nick} accepted {name}",
            "rejected": f"{nick} declined {name}",
            "started": f"sending {name} to {detail}…",
            "received": f"{nick} received {name} (SHA-256 verified)",
            "cancelled": f"{nick} cancelled {name}{why}" if nick else f"cancelled {name}",
            "stopped": f"stopped sending {name}: nobody is receiving it now",
            "closed": f"your offer of {name} is closed (delivered to {t.delivered})",
            "failed": f"sending {name} failed{why}" if t.phase.over else f"{name} to {nick} failed{why}",
            "error": f"could not offer {name}{why}",
        }
        bad = what in ("failed", "error")
    else:
        lines = {
            "offered": f"{peer} offers {name} ({size}) {detail} — /accept {t.id} or /reject {t.id}",
            "accepted": f"accepted {name}; it will be saved in {detail}",
            "queued": f"{name}: {detail}",
            "saved": f"saved {name} (SHA-256 verified) as {clean_line(str(t.path))}",
            "rejected": f"declined {name}",
            "cancelled": f"{nick} cancelled {name}{why}" if nick else f"cancelled {name}",
            "expired": f"the offer of {name} from {peer} expired",
            "failed": f"{name} from {peer} failed{why}",
            "error": f"{name}{why}",
        }
        bad = what in ("failed", "error")
    text = lines.get(what)
    return (text, bad) if text is not None else None


def files_text(transfers: list[FileTransfer]) -> str:
    """The answer to /files."""
    if not transfers:
        return "no file offers or transfers yet (/send PATH offers one)"
    return "files:\n" + "\n".join(_transfer_row(t) for t in transfers)


def _transfer_row(t: FileTransfer) -> str:
    number = f"{t.id:>3}" if t.id is not None else "  -"
    arrow, who = ("↑", f"to {clean_line(t.peer)}") if t.outgoing else ("↓", f"from {clean_line(t.peer)}")
    return f"{number} {arrow} {clean_line(t.name)} ({human_size(t.size)}) {who} — {_transfer_state(t)}"


def _transfer_state(t: FileTransfer) -> str:
    state = t.phase.value
    if t.phase in (Phase.SENDING, Phase.RECEIVING):
        return f"{state} {t.percent:.0f}%"
    if t.outgoing and t.delivered:
        return f"{state}, delivered to {t.delivered}"
    if not t.outgoing and t.phase is Phase.OFFERED:
        return f"offered: /accept {t.id}"
    if t.phase is Phase.DONE and t.path is not None and not t.outgoing:
        return f"saved as {clean_line(str(t.path))}"
    if t.detail and t.phase.over:
        return f"{state} ({clean_line(t.detail)})"
    return state


def _trusted_text(event: Trusted) -> str:
    if event.first_time:
        return (f"TLS: first visit to {event.server}; its certificate {event.fingerprint} is now remembered. "
                "Compare it with the one the host's server printed.")
    return f"TLS: {event.server} is the server we know ({event.fingerprint})"


def plain_line(event: object, nick: str = "", *, several: bool = False) -> str | None:
    """One line of text for the plain client, or None for events it does not print.
    ``several``: we are in several rooms, so room messages say which."""
    if isinstance(event, Chat):
        return _plain_chat(event, several)
    if isinstance(event, Presence | Crowd | Topic):
        return f"[{_clock(event.ts)}] -- {_system_line(event)[0]}"  # type: ignore[index]
    if isinstance(event, Notice | User | Found | Members | Rooms):
        return "-- " + _system_line(event)[0]  # type: ignore[index]
    line = _PLAIN.get(type(event))
    return line(event) if line is not None else None


def _plain_transfer(event: TransferChanged) -> str | None:
    shown = transfer_text(event)
    return None if shown is None else ("-- error: " if shown[1] else "-- ") + shown[0]


def _plain_refused(event: OutgoingChanged) -> str | None:
    if event.outgoing.status != "refused":
        return None
    return f"-- not sent: {clean_line(event.outgoing.message.text)[:60]} ({clean_line(event.outgoing.error)})"


#: The plain client's lines for the rest of the events (``plain_line``).
_PLAIN: dict[type, Callable[[Any], str | None]] = {
    Joined: lambda e: None if e.resumed else f"-- you are in {clean_line(e.room)} ({e.member_count} here)",
    Parted: lambda e: f"-- you left {clean_line(e.room)}",
    Private: lambda e: f"[{_clock(e.ts)}] [{clean_line(e.nick)} → {clean_line(e.to)}] {clean_text(e.text)}",
    Error: lambda e: f"-- error: {clean_text(e.message)}" if e.id is None else None,
    Trusted: lambda e: f"-- {_trusted_text(e)}" if e.first_time else None,
    OutgoingChanged: _plain_refused,
    TransferChanged: _plain_transfer,
}


def _plain_chat(event: Chat, several: bool) -> str:
    text = clean_text(event.text).replace("\n", "\n    ")
    where = f"{clean_line(event.room)} " if several else ""
    if event.action:
        return f"[{_clock(event.ts)}] {where}* {clean_line(event.nick)} {text}"
    return f"[{_clock(event.ts)}] {where}<{clean_line(event.nick)}> {text}"


def _system_line(event: object) -> tuple[str, float | None, bool] | None:
    """(text, time, error?) of a line from us about ``event``, or None to show nothing."""
    line = _SYSTEM.get(type(event))
    return line(event) if line is not None else None


def _rooms_text(event: Rooms) -> str:
    return "rooms: " + "; ".join(f"{clean_line(r.name)} ({r.members})" + (f": {clean_line(r.topic)}" if r.topic else "")
                                 for r in event.rooms)


#: Lines from us about events (``_system_line``).  Refusals of our own messages (an
#: error with an id) show on the message instead.
_SYSTEM: dict[type, Callable[[Any], tuple[str, float | None, bool] | None]] = {
    Presence: lambda e: (_presence_text(e), e.ts, False),
    Crowd: lambda e: (crowd_text(e), e.ts, False),
    Topic: lambda e: (f"{clean_line(e.nick)} set the topic: {clean_line(e.topic)}", e.ts, False),
    Members: lambda e: (_members_text(e), None, False),
    User: lambda e: (_user_text(e), None, False),
    Found: lambda e: (_found_text(e), None, False),
    Rooms: lambda e: (_rooms_text(e), None, False),
    Error: lambda e: (clean_text(e.message), None, True) if e.id is None else None,
    Notice: lambda e: (clean_text(e.text), None, False),
    Trusted: lambda e: (_trusted_text(e), None, False),
}


def _user_text(u: User) -> str:
    rooms = ", ".join(clean_line(r) for r in u.rooms) or "no room"
    parts = [f"{clean_line(u.nick)}: in {rooms}"]
    if u.held:
        parts.append("connection lost, session kept for a reconnect")
    elif u.idle >= 60:
        parts.append(f"idle {_duration(u.idle)}")
    if u.away:
        parts.append(f"away: {clean_line(u.away)}")
    if u.op:
        parts.append("operator")
    if u.address:
        parts.append(f"from {clean_line(u.address)}")
    return " · ".join(parts)


def _duration(seconds: float) -> str:
    minutes = int(seconds) // 60
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def _found_text(f: Found) -> str:
    where = f"the history of {clean_line(f.room)}"
    if not f.messages:
        return f"nothing with {clean_line(f.text)!r} in {where}"
    more = "" if f.complete else " (the newest; there are older ones)"
    lines = [f"{len(f.messages)} message(s) with {clean_line(f.text)!r} in {where}{more}:"]
    for c in f.messages:
        text = clean_line(c.text.replace("\n", " "))
        lines.append(f"  {_clock(c.ts)} " + (f"* {clean_line(c.nick)} {text}" if c.action
                                               else f"<{clean_line(c.nick)}> {text}"))
    return "\n".join(lines)


def _members_text(event: Members) -> str:
    names = ", ".join(
        clean_line(m.nick) + (" [op]" if m.op else "")
        + (f" <{clean_line(m.address)}>" if m.address else "")  # the server shows operators addresses
        + (f" (away: {clean_line(m.away)})" if m.away else "")
        + (f" idle {int(m.idle)}s" if m.idle >= 60 else "")
        for m in event.members
    )
    more = event.member_count - len(event.members)
    return f"in {clean_line(event.room)}: {names}" + (f" and {more} more" if more > 0 else "")
