"""The full-screen client's two bars: the topic line above the messages and the status
bar below them -- what is wrong first, who we are, the windows with their activity and
unread counts, the room's size, the connection and its lag, then what is sending, file
transfers, the scrollback and the bell.  A part of :class:`~chatroom.ui.tui.ChatApp`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prompt_toolkit.formatted_text import StyleAndTextTuples, fragment_list_width

from chatroom.client.transfers import Phase
from chatroom.client.windows import Activity
from chatroom.text import clean_line

if TYPE_CHECKING:
    from prompt_toolkit.application import Application
    from prompt_toolkit.widgets import TextArea

    from chatroom.client.connection import ChatClient
    from chatroom.client.controller import Controller
    from chatroom.client.finding import Finder
    from chatroom.client.transcript import Transcript
    from chatroom.client.windows import Windows

__all__ = ["Bars", "LAG_SHOWN", "LAG_BAD"]

#: The server's answer to a keepalive ping is shown in the status bar from this many
#: seconds on, and as trouble from LAG_BAD.
LAG_SHOWN, LAG_BAD = 1.0, 5.0


class Bars:
    """The topic line and the status bar (a mixin of ``ChatApp``)."""

    if TYPE_CHECKING:  # (ChatApp's)
        app: Application[None]
        client: ChatClient
        controller: Controller
        windows: Windows
        input: TextArea
        state_text: str
        state_bad: bool
        _retry_at: float
        finder: tuple[Transcript, Finder] | None

        @property
        def transcript(self) -> Transcript: ...

    def _state(self) -> str:
        if self.state_text == "disconnected":
            left = self._retry_at - time.monotonic()
            return f"disconnected — retrying in {left:.0f}s" if left >= 0.5 else "disconnected — retrying"
        return self.state_text

    # ------------------------------------------------------------------ UI

    def _topic(self) -> StyleAndTextTuples:
        """The line above the messages: the window's room and topic, or whom it talks to."""
        name, query = self.controller.front.where()
        if query:
            return [("class:topic", f" private conversation with {clean_line(name)} (/close to close it)")]
        view = self.client.session.view(name)
        if view is None:
            return [("class:topic", f" {clean_line(name)} (not joined)" if name else " (no room: /join one)")]
        on = f" on {clean_line(self.windows.active.server)}" if self.windows.several else ""
        topic = f": {clean_line(view.topic)}" if view.topic else ""
        return [("class:topic", f" {clean_line(view.name)}{on}{topic}")]

    def _window_list(self) -> StyleAndTextTuples:
        """``[1:lobby 2:dev+ 3:@bob!]``: the window on screen underlined, activity in
        white (+), highlights -- a mention or a private message -- on red (!)."""
        styles = {Activity.NONE: "class:status.window", Activity.TEXT: "class:status.window.text",
                  Activity.HIGHLIGHT: "class:status.window.highlight"}
        marks = {Activity.NONE: "", Activity.TEXT: "+", Activity.HIGHLIGHT: "!"}
        out: StyleAndTextTuples = [("class:status", " [")]
        for i, (number, label, activity, current) in enumerate(self.windows.labels()):
            style = "class:status.window.current" if current else styles[activity]
            out.append(("class:status", " " if i else ""))
            out.append((style, f"{number}:{label}{marks[activity]}"))
        out.append(("class:status", "]"))
        return out

    def _status(self) -> StyleAndTextTuples:
        """The status bar, fitted to the screen's width: what is least useful goes first
        (the bell, the room's size, file rates and sizes, the connection's state when all
        is well...), never half of a part or a separator."""
        parts = self._status_parts()
        columns = self._columns()
        while sum(fragment_list_width(f) for _, f in parts) > columns:
            droppable = [p for p in parts if p[0] < 9]
            if not droppable:
                break
            parts.remove(max(droppable, key=lambda p: p[0]))
        return [fragment for _, f in parts for fragment in f]

    def _columns(self) -> int:
        try:
            return int(self.app.output.get_size().columns)
        except Exception:  # noqa: BLE001 -- (no terminal yet: the whole bar)
            return 10_000

    def _status_parts(self) -> list[tuple[int, StyleAndTextTuples]]:
        """The status bar's parts in order, each with how readily it goes when the screen
        is narrow (9: never; otherwise the higher, the sooner)."""
        c, t = self.client, self.transcript
        name, query = self.controller.front.where()
        view = None if query else c.session.view(name)
        parts: list[tuple[int, StyleAndTextTuples]] = []
        if self.state_bad:
            parts.append((9, [("class:status.bad", f" {self._state()} ")]))
        parts.append((9, [("class:status", f" {clean_line(c.nick)}")]))
        if c.session.away:
            parts.append((4, [("class:status.note", " away ")]))
        parts.append((9, self._window_list()))
        if not self.state_bad:  # (offline: no stale head count)
            if view is not None:
                parts.append((6, [("class:status", f" │ {max(view.member_count, len(view.members))} online")]))
            parts.append((5, [("class:status", f" │ {self._state()}")]))
            parts.append((3, self._lag()))
        return parts + self._status_tail(t)
    def _lag(self) -> StyleAndTextTuples:
        """The keepalive's round trip, once it is worth a look (a second or more); while an
        answer is overdue it grows, and past 5 s it is shown as trouble."""
        lag = self.client.lag
        if lag is None or lag < LAG_SHOWN:
            return []
        return [("class:status.bad" if lag >= LAG_BAD else "class:status.note", f" lag {lag:.1f} s ")]

    def _status_tail(self, t: Transcript) -> list[tuple[int, StyleAndTextTuples]]:
        """The rest of the status bar: a paste, what is sending, files, scrollback, bell."""
        parts: list[tuple[int, StyleAndTextTuples]] = []
        typed = self.input.document.line_count if hasattr(self, "input") else 1
        if typed > 1:  # a paste: Enter sends it as one message of this many lines
            parts.append((2, [("class:status.note", f" {typed} lines: Enter sends them as one message ")]))
        if t.pending:
            parts.append((4, [("class:status", f" │ {len(t.pending)} sending")]))
        parts += self._status_files()
        if t.marked is not None and self.finder is not None and self.finder[0] is t:
            parts.append((1, [("class:status.note", f" /last: {self.finder[1].status()} (Alt-Up/Dn) ")]))
        elif t.scroll:
            below = f"{t.unread} new below" if t.unread else "reading back"
            parts.append((2, [("class:status.note", f" ↓ {below} (End) ")]))
        if t.bell_mode != "mentions":
            parts.append((8, [("class:status", f" │ bell {t.bell_mode}")]))
        return parts

    def _status_files(self) -> list[tuple[int, StyleAndTextTuples]]:
        """Moving files: the short form (name and share) stays longer than the rate and sizes."""
        moving = [f for f in self.client.files.all() if f.phase.active or f.phase is Phase.WAITING]
        parts: list[tuple[int, StyleAndTextTuples]] = []
        for f in moving[:2]:
            full, short = f.progress_text(), f.progress_text(short=True)
            if full != short:
                parts.append((7, [("class:status.file", full[len(short):])]))
            parts.insert(len(parts) - (full != short), (5, [("class:status.file", f" │ {short}")]))
        if len(moving) > 2:
            parts.append((6, [("class:status.file", f" +{len(moving) - 2} more (/files)")]))
        return parts
