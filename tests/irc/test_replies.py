"""The IRC door's answers to questions, with no socket: a session, a chat state, lines."""

from __future__ import annotations

from chatroom.irc.modes import user_modes
from chatroom.irc.replies import (
    NAMES_PER_LINE,
    history_lines,
    ison_line,
    list_lines,
    lusers_lines,
    names_lines,
    userhost_line,
    who_lines,
    who_matches,
    whois_lines,
)
from chatroom.irc.session import IrcSession
from chatroom.protocol import Chat
from chatroom.server.room import ChatState
from chatroom.text import MAX_NICK_LENGTH, nick_key


def _session(*caps: str) -> IrcSession:
    session = IrcSession("irc.test")
    session.registered_as("ann")
    session.caps.update(caps)
    return session


def _state(count: int = 3) -> ChatState:
    state = ChatState()
    for i in range(count):
        state.admit(i + 1, f"user{i:03d}", f"127.0.0.1:{2000 + i}", 1.0)
    return state


def _member(state: ChatState, nick: str):
    return state.nicks[nick_key(nick)]


def _text(lines: list[bytes]) -> list[str]:
    return [line.decode().rstrip("\r\n") for line in lines]


def test_names_of_a_big_room_are_split_into_lines_that_fit_and_end_once():
    state = _state(120)
    state.make_operator(_member(state, "user000"))
    out = _text(names_lines(_session(), state.rooms["lobby"], "#lobby"))
    assert all(len(line.encode()) <= 512 for line in out)
    assert len(out) > 2 and out[-1] == ":irc.test 366 ann #lobby :End of /NAMES list"
    names = " ".join(line.split(" :", 1)[1] for line in out[:-1]).split()
    assert len(names) == 120 and names[0] == "@user000"


def test_names_rows_never_pass_their_width_however_long_the_names():
    state = ChatState()
    for i in range(300):  # the longest nicks, each also its ident: masks of ~75 characters
        state.admit(i + 1, f"n{i:03d}".ljust(MAX_NICK_LENGTH, "x"), f"127.0.0.1:{2000 + i}", 1.0)
    out = _text(names_lines(_session("userhost-in-names"), state.rooms["lobby"], "#lobby"))
    rows = [line.split(" :", 1)[1] for line in out[:-1]]
    assert all(len(row) + 1 <= NAMES_PER_LINE for row in rows)
    assert all(len(line.encode()) <= 512 for line in out)
    # every row is as full as it may be: the next row's first name did not fit
    pairs = zip(rows, rows[1:], strict=False)
    assert all(len(row) + 1 + len(nxt.split()[0]) + 1 > NAMES_PER_LINE for row, nxt in pairs)
    assert len(" ".join(rows).split()) == 300


def test_names_with_userhost_in_names_and_of_no_such_channel():
    state = _state(1)
    assert _text(names_lines(_session("userhost-in-names"), state.rooms["lobby"], "#lobby"))[0].endswith(
        ":user000!user000@chatroom")
    assert _text(names_lines(_session(), None, "#nowhere")) == [":irc.test 366 ann #nowhere :End of /NAMES list"]


def test_who_of_a_room_a_nick_and_nobody():
    state = _state(2)
    state.set_away(_member(state, "user001"), "lunch", 2.0)
    room = _text(who_lines(_session(), "#lobby", state.rooms["lobby"], []))
    assert [line.split()[8] for line in room[:-1]] == ["H", "G"]  # here, gone (away)
    one = _text(who_lines(_session(), "user000", None, [_member(state, "user000")]))
    assert one[0].split()[3] == "#lobby" and one[-1].endswith(":End of /WHO list")
    assert len(who_lines(_session(), "ghost", None, [])) == 1


def test_who_shows_the_user_name_and_real_name_given_and_a_server_operator_as_such():
    state = _state(2)
    ann = _member(state, "user000")
    ann.ident, ann.realname = "annie", "Ann Example"
    state.make_operator(ann)
    rows = [line.split(" ", 9) for line in _text(who_lines(_session(), "#lobby", state.rooms["lobby"], []))[:-1]]
    # :srv 352 asker #chan user host server nick flags :hops realname
    assert [(r[4], r[7], r[8], r[9]) for r in rows] == [("annie", "user000", "H*@", ":0 Ann Example"),
                                                       ("user001", "user001", "H", ":0 user001")]


