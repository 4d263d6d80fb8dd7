"""What the full-screen client's commands see of its windows: which one is on screen,
opening, closing and switching them, and finding lines in them (``/last``).  A
:class:`~chatroom.client.controller.Front` for :class:`~chatroom.ui.tui.ChatApp`."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from chatroom.client.controller import Front
from chatroom.client.finding import Finder

if TYPE_CHECKING:
    from chatroom.client.connection import ChatClient
    from chatroom.ui.tui import ChatApp

__all__ = ["WindowsFront"]


class WindowsFront(Front):
    """Commands see the full-screen client's windows."""

    def __init__(self, app: ChatApp) -> None:
        super().__init__(app.client)
        self.app = app

    def client_here(self) -> ChatClient:
        return self.app.client

    def connect(self, address: str) -> str | None:
        return self.app.connect_more(address)

    def disconnect(self) -> str | None:
        return self.app.disconnect_here()

    def where(self) -> tuple[str, bool]:
        w = self.app.windows.active
        return w.name, w.query

    def open_query(self, nick: str) -> None:
        self.app.windows.query(nick)

    def close_window(self) -> bool:
        w = self.app.windows.active
        if not w.query and self.app.client.session.view(w.name) is not None:
            return False  # a room: leaving it closes its window
        self.app.windows.close(w)
        return True

    def switch(self, number: int) -> bool:
        return self.app.windows.switch(number)

    def show_room(self, name: str) -> bool:
        windows = self.app.windows
        window = windows.find(name)
        return window is not None and windows.switch(windows.items.index(window) + 1)

    def find(self, pattern: re.Pattern[str]) -> Finder:
        t = self.app.transcript
        finder = Finder.over(pattern, list(t.lines))
        self.app.finder = (t, finder)
        if finder.current is not None:
            t.show_line(finder.current, self.app.pane.height or 20)
        return finder

    def lines_with(self, text: str) -> list[str]:
        wanted = text.casefold()
        lines = ("".join(t for _, t in line) for line in self.app.transcript.lines)
        return [line for line in lines if wanted in line.casefold() and "/last " not in line]
