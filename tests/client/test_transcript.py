"""What the screen shows, without a screen: lines, pending marks, scrolling, mentions."""

from __future__ import annotations

from chatroom.client.commands import ChatLine, Command, Invalid, parse_input
from chatroom.client.connection import Outgoing, OutgoingChanged
from chatroom.client.transcript import Transcript, mentions, nick_style, plain_line
from chatroom.protocol import Chat, Error, Presence, PresenceEvent, Private, Say


def text_of(line) -> str:
    return "".join(t for _, t in line)


def chat(seq: int, nick: str, text: str, **kw) -> Chat:
    return Chat(room="lobby", seq=seq, ts=0.0, nick=nick, text=text, **kw)


def test_escape_sequences_from_peers_never_reach_the_screen():
    t = Transcript()
    t.add(chat(1, "evil\x1b[31m", "\x1b]0;pwned\x07\x1b[2J\x1b[Hclear?\x9b31m \u202eabc"))
    shown = text_of(t.lines[-1])
    assert "\x1b" not in shown and "\x07" not in shown and "\x9b" not in shown and "\u202e" not in shown
    assert "clear?" in shown


def test_what_a_server_says_in_our_own_lines_is_cleaned_too():
    t = Transcript()
    t.system("connection closed: \x1b[2J\x1b]0;pwned\x07\u202egoodbye\r\nsecond line", error=True)
    shown = [text_of(line) for line in t.lines]
    assert not any(c in "".join(shown) for c in "\x1b\x07\u202e\r")
    assert shown[0].endswith("goodbye") and shown[1].endswith("second line")


def test_multiline_messages_become_indented_continuation_lines():
    t = Transcript()
    t.add(chat(1, "ann", "one\ntwo\nthree"))
    lines = [text_of(line) for line in t.lines]
    assert lines[0].endswith("<ann> one")
    assert lines[1].strip() == "two" and lines[1].startswith(" ")
    assert len(lines) == 3


def test_mentions_are_highlighted_and_ring_but_own_messages_do_not():
    t = Transcript()
    t.nick = "ann"
    assert t.add(chat(1, "bob", "hey @ann, look"))
    assert any("mention" in style for style, _ in t.lines[-1])
    assert not t.add(chat(2, "bob", "annabel is here"))  # not a word match
    assert not t.add(chat(3, "ann", "ann talking to herself"))
    t.bell_mode = "off"
    assert not t.add(chat(4, "bob", "ann!"))
    t.bell_mode = "on"
    assert t.add(chat(5, "bob", "anything"))
    assert mentions("ANN: hi", "ann") and not mentions("banner", "ann")


def test_nick_colours_are_stable_and_case_insensitive():
    assert nick_style("Ann") == nick_style("ann") == nick_style("ann")
    assert len({nick_style(f"user{i}") for i in range(100)}) > 6


def test_pending_messages_show_below_until_the_server_echoes_them():
    t = Transcript()
    t.nick = "ann"
    out = Outgoing(id="c1", message=Say(id="c1", text="hello"))
    t.add(OutgoingChanged(out))
    assert "(sending)" in text_of(t.visible()[-1])
    t.add(chat(1, "bob", "meanwhile"))
    assert "(sending)" in text_of(t.visible()[-1])  # pending stays at the bottom
    t.add(chat(2, "ann", "hello", id="c1"))
    assert all("(sending)" not in text_of(line) for line in t.visible())
    assert text_of(t.visible()[-1]).endswith("<ann> hello")


def test_a_refused_message_loses_its_mark_and_says_why():
    t = Transcript()
    out = Outgoing(id="c1", message=Say(id="c1", text="spam"), status="refused", error="slow down")
    t.pending["c1"] = [("", "x")]
    t.add(OutgoingChanged(out))
    assert not t.pending and "not sent: spam — slow down" in text_of(t.lines[-1])


def test_scrolling_up_holds_the_view_and_counts_new_messages():
    t = Transcript()
    for i in range(100):
        t.add(chat(i + 1, "bob", f"m{i}"))
    t.page_up(height=20)
    assert t.scroll == 19
    before = [text_of(line) for line in t.visible()[-3:]]
    for i in range(5):
        t.add(chat(200 + i, "bob", f"new{i}"))
    assert [text_of(line) for line in t.visible()[-3:]] == before
    assert t.unread == 5
    t.page_down(height=20)
    assert t.scroll == 5
    t.page_down(height=20)
    assert t.scroll == 0 and t.unread == 0
    assert text_of(t.visible()[-1]).endswith("new4")


