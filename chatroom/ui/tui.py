"""The full-screen terminal client (prompt_toolkit).

Layout: the topic line, the message pane of the window on screen, a status bar (with
the numbered windows and their activity), and the input line, in an ``HSplit``; a
completion menu floats above.  Windows (one per room, one per private conversation)
are ``client/windows.py``'s; this module only draws them and binds the keys.  The
pane is a custom ``UIControl`` whose content *ends* at the scroll position, so
incoming messages never move what the user is reading, and nothing is ever printed
over the input line: the input cannot be garbled.

Threads: the network client calls :meth:`ChatApp.on_event` from its own thread; events
go into a queue and one callback per burst is scheduled on the UI loop with
``call_soon_threadsafe``.  Only the UI loop touches the transcript and the layout.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import cast

from prompt_toolkit.application import Application
from prompt_toolkit.data_structures import Point
from prompt_toolkit.filters import Condition, has_focus
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.key_binding import DynamicKeyBindings, KeyBindings, KeyPressEvent, merge_key_bindings
from prompt_toolkit.layout import Float, FloatContainer, HSplit, Layout, Window
from prompt_toolkit.layout.controls import FormattedTextControl, UIContent, UIControl
from prompt_toolkit.layout.dimension import Dimension
from prompt_toolkit.layout.menus import CompletionsMenu
from prompt_toolkit.mouse_events import MouseEvent, MouseEventType
from prompt_toolkit.styles import Style
from prompt_toolkit.utils import get_cwidth
from prompt_toolkit.widgets import SearchToolbar, TextArea

from chatroom.client.config import ClientConfig, data_dir
from chatroom.client.connection import ChatClient, ConnState, StateChanged
from chatroom.client.controller import Controller
from chatroom.client.finding import Finder
from chatroom.client.ignoring import Ignores
from chatroom.client.logs import WindowLogs
from chatroom.client.transcript import NICK_COLOURS, Transcript, plain_line
from chatroom.client.windows import Windows
from chatroom.protocol import Bye, Error, FetchHistory, Found
from chatroom.text import clean_line
from chatroom.ui.bars import Bars
from chatroom.ui.completion import ChatCompleter
from chatroom.ui.front import WindowsFront
from chatroom.ui.history import input_history
from chatroom.ui.servers import Servers

__all__ = ["ChatApp", "ChatCompleter", "MessagePane", "STYLE"]

#: The input line's prompt ("> "), in columns.
PROMPT_WIDTH = 2

#: Rows one turn of the mouse wheel scrolls.
WHEEL_ROWS = 3

#: A second Ctrl-C on an empty line within this many seconds leaves.
QUIT_CONFIRM_SECONDS = 3.0

_PALETTE = ["#e06c75", "#98c379", "#e5c07b", "#61afef", "#c678dd", "#56b6c2",
            "#d19a66", "#be5046", "#7ec699", "#f0a0c0", "#8fbcff", "#c0c040"]
assert len(_PALETTE) == NICK_COLOURS

STYLE = Style.from_dict({
    **{f"nick.c{i}": f"{colour} bold" for i, colour in enumerate(_PALETTE)},
    "time": "#808080",
    "text": "",
    "own": "#a0a0a0",
    "history": "#a0a0a0",
    "action": "italic #c0a0ff",
    "private": "#ff9e64",
    "mention": "bold #ffd75f bg:#3a3000",
    "system": "#6c9fb0",
    "error": "#ff6060 bold",
    "pending": "#707070 italic",
    "pending.mark": "#a06000",
    "status": "bg:#303a50 #e0e0e0",
    "status.bad": "bg:#703030 #ffffff bold",
    "status.note": "bg:#505000 #ffffff",
    "match": "reverse",  # /last's match, in its context
    "status.file": "bg:#303a50 #a0e0a0",
    "status.window": "bg:#303a50 #a0a0a0",
    "status.window.current": "bg:#303a50 #ffffff bold underline",
    "status.window.text": "bg:#303a50 #ffffff bold",
    "status.window.highlight": "bg:#a03060 #ffffff bold",
    "topic": "bg:#202830 #c0c0c0",
    "prompt": "bold",
})

#: For terminals with a light background: darker nick colours, no pale text.
_LIGHT_PALETTE = ["#b02030", "#2a7a1a", "#8a6a00", "#1a5aa0", "#7a3aa0", "#10707a",
                  "#a05010", "#802010", "#207050", "#a03070", "#3050b0", "#606000"]
assert len(_LIGHT_PALETTE) == NICK_COLOURS

LIGHT_STYLE = Style.from_dict({
    **{f"nick.c{i}": f"{colour} bold" for i, colour in enumerate(_LIGHT_PALETTE)},
    "time": "#707070",
    "text": "",
    "own": "#505050",
    "history": "#606060",
    "action": "italic #6030a0",
    "private": "#b05000",
    "mention": "bold #000000 bg:#ffe080",
    "system": "#306070",
    "error": "#c00000 bold",
    "pending": "#909090 italic",
    "pending.mark": "#a06000",
    "status": "bg:#d0d8e8 #000000",
    "status.bad": "bg:#c04040 #ffffff bold",
    "status.note": "bg:#f0e080 #000000",
    "match": "reverse",
    "status.file": "bg:#d0d8e8 #206020",
    "status.window": "bg:#d0d8e8 #505050",
    "status.window.current": "bg:#d0d8e8 #000000 bold underline",
    "status.window.text": "bg:#d0d8e8 #000000 bold",
    "status.window.highlight": "bg:#c03070 #ffffff bold",
    "topic": "bg:#e8ecf0 #303030",
    "prompt": "bold",
})


#: What a row past the end shows.
_NO_LINE: StyleAndTextTuples = []

class MessagePane(UIControl):
    """Renders the transcript of the window on screen up to its scroll position; the
    last line is at the bottom."""

    def __init__(self, transcript: Callable[[], Transcript]) -> None:
        self.transcript = transcript
        self.height = 24  # the last rendered height, for paging

    def create_content(self, width: int, height: int) -> UIContent:
        self.height = height
        lines = self.transcript().screen(width, height)  # wrapped by words, in screen rows
        count = len(lines)
        return UIContent(
            get_line=lambda i: cast(StyleAndTextTuples, lines[i]) if 0 <= i < count else _NO_LINE,
            line_count=count,
            cursor_position=Point(x=0, y=max(0, count - 1)),
            show_cursor=False,
        )

    def is_focusable(self) -> bool:
        return False

    def mouse_handler(self, mouse_event: MouseEvent) -> object:
        """The wheel scrolls three rows at a time."""
        t = self.transcript()
        if mouse_event.event_type is MouseEventType.SCROLL_UP:
            t.scroll_by(WHEEL_ROWS, self.height)
        elif mouse_event.event_type is MouseEventType.SCROLL_DOWN:
            t.scroll_by(-WHEEL_ROWS, self.height)
        else:
            return NotImplemented
        return None


class ChatApp(Bars, Servers):
    """The full-screen client around a connected :class:`ChatClient`."""

    def __init__(self, client: ChatClient, config: ClientConfig | None = None, banner: str = "") -> None:
        """``config``: the user's settings; without one (the demo, tests) nothing is kept
        on disk -- no input history, no window logs."""
        self.clients = [client]
        settings = config or ClientConfig(input_history=False, log=False)
        self.config = settings
        self.windows = Windows(client.nick, settings.bell, highlights=settings.highlight,
                               time_format=settings.timestamp)
        if banner:  # e.g. the demo's address for browsers, the first line on screen
            self.windows.system(banner)
        self.logs = WindowLogs(data_dir() / "logs") if settings.log else None
        self._title = ""
        self.pane = MessagePane(lambda: self.transcript)
        self._events: SimpleQueue[tuple[object, ChatClient]] = SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduled = False
        self._schedule_lock = threading.Lock()
        self.quit_reason = "quit"
        self._interrupted = 0.0  # when Ctrl-C last asked "again to leave?"
        self.state_text = "connected"
        self.state_bad = False
        self._outage = ""  # why the connection is down (empty: it is not)
        self._retry_at = 0.0  # when the client tries again (the status bar counts down)

        self.search = SearchToolbar(text_if_not_searching="", forward_search_prompt="search typed: ",
                                    backward_search_prompt="search typed: ")
        self.input = TextArea(
            search_field=self.search,  # Ctrl-R: search what was typed before
            # As tall as what is typed, wrapped lines included (a long message shows its
            # beginning and the prompt), up to half the screen.
            height=lambda: Dimension.exact(self._input_rows()),
            prompt=[("class:prompt", "> ")],
            multiline=True,
            wrap_lines=True,
            history=input_history(settings),
            completer=ChatCompleter(client, lambda: self.controller.room(), lambda: self.client),
            complete_while_typing=False,
            focus_on_click=True,
        )
        self.input.buffer.accept_handler = self._accept
        self.controller = Controller(
            client,
            show=lambda text, error: self.transcript.system(text, error=error),
            quit=self.exit,
            clear=lambda: self.transcript.clear(),
            set_bell=self._set_bell,
            front=WindowsFront(self),
            aliases=settings.aliases,
            settings=self,
        )
        #: Where /save writes and /reload reads (None: client.toml in the config folder).
        self.config_file: Path | None = None
        #: /last's matches, and the window's transcript they are in
        self.finder: tuple[Transcript, Finder] | None = None
        self._user_keys = self._bound_keys(settings)
        self.controller.ignores = Ignores(settings.ignore)  # (client.toml's, kept across runs; _show asks it)
        body = HSplit([
            Window(FormattedTextControl(self._topic), height=1, style="class:topic"),
            Window(self.pane, wrap_lines=False, always_hide_cursor=True),  # the pane wraps by words
            Window(FormattedTextControl(self._status), height=1, style="class:status"),
            self.input,
            self.search,
        ])
        self.app: Application[None] = Application(
            layout=Layout(
                FloatContainer(body, floats=[Float(xcursor=True, ycursor=True,
                                                   content=CompletionsMenu(max_height=8, scroll_offset=1))]),
                focused_element=self.input,
            ),
            # The user's own (client.toml's [bindings], /bind) are looked up as they are now.
            key_bindings=merge_key_bindings([self._bindings(), DynamicKeyBindings(lambda: self._user_keys)]),
            style=LIGHT_STYLE if settings.theme == "light" else STYLE,
            full_screen=True,
            mouse_support=True,  # the wheel scrolls the messages
            refresh_interval=1.0,  # transfer rates and the retry countdown move even when nothing arrives
        )
        self.attach(client)

    # ------------------------------------------------------------------ settings (/set...)

    def apply_settings(self, config: ClientConfig) -> None:
        """New settings, at once: the bell, highlights and time format of every window,
        aliases, key bindings, the theme, window logs and the downloads folder."""
        self.config = config
        self.windows.set_bell(config.bell)
        self.windows.highlights, self.windows.time_format = config.highlight, config.timestamp
        for t in self.windows.transcripts():
            t.highlights, t.time_format = config.highlight, config.timestamp
            t.version += 1
        self.controller.aliases = dict(config.aliases)
        self.controller.ignores = Ignores(config.ignore)
        self._user_keys = self._bound_keys(config)
        self.app.style = LIGHT_STYLE if config.theme == "light" else STYLE
        if config.log and self.logs is None:
            self.logs = WindowLogs(data_dir() / "logs")
        elif not config.log and self.logs is not None:
            self.logs.close()
            self.logs = None
        if config.downloads is not None:
            self.client.files.downloads = config.downloads
        self.app.invalidate()

    def _bound_keys(self, config: ClientConfig) -> KeyBindings:
        """client.toml's [bindings]: each key runs its command as if typed."""
        kb = KeyBindings()
        for key, command in config.bindings.items():
            keys = ("escape", key[4:]) if key.startswith("alt-") else (key,)

            @kb.add(*keys)
            def _bound(event: KeyPressEvent, command: str = command) -> None:
                self.controller.handle("/" + command)
                self.transcript.to_bottom()
        return kb

    @property
    def transcript(self) -> Transcript:
        """The transcript of the window on screen."""
        return self.windows.active.transcript

    # ------------------------------------------------------------------ events (any thread)

    def on_event(self, event: object, client: ChatClient | None = None) -> None:
        self._events.put((event, client or self.clients[0]))
        with self._schedule_lock:
            if self._loop is None or self._scheduled:
                return
            self._scheduled = True
        self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._schedule_lock:
            self._scheduled = False
        ring = False
        while True:
            try:
                event, client = self._events.get_nowait()
            except Empty:
                break
            ring |= self._show(event, client)
        if ring:
            self.app.output.bell()
        self._set_title()
        self.app.invalidate()

    def _show(self, event: object, client: ChatClient, notify: bool = True) -> bool:
        t = self.transcript
        if self.windows.nick != self.clients[0].nick:
            self.windows.set_nick(self.clients[0].nick)
        if self._ending(event, t):
            return False
        if self.controller.hides(event):
            return False
        if isinstance(event, Found):
            self.controller.found(event)  # (where /last more goes on)
        ring = self.windows.add(event, self.owner_of(client), self.server_name(client))
        window = self.windows.last
        if self.logs is not None and window is not None:
            self.logs.write(client.session.server, window.label, event, client.nick)
        if ring and notify and self.config.notify:
            self._notify(event)
        return ring

    def _ending(self, event: object, t: Transcript) -> bool:
        """The connection's state, a goodbye or a fatal error: said here, not routed."""
        if isinstance(event, StateChanged):
            self._state_changed(event)
        elif isinstance(event, Bye):
            t.system(f"the server said goodbye: {clean_line(event.reason)}", error=True)
        elif isinstance(event, Error) and event.fatal:
            t.system(f"disconnected by the server: {clean_line(event.message)}", error=True)
        else:
            return False
        return True

    def _set_title(self) -> None:
        """The terminal's title counts the windows with a mention or a private message."""
        n = self.windows.unread_highlights
        title = f"chatroom ({n})" if n else "chatroom"
        if title != self._title:
            self._title = title
            self.app.output.set_title(title)

    def _notify(self, event: object) -> None:
        """A desktop notification by escape sequence (OSC 777 where VTE or rxvt reads it,
        OSC 9 elsewhere); terminals without either ignore it."""
        text = clean_line(plain_line(event, self.client.nick) or "")[:200].replace(";", ",")
        if not text:
            return
        if os.environ.get("VTE_VERSION") or "rxvt" in os.environ.get("TERM", ""):
            self.app.output.write_raw(f"\x1b]777;notify;chatroom;{text}\x07")
        else:
            self.app.output.write_raw(f"\x1b]9;{text}\x07")
        self.app.output.flush()

    def _state_changed(self, event: StateChanged) -> None:
        """The status bar follows every change; the transcript says an outage began (once,
        with why) and ended -- not a line per retry, and no "reconnected" for the first
        connection."""
        t = self.transcript
        self.state_bad = event.state is not ConnState.CONNECTED
        if event.state is ConnState.DISCONNECTED:
            self._retry_at = time.monotonic() + (event.retry_in or 0.0)
            self.state_text = "disconnected"
            if not self._outage or event.detail != self._outage:
                t.system(f"connection lost: {event.detail}; retrying until it is back", error=True)
            self._outage = event.detail
        elif event.state is ConnState.CONNECTING:
            self.state_text = "connecting…"
        elif event.state is ConnState.CONNECTED:
            self.state_text = "connected"
            if self._outage:
                t.system("reconnected")
            self._outage = ""
        elif event.state is ConnState.CLOSED:
            self.state_text = "closed"
            self._outage = ""
            t.system(f"connection closed: {event.detail}", error=True)

    def _input_rows(self) -> int:
        """Screen rows the input needs: each line wrapped at the terminal's width
        (display width: wide characters count two), the prompt on the first."""
        size = self.app.output.get_size() if hasattr(self, "app") else None
        columns = max(10, size.columns) if size else 80
        most = max(3, (size.rows if size else 24) // 2)
        rows = 0
        for i, line in enumerate(self.input.document.lines):
            width = get_cwidth(line) + (PROMPT_WIDTH if i == 0 else 0) + 1  # +1: the cursor after it
            rows += -(-width // columns)
            if rows >= most:
                return most
        return max(1, rows)

    def _bindings(self) -> KeyBindings:
        kb = KeyBindings()

        @kb.add("c-d")
        def _eof(event: KeyPressEvent) -> None:
            # As in a shell: Ctrl-D leaves on an empty line; with text typed it deletes
            # the character under the cursor -- never the message being written.
            buffer = self.input.buffer
            if buffer.text:
                buffer.delete()
            else:
                self.exit()

        @kb.add("c-c")
        def _interrupt(event: KeyPressEvent) -> None:
            # With text typed: clear the line (Up brings it back).  On an empty line: ask,
            # and leave on a second Ctrl-C within a few seconds.
            buffer = self.input.buffer
            now = time.monotonic()
            if buffer.text:
                buffer.append_to_history()
                buffer.reset()
                self._interrupted = 0.0
            elif now - self._interrupted < QUIT_CONFIRM_SECONDS:
                self.exit()
                return
            else:
                self.transcript.system("press Ctrl-C again to leave (or type /quit)")
                self._interrupted = now
            self.app.invalidate()

        @kb.add("enter", filter=has_focus(self.input), eager=True)
        def _send(event: KeyPressEvent) -> None:
            buffer = self.input.buffer
            if buffer.complete_state and buffer.complete_state.current_completion:
                buffer.apply_completion(buffer.complete_state.current_completion)
                return
            buffer.validate_and_handle()

        @kb.add("escape", "enter", filter=has_focus(self.input))
        def _newline(event: KeyPressEvent) -> None:
            self.input.buffer.insert_text("\n")

        self._window_keys(kb)

        self._scroll_keys(kb)
        return kb

    def _scroll_keys(self, kb: KeyBindings) -> None:
        """PageUp/PageDown scroll the window on screen; End and Ctrl-End return to the newest."""
        @kb.add("pageup")
        def _up(event: KeyPressEvent) -> None:
            t = self.transcript
            t.page_up(self.pane.height)
            before = t.wants_older()
            if t.at_top(self.pane.height) and before is not None and before > 1:
                # The first press that reaches the top of what we hold asks the server
                # for an older page (it goes on top; the view stays where it is).
                self.client.send(FetchHistory(room=t.room, before=before, limit=100))

        @kb.add("pagedown")
        def _down(event: KeyPressEvent) -> None:
            self.transcript.page_down(self.pane.height)

        @kb.add("c-end")
        def _newest(event: KeyPressEvent) -> None:
            self.transcript.to_bottom()

        @kb.add("end", filter=Condition(lambda: self.transcript.scroll > 0))
        def _end(event: KeyPressEvent) -> None:
            # Scrolled back: End returns to the newest line (otherwise it ends the input line).
            self.transcript.to_bottom()

    def _window_keys(self, kb: KeyBindings) -> None:
        """Alt-1..9 show a window; Ctrl-N and Ctrl-P the next and the previous; Alt-A
        the next where something happened (mentions and private messages first)."""
        for digit in "123456789":
            @kb.add("escape", digit)
            def _window(event: KeyPressEvent, number: int = int(digit)) -> None:
                self.windows.switch(number)

        @kb.add("c-n")
        def _next(event: KeyPressEvent) -> None:
            self.windows.step(1)

        @kb.add("c-p")
        def _previous(event: KeyPressEvent) -> None:
            self.windows.step(-1)

        @kb.add("escape", "up")
        def _older_match(event: KeyPressEvent) -> None:
            self._step_match(older=True)

        @kb.add("escape", "down")
        def _newer_match(event: KeyPressEvent) -> None:
            self._step_match(older=False)

        @kb.add("escape", "a")
        def _hotlist(event: KeyPressEvent) -> None:
            if not self.windows.next_active():
                self.windows.system("nothing new in any other window")

    def _step_match(self, *, older: bool) -> None:
        """Alt-Up / Alt-Down: /last's next older or newer match, in its context."""
        t, finder = self.finder or (None, None)
        if t is not self.transcript or finder is None or t.marked is None:
            return
        if finder.step(older) and finder.current is not None:
            t.show_line(finder.current, self.pane.height or 20)

    def _accept(self, buffer: object) -> bool:
        text = self.input.text
        problem = self.controller.too_long(text)
        if problem is not None:
            self.controller.show(problem, True)
            self.app.invalidate()
            return True  # kept in the input line, to be cut
        self.transcript.nick = self.client.nick
        self.controller.handle(text)
        if text.startswith("/") and not text.startswith("//") and text[1:5].lower() != "last":
            self.transcript.to_bottom()  # (scrolled back: what the command says is seen at once; /last moves it)
        self.app.invalidate()
        return False  # clear the input line (it is in the history)

    def _say(self, text: str, error: bool) -> None:
        self.transcript.system(text, error=error)
        self.app.invalidate()

    def _set_bell(self, mode: str) -> None:
        self.windows.set_bell(mode)

    def exit(self, reason: str = "") -> None:
        if reason:
            self.quit_reason = reason  # the others see it: "left (quit: lunch)"
        if self.app.is_running:
            self.app.exit()

    async def run_async(self) -> None:
        """Run until the user quits; then say goodbye to the server."""
        def pre_run() -> None:
            with self._schedule_lock:
                self._loop = asyncio.get_running_loop()
            self._drain()
            for address in self.config.servers:  # client.toml's other servers
                problem = self.connect_more(address)
                if problem is not None:
                    self._say(problem, True)

        try:
            await self.app.run_async(pre_run=pre_run)
        finally:
            with self._schedule_lock:
                self._loop = None
            for client in self.clients:
                await asyncio.get_running_loop().run_in_executor(None, client.close, self.quit_reason)
            if self.logs is not None:
                self._log_the_rest()
                self.logs.close()

    def _log_the_rest(self) -> None:
        """What arrived after the screen's last update (a line said just before quitting,
        its echo still on the way) goes to the window logs all the same."""
        while True:
            try:
                event, client = self._events.get_nowait()
            except Empty:
                return
            self._show(event, client, notify=False)

    def run(self) -> None:
        asyncio.run(self.run_async())
