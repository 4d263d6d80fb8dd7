"""The full-screen client's windows: one per room and one per private conversation,
numbered, each with its own transcript and its activity.  No I/O, no terminal.

Every event the client reports is routed to the window it belongs to: a room's
messages, presence and topic to that room's window; a direct message to the window of
the conversation (opened on the first one); everything else (errors, notices, file
news, the connection) to the window on screen.  A window not on screen collects
*activity* (new messages: ``+``) and *highlight* (a mention of you or a direct message:
``!``), so that nothing addressed to you is missed while you are elsewhere; the status
bar shows them, e.g. ``1:lobby 2:dev+ 3:@bob!``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from chatroom.client.events import OutgoingChanged
from chatroom.client.transcript import Transcript
from chatroom.protocol import (
    Chat,
    Crowd,
    Direct,
    History,
    Joined,
    Members,
    Parted,
    Presence,
    PresenceEvent,
    Private,
    Topic,
    Welcome,
)
from chatroom.text import clean_line, fold

__all__ = ["Activity", "Window", "Windows"]


class Activity(enum.IntEnum):
    NONE = 0
    TEXT = 1  # new messages: "+"
    HIGHLIGHT = 2  # a mention of you, or a direct message: "!"


@dataclass(eq=False)
class Window:
    """A room (``query`` False) or a private conversation with ``name`` (True)."""

    name: str
    query: bool = False
    transcript: Transcript = field(default_factory=Transcript)
    activity: Activity = Activity.NONE
    unread: int = 0  # messages that came while it was not on screen
    #: The connection it belongs to (None: the first) and that server's name, when the
    #: client is connected to several servers at once.
    owner: object = None
    server: str = ""

    @property
    def label(self) -> str:
        return ("@" if self.query else "") + (clean_line(self.name) or "(none)")

    @property
    def key(self) -> tuple[int, bool, str]:
        return id(self.owner), self.query, fold(self.name)


class Windows:
    """The numbered windows and which one is on screen."""

    def __init__(self, nick: str = "", bell_mode: str = "mentions", *, highlights: tuple[str, ...] = (),
                 time_format: str = "%H:%M") -> None:
        self.items: list[Window] = []
        self.current = 0
        self.nick = nick
        self.bell_mode = bell_mode
        self.highlights = highlights
        self.time_format = time_format
        #: What is not shown (the controller's /ignore rules)
        self.hides: Callable[[object], bool] = lambda event: False
        self.last: Window | None = None  # where the last event went
        #: The lobby's window exists before the welcome, so that lines from before it
        #: (connecting, TLS) have somewhere to go.
        self._placeholder = True
        self._owner: object = None  # the connection whose event is being shown
        self._server = ""
        self.items.append(self._new(""))

    # ------------------------------------------------------------------ looking

    @property
    def active(self) -> Window:
        return self.items[self.current]

    def find(self, name: str, *, query: bool = False, owner: object = ...) -> Window | None:
        """The window of room (or conversation) ``name`` of connection ``owner`` (by
        default: the one whose event is being shown, or the first)."""
        key = (id(self._owner if owner is ... else owner), query, fold(name))
        return next((w for w in self.items if w.key == key), None)

    @property
    def several(self) -> bool:
        """Windows of more than one server are open (their labels say which)."""
        return len({id(w.owner) for w in self.items}) > 1

    def labels(self) -> list[tuple[int, str, Activity, bool]]:
        """(number, label with its unread count, activity, on screen) for the status bar."""
        several = self.several
        return [(i + 1, w.label + (f"·{clean_line(w.server)}" if several and w.server else "")
                 + (f"({w.unread})" if w.unread else ""), w.activity, i == self.current)
                for i, w in enumerate(self.items)]

    def status_text(self) -> str:
        """``[1:lobby 2:dev(3)+ 3:@bob(1)!]``"""
        marks = {Activity.NONE: "", Activity.TEXT: "+", Activity.HIGHLIGHT: "!"}
        return "[" + " ".join(f"{n}:{label}{marks[a]}" for n, label, a, _ in self.labels()) + "]"

    def next_active(self) -> bool:
        """The hotlist (irssi's Alt-A): on to the next window where something happened --
        mentions and private messages first, then new messages, each in window order
        from the one on screen.  False if nothing happened anywhere."""
        count = len(self.items)
        after = [(self.current + step) % count for step in range(1, count)]
        for level in (Activity.HIGHLIGHT, Activity.TEXT):
            for i in after:
                if self.items[i].activity is level:
                    return self.switch(i + 1)
        return False

    @property
    def unread_highlights(self) -> int:
        return sum(1 for w in self.items if w.activity is Activity.HIGHLIGHT)

    # ------------------------------------------------------------------ switching

    def switch(self, number: int) -> bool:
        """Show window ``number`` (1-based).  False if there is none."""
        if not 1 <= number <= len(self.items):
            return False
        self.current = number - 1
        self.active.activity = Activity.NONE
        self.active.unread = 0
        self.active.transcript.version += 1
        return True

    def step(self, delta: int) -> None:
        """The next (1) or previous (-1) window, round the end."""
        self.switch((self.current + delta) % len(self.items) + 1)

    def query(self, nick: str) -> Window:
        """The conversation with ``nick`` (on the server of the window on screen),
        opened if needed, on screen."""
        self._owner, self._server = self.active.owner, self.active.server
        window = self.find(nick, query=True) or self._open(nick, query=True)
        self.switch(self.items.index(window) + 1)
        return window

    def close_all_of(self, owner: object) -> None:
        """A connection is gone: its windows close."""
        for w in [w for w in self.items if w.owner is owner]:
            self.close(w)

    def close(self, window: Window) -> None:
        """Take ``window`` off the list (a room's is closed when we leave the room)."""
        if window not in self.items:
            return
        index = self.items.index(window)
        if len(self.items) == 1:  # never no window at all: an empty one stands in
            self.items[0] = self._new("")
            self._placeholder = True
            return
        self.items.remove(window)
        if index <= self.current:  # the one on screen goes: show the one before it
            self.current = max(0, self.current - 1)
        self.active.activity = Activity.NONE
        self.active.unread = 0

    # ------------------------------------------------------------------ events

    def add(self, event: object, owner: object = None, server: str = "") -> bool:
        """Show ``event`` (from connection ``owner``, to server ``server``) in its window.
        True if it should ring the bell."""
        if self._ignored(event):
            return False
        self._owner, self._server = owner, server
        window = self.last = self._route(event)
        window.server = window.server or server  # (the first window was made before the welcome named it)
        ring = window.transcript.add(event)
        if window is not self.active:
            activity = self._activity(event)
            window.activity = max(window.activity, activity)
            window.unread += activity is not Activity.NONE
        if isinstance(event, Parted):
            self.close(window)
            self.active.transcript.system(f"you left {clean_line(event.room)}")
        return ring or (window is not self.active and isinstance(event, Private) and event.nick != self.nick)

    def system(self, text: str, *, error: bool = False) -> None:
        """A line from us, in the window on screen."""
        self.active.transcript.system(text, error=error)

    def set_nick(self, nick: str) -> None:
        self.nick = nick
        for w in self.items:
            w.transcript.nick = nick

    def set_bell(self, mode: str) -> None:
        self.bell_mode = mode
        for w in self.items:
            w.transcript.bell_mode = mode

    def transcripts(self) -> Iterable[Transcript]:
        return (w.transcript for w in self.items)

    # ------------------------------------------------------------------ internals

    def _new(self, name: str, *, query: bool = False) -> Window:
        w = Window(name, query, owner=self._owner, server=self._server)
        w.transcript.nick, w.transcript.bell_mode = self.nick, self.bell_mode
        w.transcript.highlights, w.transcript.time_format = self.highlights, self.time_format
        w.transcript.room = "" if query else name
        return w

    def _open(self, name: str, *, query: bool = False) -> Window:
        if self._placeholder and not query and self._owner is None:  # the first room takes over the stand-in
            self._placeholder = False
            w = self.items[0]
            w.name = w.transcript.room = name
            return w
        w = self._new(name, query=query)
        self.items.append(w)
        return w

    def _room_window(self, room: str) -> Window:
        return self.find(room) or self._open(room)

    def _route(self, event: object) -> Window:
        """The window ``event`` belongs in (opening one if it is the first of its kind)."""
        if isinstance(event, Welcome | Joined):
            return self._room_arrived(event)
        if isinstance(event, Private):
            return self._private_window(event)
        if isinstance(event, OutgoingChanged):
            return self._outgoing_window(event)
        if isinstance(event, Presence) and event.event is PresenceEvent.NICK:
            self._renamed(event.nick, event.new_nick or event.nick)
        if isinstance(event, Chat | History | Presence | Crowd | Topic | Members | Parted) and event.room:
            return self.find(event.room) or self._here()
        return self._here()

    def _private_window(self, event: Private) -> Window:
        """A conversation's window; a message to a room's operators (``to`` ``@#room``,
        an IRC client's) goes in the room's."""
        if event.to[:2] in ("@#", "+#"):
            return self.find(event.to[2:]) or self._here()
        peer = event.to if event.nick == self.nick else event.nick
        return self.find(peer, query=True) or self._first_private(peer, event)

    def _here(self) -> Window:
        """Where the rest of a connection's news goes: the window on screen if it is that
        connection's, else that connection's first window."""
        if self.active.owner is self._owner:
            return self.active
        return next((w for w in self.items if w.owner is self._owner), self.active)

    def _first_private(self, peer: str, event: Private) -> Window:
        """A conversation's first message opens its window; someone else's also says so
        in the window on screen (a busy room would hide the mark)."""
        window = self._open(peer, query=True)
        if event.nick != self.nick and window is not self.active:
            number = self.items.index(window) + 1
            keys = f"Alt-{number}" if number <= 9 else f"/window {number}"
            self.active.transcript.system(f"{clean_line(event.nick)} wrote to you -- {keys}")
        return window

    def _room_arrived(self, event: Welcome | Joined) -> Window:
        """A room we are in now: its window (a room we just joined comes to the front)."""
        if not event.room:
            return self.active
        known = self.find(event.room) is not None or (self._placeholder and not self.active.name
                                                       and self._owner is None)
        window = self._room_window(event.room)
        # A room just joined comes to the front, and so does the first room of a server
        # just connected to (/connect).
        fresh = (isinstance(event, Joined) and not event.resumed
                 or isinstance(event, Welcome) and self._owner is not None)
        if fresh and not known:
            self.switch(self.items.index(window) + 1)
        return window

    def _outgoing_window(self, event: OutgoingChanged) -> Window:
        """Where an outgoing message's line is: its answer goes where its "(sending)"
        line is shown; a new one where it was said to."""
        for w in self.items:
            if event.outgoing.id in w.transcript.pending:
                return w
        msg = event.outgoing.message
        if isinstance(msg, Direct):
            return self.find(msg.to, query=True) or self.active
        return (self.find(msg.room) if msg.room else None) or self.active

    def _renamed(self, old: str, new: str) -> None:
        """A conversation follows its peer's new nick."""
        w = self.find(old, query=True)
        if w is not None and self.find(new, query=True) is None:
            w.name = new

    def _activity(self, event: object) -> Activity:
        if isinstance(event, Private):
            return Activity.HIGHLIGHT if event.nick != self.nick else Activity.NONE
        if isinstance(event, Chat) and event.nick != self.nick:
            return Activity.HIGHLIGHT if self.active.transcript.mentions_me(event.text) else Activity.TEXT
        return Activity.NONE

    def _ignored(self, event: object) -> bool:
        return self.hides(event)