def test_scrollback_holds_at_least_five_thousand_lines():
    t = Transcript()
    for i in range(6000):
        t.add(chat(i + 1, "bob", f"m{i}"))
    assert len(t.lines) == 6000
    t.page_up(height=10_000)
    assert text_of(t.visible()[0]).endswith("m0")


def test_system_events_look_distinct_from_chat():
    t = Transcript()
    t.add(Presence(room="lobby", event=PresenceEvent.LEAVE, nick="bob", reason="too slow", ts=0.0))
    assert "bob left (too slow)" in text_of(t.lines[-1])
    assert any(style == "class:system" for style, _ in t.lines[-1])
    t.add(Error(code="x", message="boom"))
    assert any(style == "class:error" for style, _ in t.lines[-1])
    t.add(Private(nick="bob", to="ann", text="psst", ts=0.0))
    assert "[bob →]" in text_of(t.lines[-1])


def test_plain_lines_are_one_line_per_event_and_sanitised():
    assert plain_line(chat(1, "ann", "hi\x1b[31m")).endswith("<ann> hi")
    assert plain_line(chat(1, "ann", "waves", action=True)).endswith("* ann waves")
    assert plain_line(Presence(room="lobby", event=PresenceEvent.JOIN, nick="bob", ts=0.0)).endswith(
        "-- bob joined lobby")


def test_input_parsing():
    assert parse_input("hello") == ChatLine("hello")
    assert parse_input("   ") is None
    assert parse_input("//etc/passwd is a path") == ChatLine("/etc/passwd is a path")
    assert parse_input("/me waves") == Command("me", ("waves",), "waves")
    assert parse_input("/msg bob hi there") == Command("msg", ("bob", "hi", "there"), "hi there")
    assert parse_input("/JOIN dev") == Command("join", ("dev",), "dev")
    bad = parse_input("/frobnicate now")
    assert isinstance(bad, Invalid) and "unknown command /frobnicate" in bad.reason and "/help" in bad.reason
    assert isinstance(parse_input("/msg bob"), Invalid)
    assert isinstance(parse_input("/bell loud"), Invalid)
    assert parse_input("line one\nline two") == ChatLine("line one\nline two")


def test_a_replayed_message_never_shows_twice():
    from chatroom.protocol import Welcome

    t = Transcript()
    t.add(chat(1, "bob", "one"))
    t.add(chat(2, "bob", "two"))
    # a fresh join after a failed resume replays history we already show
    t.add(Welcome(version="1.0", server="s", nick="ann", room="lobby",
                  history=(chat(1, "bob", "one"), chat(2, "bob", "two"), chat(3, "bob", "three"))))
    t.add(chat(3, "bob", "three"))
    texts = [text_of(line) for line in t.lines]
    assert sum(x.endswith("one") for x in texts) == 1 and sum(x.endswith("three") for x in texts) == 1


def test_missed_messages_are_appended_and_older_pages_go_on_top():
    from chatroom.protocol import History

    t = Transcript()
    t.room = "lobby"
    for seq in (10, 11):
        t.add(chat(seq, "bob", f"m{seq}"))
    t.add(History(room="lobby", messages=(chat(12, "bob", "m12"), chat(13, "bob", "m13"))))  # missed
    assert [text_of(line)[-3:] for line in t.lines] == ["m10", "m11", "m12", "m13"]
    assert t.wants_older() == 10
    t.page_up(height=2)
    scroll_before = t.scroll
    t.add(History(room="lobby", messages=(chat(8, "bob", "m8"), chat(9, "bob", "m9")), complete=True))
    texts = [text_of(line) for line in t.lines]
    assert "beginning of lobby" in texts[0] and [x[-2:] for x in texts[1:3]] == ["m8", "m9"]
    assert t.scroll == scroll_before  # the view did not jump
    assert t.wants_older() is None  # nothing older exists


def test_file_commands_parse():
    assert parse_input("/send notes.pdf") == Command("send", ("notes.pdf",), "notes.pdf")
    assert parse_input('/send bob "my notes.pdf"').rest == 'bob "my notes.pdf"'  # type: ignore[union-attr]
    assert isinstance(parse_input("/send"), Invalid)
    assert parse_input("/accept") == Command("accept")
    assert parse_input("/accept 3") == Command("accept", ("3",), "3")
    assert isinstance(parse_input("/accept three"), Invalid)
    assert isinstance(parse_input("/cancel 1 2"), Invalid)
    assert parse_input("/files") == Command("files")