def test_who_masks_name_everyone_they_match_but_the_invisible_outside_shared_rooms():
    state = _state(3)
    asker = _member(state, "user000")
    state.admit(9, "bob", "127.0.0.1:9", 1.0, several=True)
    hidden, _, _ = state.admit(10, "hidden", "127.0.0.1:10", 1.0, several=True)
    hidden.invisible = True
    state.part(hidden, "lobby", "", 2.0)
    assert {m.nick for m in who_matches("*", state.members(), asker)} == {"user000", "user001", "user002", "bob"}
    assert [m.nick for m in who_matches("USER00?", state.members(), asker)] == ["user000", "user001", "user002"]
    assert who_matches("user000", state.members(), asker) == []  # a plain nick is a lookup, not a mask
    assert [m.nick for m in who_matches("hid*", state.members(), hidden)] == ["hidden"]  # oneself, always


def test_user_modes_change_only_invisible_and_bot_and_say_what_changed():
    assert user_modes("+i", "") == ("i", "+i", False)
    assert user_modes("+i", "i") == ("i", "", False)  # nothing changed: nothing echoed
    assert user_modes("-i+w", "i") == ("", "-i", True)
    assert user_modes("+o", "") == ("", "", True)  # operators come from OPER
    assert user_modes("+Bi", "") == ("iB", "+Bi", False)
    assert user_modes("-B", "iB") == ("i", "-B", False)


def test_whois_says_rooms_away_and_operator():
    state = _state(1)
    member = _member(state, "user000")
    state.make_operator(member)
    state.set_away(member, "back soon", 2.0)
    user = state.whois(member, "user000", 3.0)
    out = " ".join(_text(whois_lines(_session(), user, member, 3.0)))
    for numeric in ("311", "319", "312", "301", "313", "317", "318"):
        assert f" {numeric} ann user000 " in out
    assert "#lobby" in out and "back soon" in out


def test_list_lusers_ison_and_userhost():
    state = _state(3)
    state.make_operator(_member(state, "user002"))
    state.join(_member(state, "user000"), "dev", 2.0)
    rooms = state.list_rooms().rooms
    assert [line.split()[3] for line in _text(list_lines(_session(), rooms))[1:-1]] == ["#dev", "#lobby"]
    assert [line.split()[3] for line in _text(list_lines(_session(), rooms, "#DEV,#nowhere"))[1:-1]] == ["#dev"]
    _member(state, "user001").invisible = True
    lusers = _text(lusers_lines(_session(), list(state.members()), 2, 5))
    assert "There are 2 users and 1 invisible on 1 server" in lusers[0] and " 252 ann 1 " in lusers[1]
    assert [line.split(":", 2)[-1].strip() for line in lusers[-2:]] == ["Current local users 3, max 5",
                                                                        "Current global users 3, max 5"]
    assert _text([ison_line(_session(), state.nicks, ["USER000", "ghost", "user002"])]) == [
        ":irc.test 303 ann :user000 user002"]
    assert _text([userhost_line(_session(), state.nicks, ["user002", "user000"])]) == [
        ":irc.test 302 ann :user002*=+user002@chatroom user000=+user000@chatroom"]


def test_history_goes_only_to_a_client_that_reads_server_time_and_in_a_batch_if_it_can():
    chats = [Chat(room="lobby", seq=1, ts=1_700_000_000.0, nick="bob", text="earlier")]
    assert history_lines(_session(), "#lobby", chats) == []
    plain = _text(history_lines(_session("server-time"), "#lobby", chats))
    assert len(plain) == 1 and plain[0].startswith("@time=2023-11-14T22:13:20.000Z :bob")
    batched = _text(history_lines(_session("server-time", "batch"), "#lobby", chats))
    assert batched[0].startswith(":irc.test BATCH +history chathistory #lobby") and "BATCH -history" in batched[-1]
