"""The window model of the full-screen client, with no terminal and no network."""

from __future__ import annotations

from chatroom.client.connection import Outgoing, OutgoingChanged
from chatroom.client.windows import Activity, Windows
from chatroom.protocol import (
    Chat,
    Direct,
    Joined,
    Notice,
    Parted,
    Presence,
    PresenceEvent,
    Private,
    Say,
    Topic,
    Welcome,
)


def texts(windows: Windows, number: int) -> list[str]:
    return ["".join(t for _, t in line) for line in windows.items[number - 1].transcript.lines]


def chat(room: str, seq: int, nick: str, text: str) -> Chat:
    return Chat(room=room, seq=seq, ts=1.0, nick=nick, text=text)


def three_windows() -> Windows:
    w = Windows("ann")
    w.add(Welcome(version="1.3", server="s", nick="ann", room="lobby"))
    w.add(Joined(room="dev"))
    return w


def test_each_room_gets_a_window_and_its_messages_go_only_there():
    w = three_windows()
    assert [x.label for x in w.items] == ["lobby", "dev"] and w.active.name == "dev"  # a joined room comes forward
    w.add(chat("dev", 1, "bob", "in dev"))
    w.add(chat("lobby", 1, "bob", "in the lobby"))
    w.add(Topic(room="lobby", topic="plans", nick="bob", ts=1.0))
    assert any("in dev" in t for t in texts(w, 2)) and not any("in the lobby" in t for t in texts(w, 2))
    assert any("in the lobby" in t for t in texts(w, 1)) and any("plans" in t for t in texts(w, 1))


def test_activity_and_highlights_mark_the_windows_not_on_screen():
    w = three_windows()
    w.add(chat("lobby", 1, "bob", "just chatting"))
    assert w.status_text() == "[1:lobby(1)+ 2:dev]"
    w.add(chat("lobby", 2, "bob", "ann: look at this"))  # a mention
    ring = w.add(Private(nick="bob", to="ann", text="psst", ts=1.0))
    assert ring  # a direct message elsewhere rings
    assert w.status_text() == "[1:lobby(2)! 2:dev 3:@bob(1)!]" and w.unread_highlights == 2
    w.add(Presence(room="lobby", event=PresenceEvent.JOIN, nick="cy", ts=1.0))
    assert w.items[0].activity is Activity.HIGHLIGHT  # presence does not lower it
    w.add(chat("dev", 1, "ann", "my own line"))  # on screen, and mine: nothing to mark
    assert w.switch(1) and w.status_text() == "[1:lobby 2:dev 3:@bob(1)!]"
    assert not w.switch(4)


def test_a_notice_or_an_error_goes_to_the_window_on_screen_and_marks_nothing():
    w = three_windows()
    w.add(Notice(text="from the server"))
    assert any("from the server" in t for t in texts(w, 2)) and w.status_text() == "[1:lobby 2:dev]"


def test_a_private_conversation_has_its_own_window_for_both_directions():
    w = three_windows()
    w.add(Private(nick="ann", to="bob", text="hi bob", ts=1.0))  # we wrote first: the window opens, unmarked
    assert w.status_text() == "[1:lobby 2:dev 3:@bob]"
    w.add(Private(nick="Bob", to="ann", text="hi ann", ts=2.0))  # nicks ignore case
    assert len(w.items) == 3 and any("hi ann" in t for t in texts(w, 3))
    assert w.query("BOB") is w.items[2] and w.active is w.items[2]
    # A pending line shows in the conversation it was typed in.
    out = Outgoing(id="x", message=Direct(id="x", to="bob", text="on its way"))
    w.switch(1)
    w.add(OutgoingChanged(out))
    assert w.items[2].transcript.pending and not w.items[0].transcript.pending
    # The conversation follows a new nick.
    w.add(Presence(room="lobby", event=PresenceEvent.NICK, nick="bob", new_nick="robert", ts=3.0))
    assert w.items[2].label == "@robert"


def test_a_first_private_message_typed_in_a_room_window_is_settled_where_its_sending_line_is():
    w = three_windows()  # dev on screen, no conversation with bob yet
    out = Outgoing(id="z", message=Direct(id="z", to="bob", text="psst"))
    w.add(OutgoingChanged(out))
    assert w.active.transcript.pending
    w.add(Private(nick="ann", to="bob", text="psst", ts=1.0, id="z"))  # the echo opens @bob
    w.add(OutgoingChanged(Outgoing(id="z", message=out.message, status="acked")))
    assert not any(x.transcript.pending for x in w.items)  # no "(sending)" left anywhere
    assert "sending" not in w.status_text()


def test_a_pending_room_line_shows_in_its_room_window():
    w = three_windows()
    w.add(OutgoingChanged(Outgoing(id="y", message=Say(id="y", text="to the lobby", room="lobby"))))
    assert w.items[0].transcript.pending and not w.items[1].transcript.pending


