"""IRC lines, the IRC session's registration, and the rooms' messages as IRC: no sockets."""

from __future__ import annotations

import pytest

from chatroom.irc.lines import MAX_LINE, IrcLine, LineError, LineReader, LineTooLong, format_line, parse_line
from chatroom.irc.session import IrcSession, Pong, Quit, Register
from chatroom.irc.wire import IrcFormat, _one_line, _split_lines, split_text
from chatroom.protocol import Chat, Presence, PresenceEvent, Private, Topic
from chatroom.server.wire import Outgoing

# ----------------------------------------------------------------------------- lines

def test_a_line_with_tags_source_params_and_trailing_is_parsed():
    line = parse_line(b"@time=2026-01-01T00:00:00.000Z;msgid=a\\sb\\:c;flag :ann!a@h PRIVMSG #lobby :hi there :)")
    assert line.command == "PRIVMSG" and line.source == "ann!a@h"
    assert line.params == ["#lobby", "hi there :)"]
    assert line.tags == {"time": "2026-01-01T00:00:00.000Z", "msgid": "a b;c", "flag": ""}
    assert parse_line(b"nick  ann").params == ["ann"] and parse_line(b"nick ann").command == "NICK"
    assert parse_line(b"PRIVMSG #a :").params == ["#a", ""]
    assert parse_line(b"USER a 0 * :Ann Smith").params == ["a", "0", "*", "Ann Smith"]


@pytest.mark.parametrize("raw", [b"", b"   ", b"@tags-only", b"PRIVMSG #a :x\0y", b"PRIVMSG #a :" + b"x" * MAX_LINE])
def test_bad_lines_are_refused_with_a_reason(raw):
    with pytest.raises(LineError):
        parse_line(raw)


def test_invalid_utf8_is_replaced_not_fatal():
    assert parse_line(b"PRIVMSG #a :caf\xe9").params[1] == "caf\ufffd"


def test_lines_are_written_with_a_trailing_parameter_when_needed():
    assert format_line("PRIVMSG", "#a", "hi") == b"PRIVMSG #a hi\r\n"
    assert format_line("PRIVMSG", "#a", "hi", trailing=True) == b"PRIVMSG #a :hi\r\n"
    assert format_line("PART", "#a", "") == b"PART #a :\r\n"
    assert format_line("NOTICE", "*", "two words", source="srv") == b":srv NOTICE * :two words\r\n"
    assert format_line("X", "a\r\nQUIT", trailing=True) == b"X :a  QUIT\r\n"  # no line can be smuggled in
    tagged = format_line("PRIVMSG", "#a", "x", tags={"time": "t", "k": "a b;c"})
    assert tagged == b"@time=t;k=a\\sb\\:c PRIVMSG #a x\r\n"
    assert parse_line(tagged[:-2]).tags == {"time": "t", "k": "a b;c"}


def test_the_byte_stream_is_cut_on_any_line_ending_and_bounded():
    reader = LineReader()
    assert reader.feed(b"NICK a\r\nUSER a 0 * :a\nPING x\rPI") == ([b"NICK a", b"USER a 0 * :a", b"PING x"], 0)
    assert reader.feed(b"NG y\r\n\r\n") == ([b"PING y"], 0)
    lines, overlong = reader.feed(b"PRIVMSG #a :" + b"x" * 20_000)  # never ends: cut off, not buffered
    assert (lines, overlong) == ([], 1)
    assert reader.feed(b"y" * 10_000 + b"\r\nPING z\r\n") == ([b"PING z"], 0)  # the rest of it is dropped


# ----------------------------------------------------------------------------- registration

def feed(session: IrcSession, *raw: str) -> list[object]:
    out: list[object] = []
    for r in raw:
        out += session.receive(parse_line(r.encode()))
    return out


def test_registration_waits_for_cap_end_when_cap_was_started():
    s = IrcSession("srv")
    out = feed(s, "CAP LS 302", "NICK ann", "USER ann 0 * :Ann")
    assert b"CAP * LS :server-time" in out[0] and not any(isinstance(a, Register) for a in out)
    out = feed(s, "CAP REQ :server-time echo-message", "CAP END")
    assert out[0] == b":srv CAP ann ACK :server-time echo-message\r\n"
    assert out[-1] == Register("ann", None) and s.caps == {"server-time", "echo-message"}


def test_unknown_capabilities_are_refused_whole():
    s = IrcSession("srv")
    (out,) = feed(s, "CAP REQ :server-time sasl")
    assert out == b":srv CAP * NAK :server-time sasl\r\n" and s.caps == set()


def test_before_registration_only_registration_commands_work():
    s = IrcSession("srv")
    (out,) = feed(s, "JOIN #lobby")
    assert out == b":srv 451 * :You have not registered\r\n"
    assert feed(s, "PING abc") == [b":srv PONG srv :abc\r\n"]
    assert feed(s, "PONG x") == [Pong()] and feed(s, "QUIT :bye") == [Quit("bye")]
    assert feed(s, "USER a") == [b":srv 461 * USER :Not enough parameters\r\n"]
    assert feed(s, "PASS secret", "NICK ann", "USER a 0 * :A") == [Register("ann", "secret")]
    s.registered_as("ann")
    line = feed(s, "JOIN #lobby")[0]
    assert isinstance(line, IrcLine) and line.command == "JOIN"
    assert feed(s, "USER b 0 * :b") == [b":srv 462 ann :You may not reregister\r\n"]


