"""The full-screen client's two bars: the topic line above the messages and the status
bar below them -- what is wrong first, who we are, the windows with their activity and
unread counts, the room's size, the connection and its lag, then what is sending, file
transfers, the scrollback and the bell.  A part of :class:`~chatroom.ui.tui.ChatApp`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prompt_toolkit.formatted_text import StyleAndTextTuples

from chatroom.client.transfers import Phase
from chatroom.client.windows import Activity
from chatroom.text import clean_line

if TYPE_CHECKING:
    from prompt_toolkit.widgets import TextArea

    from chatroom.client.connection import ChatClient
    from chatroom.client.controller import Controller
    from chatroom.client.transcript import Transcript
    from chatroom.client.windows import Windows

__all__ = ["Bars", "LAG_SHOWN", "LAG_BAD"]

#: The server's answer to a keepalive ping is shown in the status bar from this many
#: seconds on, and as trouble from LAG_BAD.
LAG_SHOWN, LAG_BAD = 1.0, 5.0


class Bars:
    """The topic line and the status bar (a mixin of ``ChatApp``)."""

    if TYPE_CHECKING:  # (ChatApp's)
        client: ChatClient
        controller: Controller
        windows: Windows
        input: TextArea
        state_text: str
        state_bad: bool
        _retry_at: float

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
        return [("class:topic", f" {clean_line(view.name)}" + (f": {clean_line(view.topic)}" if view.topic else ""))]

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
        c = self.client
        name, query = self.controller.front.where()
        view = None if query else c.session.view(name)
        # What matters most comes first, as a narrow screen cuts the end of the bar: what
        # is wrong, who we are, the windows (where something happened), then the rest.
        parts: StyleAndTextTuples = [("class:status.bad", f" {self._state()} ")] if self.state_bad else []
        parts.append(("class:status", f" {clean_line(c.nick)}"))
        if c.session.away:
            parts.append(("class:status.note", " away "))
        parts += self._window_list()
        if not self.state_bad:
            online = f" │ {max(view.member_count, len(view.members))} online" if view is not None else ""
            parts.append(("class:status", f"{online} │ {self._state()}"))
            parts += self._lag()
        return parts + self._status_tail()

    def _lag(self) -> StyleAndTextTuples:
        """The keepalive's round trip, once it is worth a look (a second or more); while an
        answer is overdue it grows, and past 5 s it is shown as trouble."""
        lag = self.client.lag
        if lag is None or lag < LAG_SHOWN:
            return []
        return [("class:status.bad" if lag >= LAG_BAD else "class:status.note", f" lag {lag:.1f} s ")]

    def _status_tail(self) -> StyleAndTextTuples:
        """The rest of the status bar: a paste, what is sending, files, scrollback, bell."""
        t = self.transcript
        parts: StyleAndTextTuples = []
        typed = self.input.document.line_count if hasattr(self, "input") else 1
        if typed > 1:  # a paste: Enter sends it as one message of this many lines
            parts.append(("class:status.note", f" {typed} lines: Enter sends them as one message "))
        if t.pending:
            parts.append(("class:status", f" │ {len(t.pending)} sending"))
        parts += self._status_files()
        if t.scroll:
            parts.append(("class:status.note", f" ↓ {t.unread} new below (PageDown) "))
        if t.bell_mode != "mentions":
            parts.append(("class:status", f" │ bell {t.bell_mode}"))
        return parts

    def _status_files(self) -> StyleAndTextTuples:
        moving = [f for f in self.client.files.all() if f.phase.active or f.phase is Phase.WAITING]
        parts: StyleAndTextTuples = [("class:status.file", f" │ {f.progress_text()}") for f in moving[:2]]
        if len(moving) > 2:
            parts.append(("class:status.file", f" +{len(moving) - 2} more (/files)"))
        return parts