def test_leaving_a_room_closes_its_window_and_shows_the_one_before():
    w = three_windows()
    w.add(Private(nick="bob", to="ann", text="x", ts=1.0))
    w.switch(2)
    w.add(Parted(room="dev"))
    assert [x.label for x in w.items] == ["lobby", "@bob"] and w.active.name == "lobby"
    assert any("you left dev" in t for t in texts(w, 1))
    w.close(w.items[1])
    w.add(Parted(room="lobby"))  # the last window: an empty one stands in
    assert w.status_text() == "[1:(none)]"
    w.add(Joined(room="ops"))
    assert w.status_text() == "[1:ops]"


def test_ctrl_n_and_ctrl_p_go_round_the_windows():
    w = three_windows()
    w.add(Private(nick="bob", to="ann", text="x", ts=1.0))
    assert w.active.name == "dev"
    w.step(1)
    assert w.active.label == "@bob"
    w.step(1)
    assert w.active.name == "lobby"
    w.step(-1)
    assert w.active.label == "@bob"


def test_a_resumed_session_reopens_no_window_and_keeps_the_one_on_screen():
    w = three_windows()
    w.switch(1)
    w.add(Welcome(version="1.3", server="s", nick="ann", room="lobby", resumed=True))
    w.add(Joined(room="dev", resumed=True, missed=0))
    assert [x.label for x in w.items] == ["lobby", "dev"] and w.active.name == "lobby"
    assert not any("you are in dev" in t for t in texts(w, 2)[1:])  # nothing new said for a kept room


def test_ignored_nicks_are_not_shown_anywhere():
    from chatroom.client.ignoring import Ignores

    w = three_windows()
    ignores = Ignores(("bob",))
    w.hides = ignores.hides
    assert not w.add(Private(nick="Bob", to="ann", text="spam", ts=1.0))
    w.add(chat("lobby", 1, "bob", "spam"))
    assert len(w.items) == 2 and not any("spam" in t for t in texts(w, 1))


def test_ignoring_by_mask_and_by_kind():
    from chatroom.client.ignoring import Ignores, parse_rule

    ignores = Ignores(("*bot", "spam* joins", "eve actions private"))
    action = Chat(room="lobby", seq=1, ts=1.0, nick="eve", text="waves", action=True)
    assert ignores.hides(chat("lobby", 1, "newsBOT", "headline"))  # a mask, ignoring case
    assert ignores.hides(Presence(room="lobby", event=PresenceEvent.JOIN, nick="spammer", ts=1.0))
    assert not ignores.hides(chat("lobby", 2, "spammer", "but this is said"))  # only joins
    assert ignores.hides(action) and ignores.hides(Private(nick="eve", to="ann", text="psst", ts=1.0))
    assert not ignores.hides(chat("lobby", 3, "eve", "plain words"))
    assert not ignores.hides(Presence(room="lobby", event=PresenceEvent.AWAY, nick="spammer", ts=1.0))
    assert ignores.texts() == ("*bot", "spam* joins", "eve actions private")
    for bad in ("", "bob loudly"):
        try:
            parse_rule(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_the_hotlist_goes_to_mentions_and_private_messages_first_then_new_messages():
    w = three_windows()  # lobby, dev (on screen)
    w.add(Joined(room="ops"))  # ops on screen now
    w.switch(2)  # dev
    assert not w.next_active()  # nothing happened anywhere
    w.add(chat("ops", 1, "bob", "just chatting"))
    w.add(chat("lobby", 1, "bob", "more chatting"))
    w.add(Private(nick="cy", to="ann", text="psst", ts=1.0))  # window 4, a highlight
    assert w.next_active() and w.active.label == "@cy"
    assert w.next_active() and w.active.name == "lobby"  # then new messages, in window order from here
    assert w.next_active() and w.active.name == "ops"
    assert not w.next_active() and w.status_text() == "[1:lobby 2:dev 3:ops 4:@cy]"


def test_the_status_bar_shows_the_lag_once_it_is_worth_a_look():
    from types import SimpleNamespace

    from chatroom.ui.bars import Bars

    bar = Bars()
    for lag, shown in ((None, []), (0.3, []), (2.5, [("class:status.note", " lag 2.5 s ")]),
                       (7.0, [("class:status.bad", " lag 7.0 s ")])):
        bar.client = SimpleNamespace(lag=lag)  # type: ignore[assignment]
        assert bar._lag() == shown


def test_a_first_private_message_says_so_in_the_window_on_screen():
    w = three_windows()  # dev on screen
    w.add(Private(nick="grace", to="ann", text="hi", ts=1.0))
    assert any("grace wrote to you -- Alt-3" in t for t in texts(w, 2))
    w.add(Private(nick="grace", to="ann", text="again", ts=2.0))  # said once
    assert sum("wrote to you" in t for t in texts(w, 2)) == 1


def test_a_message_to_a_rooms_operators_shows_in_that_room_not_as_a_conversation():
    w = three_windows()
    w.add(Private(nick="bob", to="@#lobby", text="ops: a spammer", ts=1.0))  # (an IRC client's STATUSMSG)
    assert [x.label for x in w.items] == ["lobby", "dev"]  # no window of its own
    assert any("bob → @#lobby" in t and "ops: a spammer" in t for t in texts(w, 1))
