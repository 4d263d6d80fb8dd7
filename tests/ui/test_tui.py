"""The full-screen app driven through a pipe input, against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import io
import time

import pyte
import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from prompt_toolkit.output.vt100 import Vt100_Output

from chatroom.client.connection import ChatClient
from chatroom.protocol import Chat, Direct, Presence, PresenceEvent, Private, Say
from chatroom.server.tcp import CloseReason
from chatroom.ui.tui import ChatApp
from tests.wire import WireClient


def line_texts(app: ChatApp) -> list[str]:
    return ["".join(t for _, t in line) for line in app.transcript.visible()]


async def until(pred, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def run_app(port: int, nick: str, scenario, *, screen: pyte.Screen | None = None, config=None):
    """Run a ChatApp with piped keystrokes; ``scenario(app, pipe)`` drives it
    (``config``: a ClientConfig; by default no input history and no logs)."""

    async def main() -> None:
        with create_pipe_input() as pipe:
            output = DummyOutput()
            stream = None
            if screen is not None:
                stream = io.StringIO()
                output = Vt100_Output(stream, lambda: _size(screen), term="xterm-256color")
            with create_app_session(input=pipe, output=output):
                client = ChatClient("127.0.0.1", port, nick)
                client.connect()
                app = ChatApp(client, config)
                task = asyncio.ensure_future(app.run_async())
                try:
                    await until(lambda: app.app.is_running, what="the app to start")
                    await scenario(app, pipe, stream)
                finally:
                    app.exit()
                    await asyncio.wait_for(task, 10)

    asyncio.run(main())


def drain(stream: pyte.Stream, out: io.StringIO) -> list[str]:
    """Feed what the app wrote since the last call to the terminal emulator; its rows."""
    stream.feed(out.getvalue())
    out.seek(0)
    out.truncate()
    return stream.listener.display


def _size(screen: pyte.Screen):
    from prompt_toolkit.data_structures import Size

    return Size(rows=screen.lines, columns=screen.columns)


def test_typing_a_line_sends_it_and_it_appears_after_the_echo(server):
    bob = WireClient(server.port)
    bob.hello("bob")

    async def scenario(app, pipe, _):
        pipe.send_text("hello from the tui\r")
        await until(lambda: any("<alice> hello from the tui" in t for t in line_texts(app)), what="echo")
        # The ack travels just behind the echo (maybe in the next read): then nothing is pending.
        await until(lambda: not app.transcript.pending, what="the ack to clear the pending line")

    run_app(server.port, "alice", scenario)
    assert bob.expect(Chat).text == "hello from the tui"
    bob.close()


def test_up_arrow_brings_back_what_was_sent(server):
    async def scenario(app, pipe, _):
        pipe.send_text("first line\r")
        await until(lambda: any("<alice> first line" in t for t in line_texts(app)), what="echo")
        pipe.send_text("second\r")
        await until(lambda: any("<alice> second" in t for t in line_texts(app)), what="echo")
        pipe.send_text("\x1b[A")  # Up
        await until(lambda: app.input.text == "second", what="history 1")
        pipe.send_text("\x1b[A")
        await until(lambda: app.input.text == "first line", what="history 2")
        pipe.send_text("\x1b[B")  # Down
        await until(lambda: app.input.text == "second", what="history forward")
        app.input.text = ""

    run_app(server.port, "alice", scenario)


def talker_with_history(server, count: int) -> WireClient:
    """Bob, who has already said ``count`` messages in the lobby."""
    bob = WireClient(server.port)
    bob.hello("bob")
    for n in range(count):
        bob.send(Say(id=str(n), text=f"old {n}"))
    bob.collect(Chat, count)
    return bob


def test_pageup_past_the_top_fetches_older_history_from_the_server(make_server):
    server = make_server(rate=0, history_size=10)
    bob = talker_with_history(server, 40)

    async def scenario(app, pipe, _):
        await until(lambda: any("old 39" in t for t in line_texts(app)), what="replay")
        assert not any(t.endswith("old 20") for t in line_texts(app))  # only the last 10 came
        for _ in range(6):
            pipe.send_text("\x1b[5~")  # PageUp, past the top
            await asyncio.sleep(0.05)
        def all_lines() -> list[str]:
            return ["".join(text for _, text in line) for line in app.transcript.lines]

        await until(lambda: any(t.endswith("old 0") for t in all_lines()), what="older pages from the server")
        assert sum(t.endswith("old 25") for t in all_lines()) == 1  # each page once
        assert app.transcript.scroll > 0
        pipe.send_text("\x1b[F")  # End: back to the newest line
        await until(lambda: app.transcript.scroll == 0, what="End to return to the bottom")
        assert any(t.endswith("old 39") for t in line_texts(app)[-3:])

    run_app(server.port, "alice", scenario)
    bob.close()


def test_commands_work_and_unknown_ones_show_help_instead_of_being_sent(server):
    bob = WireClient(server.port)
    bob.hello("bob")

    async def scenario(app, pipe, _):
        pipe.send_text("/frobnicate now\r")
        await until(lambda: any("unknown command /frobnicate" in t for t in line_texts(app)), what="help")
        pipe.send_text("/me waves\r")
        pipe.send_text("/join dev\r")
        await until(lambda: app.windows.active.name == "dev", what="the dev window")
        pipe.send_text("/who\r")
        await until(lambda: any("in dev: @alice" in t for t in line_texts(app)), what="who (its maker runs it)")
        pipe.send_text("/nick alicia\r")
        await until(lambda: app.client.nick == "alicia", what="nick change")

    run_app(server.port, "alice", scenario)
    texts = [m.text for m in bob.inbox if isinstance(m, Chat)]
    bob.expect(Chat, action=True, text="waves")
    assert "/frobnicate now" not in texts and "frobnicate now" not in texts
    bob.close()


def test_tab_completes_commands_at_line_start_and_nicks_anywhere(server):
    bob = WireClient(server.port)
    bob.hello("bobby")

    async def scenario(app, pipe, _):
        await until(lambda: "bobby" in app.client.session.members, what="member list")
        pipe.send_text("/jo")
        await until(lambda: app.input.text == "/jo", what="typing")
        pipe.send_text("\t")
        await until(lambda: app.input.text == "/join ", what="command completion")
        app.input.text = ""
        pipe.send_text("hi bo")
        await until(lambda: app.input.text == "hi bo", what="typing")
        pipe.send_text("\t")
        await until(lambda: app.input.text == "hi bobby ", what="nick completion")
        app.input.text = ""

    run_app(server.port, "alice", scenario)
    bob.close()


def test_pageup_holds_the_view_and_the_status_bar_counts_what_is_below(make_server):
    server = make_server(rate=0)
    bob = talker_with_history(server, 60)

    async def scenario(app, pipe, _):
        await until(lambda: any("old 59" in t for t in line_texts(app)), what="history")
        pipe.send_text("\x1b[5~")  # PageUp
        await until(lambda: app.transcript.scroll > 0, what="scroll")
        bottom = line_texts(app)[-1]
        for n in range(3):
            bob.send(Say(id=f"n{n}", text=f"new {n}"))
        await until(lambda: app.transcript.unread == 3, what="unread count")
        assert line_texts(app)[-1] == bottom
        status = "".join(t for _, t in app._status())
        assert "3 new below" in status
        pipe.send_text("\x1b[6~\x1b[6~\x1b[6~")  # PageDown
        await until(lambda: app.transcript.scroll == 0, what="back at the bottom")
        assert line_texts(app)[-1].endswith("new 2")

    run_app(server.port, "alice", scenario)
    bob.close()


def test_messages_typed_while_disconnected_show_pending_then_go_out(make_server):
    server = make_server()
    bob = WireClient(server.port)
    bob.hello("bob")

    async def scenario(app, pipe, _):
        app.client.BACKOFF_START = 0.3
        assert not any("reconnected" in t for t in line_texts(app))  # the first connection is no reconnect
        conn = next(c for c in server.connections() if c.member and c.member.nick == "alice")
        conn.close(CloseReason.LOST)
        await until(lambda: "disconnected" in app.state_text, what="disconnect shown")
        status = "".join(text for _, text in app._status())
        assert "online" not in status and "retrying" in status  # no stale head count while offline
        assert status.lstrip().startswith("disconnected")  # first: a narrow screen cuts the end of the bar
        pipe.send_text("sent while offline\r")
        await until(lambda: any("(sending)" in t for t in line_texts(app)), what="pending mark")
        await until(lambda: not app.transcript.pending, timeout=15, what="pending cleared")
        assert any("<alice> sent while offline" in t for t in line_texts(app))
        texts = line_texts(app)
        assert sum("connection lost" in t for t in texts) == 1 and sum(t.endswith("reconnected") for t in texts) == 1

    run_app(server.port, "alice", scenario)
    bob.expect(Chat, text="sent while offline")
    bob.close()


def test_the_screen_shows_status_bar_and_input_rendered_by_a_terminal(server):
    screen = pyte.Screen(80, 24)
    stream = pyte.Stream(screen)

    async def scenario(app, pipe, out):
        bob = WireClient(server.port)
        bob.hello("bob")
        bob.send(Say(id="1", text="你好, wide characters"))
        await until(lambda: any("你好" in t for t in line_texts(app)), what="cjk line")
        pipe.send_text("half a li")
        await until(lambda: app.input.text == "half a li", what="typing")

        def rendered() -> bool:
            return drain(stream, out)[-1].startswith("> half a li")

        await until(rendered, what="the input line on screen")
        display = screen.display
        assert any("bob" in row and "你好" in row for row in display)
        assert any("lobby" in row and "alice" in row and "online" in row for row in display)
        assert display[-1].startswith("> half a li")
        bob.close()

    run_app(server.port, "alice", scenario, screen=screen)


@pytest.mark.parametrize("n", [1])
def test_app_quits_cleanly_and_the_server_sees_a_goodbye(server, n):
    watcher = WireClient(server.port)
    watcher.hello("watcher")

    async def scenario(app, pipe, _):
        pipe.send_text("\x04")  # Ctrl-D on an empty line
        await until(lambda: not app.app.is_running, what="Ctrl-D to leave")

    run_app(server.port, "alice", scenario)
    from chatroom.protocol import Presence, PresenceEvent

    assert watcher.expect(Presence, event=PresenceEvent.LEAVE, nick="alice").reason == "quit"
    watcher.close()


def test_ctrl_c_and_ctrl_d_never_throw_away_a_typed_line(server):
    """Ctrl-D with text deletes a character, Ctrl-C with text clears the line (Up brings
    it back); on an empty line Ctrl-C asks first and leaves on the second press."""

    async def scenario(app, pipe, _):
        pipe.send_text("draft")
        await until(lambda: app.input.text == "draft", what="typing")
        pipe.send_text("\x1b[D\x04")  # cursor left, Ctrl-D: deletes the "t", stays
        await until(lambda: app.input.text == "draf", what="Ctrl-D to delete a character")
        pipe.send_text("\x03")  # Ctrl-C: clears the line
        await until(lambda: app.input.text == "", what="Ctrl-C to clear the line")
        assert app.app.is_running
        pipe.send_text("\x1b[A")  # Up: it is in the history
        await until(lambda: app.input.text == "draf", what="Up to bring the line back")
        pipe.send_text("\x03\x03")  # clear, then ask
        await until(lambda: any("again to leave" in "".join(t for _, t in line) for line in app.transcript.lines),
                    what="the question")
        assert app.app.is_running
        pipe.send_text("\x03")  # the second Ctrl-C on an empty line
        await until(lambda: not app.app.is_running, what="Ctrl-C twice to leave")

    run_app(server.port, "alice", scenario)


def test_a_long_typed_line_wraps_in_a_taller_input_that_keeps_its_beginning(server):
    """At 80 columns a 160-character message takes three rows; the input grows to show
    all of them, prompt and beginning included (it used to show only the last row)."""
    screen = pyte.Screen(80, 24)
    stream = pyte.Stream(screen)
    typed = "start-" + "x" * 150 + "-end"

    async def scenario(app, pipe, out):
        pipe.send_text(typed)
        await until(lambda: app.input.text == typed, what="typing")

        def rendered() -> bool:
            return "".join(drain(stream, out)[-3:]).rstrip().endswith(typed[-20:])

        await until(rendered, what="the whole line on screen")
        rows = screen.display
        first = next(i for i, row in enumerate(rows) if row.startswith("> start-"))
        assert first == 24 - 3  # three rows at the bottom of the screen, the prompt on the first
        assert "".join(rows[first:]).rstrip() == "> " + typed

    run_app(server.port, "alice", scenario, screen=screen)


@pytest.mark.parametrize("size", [(80, 24), (50, 20)])
def test_two_rooms_and_a_private_conversation_in_three_windows_with_their_marks(server, size):
    """Another room's mention and a direct message mark their windows (!) in the status
    bar; Alt-1 shows the lobby, with the mention in it; typing there goes to the lobby."""
    cols, rows = size
    screen = pyte.Screen(cols, rows)
    stream = pyte.Stream(screen)
    bob = WireClient(server.port)
    bob.hello("bob")

    def rendered(out, pred) -> bool:
        return pred(drain(stream, out))

    async def scenario(app, pipe, out):
        pipe.send_text("/join dev\r")
        await until(lambda: app.windows.active.name == "dev", what="the dev window")
        bob.send(Say(id="1", text="alice: lunch?", room="lobby"))
        bob.send(Direct(id="2", to="alice", text="psst"))
        status = "[1:lobby(1)! 2:dev 3:@bob(1)!]"  # marks, and how many came
        await until(lambda: rendered(out, lambda d: any(status in row for row in d)), what=status)
        assert screen.display[0].startswith(" dev")  # the topic line names the window's room
        pipe.send_text("\x1b1")  # Alt-1
        await until(lambda: rendered(out, lambda d: any("<bob> alice: lunch?" in row for row in d)
                                     and any("[1:lobby 2:dev 3:@bob(1)!]" in row for row in d)), what="the lobby")
        pipe.send_text("right here\r")
        said = await asyncio.to_thread(bob.expect, Chat, text="right here")  # the loop goes on meanwhile
        assert said.room == "lobby"
        pipe.send_text("\x1ba")  # Alt-A, the hotlist: the conversation with bob, where something happened
        await until(lambda: rendered(out, lambda d: any("psst" in row for row in d)), what="the conversation")
        pipe.send_text("hi bob\r")
        private = await asyncio.to_thread(bob.expect, Private, text="hi bob")
        assert private.to == "bob"

    run_app(server.port, "alice", scenario, screen=screen)
    bob.close()


def test_emoji_cjk_and_long_urls_scroll_and_redraw_with_no_stale_cells(server):
    """At 50x20: lines with emoji sequences, CJK and a URL, wrapped by words; after
    PageUp, PageDown and End every row of the pane on the rendered screen is exactly
    what the transcript says it holds -- nothing left over from an earlier frame."""
    screen = pyte.Screen(50, 20)
    stream = pyte.Stream(screen)
    bob = WireClient(server.port)
    bob.hello("bob")
    url = "https://example.org/docs/index.html"
    texts = [f"{n}: family 👨\u200d👩\u200d👧 thumbs 👍🏽 你好世界 see {url} ok" for n in range(12)]

    def feed(out) -> None:
        drain(stream, out)

    def pane_matches(app) -> bool:
        height = app.pane.height
        want = ["".join(t for _, t in row).rstrip() for row in app.transcript.screen(50, height)]
        want = [""] * (height - len(want)) + want if len(want) < height else want
        return [row.rstrip() for row in screen.display[1:1 + height]] == want

    async def scenario(app, pipe, out):
        for n, text in enumerate(texts):
            bob.send(Say(id=str(n), text=text))
        await until(lambda: any("11: family" in t for t in line_texts(app)), what="the lines")
        for keys, what in (("", "the newest lines"), ("\x1b[5~", "PageUp"), ("\x1b[5~", "PageUp again"),
                           ("\x1b[6~", "PageDown"), ("\x1b[F", "End")):
            pipe.send_text(keys)
            await asyncio.sleep(0.1)
            await until(lambda: (feed(out), pane_matches(app))[1], what=f"the pane after {what}")
        assert app.transcript.scroll == 0
        assert any(url in row for row in screen.display)  # the URL fits a row, so it is never cut
        assert not any("\u200d" in row or "🏽" in row for row in screen.display)

    run_app(server.port, "alice", scenario, screen=screen)
    bob.close()


@pytest.mark.parametrize("size", [(80, 24), (50, 20)])
def test_a_300_character_line_shows_its_prompt_and_first_row(server, size):
    cols, rows = size
    screen = pyte.Screen(cols, rows)
    stream = pyte.Stream(screen)
    typed = "first-" + "y" * 290 + "-last"

    async def scenario(app, pipe, out):
        pipe.send_text(typed)
        await until(lambda: app.input.text == typed, what="typing")

        def rendered() -> bool:
            return "".join(drain(stream, out)[-7:]).rstrip().endswith("-last")

        await until(rendered, what="the whole line on screen")
        assert any(row.startswith("> first-") for row in screen.display)

    run_app(server.port, "alice", scenario, screen=screen)


def test_a_multi_line_paste_says_how_many_lines_go_out_as_one_message(server):
    bob = WireClient(server.port)
    bob.hello("bob")

    async def scenario(app, pipe, _):
        pipe.send_text("one\x1b\rtwo\x1b\rthree")  # Alt-Enter between them, as a paste brings newlines
        await until(lambda: app.input.text == "one\ntwo\nthree", what="three lines typed")
        assert "3 lines: Enter sends them as one message" in "".join(t for _, t in app._status())
        pipe.send_text("\r")
        said = await asyncio.to_thread(bob.expect, Chat)
        assert said.text == "one\ntwo\nthree"
        assert "lines:" not in "".join(t for _, t in app._status())

    run_app(server.port, "alice", scenario)
    bob.close()


def test_last_lists_matching_lines_here_and_in_the_servers_history_and_whois_answers(make_server):
    server = make_server(rate=0, history_size=5)
    bob = WireClient(server.port)
    bob.hello("bob")
    bob.send(Say(id="old", text="the deploy key is in the wiki"))
    for n in range(8):  # pushes the old line out of what a join replays
        bob.send(Say(id=str(n), text=f"chatter {n}"))
    bob.collect(Chat, 9)

    async def scenario(app, pipe, _):
        await until(lambda: any("chatter 7" in t for t in line_texts(app)), what="the replay")
        bob.send(Say(id="new", text="Deploy done"))
        await until(lambda: any("Deploy done" in t for t in line_texts(app)), what="a live line")
        pipe.send_text("/last deploy\r")
        await until(lambda: app.transcript.marked is not None, what="the window's match, marked")
        assert "Deploy done" in "".join(t for _, t in app.transcript.marked)
        assert "match 1 of 1" in "".join(t for _, t in app._status())
        await until(lambda: any("message(s) with 'deploy' in the history of lobby" in t
                                for t in ["".join(x for _, x in line) for line in app.transcript.lines]),
                    what="the server's matches")
        text = "\n".join("".join(x for _, x in line) for line in app.transcript.lines)
        assert "<bob> the deploy key is in the wiki" in text  # found only on the server ...
        assert text.count("Deploy done") == 1  # ... and what the window has is not listed again
        pipe.send_text("/whois bob\r")
        await until(lambda: any("bob: in lobby" in t for t in line_texts(app)), what="whois")

    run_app(server.port, "alice", scenario)
    bob.close()


def test_ctrl_r_finds_an_earlier_typed_line(server):
    async def scenario(app, pipe, _):
        for line in ("alpha one", "beta two", "gamma three"):
            pipe.send_text(line + "\r")
        await until(lambda: len(app.input.buffer.history.get_strings()) == 3, what="three lines sent")
        pipe.send_text("\x12")  # Ctrl-R
        await until(lambda: app.app.layout.has_focus(app.search), what="the search field")
        pipe.send_text("bet")  # what to look for
        await until(lambda: app.search.control.buffer.text == "bet", what="the search text")
        pipe.send_text("\r")  # Enter ends the search and keeps the line found, to edit or send
        await until(lambda: app.input.text == "beta two", what="the line found")

    run_app(server.port, "alice", scenario)


def test_an_operator_token_never_reaches_the_input_history_or_the_window_logs(make_server, tmp_path, monkeypatch):
    """/oper TOKEN works, but Up, Ctrl-R, the history file and the window logs never
    show the token again (nor a token typed after /op out of habit, nor a room's key)."""
    from chatroom.client import config as client_config
    from chatroom.client.config import ClientConfig

    monkeypatch.setattr(client_config, "data_dir", lambda: tmp_path)
    monkeypatch.setattr("chatroom.ui.tui.data_dir", lambda: tmp_path)
    monkeypatch.setattr("chatroom.ui.history.data_dir", lambda: tmp_path)
    server = make_server(op_password="s3cret-token")

    async def scenario(app, pipe, _):
        pipe.send_text("before\r")
        await until(lambda: any("<alice> before" in t for t in line_texts(app)), what="echo")
        pipe.send_text("/oper wrong-token\r")
        await until(lambda: any("not the operator token" in t for t in line_texts(app)), what="the refusal")
        pipe.send_text("/become alias-token\r")  # (the user's alias of /oper)
        await until(lambda: sum("not the operator token" in t for t in line_texts(app)) == 2, what="the alias")
        pipe.send_text("/op habit-token\r")  # /op gives a room's role now: nobody here is called that
        await until(lambda: any("goes with /oper" in t for t in line_texts(app)), what="/op's refusal")
        pipe.send_text("/join keyed room-key\r")
        await until(lambda: "keyed" in app.client.session.rooms, what="the keyed join")
        pipe.send_text("/oper s3cret-token\r")
        await until(lambda: any("you are now an operator" in t for t in line_texts(app)), what="op")
        pipe.send_text("after\r")
        await until(lambda: any("<alice> after" in t for t in line_texts(app)), what="echo")
        pipe.send_text("\x1b[A")  # Up: the line before the secrets' is the one before them
        await until(lambda: app.input.text == "after", what="history 1")
        pipe.send_text("\x1b[A")
        await until(lambda: app.input.text == "before", what="history 2, past both /op lines")
        app.input.text = ""
        assert not any("token" in s for s in app.input.buffer.history.get_strings())

    run_app(server.port, "alice", scenario,
            config=ClientConfig(input_history=True, log=True, aliases={"become": "oper"}))
    kept = "".join(p.read_text(encoding="utf-8") for p in tmp_path.rglob("*") if p.is_file())
    assert "before" in kept and "after" in kept  # the history file and the logs were written
    assert not any(secret in kept for secret in ("s3cret-token", "wrong-token", "alias-token", "habit-token",
                                                  "room-key"))


def test_a_message_over_the_length_limit_stays_in_the_input_with_how_much_to_cut(make_server):
    server = make_server(max_text=40)
    bob = WireClient(server.port)
    bob.hello("bob")
    long = "x" * 52

    async def scenario(app, pipe, _):
        pipe.send_text(long + "\r")
        await until(lambda: any("cut 12" in t for t in line_texts(app)), what="how much to cut")
        assert app.input.text == long  # not thrown away
        pipe.send_text("\x08" * 12 + "\r")  # cut it: it goes
        await until(lambda: any(f"<alice> {'x' * 40}" in t for t in line_texts(app)), what="the cut line")

    run_app(server.port, "alice", scenario)
    assert bob.expect(Chat).text == "x" * 40
    bob.close()


@pytest.mark.parametrize("cols", [80, 60, 44])
def test_a_narrow_status_bar_drops_whole_parts_least_useful_first(make_server, cols):
    server = make_server(history_size=200, rate=0)
    bob = WireClient(server.port)
    bob.hello("bob")
    for n in range(120):
        bob.send(Say(id=str(n), text=f"line {n}"))
    bob.collect(Chat, 120)
    screen = pyte.Screen(cols, 20)

    async def scenario(app, pipe, out):
        await until(lambda: any("line 119" in t for t in line_texts(app)), what="the history")
        status = "".join(text for _, text in app._status())
        assert len(status) <= cols and " alice" in status and "[1:lobby]" in status  # who and where: always
        assert not status.rstrip().endswith("│")  # no dangling separator, no half part
        for word in ("connected", "online"):
            assert word in status or word[:-1] not in status, status  # whole, or not at all
        pipe.send_text("\x1b[5~")  # PageUp: reading back
        await until(lambda: app.transcript.scroll > 0, what="scrolled back")
        status = "".join(text for _, text in app._status())
        assert "reading back" in status and "0 new below" not in status
        pipe.send_text("/window 7\r")  # a command's answer is seen at once, not below the view
        await until(lambda: app.transcript.scroll == 0 and any("7" in t and "window" in t for t in line_texts(app)),
                    what="the command's answer in view")

    run_app(server.port, "alice", scenario, screen=screen)
    bob.close()


def test_settings_change_while_the_client_runs_and_are_saved_and_read_again(server, tmp_path):
    """/set (checked as the file is), /alias and /bind take effect at once; /save writes
    client.toml, /reload reads it back."""
    from chatroom.client.config import ClientConfig, load_config

    bob = WireClient(server.port)
    bob.hello("bob")
    path = tmp_path / "client.toml"

    async def scenario(app, pipe, _):
        app.config_file = path
        pipe.send_text("/set bell loud\r")
        await until(lambda: any("bell must be one of" in t for t in line_texts(app)), what="the file's error")
        pipe.send_text("/set bell off\r")
        await until(lambda: app.windows.bell_mode == "off", what="the bell off")
        pipe.send_text("/alias wave me waves at everyone\r")
        await until(lambda: "wave" in app.controller.aliases, what="the alias")
        pipe.send_text("/wave\r")
        said = await asyncio.to_thread(bob.expect, Chat, text="waves at everyone")
        assert said.action
        pipe.send_text("/bind f5 join dev\r")
        await until(lambda: "f5" in app.config.bindings, what="the binding")
        pipe.send_text("\x1b[15~")  # F5
        await until(lambda: app.client.session.view("dev") is not None, what="F5: /join dev")
        pipe.send_text("/save\r")
        await until(lambda: path.exists(), what="client.toml written")
        assert load_config(path).bindings == {"f5": "join dev"}
        path.write_text('bell = "on"\n', encoding="utf-8")  # edited by hand meanwhile
        pipe.send_text("/reload\r")
        await until(lambda: app.windows.bell_mode == "on" and not app.config.bindings, what="read again")

    run_app(server.port, "alice", scenario, config=ClientConfig(input_history=False, log=False))
    bob.close()


def test_last_jumps_to_each_match_in_its_context_and_pages_the_servers_older_ones(make_server):
    server = make_server(rate=0, history_size=10)
    bob = WireClient(server.port)
    bob.hello("bob")
    for n in range(60):  # old matches, only on the server (a join replays 10)
        bob.send(Say(id=f"o{n}", text=f"old bug {n}"))
    bob.collect(Chat, 60)

    async def scenario(app, pipe, _):
        await until(lambda: any("old bug 59" in t for t in line_texts(app)), what="the replay")
        for n in range(90):  # matches at 0, 10, 20, 30; then 59 lines without one
            bob.send(Say(id=f"n{n}", text=f"{'BUG' if n % 10 == 0 and n < 40 else 'chat'} here {n}"))
        await until(lambda: any("chat here 89" in t for t in line_texts(app)), what="the live lines")
        pipe.send_text("/last /bug here [0-9]+/\r")  # a regex: the window only
        await until(lambda: app.transcript.marked is not None, what="the newest match")

        def marked() -> str:
            return "".join(t for _, t in app.transcript.marked)

        assert "BUG here 30" in marked() and app.transcript.scroll > 0  # in its context, the view moved
        pipe.send_text("\x1b\x1b[A")  # Alt-Up: the next older
        await until(lambda: "BUG here 20" in marked(), what="the older match")
        pipe.send_text("\x1b\x1b[B")  # Alt-Down: back
        await until(lambda: "BUG here 30" in marked(), what="the newer match")
        pipe.send_text("/last old bug\r")  # text: the window's, then the server's older ones, 10 at a time
        # the server's newest 10 are in the window already: it says there are older ones
        await until(lambda: any("/last more" in t for t in ["".join(x for _, x in line)
                                                          for line in app.transcript.lines]), what="a page")
        for page in ("old bug 40", "old bug 30"):  # then each /last more brings the next 10 older
            pipe.send_text("/last more\r")
            await until(lambda page=page: any(page in "".join(x for _, x in line) for line in app.transcript.lines),
                        timeout=15, what=page)

    run_app(server.port, "alice", scenario)
    bob.close()


def test_two_servers_at_once_each_with_its_windows(make_server):
    """/connect opens another server's rooms in windows of their own, named in the status
    bar; what is typed in a window goes to its server; /disconnect leaves it."""
    first, second = make_server(name="north"), make_server(name="south")
    bob = WireClient(second.port)
    bob.hello("bob")
    carol = WireClient(first.port)
    carol.hello("carol")

    async def scenario(app, pipe, _):
        pipe.send_text(f"/connect 127.0.0.1:{second.port}\r")
        await until(lambda: len(app.clients) == 2 and len(app.windows.items) == 2, what="south's lobby window")
        status = "".join(text for _, text in app._status())
        assert "1:lobby·north" in status and "2:lobby·south" in status, status
        assert app.windows.active.server == "south"  # (the new server's room comes to the front)
        await until(lambda: app.client.session.view("lobby") is not None
                    and "bob" in app.client.session.view("lobby").members, what="south's members")
        pipe.send_text("hello b\t")  # Tab completes south's nicks here (bob is not on north)
        await until(lambda: app.input.text == "hello bob ", what="bob completed")
        pipe.send_text("\x15hello south\r")  # (Ctrl-U: the line afresh)
        said = await asyncio.to_thread(bob.expect, Chat, text="hello south")
        assert said.nick == "alice"
        pipe.send_text("\x1b1")  # Alt-1: north's lobby
        await until(lambda: app.windows.active.server == "north", what="north's window")
        pipe.send_text("hello north\r")
        assert (await asyncio.to_thread(carol.expect, Chat, text="hello north")).nick == "alice"
        pipe.send_text("\x1b2/disconnect\r")
        await until(lambda: len(app.clients) == 1 and len(app.windows.items) == 1, what="south gone")
        await asyncio.to_thread(bob.expect, Presence, event=PresenceEvent.LEAVE, nick="alice")

    run_app(first.port, "alice", scenario)
    bob.close()
    carol.close()


def test_the_settings_servers_are_connected_at_start(make_server):
    from chatroom.client.config import ClientConfig, parse_config

    first, second = make_server(name="north"), make_server(name="south")
    assert parse_config(f'servers = ["127.0.0.1:{second.port}"]').servers == (f"127.0.0.1:{second.port}",)
    config = ClientConfig(input_history=False, log=False, servers=(f"127.0.0.1:{second.port}", "127.0.0.1:1"))

    async def scenario(app, pipe, _):
        await until(lambda: len(app.clients) == 2, what="south connected too")
        await until(lambda: any(w.server == "south" for w in app.windows.items), what="south's window")
        await until(lambda: any("127.0.0.1:1" in t for w in app.windows.items for t in
                                ["".join(x for _, x in line) for line in w.transcript.lines]),
                    what="the server that does not answer, said so")
        assert "south" in "".join(text for _, text in app._status())

    run_app(first.port, "alice", scenario, config=config)


def test_ignore_by_mask_and_kind_is_kept_across_runs(server, tmp_path):
    from chatroom.client.config import ClientConfig, load_config

    path = tmp_path / "client.toml"
    bot = WireClient(server.port)
    bot.hello("newsbot")
    carol = WireClient(server.port)
    carol.hello("carol")

    async def scenario(app, pipe, _):
        app.config_file = path
        pipe.send_text("/ignore *bot\r")
        await until(lambda: path.exists() and load_config(path).ignore == ("*bot",), what="kept in client.toml")
        bot.send(Say(id="1", text="BREAKING: nothing"))
        await asyncio.to_thread(bot.expect, Chat, text="BREAKING: nothing")  # in the room before carol speaks
        carol.send(Say(id="2", text="after the bot"))
        await until(lambda: any("after the bot" in t for t in line_texts(app)), what="carol's line")
        assert not any("BREAKING" in t for t in line_texts(app))
        pipe.send_text("/unignore *bot\r")
        await until(lambda: load_config(path).ignore == (), what="forgotten in client.toml")

    run_app(server.port, "alice", scenario, config=ClientConfig(input_history=False, log=False))
    bot.close()
    carol.close()


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
def test_what_an_irc_user_reaches_for_as_a_terminal_shows_it(make_server, size):
    """On a real terminal screen (pyte) at 80x24 and 60x20: the hotlist's counts in the
    status bar, /last's match marked in place with its place in the status bar, a /set
    answered on screen, and a second server's window named in the status bar."""
    cols, rows = size
    first, second = make_server(name="north", rate=0), make_server(name="south")
    screen = pyte.Screen(cols, rows)
    stream = pyte.Stream(screen)
    bob = WireClient(first.port)
    bob.hello("bob")

    async def scenario(app, pipe, out):
        def shows(text: str) -> bool:
            return any(text in row for row in drain(stream, out))

        pipe.send_text("/join dev\r")
        await until(lambda: app.windows.active.name == "dev", what="dev")
        for n in range(3):
            bob.send(Say(id=str(n), text=f"deploy step {n}", room="lobby"))
        await until(lambda: shows("1:lobby(3)+"), what="the lobby's count")
        pipe.send_text("\x1ba")  # Alt-A: to the lobby
        await until(lambda: shows("deploy step 2") and shows("1:lobby"), what="the lobby on screen")
        pipe.send_text("/last step 1\r")
        await until(lambda: shows("match 1 of 1"), what="the match's place in the status bar")
        marked = [y for y in range(rows) if "deploy step 1" in screen.display[y]]
        assert marked and screen.buffer[marked[0]][2].reverse  # the match is marked where it is
        pipe.send_text("/set bell off\r")
        await until(lambda: shows("bell = \"off\""), what="/set answered")
        pipe.send_text(f"/connect 127.0.0.1:{second.port}\r")
        await until(lambda: shows("·south"), what="the second server's window")

    run_app(first.port, "alice", scenario, screen=screen)
    bob.close()