def test_a_password_room_refuses_irc_without_tls():
    s = IrcSession("srv", tls=False, password_room=True)
    out = feed(s, "PASS secret", "NICK ann", "USER a 0 * :A")
    assert not any(isinstance(a, Register) for a in out) and s.refused
    assert any(b" 464 " in a for a in out if isinstance(a, bytes))
    assert any(b"clear text" in a for a in out if isinstance(a, bytes))
    s = IrcSession("srv", tls=True, password_room=True)
    assert feed(s, "PASS secret", "NICK ann", "USER a 0 * :A") == [Register("ann", "secret")]


# ----------------------------------------------------------------------------- the rooms as IRC

def lines_of(fmt: IrcFormat, msg) -> list[str]:
    return fmt.encode([Outgoing(msg, b"")]).decode().split("\r\n")[:-1]


def test_a_long_or_multi_line_message_is_several_privmsgs_cut_between_words():
    fmt = IrcFormat("srv")
    text = "first line\n" + " ".join(f"word{i}" for i in range(200)) + "\n\nlast"
    lines = lines_of(fmt, Chat(room="lobby", seq=1, ts=0.0, nick="ann", text=text))
    assert all(len(line.encode()) + 2 <= 512 for line in lines) and len(lines) >= 4
    bodies = [line.split(" :", 1)[1] for line in lines]
    assert bodies[0] == "first line" and bodies[-1] == "last"
    assert " ".join(bodies[1:-1]).split() == [f"word{i}" for i in range(200)]  # no word cut
    assert all(line.startswith(":ann!ann@chatroom PRIVMSG #lobby :") for line in lines)


@pytest.mark.parametrize("text", ["hello", "trailing spaces   ", "   ", "tab\tinside", "x" * 110, "é" * 110,
                                  "a\rb", "nul\0here", "emoji \U0001f600 ok", " leading"])
@pytest.mark.parametrize("action", [False, True])
def test_a_message_of_one_line_is_written_as_the_general_path_writes_it(text, action):
    """``_one_line`` (no tags, one short line: most chats) against the general path --
    ``split_text`` and ``format_line`` -- that every other message takes."""
    budget = MAX_LINE - len(b":ann!ann@chatroom PRIVMSG #lobby :") - 2 - (9 if action else 0)
    assert len(text) * 4 <= budget
    general = _split_lines("ann!ann@chatroom", "PRIVMSG", "#lobby", text, action, budget, None, None)
    assert _one_line("ann!ann@chatroom", "PRIVMSG", "#lobby", text, action) == general
    fmt = IrcFormat("srv")
    assert fmt.encode([Outgoing(Chat(room="lobby", seq=1, ts=0.0, nick="ann", text=text, action=action), b"")]) \
        == general


def test_split_text_never_cuts_a_character():
    pieces = split_text("é" * 300, 101)
    assert "".join(pieces) == "é" * 300 and all(len(p.encode()) <= 101 for p in pieces)


def test_actions_tags_and_leaves_map_onto_irc():
    plain, timed = IrcFormat("srv"), IrcFormat("srv", server_time=True, away_notify=True)
    chat = Chat(room="dev", seq=1, ts=1_780_000_000.25, nick="ann", text="waves", action=True)
    assert lines_of(plain, chat) == [":ann!ann@chatroom PRIVMSG #dev :\x01ACTION waves\x01"]
    assert lines_of(timed, chat)[0].startswith("@time=2026-05-28T") and ".250Z " in lines_of(timed, chat)[0]

    def leave(reason: str) -> list[str]:
        return lines_of(plain, Presence(room="dev", event=PresenceEvent.LEAVE, nick="bob", ts=0.0, reason=reason))

    assert leave("left: lunch") == [":bob!bob@chatroom PART #dev :lunch"]
    assert leave("left") == [":bob!bob@chatroom PART #dev"]
    assert leave("went to ops") == [":bob!bob@chatroom PART #dev :went to ops"]
    assert leave("kicked by ann: spam") == [":ann!ann@chatroom KICK #dev bob :spam"]
    assert leave("quit: bye") == [":bob!bob@chatroom QUIT :Quit: bye"]
    assert leave("connection lost") == [":bob!bob@chatroom QUIT :connection lost"]
    away = Presence(room="dev", event=PresenceEvent.AWAY, nick="bob", ts=0.0, message="lunch")
    assert lines_of(plain, away) == [] and lines_of(timed, away)[0].endswith(":bob!bob@chatroom AWAY :lunch")
    assert lines_of(plain, Private(nick="bob", to="ann", text="psst", ts=0.0)) == [
        ":bob!bob@chatroom PRIVMSG ann :psst"]
    assert lines_of(plain, Topic(room="dev", topic="", nick="bob", ts=0.0)) == [":bob!bob@chatroom TOPIC #dev :"]


def test_formatting_codes_are_removed_from_what_irc_clients_say():
    from chatroom.irc.lines import plain_text

    assert plain_text("\x02bold\x02 \x0304,12red on blue\x03 \x1ditalic\x1d\x0f") == "bold red on blue italic"
    assert plain_text("\x04ff0000hex\x04 \x1fund\x1f \x1estrike\x1e \x11mono\x11 \x16rev") == "hex und strike mono rev"
    assert plain_text("plain, 100% of it") == "plain, 100% of it"
    assert plain_text("tab\tstays") == "tab\tstays"  # (not formatting: the room's rules decide)


def test_the_tags_of_a_line_are_at_most_4096_bytes_with_their_at_sign_and_space():
    at_limit = b"@foo=bar;+baz=" + b"a" * 4081 + b" TAGMSG #test"
    assert at_limit.index(b"TAGMSG") == 4096
    assert parse_line(at_limit).tags["+baz"] == "a" * 4081
    with pytest.raises(LineTooLong):
        parse_line(b"@foo=bar;+baz=" + b"a" * 4082 + b" TAGMSG #test")