def test_send_target_reads_a_path_or_a_nick_and_a_path(tmp_path):
    from pathlib import Path

    from chatroom.client.controller import Controller

    class FakeClient:  # the controller only reads the member list here
        class session:  # noqa: N801
            members = {"bob": None, "Carol": None}

    (tmp_path / "my notes.pdf").write_bytes(b"x")
    (tmp_path / "bob").write_bytes(b"a file called bob")
    c = Controller(FakeClient(), show=lambda text, error: None, quit=lambda: None)  # type: ignore[arg-type]
    notes = tmp_path / "my notes.pdf"
    assert c.send_target(str(notes)) == (notes, None)
    assert c.send_target(f'"{notes}"') == (notes, None)
    assert c.send_target(f"bob {notes}") == (notes, "bob")
    assert c.send_target(f"@carol '{notes}'") == (notes, "carol")
    assert c.send_target(str(tmp_path / "bob")) == (tmp_path / "bob", None)  # an existing path wins
    assert c.send_target("nobody missing.txt") == (Path("nobody missing.txt"), None)


def test_file_events_read_as_sentences_and_are_sanitised():
    from pathlib import Path

    from chatroom.client.transfers import FileTransfer, Phase, TransferChanged

    theirs = FileTransfer(outgoing=False, id=4, name="evil\x1b[2J.txt", size=2048, peer="mallory",
                          detail="to you")
    t = Transcript()
    ring = t.add(TransferChanged(theirs, "offered", detail="to you"))
    text = "".join(x for _, x in t.lines[-1])
    assert "mallory offers “evil" in text and "(2.0 KiB) to you — /accept 4 or /reject 4" in text
    assert "\x1b" not in text and ring
    theirs.phase, theirs.path = Phase.DONE, Path("/dl/evil.txt")
    t.add(TransferChanged(theirs, "saved"))
    assert "saved “evil" in "".join(x for _, x in t.lines[-1]) and "SHA-256 verified" in "".join(
        x for _, x in t.lines[-1])
    ours = FileTransfer(outgoing=True, id=5, name="a.bin", size=10, peer="the room")
    assert plain_line(TransferChanged(ours, "accepted", nick="bob")) == "-- bob accepted “a.bin”"
    assert plain_line(TransferChanged(ours, "progress")) is None
    failed = plain_line(TransferChanged(theirs, "failed", detail="the SHA-256 does not match"))
    assert failed is not None and failed.startswith("-- error:") and "SHA-256" in failed


def test_a_crowd_summary_is_one_line_naming_some_and_counting_all():
    from chatroom.client.transcript import crowd_text, plain_line
    from chatroom.protocol import Crowd

    crowd = Crowd(room="lobby", ts=0.0, joined=("ann", "bob"), joined_count=40, left=("eve",), left_count=1,
                  member_count=5001)
    assert crowd_text(crowd) == "40 joined (ann, bob and 38 more); 1 left (eve); 5,001 here now"
    assert plain_line(crowd).endswith("-- 40 joined (ann, bob and 38 more); 1 left (eve); 5,001 here now")


def test_help_fits_a_small_screen_and_a_typo_gets_one_line_with_a_suggestion():
    import chatroom.client.commands as commands
    from chatroom.client.commands import COMMANDS, HELP, help_text

    lines = HELP.splitlines()
    assert len(lines) <= 10 and all(len(line) <= 70 for line in lines)  # 80 columns, with the time in front
    grouped = [name for _, names in commands._GROUPS for name in names]
    assert sorted(grouped) == sorted(COMMANDS)  # every command is listed, once
    assert "PageUp" in HELP and "Ctrl-D" in HELP  # the keys too
    bad = parse_input("/jion dev")
    assert isinstance(bad, Invalid) and "\n" not in bad.reason and "did you mean /join?" in bad.reason
    assert help_text("/gban").startswith("/gban NICK|ADDRESS [TIME]: ")
    assert help_text("/ban").startswith("/ban NICK|MASK: room operators")


def test_times_from_another_day_carry_their_date():
    import time as _time

    from chatroom.client.wording import clock as _clock

    now = _time.mktime((2026, 12, 1, 10, 0, 0, 0, 0, -1))
    assert _clock(_time.mktime((2026, 12, 1, 9, 5, 0, 0, 0, -1)), now) == "09:05"
    assert _clock(_time.mktime((2026, 11, 30, 23, 59, 0, 0, 0, -1)), now) == "Nov 30 23:59"


def test_a_known_certificate_is_announced_once_not_on_every_reconnect():
    from chatroom.client.connection import Trusted

    t = Transcript()
    for _ in range(3):
        t.add(Trusted("host:7373", "AB:CD", False))
    assert sum("TLS:" in "".join(x for _, x in line) for line in t.lines) == 1
    t.add(Trusted("host:7373", "EF:01", False))  # another certificate is news
    assert sum("TLS:" in "".join(x for _, x in line) for line in t.lines) == 2
